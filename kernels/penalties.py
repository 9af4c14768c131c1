r"""Penalties ``r(w)`` on the weights' components, with their proximal operators, and the weight
side of the ERM replica fixed point.

Every penalty here is an elastic net: elementwise

.. math:: r(w) = \lambda_1 |w| + \frac{\lambda_2}{2} w^2 ,

- :class:`Ridge`: ``(lam / 2) w^2`` (``lambda_1 = 0``, ``lambda_2 = lam``);
- :class:`L1`: ``lam |w|`` (``lambda_1 = lam``, ``lambda_2 = 0``), the LASSO;
- :class:`ElasticNet`: ``lam (l1_ratio |w| + (1 - l1_ratio) w^2 / 2)``, scikit-learn's
  parametrisation of ``ElasticNet`` (its ``alpha`` is ``lam / n`` here, since it averages the square
  loss over the samples and we sum it). ``l1_ratio = 0`` is :class:`Ridge`, ``1`` is :class:`L1`.

``lam`` multiplies the penalty as written (CONVENTIONS: not divided by ``n``). The proximal operator
with step ``V`` is a soft threshold followed by a shrinkage,

.. math:: \mathrm{prox}_{V r}(x) = \arg\min_w \frac{(w - x)^2}{2V} + r(w)
    = \frac{\mathrm{sign}(x) \max(|x| - V \lambda_1, 0)}{1 + V \lambda_2} .

**Weight side of ERM.** With the conjugates ``(mhat, qhat, Vhat)`` of the channel side, the replica
saddle point reduces the weights to the scalar problem (Bayati & Montanari 2012, "The LASSO risk for
Gaussian matrices", for the LASSO; Thrampoulidis, Abbasi & Hassibi 2018 and Aubin et al. 2020,
"Generalization error in high-dimensional perceptrons", eq. (11), and Loureiro et al. 2021 for a
general convex penalty)

.. math:: \hat w(b) = \arg\min_w \frac{\hat V}{2} w^2 - b w + r(w)
    = \mathrm{prox}_{r / \hat V}(b / \hat V)
    = \frac{\mathrm{soft}(b, \lambda_1)}{\hat V + \lambda_2},\qquad
    b = \hat m w^* + \sqrt{\hat q}\, \xi ,

with ``w* ~ P0`` (the teacher's prior over components) and ``xi ~ N(0, 1)``, and the overlaps are

.. math:: m = \mathbb{E}[w^* \hat w],\quad q = \mathbb{E}[\hat w^2],\quad
    V = \mathbb{E}\Big[\frac{\partial \hat w}{\partial b}\Big]
      = \frac{P(|b| > \lambda_1)}{\hat V + \lambda_2}
      \;\big(= \mathbb{E}[\xi \hat w] / \sqrt{\hat q} \text{ by Stein's lemma}\big).

For ridge, ``m = rho mhat / (lam + Vhat)``, ``q = (rho mhat^2 + qhat) / (lam + Vhat)^2`` and
``V = 1 / (lam + Vhat)`` for any prior of second moment ``rho``.

**Closed form.** For a prior that is a centred Gaussian mixture ``sum_k pi_k N(0, v_k)``
(:meth:`~hdtheory.kernels.Prior.gaussian_mixture`: the Gaussian and the Gauss-Bernoulli priors),
given the component ``b ~ N(0, s_k^2)`` with ``s_k^2 = mhat^2 v_k + qhat`` and
``E[w* | b] = mhat v_k b / s_k^2``. With ``u_k = lambda_1 / s_k``, ``Q(u) = erfc(u / sqrt 2) / 2``
and ``phi`` the standard normal density, the Gaussian integrals of the soft threshold are

.. math:: P(|b| > \lambda_1) = 2 Q(u),\quad
    \mathbb{E}[b\, \mathrm{soft}(b)] = s^2\, 2 Q(u) \text{ (Stein)},\quad
    \mathbb{E}[\mathrm{soft}(b)^2] = 2 s^2 \big[(1 + u^2) Q(u) - u \phi(u)\big],

so that, with ``P = Vhat + lambda_2``,
``m = mhat sum_k pi_k v_k 2 Q(u_k) / P``, ``q = sum_k pi_k E_k[soft^2] / P^2`` and
``V = sum_k pi_k 2 Q(u_k) / P``; the fraction of non-zero estimated weights is
``P(w_hat != 0) = sum_k pi_k 2 Q(u_k)``. No quadrature.
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import erfc


class WeightAverages(eqx.Module):
    """The weight side of the fixed point: overlaps and the fraction of non-zero weights."""

    m: jax.Array
    q: jax.Array
    V: jax.Array
    nonzero: jax.Array


class Penalty(eqx.Module):
    """An elastic-net penalty ``lambda_1 |w| + lambda_2 w^2 / 2``; see the module docstring."""

    lam: jax.Array = eqx.field(converter=jnp.asarray)

    @property
    @abc.abstractmethod
    def strengths(self) -> tuple[jax.Array, jax.Array]:
        """``(lambda_1, lambda_2)``: the strengths of the ``|w|`` and the ``w^2 / 2`` terms."""

    def __call__(self, w):
        """The penalty of each component, elementwise."""
        l1, l2 = self.strengths
        return l1 * jnp.abs(w) + 0.5 * l2 * w**2

    def prox(self, x, V):
        """``argmin_w (w - x)^2 / (2 V) + r(w)``, elementwise: a soft threshold and a shrinkage."""
        l1, l2 = self.strengths
        return _soft(x, V * l1) / (1 + V * l2)

    def weight_averages(self, mhat, qhat, Vhat, weights, variances) -> WeightAverages:
        """``(m, q, V, P(w_hat != 0))`` for a teacher prior ``sum_k weights_k N(0, variances_k)``,
        in closed form (module docstring)."""
        l1, l2 = self.strengths
        precision = Vhat + l2
        m = q = nonzero = 0.0
        for pi, v in zip(weights, variances):
            s2 = mhat**2 * v + qhat
            u = l1 / jnp.sqrt(jnp.maximum(s2, jnp.finfo(jnp.result_type(s2, float)).tiny))
            tail = erfc(u / math.sqrt(2))  # P(|b| > lambda_1) = 2 Q(u)
            density = jnp.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
            m = m + pi * v * tail
            q = q + pi * s2 * ((1 + u**2) * tail - 2 * u * density)
            nonzero = nonzero + pi * tail
        return WeightAverages(m=mhat * m / precision, q=q / precision**2, V=nonzero / precision, nonzero=nonzero)


def _soft(x, t):
    """The soft threshold ``sign(x) max(|x| - t, 0)``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


class Ridge(Penalty):
    r"""``(lam / 2) w^2``; ``prox = x / (1 + V lam)``."""

    @property
    def strengths(self):
        return jnp.zeros_like(self.lam), self.lam


class L1(Penalty):
    r"""``lam |w|`` (the LASSO); ``prox = soft(x, V lam)``."""

    @property
    def strengths(self):
        return self.lam, jnp.zeros_like(self.lam)


class ElasticNet(Penalty):
    r"""``lam (l1_ratio |w| + (1 - l1_ratio) w^2 / 2)``, ``l1_ratio`` in ``[0, 1]``."""

    l1_ratio: jax.Array = eqx.field(default=0.5, converter=jnp.asarray)

    @property
    def strengths(self):
        return self.lam * self.l1_ratio, self.lam * (1 - self.l1_ratio)


PENALTIES: dict[str, type[Penalty]] = {"ridge": Ridge, "l1": L1, "elastic-net": ElasticNet}
"""The penalties by name."""
