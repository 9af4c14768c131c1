"""The Gaussian-mixture classification model: reductions, a closed form, simulation, gradients, input."""

import re
import subprocess
import tempfile
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory
from hdtheory import Mixture, ParameterError
from hdtheory.simulate import simulate


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(K=1), "K"),
        (dict(K=3, weights=(0.5, 0.3, 0.3)), "weights"),
        (dict(K=2, weights=(0.5, 0.3, 0.2)), "weights"),
        (dict(K=3, loss="logistic"), "loss"),
        (dict(K=2, gram=[[1.0, 2.0], [2.0, 1.0]]), "gram"),
        (dict(K=3, gram=[1.0, 0.0, 0.0, 1.0]), "gram"),
        (dict(K=3, loss="hinge"), "loss"),
        (dict(lam=0.0), "lam"),
        (dict(K=3, spectrum=[[1.0, 2.0], [1.0, 2.0]]), "spectrum"),
        (dict(K=2, spectrum=[1.0, -1.0]), "spectrum"),
        (dict(K=2, labels="teacher"), "loss"),  # teacher labels need a one-output loss
        (dict(K=2, covariance=[[1.0, 2.0], [2.0, 1.0]]), "covariance"),  # not positive definite
        (dict(K=2, covariance=[[1.0, 0.5], [0.0, 1.0]]), "covariance"),  # not symmetric
        (dict(K=3, covariance=np.ones((2, 1, 1))), "covariance"),  # two matrices for three clusters
        (dict(K=2, covariance=2.0), "covariance"),
        (dict(K=2, covariance=np.eye(2), spectrum=[1.0, 2.0]), "spectrum"),
        (dict(K=2, means=[[1.0, 0.0]]), "means"),
        (dict(K=2, means=np.eye(2), covariance=np.eye(3)), "means"),
        (dict(K=2, means=np.eye(2), gram=np.eye(2)), "means"),
    ],
)
def test_bad_input_raises_parameter_error(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Mixture(**kwargs)


@pytest.mark.parametrize("intercept", [pytest.param(0, marks=pytest.mark.extended), 1])
def test_two_class_cross_entropy_is_logistic_with_half_the_penalty(intercept):
    # For K = 2 the softmax minimiser is W = (w / 2, -w / 2), w the binary logistic minimiser with
    # penalty lam / 2 (labels +1 for cluster 1, -1 for cluster 2), for balanced or unbalanced
    # clusters: the same test error and training loss, m_binary = 2 m_1c, q_binary = 4 q_11, and
    # with an intercept b = (beta / 2, -beta / 2). Two different proximal operators (the
    # K-dimensional Newton solve and the scalar logistic one).
    common = dict(K=2, alpha=1.5, snr=1.5, weights=(0.7, 0.3), intercept=intercept)
    softmax = hdtheory.solve(Mixture(loss="cross-entropy", lam=0.05, **common))
    binary = hdtheory.solve(Mixture(loss="logistic", lam=0.025, **common))
    assert bool(softmax.converged) and bool(binary.converged)
    a, b = softmax.observables, binary.observables
    for key in ("test_error", "train_loss"):
        assert abs(float(a[key]) - float(b[key])) < 1e-9, key
    for c in (1, 2):
        assert abs(2 * float(a[f"m_1_{c}"]) - float(b[f"m_1_{c}"])) < 1e-8
    assert abs(4 * float(a["q_1_1"]) - float(b["q_1_1"])) < 1e-8
    assert abs(float(a["m_2_1"]) + float(a["m_1_1"])) < 1e-10  # w_2 = -w_1
    if intercept:
        assert abs(2 * float(a["b_1"]) - float(b["b_1"])) < 1e-8
        assert float(b["b_1"]) > 0.1  # towards the larger cluster (label +1)


def _square_closed_form(alpha, lam, rho, G, steps=4000):
    """The square-loss equations with every Gaussian expectation done by hand (the prox is linear):
    ``f_c = (I + V)^{-1} (e_c - omega)``, ``(I + H V)^{-1} H = (I + V)^{-1}``."""
    K = len(rho)
    M, Q, V = np.zeros((K, K)), np.eye(K), np.eye(K)
    for _ in range(steps):
        R = np.linalg.inv(np.eye(K) + V)
        resid = np.eye(K) - M  # column c: e_c - M_c
        Mhat = alpha * rho * (R @ resid)
        Qhat = alpha * R @ (resid @ np.diag(rho) @ resid.T + Q) @ R
        Vhat = alpha * R
        V_new = np.linalg.inv(lam * np.eye(K) + Vhat)
        M_new, Q_new = V_new @ Mhat @ G, V_new @ (Qhat + Mhat @ G @ Mhat.T) @ V_new
        M, Q, V = 0.5 * (M + M_new), 0.5 * (Q + Q_new), 0.5 * (V + V_new)
    return M, Q, V


@pytest.mark.parametrize("K", [3, pytest.param(4, marks=pytest.mark.extended)])
def test_square_loss_against_its_closed_form(K):
    # The model's two-node product Gauss-Hermite rule over K fields is exact for the square loss's
    # polynomial integrands: the fixed point to solver precision.
    tol = 1e-9
    rho = np.array([0.5, 0.3, 0.2, 0.1][:K])
    rho = rho / rho.sum()
    gram = np.eye(K) + 0.3 * (np.eye(K, k=1) + np.eye(K, k=-1))
    theory = Mixture(K=K, loss="square", alpha=2.5, lam=0.3, snr=1.5, weights=rho, gram=gram)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    M, Q, V = _square_closed_form(2.5, 0.3, rho, 1.5 * gram)
    np.testing.assert_allclose(np.asarray(solution.state.M), M, atol=tol)
    np.testing.assert_allclose(np.asarray(solution.state.Q[0]), Q, atol=tol)
    np.testing.assert_allclose(np.asarray(solution.state.V[0]), V, atol=tol)


# The default run checks the square loss against its closed form, and simulates the cross-entropy
# and an intercept with the covariances below.
@pytest.mark.extended
@pytest.mark.parametrize("K, loss, intercept", [(3, "cross-entropy", 1), (3, "square", 1), (4, "square", 0)])
def test_clusters_against_simulation(K, loss, intercept):
    # d = 400, n = 800, 4 seeds, unbalanced clusters: the test error, training loss, overlaps and
    # intercepts agree within 4 standard errors plus an allowance of 0.01 (relative) for the
    # O(1/d) finite-size bias (the deviations seen are within 2.5 standard errors). Each case is a
    # compiled solve and simulation: the cross-entropy without intercept is checked against the
    # logistic loss above and with the covariances below.
    weights = (0.5, 0.3, 0.2) if K == 3 else (0.4, 0.3, 0.2, 0.1)
    # K = 4's identity Gram written out: its solve is then the program compiled for the closed form.
    gram = np.eye(K) if K == 4 else ()
    theory = Mixture(K=K, loss=loss, intercept=intercept, alpha=2.0, lam=0.1, snr=2.0, weights=weights, gram=gram)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=400, seeds=4)
    keys = ["test_error", "train_loss", "m_1_1", "m_2_2", "m_1_2", "q_1_1", "q_1_2", "norm"]
    for key in keys + ([f"b_{k + 1}" for k in range(K)] if intercept else []):
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.01 * (1 + abs(predicted)), (key, predicted, mean, sem)


