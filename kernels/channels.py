r"""Teacher channels: the law ``P(y | z)`` of a label given the teacher's local field ``z``.

For a field ``z ~ N(omega, V)`` the channel's partition function is

.. math:: Z(y, \omega, V) = \mathbb{E}_{z \sim N(\omega, V)}\, P(y \mid z),

given in closed form with ``d/domega log Z``. ``label_quadrature`` turns integrals over the label into
weighted sums: nodes ``y_k`` and weights ``w_k``, ``w'_k`` with

.. math:: \sum_k w_k g(y_k) = \int dy\, Z(y, \omega, V) g(y), \qquad
          \sum_k w'_k g(y_k) = \int dy\, \partial_\omega Z(y, \omega, V) g(y),

two labels for the classification channels, a Gauss-Hermite rule for the regression channel.

``noise`` follows ``CONVENTIONS.md``: a variance for ``Linear`` (``y = z + sqrt(noise) xi``), a flip
probability in ``[0, 1/2)`` for ``Sign``, the variance of the Gaussian added before the sign for
``Probit`` (``y = sign(z + sqrt(noise) xi)``), the temperature of ``Logit``
(``P(y | z) = sigmoid(y z / noise)``).

``test_errors(m, q, rho)`` gives the excess and total test errors of a student whose field on a
fresh input is jointly Gaussian with the teacher's, with ``E[z^2] = rho``, ``E[z omega] = m``,
``E[omega^2] = q``: the 0-1 error of ``sign(omega)`` for the classification channels (excess: against
the noiseless ``sign(z)``; total: against the noisy label) and the mean squared error of ``omega`` for
the regression channel (excess: against ``z``; total: against ``y``, that is, plus ``noise``).
"""

import abc
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

from .quadrature import _legendre, hermite_rule, panel_rule

# A Python float: weakly typed, so it takes the dtype of the array it meets whenever float64 is
# enabled (a jnp constant would be fixed at import time, in float32 if float64 was not yet on).
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _normal_pdf(x):
    return jnp.exp(-0.5 * x**2 - _LOG_SQRT_2PI)


def _safe_log(a):
    """``log(a)``, ``-inf`` at ``a = 0`` with a zero (not NaN) derivative there."""
    positive = a > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, a, 1.0)), -jnp.inf)


def _disagreement(m, q, teacher_var):
    """``P(sign(omega) != sign(t))`` for centred Gaussians with ``E[t omega] = m``."""
    return jnp.arccos(jnp.clip(m / jnp.sqrt(teacher_var * q), -1.0, 1.0)) / jnp.pi


class Channel(eqx.Module):
    """A teacher channel ``P(y | z)`` with its Gaussian-smoothed partition function."""

    noise: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)

    classification: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def partition(self, y, omega, V):
        """``Z(y, omega, V)``."""

    @abc.abstractmethod
    def log_partition(self, y, omega, V):
        """``log Z(y, omega, V)``, computed stably."""

    @abc.abstractmethod
    def dlog_partition(self, y, omega, V):
        """``d/domega log Z(y, omega, V)``, in closed form."""

    @abc.abstractmethod
    def label_quadrature(self, omega, V, order: int):
        """``(y, w, dw)`` of shape ``omega.shape + (L,)``: see the module docstring."""

    @abc.abstractmethod
    def test_errors(self, m, q, rho):
        """``(excess, total)`` test errors for the overlaps ``m``, ``q`` and teacher variance ``rho``."""

    @abc.abstractmethod
    def sample(self, key, z):
        """Labels drawn from ``P(y | z)`` for an array of teacher fields ``z``."""

    def label_moments(self, rho):
        """``(E[y^2], E[z y])`` for a teacher field ``z ~ N(0, rho)``, in closed form; ``None`` where
        there is none. The square loss sees the labels through these alone."""
        del rho
        return None

    def residual_components(self, m, q, rho):
        """For labels linear in the teacher's field plus Gaussian noise (a mixture of such channels),
        ``((weight, slope, variance), ...)``: the residual ``y - omega`` of a student with overlaps
        ``(m, q)`` is ``N(0, variance)`` in each component, in which ``y`` moves by ``slope`` with the
        teacher's field; ``None`` for the other channels."""
        del m, q, rho
        return None

    def transition_width(self, V):
        """The scale in ``omega`` over which ``Z(y, omega, V)`` changes: ``sqrt(V)`` here, the width
        of the Gaussian smoothing that every channel has; a channel with its own noise widens it.
        Quadratures over ``omega`` put panel edges at multiples of it (no closed form depends on it).
        """
        return jnp.sqrt(V)


