r"""The posterior of one Gaussian field seen through a smooth link and Gaussian noise, on panels placed
where the likelihood changes: at the preimages of the label under the link.

A field ``z ~ N(mean, var)`` and a label ``y = g(z) + sqrt(noise) eps``: the tilted measure

.. math:: N(z; \mathrm{mean}, \mathrm{var})\, \exp\!\big(-(y - g(z))^2 / (2\, \mathrm{noise})\big)

peaks at every preimage of ``y`` under ``g``, over ``sqrt(noise) / |g'(z)|``, a width that a
Gauss-Hermite rule in ``z`` resolves only where it is wider than the nodes' spacing (for
``He_4 / sqrt(24)`` at ``noise = 1``, not with 160 nodes). Here ``z`` is on Gauss-Legendre panels
(``order`` nodes each) over the prior's window ``mean + s {0, +-1.5, +-3.5, +-6, +-12}``
(``s = sqrt(var)``), cut besides at

- the critical points of ``g`` in the window (sign changes of ``g'`` on a grid of 128 intervals, then
  bisected: extrema, and kinks such as that of ``|z|``; the first four), where the preimages of nearby
  levels meet, and
- ``panels - 1`` points equidistributed in ``F(t(z))``, ``t = (g(z) - y) / sqrt(noise)`` the label's
  residual in noise units and ``F(t) = asinh(clip(t, -9, 9) / 2)``: the panels share out the
  likelihood's variation over every monotone piece of ``g`` (every preimage), each covering about
  ``2 sinh(total / (2 panels))`` in ``t`` near the peak and more in its tails (``exp(-t^2 / 2)``), and none
  beyond ``|t| = 9`` (``exp(-40)``). On the grid, the variation of each interval is
  ``|F(t_{i+1}) - F(t_i)|``, exact where ``g`` is monotone in it; the point of a given ``F`` in its
  interval is the preimage of its level, by Newton's method from the secant (``g'`` by ``jax.grad``),
  kept in the interval.

(Derived here; the rule of :class:`~hdtheory.kernels.generative.Smooth`, which places panels at the
preimages of a monotone activation through its inverse, generalised to links with several preimages.)
The panels' edges are not differentiated (``stop_gradient``): the derivatives are those of the rule
with its nodes held, the derivative of the integral wherever the rule is accurate (the integrand is
negligible at the window's ends and the inner edges' terms cancel). Everything has static shapes:
``jax.vmap`` and ``jax.grad`` go through. Where ``g`` is nearly constant on the window (the noise much
larger than its range) the likelihood's edges crowd where it varies most, harmlessly.
"""

import jax
import jax.numpy as jnp

from .quadrature import legendre_panels

_WINDOW = 12.0
_PRIOR_EDGES = (0.0, 1.5, -1.5, 3.5, -3.5, 6.0, -6.0, _WINDOW, -_WINDOW)
_GRID = 128
_CRITICAL = 4
_RESIDUAL = 9.0
_NEWTON = 4
_BISECTION = 48


def _compress(t):
    return jnp.arcsinh(jnp.clip(t, -_RESIDUAL, _RESIDUAL) / 2)


def _expand(F):
    return 2 * jnp.sinh(F)


