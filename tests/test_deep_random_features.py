"""Deep random features: the covariance recursion against closed forms in NumPy (linear activations, a
product of Gaussian matrices; erf and ReLU, whose per-unit Hermite coefficients are known in closed
form), structured weights against their definition, depth one against random features, the
covariances against Monte Carlo, ERM against simulations at the same weights, gradients against finite
differences, the command line, and bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import ndtr

import hdtheory as hd
from hdtheory.cli import build_theory, main
from hdtheory.models.deep_rf import deep_covariances, deep_random_features, deep_spectrum, deep_weights
from hdtheory.models.deep_rf import exponent_covariances, layer_widths
from hdtheory.models.gcm import RF_ACTIVATIONS


def _coefficients(activation, mu, v):
    """``(m, kappa_1, kappa_star^2)`` per unit for ``u ~ N(mu, v)``, in closed form: for erf (at ``mu =
    0``) ``E erf'(u) = 2 / sqrt(pi (1 + 2 v))`` and ``E erf(u)^2 = (2 / pi) arcsin(2 v / (1 + 2 v))``
    (Williams 1997); for ReLU, with ``t = mu / sqrt(v)``, ``E relu(u) = mu Phi(t) + sqrt(v) phi(t)``,
    ``E relu'(u) = Phi(t)``, ``E relu(u)^2 = (mu^2 + v) Phi(t) + mu sqrt(v) phi(t)``."""
    if activation == "linear":
        return mu, np.ones_like(v), np.zeros_like(v)
    if activation == "erf":
        assert np.all(mu == 0)
        k1 = 2 / np.sqrt(np.pi * (1 + 2 * v))
        return mu, k1, 2 / np.pi * np.arcsin(2 * v / (1 + 2 * v)) - v * k1**2
    s = np.sqrt(v)
    Phi, phi = ndtr(mu / s), np.exp(-0.5 * (mu / s) ** 2) / np.sqrt(2 * np.pi)
    m = mu * Phi + s * phi
    return m, Phi, (mu**2 + v) * Phi + mu * s * phi - m**2 - v * Phi**2


def _numpy_covariances(weights, activations):
    """The recursion of the module docstring in NumPy, with the closed-form coefficients."""
    d = weights[0].shape[1]
    Omega, Phi, m = np.eye(d), np.eye(d), np.zeros(d)
    for W, activation in zip(weights, activations):
        A = W @ Omega @ W.T / W.shape[1]
        m, k1, kstar2 = _coefficients(activation, W @ m / np.sqrt(W.shape[1]), np.diag(A))
        Omega, Phi = k1[:, None] * A * k1 + np.diag(kstar2), Phi @ W.T * k1 / np.sqrt(W.shape[1])
    return Omega, Phi, m


def _numpy_spectrum(weights, activations):
    Omega, Phi, _ = _numpy_covariances(weights, activations)
    omega, vectors = np.linalg.eigh(Omega)
    return omega, Omega.shape[0] * np.sum((Phi @ vectors) ** 2, axis=0) / weights[0].shape[1], Omega


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
    # Three layers: erf, linear then erf; and ReLU, whose means shift the next layer's
    # preactivations unit by unit (the closed forms with a mean).
    widths = layer_widths((1.5, 0.8, 1.2), 100)
    weights = deep_weights(key, widths)
    covariances = jax.jit(deep_covariances, static_argnums=1)  # compiled, not run op by op
    for activations in (("erf", "linear", "erf"), ("relu",) * 3):
        Omega, Phi, m = _numpy_covariances([np.asarray(W) for W in weights], activations)
        for got, expected in zip(covariances(weights, activations), (Omega, Phi, m)):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    # ReLU features have variance E relu(u)^2 - m^2 < r / 2: a test that fails if the coefficients
    # were taken at r = 1 and mean 0.
    assert np.trace(Omega) / widths[-1] < 0.1 and 0.1 < np.mean(m) < 0.3