class _BinaryChannel(Channel):
    """``y = +-1`` with ``Z(y, omega, V) = a + b Phi(y omega / s)``, ``s = s(V)``."""

    classification = True

    @abc.abstractmethod
    def _coefficients(self, V):
        """``(a, b, s)``."""

    def partition(self, y, omega, V):
        a, b, s = self._coefficients(V)
        return a + b * ndtr(y * omega / s)

    def transition_width(self, V):
        return self._coefficients(V)[2]

    def probability(self, y, z):
        """``P(y | z)``, the law itself (``Z`` at ``V = 0``): a step at ``z = 0`` where ``s(0) = 0``."""
        a, b, s = self._coefficients(jnp.zeros((), jnp.result_type(z, float)))
        smooth = s > 0
        step = jnp.where(y * z > 0, 1.0, jnp.where(y * z < 0, 0.0, 0.5))
        return a + b * jnp.where(smooth, ndtr(y * z / jnp.where(smooth, s, 1.0)), step)

    def deterministic(self):
        """Whether the label is ``sign(z)`` itself (no flips, no noise before the sign)."""
        a, _, s = self._coefficients(jnp.zeros((), jnp.result_type(self.noise, float)))
        return (a == 0) & (s == 0)

    def log_partition(self, y, omega, V):
        a, b, s = self._coefficients(V)
        return jnp.logaddexp(_safe_log(a), jnp.log(b) + log_ndtr(y * omega / s))

    def dlog_partition(self, y, omega, V):
        a, b, s = self._coefficients(V)
        u = y * omega / s
        # b phi(u) / (a + b Phi(u)), written with log-Phi so that it stays finite for u -> -inf.
        log_ratio = jnp.log(b) - 0.5 * u**2 - _LOG_SQRT_2PI - self.log_partition(y, omega, V)
        return y * jnp.exp(log_ratio) / s

    labels = (-1.0, 1.0)

    def dpartition(self, y, omega, V):
        """``d/domega Z(y, omega, V)``, in closed form."""
        _, b, s = self._coefficients(V)
        return y * b * _normal_pdf(y * omega / s) / s

    def label_quadrature(self, omega, V, order: int):
        del order
        a, b, s = self._coefficients(V)
        y = jnp.stack(jnp.broadcast_arrays(-1.0 + 0.0 * omega, 1.0 + 0.0 * omega), axis=-1)
        u = y * omega[..., None] / s
        w = a + b * ndtr(u)
        dw = y * b * _normal_pdf(u) / s
        return y, w, dw


class Sign(_BinaryChannel):
    r"""``y = sign(z)``, flipped with probability ``noise`` in ``[0, 1/2)``.

    ``Z = noise + (1 - 2 noise) Phi(y omega / sqrt(V))``.
    """

    def _coefficients(self, V):
        return self.noise, 1 - 2 * self.noise, jnp.sqrt(V)

    def label_moments(self, rho):
        """``E[y | z] = (1 - 2 noise) sign(z)``: ``E[z y] = (1 - 2 noise) sqrt(2 rho / pi)``; ``y^2 = 1``."""
        return 1.0 + 0.0 * rho, (1 - 2 * self.noise) * jnp.sqrt(2 * rho / jnp.pi)

    def test_errors(self, m, q, rho):
        excess = _disagreement(m, q, rho)
        return excess, self.noise + (1 - 2 * self.noise) * excess

    def sample(self, key, z):
        flip = jax.random.bernoulli(key, self.noise, jnp.shape(z))
        y = jnp.where(z >= 0, 1.0, -1.0).astype(jnp.result_type(z))
        return jnp.where(flip, -y, y)


