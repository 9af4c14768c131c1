r"""The bootstrap and subsampling of regularised ERM on isotropic Gaussian data: the replica fixed point.

**Setting** (that of :mod:`hdtheory.models.erm`: ``n = alpha d`` samples ``x_i ~ N(0, I_d)``, a
teacher of variance ``rho``, labels from a linear, sign or probit channel). A resampled learner
minimises

.. math:: \sum_i p_i\, l(y_i, w \cdot x_i / \sqrt{d}) + \frac{\lambda}{2} |w|^2

with i.i.d. weights ``p_i`` drawn by the ``scheme``: ``bootstrap`` (pairs bootstrap, ``p ~ Poisson(1)``,
the limit of the multinomial counts of ``n`` draws with replacement, truncated to ``0..19``, a mass
below 1e-19 left out), ``subsample`` (``p ~ Bernoulli(fraction)``), ``full`` (``p = 1``, the plain
estimator). Clarté et al. 2024, "Analysis of bootstrap and subsampling in high-dimensional
regularized regression" (2024), write the resampling schemes as this weighted ERM; the
equations below are those of Loureiro et al. 2022, "Fluctuations, bias, variance & ensemble of
learners: exact asymptotics for convex losses in high dimension" (ICML) for two learners
on one data set, specialised to isotropic covariates and to learners that differ by their weights.
Both papers use ``alpha = n / d`` and a penalty ``(lam / 2) |w|^2`` on the summed loss, as here.

**One learner** (``m, q, V``; :class:`Weighted`): ERM's fixed point
(:class:`~hdtheory.ERM`) with the channel averages also over the weight ``p`` of the sample: the
weighted loss ``p l`` has the prox of step ``p V``, so that
``f = (prox_{p V l(y, .)}(omega) - omega) / V`` (zero at ``p = 0``) and

.. math:: \hat m = \alpha\, \mathbb{E}[\partial_\omega Z_0\, \bar f],\quad
          \hat q = \alpha\, \mathbb{E}[Z_0\, \overline{f^2}],\quad
          \hat V = -\alpha\, \mathbb{E}[Z_0\, \partial_\omega \bar f],

``bar`` the average over ``p``. The full-data estimator (``p = 1``) is ERM's fixed point itself,
solved alongside (``full_*``).

**Two learners on the same data** with independent weights: their cross overlap
``q_ab = w_a.w_b / d`` solves

.. math:: q_{ab} = \frac{\rho \hat m^2 + \hat q_{ab}}{(\lambda + \hat V)^2},\qquad
          \hat q_{ab} = \alpha\, \mathbb{E}[\bar f(y, \omega_a)\, \bar f(y, \omega_b)],

``(z, omega_a, omega_b)`` jointly Gaussian with covariance ``[[rho, m, m], [m, q, q_ab], [m, q_ab, q]]``
(:func:`hdtheory.kernels.resampling.cross_conjugate`, also for two different learners). Learners on
independent data sets have ``qhat_ab = 0``, so ``q_ab = m^2 / rho``. For the square loss the
channel integrals are in closed form: ``f = c_p (y - omega)``, ``c_p = p / (1 + p V)``, so that
``qhat_ab = alpha (E c_p)^2 (E y^2 - 2 (m / rho) E[z y] + q_ab)``.

**Quadrature.** One learner's integrals are ERM's (panels at the teacher's and the prox's
transitions; the conjugates to ~1e-10 at the default orders). The two-learner integral
(``cross_order`` nodes per axis: Legendre panels in the teacher's field, Gauss-Hermite in the
students' residual fields) is accurate to ~1e-9 where the residual spread ``sqrt(q - m^2 / rho)`` is
a few times the prox's scale or less, and to ~1e-4 where it is ten times that (``q`` of tens at
small ``V``: little regularisation, few samples); raise ``cross_order`` there. For the kinked
losses (hinge, Huber, absolute) the prox of step ``p V`` is kinked at the loss's breakpoints at
that step, for every weight value ``p``: one learner's panels have edges at all of them (and for
the linear teacher Huber's and the absolute loss's conjugates are the truncated Gaussian moments
at each step, summed over ``p``: ``f_p(r) = p f(r; p V)``), and the two-learner integral is
:func:`hdtheory.kernels.resampling.piecewise_cross_average` (one field's average in closed form,
the other on panels cut at every kink; ``cross_order`` Legendre nodes per panel of the teacher's
field), exponentially convergent. The non-convex ``tukey`` and ``cauchy`` are refused: their prox
jumps at large steps (replica symmetry breaks there, ERM's ``at_stability``), and these equations
need a single-valued prox.

**Observables.** The resampled learner's ``m, q, V, test_error, test_error_total`` (ERM's
conventions) and the full-data estimator's ``full_m, full_q, full_V, full_test_error``; ``q_ab``;
``true_variance = full_q - full_m^2 / rho``, the variance over data sets of the full-data
estimator per coordinate (``w = (m / rho) w* + `` noise of that variance); ``resample_variance =
q - q_ab``, the variance over resamplings of one data set per coordinate, which the scheme offers
as the estimate of the former; ``variance_ratio``, their ratio (one where the scheme is right; the
pairs bootstrap overestimates, by a large factor at small ``alpha``). For ``subsample`` also
``resample_variance_rescaled = f / (1 - f) * resample_variance`` and its ``rescaled_ratio``: a
subsample of ``f n`` samples (without replacement) has the variance of ``f n`` samples, and its
spread over subsamples a finite-population factor ``1 - f``, so that a variance of order ``1 / n``
is ``f / (1 - f)`` times the subsamples' spread (``inf`` at ``fraction = 1``); the ratio tends to
one as ``alpha`` grows. (The plotting code in Clarté et al.'s repository divides by ``1 - f``
alone: the variance at ``f n`` samples, ``1 / f`` times this.) For isotropic
inputs the variance of the prediction ``w.x / sqrt(d)`` at a fresh input is that of the weights
per coordinate, so these are the predictions' variances too. The bagged ensemble of ``M`` learners
on one data set, ``w_M = (1 / M) sum_k w_k``, has ``m`` and
``q_M = q / M + (1 - 1 / M) q_ab``: ``ensemble_q``, ``ensemble_error`` (its excess test error, at
``M``, which may be ``inf``) and ``ensemble_error_inf`` (``M -> infinity``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, choice, integer, parameter
from ..kernels.resampling import NON_CONVEX, WeightLaw, cross_conjugate, weighted_output
from .erm import ERM, Overlaps


class Weighted(ERM):
    """One learner of ERM with i.i.d. sample weights from ``weights``: ERM's fixed point with the
    channel averages also over the weight (see the module docstring). Convex losses: square,
    logistic, hinge, Huber, absolute."""

    weights: WeightLaw = eqx.field(default_factory=WeightLaw.constant)

    def _square_coefficients(self, V):
        # f = c_p (y - omega) with c_p = p / (1 + p V); the loss p (y - prox)^2 / 2 has p / (1 + p V)^2.
        return (
            self.weights.mean(lambda p: p / (1 + p * V)),
            self.weights.mean(lambda p: (p / (1 + p * V)) ** 2),
            self.weights.mean(lambda p: p / (1 + p * V) ** 2),
        )

    def _outputs(self, y, omega, V):
        # The training loss is the weighted one, E_p p l(y, prox_{p V l}(omega)).
        return weighted_output(self.loss_fn, self.weights, y, omega, V)

    def _breakpoints(self, y, V):
        # The prox of step p V has its kinks (transitions) at the loss's breakpoints at that step.
        p = self.weights.values
        return self.loss_fn.breakpoints(y, jnp.where(p > 0, p, 1.0) * V)

    def _gaussian_residual_averages(self, s2, V):
        # f_p(r) = p f(r; p V): (E_p p E f', E_p p^2 E f^2, E_p p E l) from the loss's averages at step p V.
        p = self.weights.values
        held = p > 0
        averages = self.loss_fn.gaussian_residual_averages(s2, jnp.where(held, p, 1.0) * V)
        if averages is None:
            return None
        return tuple(
            self.weights.mean(lambda p: jnp.where(held, p**k * value, 0.0))
            for k, value in zip((1, 2, 1), averages)
        )


class ResampleState(eqx.Module):
    """The full-data estimator's overlaps, one resampled learner's, and two learners' cross overlap."""

    full: Overlaps
    learner: Overlaps
    q_ab: jax.Array


