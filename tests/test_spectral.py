"""Spectral methods for single-index models (``hdtheory.models.spectral``): the weak-recovery
thresholds against closed forms and against the linearised state evolutions of ``BayesGLM`` and
``MultiIndex``, the overlap of the top eigenvector against simulations, its derivative against finite
differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate import simulate


def _program(channel, noise=0.0, preprocessing="optimal"):
    """Compiled once per configuration: alphas -> (observables, d overlap / d alpha)."""

    def overlap(alpha):
        theory = hd.Spectral(alpha=alpha, channel=channel, noise=noise, preprocessing=preprocessing)
        return hd.solve(theory).observables["overlap"]

    def one(alpha):
        theory = hd.Spectral(alpha=alpha, channel=channel, noise=noise, preprocessing=preprocessing)
        solution = hd.solve(theory)
        return solution.observables, solution.converged, jax.grad(overlap)(alpha)

    return jax.jit(jax.vmap(one))


@pytest.fixture(scope="module")
def phase_retrieval():
    """Noiseless real phase retrieval, optimal preprocessing, at alpha in {0.4, 0.6, 3, 3 +- h}."""
    alphas = jnp.array([0.4, 0.6, 3.0, 3.0 + 1e-5, 3.0 - 1e-5])
    obs, converged, slope = _program("abs")(alphas)
    assert np.all(converged)
    return {k: np.asarray(v) for k, v in obs.items()}, np.asarray(slope)


def test_phase_retrieval_threshold_is_one_half(phase_retrieval):
    """Mondelli and Montanari 2018 (Found. Comput. Math. 19, 703), noiseless real phase retrieval:
    ``delta_u = 1 / E[(E[G^2 | Y] - 1)^2] = 1 / E[(G^2 - 1)^2] = 1 / 2`` (their ``delta = m / n``,
    our ``alpha``), the weak-recovery threshold of Bayes-optimal AMP (Barbier et al. 2019's
    ``alpha_c = 1/2``), reached by the optimal preprocessing of Luo, Alghamdi and Lu 2019."""
    obs, _ = phase_retrieval
    np.testing.assert_allclose(obs["alpha_spec"], 0.5, rtol=1e-8)
    # Below: no outlier, the top eigenvalue is the bulk edge; just above, a positive overlap.
    assert obs["overlap"][0] == 0.0
    np.testing.assert_allclose(obs["eigenvalue"][0], obs["bulk_edge"][0], rtol=1e-12)
    assert 0 < obs["overlap"][1] < obs["overlap"][2] < 1
    assert obs["eigenvalue"][2] > obs["bulk_edge"][2]


def test_overlap_gradient_matches_finite_differences(phase_retrieval):
    obs, slope = phase_retrieval
    fd = (obs["overlap"][3] - obs["overlap"][4]) / 2e-5
    np.testing.assert_allclose(slope[2], fd, rtol=1e-5)
    assert slope[2] > 0


def test_linear_channel_threshold_closed_form():
    """``y = z + sqrt(noise) xi``, ``rho = 1``: ``z | y ~ N(y / (1 + noise), noise / (1 + noise))``,
    so ``E[G^2 | y] - 1 = (y^2 - (1 + noise)) / (1 + noise)^2`` and, with ``y ~ N(0, 1 + noise)``,
    ``E[(g - 1)^2] = 2 / (1 + noise)^2``: ``alpha_spec = (1 + noise)^2 / 2`` (Mondelli and
    Montanari's ``delta_u``). Defilippis et al. 2025's optimal spectral threshold is the linear
    instability of the trivial fixed point of the state evolution, ``MultiIndex``'s ``alpha_c``
    (its own posterior quadrature), which at ``k = 1`` must be the same number."""
    for noise in (0.0, 0.5):
        expected = (1 + noise) ** 2 / 2
        theory = hd.Spectral(alpha=2.0, channel="linear", noise=noise)
        np.testing.assert_allclose(float(theory.threshold()), expected, rtol=1e-9)
    alpha_c, _ = hd.MultiIndex(k=1, link="sum", noise=0.5).weak_recovery()
    np.testing.assert_allclose(float(alpha_c), 1.125, rtol=1e-6)


def test_optimal_threshold_is_bayes_amp_weak_recovery():
    """Noisy phase retrieval (an even channel, ``E[G | Y] = 0``): the optimal spectral threshold is
    Bayes-optimal AMP's weak-recovery threshold (Mondelli and Montanari 2018, Theorem 1 and 2), the
    ``alpha`` at which ``q = 0`` of ``BayesGLM``'s state evolution turns unstable. With the Gaussian
    prior ``q = qhat / (1 + qhat)``, so the slope at ``q = 0`` is ``qhat(q) / q`` and
    ``alpha_c = q / qhat(q)`` at ``alpha = 1`` as ``q -> 0`` (``q = 1e-9``: a relative error of order
    ``q``); ``BayesGLM`` integrates over ``omega`` by panels, not over the labels at ``omega = 0``."""
    noise, q = 0.2, 1e-9
    spectral = float(hd.Spectral(alpha=1.0, channel="abs", noise=noise).threshold())
    bayes = q / float(hd.BayesGLM(alpha=1.0, channel="abs", noise=noise).conjugate(jnp.asarray(q)))
    np.testing.assert_allclose(spectral, bayes, rtol=1e-5)
    assert 0.5 < spectral < 1.0  # noise raises the threshold above the noiseless 1/2


@pytest.mark.parametrize(
    "channel, noise, alpha",
    [("abs", 0.0, 3.0), ("relu", 0.1, 4.0)],
)
def test_overlap_against_simulation(channel, noise, alpha):
    """The squared cosine of the top eigenvector of ``D`` at ``d = 500`` (4 seeds) against the theory:
    away from the threshold its fluctuations are of order ``d^{-1/2}`` (a standard error of 0.01-0.03
    over the seeds) with a bias of the same order, hence 3 standard errors plus 0.03. The top
    eigenvalue is within 3 standard errors plus 0.05 (its own finite-size shift, the largest
    ``T(y_i)`` in a finite sample)."""
    theory = hd.Spectral(alpha=alpha, channel=channel, noise=noise)
    predicted = hd.solve(theory).observables
    measured = simulate(theory, d=500, seeds=4)
    for key, slack in (("overlap", 0.03), ("eigenvalue", 0.05)):
        gap = abs(measured.mean[key] - float(predicted[key]))
        assert gap <= 3 * measured.sem[key] + slack, (key, measured.mean[key], float(predicted[key]))
    assert float(predicted["overlap"]) > 0.2


def test_sign_labels_carry_no_spectral_signal():
    """``E[G^2 | y] = 1`` for a sign (or probit) label, so no preprocessing makes an outlier: no
    threshold, overlap 0 at any ``alpha``."""
    solution = hd.solve(hd.Spectral(alpha=5.0, channel="sign", noise=0.1))
    assert bool(solution.converged)
    assert math.isinf(float(solution.observables["alpha_spec"]))
    assert float(solution.observables["overlap"]) == 0.0


def test_bad_settings_raise():
    with pytest.raises(hd.ParameterError, match="noise"):
        hd.Spectral(channel="sign", noise=0.5)
    with pytest.raises(hd.ParameterError, match="label_order"):
        hd.Spectral(label_order=2)
    with pytest.raises(hd.ParameterError, match="preprocessing"):
        hd.Spectral(preprocessing="identity")