class Probit(_BinaryChannel):
    r"""``y = sign(z + sqrt(noise) xi)``; ``Z = Phi(y omega / sqrt(V + noise))``."""

    def _coefficients(self, V):
        return 0.0 * V, 1.0 + 0.0 * V, jnp.sqrt(V + self.noise)

    def label_moments(self, rho):
        """``E[y | z] = 2 Phi(z / sqrt(noise)) - 1``, so by Stein's lemma
        ``E[z y] = rho E[d_z E[y | z]] = rho sqrt(2 / (pi (rho + noise)))``; ``y^2 = 1``."""
        return 1.0 + 0.0 * rho, rho * jnp.sqrt(2 / (jnp.pi * (rho + self.noise)))

    def test_errors(self, m, q, rho):
        return _disagreement(m, q, rho), _disagreement(m, q, rho + self.noise)

    def sample(self, key, z):
        xi = jax.random.normal(key, jnp.shape(z), jnp.result_type(z))
        return jnp.where(z + jnp.sqrt(self.noise) * xi >= 0, 1.0, -1.0).astype(xi.dtype)


class Random(_BinaryChannel):
    r"""Random labels: ``y = +-1`` with probability 1/2 each, independent of ``z``; ``Z = 1/2``.

    The storage capacity problem of the perceptron (Gardner 1988; Cover 1965: separable below
    ``alpha = 2``), and the random-label ERM of Gerace, Krzakala, Loureiro, Stephan, Zdeborova 2022,
    "Gaussian universality of perceptrons with random labels". ``noise`` must be 0.
    """

    def _coefficients(self, V):
        return 0.5 + 0.0 * V, 0.0 * V, jnp.sqrt(V)

    def log_partition(self, y, omega, V):
        return jnp.log(0.5) + 0.0 * (y * omega + V)

    def dlog_partition(self, y, omega, V):
        return 0.0 * (y * omega + V)

    def label_moments(self, rho):
        """``E[y^2] = 1``, ``E[z y] = 0``."""
        return 1.0 + 0.0 * rho, 0.0 * rho

    def test_errors(self, m, q, rho):
        half = 0.5 + 0.0 * (m + q + rho)
        return half, half

    def sample(self, key, z):
        return jnp.where(jax.random.bernoulli(key, 0.5, jnp.shape(z)), 1.0, -1.0).astype(jnp.result_type(z, float))


