r"""The Gaussian covariate model: teacher and student on different Gaussian features.

**Setting** (Loureiro et al. 2021, "Learning curves of generic features maps for realistic datasets
with a teacher-student model", NeurIPS). Jointly Gaussian teacher features ``u in R^k`` and student
features ``v in R^p``, ``E[u u^T] = Psi``, ``E[u v^T] = Phi``, ``E[v v^T] = Omega``; teacher weights
``theta``, teacher field ``z = theta.u / sqrt(k)``, labels ``y ~ P(y | z)`` from a teacher channel of
:mod:`hdtheory.kernels.channels`; ``n`` samples, **alpha = n / p** (the student's dimension: a
model built on inputs of dimension ``d``, such as :func:`random_features`, converts). The student
minimises

.. math:: \sum_i l(y_i, w \cdot v_i / \sqrt{p}) + \frac{\lambda}{2} |w|^2 ,

the conventions of :mod:`hdtheory.models.erm` (``lam`` as written, not divided by ``n``).

**Spectral form.** Only three things about the features enter: the teacher's variance
``rho = E z^2 = theta^T Psi theta / k``, the eigenvalues ``omega_j`` of ``Omega`` and the teacher's
projections on its eigenvectors ``e_j``, given as ``theta2_j = p (e_j . t)^2`` with
``t = E[z v] = Phi^T theta / sqrt(k)``. Averages over modes ``<f> = sum_j weights_j f_j`` use the
fraction ``weights_j`` of the ``p`` modes at ``omega_j`` (``1 / p`` for a finite spectrum, a
quadrature of the limiting spectral density for random features). With ``D_j = lam + Vhat omega_j``
the fixed point is (Loureiro et al. 2021, their saddle-point equations for the ridge penalty,
written per eigenmode of ``Omega``)

.. math::
    V = \Big\langle \frac{\omega}{D} \Big\rangle,\quad
    m = \hat m \Big\langle \frac{\theta^2}{D} \Big\rangle,\quad
    q = \Big\langle \frac{\omega (\hat m^2 \theta^2 + \hat q\, \omega)}{D^2} \Big\rangle,

with ``m = E[z w.v] / sqrt(p)``, ``q = E[(w.v)^2] / p`` and ``(mhat, qhat, Vhat)`` the conjugates of
:class:`~hdtheory.ERM` at ``alpha = n / p`` and teacher variance ``rho``: the channel side of the
saddle point is the isotropic one, the features enter only through these sums. Each iteration costs
``O(P)`` for ``P`` modes. Isotropic data (``Omega = Psi = Phi = I``, ``theta2_j = rho``) is
:class:`~hdtheory.ERM`: ``V = 1 / (lam + Vhat)``, ``m = rho mhat V``, ``q = (rho mhat^2 + qhat) V^2``.
Loureiro et al. name the teacher's dimension ``p`` and the student's ``d`` (their ``alpha = n / d``
is this ``alpha``) and scale the teacher's projections by ``1 / sqrt(gamma)``; here they are per
student mode, and the teacher enters only through ``rho`` and ``theta2``. The test
errors depend on ``(m, q, rho)`` only, exactly as in :class:`~hdtheory.ERM`.

**Matrix form.** :meth:`GCM.from_matrices` takes ``(Psi, Phi, Omega, theta)``, diagonalises
``Omega`` once (``O(p^3)``; differentiable) and returns the spectral model: with a ridge penalty the
equations depend on the student covariance and the teacher's cross-covariance through ``Omega`` and
``t`` only, so the covariances need not commute.

**Data.** :meth:`GCM.from_data` takes a data set (features, or inputs and a feature map, and labels
or a teacher on other features) and returns the model of its second moments, the recipe of
Loureiro et al. 2021 for the learning curves of real data sets: the data set is the population.

**Observables.** Those of :class:`~hdtheory.ERM` (``test_error``, ``test_error_total``,
``train_loss``, ``m``, ``q``, ``V``, the conjugates, the calibration of classifiers, ``at_stability``).
The replicon (:meth:`~hdtheory.ERM.replicon`) is ``lambda = A <omega^2 / D^2>``, ``A = alpha
E[(d_omega f)^2]`` the channel side of :class:`~hdtheory.ERM`: a perturbation of the fields of
variance ``delta`` feeds the weights a noise of covariance ``A delta Omega``, which the weights'
response ``(lam + Vhat Omega)^{-1}`` returns to the fields with variance ``A delta <omega^2 / D^2>``
(the isotropic ``V^2``); the spin-glass susceptibility of the fields,
``(1 / p) tr[(Omega H^{-1})^2]`` with ``H`` the Hessian of the objective, is
``<omega^2 / D^2> / (1 - lambda)``. With it the non-convex losses of the residual (``tukey``,
``cauchy``, linear teacher) are accepted, as in :class:`~hdtheory.ERM`: the channel side is
the isotropic one, and ``at_stability`` says where the replica-symmetric answer holds. Per mode,
:meth:`GCM.mode_errors` splits the excess mean squared error of the student's field:
``E(z - w.v / sqrt(p))^2 = rho - <theta2 / omega> + <e>``, with
``e_j = theta2_j lam^2 / (omega_j D_j^2) + qhat omega_j^2 / D_j^2`` (the mode's bias and variance);
``rho - <theta2 / omega>`` is the part of the teacher no linear function of ``v`` captures.

**Builders.** :func:`random_features` (Gerace et al. 2020, "Generalisation error in learning with
random features and the hidden manifold model", ICML), :func:`hidden_manifold` (Goldt et al. 2020;
the same equations with the teacher on the latent space) and :func:`power_law` (capacity and source
exponents; Cui et al. 2021 for regression, 2023 for classification, :func:`classification_rate`).
"""

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError
from .._theory import check_in, choice, integer, is_concrete, parameter
from .erm import ERM, Overlaps


