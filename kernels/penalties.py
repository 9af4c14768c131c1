r"""Penalties ``r(w)`` on the weights' components, with their proximal operators, and the weight
side of the ERM replica fixed point.

The elastic nets, elementwise

.. math:: r(w) = \lambda_1 |w| + \frac{\lambda_2}{2} w^2 ,

- :class:`Ridge`: ``(lam / 2) w^2`` (``lambda_1 = 0``, ``lambda_2 = lam``);
- :class:`L1`: ``lam |w|`` (``lambda_1 = lam``, ``lambda_2 = 0``), the LASSO;
- :class:`ElasticNet`: ``lam (l1_ratio |w| + (1 - l1_ratio) w^2 / 2)``, scikit-learn's
  parametrisation of ``ElasticNet`` (its ``alpha`` is ``lam / n`` here, since it averages the square
  loss over the samples and we sum it). ``l1_ratio = 0`` is :class:`Ridge`, ``1`` is :class:`L1`.

and :class:`LP`, ``(lam / p) |w|^p`` with ``p`` in ``[1, 2]`` (bridge regression, Frank & Friedman
1993): ``p = 1`` is :class:`L1` and ``p = 2`` is :class:`Ridge`, exactly (a paper writing
``lam' |w|_p^p`` has ``lam = p lam'`` here), optionally plus an elastic net
``l1 |w| + (l2 / 2) w^2`` and a second power ``(lam2 / p2) |w|^{p2}`` (the weight side of adversarial
training, :class:`~hdtheory.Adversarial`: against an lp attack, whose dual exponent is ``p``, above 2
for an attack exponent below 2, which :class:`LP` allows, with the elastic net or the second power the
penalty; against an l-infinity attack, with ``l1`` its conjugate and ``lam``, ``p`` the penalty).
The weight averages also give ``E|w_hat|^k``, ``k = p`` unless another is asked (``E|w_hat|`` for
the elastic nets), the norm an attack sees.

``lam`` multiplies the penalty as written (CONVENTIONS: not divided by ``n``). The proximal operator
of an elastic net with step ``V`` is a soft threshold followed by a shrinkage,

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
``P(w_hat != 0) = sum_k pi_k 2 Q(u_k)``, and the mean absolute weight
``E|w_hat| = sum_k pi_k [2 s_k phi(u_k) - lambda_1 2 Q(u_k)] / P``. No quadrature.

**lp penalty.** The prox ``w = sign(x) u`` of ``t |w|^p / p`` (``t = V lam``) solves
``u + t u^{p - 1} = |x|`` for ``u >= 0`` (with an elastic net ``l1 |w| + (l2 / 2) w^2`` added,
``(1 + V l2) u + t u^{p - 1} = (|x| - V l1)_+``: the same prox of the soft threshold, shrunk; with a
second power ``(t2 / p2) |w|^{p2}``, ``t2 u^{p2 - 1}`` added, the same Newton iteration)
(:func:`lp_prox`: Newton's method in ``log u``, where the terms are convex and increasing, from an
upper bound of the root, so that the iterates decrease to it monotonically; its derivatives by the
implicit function theorem). The weight averages have no
closed form: with ``b = s_k z``, ``z ~ N(0, 1)``, in component ``k`` of the prior,
``E_k[d w_hat / d b] = E_k[b w_hat] / s_k^2`` (Stein), so that
``m = mhat sum_k pi_k v_k E_k[b w_hat] / s_k^2``, ``V = sum_k pi_k E_k[b w_hat] / s_k^2`` and
``q = sum_k pi_k E_k[w_hat^2]``, each ``E_k`` a Gauss-Legendre panel rule in ``z``
(:func:`~hdtheory.kernels.panel_rule`, ``order`` nodes per panel) with edges at ``0`` (where
``w_hat ~ |b|^{1 / (p - 1)}`` is not analytic), at ``+-lam / s_k`` (the threshold ``|b| = lam`` of the
LASSO, about which ``w_hat`` turns sharply as ``p -> 1``; for ``p > 2``, at ``|b| = (Vhat + l2) u*``,
``u* = (lam (p - 1) / (Vhat + l2))^{-1 / (p - 2)}``, where the prox turns from linear to saturating,
sharply as ``p -> inf``) and at ``+-3``; with an ``l1`` term, at the threshold ``+-l1 / s_k`` and
the two above moved out by it; with a second power, at ``+-(l1 + lam2) / s_k`` too. For ``p > 1``
every weight above the ``l1`` threshold is non-zero (``P(w_hat != 0) = P(|b| > l1)``); a power of
exponent 1 adds its strength to the threshold (at ``p = 1`` the LASSO's).

**Replicon.** The weight side of the replicon (de Almeida-Thouless) eigenvalue of the replica-symmetric
fixed point (:meth:`hdtheory.ERM.replicon`) is ``E[(d w_hat / d b)^2]`` over the same law of ``b``
(:meth:`Penalty.replicon`): ``P(|b| > lambda_1) / (Vhat + lambda_2)^2`` for the elastic nets (the
soft threshold's slope is ``1 / (Vhat + lambda_2)`` beyond it, zero below), ``1 / (lam + Vhat)^2``
for the ridge. For :class:`LP` on the panels of its weight averages, the slope the implicit
derivative of :func:`lp_prox`, ``d w_hat / d b = 1 / (c (1 + t (p - 1) u^{p - 2} + t2 (p2 - 1)
u^{p2 - 2}))`` beyond the ``l1`` threshold (``u = |w_hat|``, ``c = Vhat + l2``, ``t = lam / c``,
``t2 = lam2 / c``): for ``1 < p < 2`` it vanishes as ``u -> 0``, for ``p > 2`` it is ``1 / c`` there.

**Sup norm.** An elastic net plus ``force d max_i |w_i|`` (the weight side of an l1 attack,
:class:`~hdtheory.Adversarial`) is not separable, but clips the weights at ``R = max_i |w_i|``:
:class:`Clipped`, whose weight averages are the elastic net's closed forms cut at ``R``, with ``R`` the
root of the multipliers' mass.
"""

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from . import quadrature, roots