class Logit(Channel):
    r"""``P(y | z) = sigmoid(y z / noise)``: a logistic teacher of temperature ``noise >= 0``.

    The label is a coin flip biased by the teacher's field, as in Clarté et al. 2022 ("Theoretical
    characterization of uncertainty in high-dimensional linear classification"), whose inverse
    temperature is ``1 / noise``; ``noise = 0`` is the sign teacher, ``Z = Phi(y omega / sqrt(V))``.
    For ``noise > 0`` no closed form exists: ``Z(y, omega, V) = E_xi sigmoid(y (omega + sqrt(V) xi) /
    noise)`` is a Gauss-Hermite sum of ``order`` nodes, accurate while ``noise`` is not much smaller
    than ``sqrt(V)``.
    """

    classification = True
    labels = (-1.0, 1.0)
    order: int = eqx.field(default=48, static=True)

    def _fields(self, y, omega, V):
        xi, w = hermite_rule(self.order, jnp.result_type(omega, V, float))
        y, omega, V = (jnp.asarray(a)[..., None] for a in (y, omega, V))
        temperature = jnp.where(self.noise > 0, self.noise, 1.0)
        return y * (omega + jnp.sqrt(V) * xi) / temperature, w, y

    def _sign(self, y, omega, V):
        """``Phi(y omega / sqrt(V))`` and its ``omega``-derivative: the ``noise = 0`` teacher."""
        s = jnp.sqrt(jnp.maximum(V, jnp.finfo(jnp.result_type(omega, V, float)).tiny))
        return ndtr(y * omega / s), y * _normal_pdf(y * omega / s) / s

    def partition(self, y, omega, V):
        u, w, _ = self._fields(y, omega, V)
        return jnp.where(self.noise > 0, jnp.sum(w * jax.nn.sigmoid(u), axis=-1), self._sign(y, omega, V)[0])

    def log_partition(self, y, omega, V):
        return jnp.log(self.partition(y, omega, V))

    def transition_width(self, V):
        # sigmoid(u / T) is within 2% of Phi(u / (1.7 T)).
        return jnp.sqrt(V + (1.7 * self.noise) ** 2)

    def dpartition(self, y, omega, V):
        """``d/domega Z(y, omega, V)``."""
        u, w, y_ = self._fields(y, omega, V)
        temperature = jnp.where(self.noise > 0, self.noise, 1.0)
        smooth = jnp.sum(w * jax.nn.sigmoid(u) * jax.nn.sigmoid(-u), axis=-1) * y_[..., 0] / temperature
        return jnp.where(self.noise > 0, smooth, self._sign(y, omega, V)[1])

    def dlog_partition(self, y, omega, V):
        return self.dpartition(y, omega, V) / self.partition(y, omega, V)

    def probability(self, y, z):
        """``P(y | z) = sigmoid(y z / noise)``; the step ``1(y z > 0)`` at ``noise = 0``."""
        temperature = jnp.where(self.noise > 0, self.noise, 1.0)
        step = jnp.where(y * z > 0, 1.0, jnp.where(y * z < 0, 0.0, 0.5))
        return jnp.where(self.noise > 0, jax.nn.sigmoid(y * z / temperature), step)

    def deterministic(self):
        """Whether the label is ``sign(z)`` itself (``noise = 0``)."""
        return self.noise == 0

    def label_quadrature(self, omega, V, order: int):
        del order
        y = jnp.stack(jnp.broadcast_arrays(-1.0 + 0.0 * omega, 1.0 + 0.0 * omega), axis=-1)
        omega = omega[..., None]
        return y, self.partition(y, omega, V), self.dpartition(y, omega, V)

    def test_errors(self, m, q, rho):
        # The student's field is sqrt(q) eta; given eta, the teacher's is N(m eta / sqrt(q), V0). By
        # symmetry the total error is 2 E[1(eta > 0) Z(-1, m eta / sqrt(q), V0)]: panels cut at 0.
        eta, w = panel_rule(jnp.zeros((1,), jnp.result_type(m, q, float)), 32)
        V0 = jnp.maximum(rho - m**2 / q, 0.0)
        wrong = self.partition(-1.0, m / jnp.sqrt(q) * eta, V0)
        return _disagreement(m, q, rho), 2 * jnp.sum(jnp.where(eta > 0, w * wrong, 0.0))

    def sample(self, key, z):
        temperature = jnp.where(self.noise > 0, self.noise, 1.0)
        up = jnp.where(self.noise > 0, jax.random.bernoulli(key, jax.nn.sigmoid(z / temperature)), z >= 0)
        return jnp.where(up, 1.0, -1.0).astype(jnp.result_type(z))


class Linear(Channel):
    r"""``y = z + sqrt(noise) xi``; ``Z = N(y; omega, V + noise)``, ``d log Z = (y - omega)/(V + noise)``.

    Labels are integrated by a Gauss-Hermite rule: ``y_k = omega + sqrt(V + noise) eta_k``.
    """

    classification = False

    def partition(self, y, omega, V):
        s2 = V + self.noise
        return jnp.exp(-0.5 * (y - omega) ** 2 / s2) / jnp.sqrt(2 * jnp.pi * s2)

    def log_partition(self, y, omega, V):
        s2 = V + self.noise
        return -0.5 * (y - omega) ** 2 / s2 - 0.5 * jnp.log(2 * jnp.pi * s2)

    def dlog_partition(self, y, omega, V):
        return (y - omega) / (V + self.noise)

    def label_moments(self, rho):
        return rho + self.noise, rho

    def residual_components(self, m, q, rho):
        """``((1, 1, rho + noise - 2 m + q),)``: the residual ``y - omega`` is Gaussian (see
        :meth:`Outliers.residual_components`)."""
        return ((1.0, 1.0, rho + self.noise - 2 * m + q),)

    def label_quadrature(self, omega, V, order: int):
        eta, weights = hermite_rule(order, jnp.result_type(omega))
        s = jnp.sqrt(V + self.noise)
        y = omega[..., None] + s * eta
        w = jnp.broadcast_to(weights, y.shape)
        return y, w, w * eta / s

    def test_errors(self, m, q, rho):
        excess = rho - 2 * m + q
        return excess, excess + self.noise

    def output_moments(self, omega, V):
        """``(E phi(z), E phi(z)^2)`` of the noiseless output ``phi(z) = z``, ``z ~ N(omega, V)``."""
        return omega, omega**2 + V

    def sample(self, key, z):
        xi = jax.random.normal(key, jnp.shape(z), jnp.result_type(z))
        return z + jnp.sqrt(self.noise) * xi


