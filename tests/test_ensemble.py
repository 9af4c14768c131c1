"""Ensembles of random-features learners on one data set (Loureiro et al. 2022, "Fluctuations, bias,
variance & ensemble of learners"; d'Ascoli et al. 2020, "Double trouble in double descent"): the
matrix form at identical features and at finite d against the limit, the limits of many linear
features and of one learner, the published shape of the bias and variances around the
interpolation threshold, simulations (ridge and logistic), gradients, input and the command line."""

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.cli import main
from hdtheory.models.ensemble import feature_covariances, feature_matrices, random_feature_ensemble
from hdtheory.simulate import simulate


@eqx.filter_jit
def _solve(theory):
    solution = hd.solve(theory)
    return solution.observables, solution.converged


def test_identical_features_give_one_learner():
    # Two learners with the same features, Omega_ab = Omega_aa and t_b = t_a, are one estimator:
    # q_ab = q, and each is the GCM of (Omega_aa, t_a) solved on its own.
    d, p = 60, 90
    F_a, _ = feature_matrices(jax.random.PRNGKey(2), p, d)
    Omega, *_ = feature_covariances(F_a, F_a, "erf")
    w_star = np.random.default_rng(1).standard_normal(d)
    Phi = 0.7 * np.asarray(F_a).T / math.sqrt(d)  # E[x v^T] of some linear part of the features
    t = Phi.T @ w_star / math.sqrt(d)
    kwargs = dict(alpha=1.5, lam=0.05, noise=0.3)
    pair = hd.EnsembleGCM.from_matrices(Omega, Omega, Omega, t, t, rho=w_star @ w_star / d, M=4.0, **kwargs)
    out, converged = _solve(pair)
    assert converged
    np.testing.assert_allclose(out["q_ab"], out["q"], rtol=1e-10)
    np.testing.assert_allclose(out["correlation"], 1.0, rtol=1e-10)
    np.testing.assert_allclose(out["ensemble_error"], out["test_error"], rtol=1e-10)
    for key in ("variance_features", "variance_features_alone", "variance_features_data"):
        assert abs(float(out[key])) < 1e-10, key
    gcm = hd.GCM.from_matrices(np.eye(d), Phi, Omega, w_star, loss="square", teacher="linear", **kwargs)
    one = hd.solve(gcm).observables
    for key in ("m", "q", "V", "test_error"):
        np.testing.assert_allclose(out[key], one[key], rtol=1e-9, err_msg=key)


def test_matrix_form_against_the_limit():
    # The cross sums S and T at sampled independent F_a, F_b (d = 300, gamma = 1.5: 450 x 450
    # matrices) against their limit by freeness, at two values of Vhat: the sums fluctuate by
    # O(1 / sqrt(d)) over draws (seen: 0.3% at most); 3% allowed.
    kwargs = dict(lam=0.05, noise=0.2)
    sampled = random_feature_ensemble("erf", 1.5, 1.0, d=300, seed=3, **kwargs)
    limit = hd.RandomFeatureEnsemble(alpha=1.0, gamma=1.5, **kwargs)
    for Vhat_a, Vhat_b in ((0.3, 0.3), (0.1, 1.0)):
        got = np.array(sampled.cross_sums(jnp.asarray(Vhat_a), jnp.asarray(Vhat_b)))
        want = np.array(limit.cross_sums(jnp.asarray(Vhat_a), jnp.asarray(Vhat_b)))
        np.testing.assert_allclose(got, want, rtol=0.03)


def test_many_linear_features_are_ridge_on_the_inputs():
    # Linear features v = F x / sqrt(d) with p = 1000 d: F^T F / p -> I, so every learner is ridge
    # regression on x itself (the same lam, alpha = n / d), and two learners coincide. The
    # corrections are O(1 / gamma) = 1e-3 (seen: 5e-4 on the error, 1.2e-4 on 1 - correlation).
    theory = hd.RandomFeatureEnsemble(alpha=1.5, gamma=1000.0, lam=0.3, noise=0.2, activation="linear")
    out, converged = _solve(theory)
    ridge = hd.solve(hd.ERM(alpha=1.5, lam=0.3, noise=0.2, loss="square", teacher="linear")).observables
    assert converged
    for key in ("m", "q", "test_error"):
        np.testing.assert_allclose(out[key], ridge[key], rtol=2e-3, err_msg=key)
    assert 0 < 1 - float(out["correlation"]) < 1e-3


