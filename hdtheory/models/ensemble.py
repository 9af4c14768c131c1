r"""Ensembles of learners on one data set with their own random features: the replica fixed point.

**Setting** (Loureiro, Gerbelot, Refinetti, Sicuro and Krzakala 2022, "Fluctuations, bias, variance &
ensemble of learners: exact asymptotics for convex losses in high dimension", ICML; d'Ascoli,
Refinetti, Biroli and Krzakala 2020, "Double trouble in double descent: bias and variance(s) in the
lazy regime", ICML). ``n`` samples ``(x_i, y_i)`` with ``x ~ N(0, I_d)`` and labels from a teacher
channel of the field ``z = w*.x / sqrt(d)``, ``|w*|^2 / d = rho``. Learner ``a`` has its own features
``v_a = sigma(F_a x / sqrt(d))`` (``p = gamma d`` of them, ``F_a`` with i.i.d. ``N(0, 1)`` entries, independent
between learners) and minimises, on the same data,

.. math:: \sum_i l(y_i, w_a \cdot v_{a,i} / \sqrt{p}) + \frac{\lambda}{2} |w_a|^2 .

By Gaussian equivalence (:func:`~hdtheory.models.gcm.gaussian_equivalence`, ``kappa_0 = 0``) the
features of the learners are jointly Gaussian, ``v_a = kappa_1 F_a x / sqrt(d) + kappa_* xi_a`` with
``xi_a`` independent between learners, so that

.. math::
    \Omega_{aa} = \kappa_1^2 F_a F_a^T / d + \kappa_*^2 I,\quad
    \Omega_{ab} = \mathbb{E}[v_a v_b^T] = \kappa_1^2 F_a F_b^T / d,\quad
    t_a = \mathbb{E}[z v_a] = \kappa_1 F_a w^* / d ,

and each learner on its own is the :class:`~hdtheory.models.gcm.GCM` of ``(Omega_aa, t_a)`` at
``alpha = n / p`` (its fixed point ``(m_a, q_a, V_a)`` and conjugates ``(mhat_a, qhat_a, Vhat_a)``
do not depend on the other learner).

**Two learners.** Their cross overlap ``q_ab = E[(w_a.v_a)(w_b.v_b)] / p`` (the covariance of their
predictions at a fresh input) solves the two-learner saddle point of Loureiro et al. 2022 (their
equations for ``K`` learners with correlated features, here ``K = 2`` and the ridge penalty). With the
ridge penalty the learners' weights are, in law, ``w_a = D_a^{-1} (mhat_a sqrt(p) t_a + g_a)``,
``D_a = lam I + Vhat_a Omega_aa``, with Gaussian ``g`` of covariances ``E[g_a g_b^T] = qhat_ab
Omega_ab`` (``qhat_aa = qhat_a``), so that

.. math::
    q_{ab} = \hat m_a \hat m_b\, t_a^T D_a^{-1} \Omega_{ab} D_b^{-1} t_b
           + \hat q_{ab}\, \frac{1}{p} \mathrm{tr}\big(D_a^{-1} \Omega_{ab} D_b^{-1} \Omega_{ba}\big),
    \qquad \hat q_{ab} = \alpha\, \mathbb{E}[f_a(y, \omega_a) f_b(y, \omega_b)],

``f = (prox_{V l(y, .)}(omega) - omega) / V`` and ``(z, omega_a, omega_b)`` jointly Gaussian with
covariance ``[[rho, m_a, m_b], [m_a, q_a, q_ab], [m_b, q_ab, q_b]]``
(:func:`hdtheory.kernels.resampling.cross_conjugate`, the average shared with
:class:`~hdtheory.Resample`, whose learners differ by their sample weights instead). For ``a = b``
this is the GCM's ``q``. For the square loss ``f = (y - omega) / (1 + V)`` and
``qhat_ab = alpha (E y^2 - (m_a + m_b) E[z y] / rho + q_ab) / ((1 + V_a)(1 + V_b))``: the equation for
``q_ab`` is linear. Loureiro et al. use ``alpha = n / d`` with ``d`` the learners' dimension (here
``p``) and the penalty ``(lam / 2) |w|^2`` on the summed loss, as here. Losses: square, logistic,
and the kinked hinge, Huber (``delta``) and absolute losses, whose two-learner integral is
:func:`hdtheory.kernels.resampling.piecewise_cross_average` (panels at their kinks); the
non-convex ``tukey`` and ``cauchy`` are refused (see :mod:`hdtheory.models.resample`).

**Matrix form** (:class:`EnsembleGCM`). The sums are taken in the eigenbases
``Omega_aa = U_a diag(omega_a) U_a^T``: ``C = U_a^T Omega_ab U_b`` and the teacher's second moments
``Theta_ab = p U_a^T E[t_a t_b^T] U_b``, ``theta2_a = diag(Theta_aa)`` (the GCM's projections), so
that ``S = t_a^T D_a^{-1} Omega_ab D_b^{-1} t_b = (1 / p) sum_jk Theta_jk C_jk / (D_aj D_bk)`` and
``T = tr(D_a^{-1} Omega_ab D_b^{-1} Omega_ba) / p = (1 / p) sum_jk C_jk^2 / (D_aj D_bk)``:
``O(p^2)`` per iteration after two eigendecompositions. :meth:`EnsembleGCM.from_matrices` takes the
covariances and the teacher's vectors ``t_a, t_b`` (a given teacher); :func:`random_feature_ensemble`
draws ``F_a, F_b`` at a finite ``d`` and averages the teacher over its isotropic law,
``E[t_a t_b^T] = kappa_1^2 rho F_a F_b^T / d^2`` (as :func:`~hdtheory.models.gcm.random_features`).

**The limit d -> infinity** (:class:`RandomFeatureEnsemble`). With ``A_a = F_a^T D_a^{-1} F_a / d``
(``d x d``), the averaged teacher gives ``S = kappa_1^4 rho tr(A_a A_b) / d`` and
``T = (kappa_1^4 / gamma) tr(A_a A_b) / d``. ``A_a`` and ``A_b`` are independent and their laws are
invariant under rotations of the input space (``F_a O`` has the law of ``F_a``): they are
asymptotically free, so that ``tr(A_a A_b) / d -> (tr A_a / d)(tr A_b / d)`` with
``tr A_a / d = gamma <s / D_a>`` over the Marchenko-Pastur spectrum ``s`` of ``F_a F_a^T / d``. In
the fields of :func:`~hdtheory.models.gcm.random_features` (``theta2 = gamma kappa_1^2 rho s``):

.. math::
    S = \frac{\langle \theta^2 / D_a \rangle \langle \theta^2 / D_b \rangle}{\rho},\qquad
    T = \frac{S}{\gamma \rho},

so that ``mhat_a mhat_b S = m_a m_b / rho``: averaged over its features and its data, a learner
predicts ``(m / rho) z``. (This reduction by freeness is ours, checked against the matrix form at
features drawn at a finite ``d``; the papers evaluate these traces in their own ways.) The mean ``kappa_0`` of the features is left out as in
:func:`~hdtheory.models.gcm.random_features`: its rank-one mode contributes ``O(1 / p)``.

**Ensembles.** The average of ``M`` learners with independent features, ``f_M = (1 / M) sum_a f_a``,
has the teacher overlap ``m`` and ``q_M = q / M + (1 - 1 / M) q_ab`` (learners exchangeable: the
two learners' ``m`` and ``q`` are averaged); ``ensemble_error`` is its excess test error at ``M``
(``M = inf`` allowed), ``ensemble_error_inf`` at ``M -> infinity`` (``q_M = q_ab``), ``correlation``
``q_ab / sqrt(q_a q_b)`` the correlation of two learners' predictions.

**Bias and variances** (every loss and teacher; Loureiro et al. 2022's decomposition over the
data, the features and both). The randomness of a learner's prediction ``f(x)`` comes from the
training inputs ``X``, the label noise (the labels' randomness given the teacher's field: ``eps`` of
the linear teacher, the flips of the sign teacher, the noise before the probit's sign) and the
features ``F``. With ``C_S = E_x E[f_a(x) f_b(x)]`` for two learners that share the sources ``S`` and
draw the others independently (``C_XeF = q``, ``C_Xe = q_ab``), the sequential decomposition of
d'Ascoli et al. 2020 (noise innermost, then the features, then the data) is

.. math::
    \mathrm{bias} = \rho - 2 m + C_\emptyset,\quad
    V_{\rm data} = C_X - C_\emptyset,\quad
    V_{\rm features} = C_{XF} - C_X,\quad
    V_{\rm noise} = q - C_{XF},

summing to ``rho - 2 m + q = E_x E (f(x) - z)^2``, the squared error of the prediction against the
teacher's field: the excess test error of the linear teacher; for the classification teachers a
squared error too (the 0-1 error ``test_error`` is not decomposed). Adlam and Pennington's symmetric
terms (2020, "Understanding double descent requires a fine-grained bias-variance decomposition",
NeurIPS) that need no shared noise without shared inputs are ``V_F = C_F - C_empty`` and
``V_FX = C_XF - C_X - C_F + C_empty``, the data's ``V_X`` is ``variance_data``. Each ``C`` is a cross
overlap of the two-learner equations above:

* independent inputs (``C_empty``, ``C_F``): the two learners' data terms are independent,
  ``qhat_ab = 0``, and ``C = mhat_a mhat_b S`` in closed form given the one-learner fixed point;
* shared inputs with labels drawn independently given the teacher's field ``z`` (``C_X``, and
  ``C_XF`` with ``Omega_ab = Omega_aa``, ``t_b = t_a``: a learner with itself),
  ``qhat = alpha E[f_a(y_a, omega_a) f_b(y_b, omega_b)]`` with ``y_a, y_b`` independent given ``z``
  (``independent_labels`` of :func:`hdtheory.kernels.resampling.cross_conjugate`), a fixed point
  in ``C`` like ``q_ab``'s. For the square loss the equation is linear, the closed form above with
  ``E[y_a y_b] = E[(E[y | z])^2]`` (:func:`hdtheory.kernels.resampling.label_correlation`:
  ``rho`` instead of ``rho + noise`` for the linear teacher, ``(1 - 2 noise)^2`` instead of 1 for
  the sign teacher) in place of ``E y^2``. A noiseless teacher gives ``C_X = q_ab``, ``C_XF = q``.

``C_X`` and ``C_XF`` (one per learner) are solved with the rest of the state (``EnsembleState``'s
``fresh``), so that their derivatives come from the engine's implicit differentiation; the four
cross overlaps are one vmapped kernel evaluation per iteration. ``bias_variance=off`` leaves the
three out (a solve of a loss without a closed form then costs about a tenth).

**Observables.** ``m, q, V, test_error, test_error_total`` (the mean of the two learners', ERM's
conventions), ``q_ab``, ``correlation``, ``ensemble_q``, ``ensemble_error``, ``ensemble_error_inf``,
and, unless ``bias_variance=off``, ``bias``, ``variance_data``, ``variance_features``,
``variance_noise``, ``variance_features_alone`` and ``variance_features_data`` (Adlam and
Pennington's ``V_F`` and ``V_FX``).
"""

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError
from .._theory import check_in, choice, integer, is_concrete, parameter
from ..kernels.resampling import NON_CONVEX, WeightLaw, cross_conjugate, label_correlation
from .erm import Overlaps
from .gcm import GCM, RF_ACTIVATIONS, _array, gaussian_equivalence, random_features

