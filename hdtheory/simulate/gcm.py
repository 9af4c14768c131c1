r"""Finite-size simulations of random-features ERM and of kernel ridge regression on power-law data.

**Random features** (:class:`~hdtheory.RandomFeatures`). ``d`` input dimensions, ``p = round(gamma
d)`` features ``v = sigma(F x / sqrt(d))``, ``x ~ N(0, I_d)``, ``F`` with i.i.d. ``N(0, 1)`` entries
(``features="gaussian"``) or orthogonal rows of norm ``sqrt(d)`` (``gamma <= 1``; orthogonal
columns of norm ``sqrt(p)`` when ``gamma > 1``), drawn afresh for every seed; ``n = round(alpha d)``
samples labelled by ``theory.channel`` from the teacher field ``z = w*.x / sqrt(d)``,
``|w*|^2 = rho d``. The estimator minimises ``sum_i l(y_i, w.v_i / sqrt(p)) + (lam / 2) |w|^2`` with
ridge in closed form (NumPy), logistic by scikit-learn's ``LogisticRegression`` (L-BFGS,
``C = 1 / lam``, no intercept, on ``v / sqrt(p)``: its objective ``|w|^2 / 2 + C sum_i l`` is this
one divided by ``lam``), the other losses by the solvers of :mod:`hdtheory.simulate.erm`. Observables per seed, measured on
``max(n, 4000)`` fresh inputs: ``test_error``, the 0-1 error of ``sign(w.v / sqrt(p))`` against the
noiseless ``sign(z)`` (classification channels) or the mean squared error against ``z`` (linear
channel), as ``RandomFeatures.observables`` defines it; ``m`` and ``q``, the empirical
``E[z w.v] / sqrt(p)`` and ``E[(w.v)^2] / p`` on the same inputs; ``bias``, the mean field
``E[w.v] / sqrt(p)`` on them (the intercept that features with a mean give the student, ``w.E v /
sqrt(p)``, up to sampling); ``train_loss``; for the
classification channels the calibration of the confidence ``sigmoid(|w.v| / sqrt(p) / T)`` on the same
inputs (``confidence``, ``ece``, ``calibration_curve``, ``test_nll``, ``brier``:
:func:`hdtheory.simulate.erm.binned_calibration`).

**Deep random features** (:class:`~hdtheory.DeepRandomFeatures`). The weights ``W_l`` are those the
theory draws at dimension ``d`` from its ``seed`` (:meth:`~hdtheory.DeepRandomFeatures.weights`: i.i.d.
Gaussian, or rows with the covariances of ``weight_exponent``), the same for every simulation seed:
the theory is the deterministic equivalent given the weights. For ``d`` other than ``theory.d`` the weights, and the theory to compare with, are those of
``dataclasses.replace(theory, d=d)``. Per simulation seed: a teacher, ``n = round(alpha d)`` inputs,
the features ``h_L`` of the module docstring of :mod:`hdtheory.models.deep_rf`, the fit and the
observables as for random features (the fields ``w.h_L / sqrt(d_L)``). At infinite width
(:class:`~hdtheory.DeepRandomFeaturesLimit`, no seed) the weights of widths ``round(gamma_l d)``
(i.i.d. ``N(0, 1)``, or ``Z C^{1/2}`` with ``C`` the power law of ``weight_exponent`` in a Haar
basis) are drawn afresh for every simulation seed, with the teacher and the data.

**Kernel ridge regression** (:class:`~hdtheory.KRR` with a finite ``modes = P``). ``n`` samples of
``psi ~ N(0, diag(k^-capacity))``, ``k = 1..P``, a teacher with ``beta*_k^2 eta_k =
k^(-1 - 2 capacity source)`` and random signs, ``y = beta*.psi + sqrt(noise) xi``; the ridge estimator
``(Psi^T Psi + lam)^-1 Psi^T y`` (solved in its ``n x n`` dual form). ``test_error`` is the exact
excess error ``sum_k eta_k (beta_k - beta*_k)^2``; ``bias`` and ``variance`` are its parts from the
teacher and from the noise. With ``features = p`` finite, the ridge runs on the random features
``z = F^T psi / sqrt(p)`` (``F``: ``P x p`` i.i.d. standard Gaussians, drawn afresh for every seed) and
the errors are those of the equivalent weights ``beta = F a / sqrt(p)`` on ``psi``. The argument ``d``
is not used (the sizes are ``n``, ``modes`` and ``features``).

**The minimax linear rule over the ellipsoid** (:class:`~hdtheory.models.krr.LinearMinimax` with a
finite ``modes = P``). ``n`` samples of ``psi ~ N(0, diag(k^-capacity))``, ``k = 1..P``; the rule is the
one the theory prescribes, the ridge with the penalty ``noise / gamma_k`` on mode ``k`` and ``gamma``
the least favourable prior of the solved theory (:meth:`~hdtheory.models.krr.LinearMinimax.prior`),
``beta = Gamma Psi^T (Psi Gamma Psi^T + noise)^-1 y`` (its limit, the interpolant of least
``sum_k beta_k^2 / gamma_k``, without noise). Its errors are computed exactly in the teacher and the
noise given the inputs, so that only the inputs fluctuate between seeds: ``test_error``, ``bias`` and
``variance`` average the excess error ``sum_k eta_k (beta_k - beta*_k)^2`` over teachers drawn from
the least favourable prior ``beta*_k ~ N(0, gamma_k)``; ``mode_error`` (an array over the modes) is
the error for each single teacher on the ellipsoid's boundary, ``beta* = eta_k^(source - 1/2) e_k``,
which the theory predicts to be the same for every active mode and no larger beyond (the minimax
rule is an equaliser); ``shrinkage`` (an array) is the rule's ``(L Psi)_kk``, the fraction of mode
``k`` of the teacher that it recovers, the theory's ``x_k``. ``d`` is not used.
**Kernel ridge regression on power-law data** (:class:`~hdtheory.models.krr.KRRPowerLawData`, every
``degree`` and ``features``). ``n`` samples ``x = Sigma^(1/2) z``, ``z ~ N(0, I_d)``, ``Sigma =
diag(sigma)`` the theory's power law (``Tr Sigma = 1``); the kernel of degree ``D``, ``K = sum_(m <= D)
K_m`` with ``K_m(x, x') = sum_(|beta| = m) sigma^beta phi_beta(z) phi_beta(z')``, computed from power
sums over the coordinates (:func:`_hermite_kernel_degrees`; for ``D = 2``, with ``G = X X'^T`` and
``a_i = x_i^T Sigma x_i``, ``K = 1 + G + (G o G - a 1^T - 1 a'^T + Tr Sigma^2) / 2``), whose
eigenfunctions are the Hermite products of ``z`` and eigenvalues ``sigma^beta``; the target ``f =
theta_0 + theta_1.x + x^T S x - Tr(Sigma S) + f_3 + f_4`` (its terms up to ``target_degree``) with
``theta`` standard Gaussian, ``S = (W + W^T) / (2 sqrt 2)``, ``W`` a ``d x d`` standard Gaussian
matrix, and ``f_m`` (``m >= 3``) the Gaussian process with covariance ``K_m`` drawn on the ``n +
n_test`` inputs, so that each Hermite mode carries the power ``sigma^beta``; ``y = f + sqrt(noise)
xi``; the predictor ``K(x, X) (K + lam)^-1 y``. With ``features = p`` finite, the ridge on the ``p``
random features ``z = F psi' / sqrt(p)`` of the model's docstring (``F``: ``p x C(d + D, D)`` i.i.d.
standard Gaussians, drawn afresh for every seed): given the inputs, the ``p`` columns of ``sqrt(p) Z``,
``Z`` the ``(n + n_test) x p`` feature matrix, are independent ``N(0, K)`` over ``F``, so ``Z`` is drawn
as ``L E / sqrt(p)``, ``L L^T = K``, ``E`` standard Gaussian (the same law, without the ``C(d + D, D)``
modes), and the predictor is
``z(x).a = Z(x) Z^T (Z Z^T + lam)^-1 y``. Gaussian processes are drawn with a Cholesky factor of the
covariance plus ``1e-12`` of its mean variance. The errors are means over ``n_test`` fresh inputs of
the squared difference to ``f`` (``test_error``), of its parts from the target (``bias``) and from the
noise (``variance``), and ``bias_degree_m``, the error of the same estimator fitted to the degree-``m``
part of ``f`` alone (the bias is linear in the target's power per mode), and ``leading_degree_m``,
its error on the noiseless target ``He_m(z_1) / sqrt(m!)`` along the leading direction. Teacher,
inputs and noise are drawn afresh for every seed; ``d`` is ``theory.d``.
"""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from .._fixed_point import solve
from ..models.deep_rf import DeepRandomFeatures, DeepRandomFeaturesLimit, layer_activations, layer_widths
from ..models.deep_rf import power_law_spectrum
from ..models.gcm import RF_ACTIVATIONS, RandomFeatures
from ..models.krr import KRR, LinearMinimax, KRRPowerLawData
from . import SimulationResult, simulate
from .erm import _check_fit, _fit, binned_calibration