def test_one_learner_is_random_features_and_the_published_shape():
    # d'Ascoli et al. 2020 (abstract; their figures of the decomposition against p / n): at vanishing
    # regularisation the variances from the label noise and from the features make the peak at the
    # interpolation threshold p = n, the bias does not peak and is constant beyond it, and the
    # infinite ensemble's error is constant beyond it. Here lam = 1e-6, n = d, and p / n from 1/2
    # to 16 in one vmapped program. Also: one learner (M = 1) is RandomFeatures exactly.
    gammas = jnp.asarray([0.5, 1.0, 2.0, 4.0, 16.0])
    base = hd.RandomFeatureEnsemble(alpha=1.0, gamma=1.0, lam=1e-6, noise=0.2, M=1.0)
    out, converged = jax.vmap(lambda g: _solve(dataclasses.replace(base, gamma=g)))(gammas)
    assert bool(jnp.all(converged))
    single = hd.solve(hd.RandomFeatures(alpha=1.0, gamma=2.0, lam=1e-6, noise=0.2, loss="square", teacher="linear"))
    np.testing.assert_allclose(out["ensemble_error"][2], single.observables["test_error"], rtol=1e-9)
    np.testing.assert_allclose(out["ensemble_error"], out["test_error"], rtol=1e-12)
    at, below, above = 1, 0, 2
    for key in ("variance_noise", "variance_features"):
        assert out[key][at] > 10 * max(out[key][below], out[key][above]), key
    assert out["bias"][at] < out["bias"][below]
    assert out["variance_data"][at] < 2 * out["variance_data"][below]
    beyond = slice(2, None)
    for key in ("bias", "ensemble_error_inf"):
        values = np.asarray(out[key][beyond])
        np.testing.assert_allclose(values, values[0], rtol=1e-4, err_msg=key)
    assert out["test_error"][at] > 10 * out["ensemble_error_inf"][at]
    # The decomposition adds up to the excess test error.
    parts = sum(out[k] for k in ("bias", "variance_data", "variance_features", "variance_noise"))
    np.testing.assert_allclose(parts, out["test_error"], rtol=1e-9)


@pytest.mark.parametrize(
    "setting, d, seeds",
    [
        (dict(alpha=1.0, gamma=2.0, lam=0.05, noise=0.2), 150, 8),
        # The default run checks the logistic ensemble against simulation with its decomposition
        # (test_ensemble_bias_variance), the same fixed point.
        pytest.param(dict(alpha=2.0, gamma=1.5, lam=0.05, noise=0.1, loss="logistic", teacher="sign", bias_variance="off"),
                     150, 4, marks=pytest.mark.extended),
    ],
    ids=["ridge", "logistic"],
)
def test_against_simulation(setting, d, seeds):
    # Three learners with independent features on the same data (and, for ridge, on fresh noise
    # and fresh inputs: the bias and variances), their errors exact for the fitted weights (erf's
    # closed-form moments). Within four standard errors over the seeds plus 6% of the value, the
    # finite-size bias of Gaussian equivalence at d = 150-200 (seen: q 2-4% above the limit at
    # gamma = 2, the ensemble and logistic errors within 2%).
    theory = hd.RandomFeatureEnsemble(M=3.0, **setting)
    out, converged = _solve(theory)
    assert converged
    sim = simulate(theory, d=d, seeds=seeds, learners=3, decompose=theory.loss == "square")
    keys = ["m", "q", "q_ab", "correlation", "test_error", "ensemble_error", "ensemble_error_inf"]
    if theory.loss == "square":
        keys += ["bias", "variance_data", "variance_features", "variance_noise", "variance_features_alone"]
    for key in keys:
        want = float(out[key])
        assert abs(sim.mean[key] - want) <= 4 * sim.sem[key] + 0.06 * abs(want), (key, want, sim.mean[key], sim.sem[key])
    # Ensembling helps: the error of three learners below one's, the infinite ensemble's below both.
    assert out["ensemble_error_inf"] < out["ensemble_error"] < out["test_error"]


@pytest.fixture(scope="module")
def ridge_ensemble():
    """Ridge learners with random erf features, alpha = 1, gamma = 2, lam = 0.05, noise = 0.2."""
    return hd.RandomFeatureEnsemble(alpha=1.0, gamma=2.0, lam=0.05, noise=0.2, M=3.0)