_LOSSES = kernels.LOSSES | {"absolute": kernels.Absolute}
_CHANNELS = {name: kernels.CHANNELS[name] for name in ("linear", "sign", "probit")}
_ODD = ("erf", "tanh", "sign", "linear")


class EnsembleState(eqx.Module):
    """Each learner's overlaps, their cross overlap ``q_ab`` and the cross overlaps of the
    decomposition with fresh labels, ``fresh = (C_X, C_XF of a, C_XF of b)`` (the two learners, then
    each with itself; empty with ``bias_variance=off``)."""

    a: Overlaps
    b: Overlaps
    q_ab: jax.Array
    fresh: jax.Array


class Ensemble(FixedPointTheory):
    """Two learners on one data set with coupled features: the equations of the module docstring,
    given the two learners (each a :class:`~hdtheory.GCM`) and the sums that couple them
    (:meth:`cross_sums`). Subclasses: :class:`EnsembleGCM` (matrix form), :class:`RandomFeatureEnsemble`
    (the limit for independent random features)."""

    @property
    @abc.abstractmethod
    def learners(self) -> tuple[GCM, GCM]:
        """The two learners, each a :class:`~hdtheory.GCM` on its own."""

    @abc.abstractmethod
    def cross_sums(self, Vhat_a, Vhat_b):
        """``(S, T) = (t_a^T D_a^{-1} Omega_ab D_b^{-1} t_b, tr(D_a^{-1} Omega_ab D_b^{-1} Omega_ba) / p)``."""

    @staticmethod
    def same_sums(learner: GCM, Vhat):
        """:meth:`cross_sums` of a learner with itself (``Omega_ab = Omega_aa``, ``t_b = t_a``):
        ``(<theta2 omega / D^2>, <omega^2 / D^2>)``."""
        D, positive = learner._denominators(Vhat)
        omega = learner.omega
        return (
            learner.average(jnp.where(positive, learner.theta2 * omega / D**2, 0.0)),
            learner.average(jnp.where(positive, omega**2 / D**2, 0.0)),
        )

    def init(self, kind: str = "uninformed") -> EnsembleState:
        a, b = (learner.init(kind) for learner in self.learners)
        half = 0.5 * jnp.sqrt(a.q * b.q)
        fresh = 0.5 * jnp.stack([jnp.sqrt(a.q * b.q), a.q, b.q])
        return EnsembleState(a=a, b=b, q_ab=half, fresh=fresh if self.bias_variance == "on" else fresh[:0])

    def unconstrain(self, state: EnsembleState) -> jax.Array:
        """Each learner's GCM coordinates, and the cross overlaps as they are."""
        la, lb = self.learners
        return jnp.concatenate(
            [la.unconstrain(state.a), lb.unconstrain(state.b), state.q_ab[None], state.fresh]
        )

    def constrain(self, u: jax.Array) -> EnsembleState:
        la, lb = self.learners
        return EnsembleState(a=la.constrain(u[:3]), b=lb.constrain(u[3:6]), q_ab=u[6], fresh=u[7:])

    def _square_cross(self, a: Overlaps, b: Overlaps, mhat_a, mhat_b, sums, labels):
        """``q_ab`` of the square loss in closed form: the solution of the linear equation
        ``q_ab = mhat_a mhat_b S + k (labels - (m_a + m_b) E[z y] / rho + q_ab)``,
        ``k = alpha T / ((1 + V_a)(1 + V_b))``, for ``E[y_a y_b] = labels``."""
        S, T = sums
        learner = self.learners[0]
        _, cross = learner.channel.label_moments(self.rho)
        k = learner.alpha * T / ((1 + a.V) * (1 + b.V))
        return (mhat_a * mhat_b * S + k * (labels - (a.m + b.m) * cross / self.rho)) / (1 - k)

    def _cross(self, a: Overlaps, b: Overlaps, mhat_a, mhat_b, sums, q_cross, independent_labels):
        """The map of a cross overlap ``q_cross`` of learners ``a`` and ``b`` with the cross sums ``sums``
        (module docstring), on the same labels or (``independent_labels``, traced) on labels drawn
        independently given the teacher's field: in closed form for the square loss (its fixed point,
        the map being linear), else :meth:`_kernel_cross`."""
        if self.loss == "square":
            order = self.cross_order
            labels = label_correlation(self.learners[0].channel, self.rho, independent_labels, order, order)
            return self._square_cross(a, b, mhat_a, mhat_b, sums, labels)
        return self._kernel_cross(a, b, mhat_a, mhat_b, sums, q_cross, independent_labels)

    def _kernel_cross(self, a: Overlaps, b: Overlaps, mhat_a, mhat_b, sums, q_cross, independent_labels):
        """``mhat_a mhat_b S + qhat_ab T`` with ``qhat_ab`` by
        :func:`~hdtheory.kernels.resampling.cross_conjugate` (any loss)."""
        learner = self.learners[0]
        law = WeightLaw.constant(jnp.result_type(q_cross))
        qhat_ab = learner.alpha * cross_conjugate(
            learner.channel, learner.loss_fn, self.rho, (a.m, a.q, a.V, law), (b.m, b.q, b.V, law), q_cross,
            self.cross_order, self.cross_order, independent_labels,
        )
        return mhat_a * mhat_b * sums[0] + qhat_ab * sums[1]

    def _pairs(self, state: EnsembleState):
        """``(a, b, mhat_a, mhat_b, sums, q_cross, independent_labels)`` of the state's cross overlaps
        stacked on a leading axis: the two learners on one data set (``q_ab``), then, with the
        decomposition, with fresh labels (``C_X``) and each with itself with fresh labels
        (``C_XF``); and the conjugates ``mhat``, the cross sums ``S, T`` of the two learners and (with
        the decomposition) of each with itself."""
        learners, states = self.learners, (state.a, state.b)
        conjugates = [learner.conjugates(s) for learner, s in zip(learners, states)]
        mhats = [c[0] for c in conjugates]
        cross = self.cross_sums(conjugates[0][2], conjugates[1][2])
        count = 1 + state.fresh.shape[0]
        same = [self.same_sums(learner, c[2]) for learner, c in zip(learners, conjugates)] if count > 1 else []
        stack = lambda *trees: jax.tree.map(lambda *x: jnp.stack(x), *trees)  # noqa: E731
        pairs = (
            stack(*(state.a, state.a, state.a, state.b)[:count]), stack(*(state.b, state.b, state.a, state.b)[:count]),
            jnp.stack([mhats[0], mhats[0], mhats[0], mhats[1]][:count]),
            jnp.stack([mhats[1], mhats[1], mhats[0], mhats[1]][:count]),
            stack(*(cross, cross, *same)[:count]),
            jnp.concatenate([state.q_ab[None], state.fresh]),
            jnp.arange(count) > 0,
        )
        return pairs, mhats, cross, same

    def update(self, state: EnsembleState) -> EnsembleState:
        la, lb = self.learners
        # One program for the cross overlaps: the first on one label, the others on fresh ones.
        pairs, *_ = self._pairs(state)
        new = jax.vmap(self._cross)(*pairs)
        return EnsembleState(a=la.update(state.a), b=lb.update(state.b), q_ab=new[0], fresh=new[1:])

    def observables(self, state: EnsembleState) -> dict[str, jax.Array]:
        la, _ = self.learners
        a, b, q_ab = state.a, state.b, state.q_ab
        rho, channel = self.rho, la.channel
        m, q = (a.m + b.m) / 2, (a.q + b.q) / 2
        errors = [channel.test_errors(s.m, s.q, rho) for s in (a, b)]
        inverse_M = 1 / self.M
        ensemble_q = inverse_M * q + (1 - inverse_M) * q_ab
        out = {
            "m": m,
            "q": q,
            "V": (a.V + b.V) / 2,
            "test_error": (errors[0][0] + errors[1][0]) / 2,
            "test_error_total": (errors[0][1] + errors[1][1]) / 2,
            "q_ab": q_ab,
            "correlation": q_ab / jnp.sqrt(a.q * b.q),
            "ensemble_q": ensemble_q,
            "ensemble_error": channel.test_errors(m, ensemble_q, rho)[0],
            "ensemble_error_inf": channel.test_errors(m, q_ab, rho)[0],
        }
        return out | (self._bias_variance(state) if self.bias_variance == "on" else {})

    def _bias_variance(self, state: EnsembleState) -> dict[str, jax.Array]:
        """The decomposition of the module docstring (any loss and teacher)."""
        _, (mhat_a, mhat_b), cross, same = self._pairs(state)
        c_none = mhat_a * mhat_b * cross[0]
        c_features = (mhat_a**2 * same[0][0] + mhat_b**2 * same[1][0]) / 2
        c_data, c_data_features = state.fresh[0], jnp.mean(state.fresh[1:])
        m, q = (state.a.m + state.b.m) / 2, (state.a.q + state.b.q) / 2
        return {
            "bias": self.rho - 2 * m + c_none,
            "variance_data": c_data - c_none,
            "variance_features": c_data_features - c_data,
            "variance_noise": q - c_data_features,
            "variance_features_alone": c_features - c_none,
            "variance_features_data": c_data_features - c_data - c_features + c_none,
        }