# The default run checks the spectra against simulations (test_covariance_spectra_against_simulation).
@pytest.mark.extended
def test_equal_eigenvalues_rescale_the_isotropic_mixture():
    # A covariance s I: x / sqrt(s) is the isotropic mixture with snr / s, and W sqrt(s) minimises
    # it with penalty lam / s: the same test error and training loss. Per-cluster rows that are all
    # equal give the common spectrum (the two ways the equations aggregate the clusters).
    common = dict(K=2, loss="logistic", alpha=1.5, weights=(0.7, 0.3), intercept=1)
    isotropic = hdtheory.solve(Mixture(snr=2.0 / 2.5, lam=0.1 / 2.5, **common)).observables
    blocks = hdtheory.solve(Mixture(snr=2.0, lam=0.1, spectrum=[2.5, 2.5], **common)).observables
    rows = hdtheory.solve(Mixture(snr=2.0, lam=0.1, spectrum=[[0.5, 2.0]] * 2, **common)).observables
    shared = hdtheory.solve(Mixture(snr=2.0, lam=0.1, spectrum=[0.5, 2.0], **common)).observables
    for key in ("test_error", "train_loss", "b_1"):
        assert abs(float(isotropic[key]) - float(blocks[key])) < 1e-9, key
        assert abs(float(rows[key]) - float(shared[key])) < 1e-9, key
    assert abs(float(isotropic["q_1_1"]) / 2.5 - float(blocks["q_1_1"])) < 1e-8


