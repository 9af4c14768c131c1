r"""The separability threshold: the sample ratio below which labels from a teacher channel are
linearly separable.

**Theorem.** Candès & Sur 2020, "The phase transition for the existence of the maximum likelihood
estimate in high-dimensional logistic regression", Ann. Statist. 48(1), 27-42, Theorem 2.1: for
``n`` samples ``x_i ~ N(0, I_p)`` with labels ``y_i = +-1`` drawn from ``P(y | x_i . beta)`` and
``p / n -> kappa``, the data are linearly separable (and the maximum likelihood estimate does not
exist) with probability tending to one if ``kappa > h``, and to zero if ``kappa < h``, where

.. math:: h = \min_{t} \mathbb{E}\big[(t\, Y V - Z)_+^2\big],

``V = x . beta / sd(x . beta) ~ N(0, 1)``, ``Y`` the label of ``V`` and ``Z ~ N(0, 1)`` independent
of both. The theorem is stated for a model fitted with an intercept, the minimum then over
``(t_0, t_1)`` of ``E[(t_0 Y + t_1 Y V - Z)_+^2]``; without an intercept (the estimators here) the
same argument, with the intercept's direction left out, drops ``t_0`` (``tests/test_separability.py``
checks the result against linear-programming separability of simulated data). For a channel
symmetric under ``(y, z) -> (-y, -z)`` (every channel here) ``t_0 = 0`` at the minimum, so the two
coincide. Random
labels give ``h = 1/2`` at ``t = 0``: Cover's (1965) capacity, Gardner's (1988) ``alpha_c = 2``.

**Conventions.** With ``alpha = n / d`` and the teacher's field ``z = sqrt(rho) V``, ``kappa = 1 /
alpha`` and the threshold is ``alpha* = 1 / h``: separable for ``alpha < alpha*``. A label that is a
deterministic ``sign(z)`` (the noiseless sign, probit and logistic teachers) is separable at every
``alpha``: ``h = 0`` (as ``t -> -inf``) and ``alpha* = inf``.

**Computation.** The expectation over ``Z`` is in closed form,
``g(a) = E(a - Z)_+^2 = (a^2 + 1) Phi(a) + a phi(a)``, with ``g' = 2 (a Phi(a) + phi(a))`` and
``g'' = 2 Phi(a)``, so that

.. math:: H(t) = \sum_{y = \pm 1} \mathbb{E}_V\big[P(y \mid \sqrt{\rho} V)\, g(t y V)\big]

is convex (``H'' = 2 sum_y E[P V^2 Phi(t y V)] > 0``) and is minimised by Newton's method on
``H'(t) = 0`` from ``t = 0``, in a ``lax.while_loop``. The ``V`` integrals are Gauss-Legendre panels
(:func:`~hdtheory.kernels.panel_rule`) with edges at ``V = 0`` (the label's step for the sign teacher),
at ``+-{1, 4, 16}`` times the label's transition width ``s / sqrt(rho)`` and at ``+-{1, 4, 16} / |t|``,
the scale of ``g(t y V)``. The derivative of ``h`` in the channel's noise and in ``rho`` is
``dH/dtheta`` at the minimiser held fixed (the envelope theorem: ``H'(t*) = 0``), exact for first
derivatives.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from .channels import Channel, _normal_pdf
from .quadrature import panel_rule

_EDGES = (1.0, 4.0, 16.0)
"""Multiples of the label's and of ``g``'s scales (in ``V``) at which the panels have edges."""


class Separability(eqx.Module):
    """The separability threshold of a channel (every field gains the batch axes of a vmap)."""

    alpha: jax.Array
    """``alpha* = 1 / h``: separable below it; ``inf`` for a deterministic ``sign(z)``."""
    h: jax.Array
    """Candès and Sur's ``h``, the threshold in ``kappa = p / n = 1 / alpha``."""
    t: jax.Array
    """The minimiser ``t*`` (not differentiated); ``-inf`` for a deterministic label."""
    converged: jax.Array
    """Whether Newton's method met the tolerance on ``H'(t)`` (true for a deterministic label)."""
    residual: jax.Array
    """``|H'(t*)|``; 0 for a deterministic label."""