def preimage_rule(fn, y, noise, mean, var, order: int, panels: int = 32):
    """Nodes ``z`` and weights ``w`` with ``sum w f(z) ~ int f(z) dz`` over the prior's window, on the
    panels of the module docstring; ``fn`` maps a scalar field to a scalar (vmappable). One point."""
    dtype = jnp.result_type(y, noise, mean, var, float)
    s = jnp.sqrt(jnp.maximum(var, jnp.finfo(dtype).tiny))
    slope = jax.grad(fn)
    u = jnp.linspace(-_WINDOW, _WINDOW, _GRID + 1, dtype=dtype)
    z = mean + s * u
    g = jax.vmap(fn)(z)

    # Critical points: where g' changes sign between grid points, bisected.
    dg = jax.vmap(slope)(z)
    change = jnp.sign(dg[:-1]) * jnp.sign(dg[1:]) < 0
    (index,) = jnp.nonzero(change, size=_CRITICAL, fill_value=0)
    found = jnp.arange(_CRITICAL) < jnp.sum(change)

    def bisect(bracket, _):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        same = jnp.sign(jax.vmap(slope)(mid)) == jnp.sign(jax.vmap(slope)(lo))
        return (jnp.where(same, mid, lo), jnp.where(same, hi, mid)), None

    (lo, hi), _ = jax.lax.scan(bisect, (z[index], z[index + 1]), None, length=_BISECTION)
    critical = jnp.where(found, 0.5 * (lo + hi), mean)

    # The likelihood's edges: equidistributed in F(t).
    sigma = jnp.sqrt(noise)
    t = (g - y) / sigma
    # The residual's smallest square on the window: zero where t changes sign, else at a grid point
    # or a critical point.
    at_critical = jnp.where(found, (jax.vmap(fn)(critical) - y) / sigma, t[0])
    crossing = jnp.any(jnp.sign(t[:-1]) * jnp.sign(t[1:]) <= 0)
    floor = jnp.where(crossing, 0.0, jnp.minimum(jnp.min(t**2), jnp.min(at_critical**2)))
    F = _compress(jnp.sign(t) * jnp.sqrt(jnp.maximum(t**2 - floor, 0.0)))
    cumulative = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(jnp.abs(jnp.diff(F)))])
    total = cumulative[-1]
    share = jnp.where(total > 0, total / panels, 1.0)
    # Target j (at j share) lies in the last interval i with cumulative[i] <= j share: the largest i
    # with floor(cumulative[i] / share) <= j (a scatter and a running maximum; a search per target
    # costs ten times as much under vmap on a CPU).
    count = jnp.floor(cumulative / share).astype(jnp.int32)
    last = jnp.zeros(panels, jnp.int32).at[count].max(jnp.arange(_GRID + 1, dtype=jnp.int32), mode="drop")
    i = jnp.clip(jax.lax.cummax(last)[1:], 0, _GRID - 1)
    targets = share * jnp.arange(1, panels, dtype=dtype)
    rise = F[i + 1] - F[i]
    F_target = F[i] + jnp.sign(rise) * (targets - cumulative[i])
    relative = _expand(F_target)
    level = y + sigma * jnp.where(relative != 0, jnp.sign(relative), jnp.sign(t[i])) * jnp.sqrt(relative**2 + floor)
    a, b = z[i], z[i + 1]
    start = a + (b - a) * jnp.clip((F_target - F[i]) / jnp.where(rise != 0, rise, 1.0), 0.0, 1.0)

    def newton(x, _):
        r = jax.vmap(fn)(x) - level
        d = jax.vmap(slope)(x)
        step = jnp.where(d != 0, r / jnp.where(d != 0, d, 1.0), 0.0)
        return jnp.clip(x - step, a, b), None

    likelihood, _ = jax.lax.scan(newton, start, None, length=_NEWTON)
    likelihood = jnp.where(cumulative[-1] > 0, likelihood, mean)

    edges = jnp.concatenate([mean + s * jnp.asarray(_PRIOR_EDGES, dtype), critical, likelihood])
    return legendre_panels(jax.lax.stop_gradient(edges), order)


def preimage_tilted_moments(fn, y, noise, mean, var, order: int = 8, panels: int = 32):
    """``(log Z, E[z | y], E[z^2 | y])`` for ``z ~ N(mean, var)`` and ``y ~ N(fn(z), noise)``
    (``Z = E N(y; fn(z), noise)``) on :func:`preimage_rule`; one point, ``fn`` scalar to scalar."""
    z, w = preimage_rule(fn, y, noise, mean, var, order, panels)
    log_t = (
        jnp.log(w)
        - 0.5 * (z - mean) ** 2 / var
        - 0.5 * jnp.log(2 * jnp.pi * var)
        - 0.5 * (y - jax.vmap(fn)(z)) ** 2 / noise
        - 0.5 * jnp.log(2 * jnp.pi * noise)
    )
    log_Z = jax.nn.logsumexp(log_t)
    p = jnp.exp(log_t - log_Z)
    return log_Z, p @ z, p @ z**2