# The default run checks the covariance matrices and mean profiles against simulations
# (test_covariance_spectra_against_simulation).
@pytest.mark.extended
def test_covariance_matrices_reduce_to_spectra():
    # The equations with covariance matrices (over a slice's p coordinates, P p x P p systems) against
    # those of spectra (block by block, P x P): a common covariance U diag(s) U^T and per-cluster
    # ones sharing U equal the spectrum s and the per-cluster spectra, for means spread evenly
    # (whose Gram G I per coordinate is rotation invariant); mean profiles m on identity
    # covariances equal the Gram matrix snr m m^T / p. To rounding: the same fixed point.
    U, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    s = np.array([[0.5, 2.0, 1.0], [3.0, 0.25, 1.0]])
    m = np.array([[1.0, -0.5, 0.3], [0.2, 1.0, -0.7]])
    common = dict(K=2, loss="logistic", alpha=1.5, lam=0.1, snr=2.0, weights=(0.7, 0.3), intercept=1)
    pairs = [
        (dict(spectrum=s[0]), dict(covariance=U * s[0] @ U.T)),
        (dict(spectrum=s), dict(covariance=np.stack([U * row @ U.T for row in s]))),
        (dict(gram=m @ m.T / 3), dict(means=m)),
    ]
    for blocks, matrices in pairs:
        a = hdtheory.solve(Mixture(**common, **blocks))
        b = hdtheory.solve(Mixture(**common, **matrices))
        assert bool(a.converged) and bool(b.converged)
        for key in ("test_error", "train_loss", "m_1_1", "q_1_1", "V_1_1", "b_1"):
            assert abs(float(a.observables[key]) - float(b.observables[key])) < 1e-9, (matrices, key)


