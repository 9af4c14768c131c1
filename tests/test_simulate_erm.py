"""The ERM replica theory against finite-d simulations (hdtheory.simulate)."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import optimize, stats  # noqa: E402

import hdtheory  # noqa: E402
from hdtheory.simulate import SimulationResult, bucket, erm, simulate  # noqa: E402

D = 1000

# (theory parameters, seeds). Four seeds where a fit costs a d x d Hessian per Newton step (or a
# LinearSVC solve); more where it is cheap, since a standard error from few seeds is itself noisy.
CASES = {
    "logistic-alpha2-lam0.1": (dict(alpha=2.0, lam=0.1, loss="logistic", teacher="sign"), 4),
    "logistic-alpha1-lam1": (dict(alpha=1.0, lam=1.0, loss="logistic", teacher="sign"), 6),
    "hinge-alpha2-lam0.1": (dict(alpha=2.0, lam=0.1, loss="hinge", teacher="sign"), 4),
    "huber-alpha2-lam0.1": (
        dict(alpha=2.0, lam=0.1, loss="huber", teacher="linear", noise=0.5, delta=1.0),
        4,
    ),
    "square-alpha0.5-lam0.1": (
        dict(alpha=0.5, lam=0.1, loss="square", teacher="linear", noise=0.25),
        8,
    ),
}


# The default run compares the theory with the simulation for the logistic loss (classification) and
# the square loss (regression); test_svm_scaling and test_padded_rows_change_nothing check the hinge's
# and the huber's fits.
EXTENDED = {"logistic-alpha1-lam1", "hinge-alpha2-lam0.1", "huber-alpha2-lam0.1"}


@pytest.fixture(scope="module", params=[
    pytest.param(name, id=name, marks=pytest.mark.extended) if name in EXTENDED else pytest.param(name, id=name)
    for name in CASES
])
def case(request):
    parameters, seeds = CASES[request.param]
    theory = hdtheory.ERM(**parameters)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    theory_values = {k: float(v) for k, v in solution.observables.items()}
    return theory, theory_values, simulate(theory, d=D, seeds=seeds)


def test_result_layout(case):
    theory, theory_values, result = case
    seeds = result.seeds
    assert isinstance(result, SimulationResult)
    expected = set(theory_values) - {"V", "mhat", "qhat", "Vhat", "at_stability"} | {"test_error_empirical"}
    if theory.channel.classification:  # a temperature is fitted on validation data instead
        expected -= {"ec_temperature", "optimal_temperature"}
        expected |= {"temperature_validation", "ec_temperature_validation", "calibration_curve"}
    assert set(result.mean) == set(result.sem) == set(result.samples) == expected
    assert (result.d, result.n) == (D, round(float(theory.alpha) * D))
    scalars = {k: v for k, v in result.samples.items() if k != "calibration_curve"}
    assert all(v.shape == (seeds,) and np.all(np.isfinite(v)) for v in scalars.values())
    np.testing.assert_allclose(result.samples["norm"] ** 2, result.samples["q"], rtol=1e-12)


@pytest.mark.parametrize("name", ["m", "q", "test_error", "train_loss"])
def test_theory_matches_simulation(case, name):
    # The seed average differs from the d -> infinity value by sampling noise and by a finite-size
    # bias. Noise: the standard error is estimated from a few seeds, so "3 standard errors" is the
    # Student-t quantile (two-sided 99%) for seeds - 1 degrees of freedom: 5.8 for 4 seeds, 3.5 for
    # 8 (with a plain 3, a 4-seed test fails by chance a few per cent of the time per comparison).
    # Bias: O(1/d), a few 1e-3 relative at d = 1000 (12-seed runs agree with the theory to within
    # their noise, below 1% for m, q and test_error); 1% of the value covers it.
    _, theory_values, result = case
    expected, got, sem = theory_values[name], result.mean[name], result.sem[name]
    critical = stats.t.ppf(0.995, result.seeds - 1)
    assert abs(got - expected) <= critical * sem + 0.01 * abs(expected), (name, expected, got, sem)


def test_empirical_test_error(case):
    # Given the fitted w, the held-out estimate differs from the exact population error only by
    # test-set sampling noise: binomial for the 0-1 error; for the mse, (omega - z)^2 with
    # omega - z ~ N(0, e) has variance 2 e^2. 4 standard deviations per seed (a two-sided
    # false-alarm rate of 6e-5 per comparison).
    theory, _, result = case
    n_test = max(result.n, 10_000)
    exact, empirical = result.samples["test_error"], result.samples["test_error_empirical"]
    if theory.channel.classification:
        sigma = np.sqrt(exact * (1 - exact) / n_test)
    else:
        sigma = np.sqrt(2 / n_test) * exact
    assert np.all(np.abs(empirical - exact) <= 4 * sigma), (exact, empirical, sigma)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_unregularised_classification_raises(loss):
    # With label noise the theory admits lam = 0 (the data are not separable for alpha large
    # enough); the simulation does not, since a finite instance may be separable.
    theory = hdtheory.ERM(alpha=2.0, lam=0.0, loss=loss, teacher="sign", noise=0.2)
    with pytest.raises(ValueError, match="separable"):
        simulate(theory, d=50, seeds=1)


def test_unregistered_theory_raises():
    with pytest.raises(NotImplementedError):
        simulate(object())


def test_svm_scaling():
    # LinearSVC minimises |w|^2 / 2 + C sum_i hinge(y_i w.f_i); with f_i = x_i / sqrt(d) and
    # C = 1 / lam that is the ERM objective sum_i hinge(y_i, w.x_i / sqrt(d)) + (lam / 2) |w|^2
    # divided by lam. Check against that objective's dual, solved independently: maximise
    # sum_i a_i - |sum_i a_i y_i f_i|^2 / (2 lam) over 0 <= a_i <= 1, w = sum_i a_i y_i f_i / lam
    # (a C off by 1% moves w by about 1e-2).
    rng = np.random.default_rng(0)
    d, n, lam = 40, 80, 0.3
    X = rng.standard_normal((n, d))
    y = np.where(rng.random(n) < 0.1, -1.0, 1.0) * np.sign(X @ rng.standard_normal(d))
    F = y[:, None] * X / np.sqrt(d)

    def negative_dual(a):
        v = F.T @ a
        return v @ v / (2 * lam) - a.sum(), F @ v / lam - 1

    options = dict(ftol=1e-15, gtol=1e-12, maxiter=10_000)
    dual = optimize.minimize(
        negative_dual, np.full(n, 0.5), jac=True, method="L-BFGS-B", bounds=[(0, 1)] * n,
        options=options,
    )
    w_dual = F.T @ dual.x / lam
    np.testing.assert_allclose(erm._svm(X, y, lam), w_dual, atol=1e-5 * np.max(np.abs(w_dual)))


def test_alphas_of_one_bucket_compile_nothing_new(caplog):
    # n = 100 and 103 are both held in 104 rows (sizes round up to eight per octave), and their
    # fits and observables share the compiled programs: the second simulation compiles nothing.
    # n = 110 (112 rows) compiles its own, which shows that the log would see a compilation.
    assert [bucket(n) for n in (100, 103, 104, 105, 110, 1000, 1024, 1025)] == [
        104, 104, 104, 112, 112, 1024, 1024, 1152,
    ]
    def theory(alpha):
        return hdtheory.ERM(alpha=alpha, loss="logistic", teacher="sign", lam=0.1)

    simulate(theory(1.0), d=100, seeds=1)

    def compiles(alpha):
        caplog.clear()
        with jax.log_compiles(), caplog.at_level("WARNING"):
            result = simulate(theory(alpha), d=100, seeds=1)
        assert result.n == round(alpha * 100)
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]

    assert compiles(1.03) == []
    assert compiles(1.1)


@pytest.mark.parametrize("loss", ["logistic", "huber", "square"])
def test_padded_rows_change_nothing(loss):
    # The fits and the training loss on n samples held in bucket(n) rows (the extra ones zero and
    # weighted out) are those on the n samples alone, to rounding (n = 70 in 72 rows).
    theory = hdtheory.ERM(alpha=1.4, lam=0.1, loss=loss, teacher="sign")
    w_star = erm._teacher(theory, jax.random.PRNGKey(0), 50)
    X, y, weight = erm._draw_like(theory, jax.random.PRNGKey(1), w_star, 70)
    assert X.shape[0] == 72 and float(weight.sum()) == 70
    padded = erm._fit(theory, X, y, weight)
    alone = erm._fit(theory, X[:70], y[:70])
    assert float(np.max(np.abs(padded))) > 0.1
    np.testing.assert_allclose(padded, alone, atol=1e-10)
    X_test = jax.random.normal(jax.random.PRNGKey(2), (100, 50))
    ours = erm._observables(theory, padded, w_star, X, y, weight, X_test)["train_loss"]
    theirs = erm._observables(theory, alone, w_star, X[:70], y[:70], np.ones(70), X_test)["train_loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
