r"""Sample weights of resampling schemes, and the channel side of two learners trained on one data set.

**Weights.** Resampling a data set is weighting its samples: learner ``a`` minimises
``sum_i p_i l(y_i, w.x_i / sqrt(d)) + (lam / 2) |w|^2`` with i.i.d. weights ``p_i`` from a law on
finitely many values (:class:`WeightLaw`): ``Poisson(1)`` for the pairs bootstrap (the counts of
``n`` draws with replacement among ``n`` samples are multinomial, Poisson(1) in the limit
``n -> infinity``), ``Bernoulli(f)`` for subsampling a fraction ``f`` of the samples, ``1`` for the
plain estimator. The weighted loss ``p l`` has the prox ``prox_{p V l}`` (step ``p V``), so that the
output function of a learner with weight ``p`` is

.. math:: f_p(y, \omega, V) = \frac{\mathrm{prox}_{p V l(y, \cdot)}(\omega) - \omega}{V},

zero at ``p = 0`` (a sample left out does not move its field). :func:`weighted_output` averages
``f_p`` and ``f_p^2`` over ``p``.

**Two learners on the same data** (Loureiro et al. 2022, "Fluctuations, bias, variance & ensemble
of learners"; Clarté et al. 2024, "Analysis of bootstrap and subsampling in high-dimensional
regularized regression"): the fields of a sample under the teacher and the two learners,
``(z, omega_a, omega_b)``, are jointly Gaussian with covariance
``[[rho, m_a, m_b], [m_a, q_a, q_ab], [m_b, q_ab, q_b]]``; their weights ``p_a, p_b`` are
independent of each other and of the data. The cross conjugate is
``qhat_ab = alpha E[f_a f_b]`` (:func:`cross_average` computes the expectation), and, since the
weights enter only through ``f``, the average over them factorises into the product of the two
learners' averaged outputs ``E_p f``. Learners on independent data sets have ``qhat_ab = 0``.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .channels import Sign
from .multivariate import psd_cholesky
from .quadrature import hermite_rule, panel_rule


_POISSON_VALUES = 20
"""Values ``0..19`` of the Poisson(1) law: the mass beyond, ``~ e^{-1} / 20!``, is below 1e-19."""


class WeightLaw(eqx.Module):
    """A law of sample weights ``p >= 0`` on finitely many values: ``P(p = values[k]) = probabilities[k]``."""

    values: jax.Array
    probabilities: jax.Array

    @classmethod
    def poisson(cls, dtype=None) -> "WeightLaw":
        """``Poisson(1)`` (the pairs bootstrap), truncated to ``0..19`` and renormalised (the mass
        left out is below 1e-19, under float64 rounding)."""
        dtype = dtype or jnp.result_type(float)
        k = jnp.arange(_POISSON_VALUES, dtype=dtype)
        mass = jnp.asarray([math.exp(-1.0) / math.factorial(j) for j in range(_POISSON_VALUES)], dtype)
        return cls(values=k, probabilities=mass / jnp.sum(mass))

    @classmethod
    def bernoulli(cls, fraction) -> "WeightLaw":
        """``Bernoulli(fraction)`` (subsampling): weight one with probability ``fraction``, else zero."""
        fraction = jnp.asarray(fraction, jnp.result_type(fraction, float))
        return cls(values=jnp.asarray([0.0, 1.0], fraction.dtype), probabilities=jnp.stack([1 - fraction, fraction]))

    @classmethod
    def constant(cls, dtype=None) -> "WeightLaw":
        """Every weight one (the plain estimator)."""
        dtype = dtype or jnp.result_type(float)
        return cls(values=jnp.ones(1, dtype), probabilities=jnp.ones(1, dtype))

    def mean(self, fn):
        """``E_p fn(p)``, with ``p`` on a new trailing axis of ``fn``'s output."""
        return jnp.sum(self.probabilities * fn(self.values), axis=-1)


def weighted_output(loss, law: WeightLaw, y, omega, V):
    r"""``(E_p f_p, E_p f_p^2, E_p p l(y, z_p))`` at labels ``y`` and fields ``omega`` (broadcast
    together), ``V`` a scalar: the output function, its square and the weighted training loss.

    ``z_p = prox_{p V l(y, .)}(omega)`` and ``f_p = (z_p - omega) / V``, zero at ``p = 0``.
    """
    y, omega = jnp.broadcast_arrays(y, omega)
    y, omega = y[..., None], omega[..., None]
    p = law.values
    held = p > 0
    z = loss.prox(y, omega, jnp.where(held, p, 1.0) * V)
    f = jnp.where(held, (z - omega) / V, 0.0)
    weighted_loss = jnp.where(held, p * loss(y, z), 0.0)
    return tuple(jnp.sum(law.probabilities * values, -1) for values in (f, f**2, weighted_loss))


