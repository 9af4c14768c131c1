"""Teacher labels on Gaussian-mixture inputs (Pesce, Krzakala, Loureiro and Stephan 2023, "Are Gaussian
data all you need?"): reductions to ERM and the Gaussian covariate model, universality and its
failure, simulation, a gradient, input and the command line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory
from hdtheory import ERM, GCM, Mixture, ParameterError
from hdtheory import cli
from hdtheory.cli import build_theory
from hdtheory.simulate import simulate

TEACHER = dict(labels="teacher")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(K=2, labels="teacher"), "loss"),  # the default cross-entropy has K outputs
        (dict(K=2, labels="teacher", loss="logistic", teacher="linear"), "teacher"),
        (dict(K=2, labels="teacher", loss="logistic", teacher="relu"), "teacher"),
        (dict(K=3, labels="teacher", loss="logistic", teacher_means=(1.0, 0.0)), "teacher_means"),
        (dict(K=2, labels="teacher", loss="logistic", teacher_means=[[1.0, 0.0]]), "teacher_means"),
        (dict(K=2, labels="teacher", loss="logistic", noise=0.5), "noise"),  # a flip probability < 1/2
        (dict(K=2, labels="teacher", loss="square", teacher="linear", noise=-1.0), "noise"),
        (dict(K=2, loss="logistic", teacher_means=(1.0, 0.0)), "teacher_means"),  # cluster labels
        (dict(K=2, loss="logistic", noise=0.1), "noise"),
    ],
)
def test_bad_input_raises_parameter_error(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Mixture(**kwargs)


@pytest.mark.parametrize(
    "loss, teacher, noise",
    [pytest.param("logistic", "sign", 0.05, marks=pytest.mark.extended), ("logistic", "probit", 0.1),
     pytest.param("square", "linear", 0.2, marks=pytest.mark.extended),
     pytest.param("square", "sign", 0.1, marks=pytest.mark.extended)],
)
def test_zero_means_or_an_orthogonal_teacher_is_erm(loss, teacher, noise):
    # Two ways the mixture is the single-Gaussian teacher-student model `ERM` (rho = |theta|^2 / d = 1),
    # whose equations, channel integrals (panels over the teacher's channel, or ERM's closed form
    # of ridge's fixed point for the linear teacher) and test errors (arccos) are its own:
    # (i) means of zero Gram (the alignment a then does not matter); (ii) orthogonal means of
    # snr = 2, unbalanced clusters and a teacher orthogonal to them (a = 0): then M = 0 and the
    # means drop out. To the solver's precision (differences of 2e-11 are seen).
    K, weights = 3, (0.5, 0.3, 0.2)
    zero, eye = np.zeros((K, K)), np.eye(K)
    points = [(2.0, 0.1, zero, (1.0, -1.0, 0.5)), (0.7, 0.05, zero, (0.0, 2.0, 0.0)),
              (2.0, 0.1, eye, (0.0, 0.0, 0.0)), (0.7, 0.05, eye, (0.0, 0.0, 0.0))]
    # And the edges of the domain, where the reference is as well tested (tests/test_fuzz.py): there
    # both sides' panel rules integrate fields of large variance, and agree to 1e-6 (2e-7 is seen
    # for the probit teacher at alpha = 300).
    points += [(a, l, zero, (1.0, 0.0, 0.0)) for a in (0.01, 300.0) for l in (1e-4, 100.0)]
    tolerance = np.array([1e-8] * 4 + [1e-6] * 4)
    alpha, lam, gram, a = (jnp.asarray(np.array(x, float)) for x in zip(*points))
    common = dict(loss=loss, teacher=teacher, noise=noise)

    def mixture(alpha, lam, gram, a):
        theory = Mixture(K=K, alpha=alpha, lam=lam, snr=2.0, weights=weights, gram=gram, teacher_means=a,
                         **TEACHER, **common)
        return hdtheory.solve(theory)

    got = jax.jit(jax.vmap(mixture))(alpha, lam, gram, a)
    want = jax.jit(jax.vmap(lambda alpha, lam: hdtheory.solve(ERM(alpha=alpha, lam=lam, **common))))(alpha, lam)
    assert np.all(got.converged) and np.all(want.converged)
    pairs = [("q_1_1", "q"), ("mt", "m"), ("mt_2", "m"), ("V_1_1", "V"), ("train_loss", "train_loss")]
    if teacher == "linear":
        pairs += [("test_mse_excess", "test_error"), ("test_mse", "test_error_total")]
    else:
        pairs += [("test_error", "test_error"), ("test_error_total", "test_error_total")]
    for ours, theirs in pairs:
        diff = np.abs(np.asarray(got.observables[ours]) - np.asarray(want.observables[theirs]))
        assert np.all(diff < tolerance), (ours, diff)
    assert np.abs(np.asarray(got.observables["m_1_1"])).max() < 1e-9  # the means drop out


# The default run checks this path with the square loss, and the classifier against simulations.
@pytest.mark.parametrize(
    "loss, teacher, noise", [pytest.param("logistic", "sign", 0.0, marks=pytest.mark.extended), ("square", "linear", 0.2)]
)
def test_universality_with_a_common_covariance_and_its_failure(loss, teacher, noise):
    # Pesce et al. 2023: with a teacher orthogonal to the means (a = 0) and one covariance for every
    # cluster, the learning curve is that of the single Gaussian with the mixture's covariance; its
    # K mean directions are K of d modes and carry no teacher weight, so the matched Gaussian is the
    # Gaussian covariate model `GCM` with omega = s, theta2 = s^2 (teacher = student features,
    # theta ~ N(0, I)) and rho = mean(s): equal to the solver's precision (a common covariance
    # written as K equal rows, one compiled program). With per-cluster covariances the matched
    # Gaussian has the rho-weighted spectrum, and the learning curves differ by far more than the
    # solver's tolerance: clouds of variances 0.1, 4 and 1 give a test error of 0.224 against
    # 0.210, a training loss of 0.29 against 0.15, and a test mse of 0.51 against 0.26.
    K, weights = 3, np.array([0.5, 0.3, 0.2])
    s = np.array([0.5, 2.0])
    spectra = np.stack([np.stack([s] * K), np.array([[0.1, 0.1], [4.0, 4.0], [1.0, 1.0]])])
    matched = np.einsum("c,icj->ij", weights, spectra)  # the rho-weighted spectra
    common = dict(loss=loss, teacher=teacher, noise=noise)

    def mixture(spectrum):
        theory = Mixture(K=K, alpha=1.5, lam=0.1, snr=2.0, weights=tuple(weights), spectrum=spectrum,
                         teacher_means=jnp.zeros(K), **TEACHER, **common)
        return hdtheory.solve(theory)

    def gaussian(omega):
        return hdtheory.solve(GCM(alpha=1.5, lam=0.1, omega=omega, theta2=omega**2, rho=jnp.mean(omega), **common))

    got = jax.jit(jax.vmap(mixture))(jnp.asarray(spectra))
    want = jax.jit(jax.vmap(gaussian))(jnp.asarray(matched))
    assert np.all(got.converged) and np.all(want.converged)
    error = "test_mse_excess" if teacher == "linear" else "test_error"
    universal = [(error, "test_error"), ("train_loss", "train_loss"), ("mt_1", "m"), ("mt_3", "m")]
    for ours, theirs in universal:
        assert abs(float(got.observables[ours][0]) - float(want.observables[theirs][0])) < 1e-8, ours
    gap = abs(float(got.observables[error][1]) - float(want.observables["test_error"][1]))
    assert gap > (0.1 if teacher == "linear" else 0.01), gap


# The default run checks this path with the square loss, and the classifier against simulations.
@pytest.mark.parametrize(
    "loss, teacher, noise", [("square", "linear", 0.2), pytest.param("logistic", "sign", 0.0, marks=pytest.mark.extended)]
)
def test_a_teacher_aligned_with_the_means_regression_is_universal_classification_is_not(loss, teacher, noise):
    # Two symmetric balanced clusters, mu_2 = -mu_1 (|mu|^2 / d = snr), teacher theta = c mu + g
    # (a = (c, 0)). The matched Gaussian, x = s mu / sqrt(d) + z with s ~ N(0, 1), has the covariance
    # I + mu mu^T / d: as a Gaussian covariate model, the bulk (omega = 1, theta2 = 1) and one spike
    # mode omega = 1 + snr carrying theta2 = d c^2 (1 + snr)^2 snr, written as a mode of weight
    # eps = 1e-10 with theta2 / eps (the model is exact to O(eps)), rho = 1 + c^2 snr (1 + snr).
    # Pesce et al. 2023: ridge regression of the linear teacher is universal even so (to 1e-8 here);
    # the classifier is not (test errors 0.106 against 0.139).
    snr, c, eps = 2.0, 1.0, 1e-10
    mixture = Mixture(K=2, alpha=1.5, lam=0.1, snr=snr, gram=[[1.0, -1.0], [-1.0, 1.0]], teacher_means=(c, 0.0),
                      loss=loss, teacher=teacher, noise=noise, **TEACHER)
    gaussian = GCM(alpha=1.5, lam=0.1, omega=[1.0, 1 + snr], theta2=[1.0, c**2 * (1 + snr) ** 2 * snr / eps],
                   weights=[1 - eps, eps], rho=1 + c**2 * snr * (1 + snr), loss=loss, teacher=teacher, noise=noise)
    got, want = hdtheory.solve(mixture), hdtheory.solve(gaussian)
    assert bool(got.converged) and bool(want.converged)
    error = "test_mse_excess" if teacher == "linear" else "test_error"
    gaps = [abs(float(got.observables[ours]) - float(want.observables[theirs]))
            for ours, theirs in ((error, "test_error"), ("train_loss", "train_loss"))]
    if teacher == "linear":
        assert max(gaps) < 1e-8, gaps
    else:
        assert min(gaps) > 0.01, gaps


@pytest.mark.parametrize(
    "kwargs",
    [
        # K = 2, an aligned teacher, unbalanced clusters
        dict(K=2, loss="logistic", teacher="sign", teacher_means=(1.0, -0.5), snr=2.0, alpha=2.0, lam=0.1,
             weights=(0.7, 0.3)),
        # K = 3, an orthogonal teacher with label flips, an intercept
        pytest.param(dict(K=3, loss="logistic", teacher="sign", noise=0.05, snr=2.0, alpha=2.0, lam=0.1, intercept=1),
                     marks=pytest.mark.extended),
        # ridge regression, K = 3, an aligned teacher, an intercept
        dict(K=3, loss="square", teacher="linear", noise=0.2, teacher_means=(0.5, 0.0, -0.5), snr=2.0,
             alpha=1.5, lam=0.1, weights=(0.5, 0.3, 0.2), intercept=1),
        # ridge regression, K = 2, per-cluster spectra, an orthogonal teacher
        dict(K=2, loss="square", teacher="linear", noise=0.2, snr=2.0, alpha=1.5, lam=0.1,
             spectrum=[[0.5, 2.0], [2.0, 1.0]]),
        # ridge classification of a noisy sign teacher, aligned, an intercept
        dict(K=2, loss="square", teacher="sign", noise=0.1, teacher_means=(1.0, 0.5), snr=2.0, alpha=2.0,
             lam=0.1, weights=(0.7, 0.3), intercept=1),
        # a probit teacher aligned with two of three means, a common spectrum
        pytest.param(dict(K=3, loss="logistic", teacher="probit", noise=0.3, teacher_means=(0.5, 0.0, 1.0), alpha=2.0,
                          lam=0.05, spectrum=[0.5, 2.0]), marks=pytest.mark.extended),
        # a covariance matrix and mean profiles (the dense equations), an aligned teacher
        dict(K=2, loss="logistic", teacher="sign", teacher_means=(1.0, 0.0), alpha=2.0, lam=0.1,
             covariance=[[0.6, 0.15, 0.14], [0.15, 1.21, 0.46], [0.14, 0.46, 0.55]],
             means=[[1.0, 0.0, 0.5], [-0.5, 1.0, 0.0]]),
    ],
)
def test_teacher_labels_against_simulation(kwargs):
    # d = 600, 4 seeds: within 4 standard errors plus 2% (relative) for the finite-size bias, as in
    # tests/test_mixture.py (the largest deviations seen: 4.6 standard errors, 0.0027, on a test
    # error of 0.219, and 4.5 standard errors, 0.018, on an overlap m_1_2 of -0.009).
    theory = Mixture(**TEACHER, **kwargs)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=600, seeds=4)
    error = "test_mse" if theory.teacher == "linear" else "test_error"
    keys = [error, "train_loss", "m_1_1", "m_1_2", "mt", "mt_1", "mt_2", "q_1_1", "norm"]
    for key in keys + (["b_1"] if theory.intercept else []):
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.02 * (1 + abs(predicted)), (key, predicted, mean, sem)


def test_gradient_in_lam_matches_finite_differences():
    def error(lam):
        theory = Mixture(K=2, loss="logistic", teacher="sign", teacher_means=(1.0, -0.5), alpha=1.5, snr=1.5,
                         lam=lam, weights=(0.7, 0.3), **TEACHER)
        return hdtheory.solve(theory).observables["test_error"]

    lam, h = 0.2, 1e-5
    # One compiled program for the value and the gradient; the differences reuse it.
    both = jax.jit(jax.value_and_grad(error))
    grad = float(both(lam)[1])
    fd = (float(both(lam + h)[0]) - float(both(lam - h)[0])) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd)), (grad, fd)


def test_command_line(capsys):
    theory = build_theory("mixture", ["labels=teacher", "loss=square", "teacher=linear", "noise=0.1",
                                      "K=3", "teacher_means=1,0,-1"])
    assert theory.labels == "teacher" and theory.teacher == "linear"
    np.testing.assert_allclose(np.asarray(theory.teacher_means), [1, 0, -1])
    with pytest.raises(ParameterError, match="teacher_means"):
        build_theory("mixture", ["labels=teacher", "loss=logistic", "K=3", "teacher_means=1,0"])
    args = ["eval", "mixture", "labels=teacher", "teacher=sign", "K=2", "alpha=2", "lam=0.1"]
    assert cli.main([*args, "loss=logistic", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and 0 < out["test_error"] < 0.5
    # The default loss, the cross-entropy, has K outputs: one line on stderr, exit 2.
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "loss" in err and len(err.strip().splitlines()) == 1