class EnsembleGCM(Ensemble):
    """Two learners with coupled Gaussian features, matrix form (module docstring)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per feature n/p")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher variance E z^2")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    M: jax.Array = parameter(10.0, Interval(1.0, infinite=True), "number of learners in the ensemble (inf allowed)")
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    loss: str = choice("square", _LOSSES, "training loss", refused=NON_CONVEX)
    teacher: str = choice("linear", _CHANNELS, "teacher channel")
    bias_variance: str = choice(
        "on", dict.fromkeys(("on", "off")), "the bias-variance decomposition (three more cross overlaps to solve)"
    )
    cross_order: int = integer(24, Interval(4), "Gauss-Hermite nodes per axis and Legendre nodes per panel (cross overlap)")
    omega: jax.Array = eqx.field(default=((1.0,), (1.0,)), converter=_array)
    """Eigenvalues of ``Omega_aa`` and ``Omega_bb``, shape ``(2, p)``."""
    theta2: jax.Array = eqx.field(default=((1.0,), (1.0,)), converter=_array)
    """The teacher's projections ``diag(Theta_aa)``, ``diag(Theta_bb)``, shape ``(2, p)``."""
    cross: jax.Array = eqx.field(default=((1.0,),), converter=_array)
    """``C = U_a^T Omega_ab U_b``, shape ``(p, p)``."""
    theta_cross: jax.Array = eqx.field(default=((1.0,),), converter=_array)
    """``Theta_ab = p U_a^T E[t_a t_b^T] U_b``, shape ``(p, p)``."""

    def __check_init__(self):
        p = self.omega.shape[-1]
        if self.omega.shape != (2, p) or self.theta2.shape != (2, p) or self.cross.shape != (p, p) or (
            self.theta_cross.shape != (p, p)
        ):
            raise ParameterError(
                "'omega' and 'theta2' must have shape (2, p), 'cross' and 'theta_cross' (p, p); got "
                f"{self.omega.shape}, {self.theta2.shape}, {self.cross.shape}, {self.theta_cross.shape}"
            )
        self.learners  # the GCM's checks of each learner (spectra, rho, the loss against the teacher)

    @classmethod
    def from_matrices(cls, Omega_a, Omega_b, Omega_ab, t_a, t_b, rho, **kwargs) -> "EnsembleGCM":
        """The model for the features' covariances ``Omega_a, Omega_b, Omega_ab (p, p)`` and the
        teacher's cross-covariances ``t_a = E[z v_a]``, ``t_b (p,)`` (a given teacher), ``rho = E z^2``.
        ``kwargs`` go to :class:`EnsembleGCM` (``alpha = n / p``, ``lam``, ``loss``...)."""
        t_a, t_b = jnp.asarray(t_a), jnp.asarray(t_b)
        moments = jnp.outer(t_a, t_a), jnp.outer(t_b, t_b), jnp.outer(t_a, t_b)
        return cls(**_spectral_pair(Omega_a, Omega_b, Omega_ab, *moments), rho=rho, **kwargs)

    def _learner(self, i: int) -> GCM:
        return GCM(
            omega=self.omega[i], theta2=self.theta2[i], rho=self.rho, alpha=self.alpha, lam=self.lam,
            noise=self.noise, delta=self.delta, loss=self.loss, teacher=self.teacher,
        )

    @property
    def learners(self) -> tuple[GCM, GCM]:
        return self._learner(0), self._learner(1)

    def cross_sums(self, Vhat_a, Vhat_b):
        """``((1 / p) sum_jk Theta_jk C_jk / (D_aj D_bk), (1 / p) sum_jk C_jk^2 / (D_aj D_bk))``."""
        la, lb = self.learners
        D_a, pos_a = la._denominators(Vhat_a)
        D_b, pos_b = lb._denominators(Vhat_b)
        inverse = jnp.where(pos_a[:, None] & pos_b, 1 / (D_a[:, None] * D_b), 0.0)
        p = self.cross.shape[0]
        return jnp.sum(self.theta_cross * self.cross * inverse) / p, jnp.sum(self.cross**2 * inverse) / p