def _array(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


class GCM(ERM):
    """ERM on the Gaussian covariate model, spectral form; see the module docstring."""

    omega: jax.Array = eqx.field(default=(1.0,), converter=_array)
    """Eigenvalues of the student covariance ``Omega``, shape ``(P,)``."""
    theta2: jax.Array = eqx.field(default=(1.0,), converter=_array)
    """Teacher projections ``p (e_j . E[z v])^2``, shape ``(P,)``."""
    weights: jax.Array | None = eqx.field(default=None, converter=lambda w: None if w is None else _array(w))
    """Fraction of the modes at each eigenvalue (sums to one); ``None``: ``1 / P`` each."""

    def __check_init__(self):
        if self.penalty != "ridge":
            raise ParameterError(f"parameter 'penalty' must be ridge for GCM, got {self.penalty!r}")
        if self.prior != "gaussian":
            raise ParameterError(
                f"parameter 'prior' must be gaussian for GCM (the teacher is given by 'theta2'), got {self.prior!r}"
            )
        omega, theta2 = self.omega, self.theta2
        if omega.ndim != 1 or theta2.shape != omega.shape or (
            self.weights is not None and self.weights.shape != omega.shape
        ):
            raise ParameterError(
                "'omega', 'theta2' and 'weights' must be 1-D arrays of one length, got shapes "
                f"{omega.shape}, {theta2.shape}, {None if self.weights is None else self.weights.shape}"
            )
        check_in("omega", omega, NONNEGATIVE)
        check_in("theta2", theta2, NONNEGATIVE)
        if self.weights is not None:
            check_in("weights", self.weights, NONNEGATIVE)
        if all(map(is_concrete, (omega, theta2, self.rho))) and (self.weights is None or is_concrete(self.weights)):
            # In NumPy: inside a traced function (a jit closing over a model), jnp operations on
            # concrete fields would be traced.
            omega, theta2 = np.asarray(omega), np.asarray(theta2)
            ratio = np.where(omega > 0, theta2 / np.where(omega > 0, omega, 1.0), 0.0)
            explained = float(np.mean(ratio) if self.weights is None else np.sum(np.asarray(self.weights) * ratio))
            if np.any(theta2[omega == 0] > 0):
                raise ParameterError("parameter 'theta2' must vanish where 'omega' does (no variance, no projection)")
            if np.any(np.asarray(self.rho) < explained * (1 - 1e-9)):
                raise ParameterError(
                    f"parameter 'rho' must be >= <theta2 / omega> = {explained:g}, the teacher variance "
                    "explained by the student's features"
                )

    @classmethod
    def from_matrices(cls, Psi, Phi, Omega, theta, **kwargs) -> "GCM":
        """The model for covariances ``Psi (k, k)``, ``Phi (k, p)``, ``Omega (p, p)`` and ``theta (k,)``.

        ``rho = theta^T Psi theta / k``; ``Omega`` is diagonalised once and the teacher's
        cross-covariance ``t = Phi^T theta / sqrt(k)`` projected on its eigenvectors.
        """
        Psi, Phi, Omega, theta = map(jnp.asarray, (Psi, Phi, Omega, theta))
        k, p = Phi.shape
        if Psi.shape != (k, k) or Omega.shape != (p, p) or theta.shape != (k,):
            raise ParameterError(
                f"shapes must be Psi (k, k), Phi (k, p), Omega (p, p), theta (k,); got {Psi.shape}, "
                f"{Phi.shape}, {Omega.shape}, {theta.shape}"
            )
        omega, theta2 = _spectral_form(Omega, Phi.T @ theta / math.sqrt(k))
        return cls(omega=omega, theta2=theta2, rho=theta @ Psi @ theta / k, **kwargs)

    @classmethod
    def from_data(
        cls, features, labels=None, *, feature_map=None, teacher_features=None, teacher_weights=None, **kwargs
    ) -> "GCM":
        r"""The model whose covariances are the second moments of a data set of ``N`` samples.

        The learning curve of a real data set (Loureiro et al. 2021, their figure 4 and the recipe of
        the code accompanying the paper): the population covariances are estimated on the whole data set,
        ``Omega = V^T V / N``, ``Phi = U^T V / N``, ``Psi = U^T U / N`` (second moments, not centred:
        the student has no intercept), and the model is the GCM of those. The student features
        ``V (N, p)`` are ``features``, or ``feature_map(features)`` for inputs ``features`` and a
        map of a batch ``(N, D) -> (N, p)``. The target is one of

        - ``labels (N,)``: the teacher weights are the least-squares fit of the labels on the
          teacher features ``U (N, k)``, ``theta* = sqrt(k) U^+ y`` (pseudo-inverse), so that the
          teacher field on the data is ``z = U theta* / sqrt(k)``, the projection of ``y`` on the
          span of ``U``'s columns. By default (``teacher_features=None``) the teacher's features are
          the data set itself (``k = N``, one feature per sample, as in Loureiro et al.'s real-data
          curves): the fit is exact and ``z = y``. A residual ``y - z`` is not part of the model: for
          a linear teacher it is label noise, whose variance ``mean((y - z)^2)`` may be passed as
          ``noise``;
        - ``teacher_features = U (N, k)`` and ``teacher_weights = theta (k,)``: ``z = U theta / sqrt(k)``.

        Only ``z`` enters: ``rho = theta^T Psi theta / k = mean(z^2)`` and the cross-covariance
        ``t = Phi^T theta / sqrt(k) = V^T z / N``, the model of :meth:`from_matrices` without forming
        ``Psi`` or ``Phi``. ``kwargs`` go to :class:`GCM` (``alpha = n / p`` for ``n`` training
        samples, ``lam``, ``loss``, ``teacher``...): with ``teacher="linear"`` the test error is the
        mean squared error against ``z`` (the labels, by default), with ``teacher="sign"`` the 0-1
        error against ``sign(z)``. Differentiable in the data (but for degenerate eigenvalues of
        ``Omega``, as for any eigendecomposition).

        The data set is the population: the model predicts the error of ``n`` samples drawn i.i.d.
        from it, measured on the whole data set (on held-out samples when ``n`` is a small fraction
        of ``N``). Checked (``tests/test_gcm_from_data.py``): ridge regression on random features of
        scikit-learn's digits within 1% of the measured curve; the 0-1 error of logistic regression
        with ``teacher="sign"`` about twice the measured one, since the part of the labels that no
        linear function of the features explains is label noise in the model, while real labels
        are a deterministic function of the input.
        """
        V = _array(features if feature_map is None else feature_map(jnp.asarray(features)))
        if V.ndim != 2 or V.shape[0] < 2:
            raise ParameterError(f"student features must be an (N, p) array with N >= 2 samples, got shape {V.shape}")
        N = V.shape[0]
        U = None if teacher_features is None else _array(teacher_features)
        if U is not None and (U.ndim != 2 or U.shape[0] != N):
            raise ParameterError(f"'teacher_features' must be an ({N}, k) array, one row per sample, got shape {U.shape}")
        if (labels is None) == (teacher_weights is None):
            raise ParameterError("give the target either as 'labels' or as 'teacher_weights', not both nor neither")
        if teacher_weights is not None:
            theta = _array(teacher_weights)
            if U is None or theta.shape != (U.shape[1],):
                raise ParameterError(
                    f"'teacher_weights' (k,) need 'teacher_features' (N, k); got {theta.shape} and "
                    f"{None if U is None else U.shape}"
                )
            z = U @ theta / math.sqrt(U.shape[1])
        else:
            y = _array(labels)
            if y.shape != (N,):
                raise ParameterError(f"'labels' must have shape ({N},), one per sample, got {y.shape}")
            z = y if U is None else _least_squares_field(U, y)
        if is_concrete(V) and is_concrete(z) and not (np.all(np.isfinite(V)) and np.all(np.isfinite(z))):
            raise ParameterError("the features and the target must be finite")
        omega, theta2, rho = _data_spectrum(V, z)
        return cls(omega=omega, theta2=theta2, rho=rho, **kwargs)

    def average(self, values) -> jax.Array:
        """``<values>``: the average over modes with the model's weights."""
        if self.weights is None:
            return jnp.mean(values, axis=-1)
        return jnp.sum(self.weights * values, axis=-1)

    def _weight_side(self, state):
        """``(mhat, qhat, Vhat, ridge)``: the conjugates at a state and the ridge on each mode, ``lam``
        (a subclass with another penalty geometry or a norm-dependent term gives an array)."""
        mhat, qhat, Vhat = self.conjugates(state)
        return mhat, qhat, Vhat, self.lam

    def _denominators(self, Vhat, ridge=None):
        """``D_j = ridge_j + Vhat omega_j`` (``ridge = lam`` by default), and a mask of the modes with
        ``omega_j > 0``."""
        positive = self.omega > 0
        D = (self.lam if ridge is None else ridge) + Vhat * self.omega
        return jnp.where(positive, D, 1.0), positive

    def _mode_moments(self, state):
        """Per mode, masked to the modes with ``omega_j > 0``: ``(mhat / D_j, (mhat^2 theta2_j +
        qhat omega_j) / D_j^2, 1 / D_j)`` with ``D_j = ridge_j + Vhat omega_j``, the mean response
        of a weight to the teacher, its second moment and its variance (module docstring)."""
        mhat, qhat, Vhat, ridge = self._weight_side(state)
        D, positive = self._denominators(Vhat, ridge)
        second = (mhat**2 * self.theta2 + qhat * self.omega) / D**2
        return tuple(jnp.where(positive, x, 0.0) for x in (mhat / D, second, 1 / D))

    def update(self, state: Overlaps) -> Overlaps:
        response, second, inverse = self._mode_moments(state)
        return Overlaps(
            m=self.average(self.theta2 * response),
            q=self.average(self.omega * second),
            V=self.average(self.omega * inverse),
        )

    def replicon_weight_side(self, mhat, qhat, Vhat) -> jax.Array:
        """``<omega^2 / D^2>``: the weight side of the replicon (module docstring)."""
        D, positive = self._denominators(Vhat)
        return self.average(jnp.where(positive, self.omega**2 / D**2, 0.0))

    @property
    def reports_replicon(self) -> bool:
        return type(self) is GCM

    def observables(self, state: Overlaps) -> dict[str, jax.Array]:
        """Those of :class:`~hdtheory.ERM` but its weight side's (``weight_error``, ``sparsity_hat``):
        the student's weights live on the features, not on the teacher's space."""
        observables = super().observables(state)
        del observables["weight_error"], observables["sparsity_hat"]
        return observables

    def mode_errors(self, state: Overlaps) -> jax.Array:
        """The excess squared error per mode, ``e_j`` of the module docstring (shape ``(P,)``; with a
        ridge ``r_j`` per mode, ``lam`` there is ``r_j``)."""
        _, qhat, Vhat, ridge = self._weight_side(state)
        D, positive = self._denominators(Vhat, ridge)
        omega = jnp.where(positive, self.omega, 1.0)
        e = self.theta2 * ridge**2 / (omega * D**2) + qhat * omega**2 / D**2
        return jnp.where(positive, e, 0.0)


def _spectral_form(Omega, t):
    """``(omega, theta2)``: the eigenvalues of ``Omega (p, p)`` and ``theta2_j = p (e_j . t)^2``.

    Eigenvalues below ``p eps max(omega)`` (rounding of a positive semi-definite matrix, the
    tolerance of a numerical rank) are zero, and the teacher's projections on them too.
    """
    p = Omega.shape[0]
    omega, vectors = jnp.linalg.eigh(Omega)
    omega = jnp.where(omega > p * jnp.finfo(omega.dtype).eps * jnp.max(omega), omega, 0.0)
    return omega, jnp.where(omega > 0, p * (vectors.T @ t) ** 2, 0.0)


@jax.jit
def _least_squares_field(U, y):
    """``U U^+ y``: the projection of ``y`` on the span of the columns of ``U``."""
    return U @ jnp.linalg.lstsq(U, y)[0]


@jax.jit
def _data_spectrum(V, z):
    """``(omega, theta2, rho)`` of :meth:`GCM.from_data` for features ``V (N, p)`` and the teacher's
    field ``z (N,)``, one program per shape."""
    N = V.shape[0]
    omega, theta2 = _spectral_form(V.T @ V / N, V.T @ z / N)
    return omega, theta2, jnp.mean(z**2)


def power_law(capacity, source, *, modes: int, n, lam=0.0, noise=0.0, head: int | None = None, **kwargs) -> GCM:
    r"""Kernel ridge regression on a power-law spectrum of ``modes`` modes, as a :class:`GCM`.

    Features ``psi`` with covariance ``diag(eta_k)``, ``eta_k = k^-capacity``, a linear teacher
    ``z = sum_k beta*_k psi_k`` with ``beta*_k^2 eta_k = k^(-1 - 2 capacity source)`` (the capacity
    and source conditions in the parametrisation of Cui et al. 2021), ``n`` samples and the estimator
    ``argmin sum_i (y_i - beta.psi_i)^2 / 2 + (lam / 2) |beta|^2``. In the model's normalisation
    (``v = sqrt(p) psi``, ``p = modes``): ``omega_k = p eta_k``, ``theta2_k = p^2 eta_k^2 beta*_k^2``,
    ``rho = sum_k beta*_k^2 eta_k``, ``alpha = n / p``. ``loss`` and ``teacher`` default to square and
    linear; other keyword arguments go to :class:`GCM`.

    ``head=None`` keeps every mode (``O(modes)`` per iteration); ``head=H`` keeps the first ``H`` and
    sums the rest by Gauss-Legendre panels in ``log k`` (:func:`hdtheory.kernels.mode_rule`, one
    panel per e-fold, as ``weights``): ``H + 8 log(modes / H)`` nodes, so that ``10^6`` modes cost
    about as much as ``10^3``.

    With ``teacher="sign"`` it is kernel classification (Cui, Loureiro, Krzakala and Zdeborová 2023,
    "Error scaling laws for kernel classification under source and capacity conditions", Mach.
    Learn.: Sci. Technol., doi:10.1088/2632-2153/acf041; the same parametrisation of ``eta`` and
    ``beta*``): labels ``y = sign(z)``, flipped with probability ``noise``; ``loss="hinge"`` with
    ``lam -> 0+`` is the max-margin SVM, ``loss="square"`` ridge classification. The observable
    ``test_error`` is then the probability that ``sign(beta.psi)`` disagrees with ``sign(z)``, the
    excess of the 0-1 error over the Bayes error ``noise`` up to the factor ``1 - 2 noise``; its
    decay exponents in ``n`` are :func:`classification_rate`.
    """
    dtype = jnp.result_type(capacity, source, float)
    if head is None or head >= modes:
        k, weights = jnp.arange(1, modes + 1, dtype=dtype), None
    else:
        k, w = kernels.mode_rule(head, modes + 0.5, max(1, math.ceil(math.log((modes + 0.5) / (head + 0.5)))))
        k, weights = jnp.asarray(k, dtype), jnp.asarray(w / modes, dtype)
    eta = k ** (-jnp.asarray(capacity))
    power = k ** (-1.0 - 2.0 * capacity * source)
    kwargs = {"loss": "square", "teacher": "linear"} | kwargs
    return GCM(
        omega=modes * eta,
        theta2=modes**2 * eta * power,
        weights=weights,
        rho=jnp.sum(power) if weights is None else modes * jnp.sum(weights * power),
        alpha=jnp.asarray(n) / modes,
        lam=lam,
        noise=noise,
        **kwargs,
    )


def classification_rate(capacity: float, source: float, loss: str, noisy: bool = False) -> float:
    r"""The decay exponent in ``n`` of the excess misclassification error of kernel classification on
    :func:`power_law` features (Cui et al. 2023, their rates for the max-margin SVM and ridge
    classification under the Gaussian design; capacity ``a``, source ``r``).

    Noiseless labels: the max-margin SVM (``loss="hinge"``, ``lam -> 0+``) decays as
    ``n^(-a r' / (1 + a r'))`` with ``r' = min(r, 1/2)``, ridge classification (``loss="square"``,
    optimal ``lam``) as ``n^(-a r' / (1 + 2 a r'))`` with ``r' = min(r, 1)``: the part of the labels
    that is not linear in ``z`` acts on the square loss as noise. Noisy labels (``noisy=True``, optimal
    ``lam``): both as ``n^(-a r' / (1 + 2 a r'))``, ``r' = min(r, 1)``, the square root of the optimal
    noisy rate of kernel ridge regression (:func:`hdtheory.models.krr.published_rate`): the 0-1 error
    is an angle, the root of a squared error.

    Logistic regression (``loss="logistic"``, noiseless labels, ``lam -> 0+``) has the max-margin
    SVM's rate: on separable data its minimiser's direction, which alone sets the 0-1 error, tends to
    the max-margin one as ``lam -> 0+`` (Rosset, Zhu and Hastie 2004), so that the limit curves are one
    (derived here, not among the paper's rates; checked on the fixed point, whose logistic error
    approaches the SVM's from below as ``lam`` shrinks, at the SVM's exponent). With noisy labels no
    rate is published or derived for it: a :class:`~hdtheory.ParameterError`.
    """
    if loss not in ("hinge", "square", "logistic"):
        raise ParameterError(f"parameter 'loss' must be hinge, logistic or square, got {loss!r}")
    if loss == "logistic" and noisy:
        raise ParameterError("no rate for loss='logistic' with noisy=True: only its noiseless max-margin limit (lam -> 0+)")
    if loss in ("hinge", "logistic") and not noisy:
        r = min(source, 0.5)
        return capacity * r / (1 + capacity * r)
    r = min(source, 1.0)
    return capacity * r / (1 + 2 * capacity * r)


# Random features: Gaussian equivalence and the Marchenko-Pastur spectrum.

RF_ACTIVATIONS = {
    "erf": erf,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sign": jnp.sign,
    "linear": lambda x: x,
}
"""The activations of :func:`random_features`, ``sigma(x)`` (``erf`` is ``erf(x)``, unscaled)."""

FEATURE_MATRICES = ("gaussian", "orthogonal")


def gaussian_equivalence(activation: str, order: int = 40, dtype=None, variance=1.0):
    r"""``(kappa_0, kappa_1, kappa_star)`` of an activation at a preactivation variance, by quadrature.

    For ``u ~ N(0, r)``, ``r = variance``: ``kappa_0 = E sigma(u)``, ``kappa_1 = E[u sigma(u)] / r``
    (``= E sigma'(u)``), ``kappa_star^2 = E sigma(u)^2 - kappa_0^2 - r kappa_1^2`` (Mei and Montanari
    2019; Gerace et al. 2020 at ``r = 1``; Schröder et al. 2023 layer by layer), so that
    ``sigma(F x / sqrt(d))`` with ``|F_i|^2 / d = r`` is equivalent to ``kappa_0 + kappa_1 F x / sqrt(d)
    + kappa_star xi``. A Gauss-Legendre panel rule with an edge at 0
    (:func:`hdtheory.kernels.panel_rule`) integrates the kinks of ReLU and sign exactly; the result is
    differentiable in ``variance``.
    """
    sigma = RF_ACTIVATIONS[activation]
    g, w = kernels.panel_rule(jnp.zeros((1,), dtype or float), order)
    scale = jnp.sqrt(jnp.asarray(variance, g.dtype))
    s = sigma(scale * g)
    k0, k1, k2 = jnp.sum(w * s), jnp.sum(w * g * s) / scale, jnp.sum(w * s**2)
    return k0, k1, jnp.sqrt(jnp.maximum(k2 - k0**2 - scale**2 * k1**2, 0.0))


def marchenko_pastur_rule(gamma, nodes: int):
    r"""Eigenvalues ``s_j`` and masses ``w_j`` of ``F F^T / d`` for Gaussian ``F`` of size ``p x d``.

    The Marchenko-Pastur law of ratio ``gamma = p / d``: density
    ``sqrt((b - s)(s - a)) / (2 pi gamma s)`` on ``[a, b] = [(1 - sqrt(gamma))^2, (1 + sqrt(gamma))^2]``
    and an atom ``1 - 1 / gamma`` at zero when ``gamma > 1``. With ``s = a + (b - a)(1 - cos u) / 2``
    the density times ``ds`` is ``(b - a)^2 sin^2 u / (8 pi gamma s) du``, smooth on ``[0, pi]``: a
    Gauss-Legendre rule of ``nodes`` points in ``u`` converges exponentially for smooth integrands.
    The last node is the atom (mass zero when ``gamma <= 1``).
    """
    x, wx = np.polynomial.legendre.leggauss(nodes)
    gamma = jnp.asarray(gamma, jnp.result_type(gamma, float))
    u = jnp.asarray(0.5 * np.pi * (x + 1), gamma.dtype)
    a, b = (1 - jnp.sqrt(gamma)) ** 2, (1 + jnp.sqrt(gamma)) ** 2
    s = a + (b - a) * (1 - jnp.cos(u)) / 2
    w = 0.5 * np.pi * jnp.asarray(wx, gamma.dtype) * (b - a) ** 2 * jnp.sin(u) ** 2 / (8 * np.pi * gamma * s)
    atom = jnp.maximum(1 - 1 / gamma, 0.0)
    return jnp.append(s, 0.0), jnp.append(w, atom)


def _orthogonal_rule(gamma, nodes: int):
    """``F F^T / d`` for ``F`` with orthogonal rows of norm ``sqrt(d)`` (``gamma <= 1``), or orthogonal
    columns of norm ``sqrt(p)`` (``gamma > 1``): eigenvalue ``max(1, gamma)`` with mass
    ``min(1, 1 / gamma)`` and zero with the rest."""
    gamma = jnp.asarray(gamma, jnp.result_type(gamma, float))
    s = jnp.zeros(nodes + 1, gamma.dtype).at[0].set(jnp.maximum(1.0, gamma))
    w = jnp.zeros(nodes + 1, gamma.dtype).at[0].set(jnp.minimum(1.0, 1 / gamma))
    return s, w.at[-1].set(jnp.maximum(1 - 1 / gamma, 0.0))


def feature_spectrum(gamma, features: str = "gaussian", nodes: int = 64):
    """``(s, weights)``: the limiting spectrum of ``F F^T / d`` as a rule of ``nodes + 1`` points."""
    if features not in FEATURE_MATRICES:
        raise ParameterError(f"parameter 'features' must be one of {', '.join(FEATURE_MATRICES)}, got {features!r}")
    return (marchenko_pastur_rule if features == "gaussian" else _orthogonal_rule)(gamma, nodes)


def random_features(
    activation: str = "erf",
    gamma=1.0,
    alpha=2.0,
    *,
    features: str = "gaussian",
    nodes: int = 64,
    rho=1.0,
    **kwargs,
) -> GCM:
    r"""Random features ``v = sigma(F x / sqrt(d))`` on ``x ~ N(0, I_d)``, as a :class:`GCM`.

    ``p = gamma d`` features, ``n = alpha d`` samples (``alpha`` per input dimension, as in
    CONVENTIONS.md; the model's own ratio is ``n / p = alpha / gamma``), teacher ``z = w*.x / sqrt(d)``
    with ``|w*|^2 / d = rho``. By Gaussian equivalence (Gerace et al. 2020; Mei and Montanari 2019;
    Hu and Lu 2022), ``Omega = kappa_1^2 F F^T / d + kappa_star^2 I``, ``Phi = kappa_1 F^T / sqrt(d)``
    and, for a teacher drawn isotropically, ``theta2 = gamma kappa_1^2 rho s`` on the eigenvalue ``s``
    of ``F F^T / d``, whose limiting law is :func:`feature_spectrum`. The mean ``kappa_0`` adds one
    mode of variance ``p kappa_0^2`` on which the teacher has no projection; its contribution to
    every sum is ``O(1 / p)`` and it is left out. ``kwargs`` go to :class:`GCM` (``lam``, ``loss``,
    ``teacher``, ``noise``...).
    """
    if activation not in RF_ACTIVATIONS:
        raise ParameterError(f"parameter 'activation' must be one of {', '.join(RF_ACTIVATIONS)}, got {activation!r}")
    check_in("gamma", gamma, POSITIVE)
    check_in("alpha", alpha, POSITIVE)
    gamma = jnp.asarray(gamma, jnp.result_type(gamma, float))
    omega, theta2, weights, ratio = _equivalent_spectrum(gamma, rho, alpha, activation, features, nodes)
    return GCM(omega=omega, theta2=theta2, weights=weights, alpha=ratio, rho=rho, **kwargs)


@functools.partial(jax.jit, static_argnames=("activation", "features", "nodes"))
def _equivalent_spectrum(gamma, rho, alpha, activation: str, features: str, nodes: int):
    """``(omega, theta2, weights, alpha / gamma)`` of :func:`random_features`, as one program rather
    than some fifty operations run one by one (each of them traced and lowered in every process)."""
    _, k1, kstar = gaussian_equivalence(activation, dtype=gamma.dtype)
    s, weights = feature_spectrum(gamma, features, nodes)
    return k1**2 * s + kstar**2, gamma * k1**2 * rho * s, weights, alpha / gamma


def hidden_manifold(activation: str = "erf", gamma=1.0, alpha=2.0, **kwargs) -> GCM:
    r"""The hidden manifold model (Goldt et al. 2020, "Modeling the influence of data structure on
    learning in neural networks: the hidden manifold model", PRX; Gerace et al. 2020).

    Inputs ``x = sigma(F c / sqrt(D))`` of dimension ``N`` built from a latent ``c ~ N(0, I_D)``,
    labels from a teacher on the latent, ``z = theta.c / sqrt(D)``, a linear student on ``x``. This is
    :func:`random_features` with the latent as the input: ``gamma = N / D`` and ``alpha = n / D``
    here (Gerace et al. use ``alpha = n / N`` and ``1 / gamma = D / N``: pass ``alpha_theirs * gamma``).
    """
    return random_features(activation, gamma, alpha, **kwargs)


class EquivalentGCM(FixedPointTheory):
    """A model solved as the :class:`GCM` it is equivalent to (:attr:`gcm`): random features and
    their deep versions, whose fields are those of the setting and whose equations are the GCM's."""

    @property
    @abc.abstractmethod
    def gcm(self) -> GCM:
        """The equivalent :class:`GCM`."""

    def equivalent(self) -> GCM:
        """:attr:`gcm`: :func:`hdtheory.solve` builds it once and iterates its map."""
        return self.gcm

    def init(self, kind: str = "uninformed") -> Overlaps:
        return self.gcm.init(kind)

    def unconstrain(self, state):
        return self.gcm.unconstrain(state)

    def constrain(self, u):
        return self.gcm.constrain(u)

    def update(self, state: Overlaps) -> Overlaps:
        return self.gcm.update(state)

    def observables(self, state: Overlaps) -> dict[str, jax.Array]:
        return self.gcm.observables(state)

    def calibration_curve(self, state: Overlaps, confidence) -> jax.Array:
        """:meth:`ERM.calibration_curve` of the equivalent :class:`GCM`."""
        return self.gcm.calibration_curve(state, confidence)


class RandomFeatures(EquivalentGCM):
    """Random-features ERM: sigma(F x / sqrt(d)), p = gamma d features (Gerace et al. 2020)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per input dimension n/d")
    gamma: jax.Array = parameter(1.0, POSITIVE, "features per input dimension p/d")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    temperature: jax.Array = parameter(
        1.0, POSITIVE, "temperature T of the confidence sigmoid(w.v / sqrt(p) / T) (calibration only)"
    )
    activation: str = choice("erf", RF_ACTIVATIONS, "activation sigma of the features")
    features: str = choice("gaussian", dict.fromkeys(FEATURE_MATRICES), "law of the projection F")
    loss: str = choice("logistic", kernels.LOSSES, "training loss")
    teacher: str = choice("sign", kernels.CHANNELS, "teacher channel")
    nodes: int = integer(64, Interval(4), "nodes of the Marchenko-Pastur spectrum's rule")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (teacher=linear, no closed form)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (labels +-1)")

    def __check_init__(self):
        if self.activation in RF_ACTIVATIONS and self.features in FEATURE_MATRICES:
            if all(map(is_concrete, (self.alpha, self.gamma))) and np.all(np.asarray(self.gamma) > 0):
                self.gcm  # runs the checks of the model's own parameters (the loss, lam = 0...)

    @property
    def gcm(self) -> GCM:
        """The equivalent :class:`GCM` (spectral form)."""
        return random_features(
            self.activation, self.gamma, self.alpha, features=self.features, nodes=self.nodes,
            rho=self.rho, lam=self.lam, noise=self.noise, delta=self.delta, temperature=self.temperature,
            loss=self.loss, teacher=self.teacher, order=self.order, panel_order=self.panel_order,
        )