def cross_average(channel, f_a, f_b, rho, m_a, q_a, m_b, q_b, q_ab, order: int = 24, panel_order: int = 12):
    r"""``E[f_a(y, omega_a) f_b(y, omega_b)]`` over ``(z, omega_a, omega_b)`` jointly Gaussian with
    covariance ``[[rho, m_a, m_b], [m_a, q_a, q_ab], [m_b, q_ab, q_b]]`` and ``y ~ P(y | z)``.

    ``f_a`` and ``f_b`` map broadcastable arrays ``(y, omega)`` to an array (a learner's output
    function, averaged over its weights). The teacher's field is integrated first, ``z = sqrt(rho) t``:
    for the classification channels, whose ``P(y | z)`` jumps or turns at ``z = 0``, by Gauss-Legendre
    panels in ``t`` (``panel_order`` nodes each) with edges at 0 and, but for the sign teacher's
    step, at ``+-8`` times the channel's width; for the others by a Gauss-Hermite rule and the channel's label quadrature. Given ``z`` the
    two students' fields are Gaussian about ``(m_a, m_b) z / rho`` with covariance
    ``[[q_a - m_a^2 / rho, q_ab - m_a m_b / rho], [., q_b - m_b^2 / rho]]``, integrated by a product
    Gauss-Hermite rule of ``order`` nodes per axis through its Cholesky factor (a singular one, two
    identical learners, included). Differentiable in every argument.
    """
    dtype = jnp.result_type(rho, m_a, q_a, m_b, q_b, q_ab, float)
    tiny = jnp.finfo(dtype).tiny
    if channel.classification:
        edges = jnp.zeros(1, dtype)
        if not isinstance(channel, Sign):  # the sign teacher's P(y | z) is a step: no width to resolve
            width = 8 * channel.transition_width(jnp.asarray(tiny, dtype)) / jnp.sqrt(rho)
            edges = jnp.stack([-width, jnp.zeros_like(width), width])
        t, w_t = panel_rule(edges, panel_order)
        y = jnp.asarray(channel.labels, dtype)
        z = jnp.sqrt(rho) * t
        w = w_t[:, None] * channel.partition(y, z[:, None], tiny)  # (T, 2)
        y = jnp.broadcast_to(y, w.shape)
    else:
        t, w_t = hermite_rule(order, dtype)
        z = jnp.sqrt(rho) * t
        y, w_y, _ = channel.label_quadrature(z, jnp.zeros((), dtype), order)  # (T, L)
        w = w_t[:, None] * w_y
    cov = jnp.stack(
        [jnp.stack([q_a - m_a**2 / rho, q_ab - m_a * m_b / rho]), jnp.stack([q_ab - m_a * m_b / rho, q_b - m_b**2 / rho])]
    )
    L = psd_cholesky(cov.astype(dtype))
    g, w_g = hermite_rule(order, dtype)
    z = z[:, None, None, None]
    omega_a = m_a / rho * z + L[0, 0] * g[:, None]  # (T, 1, G, 1)
    omega_b = m_b / rho * z + L[1, 0] * g[:, None] + L[1, 1] * g  # (T, 1, G, H)
    y = y[:, :, None, None]
    both = f_a(y, omega_a) * f_b(y, omega_b)
    return jnp.sum(w[:, :, None, None] * w_g[:, None] * w_g * both)


def cross_conjugate(channel, loss, rho, learner_a, learner_b, q_ab, order: int = 24, panel_order: int = 24):
    r"""``E[bar f_a(y, omega_a) bar f_b(y, omega_b)]``, ``qhat_ab / alpha`` of two learners trained on
    the same data with independent weights (module docstring), by :func:`cross_average`.

    ``learner_a`` and ``learner_b`` are ``(m, q, V, law)``: a learner's overlaps with the teacher and
    itself, its variance and its :class:`WeightLaw`; ``q_ab`` their overlap.
    """
    (m_a, q_a, V_a, law_a), (m_b, q_b, V_b, law_b) = learner_a, learner_b

    def f_a(y, omega):
        return weighted_output(loss, law_a, y, omega, V_a)[0]

    def f_b(y, omega):
        return weighted_output(loss, law_b, y, omega, V_b)[0]

    return cross_average(channel, f_a, f_b, rho, m_a, q_a, m_b, q_b, q_ab, order, panel_order)