def test_structured_weights():
    d, key = 60, jax.random.PRNGKey(4)
    widths = layer_widths((1.5, 2.0), d)
    Z = [np.asarray(W) for W in deep_weights(key, widths)]
    # Rows of covariance C_l given as matrices (AR(1), positive definite): W_l = Z_l C_l^{1/2}, and
    # linear layers give the product of the matrices, Omega = A A^T and Phi = A^T.
    C = [0.6 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n))) for n in widths[:2]]
    roots = [(V * np.sqrt(s)) @ V.T for s, V in map(np.linalg.eigh, C)]
    W1, W2 = (z @ root for z, root in zip(Z, roots))
    A = W2 @ W1 / np.sqrt(widths[0] * widths[1])
    omega, vectors = np.linalg.eigh(A @ A.T)
    theta2 = widths[2] * np.sum((A.T @ vectors) ** 2, axis=0) / widths[0]
    model = deep_random_features("linear", (1.5, 2.0), d=d, key=key, weight_covariances=C, rho=0.5)
    np.testing.assert_allclose(model.omega, omega, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.theta2, 0.5 * theta2, rtol=1e-9, atol=1e-12)
    # A power law in a random basis: C_l^{1/2} = Z_l^+ W_l (Z_l has full column rank) is symmetric
    # with the eigenvalues sqrt(k^-a / mean_j j^-a), in a basis that is not the coordinates' (the
    # diagonal of C_l spreads far less than its spectrum).
    exponents = (1.0, 0.5)
    theory = hd.DeepRandomFeatures(widths=(1.5, 2.0), d=d, seed=4, weight_exponent=exponents,
                                   activation=("linear", "erf"), loss="square", teacher="linear")
    weights = [np.asarray(W) for W in theory.weights()]
    for z, W, a in zip(Z, weights, exponents):
        root = np.linalg.lstsq(z, W, rcond=None)[0]
        spectrum = np.arange(1, z.shape[1] + 1) ** -a
        np.testing.assert_allclose(root, root.T, atol=1e-10)
        np.testing.assert_allclose(np.linalg.eigvalsh(root @ root)[::-1], spectrum / spectrum.mean(), rtol=1e-8)
        assert np.std(np.diag(root @ root)) < 0.3 * np.std(spectrum / spectrum.mean())
    # The theory is the recursion at these weights.
    omega, theta2, _ = _numpy_spectrum(weights, ("linear", "erf"))
    np.testing.assert_allclose(theory.gcm.omega, omega, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(theory.gcm.theta2, theta2, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activations, exponent", [(("erf", "erf"), 0.0), (("relu", "relu"), 0.0), (("erf", "tanh"), 0.5)])
def test_covariances_against_monte_carlo(activations, exponent):
    # The Gaussian-equivalent covariances against the features' own moments, estimated from N =
    # 40000 inputs through two layers at d = 100: the means, quadratic forms v^T Cov(h) v on random
    # and on the top eigenvectors, and the teacher's cross-covariance E[z h] along t = Phi^T w* /
    # sqrt(d). Tolerance 4%: Monte Carlo errors about sqrt(2 / N) = 0.7%, and the linearisation's
    # error, O(1 / d), reaches 3% on the top modes at d = 100 (1.5% at d = 200). Coefficients taken
    # at r = 1 instead of the units' variances (about 0.47 at the second erf layer) would be off by
    # 25% to 35%.
    d, N = 100, 40_000
    widths = layer_widths((1.5, 1.0), d)
    weights = deep_weights(jax.random.PRNGKey(7), widths, exponent_covariances((exponent,) * 2, widths))
    Omega, Phi, m = map(np.asarray, deep_covariances(weights, activations))
    weights = [np.asarray(W) for W in weights]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, d))
    H = X
    for W, activation in zip(weights, activations):
        H = np.asarray(RF_ACTIVATIONS[activation](jnp.asarray(H @ W.T / np.sqrt(W.shape[1]))))
    # The means unit by unit within five Monte Carlo standard errors sqrt(Omega_ii / N), and 1%.
    mean = H.mean(axis=0)
    np.testing.assert_array_less(np.abs(mean - m), 5 * np.sqrt(np.diag(Omega) / N) + 0.01 * np.abs(m))
    H = H - mean
    vectors = np.linalg.eigh(Omega)[1][:, -3:]
    vectors = np.concatenate([vectors, rng.standard_normal((d, 4)) / np.sqrt(d)], axis=1)
    np.testing.assert_allclose(np.mean((H @ vectors) ** 2, axis=0), np.sum(vectors * (Omega @ vectors), axis=0), rtol=0.04)
    w_star = rng.standard_normal(d)
    t = Phi.T @ w_star / np.sqrt(d)
    assert t @ (H.T @ (X @ w_star)) / np.sqrt(d) / N == pytest.approx(t @ t, rel=0.03)