class WeightAverages(eqx.Module):
    """The weight side of the fixed point: overlaps, the fraction of non-zero weights and
    ``moment = E|w_hat|^p``, ``p`` the exponent of the penalty's non-quadratic term (1 for the elastic
    nets: ``|w|_1 / d``, the norm an l-infinity attack sees)."""

    m: jax.Array
    q: jax.Array
    V: jax.Array
    nonzero: jax.Array
    moment: jax.Array


class Penalty(eqx.Module):
    """A separable penalty ``sum_i r(w_i)`` of strength ``lam``; see the module docstring."""

    lam: jax.Array = eqx.field(converter=jnp.asarray)

    @abc.abstractmethod
    def __call__(self, w):
        """The penalty of each component, elementwise."""

    @abc.abstractmethod
    def prox(self, x, V):
        """``argmin_w (w - x)^2 / (2 V) + r(w)``, elementwise."""

    @abc.abstractmethod
    def min_subgradient(self, w, g):
        """The element of least magnitude of ``g + dr(w)`` (``dr`` the subdifferential), elementwise:
        zero at the minimiser of a smooth term of gradient ``g`` plus the penalty."""

    @abc.abstractmethod
    def weight_averages(self, mhat, qhat, Vhat, weights, variances) -> WeightAverages:
        """``(m, q, V, P(w_hat != 0))`` for a teacher prior ``sum_k weights_k N(0, variances_k)``
        (module docstring)."""

    @abc.abstractmethod
    def replicon(self, mhat, qhat, Vhat, weights, variances) -> jax.Array:
        """``E[(d w_hat / d b)^2]``, the weight side of the replicon, for the prior of
        :meth:`weight_averages` (module docstring)."""