class Outliers(Channel):
    r"""Labels contaminated by outliers (Vilucchio, Troiani, Erba & Krzakala 2023, "Asymptotic
    characterisation of robust empirical risk minimisation performance in the presence of outliers"):
    with probability ``1 - epsilon`` an inlier ``y = z + sqrt(noise) xi``, with probability ``epsilon``
    an outlier ``y = beta z + sqrt(noise_out) xi``. The paper's ``Delta_in`` is ``noise`` and its
    ``Delta_out`` is ``noise_out`` (variances, as here); ``epsilon = 0`` is :class:`Linear`.

    ``Z = (1 - epsilon) N(y; omega, V + noise) + epsilon N(y; beta omega, beta^2 V + noise_out)``;
    ``label_quadrature`` is a Gauss-Hermite rule for each component (``2 order`` labels).
    ``test_errors``: the excess error is the mean squared error against the clean field ``z``,
    ``rho - 2 m + q`` (the paper's generalisation error), the total one that against a fresh
    contaminated label.
    """

    classification = False
    epsilon: jax.Array = eqx.field(default=0.1, converter=jnp.asarray)
    beta: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)
    noise_out: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)

    def _components(self):
        """``((weight, slope, noise), ...)``: the two linear channels of the mixture."""
        return ((1 - self.epsilon, 1.0, self.noise), (self.epsilon, self.beta, self.noise_out))

    def partition(self, y, omega, V):
        return sum(w * jnp.exp(_log_normal(y, b * omega, b**2 * V + n)) for w, b, n in self._components())

    def log_partition(self, y, omega, V):
        return jnp.log(self.partition(y, omega, V))

    def dlog_partition(self, y, omega, V):
        dZ = sum(
            w * b * (y - b * omega) / (b**2 * V + n) * jnp.exp(_log_normal(y, b * omega, b**2 * V + n))
            for w, b, n in self._components()
        )
        return dZ / self.partition(y, omega, V)

    def label_moments(self, rho):
        """``E y^2 = (1 - epsilon)(rho + noise) + epsilon (beta^2 rho + noise_out)``,
        ``E z y = (1 - epsilon + epsilon beta) rho``."""
        return (
            sum(w * (b**2 * rho + n) for w, b, n in self._components()),
            sum(w * b * rho for w, b, _ in self._components()),
        )

    def residual_components(self, m, q, rho):
        """``((weight, slope, variance), ...)``: given its component, the residual ``y - omega`` of a
        student of overlaps ``(m, q)`` is ``N(0, b^2 rho + noise_b - 2 b m + q)`` and the label moves
        by ``b`` with the teacher's field."""
        return tuple((w, b, b**2 * rho + n - 2 * b * m + q) for w, b, n in self._components())

    def label_quadrature(self, omega, V, order: int):
        eta, weights = hermite_rule(order, jnp.result_type(omega))
        ys, ws, dws = [], [], []
        for w, b, n in self._components():
            s = jnp.sqrt(b**2 * V + n)
            ys.append(b * omega[..., None] + s * eta)
            ws.append(jnp.broadcast_to(w * weights, ys[-1].shape))
            dws.append(ws[-1] * b * eta / s)
        return tuple(jnp.concatenate(a, axis=-1) for a in (ys, ws, dws))

    def test_errors(self, m, q, rho):
        excess = rho - 2 * m + q
        return excess, sum(w * (b**2 * rho + n - 2 * b * m + q) for w, b, n in self._components())

    def sample(self, key, z):
        flip_key, xi_key = jax.random.split(key)
        outlier = jax.random.bernoulli(flip_key, self.epsilon, jnp.shape(z))
        xi = jax.random.normal(xi_key, jnp.shape(z), jnp.result_type(z))
        inlier = z + jnp.sqrt(self.noise) * xi
        return jnp.where(outlier, self.beta * z + jnp.sqrt(self.noise_out) * xi, inlier)