def squared_hinge_moments(a):
    """``E(a - Z)_+^2 = (a^2 + 1) Phi(a) + a phi(a)`` for ``Z ~ N(0, 1)``, and its first two
    derivatives in ``a``, ``2 (a Phi(a) + phi(a))`` and ``2 Phi(a)``. At ``a = kappa`` the first is
    Gardner's ``int_{-kappa}^inf Dt (t + kappa)^2``, the inverse of the spherical perceptron's
    capacity (:class:`hdtheory.Gardner`)."""
    cdf, pdf = ndtr(a), _normal_pdf(a)
    return (a * a + 1) * cdf + a * pdf, 2 * (a * cdf + pdf), 2 * cdf


def _rule(channel, rho, t, order):
    """Panel nodes and weights in ``V`` for ``H`` at ``t`` (edges not differentiated)."""
    width = channel.transition_width(jnp.zeros_like(rho)) / jnp.sqrt(rho)
    scale = 1 / jnp.maximum(jnp.abs(t), 0.1)
    edges = [jnp.zeros_like(t)] + [s * c * w for c in _EDGES for w in (width, scale) for s in (-1, 1)]
    return panel_rule(jax.lax.stop_gradient(jnp.stack(jnp.broadcast_arrays(*edges), axis=-1)), order)


def _moments(channel, rho, t, order):
    """``(H, H', H'')`` at ``t``."""
    v, w = _rule(channel, rho, t, order)
    y = jnp.asarray([-1.0, 1.0], v.dtype)[:, None]
    weight = w * channel.probability(y, jnp.sqrt(rho) * v)
    g0, g1, g2 = squared_hinge_moments(t * y * v)
    return jnp.sum(weight * g0), jnp.sum(weight * y * v * g1), jnp.sum(weight * v * v * g2)


def separability_threshold(
    channel: Channel, rho, order: int = 40, steps: int = 100, tol: float | None = None
) -> Separability:
    """The separability threshold of labels from ``channel`` on a teacher field of variance ``rho``.

    See the module docstring. ``channel`` must be a classification channel with
    :meth:`probability` and :meth:`deterministic` (sign, probit, logistic, random labels); its
    ``noise`` and ``rho`` are scalars (``jax.vmap`` for a batch).
    ``order`` is the number of Gauss-Legendre nodes per panel, ``steps`` bounds Newton's iterations
    and ``tol`` (on ``|H'(t)|``) is 1e-12 in float64 and 1e-6 in float32 by default. Differentiable
    in ``rho`` and in ``channel.noise``; vmappable; no host synchronisation.
    """
    rho = jnp.asarray(rho, jnp.result_type(rho, channel.noise, float))
    dtype = rho.dtype
    tol = (1e-12 if jnp.finfo(dtype).bits >= 64 else 1e-6) if tol is None else tol
    deterministic = channel.deterministic()
    # A deterministic label has no minimiser (t -> -inf): the computation runs on a noisy stand-in,
    # whose result is discarded, so that neither it nor its derivative is NaN.
    channel = eqx.tree_at(lambda c: c.noise, channel, jnp.where(deterministic, 0.25, channel.noise))

    fixed_channel, fixed_rho = jax.lax.stop_gradient((channel, rho))

    def running(carry):
        t, slope, curvature, i = carry
        return (jnp.abs(slope) > tol) & (i < steps) & (curvature > 0) & jnp.isfinite(t)

    def body(carry):
        t, slope, curvature, i = carry
        t = t - slope / curvature
        return (t, *_moments(fixed_channel, fixed_rho, t, order)[1:], i + 1)

    t0 = jnp.zeros((), dtype)
    t, slope, _, _ = jax.lax.while_loop(
        running, body, (t0, *_moments(fixed_channel, fixed_rho, t0, order)[1:], 0)
    )
    converged = (jnp.abs(slope) <= tol) & jnp.isfinite(t)
    # Envelope theorem: at the minimiser dh/dtheta is the partial derivative of H.
    h = _moments(channel, rho, jax.lax.stop_gradient(t), order)[0]
    h = jnp.where(deterministic, 1.0, h)
    return Separability(
        alpha=jnp.where(deterministic, jnp.inf, 1 / h),
        h=jnp.where(deterministic, 0.0, h),
        t=jnp.where(deterministic, -jnp.inf, t),
        converged=deterministic | converged,
        residual=jnp.where(deterministic, 0.0, jnp.abs(slope)),
    )