@pytest.mark.parametrize(
    "kwargs",
    [
        # per-cluster covariances on two blocks of coordinates, unbalanced clusters (the default run
        # simulates per-cluster spectra with random labels, the cross-entropy with matrices)
        pytest.param(dict(K=3, loss="cross-entropy", alpha=2.0, lam=0.1, snr=2.0, weights=(0.5, 0.3, 0.2),
                          spectrum=[[0.5, 2.0], [1.0, 1.0], [2.0, 0.25]]), marks=pytest.mark.extended),
        # a common spectrum of three values, an intercept
        dict(K=2, loss="logistic", alpha=1.5, lam=0.05, snr=1.5, weights=(0.7, 0.3), intercept=1,
             spectrum=[0.3, 1.0, 3.0]),
        # random labels on inhomogeneous clouds
        dict(K=2, loss="logistic", labels="random", alpha=1.0, lam=0.05, spectrum=[[0.3, 3.0], [2.0, 0.5]]),
        # per-cluster covariance matrices that do not commute (no common eigenbasis)
        dict(K=3, loss="cross-entropy", alpha=2.0, lam=0.1, snr=2.0, weights=(0.5, 0.3, 0.2),
             covariance=[[[0.6, 0.15, 0.14], [0.15, 1.21, 0.46], [0.14, 0.46, 0.55]],
                         [[0.43, -0.16, 0.01], [-0.16, 0.57, -0.1], [0.01, -0.1, 0.45]],
                         [[0.53, -0.04, 0.87], [-0.04, 1.22, -0.62], [0.87, -0.62, 3.95]]]),
        # mean profiles concentrated on part of a common covariance matrix, an intercept (the default
        # run simulates mean profiles on a covariance matrix with teacher labels: test_mixture_teacher.py)
        pytest.param(dict(K=2, loss="logistic", alpha=1.5, lam=0.05, weights=(0.7, 0.3), intercept=1,
                          covariance=[[0.6, 0.15, 0.14], [0.15, 1.21, 0.46], [0.14, 0.46, 0.55]],
                          means=[[1.0, 0.0, 0.5], [-0.5, 1.0, 0.0]]), marks=pytest.mark.extended),
    ],
)
def test_covariance_spectra_against_simulation(kwargs):
    # d = 600 (blocks of 200 or 300 coordinates), 4 seeds: within 4 standard errors plus 2%
    # (relative) for the finite-size bias (deviations of 2% were seen at d = 600, within 1.6
    # standard errors at d = 1500; for the non-commuting matrices a test error 0.004 above the
    # theory at d = 600, 0.6 standard errors below it at d = 1800).
    theory = Mixture(**kwargs)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=600, seeds=4)
    keys = ["test_error", "train_loss", "m_1_1", "q_1_1", "norm"] + (["b_1"] if theory.intercept else [])
    for key in keys:
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.02 * (1 + abs(predicted)), (key, predicted, mean, sem)


# The default run checks random labels against a simulation (test_covariance_spectra_against_simulation).
@pytest.mark.extended
def test_random_labels_on_homogeneous_clouds_are_gaussian():
    # Gerace et al. 2022 ("Gaussian universality of perceptrons with random labels"), Theorem 1: on
    # a mixture of clouds with one covariance, ERM on random labels has the training loss of a
    # single Gaussian with that covariance (the means do not matter): here `erm` with
    # teacher="random", a different model and proximal code path. On inhomogeneous clouds it is not
    # the Gaussian with the average covariance at lam = 0.1 (the matched Gaussian is the mixture
    # with the rho-weighted spectrum: the means' rank-K part does not count as d -> infinity): a
    # narrow and a wide cloud. (Clouds whose spectra are permutations of each other, such as
    # [[0.2, 3], [3, 0.2]] when balanced, are universal again: both clusters' scores have one law.)
    # The matched spectrum is written as equal per-cluster rows (which are the common spectrum:
    # test_equal_eigenvalues_rescale_the_isotropic_mixture), so both settings share one compiled solve.
    for alpha in (0.8, 3.0):
        mixture = hdtheory.solve(Mixture(K=3, loss="logistic", labels="random", alpha=alpha, lam=0.1, snr=3.0))
        gaussian = hdtheory.solve(hdtheory.ERM(alpha=alpha, lam=0.1, loss="logistic", teacher="random"))
        assert bool(mixture.converged) and bool(gaussian.converged)
        assert abs(float(mixture.observables["train_loss"]) - float(gaussian.observables["train_loss"])) < 1e-8
        assert abs(float(mixture.observables["q_1_1"]) - float(gaussian.observables["q"])) < 1e-7
    common = dict(K=2, loss="logistic", labels="random", alpha=1.5, lam=0.1)
    inhomogeneous = hdtheory.solve(Mixture(spectrum=[[0.5], [3.0]], **common))
    matched = hdtheory.solve(Mixture(spectrum=[[1.75], [1.75]], **common))
    gap = float(inhomogeneous.observables["train_loss"]) - float(matched.observables["train_loss"])
    assert abs(gap) > 0.01, gap