class ElasticNetFamily(Penalty):
    """An elastic-net penalty ``lambda_1 |w| + lambda_2 w^2 / 2``; see the module docstring."""

    @property
    @abc.abstractmethod
    def strengths(self) -> tuple[jax.Array, jax.Array]:
        """``(lambda_1, lambda_2)``: the strengths of the ``|w|`` and the ``w^2 / 2`` terms."""

    def __call__(self, w):
        l1, l2 = self.strengths
        return l1 * jnp.abs(w) + 0.5 * l2 * w**2

    def plus_l1(self, extra) -> "Strengths":
        """This penalty plus ``extra |w|`` (the l1 term of an l-infinity attack's conjugate)."""
        l1, l2 = self.strengths
        return Strengths(l1 + extra, l2)

    def prox(self, x, V):
        """A soft threshold and a shrinkage."""
        l1, l2 = self.strengths
        return _soft(x, V * l1) / (1 + V * l2)

    def min_subgradient(self, w, g):
        l1, l2 = self.strengths
        g = g + l2 * w
        return jnp.where(w != 0, g + l1 * jnp.sign(w), _soft(g, l1))

    def weight_averages(self, mhat, qhat, Vhat, weights, variances) -> WeightAverages:
        """In closed form (module docstring)."""
        l1, l2 = self.strengths
        precision = Vhat + l2
        m = q = nonzero = moment = 0.0
        for pi, v in zip(weights, variances):
            tail, first, second = _excess_moments(l1, jnp.sqrt(_floored(mhat**2 * v + qhat)))
            m = m + pi * v * tail
            q = q + pi * second
            nonzero = nonzero + pi * tail
            moment = moment + pi * first  # E|soft(b, lambda_1)|
        return WeightAverages(
            m=mhat * m / precision, q=q / precision**2, V=nonzero / precision, nonzero=nonzero,
            moment=moment / precision,
        )

    def replicon(self, mhat, qhat, Vhat, weights, variances) -> jax.Array:
        """``P(|b| > lambda_1) / (Vhat + lambda_2)^2`` in closed form (module docstring)."""
        l1, l2 = self.strengths
        tail = sum(pi * _excess_moments(l1, jnp.sqrt(_floored(mhat**2 * v + qhat)))[0] for pi, v in zip(weights, variances))
        return tail / (Vhat + l2) ** 2

    def clipped(self, force) -> "Clipped":
        """This penalty plus ``force d max_i |w_i|`` (the l1 attack's sup norm): :class:`Clipped`."""
        return Clipped(force, self)


def _excess_moments(T, s):
    """``(P(|b| > T), E(|b| - T)_+, E(|b| - T)_+^2)`` for ``b ~ N(0, s^2)`` and ``T >= 0``: with
    ``u = T / s``, ``2 Q(u)``, ``2 (s phi(u) - T Q(u))`` and ``2 s^2 ((1 + u^2) Q(u) - u phi(u))``."""
    u = T / s
    tail = erfc(u / math.sqrt(2))
    density = jnp.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)
    return tail, 2 * s * density - T * tail, s**2 * ((1 + u**2) * tail - 2 * u * density)


_CLIP_STEPS = 100
"""At most this many safeguarded Newton steps for the radius of :class:`Clipped`."""


