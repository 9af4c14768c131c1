r"""Adversarial training of a linear classifier against l2 attacks: the replica fixed point.

**Setting** (that of :mod:`hdtheory.models.erm`, classification teachers). ``n`` samples
``x_i ~ N(0, I_d)``, ``alpha = n / d``, labels ``y_i = +-1`` from the teacher's field
``z_i = w*.x_i / sqrt(d)`` (``teacher`` sign, probit or logistic, with their ``noise``), and the
estimator trained against an attacker who moves each training input within an l2 ball of radius
``eps``:

.. math::
    \min_w \sum_i \max_{|\delta_i|_2 \le \varepsilon}
        l\big(y_i\, w \cdot (x_i + \delta_i) / \sqrt{d}\big) + \frac{\lambda}{2} |w|^2
    = \min_w \sum_i l\big(y_i\, w \cdot x_i / \sqrt{d} - \varepsilon |w|_2 / \sqrt{d}\big)
        + \frac{\lambda}{2} |w|^2 ,

for a margin loss ``l`` that does not increase with the margin (``logistic``, ``hinge``): the
worst ``delta`` is ``-eps y w / |w|`` (the dual norm of l2 is l2). ``eps`` is of order one while the
inputs have norm ``sqrt(d)``, so that the margin shift ``eps |w|_2 / sqrt(d) = eps sqrt(q)`` is of
order one: the regime of Vilucchio, Tsilivis, Loureiro & Kempe 2024 ("On the geometry of
regularization in adversarial training: high-dimensional asymptotics and generalization bounds",
arXiv:2410.16073), who treat general penalties and attack norms, and of Taheri, Pedarsani &
Thrampoulidis 2020 ("Asymptotic behavior of adversarial training in binary classification",
arXiv:2010.13275). An lp attack of radius ``eps_p`` shifts the margin by ``eps_p |w|_{p*} / sqrt(d)``
(``p*`` the dual exponent), the same order for ``eps_p ~ eps d^{1/p - 1/2}``. A penalty written
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
The fixed point is ERM's (:mod:`hdtheory.models.erm`, ridge) with ``f_s`` in place of ``f`` and

.. math::
    \hat V = -\alpha\, \mathbb{E}\, \partial_\omega f_s
        + \frac{\alpha \varepsilon}{\sqrt{q}}\, \mathbb{E}[y f_s] ,

``E[y f_s] = E|l'(y z - s)|`` at the training fields ``z = prox``, the expectations those of ERM
(:meth:`ERM.margin_shift` carries the shift and its derivative into ERM's channel integrals, whose
panels move with it). ``eps = 0`` is ERM to rounding.

**Observables.** ERM's (``test_error``, ``test_error_total``: the clean 0-1 errors; ``train_loss``:
the robust training loss ``E l(y z - eps sqrt(q))``; ``norm = sqrt(q)``; ...), and at the test-time
budget ``eps_test``: ``robust_error``, ``P(y u < eps_test)`` with ``u = w.x / |w| ~ N(0, 1)`` (the
probability that an l2 attack of radius ``eps_test`` makes the classifier err, against the noiseless
label ``sign(z)`` as ``test_error``), ``robust_error_total`` (against the noisy label), and
``boundary_error = robust_error - test_error = 2 int_0^eps_test P(sign z = +1 | u) phi(u) du``
(:func:`hdtheory.kernels.boundary_error`); and ``margin_shift = eps sqrt(q)``.

**Where the estimator is trivial.** The objective's slope at ``w = 0`` along a unit ``u`` is
``l'(0) (sum_i y_i x_i.u - n eps) / sqrt(d)``: for ``eps`` at or above ``|sum_i y_i x_i| / n``
(``-> sqrt(E[y z]^2 / rho + 1 / alpha)``, ``sqrt(2 / pi + 1 / alpha)`` for the noiseless sign
teacher) the minimiser is ``w = 0``, whatever ``lam`` and the loss; there ``q -> 0`` and
:func:`hdtheory.solve` does not converge (``converged`` false), never a number.
"""

import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, ParameterError, choice, parameter
from .erm import ERM, Overlaps

_LOSSES = {name: kernels.LOSSES[name] for name in ("logistic", "hinge")}
"""Margin losses that do not increase with the margin: the inner maximisation is in closed form."""
_TEACHERS = {name: kernels.CHANNELS[name] for name in ("sign", "probit", "logistic")}
"""Teachers with labels +-1 from a teacher field (the robust errors need ``P(y | z)``)."""


class Adversarial(ERM):
    """Adversarial training against l2 attacks of radius ``eps``; see the module docstring."""

    eps: jax.Array = parameter(0.2, NONNEGATIVE, "l2 radius of the training attack, |delta|_2 <= eps (|x|_2 ~ sqrt(d))")
    eps_test: jax.Array = parameter(0.2, NONNEGATIVE, "l2 radius of the test-time attack of robust_error")
    loss: str = choice("logistic", _LOSSES, "training margin loss")
    teacher: str = choice("sign", _TEACHERS, "teacher channel (labels +-1)")

    def __check_init__(self):
        if self.penalty != "ridge":
            raise ParameterError(f"parameter 'penalty' must be ridge for Adversarial, got {self.penalty!r}")

    def margin_shift(self, q):
        """``(eps sqrt(q), eps / (2 sqrt(q)))``: the training margin's shift and its derivative in ``q``."""
        sqrt_q = jnp.sqrt(q)
        return self.eps * sqrt_q, self.eps / (2 * sqrt_q)

    def robust_errors(self, m, q, budget=None):
        """``(robust_error, robust_error_total, boundary_error)`` at an l2 ``budget`` (``eps_test`` by
        default): see the module docstring."""
        budget = self.eps_test if budget is None else budget
        clean, clean_total = self.test_errors(m, q)
        noiseless = kernels.Sign(jnp.zeros_like(self.noise))
        boundary = kernels.boundary_error(noiseless, m, q, self.rho, budget, self.panel_order)
        boundary_total = kernels.boundary_error(self.channel, m, q, self.rho, budget, self.panel_order)
        return clean + boundary, clean_total + boundary_total, boundary

    def observables(self, state: Overlaps) -> dict[str, jax.Array]:
        robust, robust_total, boundary = self.robust_errors(state.m, state.q)
        return super().observables(state) | {
            "robust_error": robust,
            "robust_error_total": robust_total,
            "boundary_error": boundary,
            "margin_shift": self.margin_shift(state.q)[0],
        }
