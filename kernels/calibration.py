r"""Calibration of a linear classifier's confidence, from the joint Gaussian law of the local fields.

A student with field ``omega = w.x / sqrt(d)`` reports the probability ``sigmoid(omega / T)`` for
the label ``+1`` (``T`` a temperature applied to the logits; ``T = 1`` is the fitted logistic model),
that is, the confidence ``c = sigmoid(|omega| / T)`` in its prediction ``sign(omega)``. On a fresh
input the teacher's field ``z`` and ``omega`` are jointly Gaussian, ``E z^2 = rho``,
``E z omega = m``, ``E omega^2 = q``, so that with ``omega = sqrt(q) eta``, ``eta ~ N(0, 1)``, the
probability of the label given the student's field is the channel's partition function
``P(y | omega) = Z(y, m eta / sqrt(q), rho - m^2 / q)``. Every metric is then a 1-D integral over
``eta`` (Clarté, Loureiro, Krzakala, Zdeborová 2022, "Theoretical characterization of uncertainty in
high-dimensional linear classification", section 2):

- ``calibration(c) = P(y = sign(omega) | confidence c)``, the calibration curve; the classifier is
  overconfident at ``c`` where it is below ``c``;
- ``ece = E |c - P(y = sign(omega) | omega)|``, the expected calibration error (the population
  version, without bins);
- ``confidence = E c`` and ``accuracy = P(y = sign(omega))``; their difference is the calibration gap;
- ``nll = E[-log sigmoid(y omega / T)]`` and ``brier = E[(sigmoid(omega / T) - 1(y = 1))^2]``.

By the symmetry ``(eta, y) -> (-eta, -y)`` of the channels, each integral is twice its half over
``eta > 0``, integrated by Gauss-Legendre panels (``panel_rule``).
"""

import jax
import jax.numpy as jnp

from .quadrature import panel_rule

_EDGES = (0.0, 0.5, 1.0, 2.0, 3.5)


def _half_line(m, q, rho, order):
    """Nodes ``eta > 0`` with twice their weights, the student's field there and the channel's ``V0``."""
    dtype = jnp.result_type(m, q, rho, float)
    eta, w = panel_rule(jnp.asarray(_EDGES, dtype), order)
    w = jnp.where(eta > 0, 2 * w, 0.0)
    return eta, w, jnp.sqrt(q) * eta, jnp.maximum(rho - m**2 / q, 0.0)


def calibration_metrics(channel, m, q, rho, temperature=1.0, order: int = 48) -> dict[str, jax.Array]:
    """``ece``, ``confidence``, ``accuracy``, ``nll`` and ``brier`` (see the module docstring)."""
    eta, w, omega, V0 = _half_line(m, q, rho, order)
    teacher_mean = m / jnp.sqrt(q) * eta
    right = channel.partition(1.0, teacher_mean, V0)  # P(y = sign(omega) | omega), omega > 0
    confidence = jax.nn.sigmoid(omega / temperature)
    nll = -(right * jax.nn.log_sigmoid(omega / temperature) + (1 - right) * jax.nn.log_sigmoid(-omega / temperature))
    brier = right * (1 - confidence) ** 2 + (1 - right) * confidence**2
    return {
        "ece": jnp.sum(w * jnp.abs(confidence - right)),
        "confidence": jnp.sum(w * confidence),
        "accuracy": jnp.sum(w * right),
        "nll": jnp.sum(w * nll),
        "brier": jnp.sum(w * brier),
    }


def calibration_curve(channel, m, q, rho, confidence, temperature=1.0):
    """``P(y = sign(omega) | sigmoid(|omega| / T) = confidence)`` for confidences in ``(1/2, 1)``."""
    omega = temperature * jnp.log(confidence / (1 - confidence))
    return channel.partition(1.0, m / q * omega, jnp.maximum(rho - m**2 / q, 0.0))


def _temperature_root(f, dtype, steps: int = 60):
    """The root in ``T`` of ``f(log T)``, positive below it and negative above, in ``[e^-12, e^12]``:
    bisection in ``log T``, differentiated by the implicit function theorem."""

    def bisect(f, bracket):
        def step(_, interval):
            lo, hi = interval
            mid = 0.5 * (lo + hi)
            above = f(mid) > 0  # the root lies at a larger temperature
            return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

        lo, hi = jax.lax.fori_loop(0, steps, step, bracket)
        return 0.5 * (lo + hi)

    bracket = (jnp.asarray(-12.0, dtype), jnp.asarray(12.0, dtype))
    log_t = jax.lax.custom_root(f, bracket[0], lambda f, _: bisect(f, bracket), lambda g, y: y / g(jnp.ones_like(y)))
    return jnp.exp(log_t)


def expectation_consistent_temperature(channel, m, q, rho, order: int = 48):
    """The temperature at which the mean confidence equals the accuracy (expectation consistency).

    Clarté, Loureiro, Krzakala, Zdeborová 2023, "Expectation consistency for calibration of neural
    networks": ``T`` solves ``E sigmoid(|omega| / T) = P(y = sign(omega))``. The mean confidence
    decreases from 1 to 1/2 as ``T`` grows, so the root is unique when the accuracy lies in
    ``(1/2, 1)``.
    """

    def gap(log_t):
        metrics = calibration_metrics(channel, m, q, rho, jnp.exp(log_t), order)
        return metrics["confidence"] - metrics["accuracy"]

    return _temperature_root(gap, jnp.result_type(m, q, rho, float))


def optimal_temperature(channel, m, q, rho, order: int = 48):
    """The temperature minimising the test negative log-likelihood (temperature scaling).

    The NLL is convex in the inverse temperature (the logistic loss is convex in the logit's scale),
    so its derivative in ``log T`` changes sign once, from negative to positive.
    """

    def slope(log_t):
        return -jax.grad(lambda s: calibration_metrics(channel, m, q, rho, jnp.exp(s), order)["nll"])(log_t)

    return _temperature_root(slope, jnp.result_type(m, q, rho, float))


def bayes_calibration(channel, q, rho, order: int = 48) -> dict[str, jax.Array]:
    """``confidence``, ``accuracy``, ``nll`` and ``brier`` of the Bayes-optimal classifier.

    With the posterior mean's field ``omega ~ N(0, q)`` (``q`` the Bayes-optimal overlap, from
    :class:`hdtheory.models.BayesGLM`), the Bayes predictive probability of the label ``y`` is
    ``Z(y, omega, rho - q)``: a perfectly calibrated confidence (``ece = 0``, mean confidence equal to
    the accuracy) and the smallest test negative log-likelihood and Brier score any classifier can
    reach, the reference for the metrics of :func:`calibration_metrics`.
    """
    _, w, omega, V = _half_line(q, q, rho, order)  # m = q: V = rho - q
    up = channel.partition(1.0, omega, V)  # omega > 0: the predicted label is +1
    nll = -(up * jnp.log(up) + (1 - up) * jnp.log1p(-up))
    return {
        "confidence": jnp.sum(w * up),
        "accuracy": jnp.sum(w * up),
        "nll": jnp.sum(w * nll),
        "brier": jnp.sum(w * up * (1 - up)),
    }
