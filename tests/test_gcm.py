"""The Gaussian covariate model, random features and kernel ridge regression: against ERM, closed
forms, the published rates of Cui et al. 2021, simulations and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.cli import main
from hdtheory.models.gcm import GCM, power_law
from hdtheory.models.krr import fitted_rate, published_rate


def _huber_gcm(alpha, lam, omega, theta2, rho):
    return hd.solve(GCM(omega=omega, theta2=theta2, rho=rho, alpha=alpha, lam=lam, noise=0.3, loss="huber", teacher="linear"))


def test_identity_covariances_equal_erm_and_matrix_form_is_rotation_invariant():
    alphas, lams = jnp.array([0.5, 2.0, 4.0]), jnp.array([0.01, 0.1, 1.0])
    rho, p = 1.3, 6
    erm = jax.vmap(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l, rho=rho, noise=0.3, loss="huber", teacher="linear")))(alphas, lams)
    solve = jax.jit(jax.vmap(_huber_gcm, in_axes=(0, 0, None, None, None)))
    # Isotropic features in matrix form, a teacher of norm |theta|^2 / k = rho.
    theta = jnp.sqrt(rho) * jnp.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0])
    iso = GCM.from_matrices(jnp.eye(p), jnp.eye(p), jnp.eye(p), theta)
    gcm = solve(alphas, lams, iso.omega, iso.theta2, iso.rho)
    assert bool(jnp.all(gcm.converged & erm.converged))
    for key in ("test_error", "m", "q", "V", "train_loss"):
        np.testing.assert_allclose(gcm.observables[key], erm.observables[key], rtol=1e-9, atol=1e-12)

    # Generic covariances (k = 4 teacher, p = 6 student features, not commuting); rotating the
    # student's or the teacher's features leaves the learning curve unchanged.
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 10)) / np.sqrt(10)
    cov = A @ A.T + 0.1 * np.eye(10)
    Psi, Phi, Omega, theta = cov[:4, :4], cov[:4, 4:], cov[4:, 4:], rng.normal(size=4)
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    R, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    models = [
        GCM.from_matrices(Psi, Phi, Omega, theta),
        GCM.from_matrices(Psi, Phi @ Q.T, Q @ Omega @ Q.T, theta),
        GCM.from_matrices(R @ Psi @ R.T, R @ Phi, Omega, R @ theta),
    ]
    errors = [solve(alphas, lams, g.omega, g.theta2, g.rho).observables["test_error"] for g in models]
    np.testing.assert_allclose(errors[1], errors[0], rtol=1e-9)
    np.testing.assert_allclose(errors[2], errors[0], rtol=1e-9)


def test_ridge_gcm_matches_closed_form_spectral_formula():
    # The ridge GCM (generic channel quadrature, three order parameters) against the one-equation
    # closed form kappa = lam + kappa df1 / n, error (B + noise df2 / n) / (1 - df2 / n) on the same
    # 400-mode power-law spectrum, computed here in NumPy by bisection.
    modes, capacity, source = 400, 1.5, 0.7
    ns, lams, noises = np.array([100.0, 300.0, 900.0]), np.array([1e-3, 0.3, 5.0]), np.array([0.3, 0.0, 1.0])

    def gcm(n, lam, noise):
        model = power_law(capacity, source, modes=modes, n=n, lam=lam, noise=noise)
        sol = hd.solve(model)
        # The per-mode errors and the part of the teacher outside the features add up to the error.
        total = model.rho - model.average(model.theta2 / model.omega) + model.average(model.mode_errors(sol.state))
        return sol, total

    sol, total = jax.jit(jax.vmap(gcm))(ns, lams, noises)
    assert bool(jnp.all(sol.converged))
    k = np.arange(1, modes + 1.0)
    eta, power = k**-capacity, k ** (-1 - 2 * capacity * source)
    for i, (n, lam, noise) in enumerate(zip(ns, lams, noises)):
        lo, hi = 1e-12, 1e6
        for _ in range(200):
            kappa = np.sqrt(lo * hi)
            df1 = np.sum(n * eta / (kappa + n * eta))
            lo, hi = (kappa, hi) if kappa - kappa * df1 / n < lam else (lo, kappa)
        x = n * eta / (kappa + n * eta)
        df2 = np.sum(x**2)
        bias = np.sum(power * (1 - x) ** 2)
        expected = (bias + noise * df2 / n) / (1 - df2 / n)
        assert float(sol.observables["test_error"][i]) == pytest.approx(expected, rel=1e-8)
        assert float(total[i]) == pytest.approx(expected, rel=1e-8)
    krr = jax.vmap(lambda n, l, s: hd.solve(hd.KRR(capacity=capacity, source=source, modes=modes, n=n, lam=l, noise=s)))
    np.testing.assert_allclose(krr(ns, lams, noises).observables["test_error"], sol.observables["test_error"], rtol=1e-8)


# (capacity, source, ell, noise): the excess error with lam / n = n^-ell decays as n^-e, e from
# Cui et al. 2021 (NeurIPS, "Generalization error rates in kernel regression: the crossover from the
# noiseless to noisy regime"), Sec. 3 and Fig. 1: noiseless 2 min(ell, capacity) min(source, 1);
# noisy 2 ell min(source, 1) below the crossover line ell = capacity / (1 + 2 capacity min(source, 1)),
# 1 - ell / capacity above it, 0 for ell > capacity.
REGIMES = [
    (2.0, 0.3, 0.5, 0.0),  # noiseless, lam-limited: 0.3
    (2.0, 0.3, 3.0, 0.0),  # noiseless, sample-limited (the optimal rate 2 capacity r): 1.2
    (1.5, 2.0, 0.5, 0.0),  # noiseless, saturated source: 1.0
    (2.0, 0.3, 0.3, 1.0),  # noisy, below the crossover line: 0.18
    (2.0, 0.3, 1.5, 1.0),  # noisy, above it: 0.25
    (2.0, 0.3, 3.0, 1.0),  # noisy, interpolating: 0
]


def test_krr_decay_exponents_match_cui_2021():
    ns = jnp.logspace(3, 7, 9)
    capacity, source, ell, noise = (jnp.array(c) for c in zip(*REGIMES))

    def curve(a, r, ell, s):
        return jax.vmap(lambda n: hd.solve(hd.KRR(capacity=a, source=r, noise=s, lam=n ** (1 - ell), n=n)))(ns)

    sol = jax.jit(jax.vmap(curve))(capacity, source, ell, noise)
    assert bool(jnp.all(sol.converged))
    fitted = fitted_rate(ns, sol.observables["test_error"])
    expected = [published_rate(a, r, e, s > 0) for a, r, e, s in REGIMES]
    np.testing.assert_allclose(fitted, expected, atol=0.05)
    np.testing.assert_allclose(sol.observables["test_error"], sol.observables["bias"] + sol.observables["variance"])


# The default run checks KRR's decay exponents against Cui et al. 2021 (test_krr_decay_exponents_match_cui_2021).
@pytest.mark.extended
def test_tuned_lam_reproduces_the_optimal_noisy_rate():
    # Noisy, optimally regularised: 2 capacity r / (1 + 2 capacity r) (Cui et al. 2021, Sec. 3).
    capacity, source = 2.0, 0.3
    ns = jnp.logspace(3, 7, 5)
    tuned = jax.jit(jax.vmap(lambda n: hd.tune(
        hd.KRR(capacity=capacity, source=source, noise=1.0, lam=n**0.5, n=n), "test_error", {"lam": "log"}
    )))(ns)
    assert bool(jnp.all(tuned.converged))
    assert float(fitted_rate(ns, tuned.objective)) == pytest.approx(published_rate(capacity, source, None, True), abs=0.05)


def _rf(gamma, alpha, lam, loss, teacher, noise):
    return hd.RandomFeatures(gamma=gamma, alpha=alpha, lam=lam, loss=loss, teacher=teacher, noise=noise)


# The default run simulates the logistic loss on random features in tests/test_rf_calibration.py.
@pytest.mark.parametrize(
    "loss, teacher, noise", [("square", "linear", 0.1), pytest.param("logistic", "sign", 0.0, marks=pytest.mark.extended)]
)
def test_random_features_against_simulation_and_the_double_descent_peak(loss, teacher, noise):
    gammas = [0.5, 1.0, 2.0]
    # One vmapped call: the three gammas at alpha = 1.5, lam = 0.1, then (ridge only) a scan of
    # alpha across gamma = 1 at lam = 1e-4 for the interpolation peak at n = p.
    g = gammas + ([1.0] * 5 if loss == "square" else [])
    a = [1.5] * 3 + ([0.8, 0.9, 1.0, 1.1, 1.25] if loss == "square" else [])
    lam = [0.1] * 3 + ([1e-4] * 5 if loss == "square" else [])
    sol = jax.jit(jax.vmap(lambda g, a, l: hd.solve(_rf(g, a, l, loss, teacher, noise))))(
        jnp.array(g), jnp.array(a), jnp.array(lam)
    )
    assert bool(jnp.all(sol.converged))
    error = np.asarray(sol.observables["test_error"])
    for i, gamma in enumerate(gammas):
        sim = hd.simulate.simulate(_rf(gamma, 1.5, 0.1, loss, teacher, noise), d=300, seeds=3)
        assert abs(sim.mean["test_error"] - error[i]) <= 3 * sim.sem["test_error"], (loss, gamma)
    if loss == "square":
        assert int(np.argmax(error[3:])) == 2  # alpha = gamma: n = p
        assert error[5] > 2 * max(error[3], error[7])


def test_krr_deterministic_equivalent_against_simulation():
    theory = hd.KRR(capacity=1.5, source=0.4, noise=0.2, lam=0.05, n=400.0, modes=2000)
    sol = hd.solve(theory)
    sim = hd.simulate.simulate(theory, seeds=4)
    for key in ("test_error", "bias", "variance"):
        assert abs(sim.mean[key] - float(sol.observables[key])) <= 3 * sim.sem[key], key


def test_gradients_match_finite_differences():
    def rf(x):
        theory = hd.RandomFeatures(gamma=x[0], lam=x[1], noise=x[2], alpha=1.5, loss="square", teacher="linear")
        return hd.solve(theory).observables["test_error"]

    def krr(x):
        return hd.solve(hd.KRR(capacity=x[0], source=x[1], lam=x[2], noise=x[3], n=1e4)).observables["test_error"]

    for f, x in ((rf, jnp.array([0.7, 0.05, 0.2])), (krr, jnp.array([1.8, 0.4, 3.0, 0.5]))):
        # One compiled function gives the value and the forward-mode gradient; the central
        # differences reuse it.
        value_and_grad = jax.jit(lambda x, f=f: (f(x), jax.jacfwd(f)(x)))
        _, grad = value_and_grad(x)
        h = 1e-5 * x
        fd = [(value_and_grad(x.at[i].add(h[i]))[0] - value_and_grad(x.at[i].add(-h[i]))[0]) / (2 * h[i])
              for i in range(x.size)]
        np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_krr_derivatives_in_n_are_finite_in_the_kernel_limit():
    # features = inf (the default) and a finite number of features: reverse-mode derivatives of
    # every observable in n against central differences (the kernel limit gave NaN: inf / inf).
    def observables(n, p):
        return hd.solve(hd.KRR(capacity=1.8, source=0.4, lam=3.0, noise=0.5, n=n, features=p)).observables

    value_and_grad = jax.jit(lambda n, p: (observables(n, p), jax.jacrev(observables)(n, p)))
    for p in (jnp.inf, 3e4):
        n = 1e4
        _, grad = value_and_grad(n, p)
        up, down = value_and_grad(n * (1 + 1e-5), p)[0], value_and_grad(n * (1 - 1e-5), p)[0]
        for key, g in grad.items():
            fd = (up[key] - down[key]) / (2e-5 * n)
            assert np.isfinite(float(g)), (key, p)
            np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-12, err_msg=f"{key}, features={p}")


def test_random_features_at_the_interpolation_peak_are_reported_diverged():
    # lam = 0 and p = n: the test error is infinite (the double-descent peak), so no converged
    # value exists; around it the error is finite and grows as p -> n from either side.
    ratios = jnp.array([0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1])
    sol = jax.jit(jax.vmap(lambda r: hd.solve(hd.KRR(lam=0.0, noise=0.1, n=1000.0, features=1000.0 * r))))(ratios)
    peak = 3
    assert int(sol.status[peak]) == hd.Status.DIVERGED and not bool(sol.converged[peak])
    others = np.delete(np.arange(len(ratios)), peak)
    assert np.all(np.asarray(sol.converged)[others])
    error = np.asarray(sol.observables["test_error"])
    assert np.all(np.diff(error[:peak]) > 0) and np.all(np.diff(error[peak + 1 :]) < 0)
    assert error[peak - 1] > 50 * error[0] and error[peak + 1] > 50 * error[-1]


def test_command_line(capsys):
    import json

    assert main(["eval", "krr", "capacity=2", "source=0.3", "noise=0.5", "lam=10", "n=10000", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["converged"] and record["test_error"] == pytest.approx(record["bias"] + record["variance"])
    assert main(["eval", "random-features", "gamma=-1"]) == 2
    assert "'gamma'" in capsys.readouterr().err
    assert main(["eval", "random-features", "activation=softsign"]) == 2
    assert "'activation'" in capsys.readouterr().err
    assert main(["eval", "krr", "capacity=0.5"]) == 2
