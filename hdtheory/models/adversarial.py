r"""Adversarial training of a linear classifier against l2, l-infinity, lp and l1 attacks: the replica fixed point.

**Setting** (that of :mod:`hdtheory.models.erm`, classification teachers). ``n`` samples
``x_i ~ N(0, I_d)``, ``alpha = n / d``, labels ``y_i = +-1`` from the teacher's field
``z_i = w*.x_i / sqrt(d)`` (``teacher`` sign, probit or logistic, with their ``noise``), and the
estimator trained against an attacker who moves each training input within a ball of radius
``eps`` (``attack=l2``) or within the l-infinity ball ``|delta_i|_inf <= eps / sqrt(d)``
(``attack=linf``):

.. math::
    \min_w \sum_i \max_{|\delta_i|_2 \le \varepsilon}
        l\big(y_i\, w \cdot (x_i + \delta_i) / \sqrt{d}\big) + \frac{\lambda}{2} |w|^2
    = \min_w \sum_i l\big(y_i\, w \cdot x_i / \sqrt{d} - \varepsilon |w|_2 / \sqrt{d}\big)
        + \frac{\lambda}{2} |w|^2 ,

for a margin loss ``l`` that does not increase with the margin (``logistic``, ``hinge``): the
worst ``delta`` is ``-eps y w / |w|`` (the dual norm of l2 is l2); against the l-infinity ball it is
``-(eps / sqrt(d)) y sign(w)``, and the margin shifts by ``eps |w|_1 / d`` (the dual norm of
l-infinity is l1). ``eps`` is of order one while the inputs have norm ``sqrt(d)``, so that the
margin shift ``eps |w|_2 / sqrt(d) = eps sqrt(q)`` is of order one, and the l-infinity ball's
``eps / sqrt(d)`` per coordinate gives the shift ``eps P``, ``P = |w|_1 / d``, of order one too (its
corners have the l2 norm ``eps``): the regime of Vilucchio, Tsilivis, Loureiro & Kempe 2024 ("On the
geometry of regularization in adversarial training: high-dimensional asymptotics and generalization
bounds", arXiv:2410.16073), whose l-infinity shift is this ``eps |w|_1 / d`` (their order parameter
``P = E|w|`` for the dual exponent 1, taken from the authors' public code), and of Taheri,
Pedarsani & Thrampoulidis 2020 ("Asymptotic behavior of adversarial training in binary
classification", arXiv:2010.13275). An lp attack of radius ``eps_p`` shifts the margin by
``eps_p |w|_{p*} / sqrt(d)`` (``p*`` the dual exponent), the same order for
``eps_p ~ eps d^{1/p - 1/2}``: ``attack=lp`` is the ball ``|delta|_p <= eps d^{1/p - 1/2}``,
``p = attack_p`` in ``(1, inf)`` (the l2 ball at ``p = 2``, the l-infinity one as ``p -> inf``), whose
shift is ``eps P^{1/k}`` with ``P = |w|_k^k / d`` and ``k = p / (p - 1)`` in ``(1, inf)``: ``k < 2``
for ``p > 2``, ``k > 2`` for ``p < 2`` (the geometries of Vilucchio et al. 2024 on both sides of the
l2 ball). The l1 ball ``p = 1`` is ``attack=l1``, ``|delta|_1 <= eps sqrt(d)``, whose worst ``delta``
puts the whole budget on a largest component of ``w``: the shift ``eps max_i |w_i|`` (``k = inf``,
below). A penalty written
``lam' |w|^2`` is ``lam = 2 lam'`` here, one written after averaging the loss over the samples
``lam = 2 alpha lam'`` (CONVENTIONS: the penalty ``(lam / 2) |w|^2`` is not divided by ``n``). The
equations below are derived in these conventions and checked against simulations at finite ``d``
(:mod:`hdtheory.simulate.adversarial`), not term by term against the papers'.

**Fixed point.** The robust loss is ERM's loss with its margin shifted by ``s(q) = eps sqrt(q)``,
``l_s(y, z) = l(y z - s)``, whose output function is ERM's at the shifted field:
``f_s(y, omega, V) = f(y, omega - y s, V)`` (the prox of ``l_s`` is ``prox_l(omega - y s) + y s``).
The shift depends on the estimator's norm, and the minimiser's stationarity condition shows how:

.. math::
    \sum_i l'(\cdot)\, y_i x_i / \sqrt{d} + \Big(\lambda + \frac{\varepsilon}{\sqrt{d}\, |w|}
        \sum_i |l'(\cdot)|\Big) w = 0 ,

so that the adversarial estimator is the minimiser of the fixed-shift loss ``l_s`` with the ridge
``lam_eff = lam + eps alpha E|l'| / sqrt(q)``; in the replica free energy the same term is
``d/dq`` of the shifted Moreau envelope, ``alpha (ds / dq) E[d_s M] = alpha eps E[y f] / (2 sqrt(q))``.
The fixed point is ERM's (:mod:`hdtheory.models.erm`) with ``f_s`` in place of ``f`` and

.. math::
    \hat V = -\alpha\, \mathbb{E}\, \partial_\omega f_s
        + \frac{\alpha \varepsilon}{\sqrt{q}}\, \mathbb{E}[y f_s] ,

``E[y f_s] = E|l'(y z - s)|`` at the training fields ``z = prox``, the expectations those of ERM
(:meth:`ERM.margin_shift` carries the shift and its derivative into ERM's channel integrals, whose
panels move with it). ``eps = 0`` is ERM to rounding. The attack's term is a ridge whatever the
penalty: with ``l1`` or ``elastic-net`` (``r(w) = lambda_1 |w|_1 + (lambda_2 / 2) |w|^2``) the
stationarity condition gains ``lambda_1 sign(w)`` and the weight side is the elastic net's soft
threshold with the precision ``Vhat + lambda_2``, ``Vhat`` the one above (:meth:`ERM.weight_averages`);
with ``lp`` (``(lam / p) |w|^p``) the lp prox at the precision ``Vhat`` (:class:`~hdtheory.kernels.LP`).

**l-infinity attacks** (``attack=linf``; penalties ``ridge``, ``l1``, ``elastic-net``, ``lp``). The shift
``s = eps P`` depends on the weights through ``P = |w|_1 / d``, which becomes an order parameter of
its own. The stationarity condition of the minimiser

.. math::
    \sum_i l'(\cdot)\, y_i x_i / \sqrt{d} + \nabla r(w)
        + \frac{\varepsilon}{d} \sum_i |l'(\cdot)|\, \mathrm{sign}(w) = 0

is that of the fixed-shift loss with the penalty ``r(w) + Phat |w|_1``,
``Phat = eps alpha E|l'| = eps alpha E[y f_s]``: the weight side (:meth:`ERM.weight_averages`) is
the elastic net's with its l1 strength raised by ``Phat``
(:meth:`~hdtheory.kernels.ElasticNetFamily.plus_l1`: soft thresholding, Gaussian averages in
closed form, ``P = E|w_hat|`` among them), the channel side ERM's at the shifted field (``Vhat`` has
no norm term, the shift does not depend on ``q``). In general, for an attacked norm
``P = (1/d) sum |w_i|^k`` and the shift ``eps P^{1/k}``, the weight side gains ``(Phat / k) |w|^k``
with ``Phat = eps P^{1/k - 1} alpha E[y f_s]`` (:meth:`Adversarial.attack_conjugate`; ``k = 1``
here, ``k = 2`` for :class:`AdversarialGCM`). The attack's l1 term zeroes weights whatever the
penalty (``sparsity_hat < 1`` with the ridge). With the lp penalty ``(lam / p) |w|^p``
(``penalty=lp``, ``p`` in ``[1, 2]``) the weight side is the prox of ``(lam / p) |w|^p + Phat |w|``:
the lp prox of the soft threshold ``soft(b, Phat)`` (:meth:`~hdtheory.kernels.LP.plus_l1`), on panels,
``P = E|w_hat|``; as ``p -> 1`` the LASSO's, at ``p = 2`` the ridge's. ``eps = 0`` is ERM to the
solver's precision.

**lp attacks** (``attack=lp``; penalties ``ridge``, ``l1``, ``elastic-net``, ``lp``). The same with
``k = attack_p / (attack_p - 1)``: the weight side is the prox of
``lambda_1 |w| + (lambda_2 / 2) w^2 + (Phat / k) |w|^k`` (the elastic net's strengths; the ridge
``lambda_2 = lam``), the lp prox of :class:`hdtheory.kernels.LP` (Newton's method in ``log |w|``)
of the soft threshold ``soft(b, lambda_1)`` with ``lambda_2`` added to the precision,
its Gaussian averages on panels, ``P = E|w_hat|^k`` among them; ``sparsity_hat = P(|b| > lambda_1)``.
With the lp penalty the prox of ``(lam / p) |w|^p + (Phat / k) |w|^k``, two powers in one Newton
iteration (:func:`hdtheory.kernels.lp_prox`). At ``attack_p = 2`` it is the l2
model (``P = q``), as ``attack_p -> inf`` the l-infinity one, whatever the penalty. For ``attack_p < 2`` (``k > 2``) the
attack's term grows faster than the ridge and caps the large weights: ``w_hat`` is linear in ``b``
up to about ``(Phat (k - 1) / (Vhat + lam))^{-1 / (k - 2)}`` and grows like ``|b|^{1 / (k - 1)}``
beyond; as ``attack_p -> 1`` this becomes the clipping of the weights at ``R = max_i |w_i|``, with
``E(|b| - (Vhat + lam) R)_+ = eps alpha E|l'|`` (the attack's force shared by the clipped weights), which
the fixed point approaches at first order in ``1 / k``. ``P = E|w|^k`` is then
of order ``(max |w|)^k``, which leaves float32's range for ``attack_p`` near 1 (``k`` in the tens)
unless ``max |w|`` is near 1: that limit is ``attack=l1``.

**l1 attacks** (``attack=l1``; penalties ``ridge``, ``l1``, ``elastic-net``). The shift is
``eps R``, ``R = max_i |w_i|``: the attacked norm is the sup norm itself, ``P = R`` (not a power
of it). It is an order parameter because the attack clips the weights: the stationarity condition

.. math::
    \sum_i l'(\cdot)\, y_i x_i / \sqrt{d} + \nabla r(w) + \varepsilon \sum_i |l'(\cdot)|\; g = 0,
    \qquad g \in \partial \max_j |w_j| ,

has ``g`` a convex combination of ``sign(w_j) e_j`` over the maximisers ``j``, so that the attack's
force ``eps sum_i |l'| = d Phat``, ``Phat = eps alpha E|l'|``, of the order of the loss, is shared by
a finite fraction of components held at ``|w_j| = R``: the weight side is the penalty's prox clipped
at ``R``, ``R`` set by the multipliers' mass ``E(|b| - lambda_1 - (Vhat + lambda_2) R)_+ = Phat``
(:class:`~hdtheory.kernels.Clipped`, closed form; ``lambda_1``, ``lambda_2`` the elastic net's
strengths). The largest of the ``d`` components is then ``R`` exactly, not the ``sqrt(2 log d)``
growth of independent Gaussian weights, and concentrates. This is the ``attack_p -> 1`` limit of the lp
model (approached at first order in ``1 / k``), with no power of ``R`` to overflow. Derived here and
checked against the lp model near ``p = 1`` and against simulations at finite ``d``; the paper's own
treatment of ``p = 1`` was not read. ``Phat`` is reported as this force, ``eps alpha E|l'|``. At
``eps = 0`` nothing clips the weights: the model is ERM and ``P`` is reported infinite (the largest
weight grows without bound with ``d``).

**Observables.** ERM's (``test_error``, ``test_error_total``: the clean 0-1 errors; ``train_loss``:
the robust training loss ``E l(y z - eps sqrt(q))``; ``norm = sqrt(q)``; ...), and at the test-time
budget ``eps_test``: ``robust_error``, ``P(y u < eps_test)`` with ``u = w.x / |w| ~ N(0, 1)`` (the
probability that an l2 attack of radius ``eps_test`` makes the classifier err, against the noiseless
label ``sign(z)`` as ``test_error``), ``robust_error_total`` (against the noisy label), and
``boundary_error = robust_error - test_error = 2 int_0^eps_test P(sign z = +1 | u) phi(u) du``
(:func:`hdtheory.kernels.boundary_error`); and ``margin_shift = eps sqrt(q)``. For ``attack=l2``,
the errors under consistent attacks (Vilucchio, Zdeborová & Loureiro 2025, "On the existence of
consistent adversarial attacks in high-dimensional linear classification", arXiv:2506.12454: attacks
that leave the teacher's noiseless label ``sign(z)`` unchanged): ``consistent_robust_error``, the
probability that some such attack of radius ``eps_test`` makes the classifier disagree with
``sign(z)``, between ``test_error`` and ``robust_error``, and ``consistent_boundary_error =
consistent_robust_error - test_error``, the misclassification that consistent attacks add. The
inner maximisation is in closed form on the plane of the teacher and the student
(:func:`hdtheory.kernels.inconsistent_error`, what only label-changing attacks reach); derived here
from the definition in the paper's abstract and introduction and checked against exact attacks at
finite ``d``, not against the paper's equations.

**Consistent l-infinity and lp attacks** (``consistent="all"``; not for ``attack=l1``). The test point's
teacher field ``z = w*.x / sqrt(d)``, the student's ``f = w.x / sqrt(d)``; an attack ``delta`` in the ball
of radius ``r = eps_test d^{1/p - 1/2}`` (``eps_test / sqrt(d)`` for l-infinity) moves them by
``w*.delta / sqrt(d)`` and ``w.delta / sqrt(d)``. The most a consistent attack can lower the student's
margin ``sign(z) f`` is, by Lagrange duality (``delta = 0`` strictly feasible for ``z != 0``),

.. math::
    \max_{|\delta|_p \le r,\ \mathrm{sign}(z)\, w^* \cdot \delta / \sqrt d \,\ge\, -|z|}
        -\mathrm{sign}(z)\, \frac{w \cdot \delta}{\sqrt d}
    = G(|z|) = \min_{\mu \ge 0}\ \varepsilon_{\rm test} N(\mu) + \mu |z| ,\qquad
    N(\mu) = \Big(\frac{1}{d} \sum_i |w_i - \mu w^*_i|^k\Big)^{1/k}

(the support function of the ball is ``r |.|_k``, ``k`` the dual exponent, and ``r d^{1/k} / sqrt(d)``
is ``eps_test``): the 2-D problem in (teacher field, student field) along the direction
``w - mu w*``, of which the l2 plane above is the case ``N(mu)^2 = q - 2 mu m + mu^2 rho``. In the limit
``N(mu)^k = E|w_hat - mu w*|^k`` over the weight side's joint law of ``(w*, w_hat)``
(:meth:`deviation_law`: ``w_hat = prox(b / Vhat)``, ``b = mhat w* + sqrt(qhat) xi``, the same prox and
conjugates as the fixed point), and ``N(0) = P^{1/k}``. ``N`` is convex, so ``G`` is concave, equal to
the unconstrained ``eps_test N(0)`` for ``|z| >= a0 = -eps_test N'(0)``; with ``f | z ~ N(m z / rho,
q - m^2 / rho)``,

.. math::
    \text{robust} - \text{consistent} = 2 \int_0^{a_0} \phi_\rho(a)\Big[
        \Phi\Big(\frac{\varepsilon_{\rm test} N(0) - m a / \rho}{\sqrt{q - m^2/\rho}}\Big)
        - \Phi\Big(\frac{G(a) - m a / \rho}{\sqrt{q - m^2/\rho}}\Big)\Big]\, da

(:meth:`inconsistent_error`, :meth:`consistent_threshold`). Derived here and checked against the l2
closed form at ``attack_p = 2`` and against exact consistent attacks at finite ``d`` (the dual above per
held-out sample, itself checked against a linear program); the paper's own equations were not read.
Off by default (a minimisation in ``mu`` per quadrature node, about a second on a CPU). For an l1 attack
``N(mu)`` would be ``max_i |w_i - mu w*_i|``, unbounded for ``mu > 0`` as ``d`` grows: not reported.

For ``attack=linf``
the test-time attack is the l-infinity ball of radius ``eps_test / sqrt(d)``, which shifts the field by
``eps_test P``: the budget is ``eps_test P / sqrt(q)`` in units of its standard deviation; ``P`` and
``Phat`` are observables and ``margin_shift = eps P``; for ``attack=lp`` the same with ``P^{1/k}``;
for ``attack=l1`` the test-time ball ``|delta|_1 <= eps_test sqrt(d)`` shifts the field by ``eps_test R``.

**Anisotropic data** (:class:`AdversarialGCM`, :func:`block_features`): covariates ``N(0, Sigma_x)``,
attacks ``delta^T Sigma_delta^{-1} delta <= eps^2`` and the penalty ``(lam / 2) w^T Sigma_w w``,
diagonal in one basis (Tanner et al. 2025's block feature model): the margin shift is
``eps sqrt(P)``, ``P = w^T Sigma_delta w / d``, a GCM with one more order parameter.

**Where the estimator is trivial.** The objective's slope at ``w = 0`` along a unit ``u`` is
``l'(0) (sum_i y_i x_i.u - n eps) / sqrt(d)``: for ``eps`` at or above ``|sum_i y_i x_i| / n``
(``-> sqrt(E[y z]^2 / rho + 1 / alpha)``, ``sqrt(2 / pi + 1 / alpha)`` for the noiseless sign
teacher) the minimiser is ``w = 0``, whatever ``lam`` and the loss; there ``q -> 0`` and
:func:`hdtheory.solve` does not converge (``converged`` false), never a number. Against an
l-infinity attack the condition is ``|sum_i y_i x_i|_inf / sqrt(d) <= n eps / d`` (plus the l1
penalty's ``lam / |l'(0)|``), whose left side grows like ``sqrt(log d)``: in the limit there is no
such radius, and ``P > 0`` at every ``eps``. Against an l1 attack the slope along ``sign(g)``,
``g = sum_i y_i x_i / sqrt(d)``, is ``l'(0) (|g|_1 - n eps)`` (``|sign(g)|_inf = 1``), and ``g.u <=
|g|_1 |u|_inf`` for every ``u``: the minimiser is ``w = 0`` for ``eps >= |g|_1 / n`` (plus the l1
penalty's share), ``-> sqrt(2 / pi) sqrt(2 / pi + 1 / alpha)`` for the noiseless sign teacher.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, check_in, choice, is_concrete, parameter
from .erm import ERM, Overlaps
from .gcm import GCM

_LOSSES = {name: kernels.LOSSES[name] for name in ("logistic", "hinge")}
"""Margin losses that do not increase with the margin: the inner maximisation is in closed form."""
_TEACHERS = {name: kernels.CHANNELS[name] for name in ("sign", "probit", "logistic")}
"""Teachers with labels +-1 from a teacher field (the robust errors need ``P(y | z)``)."""


class AttackOverlaps(Overlaps):
    """The order parameters of an attack that sees a norm other than ``sqrt(q)``: those of ERM and
    the attacked norm ``P`` (:class:`Adversarial` with ``attack`` linf, lp or l1, :class:`AdversarialGCM`)."""

    P: jax.Array
    """The attacked norm: ``|w|_1 / d`` (l-infinity attacks), ``|w|_k^k / d`` (lp), ``max_i |w_i|`` (l1),
    ``w^T Sigma_delta w / d`` (AdversarialGCM)."""


_ATTACKS = {
    "l2": "|delta|_2 <= eps: the margin shifts by eps |w|_2 / sqrt(d) = eps sqrt(q)",
    "linf": "|delta|_inf <= eps / sqrt(d): the margin shifts by eps |w|_1 / d = eps P",
    "lp": "|delta|_p <= eps d^(1/p - 1/2), p = attack_p: the margin shifts by eps P^(1/k), "
    "P = |w|_k^k / d, k = p / (p - 1)",
    "l1": "|delta|_1 <= eps sqrt(d): the margin shifts by eps max_i |w_i| = eps P",
}
"""The attack norms of :class:`Adversarial` (module docstring)."""


_CONSISTENT = {
    "closed-form": "the errors under consistent attacks where they are in closed form (attack=l2)",
    "all": "also for attack=linf and lp (a minimisation in mu per quadrature node: about a second on a CPU)",
}
"""When :class:`Adversarial` reports ``consistent_robust_error`` (module docstring)."""


class Adversarial(ERM):
    """Adversarial training against l2, l-infinity, lp or l1 attacks of radius ``eps``; see the module docstring."""

    eps: jax.Array = parameter(
        0.2, NONNEGATIVE,
        "radius of the training attack: |delta|_2 <= eps, |delta|_inf <= eps / sqrt(d), "
        "|delta|_p <= eps d^(1/p - 1/2), |delta|_1 <= eps sqrt(d)",
    )
    eps_test: jax.Array = parameter(
        0.2, NONNEGATIVE, "radius of the test-time attack of robust_error, in the same norm"
    )
    loss: str = choice("logistic", _LOSSES, "training margin loss")
    teacher: str = choice("sign", _TEACHERS, "teacher channel (labels +-1)")
    attack: str = choice("l2", _ATTACKS, "norm of the training and test-time attacks")
    consistent: str = choice("closed-form", _CONSISTENT, "which attacks report the errors under consistent attacks")
    attack_p: jax.Array = parameter(
        4.0, Interval(1.0, low_open=True), "exponent p of the lp attack, in (1, inf) (attack=lp; p = 1 is attack=l1)"
    )

    def __check_init__(self):
        if self.consistent == "all" and not (isinstance(self.attack, str) and self.attack != "l1"):
            raise ParameterError("parameter 'consistent' must be 'closed-form' for l1 attacks and attack geometries "
                                 "(errors under consistent attacks for the l2, linf and lp balls only)")
        if not isinstance(self.attack, str):  # AdversarialGCM: an attack geometry, ridge-like penalties
            return
        allowed = ("ridge", "l1", "elastic-net") + (("lp",) if self.attack != "l1" else ())
        if self.penalty not in allowed:
            raise ParameterError(
                f"parameter 'penalty' must be one of {', '.join(allowed)} for attack={self.attack}, "
                f"got {self.penalty!r}"
            )

    @property
    def dual_exponent(self):
        """``k``: the attacked norm ``P`` is ``(1 / d) sum_i |w_i|^k`` (or its weighted form), so that
        the margin shifts by ``eps P^{1 / k}``: 1 for an l-infinity attack, 2 for an l2 one,
        ``attack_p / (attack_p - 1)`` for an lp one, ``inf`` for an l1 one (``P`` is then the sup norm
        itself, :meth:`reach`)."""
        if not self.own_norm:
            return 2.0
        return {"linf": 1.0, "l1": np.inf}.get(self.attack, self.attack_p / (self.attack_p - 1))

    def reach(self, P):
        """The margin shift per unit radius at the attacked norm ``P``: ``P^{1 / k}``, and ``P`` itself
        for an l1 attack (``P = max_i |w_i|``)."""
        return P if self.sup_norm else P ** (1 / self.dual_exponent)

    @property
    def sup_norm(self) -> bool:
        """Whether the attack is the l1 ball, whose attacked norm is ``max_i |w_i|``."""
        return isinstance(self.attack, str) and self.attack == "l1"

    @property
    def own_norm(self) -> bool:
        """Whether the attacked norm is an order parameter ``P`` of the state (not ``q``'s, as for an l2
        attack on isotropic data)."""
        return isinstance(self.attack, str) and self.attack != "l2"

    def margin_shift(self, state):
        """``(s, ds / dq)``: ``eps sqrt(q)`` and ``eps / (2 sqrt(q))`` for an l2 attack on isotropic data
        (the norm is ``q``'s); ``eps P^{1 / k}`` and 0 where the attacked norm is its own order parameter
        ``P`` (:meth:`reach`)."""
        if isinstance(state, AttackOverlaps):
            return self.eps * self.reach(state.P), jnp.zeros_like(state.P)
        sqrt_q = jnp.sqrt(state.q)
        return self.eps * sqrt_q, self.eps / (2 * sqrt_q)

    def attack_conjugate(self, state: AttackOverlaps, slope) -> jax.Array:
        """``Phat = k (ds / dP) slope = eps P^{1 / k - 1} slope``, ``slope = alpha E|l'|`` at the training
        margins: the weight side's penalty gains ``(Phat / k) |w|^k`` (module docstring). For an l1 attack
        ``eps slope``, the force per component of the sup-norm term ``d Phat max_i |w_i|``."""
        if self.sup_norm:
            return self.eps * slope
        return self.eps * state.P ** (1 / self.dual_exponent - 1) * slope

    def test_budget(self, state):
        """The test-time attack's shift of the field in units of its standard deviation ``sqrt(q)``:
        ``eps_test`` for an l2 ball on isotropic data, ``eps_test P^{1 / k} / sqrt(q)`` otherwise."""
        if isinstance(state, AttackOverlaps):
            return self.eps_test * self.reach(state.P) / jnp.sqrt(state.q)
        return self.eps_test

    def penalty_at(self, state, slope) -> kernels.Penalty | kernels.Clipped:
        """The penalty plus the attack's ``(Phat / k) |w|^k``: ``Phat |w|`` added to the penalty's
        l1 strength (``attack=linf``; the lp penalty's too, :meth:`~hdtheory.kernels.LP.plus_l1`), or the
        lp penalty of strength ``Phat`` and exponent ``k`` plus the elastic net's strengths or the lp
        penalty's power (``attack=lp``); for ``attack=l1`` the penalty clipped at the radius where the
        clipped components bear the force ``Phat`` (:class:`~hdtheory.kernels.Clipped`)."""
        if not (isinstance(state, AttackOverlaps) and self.own_norm):
            return self.penalty_fn
        Phat = self.attack_conjugate(state, slope)
        if self.attack == "linf":
            return self.penalty_fn.plus_l1(Phat)
        if self.sup_norm:
            return self.penalty_fn.clipped(Phat)
        if isinstance(self.penalty_fn, kernels.LP):  # two powers: the attack's and the penalty's
            return kernels.LP(Phat, self.dual_exponent, self.panel_order, lam2=self.lam, p2=self.p)
        l1, l2 = self.penalty_fn.strengths
        return kernels.LP(Phat, self.dual_exponent, self.panel_order, l2=l2, l1=l1)

    def init(self, kind: str = "uninformed"):
        """ERM's start; for an attacked norm of its own with ``P = E|w|^k`` of Gaussian weights of
        variance ``q``, ``(2 q)^{k/2} Gamma((k + 1) / 2) / sqrt(pi)``; for the sup norm ``2 sqrt(q)``."""
        start = super().init(kind)
        if not self.own_norm:
            return start
        if self.sup_norm:
            return AttackOverlaps(m=start.m, q=start.q, V=start.V, P=2 * jnp.sqrt(start.q))
        k = self.dual_exponent
        P = (2 * start.q) ** (k / 2) * jnp.exp(jax.scipy.special.gammaln((k + 1) / 2)) / jnp.sqrt(jnp.pi)
        return AttackOverlaps(m=start.m, q=start.q, V=start.V, P=P)

    def unconstrain(self, state):
        """ERM's coordinates, and ``log P`` where the state has it."""
        base = super().unconstrain(Overlaps(m=state.m, q=state.q, V=state.V))
        if isinstance(state, AttackOverlaps):
            return jnp.concatenate([base, jnp.log(state.P)[None]])
        return base

    def constrain(self, u: jax.Array):
        base = super().constrain(u[:3])
        if u.shape[0] == 3:
            return base
        return AttackOverlaps(m=base.m, q=base.q, V=base.V, P=jnp.exp(u[3]))

    def update(self, state):
        """ERM's map (the l2 attack's norm term is in ``Vhat``, :meth:`ERM._gaussian_averages`); for an
        attacked norm of its own the weight side of :meth:`penalty_at` and ``P = E|w_hat|^k``."""
        if not isinstance(state, AttackOverlaps):
            return super().update(state)
        mhat, qhat, Vhat, _, slope = self._channel_averages(state)
        weights = self.weight_averages(mhat, qhat, Vhat, self.penalty_at(state, slope))
        return AttackOverlaps(m=weights.m, q=weights.q, V=weights.V, P=weights.moment)

    def robust_errors(self, m, q, budget=None):
        """``(robust_error, robust_error_total, boundary_error)`` at a ``budget`` in units of the
        field's standard deviation (``eps_test`` by default: :meth:`test_budget`): see the module
        docstring."""
        budget = self.eps_test if budget is None else budget
        clean, clean_total = self.test_errors(m, q)
        noiseless = kernels.Sign(jnp.zeros_like(self.noise))
        boundary = kernels.boundary_error(noiseless, m, q, self.rho, budget, self.panel_order)
        boundary_total = kernels.boundary_error(self.channel, m, q, self.rho, budget, self.panel_order)
        return clean + boundary, clean_total + boundary_total, boundary

    def observables(self, state) -> dict[str, jax.Array]:
        robust, robust_total, boundary = self.robust_errors(state.m, state.q, self.test_budget(state))
        attacked = {}
        if isinstance(state, AttackOverlaps):
            slope = self._channel_averages(state)[4]
            Phat = self.attack_conjugate(state, slope)
            # Without the attack's force nothing clips the weights: their maximum grows without bound with d.
            P = jnp.where(Phat > 0, state.P, jnp.inf) if self.sup_norm else state.P
            attacked = {"P": P, "Phat": Phat}
        inconsistent = None
        if isinstance(self.attack, str) and self.attack == "l2":  # not AdversarialGCM's geometry
            inconsistent = kernels.inconsistent_error(
                state.m / jnp.sqrt(self.rho * state.q), self.eps_test, self.panel_order
            )
        elif self.own_norm and self.consistent == "all":
            inconsistent = self.inconsistent_error(state)
        if inconsistent is not None:
            attacked = attacked | {"consistent_robust_error": robust - inconsistent,
                                   "consistent_boundary_error": boundary - inconsistent}
        return super().observables(state) | attacked | {
            "robust_error": robust,
            "robust_error_total": robust_total,
            "boundary_error": boundary,
            "margin_shift": self.margin_shift(state)[0],
        }


    def deviation_law(self, state: AttackOverlaps, order: int = 24):
        """The weight side's joint law of a teacher's component ``w*`` and the estimator's ``w_hat``, as a
        rule: per centred Gaussian component ``N(0, v)`` of the teacher's prior (weight ``pi``),
        ``b = mhat w* + sqrt(qhat) xi ~ N(0, s^2)`` on panels (edges at 0, at the penalty's threshold and
        at +-3 standard deviations; weights ``pi`` times the rule's), ``w_hat = prox(b / Vhat)``, and
        ``w* | b ~ N(mhat v b / s^2, v qhat / s^2)``: arrays ``(weight, w_hat, mean of w*, its standard
        deviation)`` over the components' nodes, for :func:`deviation_norm`."""
        mhat, qhat, Vhat, _, slope = self._channel_averages(state)
        penalty = self.penalty_at(state, slope)
        kink = penalty.threshold if isinstance(penalty, kernels.LP) else penalty.strengths[0]
        prior, scale = self.teacher_prior
        parts = []
        for pi, v in zip(*prior.gaussian_mixture()):
            v = scale**2 * v
            s = jnp.sqrt(mhat**2 * v + qhat)
            z, w = kernels.panel_rule(jnp.stack(jnp.broadcast_arrays(kink / s, -kink / s, 0.0 * s, 3.0, -3.0)), order)
            b = s * z
            parts.append((pi * w, penalty.prox(b / Vhat, 1 / Vhat), mhat * v * b / s**2,
                          jnp.broadcast_to(jnp.sqrt(v * qhat) / s, b.shape)))
        return tuple(jnp.concatenate(x) for x in zip(*parts))

    def consistent_threshold(self, state: AttackOverlaps, a, order: int = 24):
        """``G(a) = min_{mu >= 0} eps_test N(mu) + mu a``: how far a consistent attack can lower the
        student's margin ``sign(z) w.x / sqrt(d)`` at the teacher's field ``|z| = a`` (an array), with
        ``N`` :func:`deviation_norm` on :meth:`deviation_law` (module docstring, consistent attacks);
        ``eps_test N(0) = eps_test P^{1/k}`` for the unconstrained attack. ``N`` is convex, its minimum
        below ``2 N(0) / (E|w*|^k)^{1/k}`` (the triangle inequality): ``mu`` by bisection on
        ``eps_test N'(mu) + a``, the value's derivatives in the parameters those at fixed ``mu`` (the
        envelope theorem)."""
        eps, k = self.eps_test, self.dual_exponent
        law = self.deviation_law(state, order)
        prior, scale = self.teacher_prior
        gamma = jnp.exp(jax.scipy.special.gammaln((k + 1) / 2)) / jnp.sqrt(jnp.pi)
        teacher = sum(pi * (2 * scale**2 * v) ** (k / 2) * gamma for pi, v in zip(*prior.gaussian_mixture()))
        bound = 2 * deviation_norm(law, jnp.zeros_like(state.q), k, order) / teacher ** (1 / k)

        def minimiser(a, fixed):
            law, eps, bound = fixed
            derivative = jax.grad(lambda mu: deviation_norm(law, mu, k, order))

            def halve(_, bracket):
                lo, hi = bracket
                mid = 0.5 * (lo + hi)
                below = eps * derivative(mid) + a < 0
                return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

            lo, hi = jax.lax.fori_loop(0, 45, halve, (jnp.zeros_like(a), bound + jnp.zeros_like(a)))
            return 0.5 * (lo + hi)

        frozen = jax.lax.stop_gradient((law, eps, bound))
        mu = jax.lax.stop_gradient(jax.vmap(minimiser, (0, None))(jax.lax.stop_gradient(a), frozen))
        return eps * jax.vmap(lambda mu: deviation_norm(law, mu, k, order))(mu) + mu * a

    def inconsistent_error(self, state: AttackOverlaps, order: int = 24):
        """The part of the noiseless robust error that only attacks changing ``sign(z)`` reach, for
        l-infinity and lp attacks (module docstring, consistent attacks): the integral over the
        teacher's field ``a = |z|`` in ``[0, a0]``, ``a0 = -eps_test N'(0)``, of the gap between the
        unconstrained attack's threshold ``eps_test N(0)`` and the consistent one's,
        :meth:`consistent_threshold`."""
        eps, m, q, rho, k = self.eps_test, state.m, state.q, self.rho, self.dual_exponent
        law = self.deviation_law(state, order)
        zero = jnp.zeros_like(q)
        N0, slope = jax.value_and_grad(lambda mu: deviation_norm(law, mu, k, order))(zero)
        top = jnp.maximum(-eps * slope, 0.0)
        a, wa = kernels.legendre_panels(jnp.stack([zero, top / 2, top]), order)
        G = self.consistent_threshold(state, a, order)
        spread = jnp.sqrt(jnp.maximum(q - m**2 / rho, jnp.finfo(q.dtype).tiny))
        density = jnp.exp(-0.5 * a**2 / rho) / jnp.sqrt(2 * jnp.pi * rho)
        cdf = jax.scipy.special.ndtr
        return 2 * jnp.sum(wa * density * (cdf((eps * N0 - m * a / rho) / spread) - cdf((G - m * a / rho) / spread)))


def deviation_norm(law, mu, k, order: int = 24):
    """``N(mu) = (E|w_hat - mu w*|^k)^{1 / k}`` over the rule ``law`` of :meth:`Adversarial.deviation_law`
    (``N(0)^k = P``): given each node, the Gaussian ``w*`` on panels cut where ``w_hat - mu w*`` changes
    sign (a kink of ``|.|^k``)."""
    weight, w_hat, mean, sd = law
    center, spread = w_hat - mu * mean, mu * sd
    cut = jnp.where(spread > 0, center / jnp.where(spread > 0, spread, 1.0), 0.0)
    g, wg = kernels.panel_rule(cut[:, None], order)
    inner = jnp.sum(wg * kernels.penalties._power(jnp.abs(center[:, None] - spread[:, None] * g), k), axis=-1)
    return jnp.sum(weight * inner) ** (1 / k)


def _modes(x):
    """An optional per-mode array, in floating point."""
    if x is None:
        return None
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


class AdversarialGCM(GCM, Adversarial):
    r"""Adversarial training on anisotropic data with an attack and a penalty geometry, spectral form.

    **Setting** (Tanner, Vilucchio, Loureiro & Krzakala 2025, "A high dimensional statistical model
    for adversarial training: geometry and trade-offs", AISTATS, arXiv:2402.05674). Inputs
    ``x ~ N(0, Sigma_x)``, the teacher's field ``z = w*.x / sqrt(d)`` of variance
    ``rho = w*^T Sigma_x w* / d``, labels ``+-1`` from ``teacher``, ``alpha = n / d``, and

    .. math::
        \min_w \sum_i \max_{\delta^T \Sigma_\delta^{-1} \delta \le \varepsilon^2}
            l\big(y_i w \cdot (x_i + \delta) / \sqrt{d}\big) + \frac{\lambda}{2} w^T \Sigma_w w
        = \min_w \sum_i l\big(y_i w \cdot x_i / \sqrt{d} - \varepsilon \sqrt{P}\big)
            + \frac{\lambda}{2} w^T \Sigma_w w ,\quad P = w^T \Sigma_\delta w / d

    (the worst ``delta`` is ``-eps y Sigma_delta w / sqrt(w^T Sigma_delta w)``). ``Sigma_x``,
    ``Sigma_delta`` and ``Sigma_w`` are diagonal in one basis: on its mode ``j`` (a fraction
    ``weights_j`` of the ``d`` directions) they are ``omega_j``, ``attack_j`` and ``ridge_j``, and the
    teacher's projection is ``theta2_j = d (e_j . Sigma_x w* / sqrt(d))^2 = omega_j^2 (w*_j)^2``, as in
    :class:`~hdtheory.GCM` (of which this is the ``eps = 0`` case with ``ridge = 1``, and
    :class:`~hdtheory.Adversarial` the case of one isotropic mode, ``omega = attack = ridge = 1``,
    ``theta2 = rho``). The paper's block feature model is :func:`block_features`; its ``alpha = n / d``
    is this one. A penalty ``lam' w^T Sigma_w w`` without the 1/2 is ``lam = 2 lam'`` here, and
    ``lam = 2 alpha lam'`` if the loss is averaged over the samples (CONVENTIONS).

    **Fixed point.** As for :class:`~hdtheory.Adversarial`, the minimiser's stationarity condition

    .. math::
        \sum_i l'(\cdot)\, y_i x_i / \sqrt{d}
        + \Big(\lambda \Sigma_w + \frac{\varepsilon}{d \sqrt{P}} \sum_i |l'(\cdot)|\, \Sigma_\delta\Big) w = 0

    is that of the fixed-shift loss ``l(y z - s)``, ``s = eps sqrt(P)``, with the penalty matrix
    ``lam Sigma_w + Phat Sigma_delta``: a :class:`~hdtheory.GCM` whose ridge on mode ``j`` is
    ``r_j = lam ridge_j + Phat attack_j`` (the shift does not depend on ``q``, so ``Vhat`` has no norm
    term), with one more order parameter and its conjugate,

    .. math::
        D_j = r_j + \hat V \omega_j,\quad
        m = \Big\langle \frac{\hat m\, \theta^2}{D} \Big\rangle,\quad
        q = \Big\langle \omega\, \frac{\hat m^2 \theta^2 + \hat q\, \omega}{D^2} \Big\rangle,\quad
        V = \Big\langle \frac{\omega}{D} \Big\rangle,\quad
        P = \Big\langle \mathrm{attack}\, \frac{\hat m^2 \theta^2 + \hat q\, \omega}{D^2} \Big\rangle,

    .. math:: \hat P = \frac{\alpha \varepsilon}{\sqrt{P}}\, \mathbb{E}[y f_s]
        = 2 \alpha \frac{ds}{dP}\, \mathbb{E}[y f_s] ,

    ``(mhat, qhat, Vhat)`` those of :class:`~hdtheory.ERM` with the output function at the shifted
    field ``f_s = f(y, omega - y s, V)``, ``E[y f_s] = E|l'|`` at the training margins. For one
    isotropic mode ``P = q`` and ``Phat`` is the norm term of :class:`~hdtheory.Adversarial`'s
    ``Vhat``. Derived in these conventions and checked against simulations at finite ``d``
    (:mod:`hdtheory.simulate.adversarial`), not term by term against the paper's equations.

    **Observables.** Those of :class:`~hdtheory.GCM` and :class:`~hdtheory.Adversarial`, with the
    test-time attack of the same geometry: it shifts the field ``w.x / sqrt(d) ~ N(0, q)`` by
    ``eps_test sqrt(P)``, so ``robust_error = P(sign(z) u < eps_test sqrt(P / q))``, ``u`` standard;
    ``boundary_error`` likewise; ``P``, ``Phat``, ``margin_shift = eps sqrt(P)``. Per mode,
    :meth:`mode_metrics`.

    **Where the attack zeroes the weights it sees.** ``eps sqrt(P)`` is a group-lasso penalty on the
    attacked modes taken together: past a radius their weights are all exactly zero, ``P = 0`` (the
    collapse to ``w = 0`` of :class:`~hdtheory.Adversarial` when every mode is attacked; with a
    block that the attack does not see, the minimiser is then plain ERM on that block). There
    ``log P`` runs off and :func:`hdtheory.solve` reports the point not converged, never a number.
    """

    attack: jax.Array | None = eqx.field(default=None, converter=_modes)
    """Eigenvalues of ``Sigma_delta``, one per mode (the shape of ``omega``); ``None``: ones (an l2 ball)."""
    ridge: jax.Array | None = eqx.field(default=None, converter=_modes)
    """Eigenvalues of ``Sigma_w``, one per mode (the shape of ``omega``); ``None``: ones (the ridge)."""

    def __check_init__(self):
        for name in ("attack", "ridge"):
            value = getattr(self, name)
            if value is not None:
                if value.shape != self.omega.shape:
                    raise ParameterError(
                        f"parameter {name!r} must have the shape of 'omega', {self.omega.shape}, got {value.shape}"
                    )
                check_in(name, value, NONNEGATIVE if name == "attack" else POSITIVE)
        if self.attack is not None and is_concrete(self.attack) and is_concrete(self.omega):
            if not np.any((np.asarray(self.attack) > 0) & (np.asarray(self.omega) > 0)):
                raise ParameterError(
                    "parameter 'attack' must be positive on some mode with omega > 0 (else P = 0 and the "
                    "attack does nothing: that is GCM)"
                )

    @property
    def attack_spectrum(self) -> jax.Array:
        """``attack``, or ones."""
        return jnp.ones_like(self.omega) if self.attack is None else self.attack

    @property
    def ridge_spectrum(self) -> jax.Array:
        """``ridge``, or ones."""
        return jnp.ones_like(self.omega) if self.ridge is None else self.ridge

    def init(self, kind: str = "uninformed") -> AttackOverlaps:
        """ERM's start, with ``P = q <attack omega> / <omega^2>`` (``P = q`` for an isotropic attack
        on isotropic data)."""
        start = super().init(kind)
        ratio = self.average(self.attack_spectrum * self.omega) / self.average(self.omega**2)
        return AttackOverlaps(m=start.m, q=start.q, V=start.V, P=start.q * jnp.maximum(ratio, 1e-3))

    def _weight_side(self, state):
        """The conjugates and the ridge ``lam ridge_j + Phat attack_j`` on each mode."""
        mhat, qhat, Vhat, _, slope = self._channel_averages(state)
        Phat = self.attack_conjugate(state, slope)
        return mhat, qhat, Vhat, self.lam * self.ridge_spectrum + Phat * self.attack_spectrum

    def update(self, state: AttackOverlaps) -> AttackOverlaps:
        response, second, inverse = self._mode_moments(state)
        return AttackOverlaps(
            m=self.average(self.theta2 * response),
            q=self.average(self.omega * second),
            V=self.average(self.omega * inverse),
            P=self.average(self.attack_spectrum * second),
        )

    def mode_metrics(self, state: AttackOverlaps) -> dict[str, jax.Array]:
        r"""Per mode ``j`` (arrays of the shape of ``omega``), for the student's feature on that mode,
        ``f_j(x) = sum_{i in j} w_i x_i / sqrt(d)``:

        - ``m``, ``q``, ``P``: the mode's shares of the overlaps (they sum to the totals);
        - ``usefulness``: ``E[sign(z) f_j(x)] = sqrt(2 / (pi rho)) m_j`` (``f_j`` and ``z`` are jointly
          Gaussian), how much the feature agrees with the noiseless label;
        - ``robust_usefulness``: ``E[min_delta sign(z) f_j(x + delta)] = usefulness_j - eps_test
          sqrt(P_j)``, the same under the test attack, which spends its whole budget on the mode.

        These are the usefulness and robust usefulness of a feature of Ilyas et al. 2019 ("Adversarial
        examples are not bugs, they are features", their section 2), unnormalised, with which Tanner et
        al. rank the directions of the data: a mode whose ``robust_usefulness`` is negative is a
        non-robust feature at ``eps_test``.
        """
        response, second, _ = self._mode_moments(state)
        share = self.weights if self.weights is not None else jnp.full_like(self.omega, 1 / self.omega.shape[-1])
        m, q, P = share * self.theta2 * response, share * self.omega * second, share * self.attack_spectrum * second
        usefulness = jnp.sqrt(2 / (jnp.pi * self.rho)) * m
        return {"m": m, "q": q, "P": P, "usefulness": usefulness,
                "robust_usefulness": usefulness - self.eps_test * jnp.sqrt(P)}


def block_features(fractions, variances, signal, attacks=None, ridges=None, **kwargs) -> AdversarialGCM:
    r"""The block feature model of Tanner et al. 2025 as an :class:`AdversarialGCM`.

    ``d`` coordinates in blocks, block ``b`` a fraction ``fractions_b`` of them, with data variance
    ``variances_b`` (``Sigma_x``), mean squared teacher component ``signal_b`` (``|w*_b|^2 = d
    fractions_b signal_b``), attack strength ``attacks_b`` (``Sigma_delta``, ones by default) and
    penalty weight ``ridges_b`` (``Sigma_w``, ones by default): ``omega = variances``,
    ``theta2 = variances^2 signal``, ``weights = fractions``, ``rho = sum_b fractions_b variances_b
    signal_b``. ``kwargs`` go to :class:`AdversarialGCM` (``alpha``, ``lam``, ``eps``, ``eps_test``,
    ``loss``, ``teacher``...).
    """
    fractions, variances, signal = (_modes(x) for x in (fractions, variances, signal))
    return AdversarialGCM(
        omega=variances, theta2=variances**2 * signal, weights=fractions,
        rho=jnp.sum(fractions * variances * signal), attack=attacks, ridge=ridges, **kwargs,
    )
