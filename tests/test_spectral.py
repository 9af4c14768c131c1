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
    """Compiled once per configuration: alphas -> (observables, d overlap / d alpha). One solve per
    alpha: the solution is the gradient's auxiliary output."""

    def overlap(alpha):
        theory = hd.Spectral(alpha=alpha, channel=channel, noise=noise, preprocessing=preprocessing)
        solution = hd.solve(theory)
        return solution.observables["overlap"], solution

    def one(alpha):
        slope, solution = jax.grad(overlap, has_aux=True)(alpha)
        return solution.observables, solution.converged, slope

    return jax.jit(jax.vmap(one))


@pytest.fixture(scope="module")
def phase_retrieval():
    """Noiseless real phase retrieval, optimal preprocessing, at alpha in {0.4, 0.6, 3, 3 +- h, 2}."""
    alphas = jnp.array([0.4, 0.6, 3.0, 3.0 + 1e-5, 3.0 - 1e-5, 2.0])
    obs, converged, slope = _program("abs")(alphas)
    assert np.all(converged)
    return {k: np.asarray(v) for k, v in obs.items()}, np.asarray(slope), np.asarray(converged)


def test_phase_retrieval_threshold_is_one_half(phase_retrieval):
    """Mondelli and Montanari 2018 (Found. Comput. Math. 19, 703), noiseless real phase retrieval:
    ``delta_u = 1 / E[(E[G^2 | Y] - 1)^2] = 1 / E[(G^2 - 1)^2] = 1 / 2`` (their ``delta = m / n``,
    our ``alpha``), the weak-recovery threshold of Bayes-optimal AMP (Barbier et al. 2019's
    ``alpha_c = 1/2``), reached by the optimal preprocessing of Luo, Alghamdi and Lu 2019."""
    obs, _, _ = phase_retrieval
    np.testing.assert_allclose(obs["alpha_spec"], 0.5, rtol=1e-8)
    # Below: no outlier, the top eigenvalue is the bulk edge; just above, a positive overlap.
    assert obs["overlap"][0] == 0.0
    np.testing.assert_allclose(obs["eigenvalue"][0], obs["bulk_edge"][0], rtol=1e-12)
    assert 0 < obs["overlap"][1] < obs["overlap"][2] < 1
    assert obs["eigenvalue"][2] > obs["bulk_edge"][2]


def test_overlap_gradient_matches_finite_differences(phase_retrieval):
    obs, slope, _ = phase_retrieval
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
    noises = jnp.array([0.0, 0.5])
    thresholds = jax.jit(jax.vmap(lambda noise: hd.Spectral(channel="linear", noise=noise).threshold()))(noises)
    np.testing.assert_allclose(thresholds, (1 + noises) ** 2 / 2, rtol=1e-9)
    # Compiled: op by op it runs as some 180 programs.
    alpha_c, _ = jax.jit(lambda: hd.MultiIndex(k=1, link="sum", noise=0.5).weak_recovery())()
    np.testing.assert_allclose(float(alpha_c), 1.125, rtol=1e-6)


# The default run checks the optimal threshold against closed forms (phase retrieval, the linear channel).
@pytest.mark.extended
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


@jax.jit
def _trimmed(caps):
    """Phase retrieval with ``T(y) = min(y^2, cap)``: per cap, ``alpha_spec`` and the overlaps at
    ``alpha_spec (1 -+ 1e-3)`` and at ``alpha = 2``."""

    def one(cap):
        threshold = hd.Spectral(channel="abs", preprocessing="trimmed", cap=cap).threshold()
        alphas = jnp.stack([threshold * (1 - 1e-3), threshold * (1 + 1e-3), jnp.asarray(2.0)])
        theory = lambda a: hd.Spectral(alpha=a, channel="abs", preprocessing="trimmed", cap=cap)
        return threshold, jax.vmap(lambda a: hd.solve(theory(a)).observables["overlap"])(alphas)

    return jax.vmap(one)(caps)


def test_trimmed_threshold_and_optimality(phase_retrieval):
    """For the capped ``y^2`` the threshold is a root of the equations (no closed form): the overlap
    must vanish just below it and be small and positive just above. Every such preprocessing has a
    higher threshold and a smaller overlap than the optimal one (Luo, Alghamdi and Lu 2019: ``T*``
    maximises the overlap at every ``alpha``; Mondelli and Montanari 2018: no preprocessing has a
    threshold below ``delta_u = 1/2``)."""
    obs, _, _ = phase_retrieval
    thresholds, overlaps = (np.asarray(a) for a in _trimmed(jnp.array([1.0, 2.0, 4.0, 8.0])))
    assert np.all(thresholds > 0.5) and np.all(np.isfinite(thresholds))
    assert np.all(overlaps[:, 0] == 0.0)
    assert np.all((overlaps[:, 1] > 0) & (overlaps[:, 1] < 0.05))
    assert np.all(overlaps[:, 2] < obs["overlap"][5])


