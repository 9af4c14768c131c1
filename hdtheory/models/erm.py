r"""Empirical risk minimisation on isotropic Gaussian covariates: the replica fixed point.

**Setting.** ``n`` samples ``x_i ~ N(0, I_d)``, ``alpha = n / d``; teacher weights with
``|w*|^2 / d -> rho``; labels ``y_i ~ P(y | z_i)`` from a teacher channel of the teacher's local field
``z_i = w*.x_i / sqrt(d)``. The estimator minimises

.. math:: \sum_i l(y_i, w \cdot x_i / \sqrt{d}) + \frac{\lambda}{2} |w|^2 ,

with ``lam`` multiplying the penalty as written (not divided by ``n``). ``penalty`` replaces the
ridge by another elastic net (:mod:`hdtheory.kernels.penalties`): ``lam |w|_1`` (``l1``, the LASSO)
or ``lam (l1_ratio |w|_1 + (1 - l1_ratio) |w|^2 / 2)`` (``elastic-net``), or by
``(lam / p) |w|_p^p`` (``lp``, ``p`` in ``[1, 2]``: the LASSO at ``p = 1``, the ridge at ``p = 2``).
The teacher's components
are i.i.d. from ``prior``: ``gaussian``, ``N(0, rho)``, or ``gauss-bernoulli``, ``0`` with
probability ``1 - sparsity`` and ``N(0, rho / sparsity)`` otherwise, so that ``|w*|^2 / d -> rho``
either way. The teacher's local field is ``N(0, rho)`` for every prior, so the channel side does
not see it; the ridge's weight side sees only ``rho``.

**Order parameters.** ``m = w*.w / d``, ``q = |w|^2 / d`` and the variance ``V``; the conjugates
``mhat, qhat, Vhat``. The fixed point (Aubin et al. 2020, "Generalization error in high-dimensional
perceptrons: approaching Bayes error with convex optimization", eqs. (11)-(12); Gerace et al. 2020;
Loureiro et al. 2021 for the general Gaussian covariate model of which this is the isotropic case):

.. math::
    m = \frac{\rho \hat m}{\lambda + \hat V},\quad
    q = \frac{\rho \hat m^2 + \hat q}{(\lambda + \hat V)^2},\quad
    V = \frac{1}{\lambda + \hat V},

.. math::
    \hat m = \alpha\, \mathbb{E}_{\xi}\!\int\! dy\, \partial_\omega Z_0(y, \omega_0, V_0)\, f(y, \omega, V),\quad
    \hat q = \alpha\, \mathbb{E}_{\xi}\!\int\! dy\, Z_0\, f^2,\quad
    \hat V = -\alpha\, \mathbb{E}_{\xi}\!\int\! dy\, Z_0\, \partial_\omega f,

with ``xi ~ N(0, 1)``, ``omega = sqrt(q) xi``, ``omega_0 = m / sqrt(q) xi``, ``V_0 = rho - m^2 / q``,
``Z_0`` the teacher channel's partition function and ``f = (prox_{V l(y, .)}(omega) - omega) / V``.
With another penalty the first line is the weight side of
:meth:`hdtheory.kernels.Penalty.weight_averages`: ``m = E[w* w_hat]``, ``q = E[w_hat^2]``,
``V = E[d w_hat / d b]`` with ``w_hat = prox_{r / Vhat}(b / Vhat)``, ``b = mhat w* + sqrt(qhat) xi``,
Gaussian averages of the soft threshold in closed form for both priors; for ``lp``, Gauss-Legendre
panels over ``b`` with ``panel_order`` nodes each (:class:`hdtheory.kernels.LP`).
**Quadrature.** The proximal map varies on a scale of order one in ``omega`` (a kink for the hinge
and Huber losses, a smooth transition for the logistic one), that is ``1 / sqrt(q)`` in ``xi``, and
``q`` reaches a few hundred at small ``lam``. For the classification teachers (labels +-1), each
label's integral over ``xi`` is therefore a sum of Gauss-Legendre panels of ``panel_order`` nodes
whose edges sit at ``omega = 0``, at the loss's breakpoints (:meth:`Loss.breakpoints`), at
``+-8`` and ``+-32`` times the prox's scale ``1 / sqrt(q)`` and at ``+-8`` times the width of the
teacher's transition, ``s sqrt(q) / |m|`` in ``xi`` (``s = sqrt(V_0)`` for the sign teacher), which
narrows as the student aligns with the teacher at large ``alpha``: the integrand is smooth on each
panel, on the scale of the panel, the edges move smoothly with the state, and the fixed point and
its derivatives converge exponentially in ``panel_order`` (the default 40 gives the conjugates to
~1e-13 at ``alpha`` up to 1e4, and the test error there to 1e-6 relative). Where the
integrals have closed forms there is no quadrature (:meth:`ERM._closed_form`, exact to rounding):
the square loss sees the labels only through ``E y^2`` and ``E z y`` (:meth:`Channel.label_moments`:
linear, sign and probit teachers); with a linear teacher the residual ``r = y - omega`` is Gaussian
of variance ``rho + noise - 2 m + q`` and, for a loss of the residual (Huber), ``f`` a function of
it, so that the conjugates are truncated Gaussian moments (:meth:`Loss.gaussian_residual_averages`).
Otherwise, for the linear teacher, the ``(xi, label)`` integral is a product Gauss-Hermite rule of
``order`` nodes per axis.

**Elliptical data** (``scale`` other than ``none``; Adomaityte, Defilippis, Loureiro & Sicuro
2023, "High-dimensional robust regression under heavy-tailed data: asymptotics and universality").
Each sample has its own scale ``omega_i > 0``, i.i.d. from a law, and covariates
``x_i = sqrt(omega_i) z_i`` with ``z_i ~ N(0, I_d)``: ``scale=inverse-gamma`` draws
``omega ~ InvGamma(a, a - 1)`` (``a = tail > 1``, density ``(a-1)^a omega^{-a-1} e^{-(a-1)/omega} /
Gamma(a)``), so that ``E omega = 1`` and ``x`` has covariance ``I`` and Student-t tails with ``2a``
degrees of freedom (the covariance of ``x x^T`` is infinite for ``a <= 2``); ``two-point`` draws
``scale_1`` or ``scale_2``. With ``noise_scaling=joint`` (default) the label noise scales with the
sample, ``(x, noise)`` jointly elliptical: ``y = sqrt(omega) (w*.z / sqrt(d) + sqrt(noise) xi)``
for the linear teacher, heavy-tailed noise, while the labels of the classification teachers do not
depend on ``omega``; with ``none`` the channel acts on the field ``w*.x / sqrt(d)`` with its noise
as given. Given ``omega``, the fields of a sample are Gaussian with the overlaps ``omega (rho, m, q)``
and its step is ``omega V``, so that the channel's free energy is the Gaussian one averaged over the
scale, ``E_omega Psi(omega m, omega q, omega V; omega rho)``, and each conjugate is ``omega`` times
the Gaussian conjugate at the scaled state and teacher variance (:meth:`ERM._over_scales`; the
channel's noise at scale ``omega`` is :meth:`ERM.channel_at`):

.. math:: \hat m = \mathbb{E}_\omega\, \omega\, \hat m_{\rm G}(\omega m, \omega q, \omega V; \omega\rho),

and alike for ``qhat`` and ``Vhat``; the weight side is unchanged. These equations are written here in this package's
conventions (``alpha = n / d``, the penalty not divided by ``n``) and checked against simulations
at finite ``d`` rather than term by term against the paper's. The scale's
expectation is a quadrature (:meth:`ERM.scale_rule`: :func:`hdtheory.kernels.inverse_gamma_rule`,
panels in ``log omega`` that reach its power-law tail, ``scale_order`` nodes each, or the two points
exactly), over the closed forms where they exist (square, Huber). The test errors are averages over
fresh elliptical samples, ``E_omega`` of the Gaussian ones at ``omega (m, q, rho)``: for the linear
teacher ``E omega (rho - 2 m + q)`` (plus the noise), which the inverse-gamma law's ``E omega = 1``
leaves equal to ``weight_error``; the 0-1 errors of the sign teacher do not see the scale. The
calibration observables are those of Gaussian data only (absent here). ``scale=none`` is the
Gaussian model, computed as before.

**Robust regression.** ``teacher=outliers`` (:class:`hdtheory.kernels.Outliers`; Vilucchio, Troiani,
Erba & Krzakala 2023): with probability ``1 - epsilon`` an inlier ``y = z + sqrt(noise) xi``, with
probability ``epsilon`` an outlier ``y = beta z + sqrt(noise_out) xi`` (the paper's ``Delta_in`` and
``Delta_out`` are ``noise`` and ``noise_out``; its ``lambda``, Huber threshold ``a`` and error
``1 + q - 2 m`` are ``lam``, ``delta`` and ``test_error`` at ``rho = 1``). A loss of the residual sees a Gaussian mixture of
residuals and its conjugates are sums over the components (:meth:`ERM._closed_form`). The losses
``absolute``, ``tukey`` and ``cauchy`` (scale ``c``; :class:`hdtheory.kernels.RobustLoss`, whose prox
is the global minimiser of a possibly non-convex prox objective, integrated on panels cut at its
jumps) take a regression teacher. ``at_stability`` is the replicon eigenvalue (:meth:`ERM.replicon`):
replica symmetry is stable below one, always for a convex loss, never where a non-convex loss's
prox jumps (``inf``).

**Observables.** ``m, q, V, mhat, qhat, Vhat``; ``test_error`` and ``test_error_total`` (the 0-1 error
of ``sign(w.x)`` against the noiseless and the noisy label for the sign and probit teachers, the mean
squared error without and with the label noise for the linear teacher, no 1/2); ``train_loss``, the
average training loss ``E l(y, prox_{V l}(omega))`` (penalty excluded); ``norm = sqrt(q)``;
``angle = arccos(m / sqrt(rho q))``, the angle to the teacher in radians;
``weight_error = rho - 2 m + q``, the mean squared error of the weights per component
``|w - w*|^2 / d``, and ``sparsity_hat``, the fraction of non-zero estimated weights
``P(w_hat != 0)`` (one for the ridge and for ``lp`` with ``p > 1``); ``at_stability``, the replicon
eigenvalue (:meth:`ERM.replicon`, every penalty). For the classification
teachers also the calibration of the confidence ``sigmoid(omega / temperature)`` in the predicted
label (:mod:`hdtheory.kernels.calibration`; Clarté et al. 2022): ``confidence`` (its mean), ``ece``
(the expected calibration error), ``test_nll``, ``brier``, and ``ec_temperature``, the temperature at
which the mean confidence equals the accuracy (expectation consistency, Clarté et al. 2023), and
``optimal_temperature``, the one that minimises ``test_nll`` (temperature scaling); the
whole calibration curve is :meth:`ERM.calibration_curve`. ``temperature`` enters these only: tuning
it with :func:`hdtheory.tune` (objective ``test_nll``) is temperature scaling.

**Where the estimator does not exist.** At ``lam = 0`` the logistic and hinge minimisers exist only
on non-separable data: a noiseless sign teacher is rejected at construction; with label noise, below
the separability threshold the fixed point has no solution and :func:`hdtheory.solve` reports
``Status.DIVERGED`` (the norm ``q`` grows without bound) or ``Status.MAX_STEPS``, never a number.
The threshold itself, ``alpha* = 1 / h`` with Candès and Sur's (2020)
``h = min_t E(t y z / sqrt(rho) - Z)_+^2``, is :meth:`ERM.separability_threshold`, asked for as
``hdtheory.threshold(theory, "alpha", "separability")`` (:mod:`hdtheory.kernels.separability`;
``inf`` for a noiseless teacher, 2 for random labels).

**Other normalisations.** Papers that divide the penalty by the sample number
(``(lam' / 2n) |w|^2`` or ``(lam' / 2) |w|^2`` after averaging the loss) use ``lam' = lam / alpha``
in this convention; a penalty written ``lam |w|^2`` without the 1/2 is ``lam / 2`` here.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError
from .._theory import check_in, choice, integer, is_concrete, parameter


_TEACHER_EDGES = (8.0,)
"""Multiples of the teacher's transition width (in ``xi``) at which the panels have edges."""
_LOSS_EDGES = (8.0, 32.0)
"""Multiples of the prox's scale ``1 / sqrt(q)`` (in ``xi``) at which the panels have edges."""


