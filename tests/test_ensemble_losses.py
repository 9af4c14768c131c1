"""Ensembles of random-features learners with the kinked convex losses (hinge, Huber, absolute):
one learner is the GCM, identical features give perfectly correlated learners, two learners against
simulation, a gradient in lam and the command line."""

import json

import jax
import numpy as np
import pytest

import hdtheory
from hdtheory import ERM, GCM, ParameterError, RandomFeatureEnsemble, cli
from hdtheory.models.ensemble import EnsembleGCM
from hdtheory.simulate import simulate

SETTINGS = {
    "hinge": dict(loss="hinge", teacher="sign", noise=0.05),
    "huber": dict(loss="huber", teacher="linear", noise=0.5, delta=0.5),
    "absolute": dict(loss="absolute", teacher="linear", noise=0.5),
}


# The default run checks the hinge loss; the Huber and absolute losses go through the same ensemble
# path, their two-learner integrals checked against nested quad in test_resample_losses.
@pytest.fixture(scope="module", params=[name if name == "hinge" else pytest.param(name, marks=pytest.mark.extended)
                                        for name in sorted(SETTINGS)])
def solved(request):
    theory = RandomFeatureEnsemble(alpha=2.0, gamma=1.5, lam=0.1, M=2.0, **SETTINGS[request.param])
    return request.param, theory, hdtheory.solve(theory)


def test_one_learner_is_the_gcm(solved):
    # Each learner on its own is random-features' GCM, solved separately; M = 1 is its error.
    _, theory, sol = solved
    assert sol.converged
    alone = hdtheory.solve(theory.learners[0])
    for key in ("m", "q", "V", "test_error"):
        np.testing.assert_allclose(float(sol.observables[key]), float(alone.observables[key]), rtol=1e-9)
    # The bias and variances add up to the squared error against the teacher's field.
    out = sol.observables
    parts = sum(out[k] for k in ("bias", "variance_data", "variance_features", "variance_noise"))
    np.testing.assert_allclose(float(parts), float(theory.rho - 2 * out["m"] + out["q"]), rtol=1e-10)
    at_one = hdtheory.solve(eqx_replace(theory, M=1.0)).observables
    np.testing.assert_allclose(float(at_one["ensemble_error"]), float(alone.observables["test_error"]), rtol=1e-9)


def eqx_replace(theory, **changes):
    import dataclasses

    return dataclasses.replace(theory, **changes)


def test_absolute_gcm_with_isotropic_features_is_erm():
    # The absolute loss, newly offered by the GCM: one mode of variance one carrying the whole
    # teacher is ERM on isotropic data.
    kw = dict(alpha=1.5, lam=0.2, rho=1.0, noise=0.3, loss="absolute", teacher="linear")
    gcm = hdtheory.solve(GCM(omega=[1.0], theta2=[1.0], **kw)).observables
    erm = hdtheory.solve(ERM(**kw)).observables
    for key in ("m", "q", "V", "test_error"):
        np.testing.assert_allclose(float(gcm[key]), float(erm[key]), rtol=1e-9)


# The default run checks the same path with the hinge loss.
@pytest.mark.parametrize("name", ["hinge", pytest.param("huber", marks=pytest.mark.extended)])
def test_identical_features_are_perfectly_correlated(name):
    # Omega_ab = Omega_a = Omega_b and t_a = t_b: the two learners are one estimator, q_ab = q.
    rng = np.random.default_rng(0)
    p = 40
    A = rng.standard_normal((p, p)) / np.sqrt(p)
    Omega = A @ A.T + 0.5 * np.eye(p)
    t = Omega @ rng.standard_normal(p) / np.sqrt(p) / 2
    rho = float(t @ np.linalg.solve(Omega, t)) * 1.5
    theory = EnsembleGCM.from_matrices(Omega, Omega, Omega, t, t, rho, alpha=2.0, lam=0.1, bias_variance="off", **SETTINGS[name])
    out = hdtheory.solve(theory)
    assert out.converged
    np.testing.assert_allclose(float(out.observables["correlation"]), 1.0, atol=1e-8)


def test_two_learners_against_simulation(solved):
    # Two learners with their own erf features per data set at d = 150 (p = 225, n = 300), four
    # seeds; the errors are exact for the fitted weights. Tolerance: four standard errors over the
    # seeds plus 6% for the O(1 / d) finite-size bias (as the ridge and logistic checks).
    name, theory, sol = solved
    sim = simulate(theory, d=150, seeds=4, learners=2, decompose=False)
    for key in ("m", "q", "q_ab", "correlation", "ensemble_error"):
        value = float(sol.observables[key])
        assert abs(sim.mean[key] - value) < 4 * sim.sem[key] + 0.06 * abs(value), (name, key, value, sim.mean[key], sim.sem[key])


def test_gradient_in_lam():
    def error(lam):
        theory = RandomFeatureEnsemble(alpha=2.0, gamma=1.5, lam=lam, M=2.0, bias_variance="off", **SETTINGS["hinge"])
        return hdtheory.solve(theory).observables["ensemble_error"]

    value_and_grad = jax.jit(jax.value_and_grad(error))
    grad = float(value_and_grad(0.1)[1])
    h = 1e-5
    fd = (float(value_and_grad(0.1 + h)[0]) - float(value_and_grad(0.1 - h)[0])) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd)), (grad, fd)


def test_refused_loss_and_command_line(capsys):
    with pytest.raises(ParameterError, match="'loss' must not be 'tukey': a non-convex loss"):
        RandomFeatureEnsemble(loss="tukey")
    args = ["eval", "ensemble", "loss=hinge", "teacher=sign", "noise=0.05", "alpha=2", "gamma=1.5", "M=inf"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and 0 < out["correlation"] < 1
    assert out["ensemble_error_inf"] < out["test_error"]
