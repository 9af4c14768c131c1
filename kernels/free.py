r"""Free additive convolution with a semicircle, and the eigenvalue soft threshold of a Wigner-perturbed
matrix (the proximal operator of the nuclear norm on positive semi-definite matrices, or on symmetric
ones, or of a weighted one) averaged over it.

**Spectrum.** ``Y = S + delta W``: ``S`` symmetric ``d x d`` whose eigenvalue law is the list of atoms
``s_k`` with weights ``pi_k`` (summing to one), ``W`` a GOE matrix whose spectrum fills ``[-2, 2]``
(off-diagonal variance ``1 / d``). The eigenvalue law of ``Y`` is ``mu = mu_S boxplus sigma_delta``,
whose Stieltjes transform ``G(z) = int mu(dy) / (z - y)`` is ``G_S(omega(z))`` at the subordination
point ``omega = z - delta^2 G(z)`` (Pastur's equation). On the real line (Biane 1997) the point
``omega = a + i b(a)``, with ``b(a) > 0`` the root of ``delta^2 sum_k pi_k / ((a - s_k)^2 + b^2) = 1``
where ``delta^2 sum_k pi_k / (a - s_k)^2 > 1`` (else ``b = 0``), meets
``x(a) = psi(omega) = omega + delta^2 G_S(omega)``, real and increasing in ``a``, within ``delta`` of ``a``.

**Tail integrals by a contour.** For a polynomial ``P``,
``int_{x > t} P(x) G(x + i0)^m dx = int_Gamma P(psi) G_S^m psi' d omega`` along the curve from
``omega_t`` (where ``psi = t``) to a real point beyond every atom; the integrand is analytic in the
upper half plane, so the curve is deformed to a rectangle above it (up from ``omega_t`` on panels graded
towards it, across at height ``H`` = the atoms' spread, down to the real line), where Gauss-Legendre
panels converge exponentially whatever the atoms (isolated spikes included). With ``-Im G / pi`` the
density and ``Re G = h`` its Hilbert transform (``int mu(dy) / (x - y)``, principal value):
``int_{x>t} x^k mu(dx) = -Im int x^k G / pi`` and ``int_{x>t} (x - t) h mu(dx) = -Im int (x - t) G^2 / (2 pi)``.

**The denoiser.** ``eta(Y) = sum_i f(lambda_i) v_i v_i^T`` with ``f(x) = (x - t)_+ - (-x - t')_+``:
the eigenvalues above ``t`` moved left by ``t``, those below ``-t'`` moved right by ``t'``, the rest
cut to zero; ``t' = infinity`` (one-sided) is the proximal operator of ``t |.|_*`` on the positive
semi-definite cone, ``t' = t`` (two-sided) on all symmetric matrices, and ``t' = t / kappa`` that of
``t (tr S_+ + tr S_- / kappa)``. In the orthonormal coordinates of symmetric matrices (``d (d + 1) /
2`` of them, in which ``delta W`` has variance ``sigma^2 = 2 delta^2 / d`` per coordinate), its
divergence is ``sum_i f'(lambda_i) + sum_{i<j} (f(lambda_i) - f(lambda_j)) / (lambda_i - lambda_j)``
(Daleckii-Krein), ``~ d P(f' = 1) + d (d - 1) int f h mu``. The lower tail is the upper tail of ``-Y``
beyond ``t'`` (atoms ``-s_k``; ``h`` changes sign with ``x``), so both are the same tail integrals.
Stein's unbiased risk estimate gives the error per dimension

.. math:: \frac{1}{d} \mathbb E |\eta(Y) - S|_F^2 = \int (f(x) - x)^2 \mu(dx)
          - \delta^2 \frac{d + 1}{d} + \frac{4 \delta^2}{d^2} \mathrm{div},

exact for the identity (``t -> -infinity``: ``delta^2 (d + 1) / d``). The second moment of ``mu`` is
``sum_k pi_k s_k^2 + delta^2``. Everything is differentiable in the atoms, ``delta`` and ``t``
(implicit derivatives for ``a`` and ``b``).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .quadrature import legendre_panels
from .roots import bracketed_newton

_STEPS = 200
"""Safeguarded Newton steps for ``b(a)`` and ``a_t``: at most this many, to 64 machine epsilons."""

_GRADED = 40
"""Panels graded by halves from the height ``H`` down to ``omega_t`` (``H 2^-40`` above it)."""

_ORDER = 8


def _stieltjes(omega, atoms, weights):
    """``G_S(omega) = sum_k pi_k / (omega - s_k)`` and ``sum_k pi_k / (omega - s_k)^2`` (in real
    arithmetic: XLA's complex division is several times slower)."""
    x, y = jnp.real(omega)[..., None] - atoms, jnp.imag(omega)[..., None]
    inverse = 1 / (x**2 + y**2)
    re, im = x * inverse, -y * inverse  # 1 / (omega - s_k)
    g = jax.lax.complex(jnp.sum(weights * re, -1), jnp.sum(weights * im, -1))
    g2 = jax.lax.complex(jnp.sum(weights * (re**2 - im**2), -1), jnp.sum(weights * 2 * re * im, -1))
    return g, g2


def implicit_root(F, root):
    """``root`` (a root of ``F`` found without derivatives) moved by one Newton step with the gradient
    on, so that its derivative is the implicit one, ``-dF/dp / dF/dx`` (0 where ``dF/dx`` vanishes).
    ``F`` returns ``(value, aux)``; returns ``(root, aux)`` at the root, ``aux`` moved to first order
    along (its value unchanged, its derivative the chain rule's through the root)."""
    root = jax.lax.stop_gradient(root)
    (value, aux), (slope, aux_slope) = jax.jvp(F, (root,), (jnp.ones_like(root),))
    step = -value / jnp.where(slope != 0, jax.lax.stop_gradient(slope), jnp.inf)
    return root + step, jax.tree.map(lambda x, dx: x + dx * step, aux, aux_slope)


def _height(a, atoms, weights, delta2):
    """``b(a)``: the root of ``delta^2 sum_k pi_k / ((a - s_k)^2 + b^2) = 1`` in ``u = b^2``, 0 where
    the sum is at most 1 at ``b = 0``. ``F(u) = 1 / (delta^2 sum_k pi_k / ((a - s_k)^2 + u)) - 1`` is
    increasing and concave, so Newton's method from ``u = 0`` rises to the root monotonically."""
    eps = jnp.finfo(jnp.result_type(a, delta2)).eps
    gap2 = jnp.maximum((a - atoms) ** 2, eps**2 * delta2)

    def F(u):
        return 1 / (delta2 * jnp.sum(weights / (gap2 + u))) - 1, None

    def newton(u):
        inverse = 1 / (gap2 + u)
        phi = delta2 * jnp.sum(weights * inverse)
        return u - (1 / phi - 1) * phi**2 / (delta2 * jnp.sum(weights * inverse**2))

    def running(carry):
        u, previous, i = carry
        return (jnp.abs(u - previous) > 4 * eps * (u + eps * delta2)) & (i < _STEPS)

    def body(carry):
        u, _, i = carry
        return newton(u), u, i + 1

    inside = F(jnp.zeros_like(delta2))[0] < 0
    zero = jnp.zeros_like(delta2)
    u, _, _ = jax.lax.while_loop(running, body, (jnp.where(inside, newton(zero), zero), zero - 1, 0))
    u, _ = implicit_root(F, jnp.where(inside, u, delta2))
    inside = inside & (u > 0)
    return jnp.where(inside, jnp.sqrt(jnp.where(inside, u, 1.0)), 0.0)  # no infinite slope at b = 0


def subordination(t, atoms, weights, delta):
    """``omega_t = a_t + i b(a_t)``, the subordination point of ``x = t``: the root of the increasing
    ``x(a) = t`` in ``[t - delta, t + delta]`` (module docstring), by the secant method safeguarded by
    bisection."""
    delta2 = delta**2

    def F(a):
        omega = jax.lax.complex(a, _height(a, atoms, weights, delta2))
        g, _ = _stieltjes(omega, atoms, weights)
        return jnp.real(omega + delta2 * g) - t, omega

    def evaluate(a):
        return F(a)[0], None, None

    tol = 16 * jnp.finfo(jnp.result_type(t, delta, float)).eps * (1 + jnp.abs(t) + delta)
    lo, hi = jax.lax.stop_gradient((t - delta, t + delta))
    f_lo, f_hi = jax.vmap(evaluate)(jax.lax.stop_gradient(jnp.stack([lo, hi])))[0]
    a, _, _, _ = bracketed_newton(evaluate, lo, hi, f_lo, hi, f_hi, (f_hi - f_lo) / (hi - lo), None, _STEPS, tol)
    a = jnp.where(jnp.abs(f_lo) <= tol, lo, jnp.where(jnp.abs(f_hi) <= tol, hi, a))
    return implicit_root(F, a)[1]


class TailIntegrals(eqx.Module):
    """Integrals of ``mu = mu_S boxplus sigma_delta`` over ``x > t``: ``mass = int mu``, ``first = int
    x mu``, ``second = int x^2 mu``, ``hilbert = int (x - t) h(x) mu(dx)``."""

    mass: jax.Array
    first: jax.Array
    second: jax.Array
    hilbert: jax.Array


def tail_integrals(t, atoms, weights, delta) -> TailIntegrals:
    """:class:`TailIntegrals` by the contour of the module docstring. ``atoms`` and ``weights`` are 1-D."""
    dtype = jnp.result_type(t, delta, atoms, float)
    t, delta = jnp.asarray(t, dtype), jnp.asarray(delta, dtype)
    atoms, weights = jnp.asarray(atoms, dtype), jnp.asarray(weights, dtype)
    omega_t = subordination(t, atoms, weights, delta)
    a_t, b_t = jnp.real(omega_t), jnp.imag(omega_t)
    spread = jnp.max(atoms) - jnp.min(atoms)
    height = spread + 4 * delta + jnp.abs(t - jnp.min(atoms)) / 4 + 1e-3 * (1 + jnp.abs(t))
    right = jnp.maximum(jnp.max(atoms), a_t) + height
    top = b_t + height
    # up from omega_t (panels graded towards it), across, down to the real line at ``right``
    grading = jnp.asarray([0.0] + [2.0**-k for k in range(_GRADED, -1, -1)], dtype)
    y1, w1 = legendre_panels(b_t + height * grading, _ORDER)
    x2, w2 = legendre_panels(a_t + (right - a_t) * jnp.linspace(0.0, 1.0, 9, dtype=dtype), _ORDER)
    y3, w3 = legendre_panels(top * jnp.linspace(0.0, 1.0, 5, dtype=dtype), _ORDER)
    path = jnp.concatenate([jax.lax.complex(a_t + 0 * y1, y1), jax.lax.complex(x2, top + 0 * x2),
                            jax.lax.complex(right + 0 * y3, y3)])
    # d omega: +i dy going up, dx across, -i dy going down
    step = jnp.concatenate([1j * w1, w2 + 0j, -1j * w3])
    g, g2 = _stieltjes(path, atoms, weights)
    delta2 = delta**2
    x = path + delta2 * g
    measure = step * (1 - delta2 * g2) * g  # G dx along the real line
    mass, first, second = (-jnp.imag(jnp.sum(measure * x**k)) / math.pi for k in range(3))
    hilbert = -jnp.imag(jnp.sum(measure * g * (x - t))) / (2 * math.pi)
    return TailIntegrals(mass, first, second, hilbert)


class ThresholdedSpectrum(eqx.Module):
    """The eigenvalue soft threshold ``eta(Y)`` of ``Y = S + delta W`` at ``t`` (module docstring),
    per dimension: ``error = E|eta(Y) - S|_F^2 / d``, ``divergence`` (the total,
    over the ``d (d + 1) / 2`` coordinates), ``rank`` = the fraction of non-zero eigenvalues,
    ``trace = E tr eta(Y) / d`` and ``square = E |eta(Y)|_F^2 / d``."""

    error: jax.Array
    divergence: jax.Array
    rank: jax.Array
    trace: jax.Array
    square: jax.Array


def thresholded_spectrum(t, atoms, weights, delta, d, lower=math.inf) -> ThresholdedSpectrum:
    """:class:`ThresholdedSpectrum` of ``Y = S + delta W`` (``S``'s eigenvalue law: ``atoms`` with
    ``weights``) at thresholds ``t`` (positive eigenvalues) and ``lower`` (negative ones; infinite: the
    positive part) in dimension ``d`` (module docstring)."""
    both = jnp.isfinite(lower)
    signs = jnp.asarray([1.0, -1.0])
    thresholds = jnp.stack(jnp.broadcast_arrays(t, jnp.where(both, lower, t)))
    # per tail of ``sign * Y`` beyond its threshold; the lower one left out (zero) where infinite
    tails = jax.vmap(lambda sign, threshold: tail_integrals(threshold, sign * atoms, weights, delta))(signs, thresholds)
    tails = jax.tree.map(lambda x: jnp.where(jnp.stack([True, both]), x, 0.0), tails)
    mass = jnp.sum(tails.mass)
    second_moment = jnp.sum(weights * atoms**2) + delta**2
    residual = jnp.sum(thresholds**2 * tails.mass) + second_moment - jnp.sum(tails.second)  # int (f - x)^2 mu
    divergence = d * mass + d * (d - 1) * jnp.sum(tails.hilbert)
    error = residual - delta**2 * (d + 1) / d + 4 * delta**2 * divergence / d**2
    trace = jnp.sum(signs * (tails.first - thresholds * tails.mass))
    square = jnp.sum(tails.second - 2 * thresholds * tails.first + thresholds**2 * tails.mass)
    return ThresholdedSpectrum(error, divergence, mass, trace, square)