class Overlaps(eqx.Module):
    """The order parameters of a student with one weight vector."""

    m: jax.Array
    q: jax.Array
    V: jax.Array


_NOISE_RANGES = {
    "sign": Interval(0.0, 0.5, high_open=True),
    "probit": NONNEGATIVE,
    "linear": NONNEGATIVE,
    "outliers": NONNEGATIVE,
    "logistic": NONNEGATIVE,
    "random": Interval(0.0, 0.0),
}


def _check_minimiser_exists(theory) -> None:
    """Reject, when the values are concrete, the settings where the estimator does not exist."""
    if not (is_concrete(theory.lam) and is_concrete(theory.noise) and is_concrete(theory.alpha)):
        return
    unregularised = np.asarray(theory.lam) == 0
    if theory.loss in ("logistic", "hinge") and theory.teacher == "sign":
        if np.any(unregularised & (np.asarray(theory.noise) == 0)):
            raise ParameterError(
                f"parameter 'lam' must be > 0 for loss={theory.loss} with a noiseless sign teacher: "
                "the data are linearly separable at every alpha and the minimiser's norm diverges"
            )
    if theory.loss in ("logistic", "hinge") and theory.teacher == "random":
        if np.any(unregularised & (np.asarray(theory.alpha) <= 2)):
            raise ParameterError(
                f"parameter 'lam' must be > 0 for loss={theory.loss} with random labels when alpha <= 2: "
                "the data are linearly separable (Cover 1965) and the minimiser's norm diverges"
            )
    if theory.loss == "square" and np.any(unregularised & (np.asarray(theory.alpha) <= 1)):
        raise ParameterError(
            "parameter 'lam' must be > 0 for loss=square when alpha <= 1: the minimiser is not "
            "unique (the ridgeless limit lam -> 0+ is the minimum-norm interpolator)"
        )