class Clipped(eqx.Module):
    r"""The weight side of an elastic net plus ``force d max_i |w_i|``: the box ``|w_i| <= R``.

    A penalty ``f max_i |w_i|`` of strength ``f = force d``, of the order of the loss (the margin
    shift ``eps max_i |w_i|`` of an l1 attack, summed over ``n = alpha d`` samples,
    :class:`~hdtheory.Adversarial`), is not separable, but at the minimiser it acts as the constraint
    ``|w_i| <= R``, ``R = max_i |w_i|``, with a multiplier ``mu_i >= 0`` on each clipped component and
    ``sum_i mu_i = f`` (the subgradient of the sup norm: a convex combination of the signed basis
    vectors of its maximisers). In the scalar problem of the weight side (module docstring) the
    component is the elastic net's, clipped,

    .. math:: \hat w(b) = \mathrm{clip}\Big(rac{\mathrm{soft}(b, \lambda_1)}{\hat V + \lambda_2}, R\Big),
        \qquad \mathbb{E}ig(|b| - \lambda_1 - (\hat V + \lambda_2) Rig)_+ = \mathrm{force} ,

    its multiplier ``(|b| - T_2)_+``, ``T_2 = lambda_1 + (Vhat + lambda_2) R``, and the multipliers'
    mass the force: ``R`` is the root of a decreasing function (:func:`~hdtheory.kernels.roots.scalar_root`,
    differentiable). With ``c = Vhat + lambda_2``, ``T_1 = lambda_1`` and, per component of the prior,
    the moments of ``(|b| - T)_+`` of :func:`_excess_moments` (``tail``, ``F_1``, ``F_2``):
    ``V = (tail(T_1) - tail(T_2)) / c``, ``m = mhat sum_k pi_k v_k V_k``,
    ``q = (F_2(T_1) - F_2(T_2) - 2 c R F_1(T_2)) / c^2``, ``P(w_hat != 0) = tail(T_1)`` and
    ``moment = R`` (the sup norm, which the attack sees). A force of zero is no box: ``R`` is then
    taken where the clipped mass is below the dtype's smallest normal number (the elastic net to
    rounding); a force at or above ``E(|b| - lambda_1)_+`` leaves no root (``R -> 0``, every weight
    zero).
    """

    force: jax.Array = eqx.field(converter=jnp.asarray)
    base: ElasticNetFamily

    def weight_averages(self, mhat, qhat, Vhat, weights, variances) -> WeightAverages:
        """In closed form at the radius ``R`` (class docstring)."""
        l1, l2 = self.base.strengths
        c = Vhat + l2
        scales = [jnp.sqrt(_floored(mhat**2 * v + qhat)) for v in variances]

        def excess(R):
            return sum(pi * _excess_moments(l1 + c * R, s)[1] for pi, s in zip(weights, scales)) - self.force

        # Above R_max the excess is below the force: sum pi_k 2 s_k phi(T / s_k) <= 2 s phi(T / s),
        # s = max s_k, is at most the force for T / s >= sqrt(2 log(2 s / (sqrt(2 pi) force))), capped
        # where phi stays a normal number.
        s = functools.reduce(jnp.maximum, scales)
        dtype = jnp.result_type(s, self.force)
        cap = 0.9 * math.sqrt(-2 * math.log(float(jnp.finfo(dtype).tiny)))
        ratio = 2 * s / (math.sqrt(2 * math.pi) * jnp.where(self.force > 0, self.force, 1.0))
        bound = jnp.where(self.force > 0, jnp.sqrt(2 * jnp.log(jnp.maximum(ratio, 1.0))), cap)
        R_max = jnp.minimum(bound, cap) * s / c
        R, _ = roots.scalar_root(excess, (jnp.zeros_like(R_max), R_max), _CLIP_STEPS, 8 * jnp.finfo(dtype).eps * s)
        m = q = V = nonzero = 0.0
        for pi, v, s in zip(weights, variances, scales):
            tail1, _, second1 = _excess_moments(l1, s)
            tail2, first2, second2 = _excess_moments(l1 + c * R, s)
            m = m + pi * v * (tail1 - tail2)
            q = q + pi * (second1 - second2 - 2 * c * R * first2)
            V = V + pi * (tail1 - tail2)  # P(lambda_1 < |b| < T_2)
            nonzero = nonzero + pi * tail1
        return WeightAverages(m=mhat * m / c, q=q / c**2, V=V / c, nonzero=nonzero, moment=R)


def _floored(x):
    """``x`` kept at least the smallest normal number of its type (a variance that may vanish)."""
    return jnp.maximum(x, jnp.finfo(jnp.result_type(x, float)).tiny)