@jax.jit
def _spectral_pair(Omega_a, Omega_b, Omega_ab, T_aa, T_bb, T_ab):
    """The fields ``omega, theta2, cross, theta_cross`` of :class:`Ensemble` from the covariances and
    the teacher's second moments ``T = E[t t^T]``. Eigenvalues below ``p eps max(omega)`` are zero,
    with the rows of ``C`` and ``Theta`` on them."""
    p = Omega_a.shape[0]
    spectra, bases = [], []
    for Omega in (Omega_a, Omega_b):
        omega, U = jnp.linalg.eigh(Omega)
        spectra.append(jnp.where(omega > p * jnp.finfo(omega.dtype).eps * jnp.max(omega), omega, 0.0))
        bases.append(U)
    (omega_a, omega_b), (U_a, U_b) = spectra, bases
    keep = (omega_a > 0)[:, None] & (omega_b > 0)
    theta2 = jnp.stack(
        [jnp.where(o > 0, jnp.maximum(p * jnp.einsum("ij,ik,kj->j", U, T, U), 0.0), 0.0) for o, U, T in zip(spectra, bases, (T_aa, T_bb))]
    )
    return {
        "omega": jnp.stack(spectra),
        "theta2": theta2,
        "cross": jnp.where(keep, U_a.T @ Omega_ab @ U_b, 0.0),
        "theta_cross": jnp.where(keep, p * U_a.T @ T_ab @ U_b, 0.0),
    }