_SCALES = {
    "none": "omega = 1: Gaussian data",
    "inverse-gamma": "omega ~ InvGamma(tail, tail - 1): E omega = 1, Student-t covariates with 2 tail degrees of freedom",
    "two-point": "omega = scale_1 with probability 1 - scale_p, scale_2 with probability scale_p",
}
"""The laws of the per-sample scale ``omega`` of elliptical data (module docstring)."""

_NOISE_SCALINGS = {
    "joint": "the label noise scaled with the covariates: (x, noise) elliptical",
    "none": "the label noise independent of the scale",
}

_NOISE_EXPONENTS = {"linear": 1.0, "outliers": 1.0, "probit": 1.0, "logistic": 0.5, "sign": 0.0, "random": 0.0}
"""``k``: scaling a sample's teacher field and its noise by ``sqrt(omega)`` multiplies the channel's
``noise`` by ``omega^k`` (a variance, a temperature, a flip probability)."""

_TEACHERS = kernels.CHANNELS | {"outliers": kernels.Outliers}
"""ERM's teachers: every channel, and the outlier-contaminated linear teacher (fields ``epsilon``,
``beta``, ``noise_out``)."""

_LOSSES = kernels.LOSSES | kernels.ROBUST_LOSSES
"""ERM's losses: those of every supervised model, and those of robust regression (absolute, and the
non-convex losses of the residual of scale ``c``)."""

_PRIORS = {name: kernels.PRIORS[name] for name in ("gaussian", "gauss-bernoulli")}
"""The teacher priors whose weight averages are closed forms (centred Gaussian mixtures)."""


