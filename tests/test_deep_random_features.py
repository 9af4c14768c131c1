"""Deep random features: the covariance recursion against closed forms in NumPy (linear activations, a
product of Gaussian matrices; erf, whose Hermite coefficients at any variance are known in closed
form), depth one against random features, ERM against simulations at the same weights, gradients
against finite differences, and bad input."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.cli import main
from hdtheory.models.deep_rf import deep_covariances, deep_random_features, deep_spectrum, deep_weights
from hdtheory.models.deep_rf import layer_widths


def _erf_coefficients(r):
    """``(kappa_1, kappa_star^2)`` of ``erf`` at the preactivation variance ``r``, in closed form:
    ``E erf'(u) = 2 / sqrt(pi (1 + 2 r))`` and ``E erf(u)^2 = (2 / pi) arcsin(2 r / (1 + 2 r))``
    for ``u ~ N(0, r)`` (Williams 1997)."""
    k1 = 2 / math.sqrt(math.pi * (1 + 2 * r))
    return k1, 2 / math.pi * math.asin(2 * r / (1 + 2 * r)) - r * k1**2


def _numpy_spectrum(weights, activation):
    """The recursion of the module docstring in NumPy, with the closed-form coefficients."""
    d = weights[0].shape[1]
    Omega, Phi = np.eye(d), np.eye(d)
    for W in weights:
        A = W @ Omega @ W.T / W.shape[1]
        k1, kstar2 = (1.0, 0.0) if activation == "linear" else _erf_coefficients(np.trace(A) / W.shape[0])
        Omega, Phi = k1**2 * A + kstar2 * np.eye(W.shape[0]), k1 * Phi @ W.T / np.sqrt(W.shape[1])
    omega, vectors = np.linalg.eigh(Omega)
    return omega, W.shape[0] * np.sum((Phi @ vectors) ** 2, axis=0) / d, Omega


def test_covariances_against_closed_forms_in_numpy():
    key = jax.random.PRNGKey(3)
    # Linear activations: h_2 = A x with A = W_2 W_1 / sqrt(d d_1), so Omega = A A^T and Phi = A^T
    # exactly (the features are Gaussian); widths 0.5 d make Omega rank-deficient (zero modes).
    widths = layer_widths((1.5, 0.5), 120)
    W1, W2 = map(np.asarray, deep_weights(key, widths))
    A = W2 @ W1 / np.sqrt(widths[0] * widths[1])
    omega, vectors = np.linalg.eigh(A @ A.T)
    theta2 = widths[2] * np.sum((A.T @ vectors) ** 2, axis=0) / widths[0]
    got_omega, got_theta2 = map(np.asarray, deep_spectrum(key, widths, ("linear", "linear")))
    np.testing.assert_allclose(got_omega, omega, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_theta2, theta2, rtol=1e-9, atol=1e-12)
    # erf at three layers: the preactivation variances r_l enter through the closed-form kappas.
    widths = layer_widths((1.5, 0.8, 1.2), 100)
    omega, theta2, Omega = _numpy_spectrum([np.asarray(W) for W in deep_weights(key, widths)], "erf")
    got_omega, got_theta2 = map(np.asarray, deep_spectrum(key, widths, ("erf",) * 3))
    np.testing.assert_allclose(got_omega, omega, rtol=1e-10)
    np.testing.assert_allclose(got_theta2, theta2, rtol=1e-10, atol=1e-13)
    # A layer's features have variance E erf(u)^2 < 1, so r_l shrinks with depth: a test that
    # fails if the coefficients were taken at r = 1.
    assert np.trace(Omega) / widths[-1] < 0.6


def test_covariances_against_monte_carlo():
    # The Gaussian-equivalent covariances against the features' own second moments, estimated from
    # N = 40000 inputs through two erf layers at d = 100: quadratic forms v^T E[h h^T] v on random
    # and on the top eigenvectors, and the teacher's cross-covariance E[z h] along t = Phi^T w* /
    # sqrt(d). Tolerance 4%: Monte Carlo errors about sqrt(2 / N) = 0.7%, and the linearisation's
    # error, O(1 / d), reaches 3% on the top modes at d = 100 (1.5% at d = 200). Coefficients taken
    # at r = 1 instead of r_2 = 0.47 would be off by 25% to 35%.
    d, N = 100, 40_000
    weights = deep_weights(jax.random.PRNGKey(7), layer_widths((1.5, 1.0), d))
    Omega, Phi, r = map(np.asarray, deep_covariances(weights, ("erf", "erf")))
    assert 0.4 < r[1] < 0.55
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, d))
    H = X
    for W in map(np.asarray, weights):
        H = np.asarray(jax.scipy.special.erf(H @ W.T / np.sqrt(W.shape[1])))
    vectors = np.linalg.eigh(Omega)[1][:, -3:]
    vectors = np.concatenate([vectors, rng.standard_normal((d, 4)) / np.sqrt(d)], axis=1)
    np.testing.assert_allclose(np.mean((H @ vectors) ** 2, axis=0), np.sum(vectors * (Omega @ vectors), axis=0), rtol=0.04)
    w_star = rng.standard_normal(d)
    t = Phi.T @ w_star / np.sqrt(d)
    assert t @ (H.T @ (X @ w_star)) / np.sqrt(d) / N == pytest.approx(t @ t, rel=0.03)


def test_depth_one_is_random_features():
    # The GCM built by hand from the empirical spectrum s of F F^T / d (the formulas of
    # random_features, with kappa at r = |F|^2 / (p d)) equals the builder's at 1e-10.
    d, gamma, rho, alpha = 200, 1.5, 0.7, 2.0
    widths = layer_widths((gamma,), d)
    (F,) = map(np.asarray, deep_weights(jax.random.PRNGKey(5), widths))
    s = np.linalg.eigvalsh(F @ F.T / d)
    k1, kstar2 = _erf_coefficients(np.sum(F**2) / F.size)
    model = deep_random_features("erf", (gamma,), alpha, d=d, key=jax.random.PRNGKey(5), rho=rho)
    np.testing.assert_allclose(model.omega, k1**2 * s + kstar2, rtol=1e-10)
    np.testing.assert_allclose(model.theta2, widths[1] / d * k1**2 * rho * s, rtol=1e-10, atol=1e-13)
    assert float(model.alpha) == pytest.approx(alpha * d / widths[1], rel=1e-14)
    # Against the Marchenko-Pastur limit (RandomFeatures): linear statistics of the spectrum and
    # r_1 fluctuate by O(1 / d); 5 / d relative at d = 300.
    theories = [
        hd.DeepRandomFeatures(gammas=(1.0,), d=300, alpha=2.0, lam=0.1, loss="square", teacher="linear"),
        hd.RandomFeatures(gamma=1.0, alpha=2.0, lam=0.1, loss="square", teacher="linear"),
    ]
    deep, rf = (float(hd.solve(t).observables["test_error"]) for t in theories)
    assert deep == pytest.approx(rf, rel=5 / 300)


@pytest.mark.parametrize(
    "loss, teacher, noise, keys",
    [("square", "linear", 0.1, ("test_error", "train_loss")),
     # The square loss checks the same features' equivalence against the same simulation.
     pytest.param("logistic", "sign", 0.0, ("test_error",), marks=pytest.mark.extended)],
)
def test_against_simulation_at_the_same_weights(loss, teacher, noise, keys):
    # Two erf layers at d = 300, the weights of seed 1 shared by theory and simulation; the
    # simulation's seeds draw the teacher and the data. Tolerance: three standard errors over four
    # seeds. (The logistic training loss varies from seed to seed by more than four seeds resolve:
    # its means over two sets of four seeds differ by 0.026, their standard errors 0.003 and 0.007.)
    theory = hd.DeepRandomFeatures(
        gammas=(1.5, 1.0), alpha=2.0, lam=0.1, loss=loss, teacher=teacher, noise=noise, d=300, seed=1
    )
    sol = hd.solve(theory)
    assert bool(sol.converged)
    sim = hd.simulate.simulate(theory, seeds=4)
    for key in keys:
        assert abs(sim.mean[key] - float(sol.observables[key])) <= 3 * sim.sem[key], key


def test_gradients_match_finite_differences():
    def error(x):
        theory = hd.DeepRandomFeatures(
            gammas=(1.2, 0.8), d=100, alpha=1.5, lam=x[0], noise=x[1], loss="square", teacher="linear"
        )
        return hd.solve(theory).observables["test_error"]

    value_and_grad = jax.jit(lambda x: (error(x), jax.jacfwd(error)(x)))
    x = jnp.array([0.05, 0.2])
    _, grad = value_and_grad(x)
    h = 1e-5 * x
    fd = [(value_and_grad(x.at[i].add(h[i]))[0] - value_and_grad(x.at[i].add(-h[i]))[0]) / (2 * h[i]) for i in range(2)]
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_bad_input_and_command_line(capsys):
    for kwargs, name in (
        ({"gammas": (1.0, 0.0)}, "'gammas'"),
        ({"gammas": ()}, "'gammas'"),
        ({"activation": "relu"}, "'activation'"),
        ({"activation": "softsign"}, "'activation'"),
        ({"d": 0}, "'d'"),
    ):
        with pytest.raises(hd.ParameterError, match=name):
            hd.DeepRandomFeatures(**kwargs)
    with pytest.raises(hd.ParameterError, match="'activation'"):
        deep_random_features(("erf", "tanh"), (1.0,))
    with pytest.raises(hd.ParameterError, match="'gammas'"):
        deep_random_features("erf", (1.0, -2.0))
    args = ["eval", "deep-random-features", "gammas=1,1", "activation=erf", "alpha=2", "lam=0.1",
            "loss=square", "teacher=linear"]
    assert main(args + ["--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    theory = hd.DeepRandomFeatures(gammas=(1.0, 1.0), alpha=2.0, lam=0.1, loss="square", teacher="linear")
    assert record["converged"]
    assert record["test_error"] == pytest.approx(float(hd.solve(theory).observables["test_error"]), rel=1e-10)
    assert main(["eval", "deep-random-features", "gammas=1,-1"]) == 2
    assert "'gammas'" in capsys.readouterr().err