@simulate.register
def simulate_random_features(
    theory: RandomFeatures, *, d: int = 300, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.RandomFeatures`; see the module
    docstring."""
    _check_fit(theory, d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    p = max(round(float(theory.gamma) * d), 1)
    model = theory.gcm

    def sigma(x):
        return np.asarray(RF_ACTIVATIONS[theory.activation](jnp.asarray(x)))

    samples = []
    for seed_key in jax.random.split(key, seeds):
        label_key, numpy_seed = jax.random.split(seed_key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(numpy_seed)))
        F = _projection(rng, p, d, theory.features)
        samples.append(_features_erm(model, lambda X: sigma(X @ F.T / np.sqrt(d)), rng, label_key, d, n))
    return SimulationResult.from_samples(samples, d=d, n=n)


@simulate.register
def simulate_deep_random_features(
    theory: DeepRandomFeatures, *, d: int | None = None, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.DeepRandomFeatures` (``d``: by default
    ``theory.d``); see the module docstring."""
    d = theory.d if d is None else d
    _check_fit(theory, d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    weights = [np.asarray(W) for W in dataclasses.replace(theory, d=d).weights()]
    activations = layer_activations(theory.activation, len(weights))
    n = max(round(float(theory.alpha) * d), 1)
    model = theory.gcm
    features = functools.partial(_deep_features, weights, activations)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        label_key, numpy_seed = jax.random.split(seed_key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(numpy_seed)))
        samples.append(_features_erm(model, features, rng, label_key, d, n))
    return SimulationResult.from_samples(samples, d=d, n=n)


@simulate.register
def simulate_deep_random_features_limit(
    theory: DeepRandomFeaturesLimit, *, d: int = 300, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.DeepRandomFeaturesLimit`: the weights
    at widths ``round(gamma_l d)`` (rows ``N(0, C_l)``, ``C_l`` the power law of ``weight_exponent`` in a
    Haar basis), drawn afresh for every seed; see the module docstring."""
    model = theory.gcm
    _check_fit(model, d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    widths = layer_widths(tuple(np.asarray(theory.widths, float)), d)
    activations = layer_activations(theory.activation, len(widths) - 1)
    exponents = np.asarray(model.exponents, float)
    n = max(round(float(theory.alpha) * d), 1)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        label_key, numpy_seed = jax.random.split(seed_key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(numpy_seed)))
        weights = [_structured(rng, rng.standard_normal((widths[l + 1], widths[l])), exponents[l])
                   for l in range(len(widths) - 1)]
        features = functools.partial(_deep_features, weights, activations)
        samples.append(_features_erm(model, features, rng, label_key, d, n))
    return SimulationResult.from_samples(samples, d=d, n=n)


def _structured(rng, Z, exponent: float):
    """``Z C^{1/2}``: ``C`` the power law :func:`~hdtheory.models.deep_rf.power_law_spectrum` of
    ``exponent`` in a Haar basis (Q of a Gaussian matrix, signs of R's diagonal); ``Z`` itself at 0."""
    if exponent == 0:
        return Z
    Q, R = np.linalg.qr(rng.standard_normal((Z.shape[1], Z.shape[1])))
    Q = Q * np.sign(np.diag(R))
    return Z @ (Q * np.sqrt(np.asarray(power_law_spectrum(exponent, Z.shape[1])))) @ Q.T


def _deep_features(weights, activations, X):
    """The features ``h_L`` of inputs ``X`` (``n x d``) through the layers of ``weights``."""
    h = X
    for W, activation in zip(weights, activations):
        h = np.asarray(RF_ACTIVATIONS[activation](jnp.asarray(h @ W.T / np.sqrt(W.shape[1]))))
    return h


def _features_erm(model, features, rng, label_key, d: int, n: int) -> dict:
    """One seed of ERM on ``features(X)`` (``n x p``) of inputs ``X ~ N(0, I_d)``: the teacher on the
    sphere ``|w*|^2 = rho d``, the labels of ``model.channel``, the fit, and the observables on
    ``max(n, 4000)`` fresh inputs (the module docstring)."""
    w_star = rng.standard_normal(d)
    w_star *= np.sqrt(float(model.rho) * d) / np.linalg.norm(w_star)
    X = rng.standard_normal((n, d))
    y = np.asarray(model.channel.sample(label_key, jnp.asarray(X @ w_star / np.sqrt(d))))
    V = features(X)
    p = V.shape[1]
    w = _fit_features(model, V, y)
    X_test = rng.standard_normal((max(n, 4000), d))
    z, field = X_test @ w_star / np.sqrt(d), features(X_test) @ w / np.sqrt(p)
    if model.channel.classification:
        error = np.mean((field >= 0) != (z >= 0))
    else:
        error = np.mean((field - z) ** 2)
    train_loss = model.loss_fn(jnp.asarray(y), jnp.asarray(V @ w / np.sqrt(p)))
    sample = {"test_error": error, "m": np.mean(z * field), "q": np.mean(field**2), "bias": np.mean(field),
              "train_loss": float(jnp.mean(train_loss))}
    if model.channel.classification:
        sample |= binned_calibration(model, jnp.asarray(z), jnp.asarray(field))
    return sample


def _fit_features(model, V, y):
    """The ERM weights on features ``V`` (``n x p``), fields ``V w / sqrt(p)``."""
    p, lam = V.shape[1], float(model.lam)
    if model.loss == "square":
        import scipy.linalg

        hessian = V.T @ V / p + lam * np.eye(p)
        return scipy.linalg.solve(hessian, V.T @ y / np.sqrt(p), assume_a="pos")
    if model.loss == "logistic":
        from sklearn.linear_model import LogisticRegression  # optional dependency: hdtheory[simulate]

        fit = LogisticRegression(C=1 / lam, fit_intercept=False, tol=1e-10, max_iter=10_000)
        fit.fit(V / np.sqrt(p), y)  # classes_ = [-1, 1]: coef_ scores the label +1
        return fit.coef_[0]
    return np.asarray(_fit(model, jnp.asarray(V), jnp.asarray(y)))


def _projection(rng, p: int, d: int, features: str):
    F = rng.standard_normal((p, d))
    if features == "gaussian":
        return F
    # Orthonormal rows (p <= d) or columns (p > d), scaled to the Gaussian's mean row norm sqrt(d).
    Q, _ = np.linalg.qr(F.T if p <= d else F)
    return np.sqrt(d) * Q.T if p <= d else np.sqrt(p) * Q


@simulate.register
def simulate_krr(theory: KRR, *, d: int = 0, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.KRR` with ``modes`` set; see the
    module docstring."""
    del d
    if theory.modes is None:
        raise ValueError("simulating KRR needs a finite number of modes (KRR(modes=P))")
    key = jax.random.PRNGKey(0) if key is None else key
    n, P = round(float(theory.n)), theory.modes
    p = None if np.isinf(float(theory.features)) else max(round(float(theory.features)), 1)
    k = np.arange(1, P + 1)
    eta = k ** -float(theory.capacity)
    beta_abs = np.sqrt(k ** (-1.0 - 2 * float(theory.capacity) * float(theory.source)) / eta)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        s_key, x_key, e_key, f_key = jax.random.split(seed_key, 4)
        beta_star = beta_abs * jnp.where(jax.random.bernoulli(s_key, 0.5, (P,)), 1.0, -1.0)
        Psi = jax.random.normal(x_key, (n, P)) * jnp.sqrt(eta)
        noise = jnp.sqrt(theory.noise) * jax.random.normal(e_key, (n,))
        F = None if p is None else jax.random.normal(f_key, (P, p), Psi.dtype) / np.sqrt(p)
        samples.append(_krr_errors(Psi, F, beta_star, noise, theory.lam, eta))
    return SimulationResult.from_samples(samples, d=P, n=n)


@jax.jit
def _krr_errors(Psi, F, beta_star, noise, lam, eta):
    """Ridge on the features ``Z = Psi F`` (``F = None``: ``Psi``), in dual form; the errors of the
    weights ``F a`` on ``Psi``."""
    Z = Psi if F is None else Psi @ F
    gram = Z @ Z.T + lam * jnp.eye(Z.shape[0], dtype=Z.dtype)
    factor = jax.scipy.linalg.cho_factor(gram)

    def weights(y):
        a = Z.T @ jax.scipy.linalg.cho_solve(factor, y)
        return a if F is None else F @ a

    bias_part = weights(Psi @ beta_star) - beta_star
    noise_part = weights(noise)
    return {
        "test_error": jnp.sum(eta * (bias_part + noise_part) ** 2),
        "bias": jnp.sum(eta * bias_part**2),
        "variance": jnp.sum(eta * noise_part**2),
    }


@simulate.register
def simulate_linear_minimax(theory: LinearMinimax, *, d: int = 0, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.krr.LinearMinimax` with
    ``modes`` set; see the module docstring."""
    del d
    if theory.modes is None:
        raise ValueError("simulating LinearMinimax needs a finite number of modes (LinearMinimax(modes=P))")
    key = jax.random.PRNGKey(0) if key is None else key
    n, P = round(float(theory.n)), theory.modes
    k = np.arange(1.0, P + 1)
    eta = k ** -float(theory.capacity)
    solution = solve(theory)
    if not bool(solution.converged):
        raise ValueError(f"the theory did not converge at {theory} (residual {float(solution.residual):.3g})")
    gamma = theory.prior(solution.state, k)
    boundary = eta ** (2 * float(theory.source) - 1)  # beta* = sqrt(boundary_k) e_k: on the ellipsoid
    noise = theory.noise
    samples = [
        _linear_rule_errors(jax.random.normal(x_key, (n, P)) * jnp.sqrt(eta), gamma, noise, eta, noise, boundary)
        for x_key in jax.random.split(key, seeds)
    ]
    return SimulationResult.from_samples(samples, d=P, n=n)


@jax.jit
def _linear_rule_errors(Psi, gamma, penalty, eta, noise, boundary):
    """The excess errors of ``beta = L y``, ``L = Gamma Psi^T (Psi Gamma Psi^T + penalty)^-1`` (the
    ridge with the penalty ``penalty / gamma_k`` on mode ``k``), averaged exactly over the noise and
    over ``beta* ~ N(0, Gamma)``; ``mode_error``: for each ``k``, the error on the single teacher
    ``beta* = sqrt(boundary_k) e_k``."""
    gram = (Psi * gamma) @ Psi.T + penalty * jnp.eye(Psi.shape[0], dtype=Psi.dtype)
    L = gamma[:, None] * jax.scipy.linalg.solve(gram, Psi, assume_a="pos").T
    miss = L @ Psi - jnp.eye(Psi.shape[1], dtype=Psi.dtype)  # beta - beta* = miss beta* + L noise
    per_teacher_mode = jnp.sum(eta[:, None] * miss**2, axis=0)
    variance = noise * jnp.sum(eta[:, None] * L**2)
    bias = jnp.sum(per_teacher_mode * gamma)
    return {
        "test_error": bias + variance,
        "bias": bias,
        "variance": variance,
        "mode_error": boundary * per_teacher_mode + variance,
        "shrinkage": jnp.diagonal(miss) + 1,
    }


@simulate.register
def simulate_krr_power_law_data(
    theory: KRRPowerLawData, *, d: int = 0, seeds: int = 4, key=None, n_test: int = 2000
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.krr.KRRPowerLawData`; see the
    module docstring."""
    del d
    key = jax.random.PRNGKey(0) if key is None else key
    n, dim = round(float(theory.n)), theory.d
    features = float(theory.features)
    p = None if np.isinf(features) else round(features)
    if p is not None and p < 1:
        raise ValueError(f"simulating KRRPowerLawData draws round(features) >= 1 features, got features = {features}")
    sigma = jnp.exp(theory.log_sigma())
    draw = jax.jit(_power_law_data_errors, static_argnums=(4, 5, 6, 7, 8))
    samples = [
        draw(k, sigma, theory.lam, theory.noise, n, n_test, theory.degree, theory.target_degree, p)
        for k in jax.random.split(key, seeds)
    ]
    return SimulationResult.from_samples(samples, d=dim, n=n)


def _hermite(z, m):
    """``He_m(z) / sqrt(m!)``, the orthonormal probabilists' Hermite polynomial (three-term recurrence)."""
    previous, current = jnp.zeros_like(z), jnp.ones_like(z)
    for k in range(m):  # static, m <= 4
        previous, current = current, (z * current - np.sqrt(k) * previous) / np.sqrt(k + 1)
    return current


def _hermite_kernel_degrees(X, Y, sigma, degree):
    """The kernel of :class:`~hdtheory.models.krr.KRRPowerLawData` between the rows of ``X`` and ``Y``,
    by degree: ``K_m(x, y) = sum_{|beta| = m} sigma^beta phi_beta(z) phi_beta(z')``, ``m = 0..degree``.

    Per coordinate, ``sum_k t^k c_k(i)`` with ``c_k(i) = sigma_i^k h_k(z_i) h_k(z'_i)``, ``h_k = He_k /
    sqrt(k!)``, is the one-variable kernel; ``K_m`` is the ``t^m`` coefficient of the product over ``i``,
    ``exp(sum_i log(1 + sum_k t^k c_k(i)))``. The logarithm's coefficients are sums over ``i`` of
    products ``c_(k_1) ... c_(k_r)`` (a composition of ``k``, weight ``(-1)^(r+1) / r``), each one
    matrix product of the rows' products of ``sigma^(k/2) h_(k_j)``; the exponential's coefficients
    follow from ``m K_m = sum_k k L_k K_(m-k)``."""
    zx, zy = X / jnp.sqrt(sigma), Y / jnp.sqrt(sigma)
    hx = [_hermite(zx, k) for k in range(degree + 1)]
    hy = [_hermite(zy, k) for k in range(degree + 1)]
    logs = [None]
    for k in range(1, degree + 1):  # static: the compositions of k <= 4, at most 8
        total = 0.0
        for cut in itertools.product([False, True], repeat=k - 1):
            parts = np.diff(np.flatnonzero([True, *cut, True]))
            a = functools.reduce(jnp.multiply, [hx[j] for j in parts]) * sigma ** (k / 2)
            b = functools.reduce(jnp.multiply, [hy[j] for j in parts]) * sigma ** (k / 2)
            total = total + (-1.0) ** (len(parts) + 1) / len(parts) * (a @ b.T)
        logs.append(total)
    kernels = [jnp.ones((X.shape[0], Y.shape[0]), X.dtype)]
    for m in range(1, degree + 1):
        kernels.append(sum(k * logs[k] * kernels[m - k] for k in range(1, m + 1)) / m)
    return kernels


def _gaussian_process(key, covariance, draws):
    """``draws`` independent samples (columns) of ``N(0, covariance)``, by a Cholesky factor with a
    jitter of ``1e-12`` of the mean variance (the covariance may be singular)."""
    size = covariance.shape[0]
    jitter = 1e-12 * jnp.trace(covariance) / size
    factor = jnp.linalg.cholesky(covariance + jitter * jnp.eye(size, dtype=covariance.dtype))
    return factor @ jax.random.normal(key, (size, draws), covariance.dtype)


def _power_law_data_errors(key, sigma, lam, noise, n, n_test, degree, target_degree, features):
    """One seed: inputs, the target's parts by degree, KRR's (or the random features' ridge) fit to
    each, the errors."""
    x_key, t0_key, t1_key, t2_key, e_key = jax.random.split(key, 5)
    t3_key, f_key = jax.random.split(jax.random.fold_in(key, 5))
    dim = sigma.shape[0]
    X = jax.random.normal(x_key, (n + n_test, dim), sigma.dtype) * jnp.sqrt(sigma)
    # The kernel between all inputs and the training inputs; between all of them where a Gaussian
    # process is drawn on them (a target of degree >= 3, random features).
    everywhere = features is not None or target_degree >= 3
    by_degree = _hermite_kernel_degrees(X, X if everywhere else X[:n], sigma, degree)
    W = jax.random.normal(t2_key, (dim, dim), sigma.dtype)
    S = (W + W.T) / (2 * np.sqrt(2))
    parts = [
        jnp.broadcast_to(jax.random.normal(t0_key, (), sigma.dtype), (n + n_test,)),
        X @ jax.random.normal(t1_key, (dim,), sigma.dtype),
        jnp.einsum("ni,ij,nj->n", X, S, X) - jnp.sum(sigma * jnp.diag(S)),
    ]
    for m, part_key in zip(range(3, target_degree + 1), jax.random.split(t3_key, 2)):
        parts.append(_gaussian_process(part_key, by_degree[m], 1)[:, 0])  # the law with covariance K_m
    parts = jnp.stack(parts[: target_degree + 1])
    z1 = X[:, 0] / jnp.sqrt(sigma[0])  # the leading direction's He_m(z_1) / sqrt(m!)
    leading = jnp.stack([_hermite(z1, m) for m in range(degree + 1)])
    xi = jnp.sqrt(noise) * jax.random.normal(e_key, (n,), sigma.dtype)
    kernel = sum(by_degree)
    if features is not None:
        # The p features z = F psi' / sqrt(p) at the n + n_test inputs: given the inputs, their
        # columns are independent N(0, K / p) over F (module docstring).
        Z = _gaussian_process(f_key, kernel, features) / np.sqrt(features)
        kernel = Z @ Z.T
    gram = kernel[:n, :n] + lam * jnp.eye(n, dtype=sigma.dtype)
    factor = jax.scipy.linalg.cho_factor(gram)
    rhs = jnp.concatenate([parts[:, :n], leading[:, :n], xi[None]], axis=0).T
    fits = (kernel[n:, :n] @ jax.scipy.linalg.cho_solve(factor, rhs)).T
    residual = fits[: target_degree + 1] - parts[:, n:]  # the fit to each degree's part, minus that part
    leading_residual = fits[target_degree + 1 : -1] - leading[:, n:]
    bias_part, noise_part = jnp.sum(residual, axis=0), fits[-1]
    out = {
        "test_error": jnp.mean((bias_part + noise_part) ** 2),
        "bias": jnp.mean(bias_part**2),
        "variance": jnp.mean(noise_part**2),
    }
    out |= {f"bias_degree_{m}": jnp.mean(residual[m] ** 2) for m in range(target_degree + 1)}
    return out | {f"leading_degree_{m}": jnp.mean(leading_residual[m] ** 2) for m in range(degree + 1)}