class ERM(FixedPointTheory):
    """Regularised ERM on isotropic Gaussian data; see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    temperature: jax.Array = parameter(
        1.0, POSITIVE, "temperature T of the confidence sigmoid(w.x / sqrt(d) / T) (calibration only)"
    )
    l1_ratio: jax.Array = parameter(
        0.5, Interval(0.0, 1.0), "share of lam on |w|_1 (penalty=elastic-net only)"
    )
    p: jax.Array = parameter(1.5, Interval(1.0, 2.0), "exponent of the penalty (lam/p)|w|_p^p (penalty=lp only)")
    sparsity: jax.Array = parameter(
        0.1, Interval(0.0, 1.0, low_open=True), "fraction of non-zero teacher components (prior=gauss-bernoulli only)"
    )
    tail: jax.Array = parameter(
        3.0, Interval(1.0, low_open=True), "shape a of the inverse-gamma scale, scale a - 1 so that E omega = 1 (scale=inverse-gamma)"
    )
    scale_1: jax.Array = parameter(0.5, POSITIVE, "first value of the scale omega (scale=two-point)")
    scale_2: jax.Array = parameter(2.0, POSITIVE, "second value of the scale omega (scale=two-point)")
    scale_p: jax.Array = parameter(0.5, Interval(0.0, 1.0), "probability of scale_2 (scale=two-point)")
    c: jax.Array = parameter(1.0, POSITIVE, "scale c of the Tukey and Cauchy losses (loss=tukey, cauchy)")
    epsilon: jax.Array = parameter(
        0.1, Interval(0.0, 1.0, high_open=True), "fraction of outliers (teacher=outliers; Delta_in is noise)"
    )
    beta: jax.Array = parameter(0.0, Interval(), "outliers' slope: y = beta z + sqrt(noise_out) xi (teacher=outliers)")
    noise_out: jax.Array = parameter(1.0, NONNEGATIVE, "outliers' noise variance Delta_out (teacher=outliers)")
    loss: str = choice("logistic", _LOSSES, "training loss")
    teacher: str = choice("sign", _TEACHERS, "teacher channel")
    penalty: str = choice("ridge", kernels.PENALTIES, "weight penalty, of strength lam")
    prior: str = choice("gaussian", _PRIORS, "law of the teacher's components (second moment rho)")
    scale: str = choice("none", _SCALES, "law of the per-sample scale omega of elliptical covariates sqrt(omega) z")
    noise_scaling: str = choice("joint", _NOISE_SCALINGS, "whether the label noise scales with omega")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (teacher=linear, no closed form)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (labels +-1; penalty=lp)")
    scale_order: int = integer(8, Interval(2), "Gauss-Legendre nodes per panel of the scale's rule (scale=inverse-gamma)")

    def __check_init__(self):
        if self.teacher in _NOISE_RANGES:  # an unknown teacher is reported by the generic check
            check_in("noise", self.noise, _NOISE_RANGES[self.teacher], f" for teacher={self.teacher}")
        if self.teacher not in _TEACHERS or self.loss not in _LOSSES:
            return
        if self.scale != "none" and type(self) is not ERM:
            raise ParameterError(f"parameter 'scale' must be none for {type(self).__name__}, got {self.scale!r}")
        if self.teacher == "outliers" and type(self) is not ERM:
            raise ParameterError(f"parameter 'teacher' must not be outliers for {type(self).__name__}")
        if self.loss in kernels.ROBUST_LOSSES and self.loss != "absolute" and not self.reports_replicon:
            raise ParameterError(f"parameter 'loss' must not be {self.loss} for {type(self).__name__}")
        if self.loss in ("logistic", "hinge") and not _TEACHERS[self.teacher].classification:
            raise ParameterError(f"loss={self.loss!r} needs labels +-1: use teacher=sign or probit")
        if self.loss in kernels.ROBUST_LOSSES and _TEACHERS[self.teacher].classification:
            raise ParameterError(
                f"parameter 'teacher' must be linear or outliers for loss={self.loss!r} (a loss of the "
                f"residual y - z), got {self.teacher!r}"
            )
        _check_minimiser_exists(self)

    @property
    def loss_fn(self) -> kernels.Loss:
        if self.loss == "huber":
            return kernels.Huber(self.delta)
        if self.loss in ("tukey", "cauchy"):
            return kernels.ROBUST_LOSSES[self.loss](self.c)
        return _LOSSES[self.loss]()

    @property
    def channel(self) -> kernels.Channel:
        if self.teacher == "outliers":
            return kernels.Outliers(self.noise, epsilon=self.epsilon, beta=self.beta, noise_out=self.noise_out)
        return _TEACHERS[self.teacher](self.noise)

    def _noise_factor(self, omega):
        """The factor of the channel's noise of the samples of scale ``omega`` (``noise_scaling=joint``:
        the noise scaled with them, ``_NOISE_EXPONENTS``)."""
        exponent = _NOISE_EXPONENTS[self.teacher] if self.noise_scaling == "joint" else 0.0
        return omega**exponent

    def channel_at(self, omega) -> kernels.Channel:
        """The channel of the samples of scale ``omega`` as a function of their teacher field
        ``sqrt(omega) z`` (``noise_scaling=joint``: the noise, and the outliers', scaled alike)."""
        factor = self._noise_factor(omega)
        return eqx.tree_at(lambda t: (t.noise, t.noise_out), self, (self.noise * factor, self.noise_out * factor)).channel

    def scale_rule(self) -> tuple[jax.Array, jax.Array]:
        """``(omega_k, w_k)`` with ``E g(omega) = sum_k w_k g(omega_k)`` over the scale law: the
        inverse-gamma law by :func:`hdtheory.kernels.inverse_gamma_rule` (``scale_order`` nodes per
        panel), the two-point law exactly, ``omega = 1`` for Gaussian data."""
        dtype = jnp.result_type(self.rho, self.tail, self.scale_1, self.scale_2, self.scale_p, float)
        if self.scale == "inverse-gamma":
            return kernels.inverse_gamma_rule(self.tail, self.tail - 1, self.scale_order)
        if self.scale == "two-point":
            values = jnp.stack([self.scale_1, self.scale_2]).astype(dtype)
            return values, jnp.stack([1 - self.scale_p, self.scale_p]).astype(dtype)
        return jnp.ones(1, dtype), jnp.ones(1, dtype)

    def draw_scales(self, key, shape) -> jax.Array:
        """Scales ``omega`` drawn from the scale law (the simulation's)."""
        dtype = jnp.result_type(self.rho, float)
        if self.scale == "inverse-gamma":
            return (self.tail - 1) / jax.random.gamma(key, self.tail, shape, dtype)
        if self.scale == "two-point":
            return jnp.where(jax.random.bernoulli(key, self.scale_p, shape), self.scale_2, self.scale_1).astype(dtype)
        return jnp.ones(shape, dtype)

    def _over_scales(self, fn, state: Overlaps):
        """``E_omega fn(theory_omega, state_omega, omega)``: ``theory_omega`` the Gaussian-data theory
        of the samples of scale ``omega`` (teacher variance ``omega rho``, channel
        :meth:`channel_at`) and ``state_omega = omega (m, q, V)``; ``fn(self, state, 1)`` for
        Gaussian data."""
        if self.scale == "none":
            return fn(self, state, 1.0)
        omegas, weights = self.scale_rule()

        def at(omega):
            factor = self._noise_factor(omega)
            theory = eqx.tree_at(
                lambda t: (t.rho, t.noise, t.noise_out),
                self,
                (omega * self.rho, self.noise * factor, self.noise_out * factor),
            )
            return fn(theory, Overlaps(m=omega * state.m, q=omega * state.q, V=omega * state.V), omega)

        return jax.tree.map(lambda v: jnp.tensordot(weights, v, axes=1), jax.vmap(at)(omegas))

    def test_errors(self, m, q, rho=None):
        """``(excess, total)`` test errors (:meth:`Channel.test_errors`) on fresh samples of the
        data's law: averaged over the scale (the fields of a sample of scale ``omega`` have overlaps
        ``omega (m, q, rho)``). ``rho`` defaults to the theory's."""
        theory = self if rho is None else eqx.tree_at(lambda t: t.rho, self, jnp.asarray(rho))
        state = Overlaps(m=m, q=q, V=jnp.ones_like(q))
        return theory._over_scales(lambda t, s, _: t.channel.test_errors(s.m, s.q, t.rho), state)

    @property
    def penalty_fn(self) -> kernels.Penalty:
        if self.penalty == "elastic-net":
            return kernels.ElasticNet(self.lam, self.l1_ratio)
        if self.penalty == "lp":
            return kernels.LP(self.lam, self.p, self.panel_order)
        return kernels.PENALTIES[self.penalty](self.lam)

    @property
    def teacher_prior(self) -> tuple[kernels.Prior, jax.Array]:
        """``(prior, scale)``: the teacher's components are ``scale x`` with ``x ~ prior``
        (:mod:`hdtheory.kernels.priors`; the Gauss-Bernoulli prior there has density and second
        moment ``sparsity``, so ``scale^2 = rho / sparsity``)."""
        prior = kernels.Gaussian(self.rho) if self.prior == "gaussian" else kernels.GaussBernoulli(self.sparsity)
        return prior, jnp.sqrt(self.rho / prior.rho)

    def weight_averages(
        self, mhat, qhat, Vhat, penalty: kernels.Penalty | kernels.Clipped | None = None
    ) -> kernels.WeightAverages:
        """The weight side: ``(m, q, V, P(w_hat != 0), E|w_hat|)`` at the conjugates (module
        docstring), for ``penalty`` (:attr:`penalty_fn` by default)."""
        prior, scale = self.teacher_prior
        weights, variances = prior.gaussian_mixture()
        penalty = self.penalty_fn if penalty is None else penalty
        return penalty.weight_averages(mhat, qhat, Vhat, weights, [scale**2 * v for v in variances])

    def penalty_at(self, state, slope) -> kernels.Penalty:
        """The weight side's penalty at a state, given ``slope`` (:meth:`_gaussian_averages`):
        :attr:`penalty_fn` here; an attack whose dual norm is not the l2 norm adds its conjugate's
        term (:class:`~hdtheory.Adversarial`)."""
        del state, slope
        return self.penalty_fn

    def init(self, kind: str = "uninformed") -> Overlaps:
        """A start for the solver; for ridge (square loss, linear teacher) the fixed point itself.

        Ridge's fixed point is in closed form, and near the interpolation peak (``alpha ~ 1``,
        small ``lam``, where ``V ~ 1 / sqrt(lam)`` or ``(1 - alpha) / lam``) Newton's method from a
        generic start runs off to a spurious solution at infinity. The solver still verifies it
        (and differentiates the fixed point, not the start). Subclasses with other equations
        (:class:`~hdtheory.GCM`) start generically.
        """
        dtype = jnp.result_type(self.alpha, self.lam, self.rho, float)
        overlap = {"uninformed": 0.1, "informed": 0.9}[kind]
        one = jnp.ones((), dtype)
        ridge = self.loss == "square" and self.teacher == "linear" and self.penalty == "ridge"
        if type(self) is ERM and ridge and self.scale == "none":
            return self._ridge_fixed_point(one)
        # The student's scale is the teacher's for a linear teacher, the labels' (+-1) otherwise.
        q = one if self.channel.classification else self.rho * one
        return Overlaps(m=overlap * jnp.sqrt(self.rho * q), q=q, V=one)

    def _ridge_fixed_point(self, one) -> Overlaps:
        r"""The square-loss fixed point for the linear teacher, in closed form.

        ``Vhat = mhat = alpha / (1 + V)``, so ``V = 1 / (lam + Vhat)`` is the positive root of
        ``lam V^2 + (lam + alpha - 1) V - 1 = 0``; then ``m = rho mhat V`` and, from
        ``qhat = alpha (rho + noise - 2 m + q) / (1 + V)^2``, ``q (1 - a) = rho (mhat V)^2 +
        a (rho + noise - 2 m)`` with ``a = alpha V^2 / (1 + V)^2``.
        """
        lam, alpha, rho = self.lam * one, self.alpha * one, self.rho * one
        b = lam + alpha - 1
        # The root without cancellation for either sign of b (lam = 0 needs alpha > 1: then b > 0).
        V = jnp.where(b > 0, 2 / (b + jnp.sqrt(b * b + 4 * lam)), (jnp.sqrt(b * b + 4 * lam) - b) / (2 * lam))
        mhat = alpha / (1 + V)
        m = rho * mhat * V
        a = alpha * (V / (1 + V)) ** 2
        q = (rho * (mhat * V) ** 2 + a * (rho + self.noise - 2 * m)) / (1 - a)
        return Overlaps(m=m, q=q, V=V)

    def unconstrain(self, state: Overlaps) -> jax.Array:
        """``(atanh(m / sqrt(rho q)), log q, log V)``: the domain's boundary is at infinity.

        The cosine is kept a rounding error inside ``(-1, 1)``, so that a perfect recovery (the
        noiseless linear teacher at ``lam -> 0``, where ``m^2 = rho q`` to rounding) stays finite.
        """
        edge = 1 - jnp.finfo(jnp.result_type(state.q)).eps
        cosine = jnp.clip(state.m / jnp.sqrt(self.rho * state.q), -edge, edge)
        return jnp.stack([jnp.arctanh(cosine), jnp.log(state.q), jnp.log(state.V)])

    def constrain(self, u: jax.Array) -> Overlaps:
        q = jnp.exp(u[1])
        return Overlaps(m=jnp.tanh(u[0]) * jnp.sqrt(self.rho * q), q=q, V=jnp.exp(u[2]))

    def _channel_terms(self, state: Overlaps):
        """Quadrature of the channel integrals: ``(y, omega, weight, dweight)``, broadcastable arrays.

        ``weight`` and ``dweight`` carry ``Z_0`` and ``d_omega Z_0`` times the rule's weight in ``xi``.
        """
        m, q, V = state.m, state.q, state.V
        dtype = jnp.result_type(q)
        V0 = self.rho - m**2 / q
        # Outside the domain (q, V > 0 and m^2 <= rho q) the map is NaN, so solvers reject the step.
        inside = (q > 0) & (V > 0) & (V0 >= 0)
        V0 = jnp.where(inside, jnp.maximum(V0, jnp.finfo(dtype).tiny), jnp.nan)
        channel, sqrt_q = self.channel, jnp.sqrt(q)
        if not channel.classification:
            xi, w_xi = kernels.hermite_rule(self.order, dtype)
            y, w_y, dw_y = channel.label_quadrature(m / sqrt_q * xi, V0, self.order)
            return y, sqrt_q * xi[:, None], w_xi[:, None] * w_y, w_xi[:, None] * dw_y
        # Labels +-1, each integrated over xi by panels with edges at omega = 0 (the channel's own
        # transition), at the loss's breakpoints and at multiples of the widths of the teacher's and
        # the prox's transitions about 0: shape (nodes, labels).
        y = jnp.asarray(channel.labels, dtype)[:, None]
        # A margin shift s moves the loss's features (breakpoints, the prox's transition) to omega + y s.
        shift = self.margin_shift(state)
        centre = 0.0 if shift is None else y * shift[0] / sqrt_q
        edges = [jnp.zeros_like(y * V)] + [b / sqrt_q + centre for b in self._breakpoints(y, V)]
        edges += self._narrow_edges(m, sqrt_q, channel.transition_width(V0), y, centre)
        xi, w_xi = kernels.panel_rule(jnp.concatenate(edges, axis=-1), self.panel_order)
        omega0 = m / sqrt_q * xi
        w = w_xi * channel.partition(y, omega0, V0)
        dw = w_xi * channel.dpartition(y, omega0, V0)
        return (jnp.broadcast_to(y, xi.shape).T, sqrt_q * xi.T, w.T, dw.T)

    def _narrow_edges(self, m, sqrt_q, width, y, centre=0.0, bound: float = 10.0):
        """Edges in ``xi`` about 0 at multiples of the two narrow widths of the integrand there.

        The teacher's ``Z_0(y, m xi / sqrt(q), V_0)`` moves over ``|xi| <~ s sqrt(q) / |m|`` (``s`` its
        width in ``omega_0``, :meth:`Channel.transition_width`), narrow as the student aligns with
        the teacher; the prox moves on a scale of order one in ``omega``, ``1 / sqrt(q)`` in ``xi``,
        and approaches its asymptotes exponentially (the logistic loss). Edges at
        ``+-c s sqrt(q) / |m|`` for ``c`` in ``_TEACHER_EDGES`` and at ``centre +- c / sqrt(q)`` for
        ``c`` in ``_LOSS_EDGES`` (``centre``: where the prox's transition sits in ``xi``, 0 unless the
        margin is shifted) keep every feature within a panel a few times its width. Edges beyond
        ``bound`` (``m = 0`` included) sit at the bound, where their panels have no weight.
        """
        edges = []
        for c in _TEACHER_EDGES:
            # c s sqrt(q) / |m|, written without dividing by a vanishing m.
            inside = c * width * sqrt_q < bound * jnp.abs(m)
            edges.append(jnp.where(inside, c * width * sqrt_q / jnp.where(inside, jnp.abs(m), 1.0), bound))
        teacher = [jnp.broadcast_to(sign * edge, y.shape) for edge in edges for sign in (-1.0, 1.0)]
        loss = [centre + sign * jnp.minimum(c / sqrt_q, bound) for c in _LOSS_EDGES for sign in (-1.0, 1.0)]
        return teacher + [jnp.broadcast_to(edge, y.shape) for edge in loss]

    def _closed_form(self, state: Overlaps):
        """``(mhat, qhat, Vhat, train_loss)`` without quadrature where they have a closed form;
        ``None`` otherwise (see the module docstring).

        Square loss, any channel with :meth:`Channel.label_moments` ``(E y^2, E z y)``:
        ``f = (y - omega) / (1 + V)``, so that ``Vhat = alpha / (1 + V)``,
        ``mhat = alpha E[z y] / (rho (1 + V))`` (Stein's lemma in ``omega_0``) and
        ``qhat = 2 alpha train_loss = alpha s^2 / (1 + V)^2`` with
        ``s^2 = E(y - omega)^2 = E y^2 - 2 (m / rho) E[z y] + q``.
        Linear teacher, a loss of the residual (:meth:`Loss.gaussian_residual_averages`, Huber; the
        non-convex losses on panels): ``r = y - omega ~ N(0, rho + noise - 2 m + q)``,
        ``mhat = Vhat = alpha E f'(r)``, ``qhat = alpha E f(r)^2``. A mixture of linear channels
        (:meth:`Channel.residual_components`, the outliers teacher: weights ``p_k``, slopes ``b_k``,
        residual variances ``s_k^2``) sums these over its components, ``mhat`` with the slopes:
        ``mhat = alpha sum_k p_k b_k E_k f'``, ``Vhat = alpha sum_k p_k E_k f'``,
        ``qhat = alpha sum_k p_k E_k f^2`` (Stein's lemma in the teacher's field, ``dy / dz = b_k``).
        """
        m, q, V = state.m, state.q, state.V
        # Outside the domain the map is NaN, as for the quadrature, so solvers reject the step.
        inside = (q > 0) & (V > 0) & (m**2 <= self.rho * q)
        alpha, rho = self.alpha, self.rho
        if self.loss == "square":
            moments = self.channel.label_moments(rho)
            if moments is None:
                return None
            second, cross = moments
            s2 = jnp.where(inside, second - 2 * m / rho * cross + q, jnp.nan)
            slope, square, loss = self._square_coefficients(V)
            return alpha * cross / rho * slope, alpha * s2 * square, alpha * slope, 0.5 * s2 * loss
        averages = self._residual_averages(state, inside, self._gaussian_residual_averages)
        if averages is None:
            return None
        mhat = qhat = Vhat = loss = 0.0
        for weight, b, (slope, square, l) in averages:
            mhat, qhat = mhat + weight * b * slope, qhat + weight * square
            Vhat, loss = Vhat + weight * slope, loss + weight * l
        return alpha * mhat, alpha * qhat, alpha * Vhat, loss

    def _breakpoints(self, y, V) -> tuple:
        """The fields ``omega`` where the output function has a kink or a transition
        (:meth:`Loss.breakpoints`; a weighted learner's at every weight's step)."""
        return self.loss_fn.breakpoints(y, V)

    def _gaussian_residual_averages(self, s2, V):
        """:meth:`Loss.gaussian_residual_averages` (a weighted learner averages them over its weights)."""
        return self.loss_fn.gaussian_residual_averages(s2, V)

    def _residual_averages(self, state: Overlaps, inside, average):
        """``[(weight, slope, average(s2, V)), ...]`` over the components of a channel whose residual
        is a Gaussian mixture (:meth:`Channel.residual_components`), for a loss of the residual;
        ``None`` if either is not so."""
        components = self.channel.residual_components(state.m, state.q, self.rho)
        if components is None:
            return None
        averages = []
        for weight, b, s2 in components:
            s2 = jnp.where(inside, s2, jnp.nan)
            value = average(jnp.maximum(s2, jnp.finfo(s2.dtype).tiny), state.V)
            if value is None:
                return None
            averages.append((weight, b, value))
        return averages

    def _square_coefficients(self, V):
        """``(c_1, c_2, c_l)``: the square loss's ``f = c (y - omega)`` with ``c = 1 / (1 + V)``, and
        ``c_1 = E c``, ``c_2 = E c^2``, ``c_l = E c^2`` (the coefficient of ``(y - omega)^2 / 2`` in
        the training loss) over the samples; a weighted learner averages them over its weights."""
        c = 1 / (1 + V)
        return c, c**2, c**2

    def _outputs(self, y, omega, V):
        """``(f, f^2, l)`` with ``f = (prox_{V l(y, .)}(omega) - omega) / V``: the output function,
        its square as the conjugates average them, and the sample's training loss at the fixed
        point, ``l(y, prox_{V l(y, .)}(omega))``, from one evaluation of the prox (a weighted learner
        averages the three over its weights)."""
        z = self.loss_fn.prox(y, omega, V)
        f = (z - omega) / V
        return f, f**2, self.loss_fn(y, z)

    def conjugates(self, state: Overlaps):
        """``(mhat, qhat, Vhat)`` at a state: for elliptical data ``omega`` times those of Gaussian
        data at the scaled state, averaged over the scale (module docstring)."""
        return self._channel_averages(state)[:3]

    def _channel_averages(self, state: Overlaps):
        """``(mhat, qhat, Vhat, train_loss, slope)``: the Gaussian data's (:meth:`_gaussian_averages`), or
        for elliptical data averaged over the scale, the conjugates ``omega`` times those at the
        scaled state (a program that does not use the training loss drops it)."""

        def at(theory, scaled, omega):
            mhat, qhat, Vhat, train_loss, slope = theory._gaussian_averages(scaled)
            return omega * mhat, omega * qhat, omega * Vhat, train_loss, slope

        return self._over_scales(at, state)

    def _gaussian_averages(self, state: Overlaps):
        """``(mhat, qhat, Vhat, train_loss, slope)`` on Gaussian data, in closed form where there is one,
        else by quadrature (the training loss from the same evaluations of the prox). ``slope`` is
        ``alpha E[y f]`` for a shifted margin (:meth:`margin_shift`; ``alpha E|l'|`` at the training
        margins, the derivative of the loss side's free energy in the shift), zero without one.

        ``Vhat`` is integrated by parts in ``xi`` (Stein's lemma), so that every integrand is the
        continuous ``f`` rather than its derivative, a step function for the hinge and Huber losses:
        ``Vhat = -(alpha / sqrt(q)) E sum_y [xi Z_0 - (m / sqrt(q)) d_omega Z_0] f``.
        """
        closed = self._closed_form(state)
        if closed is not None:
            return (*closed, jnp.zeros_like(closed[0]))
        m, q, V = state.m, state.q, state.V
        y, omega, w, dw = self._channel_terms(state)
        shift = self.margin_shift(state)
        f, f2, loss = self._outputs(y, omega if shift is None else omega - y * shift[0], V)
        xi = omega / jnp.sqrt(q)
        mhat = self.alpha * jnp.sum(dw * f)
        qhat = self.alpha * jnp.sum(w * f2)
        Vhat = -self.alpha / jnp.sqrt(q) * jnp.sum((xi * w - m / jnp.sqrt(q) * dw) * f)
        slope = jnp.zeros_like(mhat)
        if shift is not None:
            slope = self.alpha * jnp.sum(w * y * f)
            Vhat = Vhat + 2 * shift[1] * slope
        return mhat, qhat, Vhat, jnp.sum(w * loss), slope

    def margin_shift(self, state):
        """``(s, ds / dq)`` of a training loss ``l(y, z - y s)`` whose margin is shifted by a function
        of the state (adversarial training, :class:`~hdtheory.Adversarial`): the outputs ``f`` are
        then those of ``l`` at ``omega - y s`` and ``Vhat`` gains ``2 alpha (ds / dq) E[y f]``
        (a shift that depends on another order parameter takes ``slope = alpha E[y f]`` from
        :meth:`_channel_averages` into that parameter's conjugate); ``None`` (no shift) here."""
        del state
        return None

    def replicon(self, state: Overlaps, mhat, qhat, Vhat) -> jax.Array:
        r"""The replicon eigenvalue ``lambda`` of the replica-symmetric fixed point; replica symmetry is
        locally stable (de Almeida-Thouless) while ``lambda < 1``; ``(mhat, qhat, Vhat)`` the conjugates
        at ``state``.

        ``lambda = A B``: the output side ``A = alpha E[(d_omega f)^2] = alpha E[(1 - d prox / d omega)^2]
        / V^2`` over the channel's law (for elliptical data ``E_omega omega^2`` of the Gaussian one at
        the scaled state), the weight side ``B = E[(d w_hat / d b)^2]`` over the law of ``b`` of the
        weight side (:meth:`replicon_weight_side`, :meth:`hdtheory.kernels.Penalty.replicon`):
        ``V / (Vhat + lambda_2)`` for the elastic-net family (``d w_hat / d b`` is ``1 / (Vhat +
        lambda_2)`` where ``w_hat != 0``), ``V^2`` for the ridge, so that ``lambda = alpha E[(1 - d prox
        / d omega)^2]`` there; for ``lp`` the implicit derivative of its prox, averaged on panels. This
        is the zero-temperature limit of the replicon of the Gibbs measure ``exp(-beta (loss +
        penalty))``, whose ``beta``-scaled variances are ``V``, ``1 / Vhat`` (the condition
        ``alpha E(d_omega g_out)^2 E(d_b f_in)^2 < 1`` of a generalised linear model, as for the
        perceptron in :class:`~hdtheory.Gardner`; derived here in this package's conventions for a
        generic penalty and checked through the identity below). ``lambda`` is the gain of the loop of
        a perturbation through the channel and the weights: the spin-glass susceptibility of the
        minimiser, ``(1 / d) tr H^{-2}`` with ``H`` the Hessian of the objective (``(1 / d) sum_ij
        (d w_i / d h_j)^2`` for a field ``h`` on the weights), is ``B / (1 - lambda)``, and diverges
        where ``lambda`` reaches one. A convex loss has
        ``0 <= d prox / d omega <= 1``, so ``A <= Vhat / V``, and a convex penalty ``0 <= d w_hat / d b
        <= 1 / Vhat``, so ``B <= V / Vhat``: ``lambda <= 1``, always stable. A non-convex loss has ``d
        prox / d omega > 1`` where the loss is concave, and ``lambda`` may exceed one; where its prox
        jumps (:meth:`Loss.prox_jumps`), the thermal mean crosses over a width ``1 / beta`` in
        ``omega`` with a slope ``~ beta``, so that ``E(d_omega f)^2 ~ beta``: ``lambda`` is ``inf``,
        replica symmetry broken.
        """

        def at(theory, scaled, omega):
            return omega**2 * theory._output_replicon(scaled)

        return self._over_scales(at, state) * self.replicon_weight_side(mhat, qhat, Vhat)

    def replicon_weight_side(self, mhat, qhat, Vhat) -> jax.Array:
        """``B = E[(d w_hat / d b)^2]`` of :meth:`replicon` (:meth:`hdtheory.kernels.Penalty.replicon`
        over the teacher prior)."""
        prior, scale = self.teacher_prior
        weights, variances = prior.gaussian_mixture()
        return self.penalty_fn.replicon(mhat, qhat, Vhat, weights, [scale**2 * v for v in variances])

    @property
    def reports_replicon(self) -> bool:
        """Whether ``at_stability`` is an observable, for the models whose replicon is derived (not
        for a subclass that changes the loss or the weights' law, unless it says so), and so whether
        the non-convex losses (Tukey, Cauchy), which need it, are accepted."""
        return type(self) is ERM

    def _output_replicon(self, state: Overlaps) -> jax.Array:
        """``alpha E[(d_omega f)^2]`` on Gaussian data (:meth:`replicon`), ``inf`` where the prox jumps:
        for a loss of the residual and a Gaussian-mixture residual ``alpha sum_k p_k E_k f'(r)^2``
        (:meth:`Loss.gaussian_residual_replicon`), else by the quadrature of the channel integrals."""
        m, q, V = state.m, state.q, state.V
        inside = (q > 0) & (V > 0) & (m**2 <= self.rho * q)
        loss = self.loss_fn
        averages = self._residual_averages(state, inside, loss.gaussian_residual_replicon)
        if averages is not None:
            value = sum(weight * average for weight, _, average in averages)
        else:
            y, omega, w, _ = self._channel_terms(state)
            shift = self.margin_shift(state)
            _, dprox, _ = loss.prox_derivatives(y, omega if shift is None else omega - y * shift[0], V)
            value = jnp.sum(w * ((1 - dprox) / V) ** 2)
        return jnp.where(loss.prox_jumps(V), jnp.inf, self.alpha * value)

    def update(self, state: Overlaps) -> Overlaps:
        weights = self.weight_averages(*self.conjugates(state))
        return Overlaps(m=weights.m, q=weights.q, V=weights.V)

    def separability_threshold(self, axis: str, steps: int = 100, tol: float | None = None):
        """``(alpha*, found, residual)``: the data are linearly separable, and the logistic and hinge
        minimisers at ``lam = 0`` do not exist, for ``alpha < alpha*``
        (:func:`hdtheory.kernels.separability_threshold`; ``alpha* = inf`` for a noiseless teacher).
        The threshold is that of ``lam = 0`` whatever ``lam`` is; ``alpha`` itself is not used.
        """
        if type(self) is not ERM:
            raise ParameterError(f"{type(self).__name__} has no separability threshold")
        if self.loss not in ("logistic", "hinge"):
            raise ParameterError(
                f"parameter 'loss' must be logistic or hinge for a separability threshold, got {self.loss!r}"
            )
        if axis != "alpha":
            raise ParameterError(f"parameter 'axis' must be alpha for a separability threshold, got {axis!r}")
        if self.scale != "none" and self.noise_scaling != "joint" and _NOISE_EXPONENTS[self.teacher] != 0:
            raise ParameterError(
                f"parameter 'noise_scaling' must be joint for the separability threshold of elliptical data "
                f"with teacher={self.teacher}, got {self.noise_scaling!r}"
            )
        result = kernels.separability_threshold(self.channel, self.rho, self.panel_order, steps, tol)
        return result.alpha, result.converged, result.residual

    def calibration_curve(self, state: Overlaps, confidence) -> jax.Array:
        """``P(y = predicted label | confidence)`` at confidences in ``(1/2, 1)`` (classification,
        Gaussian data)."""
        if self.scale != "none":
            raise ParameterError(f"parameter 'scale' must be none for a calibration curve, got {self.scale!r}")
        return kernels.calibration_curve(self.channel, state.m, state.q, self.rho, confidence, self.temperature)

    def observables(self, state: Overlaps) -> dict[str, jax.Array]:
        m, q, V = state.m, state.q, state.V
        mhat, qhat, Vhat, train_loss, slope = self._channel_averages(state)
        test_error, test_error_total = self.test_errors(m, q)
        stability = {}
        if self.reports_replicon:
            stability = {"at_stability": self.replicon(state, mhat, qhat, Vhat)}
        calibration = {}
        if self.channel.classification and self.scale == "none":
            metrics = kernels.calibration_metrics(self.channel, m, q, self.rho, self.temperature)
            calibration = {
                "confidence": metrics["confidence"],
                "ece": metrics["ece"],
                "test_nll": metrics["nll"],
                "brier": metrics["brier"],
                "ec_temperature": kernels.expectation_consistent_temperature(self.channel, m, q, self.rho),
                "optimal_temperature": kernels.optimal_temperature(self.channel, m, q, self.rho),
            }
        return calibration | stability | {
            "m": m,
            "q": q,
            "V": V,
            "mhat": mhat,
            "qhat": qhat,
            "Vhat": Vhat,
            "test_error": test_error,
            "test_error_total": test_error_total,
            "train_loss": train_loss,
            "norm": jnp.sqrt(q),
            "angle": jnp.arccos(jnp.clip(m / jnp.sqrt(self.rho * q), -1.0, 1.0)),
            "weight_error": self.rho - 2 * m + q,
            "sparsity_hat": self.weight_averages(mhat, qhat, Vhat, self.penalty_at(state, slope)).nonzero,
        }