# The default run checks the ridge ensemble against simulation at M = 3 (test_against_simulation[ridge]).
@pytest.mark.extended
def test_ensembles_of_two_and_five_learners_against_simulation(ridge_ensemble):
    # The error of the average of M = 2 and M = 5 ridge learners (closed-form fits on their own
    # features, d = 200, four data sets) against the theory's ensemble_error at M = 2 and 5, both
    # in one program. Tolerance as above: four standard errors plus 6% for the finite-size bias.
    at_M = jax.jit(jax.vmap(lambda M: hd.solve(eqx.tree_at(lambda t: t.M, ridge_ensemble, M)).observables))
    out = at_M(jnp.asarray([2.0, 5.0]))
    for i, K in enumerate((2, 5)):
        sim = simulate(eqx.tree_at(lambda t: t.M, ridge_ensemble, jnp.asarray(float(K))), d=200, seeds=4, learners=K)
        want = float(out["ensemble_error"][i])
        got, sem = sim.mean["ensemble_error"], sim.sem["ensemble_error"]
        assert abs(got - want) <= 4 * sem + 0.06 * want, (K, want, got, sem)
    # Five learners do better than two, by more than the tolerance allows to confuse.
    assert out["ensemble_error"][1] < 0.9 * out["ensemble_error"][0]


# The default run checks hd.tune in test_tune and against a published optimum in test_erm_outliers_published.
@pytest.mark.extended
def test_tune_finds_the_lam_of_the_best_ensemble(ridge_ensemble):
    # hd.tune on the ensemble's error (M = 3) over lam against a dense grid of 200 solves in one
    # vmapped program: the tuned error at most the grid's best (to the solver's precision), the
    # tuned lam within one grid step of the grid's argmin.
    result = hd.tune(ridge_ensemble, "ensemble_error", {"lam": hd.Log(low=1e-4, high=1e2)})
    assert bool(result.converged) and int(result.at_boundary["lam"]) == 0
    grid = jnp.logspace(-3, 1, 200)
    solve = jax.jit(jax.vmap(lambda lam: hd.solve(eqx.tree_at(lambda t: t.lam, ridge_ensemble, lam)).observables))
    errors = solve(grid)["ensemble_error"]
    best = int(jnp.argmin(errors))
    assert 0 < best < len(grid) - 1, "the grid must bracket the optimum"
    assert float(result.objective) <= float(errors[best]) + 1e-9
    assert abs(math.log(float(result.params["lam"]) / float(grid[best]))) <= math.log(float(grid[1] / grid[0]))


def test_gradients_against_finite_differences():
    # d/d(lam, gamma) of the ensemble's error, the features' variance and q_ab, through the fixed
    # point (implicit differentiation), against central differences (step 1e-5, errors ~1e-9).
    def observed(x):
        theory = hd.RandomFeatureEnsemble(alpha=1.0, gamma=x[1], lam=x[0], noise=0.2, M=3.0)
        out = hd.solve(theory).observables
        return jnp.stack([out["ensemble_error"], out["variance_features"], out["q_ab"]])

    both = jax.jit(lambda x: (observed(x), jax.jacfwd(observed)(x)))  # one program; the differences reuse it
    x = jnp.asarray([0.05, 1.5])
    _, jacobian = both(x)
    h = 1e-5
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        difference = (both(x + e)[0] - both(x - e)[0]) / (2 * h)
        np.testing.assert_allclose(jacobian[:, i], difference, rtol=1e-5, atol=1e-8)


def test_bad_input_and_the_command_line(capsys):
    with pytest.raises(hd.ParameterError, match="gamma"):
        hd.RandomFeatureEnsemble(gamma=-1.0)
    with pytest.raises(hd.ParameterError, match="M"):
        hd.RandomFeatureEnsemble(M=0.5)
    with pytest.raises(hd.ParameterError, match="activation"):
        random_feature_ensemble("relu", 1.0, 1.0, d=20)
    with pytest.raises(hd.ParameterError, match="cross"):
        hd.EnsembleGCM(omega=np.ones((2, 3)), theta2=np.ones((2, 3)), cross=np.ones((2, 2)), theta_cross=np.ones((3, 3)))
    with pytest.raises(hd.ParameterError, match="activation"):
        simulate(hd.RandomFeatureEnsemble(activation="tanh"), d=20, seeds=1)
    args = ["eval", "ensemble", "gamma=2", "lam=0.05", "noise=0.2", "M=inf"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and out["ensemble_error"] == pytest.approx(out["ensemble_error_inf"], rel=1e-12)
    assert out["ensemble_error_inf"] < out["test_error"]
    assert main([*args, "gamma=-2"]) == 2
    err = capsys.readouterr().err
    assert "gamma" in err and len(err.strip().splitlines()) == 1