def test_depth_one_is_random_features():
    # The GCM built by hand from F (the covariances of random features with each unit's kappa at
    # its variance |F_i|^2 / d) equals the builder's at 1e-10.
    d, gamma, rho, alpha = 200, 1.5, 0.7, 2.0
    widths = layer_widths((gamma,), d)
    (F,) = map(np.asarray, deep_weights(jax.random.PRNGKey(5), widths))
    _, k1, kstar2 = _coefficients("erf", np.zeros(widths[1]), np.sum(F**2, axis=1) / d)
    omega, vectors = np.linalg.eigh(k1[:, None] * (F @ F.T / d) * k1 + np.diag(kstar2))
    model = deep_random_features("erf", (gamma,), alpha, d=d, key=jax.random.PRNGKey(5), rho=rho)
    np.testing.assert_allclose(model.omega, omega, rtol=1e-10)
    theta2 = widths[1] / d * rho * np.sum(((F.T * k1) @ vectors) ** 2, axis=0) / d
    np.testing.assert_allclose(model.theta2, theta2, rtol=1e-10, atol=1e-13)
    assert float(model.alpha) == pytest.approx(alpha * d / widths[1], rel=1e-14)
    # Against the Marchenko-Pastur limit (RandomFeatures): linear statistics of the spectrum and
    # the units' variances fluctuate by O(1 / d); 5 / d relative at d = 300.
    theories = [
        hd.DeepRandomFeatures(widths=(1.0,), d=300, alpha=2.0, lam=0.1, loss="square", teacher="linear"),
        hd.RandomFeatures(gamma=1.0, alpha=2.0, lam=0.1, loss="square", teacher="linear"),
    ]
    deep, rf = (float(hd.solve(t).observables["test_error"]) for t in theories)
    assert deep == pytest.approx(rf, rel=5 / 300)


@pytest.mark.parametrize(
    "loss, teacher, noise, activation, exponent, keys",
    [("square", "linear", 0.1, "erf", 0.0, ("test_error", "train_loss")),
     ("square", "linear", 0.1, ("erf", "tanh"), 1.0, ("test_error", "train_loss")),
     ("square", "linear", 0.1, "relu", 0.0, ("test_error", "train_loss")),
     # The square loss checks the same features' equivalence against the same simulation.
     pytest.param("logistic", "sign", 0.0, "erf", 0.0, ("test_error",), marks=pytest.mark.extended)],
)
def test_against_simulation_at_the_same_weights(loss, teacher, noise, activation, exponent, keys):
    # Two layers at d = 300, the weights of seed 1 shared by theory and simulation; the
    # simulation's seeds draw the teacher and the data. Tolerance: three standard errors over four
    # seeds. (The logistic training loss varies from seed to seed by more than four seeds resolve:
    # its means over two sets of four seeds differ by 0.026, their standard errors 0.003 and 0.007.)
    theory = hd.DeepRandomFeatures(widths=(1.5, 1.0), alpha=2.0, lam=0.1, loss=loss, teacher=teacher,
                                   noise=noise, d=300, seed=1, activation=activation, weight_exponent=exponent)
    sol = hd.solve(theory)
    assert bool(sol.converged)
    sim = hd.simulate.simulate(theory, seeds=4)
    for key in keys:
        assert abs(sim.mean[key] - float(sol.observables[key])) <= 3 * sim.sem[key], key