def feature_covariances(F_a, F_b, activation: str = "erf"):
    """``(Omega_a, Omega_b, Omega_ab, T_a, T_b, T_ab)`` of the Gaussian-equivalent features of
    ``F_a, F_b (p, d)`` (module docstring), the teacher's second moments per unit ``rho``
    (``T = E[t t^T] / rho`` for an isotropic teacher)."""
    p, d = F_a.shape
    _, k1, kstar = gaussian_equivalence(activation, dtype=F_a.dtype)
    eye = jnp.eye(p, dtype=F_a.dtype)
    grams = F_a @ F_a.T / d, F_b @ F_b.T / d, F_a @ F_b.T / d
    Omega_a, Omega_b = (k1**2 * G + kstar**2 * eye for G in grams[:2])
    return (Omega_a, Omega_b, k1**2 * grams[2]) + tuple(k1**2 * G / d for G in grams)


@functools.lru_cache(maxsize=16)
def _seeded_pair(seed: int, p: int, d: int, activation: str, dtype):
    """The fields of :func:`random_feature_ensemble` for ``F_a, F_b`` drawn from ``PRNGKey(seed)`` (per
    unit ``rho``), computed once per process as constants."""
    with jax.ensure_compile_time_eval():
        F_a, F_b = feature_matrices(jax.random.PRNGKey(seed), p, d, dtype)
        return _spectral_pair(*feature_covariances(F_a, F_b, activation))