def test_gradient_in_lam_matches_finite_differences():
    def error(lam):
        theory = Mixture(K=2, loss="cross-entropy", alpha=1.5, snr=1.5, lam=lam, weights=(0.7, 0.3))
        return hdtheory.solve(theory).observables["test_error"]

    lam, h = 0.2, 1e-5
    # One compiled program for the value and the gradient; the differences reuse it.
    both = jax.jit(jax.value_and_grad(error))
    grad = float(both(lam)[1])
    fd = (float(both(lam + h)[0]) - float(both(lam - h)[0])) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd))


def test_command_line():
    # The registry gives the command line its model and its scalar parameters by name, and bad
    # input as one line on stderr with exit status 2, before any compile.
    from hdtheory.cli import UsageError, build_theory

    theory = build_theory("mixture", ["K=4", "alpha=2", "lam=0.1", "intercept=1", "loss=square"])
    assert isinstance(theory, Mixture) and theory.K == 4 and theory.intercept == 1
    np.testing.assert_allclose(np.asarray(theory._rho()), np.full(4, 0.25))
    with pytest.raises(ParameterError, match="intercept"):
        build_theory("mixture", ["intercept=2"])
    # The class weights and the means' Gram matrix are array parameters: comma-separated numbers.
    theory = build_theory("mixture", ["K=3", "weights=0.2,0.3,0.5", "gram=1,0.2,0,0.2,1,0,0,0,1"])
    np.testing.assert_allclose(np.asarray(theory._rho()), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(np.asarray(theory.gram), [1, 0.2, 0, 0.2, 1, 0, 0, 0, 1])
    with pytest.raises(ParameterError, match="weights"):
        build_theory("mixture", ["K=3", "weights=0.2,0.3"])
    # Matrices as nested lists.
    theory = build_theory("mixture", ["K=2", "covariance=[[1, 0.5], [0.5, 2]]", "means=[[1,0],[0,1]]"])
    np.testing.assert_allclose(np.asarray(theory.covariance), [[1, 0.5], [0.5, 2]])
    np.testing.assert_allclose(np.asarray(theory._G()), np.eye(2) / 2)
    with pytest.raises(UsageError, match="covariance"):
        build_theory("mixture", ["K=2", "covariance=[[1, 0.5], [0.5]]"])
    # Run outside the checkout, so that the installed package (with hdtheory.kernels) is imported.
    result = subprocess.run([sys.executable, "-m", "hdtheory.cli", "eval", "mixture", "K=3", "loss=logistic"],
                            capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir())
    assert result.returncode == 2, result.stderr
    assert "loss" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sweep_config_takes_the_array_parameters(tmp_path):
    # A TOML list fixes an array parameter; the Dataset's attributes keep it (an empty array, the
    # default, as an empty one), and they round-trip through netCDF.
    import xarray as xr

    from hdtheory import _config, _sweep

    path = tmp_path / "mixture.toml"
    path.write_text('model = "mixture"\n[parameters]\nK = 3\nweights = [0.2, 0.3, 0.5]\n[axes]\nalpha = [1.0, 2.0]\n')
    theory = _config.load(path).theory
    np.testing.assert_allclose(np.asarray(theory._rho()), [0.2, 0.3, 0.5])
    attrs = {k: _sweep._attribute(getattr(theory, k)) for k in ("weights", "gram", "lam", "loss")}
    xr.Dataset(attrs=attrs).to_netcdf(tmp_path / "attrs.nc")
    back = xr.open_dataset(tmp_path / "attrs.nc").attrs
    np.testing.assert_allclose(back["weights"], [0.2, 0.3, 0.5])
    assert np.size(back["gram"]) == 0 and back["lam"] == 0.1 and back["loss"] == "cross-entropy"
    path.write_text('model = "mixture"\n[parameters]\nweights = 0.5\n[axes]\nalpha = [1.0, 2.0]\n')
    with pytest.raises(_config.ConfigError, match="weights"):
        _config.load(path)
    # A matrix parameter: nested lists, rows of one length; stored flat with its shape.
    path.write_text('model = "mixture"\n[parameters]\nK = 2\nspectrum = [[0.5, 2.0], [1.0, 1.0]]\n'
                    '[axes]\nalpha = [1.0, 2.0]\n')
    theory = _config.load(path).theory
    np.testing.assert_allclose(np.asarray(theory.spectrum), [[0.5, 2.0], [1.0, 1.0]])
    assert theory._clouds == 2
    path.write_text('model = "mixture"\n[parameters]\nK = 2\nspectrum = [[0.5, 2.0], [1.0]]\n'
                    '[axes]\nalpha = [1.0, 2.0]\n')
    with pytest.raises(_config.ConfigError, match="spectrum"):
        _config.load(path)
    # Per-cluster covariance matrices: three levels of nesting.
    path.write_text('model = "mixture"\n[parameters]\nK = 2\ncovariance = [[[1.0, 0.5], [0.5, 1.0]], '
                    '[[2.0, 0.0], [0.0, 1.0]]]\n[axes]\nalpha = [1.0, 2.0]\n')
    theory = _config.load(path).theory
    assert np.shape(theory.covariance) == (2, 2, 2) and theory._clouds == 2
    path.write_text('model = "mixture"\n[parameters]\nK = 2\ncovariance = [[[1.0, 0.5], [0.5]], '
                    '[[2.0, 0.0], [0.0, 1.0]]]\n[axes]\nalpha = [1.0, 2.0]\n')
    with pytest.raises(_config.ConfigError, match="covariance"):
        _config.load(path)


# The Bayes-optimal error (a reference observable computed from the parameters alone).


def test_bayes_error_two_symmetric_balanced_clusters_is_the_hebbian_error():
    # K = 2, balanced, mu_2 = -mu_1 (a singular Gram matrix): Phi(-snr / sqrt(snr + 1/alpha)), the
    # error of the Hebbian classifier sum_i y_i x_i (one orthant dimension: no quadrature error).
    from scipy.stats import norm

    alpha, snr = np.meshgrid([0.3, 1.0, 4.0, 50.0], [0.5, 1.5, 4.0])
    error = jax.jit(jax.vmap(lambda a, s: Mixture(K=2, alpha=a, snr=s, gram=[[1.0, -1.0], [-1.0, 1.0]]).bayes_error()))
    got = np.asarray(error(jnp.asarray(alpha.ravel()), jnp.asarray(snr.ravel())))
    np.testing.assert_allclose(got, norm.cdf(-snr / np.sqrt(snr + 1 / alpha)).ravel(), rtol=0, atol=1e-8)


def _bayes_classifier_error(alpha, rho, G, d, rng, fresh=100_000):
    """The population error of the Bayes-optimal classifier on one finite instance: means with rows
    ``(mu_1i..mu_Ki) ~ N(0, G)`` (the classifier's prior), ``n = alpha d`` labelled points, the
    posterior ``N(mhat_i, Sigma)`` of each coordinate, ``Sigma = G (I + D_n G)^{-1}``
    (``D_n = diag(n_c / d)``) and ``mhat_i = Sigma y_i`` (``y_ci`` the class sums over ``sqrt(d)``),
    and the exact log predictive density of a fresh point,
    ``-|x - mhat_c / sqrt(d)|^2 / (2 v_c) - (d / 2) log v_c + log rho_c``, ``v_c = 1 + Sigma_cc / d``.
    A fresh point ``mu_y / sqrt(d) + z`` of cluster ``y`` enters only through ``z``'s coordinates
    in the span of ``mu_y`` and the ``mhat_c`` (standard normal) and the squared norm of the rest
    (chi-squared): drawn exactly, ``fresh`` per cluster."""
    K = len(rho)
    evals, evecs = np.linalg.eigh(G)
    mu = rng.normal(size=(d, K)) @ (evecs * np.sqrt(np.maximum(evals, 0))).T
    labels = rng.choice(K, size=round(alpha * d), p=rho)
    onehot = np.eye(K)[labels]
    X = mu[:, labels].T / np.sqrt(d) + rng.normal(size=(len(labels), d))
    Sigma = G @ np.linalg.inv(np.eye(K) + np.diag(onehot.sum(0) / d) @ G)
    mhat = (X.T @ onehot / np.sqrt(d)) @ Sigma.T  # (d, K)
    v = 1 + np.diag(Sigma) / d
    error = 0.0
    for y in range(K):
        basis, _ = np.linalg.qr(np.column_stack([mu[:, y], mhat]))
        shift = basis.T @ mu[:, y] / np.sqrt(d)
        u = shift + rng.normal(size=(fresh, basis.shape[1]))  # x's coordinates in the span
        x_m = u @ (basis.T @ mhat) / np.sqrt(d)  # x.mhat_c / sqrt(d)
        x_x = np.sum(u**2, axis=1) + rng.chisquare(d - basis.shape[1], size=fresh)
        log_p = -(x_x[:, None] - 2 * x_m + np.sum(mhat**2, axis=0) / d) / (2 * v) - d / 2 * np.log(v)
        error += rho[y] * np.mean(np.argmax(log_p + np.log(rho), axis=1) != y)
    return error


@pytest.mark.parametrize(
    "alpha, snr, weights, gram",
    [pytest.param(1.0, 2.0, (0.5, 0.3, 0.2), np.eye(3), marks=pytest.mark.extended),
     (0.5, 1.0, (0.7, 0.3), np.array([[1.0, -0.6], [-0.6, 3.0]]))],
)
def test_bayes_error_against_the_simulated_bayes_classifier(alpha, snr, weights, gram):
    # d = 4000, 8 seeds, 1e5 fresh points per cluster and seed (Monte Carlo error ~1.5e-3 per seed;
    # the seed-to-seed spread, ~3e-3, is that of the drawn means and data). Within 4 standard errors
    # of the mean over seeds plus 0.002 for the O(1/d) finite-size bias. Leaving the posterior
    # variance in the scores (a term -Sigma_cc / 2, which the exact predictive density cancels)
    # raises the second case's error by 0.015, three times the tolerance.
    theory = Mixture(K=len(weights), alpha=alpha, snr=snr, weights=weights, gram=gram)
    predicted = float(jax.jit(lambda: theory.bayes_error())())  # one program, not one per operation
    errors = [_bayes_classifier_error(alpha, np.asarray(weights), snr * gram, 4000, np.random.default_rng(seed))
              for seed in range(8)]
    mean, sem = np.mean(errors), np.std(errors, ddof=1) / np.sqrt(len(errors))
    assert abs(predicted - mean) < 4 * sem + 0.002, (predicted, mean, sem)


@pytest.mark.parametrize(
    "common, points",
    [
        pytest.param(dict(K=3, loss="cross-entropy", snr=2.0, weights=(0.5, 0.3, 0.2)),
                     [(0.5, 0.05), (2.0, 0.1), (4.0, 1.0)], marks=pytest.mark.extended),
        # The identity Gram written out: the solve is the program compiled for the closed form above.
        (dict(K=3, loss="square", snr=2.0, weights=(0.5, 0.3, 0.2), gram=np.eye(3)),
         [(0.5, 0.01), (2.0, 0.1), (4.0, 1.0)]),
        # Balanced, mu_2 = -mu_1: as lam -> infinity the logistic minimiser turns to the Hebbian
        # direction, whose error is the Bayes error.
        (dict(K=2, loss="logistic", snr=1.5, gram=[[1.0, -1.0], [-1.0, 1.0]]), [(0.5, 0.01), (2.0, 0.1), (2.0, 1e3)]),
    ],
)
def test_bayes_error_is_below_the_erm_error(common, points):
    # One compiled solve per case, called at each point.
    solutions = [hdtheory.solve(Mixture(alpha=alpha, lam=lam, **common)) for alpha, lam in points]
    assert all(bool(solution.converged) for solution in solutions)
    erm, bayes = (np.array([float(s.observables[key]) for s in solutions]) for key in ("test_error", "bayes_error"))
    assert np.all(bayes < erm), (bayes, erm)
    if common["loss"] == "logistic":
        assert erm[-1] - bayes[-1] < 1e-6, (bayes, erm)


def test_bayes_error_tends_to_the_known_means_error():
    # The classifier that knows the means scores N(G e_y - diag(G) / 2 + log rho, G) on cluster y
    # (scipy's bivariate normal cdf for its orthant probabilities); the Bayes error exceeds its error
    # by c / alpha + O(1 / alpha^2) (Q_B = G - Sigma, Sigma ~ (alpha D)^{-1}).
    from scipy.stats import multivariate_normal

    rho, gram, snr = np.array([0.5, 0.3, 0.2]), np.array([[1.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 1.5]]), 2.0
    G = snr * gram
    known = 1.0
    for y in range(3):
        D = np.delete(np.eye(3)[y] - np.eye(3), y, axis=0)
        mean = D @ (G[:, y] - np.diag(G) / 2 + np.log(rho))
        known -= rho[y] * multivariate_normal(np.zeros(2), D @ G @ D.T).cdf(mean)
    alpha = np.array([1e2, 1e3, 1e4])
    error = jax.jit(jax.vmap(lambda a: Mixture(K=3, alpha=a, snr=snr, weights=rho, gram=gram).bayes_error()))
    excess = alpha * (np.asarray(error(jnp.asarray(alpha))) - known)
    assert np.all(excess > 0.05), excess
    assert abs(excess[2] - excess[1]) < 0.01 * excess[2], excess  # the 1 / alpha rate


def test_bayes_error_gradient_in_alpha_matches_finite_differences():
    # Through the solve (the observable's direct dependence on alpha), K = 2 with the logistic loss;
    # and the K = 3 orthant rule directly. Central differences with h = 1e-5.
    common = dict(K=2, loss="logistic", snr=1.5, lam=0.1, weights=(0.7, 0.3), gram=[[1.0, -0.6], [-0.6, 3.0]])
    # Each derivative one compiled program, not one per operation.
    grad = float(jax.jit(jax.grad(lambda a: hdtheory.solve(Mixture(alpha=a, **common)).observables["bayes_error"]))(1.5))
    three = dict(K=3, snr=2.0, weights=(0.5, 0.3, 0.2), gram=[[1.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 1.5]])
    # The K = 3 value and gradient one program, whose values give the differences.
    error = jax.jit(jax.value_and_grad(lambda a: Mixture(alpha=a, **three).bayes_error()))
    grad_three = float(error(0.8)[1])
    h = 1e-5
    two = jax.jit(lambda a: Mixture(alpha=a, **common).bayes_error())
    for g, f, a in ((grad, lambda a: two(a), 1.5), (grad_three, lambda a: error(a)[0], 0.8)):
        fd = (float(f(a + h)) - float(f(a - h))) / (2 * h)
        assert abs(g - fd) < 1e-7 * (1 + abs(fd)), (g, fd)
        assert abs(fd) > 1e-3


def test_vmapped_solve_calls_lapack_per_point_only():
    # The prox's K x K systems are solved by unrolled elimination, not by LAPACK. LAPACK calls
    # batched over the grid points and the quadrature nodes (3 x 576 matrices per point) split
    # their batch over XLA's CPU thread pool and can deadlock it: a vmapped solve over 50 values of
    # lam at alpha = 0.5 hung forever on a 2-core machine (the kernels' module docstring).
    points = 3
    solve = jax.jit(jax.vmap(lambda a, lam: hdtheory.solve(Mixture(K=3, alpha=a, lam=lam))))
    text = solve.lower(jnp.full(points, 0.5), jnp.logspace(-2.0, 1.0, points)).as_text()
    shapes = re.findall(r"custom_call @lapack_\w+\(.*?\).*?: \(tensor<((?:\d+x)+)f64>", text)
    assert shapes
    batches = [int(np.prod([int(d) for d in shape.split("x")[:-1]][:-2])) for shape in shapes]
    assert max(batches) <= points * 3, batches