SCHEMES = {"bootstrap": "pairs bootstrap, p ~ Poisson(1)", "subsample": "p ~ Bernoulli(fraction)", "full": "p = 1"}
"""The resampling schemes by name."""
_LOSSES = kernels.LOSSES | {"absolute": kernels.Absolute}
_CHANNELS = {name: kernels.CHANNELS[name] for name in ("linear", "sign", "probit")}


class Resample(FixedPointTheory):
    """Bootstrap and subsampling of regularised ERM on isotropic Gaussian data; see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    fraction: jax.Array = parameter(
        0.5, Interval(0.0, 1.0, low_open=True), "fraction of the samples in a subsample (scheme=subsample)"
    )
    M: jax.Array = parameter(
        10.0, Interval(1.0, infinite=True), "number of learners in the bagged ensemble (inf allowed)"
    )
    scheme: str = choice("bootstrap", SCHEMES, "resampling scheme: bootstrap, subsample or full")
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    loss: str = choice("square", _LOSSES, "training loss", refused=NON_CONVEX)
    teacher: str = choice("linear", _CHANNELS, "teacher channel")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (one learner, teacher=linear)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (one learner, labels +-1)")
    cross_order: int = integer(24, Interval(4), "Gauss-Hermite nodes per axis and Legendre nodes per panel (cross overlap)")

    def __check_init__(self):
        self.full  # ERM's checks: the noise's range, a loss that fits the teacher

    @property
    def full(self) -> ERM:
        """The full-data estimator: ERM at the same setting."""
        return ERM(
            alpha=self.alpha, lam=self.lam, rho=self.rho, noise=self.noise, delta=self.delta, loss=self.loss,
            teacher=self.teacher, order=self.order, panel_order=self.panel_order,
        )

    @property
    def weights(self) -> WeightLaw:
        dtype = jnp.result_type(self.alpha, self.lam, float)
        if self.scheme == "bootstrap":
            return WeightLaw.poisson(dtype)
        if self.scheme == "subsample":
            return WeightLaw.bernoulli(jnp.asarray(self.fraction, dtype))
        return WeightLaw.constant(dtype)

    @property
    def learner(self) -> Weighted:
        """One resampled learner."""
        erm = self.full
        return Weighted(
            alpha=erm.alpha, lam=erm.lam, rho=erm.rho, noise=erm.noise, delta=erm.delta, loss=erm.loss,
            teacher=erm.teacher, order=erm.order, panel_order=erm.panel_order, weights=self.weights,
        )

    def init(self, kind: str = "uninformed") -> ResampleState:
        full, learner = self.full.init(kind), self.learner.init(kind)
        return ResampleState(full=full, learner=learner, q_ab=0.5 * (learner.q + learner.m**2 / self.rho))

    def unconstrain(self, state: ResampleState) -> jax.Array:
        """ERM's coordinates for both estimators, and ``q_ab`` as it is (any value is a valid input:
        outside ``|q_ab - m^2 / rho| <= q - m^2 / rho`` the covariance's factor drops its negative part)."""
        return jnp.concatenate(
            [self.full.unconstrain(state.full), self.learner.unconstrain(state.learner), state.q_ab[None]]
        )

    def constrain(self, u: jax.Array) -> ResampleState:
        return ResampleState(full=self.full.constrain(u[:3]), learner=self.learner.constrain(u[3:6]), q_ab=u[6])

    def cross_conjugate(self, learner: Overlaps, q_ab):
        """``qhat_ab`` of two learners with the same state and independent weights (module docstring)."""
        m, q, V = learner.m, learner.q, learner.V
        channel = self.full.channel
        moments = channel.label_moments(self.rho) if self.loss == "square" else None
        if moments is not None:
            second, cross = moments
            c = self.weights.mean(lambda p: p / (1 + p * V))
            return self.alpha * c**2 * (second - 2 * m / self.rho * cross + q_ab)
        one = (m, q, V, self.weights)
        average = cross_conjugate(
            channel, self.full.loss_fn, self.rho, one, one, q_ab, self.cross_order, self.cross_order
        )
        return self.alpha * average

    def update(self, state: ResampleState) -> ResampleState:
        mhat, qhat, Vhat = self.learner.conjugates(state.learner)
        precision = self.lam + Vhat
        learner = Overlaps(m=self.rho * mhat / precision, q=(self.rho * mhat**2 + qhat) / precision**2, V=1 / precision)
        if self.scheme == "full":  # two learners with the same weights are the same estimator
            q_ab = learner.q
        else:
            q_ab = (self.rho * mhat**2 + self.cross_conjugate(state.learner, state.q_ab)) / precision**2
        return ResampleState(full=self.full.update(state.full), learner=learner, q_ab=q_ab)

    def observables(self, state: ResampleState) -> dict[str, jax.Array]:
        rho, channel = self.rho, self.full.channel
        full, learner, q_ab = state.full, state.learner, state.q_ab
        test_error, test_error_total = channel.test_errors(learner.m, learner.q, rho)
        true_variance = full.q - full.m**2 / rho
        resample_variance = learner.q - q_ab
        inverse_M = 1 / self.M
        ensemble_q = inverse_M * learner.q + (1 - inverse_M) * q_ab
        out = {
            "m": learner.m,
            "q": learner.q,
            "V": learner.V,
            "test_error": test_error,
            "test_error_total": test_error_total,
            "full_m": full.m,
            "full_q": full.q,
            "full_V": full.V,
            "full_test_error": channel.test_errors(full.m, full.q, rho)[0],
            "q_ab": q_ab,
            "true_variance": true_variance,
            "resample_variance": resample_variance,
            "variance_ratio": resample_variance / true_variance,
            "ensemble_q": ensemble_q,
            "ensemble_error": channel.test_errors(learner.m, ensemble_q, rho)[0],
            "ensemble_error_inf": channel.test_errors(learner.m, q_ab, rho)[0],
        }
        if self.scheme == "subsample":
            f = self.fraction
            # The factor is kept finite at f = 1, where the result is inf, so that derivatives stay finite.
            rescaled = jnp.where(f < 1, f / jnp.where(f < 1, 1 - f, 1.0) * resample_variance, jnp.inf)
            out |= {"resample_variance_rescaled": rescaled, "rescaled_ratio": rescaled / true_variance}
        return out