def feature_matrices(key, p: int, d: int, dtype=None):
    """``F_a, F_b``: two independent ``(p, d)`` matrices of i.i.d. ``N(0, 1)`` entries."""
    return jax.random.normal(key, (2, p, d), dtype or float)


def random_feature_ensemble(
    activation: str = "erf", gamma=1.0, alpha=2.0, *, d: int = 300, seed: int = 0, rho=1.0, **kwargs
) -> EnsembleGCM:
    r"""Two random-features learners with independent Gaussian ``F_a, F_b`` drawn at dimension ``d``
    from ``PRNGKey(seed)``, as an :class:`EnsembleGCM`; the teacher averaged over its isotropic law.

    ``p = round(gamma d)`` features, ``alpha = n / d`` (converted to the model's ``n / p``),
    ``activation`` one of erf, tanh, sign, linear (``kappa_0 = 0``). ``kwargs`` go to
    :class:`EnsembleGCM`. :class:`RandomFeatureEnsemble` is its limit ``d -> infinity``.
    """
    if activation not in _ODD:
        raise ParameterError(f"parameter 'activation' must be one of {', '.join(_ODD)} (kappa_0 = 0), got {activation!r}")
    for name, value in (("d", d), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (name == "d"):
            raise ParameterError(f"parameter {name!r} must be an integer >= {int(name == 'd')}, got {value!r}")
    if not is_concrete(gamma):
        raise ParameterError("parameter 'gamma' must be a concrete number: it fixes the number of features")
    check_in("gamma", gamma, POSITIVE)
    check_in("alpha", alpha, POSITIVE)
    check_in("rho", rho, POSITIVE)
    p = max(round(float(gamma) * d), 1)
    fields = _seeded_pair(int(seed), p, int(d), activation, jnp.result_type(float))
    rho = jnp.asarray(rho, jnp.result_type(rho, float))
    fields = fields | {"theta2": rho * fields["theta2"], "theta_cross": rho * fields["theta_cross"]}
    alpha = jnp.asarray(alpha, jnp.result_type(alpha, float)) * d / p
    return EnsembleGCM(rho=rho, alpha=alpha, **fields, **kwargs)


class RandomFeatureEnsemble(Ensemble):
    """Ensembles of random-features learners with independent features on one data set (Loureiro et
    al. 2022), in the limit ``d -> infinity`` (module docstring)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per input dimension n/d")
    gamma: jax.Array = parameter(1.0, POSITIVE, "features per learner and input dimension p/d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    M: jax.Array = parameter(10.0, Interval(1.0, infinite=True), "number of learners in the ensemble (inf allowed)")
    activation: str = choice("erf", RF_ACTIVATIONS, "activation sigma of the features")
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    loss: str = choice("square", _LOSSES, "training loss", refused=NON_CONVEX)
    teacher: str = choice("linear", _CHANNELS, "teacher channel")
    bias_variance: str = choice(
        "on", dict.fromkeys(("on", "off")), "the bias-variance decomposition (three more cross overlaps to solve)"
    )
    nodes: int = integer(64, Interval(4), "nodes of the Marchenko-Pastur spectrum's rule")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (one learner, teacher=linear)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (one learner, labels +-1)")
    cross_order: int = integer(24, Interval(4), "Gauss-Hermite nodes per axis and Legendre nodes per panel (cross overlap)")

    def __check_init__(self):
        scalars = (self.alpha, self.gamma)
        if self.activation in RF_ACTIVATIONS and all(is_concrete(x) and np.ndim(x) == 0 for x in scalars):
            if float(self.gamma) > 0:  # concrete, but a jax array inside a trace would stage the comparison
                self.learners  # the checks of the learners' own parameters (the loss against the teacher)

    @property
    def learners(self) -> tuple[GCM, GCM]:
        """Both learners: :func:`~hdtheory.models.gcm.random_features` at the same setting."""
        learner = random_features(
            self.activation, self.gamma, self.alpha, nodes=self.nodes, rho=self.rho, lam=self.lam,
            noise=self.noise, delta=self.delta, loss=self.loss, teacher=self.teacher, order=self.order,
            panel_order=self.panel_order,
        )
        return learner, learner

    def cross_sums(self, Vhat_a, Vhat_b):
        """``(S, T) = (<theta2 / D_a> <theta2 / D_b> / rho, <theta2 / D_a> <theta2 / D_b> / (gamma rho^2))``
        by the freeness of two independent rotation-invariant matrices (module docstring)."""
        la, lb = self.learners
        explained = [
            learner.average(jnp.where(positive, learner.theta2 / D, 0.0))
            for learner, (D, positive) in ((la, la._denominators(Vhat_a)), (lb, lb._denominators(Vhat_b)))
        ]
        product = explained[0] * explained[1] / self.rho
        return product, product / (self.gamma * self.rho)
