"""Calibration of logistic classifiers: the logistic teacher, calibration metrics, temperatures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import kernels

METRICS = ("confidence", "ece", "test_nll", "brier", "test_error_total")


def test_logistic_channel_against_monte_carlo():
    channel = kernels.Logit(0.5)
    n, m, q, rho = 1_000_000, 0.6, 0.9, 1.0

    @jax.jit  # one program, not a hundred op by op
    def theory():
        total = channel.partition(1.0, 0.3, 0.7) + channel.partition(-1.0, 0.3, 0.7)
        slope = jax.grad(lambda o: channel.partition(1.0, o, 0.7))(0.3), channel.dpartition(1.0, 0.3, 0.7)
        return total, slope, channel.test_errors(m, q, rho)

    total, (slope, dpartition), (excess, total_error) = theory()
    np.testing.assert_allclose(total, 1.0, atol=1e-14)
    np.testing.assert_allclose(slope, dpartition, rtol=1e-12)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(n)
    omega = m * z + np.sqrt(q - m**2) * rng.standard_normal(n)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-z / 0.5)), 1, -1)
    tol = 4 * np.sqrt(0.25 / n)
    assert abs(float(excess) - np.mean(np.sign(omega) != np.sign(z))) < tol
    assert abs(float(total_error) - np.mean(np.sign(omega) != y)) < tol


# The default run checks the logistic channel against Monte Carlo and the model against simulations.
@pytest.mark.extended
def test_zero_temperature_logistic_teacher_is_the_sign_teacher():
    logit, sign = hd.ERM(alpha=2.0, teacher="logistic"), hd.ERM(alpha=2.0, teacher="sign")
    a, b = hd.solve(logit).observables, hd.solve(sign).observables
    for key in ("m", "q", "V", "test_error_total", "ece", "test_nll"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, err_msg=key)


@pytest.fixture(scope="module")
def settings():
    """Logistic regression on a logistic teacher at alpha = 1: nearly unregularised and regularised."""
    out = {}
    for lam in (1e-3, 0.3):
        theory = hd.ERM(alpha=1.0, lam=lam, teacher="logistic", noise=0.5)
        out[lam] = theory, hd.solve(theory), hd.simulate.simulate(theory, d=1000, seeds=4)
    return out


@pytest.mark.parametrize("lam", [1e-3, 0.3])
def test_calibration_metrics_against_simulation(settings, lam):
    _, solution, sim = settings[lam]
    assert bool(solution.converged)
    for name in METRICS:
        # Four standard errors over the seeds, plus 1% for the O(1/sqrt(d)) finite-size bias (the
        # near-interpolating lam = 1e-3 is the slowest to converge in d).
        tol = 4 * sim.sem[name] + 0.01 * abs(sim.mean[name])
        assert abs(float(solution.observables[name]) - sim.mean[name]) <= tol, (name, lam)


def test_calibration_curve_against_binned_simulation(settings):
    from hdtheory.simulate.erm import CALIBRATION_BINS

    for lam in (1e-3, 0.3):
        theory, solution, sim = settings[lam]
        centres = 0.5 * (CALIBRATION_BINS[1:] + CALIBRATION_BINS[:-1])
        predicted = np.asarray(theory.calibration_curve(solution.state, jnp.asarray(centres)))
        measured, sem = sim.mean["calibration_curve"], sim.sem["calibration_curve"]
        # The last bin, [0.975, 1], spans logits up to infinity, where the curve is not its centre's.
        filled = np.isfinite(sem) & (sem > 0) & (np.arange(len(centres)) < len(centres) - 1)
        assert filled.sum() >= 5
        # Four standard errors over the seeds, plus the curve's change across half a bin (0.0125 in
        # confidence) that the bin average smooths over.
        slope = np.abs(np.gradient(predicted, centres))
        tol = 4 * sem[filled] + 0.0125 * slope[filled] + 0.005
        assert np.all(np.abs(predicted[filled] - measured[filled]) <= tol), (lam, predicted, measured)


def test_scarce_data_make_unregularised_logistic_regression_overconfident(settings):
    # Clarté, Loureiro, Krzakala, Zdeborová 2022, "Theoretical characterization of uncertainty in
    # high-dimensional linear classification": without regularisation, logistic regression is
    # overconfident at small alpha; regularisation or temperature scaling repairs it. Here alpha = 1.
    _, unregularised, sim = settings[1e-3]
    accuracy = 1 - float(unregularised.observables["test_error_total"])
    assert float(unregularised.observables["confidence"]) - accuracy > 0.2
    assert sim.mean["confidence"] - (1 - sim.mean["test_error_total"]) > 0.2
    _, regularised, _ = settings[0.3]
    assert float(regularised.observables["ece"]) < 0.1 * float(unregularised.observables["ece"])


def test_temperature_scaling_by_gradient_against_a_dense_search_and_validation(settings):
    theory, solution, sim = settings[1e-3]
    tuned = hd.tune(theory, "test_nll", {"temperature": "log"})
    assert bool(tuned.converged)
    T = float(tuned.params["temperature"])
    # The observable computed by a root find on the NLL's derivative agrees with the optimiser.
    np.testing.assert_allclose(solution.observables["optimal_temperature"], T, rtol=1e-6)
    grid = jnp.logspace(0, 2, 2001)
    nll = jax.vmap(
        lambda t: kernels.calibration_metrics(theory.channel, solution.state.m, solution.state.q, theory.rho, t)["nll"]
    )(grid)
    assert abs(np.log(T / float(grid[jnp.argmin(nll)]))) <= np.log(grid[1] / grid[0])
    # The temperature a user fits on a validation set of n samples, averaged over seeds.
    assert abs(T - sim.mean["temperature_validation"]) <= 4 * sim.sem["temperature_validation"] + 0.05 * T
    # Temperature scaling repairs the calibration. (The theory at T rebuilt from Python floats: its
    # fields weakly typed as the other theories' here, so the solve compiled for them is reused;
    # tuned.theory holds T as a strongly typed array, another compiled program.)
    scaled = hd.solve(hd.ERM(alpha=1.0, lam=1e-3, teacher="logistic", noise=0.5, temperature=T)).observables
    assert float(scaled["ece"]) < 0.2 * float(solution.observables["ece"])


def test_expectation_consistency(settings):
    _, solution, sim = settings[1e-3]
    T = float(solution.observables["ec_temperature"])  # a Python float: the compiled solve is reused
    at_T = hd.solve(hd.ERM(alpha=1.0, lam=1e-3, teacher="logistic", noise=0.5, temperature=T)).observables
    np.testing.assert_allclose(at_T["confidence"], 1 - at_T["test_error_total"], atol=1e-10)
    tol = 4 * sim.sem["ec_temperature_validation"] + 0.05 * T
    assert abs(T - sim.mean["ec_temperature_validation"]) <= tol
    # Its derivative with respect to the sample ratio, by the implicit function theorem.
    def ec(alpha):
        return hd.solve(hd.ERM(alpha=alpha, lam=1e-3, teacher="logistic", noise=0.5)).observables["ec_temperature"]

    eps = 1e-5
    np.testing.assert_allclose(jax.grad(ec)(1.0), (ec(1.0 + eps) - ec(1.0 - eps)) / (2 * eps), rtol=1e-5)


def test_bayes_optimal_calibration_against_monte_carlo():
    channel, q, rho = kernels.Logit(0.5), 0.6, 1.0
    bayes = kernels.bayes_calibration(channel, q, rho)
    rng = np.random.default_rng(2)
    n = 1_000_000
    omega = np.sqrt(q) * rng.standard_normal(n)
    z = omega + np.sqrt(rho - q) * rng.standard_normal(n)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-z / 0.5)), 1.0, -1.0)
    up = np.asarray(channel.partition(1.0, jnp.asarray(omega), rho - q))
    p_y = np.where(y > 0, up, 1 - up)
    for name, samples in (
        ("accuracy", (np.where(up >= 0.5, 1.0, -1.0) == y)),
        ("confidence", np.maximum(up, 1 - up)),
        ("nll", -np.log(p_y)),
        ("brier", (up - (y > 0)) ** 2),
    ):
        assert abs(float(bayes[name]) - samples.mean()) < 4 * samples.std() / np.sqrt(n), name
    # Calibrated: the mean confidence is the accuracy.
    np.testing.assert_allclose(bayes["confidence"], bayes["accuracy"], rtol=1e-12)


def test_gradients_of_calibration_metrics_match_finite_differences():
    def metrics(alpha, lam, temperature):
        theory = hd.ERM(alpha=alpha, lam=lam, temperature=temperature, teacher="logistic", noise=0.5)
        obs = hd.solve(theory).observables
        return jnp.stack([obs[k] for k in ("ece", "test_nll", "brier", "confidence", "optimal_temperature")])

    point = (1.5, 0.05, 1.3)
    jacobian = jax.jacfwd(metrics, argnums=(0, 1, 2))(*point)
    for i, eps in enumerate((1e-5, 1e-6, 1e-5)):
        plus = list(point)
        minus = list(point)
        plus[i] += eps
        minus[i] -= eps
        fd = (metrics(*plus) - metrics(*minus)) / (2 * eps)
        np.testing.assert_allclose(jacobian[i], fd, rtol=1e-4, atol=1e-8)


def test_command_line_reports_calibration_and_the_optimal_temperature(capsys):
    import json

    from hdtheory import cli

    # In this process (the command's output, not its process boundary, is checked here): the solve
    # is the program compiled for the theories above, not a fresh one.
    assert cli.main(["eval", "erm", "loss=logistic", "teacher=logistic", "alpha=2", "lam=0.1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for key in ("ece", "test_nll", "brier", "confidence", "optimal_temperature", "ec_temperature"):
        assert np.isfinite(record[key]), key
    assert record["converged"] is True


# The default run checks the Bayes-optimal calibration kernel against Monte Carlo.
@pytest.mark.extended
def test_bayes_optimal_reference_from_the_bayes_glm_fixed_point():
    # The Bayes-optimal overlap of the same teacher (Gaussian prior of variance rho = 1): its
    # accuracy from the calibration kernel equals the model's own generalisation error, and no
    # regularisation or temperature takes logistic regression below its NLL and Brier score.
    bayes = hd.solve(hd.BayesGLM(alpha=2.0, prior="gaussian", channel="logistic", noise=0.5))
    reference = kernels.bayes_calibration(kernels.Logit(0.5), bayes.state, 1.0)
    np.testing.assert_allclose(reference["accuracy"], 1 - bayes.observables["gen_error_total"], rtol=1e-6)
    for lam in (0.01, 0.1, 1.0):
        erm = hd.solve(hd.ERM(alpha=2.0, lam=lam, teacher="logistic", noise=0.5)).observables
        # The temperature as a Python float: the compiled solve is reused.
        scaled = hd.solve(
            hd.ERM(alpha=2.0, lam=lam, teacher="logistic", noise=0.5, temperature=float(erm["optimal_temperature"]))
        ).observables
        assert float(scaled["test_nll"]) >= float(reference["nll"])
        assert float(scaled["brier"]) >= float(reference["brier"])
        assert 1 - float(erm["test_error_total"]) <= float(reference["accuracy"])