def test_gradients_match_finite_differences():
    def error(x):
        theory = hd.DeepRandomFeatures(
            widths=(1.2, 0.8), d=100, alpha=1.5, lam=x[0], noise=x[1], loss="square", teacher="linear"
        )
        return hd.solve(theory).observables["test_error"]

    value_and_grad = jax.jit(lambda x: (error(x), jax.jacfwd(error)(x)))
    x = jnp.array([0.05, 0.2])
    _, grad = value_and_grad(x)
    h = 1e-5 * x
    fd = [(value_and_grad(x.at[i].add(h[i]))[0] - value_and_grad(x.at[i].add(-h[i]))[0]) / (2 * h[i]) for i in range(2)]
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_command_line(capsys):
    ridge = ["alpha=2", "lam=0.1", "loss=square", "teacher=linear", "--json"]
    assert main(["eval", "deep-random-features", "depth=2", "widths=1,1"] + ridge) == 0
    record = json.loads(capsys.readouterr().out)
    theory = hd.DeepRandomFeatures(widths=(1.0, 1.0), alpha=2.0, lam=0.1, loss="square", teacher="linear")
    assert record["converged"]
    assert record["test_error"] == pytest.approx(float(hd.solve(theory).observables["test_error"]), rel=1e-10)
    # One width with a depth: that width at every layer; one activation per layer.
    parsed = build_theory("deep-random-features", ["depth=3", "widths=1.2", "activation=erf,linear,tanh"])
    theory = hd.DeepRandomFeatures(widths=(1.2, 1.2, 1.2), activation=("erf", "linear", "tanh"))
    np.testing.assert_array_equal(parsed.gcm.omega, theory.gcm.omega)
    np.testing.assert_array_equal(parsed.gcm.theta2, theory.gcm.theta2)
    for args, names in (
        (["depth=3", "widths=1,1"], ("'depth'", "'widths'")),
        (["depth=0"], ("'depth'",)),
        (["widths=1,-1"], ("'widths'",)),
        (["activation=erf,tanh,sign"], ("'activation'",)),
        (["weight_exponent=1,1,1"], ("'weight_exponent'",)),
    ):
        assert main(["eval", "deep-random-features"] + args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(name in err for name in names), err


def test_bad_input():
    for kwargs, name in (
        ({"widths": (1.0, 0.0)}, "'widths'"),
        ({"widths": ()}, "'widths'"),
        ({"depth": 3}, "'depth'"),
        ({"depth": 1.5}, "'depth'"),
        ({"activation": "softsign"}, "'activation'"),
        ({"activation": ("erf", "tanh", "sign")}, "'activation'"),
        ({"weight_exponent": -1.0}, "'weight_exponent'"),
        ({"weight_exponent": (1.0, 1.0, 1.0)}, "'weight_exponent'"),
        ({"d": 0}, "'d'"),
    ):
        with pytest.raises(hd.ParameterError, match=name):
            hd.DeepRandomFeatures(**kwargs)
    with pytest.raises(hd.ParameterError, match="'activation'"):
        deep_random_features(("erf", "tanh"), (1.0,))
    with pytest.raises(hd.ParameterError, match="'widths'"):
        deep_random_features("erf", (1.0, -2.0))
    for covariances in ([np.ones(9)], [np.ones(10), None], [-np.ones(10)], [np.triu(np.ones((10, 10)))],
                        [np.diag(np.linspace(-1.0, 1.0, 10))]):
        with pytest.raises(hd.ParameterError, match="'weight_covariances'"):
            deep_random_features("erf", (1.0,), d=10, weight_covariances=covariances)
    with pytest.raises(hd.ParameterError, match="'weight_exponent' and 'weight_covariances'"):
        deep_random_features("erf", (1.0,), d=10, weight_exponent=1.0, weight_covariances=[np.ones(10)])
