"""Calibration of logistic regression on random features against the number of features.

Clarté, Loureiro, Krzakala, Zdeborová 2022, "On double-descent in uncertainty quantification in
overparametrized models" (AISTATS 2023): logistic regression on random features ``erf(F x / sqrt(d))``
of a probit teacher; at small ``lam`` the classifier's overconfidence (its expected calibration
error) peaks at the interpolation threshold in ``p / n``, and regularisation tuned on the test
negative log-likelihood removes the peak. Setting here: ``n = d`` (``alpha = 1``), probit noise 0.1.
"""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOISE = 0.1
# Few nodes of the Marchenko-Pastur rule where the peak's location and height, not the
# fourth digit, are what is checked.
NODES = 16


def theory(gamma, lam, temperature=1.0, nodes=64):
    return hd.RandomFeatures(
        alpha=1.0, gamma=gamma, lam=lam, temperature=temperature, teacher="probit", noise=NOISE, nodes=nodes
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """examples/rf_calibration.py in its quick mode (16 nodes, ten ratios p / n from 0.1 to 5), run
    here rather than by tests/test_examples.py: the solves at lam = 1e-3 and 1e-2 and lam tuned on
    the test error and on the test NLL, one program."""
    spec = importlib.util.spec_from_file_location("rf_calibration", EXAMPLES / "rf_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("rf_calibration") / "rf_calibration.png"
    result = module.main(quick=True, out=str(out))
    assert out.stat().st_size > 0
    return result


@pytest.fixture(scope="module")
def simulated():
    """Theory and simulation (d = 400, three seeds) at lam = 1e-2, below, near and above the peak."""
    ratios = (0.2, 0.45, 2.0)
    solutions = jax.vmap(lambda g: hd.solve(theory(g, 1e-2)))(jnp.array(ratios))
    sims = [hd.simulate.simulate(theory(g, 1e-2), d=400, seeds=3) for g in ratios]
    return ratios, solutions, sims


def test_ece_and_calibration_curve_against_simulation(simulated):
    from hdtheory.simulate.erm import CALIBRATION_BINS

    ratios, solutions, sims = simulated
    assert bool(jnp.all(solutions.converged))
    centres = 0.5 * (CALIBRATION_BINS[1:] + CALIBRATION_BINS[:-1])
    for i, (gamma, sim) in enumerate(zip(ratios, sims)):
        obs = {k: float(v[i]) for k, v in solutions.observables.items()}
        for name in ("ece", "confidence", "test_error", "test_nll"):
            # Four standard errors over the seeds, plus 5% for the O(1 / sqrt(d)) finite-size bias
            # at d = 400 (largest near the peak, where the norm q is measured 10% above its limit).
            tol = 4 * sim.sem[name] + 0.05 * abs(sim.mean[name])
            assert abs(obs[name] - sim.mean[name]) <= tol, (gamma, name, obs[name], sim.mean[name], sim.sem[name])
        state = jax.tree.map(lambda x: x[i], solutions.state)
        predicted = np.asarray(theory(gamma, 1e-2).calibration_curve(state, jnp.asarray(centres)))
        measured, sem = sim.mean["calibration_curve"], sim.sem["calibration_curve"]
        # Bins filled in every seed; not the last one, [0.975, 1], which reaches infinite logits.
        filled = np.isfinite(sem) & (sem > 0) & (np.arange(len(centres)) < len(centres) - 1)
        assert filled.sum() >= 5
        # Four standard errors, the curve's change across half a bin (the bin average smooths over
        # it) and 0.02 for the finite-size bias of the fields' law.
        slope = np.abs(np.gradient(predicted, centres))
        tol = 4 * sem[filled] + 0.0125 * slope[filled] + 0.02
        assert np.all(np.abs(predicted[filled] - measured[filled]) <= tol), (gamma, predicted, measured)
        # Overconfident in every filled bin, in theory and in the simulation.
        assert np.all(predicted[filled] < centres[filled])


# The default run checks the ECE and the calibration curve against simulations, and their gradients.
@pytest.mark.extended
def test_ece_peaks_at_the_interpolation_threshold_and_tuned_lam_removes_it(example):
    # Clarté et al. 2022, the calibration against p / n of their random-features classifiers: at
    # small lam the ECE has a peak at the interpolation threshold (for the logistic loss, where the
    # training data become linearly separable in the features, p / n below Cover's 1/2 for labels
    # correlated with the features; the norm of the estimator is largest there), and lam tuned on
    # the negative log-likelihood leaves a well-calibrated classifier at every p / n.
    ratios, solutions, tuned = example["ratios"], example["theory"], example["tuned"]
    plain, nll = solutions["lam = 0.001"], solutions["NLL-optimal lam"]
    assert bool(jnp.all(plain.converged)) and bool(jnp.all(tuned["NLL-optimal lam"]))
    ece = np.asarray(plain.observables["ece"])
    peak = int(np.argmax(ece))
    assert 0.3 <= ratios[peak] <= 0.6, ratios[peak]
    assert ratios[int(np.argmax(np.asarray(plain.observables["q"])))] == ratios[peak]
    assert ece[peak] > 1.5 * ece[0] and ece[peak] > 1.5 * ece[-1]  # a peak, not a monotone curve
    tuned_ece = np.asarray(nll.observables["ece"])
    assert np.all(tuned_ece < 0.1 * ece[peak])
    # Tuning on the NLL does not cost accuracy: within 1% of the small-lam test error or better.
    assert np.all(np.asarray(nll.observables["test_error"]) <= 1.01 * np.asarray(plain.observables["test_error"]))


@pytest.mark.extended
def test_error_optimal_lam_and_temperature_scaling(example):
    """lam tuned on the test error errs no more than any other lam of the example (to the tune's
    tolerance, 1e-8 relative here); scaling the logits by a temperature moves no decision, so the
    scaled classifier's test error is the unscaled one's, to rounding."""
    solutions, tuned = example["theory"], example["tuned"]
    best = solutions["error-optimal lam"]
    assert bool(jnp.all(tuned["error-optimal lam"])) and bool(jnp.all(best.converged))
    error = np.asarray(best.observables["test_error"])
    for label in ("lam = 0.001", "lam = 0.01", "NLL-optimal lam"):
        assert np.all(error <= np.asarray(solutions[label].observables["test_error"]) * (1 + 1e-8)), label
    scaled = solutions["error-optimal lam, T-scaled"].observables
    np.testing.assert_allclose(scaled["test_error"], error, rtol=1e-12)


def test_gradients_of_ece_in_lam_and_temperature_match_finite_differences():
    def metrics(x):
        obs = hd.solve(theory(0.8, x[0], x[1], nodes=NODES)).observables
        return jnp.stack([obs["ece"], obs["test_nll"], obs["confidence"]])

    point, eps = jnp.array([0.05, 1.3]), jnp.array([1e-6, 1e-5])
    steps = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) * eps
    # One program: the Jacobian (forward mode through the fixed point) and the four shifted solves.
    jacobian, shifted = jax.jit(lambda x: (jax.jacfwd(metrics)(x), jax.vmap(metrics)(x + steps)))(point)
    fd = jnp.stack([(shifted[0] - shifted[1]) / (2 * eps[0]), (shifted[2] - shifted[3]) / (2 * eps[1])], axis=1)
    np.testing.assert_allclose(jacobian, fd, rtol=1e-5, atol=1e-9)
    assert float(jnp.abs(jacobian[0, 1])) > 1e-3  # the temperature reaches the ECE of random features