def _sqrt0(x):
    """``sqrt(x)`` with a zero (not infinite) derivative at ``x = 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _log_normal(y, mean, var):
    return -0.5 * (y - mean) ** 2 / var - 0.5 * jnp.log(2 * jnp.pi * var)


def _log_tail(y, omega, V, noise):
    """``log Phi(t)``, ``t = (omega noise + y V) / sqrt(V noise (V + noise))``: the log-probability
    that ``z > 0`` given ``z ~ N(omega, V)`` and ``y = z + sqrt(noise) xi``; ``0`` at ``noise = 0``."""
    positive = noise > 0
    n = jnp.where(positive, noise, 1.0)
    t = (omega * n + y * V) / jnp.sqrt(V * n * (V + n))
    return jnp.where(positive, log_ndtr(t), 0.0)


class _DeterministicOutput(Channel):
    r"""``y = phi(z) + sqrt(noise) xi`` with ``phi`` smooth except at ``z = 0``.

    ``label_quadrature`` integrates over ``z ~ N(omega, V)`` by Gauss-Legendre panels (``order``
    nodes each) cut at ``z = 0`` and at ``z = +-{1, 4, 16} V / (|omega| + sqrt(V))`` and
    ``+-{1, 4, 16} sqrt(noise)`` (and at ``z - omega = sqrt(V) {0, +-2, +-4}``, where the Gaussian
    weight turns), and over ``xi`` by a Gauss-Hermite rule of ``order`` nodes: ``L = 19 order^2`` labels ``y = phi(z) + sqrt(noise) xi``, weights ``w`` and
    ``dw = w (z - omega) / V`` (Stein's lemma). ``dlog_partition`` is the derivative of the closed
    form ``log_partition``, by automatic differentiation.
    """

    classification = False

    @abc.abstractmethod
    def _phi(self, z):
        """The noiseless output."""

    def partition(self, y, omega, V):
        return jnp.exp(self.log_partition(y, omega, V))

    def dlog_partition(self, y, omega, V):
        y, omega, V = jnp.broadcast_arrays(y, omega, V)
        return jax.jvp(lambda o: self.log_partition(y, o, V), (omega,), (jnp.ones_like(omega),))[1]

    def label_quadrature(self, omega, V, order: int):
        dtype = jnp.result_type(omega, V)
        s = jnp.sqrt(V)
        cut = (-omega / s)[..., None]
        # Finer panels beside the cut, on the scales where the integrand turns: |z| ~ V / |omega|
        # (the two branches' posterior weights) and |z| ~ sqrt(noise).
        scales = jnp.stack(jnp.broadcast_arrays(s / (jnp.abs(omega) + s), _sqrt0(self.noise / V)), -1)
        offsets = jnp.concatenate([k * scales for k in (1, 4, 16, -1, -4, -16)], axis=-1)
        fixed = jnp.broadcast_to(jnp.asarray([-4.0, -2.0, 0.0, 2.0, 4.0], cut.dtype), cut.shape[:-1] + (5,))
        zeta, w_zeta = panel_rule(jnp.concatenate([cut, cut + offsets, fixed], axis=-1), order)
        eta, w_eta = hermite_rule(order, dtype)
        z = omega[..., None] + s * zeta
        y = self._phi(z)[..., None] + _sqrt0(self.noise) * eta
        w = w_zeta[..., None] * w_eta
        dw = w * (zeta / s)[..., None]
        flat = jnp.shape(y)[:-2] + (-1,)
        return y.reshape(flat), w.reshape(flat), dw.reshape(flat)

    def sample(self, key, z):
        xi = jax.random.normal(key, jnp.shape(z), jnp.result_type(z))
        return self._phi(z) + _sqrt0(self.noise) * xi


class ReLU(_DeterministicOutput):
    r"""``y = max(z, 0) + sqrt(noise) xi``, ``noise > 0`` (the noiseless law has an atom at 0).

    ``Z = N(y; 0, noise) Phi(-omega / sqrt(V)) + N(y; omega, V + noise) Phi(t)`` with
    ``t = (omega noise + y V) / sqrt(V noise (V + noise))``. ``test_errors`` are those of the
    linear prediction ``omega``: ``E (omega - relu(z))^2 = rho / 2 - m + q``, plus ``noise``.
    """

    def _phi(self, z):
        return jnp.maximum(z, 0.0)

    def log_partition(self, y, omega, V):
        off = _log_normal(y, 0.0, self.noise) + log_ndtr(-omega / jnp.sqrt(V))
        on = _log_normal(y, omega, V + self.noise) + _log_tail(y, omega, V, self.noise)
        return jnp.logaddexp(off, on)

    def test_errors(self, m, q, rho):
        excess = rho / 2 - m + q
        return excess, excess + self.noise

    def output_moments(self, omega, V):
        """``(E relu(z), E relu(z)^2)`` for ``z ~ N(omega, V)``, in closed form."""
        s = jnp.sqrt(V)
        cdf, pdf = ndtr(omega / s), _normal_pdf(omega / s)
        return omega * cdf + s * pdf, (omega**2 + V) * cdf + omega * s * pdf


class Abs(_DeterministicOutput):
    r"""Real phase retrieval: ``y = |z| + sqrt(noise) xi``, ``noise >= 0``.

    ``Z = N(y; omega, V + noise) Phi(t_+) + N(y; -omega, V + noise) Phi(t_-)`` with
    ``t_+- = (+-omega noise + y V) / sqrt(V noise (V + noise))``; at ``noise = 0``,
    ``Z = N(y; omega, V) + N(y; -omega, V)`` on ``y >= 0``. ``test_errors`` are those of the linear
    prediction ``omega``: ``E (omega - |z|)^2 = rho + q``, plus ``noise``.
    """

    def _phi(self, z):
        return jnp.abs(z)

    def log_partition(self, y, omega, V):
        var = V + self.noise
        plus = _log_normal(y, omega, var) + _log_tail(y, omega, V, self.noise)
        minus = _log_normal(y, -omega, var) + _log_tail(y, -omega, V, self.noise)
        return jnp.logaddexp(plus, minus)

    def test_errors(self, m, q, rho):
        del m
        return rho + q, rho + q + self.noise

    def output_moments(self, omega, V):
        """``(E |z|, E z^2)`` for ``z ~ N(omega, V)``, in closed form."""
        s = jnp.sqrt(V)
        return omega * (1 - 2 * ndtr(-omega / s)) + 2 * s * _normal_pdf(omega / s), omega**2 + V


CHANNELS: dict[str, type[Channel]] = {
    "linear": Linear, "sign": Sign, "probit": Probit, "logistic": Logit, "random": Random
}
"""The teacher channels of the supervised models (``ERM``; its ``teacher="outliers"`` is
:class:`Outliers`, whose fields the other models do not declare)."""

GLM_CHANNELS: dict[str, type[Channel]] = {
    "linear": Linear, "sign": Sign, "probit": Probit, "logistic": Logit, "relu": ReLU, "abs": Abs
}
"""Every channel, including those without a classification or linear structure (ReLU, phase
retrieval), used by the Bayes-optimal generalised linear model."""


class NoiseSensitivity(NamedTuple):
    """The result of :func:`noise_sensitivity_exponent`."""

    exponent: int | float
    """``beta*``, the least ``b`` with ``c_b != 0``; ``math.inf`` where none is non-zero up to ``b_max``."""
    coefficient: float
    """``c_{beta*} = E[sigma(z)^beta* (z^2 - 1)]``; ``0.0`` where the exponent is infinite."""
    projections: np.ndarray
    """``c_b`` for ``b = 1, ..., b_max``."""


_NSE_BOUND = 20
"""The rule of :func:`noise_sensitivity_exponent` covers ``|z| <= 20``: unit panels, edges at the integers."""


def noise_sensitivity_exponent(link, b_max: int = 8, rtol: float | None = None, order: int = 16) -> NoiseSensitivity:
    r"""The noise sensitivity exponent of a link ``sigma`` (Defilippis, Krzakala, Loureiro and Maillard
    2026, "A noise sensitivity exponent controls large statistical-to-computational gaps in single- and
    multi-index models", arXiv:2603.17896):

    .. math:: \beta^\star(\sigma) = \min\{\beta \in \mathbb{N} : c_\beta \neq 0\}, \qquad
              c_b = \mathbb{E}_{z \sim N(0, 1)}\big[\sigma(z)^b (z^2 - 1)\big],

    the first ``b`` at which ``sigma^b`` projects onto ``He_2``. For the labels
    ``y = sigma(z) + sqrt(Delta) xi`` (``Delta = 1 / lambda``, the paper's signal-to-noise ratio
    ``lambda``) the likelihood ratio is ``exp(t x - t^2 / 2) = sum_n He_n(x) t^n / n!`` with
    ``t = sigma / sqrt(Delta)``, ``x = y / sqrt(Delta)``, so that
    ``E[z^2 - 1 | y] ~ Delta^(-beta*/2) He_beta*(x) c_beta* / beta*!`` as ``Delta -> inf`` and the weak
    recovery threshold of Bayes-optimal AMP, ``alpha_c = 1 / E_y (E[z^2 | y] - 1)^2``
    (:class:`~hdtheory.MultiIndex`'s ``alpha_c`` at ``k = 1``), grows as
    ``beta*! Delta^beta* / c_beta*^2``, while the information-theoretic one grows as ``Delta``: a gap
    ``Delta^(beta* - 1)``. It matters for even links; one with a first Hermite coefficient
    (``E[sigma(z) z] != 0``) is learned at any ``alpha``. Even polynomials of low degree have
    ``beta* <= 2``; ``beta* >= 3`` needs a fine-tuned link.

    ``c_b`` is integrated on Gauss-Legendre panels of unit width over ``|z| <= 20`` with edges at the
    integers (``order`` nodes each, as :func:`~hdtheory.kernels.panel_rule`, in NumPy): exact to rounding for
    polynomials of moderate degree, exponentially convergent for links smooth between the integers
    (``|z|`` and other kinks at 0), algebraically for a kink elsewhere. ``c_b`` counts as zero where
    ``|c_b| <= rtol sqrt(2 E[sigma^(2b)])``, a fraction of its Cauchy-Schwarz bound (``rtol`` by
    default the square root of the epsilon of ``link``'s values). Evaluated eagerly on the host (also
    under ``jit``: ``link`` must not depend on traced values): ``link`` on nodes of the default float
    dtype, the sums in float64 (``sigma^b`` overflows float32 in the tails).

    Args:
        link: ``sigma``, a function of an array of fields, elementwise.
        b_max: the largest ``b`` tried, an integer ``>= 1``.
        rtol: the relative tolerance below which a projection is zero, in ``(0, 1)``.
        order: Gauss-Legendre nodes per unit panel, an integer ``>= 1``.
    """
    if not callable(link):
        raise ValueError(f"parameter 'link' must be a callable sigma(z) of an array of fields, got {link!r}")
    for name, value in (("b_max", b_max), ("order", order)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"parameter {name!r} must be an integer >= 1, got {value!r}")
    if rtol is not None and not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"parameter 'rtol' must be a number in (0, 1), got {rtol!r}")
    x, weights = _legendre(int(order))
    left = np.arange(-_NSE_BOUND, _NSE_BOUND)[:, None]  # the unit panels [left, left + 1]
    z = (left + 0.5 * (x + 1)).ravel()
    w = np.tile(0.5 * weights, left.size) * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    with jax.ensure_compile_time_eval():
        values = jnp.asarray(link(jnp.asarray(z, jnp.result_type(float))))
    if values.shape != z.shape:
        raise ValueError(f"parameter 'link' must map fields elementwise: {z.shape} fields gave {values.shape}")
    # In float64 whatever the link's dtype: sigma^b overflows float32 in the tails at moderate b.
    with np.errstate(over="ignore", invalid="ignore"):
        powers = np.asarray(values, np.float64)[None, :] ** np.arange(1, int(b_max) + 1)[:, None]
        c = powers @ (w * (z**2 - 1))
        bound = np.sqrt(2 * (powers**2 @ w))
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(bound))):
        raise ValueError(f"parameter 'link': sigma(z)^b is not finite for |z| <= {_NSE_BOUND:g}, b <= {b_max}")
    tol = float(np.sqrt(np.finfo(jnp.result_type(values.dtype, jnp.float32)).eps)) if rtol is None else rtol
    nonzero = np.flatnonzero(np.abs(c) > tol * bound)
    if nonzero.size == 0:
        return NoiseSensitivity(math.inf, 0.0, c)
    return NoiseSensitivity(int(nonzero[0]) + 1, float(c[nonzero[0]]), c)