def test_custom_preprocessing(phase_retrieval):
    """A preprocessing given as a function: ``1 - 1/g`` is the optimal one. ``(g - 1) / (g + c)``,
    ``c > 0`` (supremum ``tau = 1``, not attained): ``Z / (1 - Z) = (g - 1) / (1 + c)``, so at
    ``lambda = tau`` the spike equation gives ``alpha = (1 + c) / E[(g - 1)^2] = (1 + c) / 2`` for
    phase retrieval, above the optimal ``1/2`` (Mondelli and Montanari 2018: none is below), and, by
    Luo, Alghamdi and Lu's optimality, a smaller overlap."""
    obs, _, _ = phase_retrieval

    def program(fn):
        """One compiled program per preprocessing: the overlap, the threshold and ``converged`` at ``(alpha, sup)``."""

        def at(a, s):
            theory = hd.Spectral(alpha=a, channel="abs", preprocessing="custom", preprocessing_fn=fn, sup=s)
            solution = hd.solve(theory)
            return solution.observables["overlap"], theory.threshold(), solution.converged

        return jax.jit(at)

    same, _, _ = program(lambda y, g: 1 - 1 / g)(2.0, 1.0)
    np.testing.assert_allclose(float(same), obs["overlap"][5], rtol=1e-10)

    def shifted_fn(y, g):
        return (g - 1) / (g + 0.5)

    shifted = program(shifted_fn)
    overlap, threshold, converged = shifted(2.0, 1.0)
    assert bool(converged) and 0 < float(overlap) < obs["overlap"][5] - 1e-3
    np.testing.assert_allclose(float(threshold), 0.75, rtol=1e-6)
    with pytest.raises(hd.ParameterError, match="preprocessing_fn"):
        hd.Spectral(preprocessing="custom")
    # A sup below T's values would put lambda - T(y) negative for some labels: refused when built,
    # not converged inside a trace.
    with pytest.raises(hd.ParameterError, match="'sup' must be at least .* above sup = 0.5"):
        hd.Spectral(alpha=2.0, channel="abs", preprocessing="custom", preprocessing_fn=shifted_fn, sup=0.5)
    assert not bool(shifted(2.0, 0.5)[2])


@pytest.mark.parametrize(
    "channel, noise, alpha, preprocessing",
    # The default run simulates the optimal preprocessing on the relu channel; phase retrieval's
    # threshold is checked against its closed form.
    [pytest.param("abs", 0.0, 3.0, "optimal", marks=pytest.mark.extended), ("relu", 0.1, 4.0, "optimal"),
     ("abs", 0.0, 3.0, "trimmed")],
)
def test_overlap_against_simulation(channel, noise, alpha, preprocessing):
    """The squared cosine of the top eigenvector of ``D`` at ``d = 500`` (4 seeds) against the theory:
    away from the threshold its fluctuations are of order ``d^{-1/2}`` (a standard error of 0.01-0.03
    over the seeds) with a bias of the same order, hence 3 standard errors plus 0.03. The top
    eigenvalue is within 3 standard errors plus 0.05 (its own finite-size shift, the largest
    ``T(y_i)`` in a finite sample)."""
    theory = hd.Spectral(alpha=alpha, channel=channel, noise=noise, preprocessing=preprocessing)
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


def test_float32_runs(phase_retrieval):
    """In float32 the bracket starts a few dozen roundings above ``tau``; the threshold is evaluated at
    ``tau`` itself."""
    obs, _, _ = phase_retrieval
    solution = hd.solve(hd.Spectral(alpha=jnp.float32(3.0), channel="abs"))
    assert bool(solution.converged) and solution.observables["overlap"].dtype == jnp.float32
    np.testing.assert_allclose(float(solution.observables["overlap"]), obs["overlap"][2], rtol=1e-4)
    np.testing.assert_allclose(float(solution.observables["alpha_spec"]), 0.5, rtol=1e-4)


def test_a_root_not_found_is_not_converged(phase_retrieval):
    """Two Newton steps cannot reach the roots from the bracket's middle: the point says so, and a
    solve with the default budget, otherwise the same (the fixture's at ``alpha = 3``), converges."""
    failed = hd.solve(hd.Spectral(alpha=3.0, channel="abs", steps=2))
    assert not bool(failed.converged)
    _, _, converged = phase_retrieval
    assert bool(converged[2])