def _soft(x, t):
    """The soft threshold ``sign(x) max(|x| - t, 0)``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


class Ridge(ElasticNetFamily):
    r"""``(lam / 2) w^2``; ``prox = x / (1 + V lam)``."""

    @property
    def strengths(self):
        return jnp.zeros_like(self.lam), self.lam


class Strengths(ElasticNetFamily):
    r"""``lam |w| + (l2 / 2) w^2``, the two strengths given directly (:meth:`ElasticNetFamily.plus_l1`)."""

    l2: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)

    @property
    def strengths(self):
        return self.lam, self.l2


class L1(ElasticNetFamily):
    r"""``lam |w|`` (the LASSO); ``prox = soft(x, V lam)``."""

    @property
    def strengths(self):
        return self.lam, jnp.zeros_like(self.lam)


class ElasticNet(ElasticNetFamily):
    r"""``lam (l1_ratio |w| + (1 - l1_ratio) w^2 / 2)``, ``l1_ratio`` in ``[0, 1]``."""

    l1_ratio: jax.Array = eqx.field(default=0.5, converter=jnp.asarray)

    @property
    def strengths(self):
        return self.lam * self.l1_ratio, self.lam * (1 - self.l1_ratio)


class LP(Penalty):
    r"""``(lam / p) |w|^p + (lam2 / p2) |w|^{p2} + l1 |w| + (l2 / 2) w^2``, ``p, p2 >= 1``: :class:`L1` at
    ``p = 1``, :class:`Ridge` at ``p = 2`` (``lam2 = l1 = l2 = 0``, the defaults), ``p > 2`` the weight
    side of an lp attack with an exponent below 2 (the second power the lp penalty beside it); weight
    averages on ``order`` Gauss-Legendre nodes per panel (module docstring). The l1 part thresholds
    and the ridge part adds to the precision: ``w_hat`` is
    ``lp_prox(soft(b, l1) / c, lam / c, p, lam2 / c, p2)``, ``c = Vhat + l2``. ``moment`` is
    ``E|w_hat|^k`` with ``k = moment_p`` (``p`` if ``None``): the norm an attack sees."""

    p: jax.Array = eqx.field(default=1.5, converter=jnp.asarray)
    order: int = eqx.field(default=40, static=True)
    l2: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)
    l1: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)
    moment_p: jax.Array | None = None
    lam2: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)
    p2: jax.Array = eqx.field(default=2.0, converter=jnp.asarray)

    def __call__(self, w):
        a = jnp.abs(w)
        return self.lam / self.p * a**self.p + self.lam2 / self.p2 * a**self.p2 + self.l1 * a + 0.5 * self.l2 * w**2

    def plus_l1(self, extra) -> "LP":
        """This penalty plus ``extra |w|`` (an l-infinity attack's conjugate), its moment ``E|w_hat|``
        (the norm that attack sees)."""
        return eqx.tree_at(lambda pen: (pen.l1, pen.moment_p), self, (self.l1 + extra, jnp.ones_like(self.p)),
                           is_leaf=lambda x: x is None)

    def prox(self, x, V):
        """:func:`lp_prox` of the thresholded and shrunk ``soft(x, V l1) / c`` with ``t = V lam / c``,
        ``t2 = V lam2 / c``, ``c = 1 + V l2``."""
        c = 1 + V * self.l2
        return lp_prox(_soft(x, V * self.l1) / c, V * self.lam / c, self.p, V * self.lam2 / c, self.p2)

    def min_subgradient(self, w, g):
        # |w|^p is differentiable for p > 1, of gradient 0 at w = 0; the l1 terms' rule at w = 0.
        g = g + self.l2 * w
        a = jnp.abs(w)
        smooth = g + (self.lam * a ** (self.p - 1) + self.lam2 * a ** (self.p2 - 1) + self.l1) * jnp.sign(w)
        return jnp.where(w != 0, smooth, _soft(g, self.threshold))

    @property
    def threshold(self):
        """The ``|b|`` (in units of the precision) below which ``w_hat = 0``: ``l1``, and the strength
        of a power of exponent 1."""
        return self.l1 + jnp.where(self.p > 1, 0.0, self.lam) + jnp.where(self.p2 > 1, 0.0, self.lam2)

    def weight_averages(self, mhat, qhat, Vhat, weights, variances) -> WeightAverages:
        """By quadrature over ``b`` (module docstring)."""
        m = q = V = nonzero = moment = 0.0
        k = self.p if self.moment_p is None else self.moment_p
        for pi, v in zip(weights, variances):
            s2 = _floored(mhat**2 * v + qhat)
            s = jnp.sqrt(s2)
            b, w = self._rule(s, Vhat)
            w_hat = self.prox(b / Vhat, 1 / Vhat)
            stein = jnp.sum(w * b * w_hat) / s2  # E_k[b w_hat] / s_k^2 = E_k[d w_hat / d b]
            m = m + pi * v * stein
            V = V + pi * stein
            q = q + pi * jnp.sum(w * w_hat**2)
            moment = moment + pi * jnp.sum(w * _power(jnp.abs(w_hat), k))
            nonzero = nonzero + pi * erfc(self.threshold / s / math.sqrt(2))
        return WeightAverages(m=mhat * m, q=q, V=V, nonzero=nonzero, moment=moment)

    def replicon(self, mhat, qhat, Vhat, weights, variances) -> jax.Array:
        """On the panels of :meth:`weight_averages`, the slope ``d w_hat / d b`` the implicit derivative
        of :func:`lp_prox` (module docstring)."""
        total = 0.0
        for pi, v in zip(weights, variances):
            b, w = self._rule(jnp.sqrt(_floored(mhat**2 * v + qhat)), Vhat)
            _, slope = jax.jvp(lambda b_: self.prox(b_ / Vhat, 1 / Vhat), (b,), (jnp.ones_like(b),))
            total = total + pi * jnp.sum(w * slope**2)
        return total

    def _rule(self, s, Vhat):
        """``(b_i, w_i)``: the panel rule over ``b ~ N(0, s^2)`` (module docstring)."""
        kink = self.l1 / s
        turns = (kink + jnp.where(self.p > 2, self._turn(Vhat), self.lam) / s, kink + self.lam2 / s)
        edges = jnp.stack(jnp.broadcast_arrays(*turns, -turns[0], -turns[1], -kink, 0.0 * s, kink, -3.0, 3.0))
        z, w = quadrature.panel_rule(edges, self.order)
        return s * z, w

    def _turn(self, Vhat):
        """For ``p > 2``, ``|b| = (Vhat + l2) u*`` with ``t (p - 1) u*^{p - 2} = 1``, ``t = lam / (Vhat + l2)``
        (the power term's slope equal to the linear one's): there ``w_hat`` turns from linear in ``b`` to
        ``~ |b|^{1 / (p - 1)}``, sharply for large ``p``, with complex singularities ``O(1 / p)`` away
        (capped at ``e^3``, so that it stays finite; the rule clips its edges to ``+-10`` anyway)."""
        c = Vhat + self.l2
        t = jnp.where((self.lam > 0) & (self.p > 2), self.lam * (self.p - 1) / c, 1.0)  # else unused
        exponent = -jnp.log(t) / jnp.where(self.p > 2, self.p - 2, 1.0)
        return jnp.exp(jnp.minimum(jnp.log(c) + exponent, 3.0))


def _power(a, p):
    """``a^p`` for ``a >= 0``, zero at ``a = 0`` with a finite derivative in ``p`` there."""
    positive = a > 0
    return jnp.where(positive, jnp.where(positive, a, 1.0) ** p, 0.0)


_LP_STEPS = 60
"""At most this many Newton steps in :func:`lp_prox` (fewer than 30 are needed, module docstring)."""


@jax.custom_jvp
def lp_prox(x, t, p, t2=0.0, p2=2.0):
    r"""``argmin_w (w - x)^2 / 2 + (t / p) |w|^p + (t2 / p2) |w|^{p2}`` for ``t, t2 >= 0`` and
    ``p, p2 >= 1``, elementwise (the second term optional: the weight side of an lp penalty and an lp
    attack together).

    ``w = sign(x) u`` with ``u >= 0`` the root of ``g(u) = u + t u^{p - 1} + t2 u^{p2 - 1} - |x|``. A
    term of exponent 1 is a threshold, ``|x|`` lowered by its strength (the soft threshold
    ``max(|x| - t, 0)`` at ``p = 1``); beyond it, Newton's method in ``s = log u``, where
    ``e^s + t e^{(p - 1) s} + t2 e^{(p2 - 1) s}`` is convex and increasing (for exponents above 2 too),
    started at the least of ``log |x|`` and ``log(|x| / t_j) / (p_j - 1)``, where one term alone equals
    ``|x|``: above the root, so that the iterates decrease to it monotonically, and ``g(s_0) <= 2 |x|``,
    so that a few steps reach the quadratic regime. Stopped when a step is below ``4 eps (1 + |s|)``, a
    rounding error of ``u`` relative to itself. The derivatives are the implicit function theorem's
    (module docstring of :mod:`~hdtheory.kernels.penalties`), ``d/dp`` at ``p = 1`` the right derivative.
    """
    dtype = jnp.result_type(x, t, p, t2, p2, float)
    x, t, p, t2, p2 = (jnp.asarray(v, dtype) for v in (x, t, p, t2, p2))
    c, c2 = p - 1, p2 - 1
    a = jnp.abs(x) - jnp.where(c > 0, 0.0, t) - jnp.where(c2 > 0, 0.0, t2)
    positive = a > 0
    log_a = jnp.log(jnp.where(positive, a, 1.0))

    def start(strength, exponent):
        usable = (strength > 0) & (exponent > 0)
        ratio = log_a - jnp.log(jnp.where(usable, strength, 1.0))
        return jnp.where(usable, ratio / jnp.where(usable, exponent, 1.0), jnp.inf)

    s0 = jnp.minimum(log_a, jnp.minimum(start(t, c), start(t2, c2)))
    power, power2 = jnp.where(c > 0, t, 0.0), jnp.where(c2 > 0, t2, 0.0)
    eps = jnp.finfo(dtype).eps

    def newton(s):
        linear, first, second = jnp.exp(s), power * jnp.exp(c * s), power2 * jnp.exp(c2 * s)
        return jnp.where(positive, (linear + first + second - a) / (linear + c * first + c2 * second), 0.0)

    def cond(carry):
        s, step, i = carry
        return jnp.any(jnp.abs(step) > 4 * eps * (1 + jnp.abs(s))) & (i < _LP_STEPS)

    def body(carry):
        s, _, i = carry
        step = newton(s)
        return s - step, step, i + 1

    s, *_ = jax.lax.while_loop(cond, body, (s0, jnp.ones_like(s0), 0))
    return jnp.sign(x) * jnp.where(positive, jnp.exp(s), 0.0)


def _power0(u, e):
    """``u^e`` for ``u >= 0`` and ``e >= 0``, with ``0^0 = 1``."""
    return jnp.where(u > 0, jnp.where(u > 0, u, 1.0) ** e, jnp.where(e == 0, 1.0, 0.0))


@lp_prox.defjvp
def _lp_prox_jvp(primals, tangents):
    # F(u; a, t_j, p_j) = u + sum_j t_j u^{p_j - 1} - a = 0, multiplied by L = u^{l}, l = max(2 - p_min, 0),
    # p_min the least exponent of a term of positive strength, so that it stays finite at u = 0:
    # du = (L da - sum_j u^{p_j - 1} L (dt_j + t_j log(u) dp_j)) / (L + sum_j t_j (p_j - 1) u^{p_j - 2} L),
    # and da = sign(x) dx.
    x, t, p, t2, p2 = primals
    dx, dt, dp, dt2, dp2 = tangents
    w = lp_prox(x, t, p, t2, p2)
    dtype = w.dtype
    u = jnp.abs(w)
    low = jnp.minimum(jnp.where(t > 0, p, 2.0), jnp.where(t2 > 0, p2, 2.0))
    shift = jnp.maximum(2 - low, 0.0)
    lift = _power0(u, shift)
    log_u = jnp.where(u > 0, jnp.log(jnp.where(u > 0, u, 1.0)), 0.0)

    def term(strength, exponent, d_strength, d_exponent):
        """The term's share of the numerator and of the denominator."""
        value = _power0(u, jnp.maximum(exponent - 1 + shift, 0.0))  # u^{p_j - 1} L
        active = strength > 0  # where u^{p_j - 2} L is finite
        scaled = _power0(u, jnp.where(active, exponent - 2 + shift, 0.0))  # u^{p_j - 2} L
        slope = jnp.where(active, strength * (exponent - 1) * scaled, 0.0)
        return -value * (d_strength + strength * log_u * d_exponent), slope

    along, slope = term(t, p, dt, dp)
    along2, slope2 = term(t2, p2, dt2, dp2)
    denominator = lift + slope + slope2
    positive = denominator > 0
    safe = jnp.where(positive, denominator, 1.0)
    # A zero denominator is u = 0 inside a threshold (w = 0 nearby).
    dx_coefficient = jnp.where(positive, lift / safe, 0.0)
    along = jnp.where(positive, (along + along2) / safe, 0.0)
    return w, (dx_coefficient * dx + jnp.sign(x) * along).astype(dtype)


PENALTIES: dict[str, type[Penalty]] = {"ridge": Ridge, "l1": L1, "elastic-net": ElasticNet, "lp": LP}
"""The penalties by name."""
