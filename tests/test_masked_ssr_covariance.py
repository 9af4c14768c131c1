"""Masked self-supervised ridge regression on a covariance given as a matrix
(``hdtheory.models.masked_ssr_covariance.MaskedSSRCovariance``): a circulant covariance gives
``MaskedSSR``'s numbers; heterogeneous variances against the ridge run on sampled data, errors per
coordinate and the SSR matrix's spike outlier below PCA's threshold; finite differences; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory._theory import ParameterError
from hdtheory.models.masked_ssr import MaskedSSR
from hdtheory.models.masked_ssr_covariance import MaskedSSRCovariance
from hdtheory.simulate import simulate


def two_levels(d, high=4.0, low=0.25, corr=0.5):
    """Variances ``high`` on the first half of the coordinates and ``low`` on the second, times the
    AR(1) correlation ``corr^|i - j|``; and the spike direction on the low half."""
    lower = np.arange(d) >= d // 2
    root = np.sqrt(np.where(lower, low, high))
    index = np.arange(d)
    return root[:, None] * corr ** np.abs(index[:, None] - index[None, :]) * root[None, :], lower.astype(float)


def test_circulant_is_masked_ssr():
    """The circulant AR(1) covariance at d = 64 (spike 3 along the ones): every observable, errors and
    the SSR matrix's edge, outlier, threshold and overlap, equals ``MaskedSSR``'s (its spectral
    averages are the circulant's sums up to ``corr^64``), the errors to 1e-8, the spectral ones to 1e-6
    (their integrands ``s^2 / (t - s)^2`` peak near ``s(0)``, which the sum over 64 frequencies
    resolves to 1e-7; 1e-15 at d = 256); for this homogeneous diagonal PCA's threshold and overlap are
    the SSR matrix's."""
    d, corr = 64, 0.5
    s = (1 - corr**2) / (1 - 2 * corr * np.cos(2 * np.pi * np.arange(d) / d) + corr**2)
    column = np.real(np.fft.ifft(s))
    Sigma = column[(np.arange(d)[:, None] - np.arange(d)[None, :]) % d]
    got = hd.solve(MaskedSSRCovariance(covariance=Sigma, alpha=1.5, lam=0.2, spike=3.0)).observables
    want = hd.solve(MaskedSSR(alpha=1.5, lam=0.2, corr=corr, spike=3.0)).observables
    for key in ("kappa", "test_error", "train_error", "population_error", "conditional_variance"):
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-8), key
    for key in ("edge", "outlier", "critical_spike", "overlap"):
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-6), key
    assert float(got["pca_critical_spike"]) == pytest.approx(float(want["critical_spike"]), rel=1e-6)
    assert float(got["pca_overlap"]) == pytest.approx(float(want["overlap"]), rel=1e-6)


def test_against_simulation_ssr_ahead_of_pca():
    """Variances 4 and 1/4 on two halves times AR(1) correlations 0.5, d = 400, alpha = 2, lam = 0.2,
    the ridge on sampled data (3 seeds). Errors within 4 standard errors plus 1% (seen: 0.07% and
    0.4%), each half's mean per-coordinate error within 2% (seen: 0.6% at most), and every
    coordinate's within 15% (a single coordinate fluctuates by O(d^-1/2): seen 11% at most, median
    2.5%). A spike 3 along the low-variance half is below PCA's threshold (12.7: the high half's bulk
    hides it) and above the SSR matrix's (0.94: its ``C = D^1/2 Sigma D^1/2`` equalises the halves and
    weighs the spike by ``D^1/2``): A's outlier within 4 standard errors plus 0.5% (seen 0.12%), its
    bulk's edge (A's second eigenvalue, below the edge by O(d^-2/3)) within 1% (seen 0.23%), the
    overlap within 4 standard errors plus 0.03 (seen 0.661 against 0.668), while the sample
    covariance's top eigenvector keeps a squared cosine below 0.02 with the spike (seen 0.0002)."""
    d = 400
    Sigma, lower = two_levels(d)
    theory = MaskedSSRCovariance(covariance=Sigma, alpha=2.0, lam=0.2, spike=3.0, direction=lower)
    sol = hd.solve(theory)
    assert bool(sol.converged)
    obs = sol.observables
    measured = simulate(theory, seeds=3)
    assert float(obs["critical_spike"]) < 3.0 < float(obs["pca_critical_spike"])
    assert float(obs["pca_overlap"]) == 0.0 and measured.mean["pca_overlap"] < 0.02
    checks = (("test_error", 0.01, 0), ("train_error", 0.01, 0), ("outlier", 0.005, 0), ("edge", 0.01, 0),
              ("overlap", 0, 0.03))
    for key, rel, tol in checks:
        want = float(obs[key])
        assert abs(measured.mean[key] - want) <= 4 * measured.sem[key] + rel * want + tol, (
            key, measured.mean[key], want)
    for key in ("test_errors", "train_errors"):
        want, got = np.asarray(obs[key]), measured.mean[key]
        for half in (lower == 0, lower == 1):
            assert got[half].mean() == pytest.approx(want[half].mean(), rel=0.02), key
        assert np.max(np.abs(got / want - 1)) < 0.15, key


def test_gradients_match_finite_differences():
    """d(errors, A's outlier, threshold and overlap, PCA's outlier and threshold) / d(covariance along a
    symmetric direction, alpha, lam, spike, the spike's direction) against central differences, at
    d = 40 on a diagonal covariance of two variance levels (degenerate eigenvalues, where
    eigenvector derivatives do not exist: the derivatives come from dense inverses)."""
    d = 40
    lower = np.arange(d) >= d // 2
    base = jnp.asarray(np.diag(np.where(lower, 0.25, 4.0)))
    P = np.random.default_rng(0).normal(size=(d, d)) / 10
    P, v, w = jnp.asarray(P + P.T), jnp.asarray(lower + 0.3 * ~lower), jnp.asarray(np.arange(d) / d)
    keys = ("test_error", "train_error", "outlier", "critical_spike", "overlap", "pca_outlier",
            "pca_critical_spike", "pca_overlap")

    def observed(x):
        theory = MaskedSSRCovariance(covariance=base + x[0] * P, alpha=x[1], lam=x[2], spike=x[3],
                                     direction=v + x[4] * w)
        obs = hd.solve(theory).observables
        return jnp.stack([obs[key] for key in keys])

    value, jacobian = jax.jit(observed), jax.jit(jax.jacfwd(observed))
    x = jnp.array([0.0, 2.0, 0.2, 20.0, 0.0])
    J = jacobian(x)
    h = 1e-5
    # One step at a time: a vmap over the steps would batch the decompositions (module docstring of
    # the model: batched LAPACK calls can deadlock XLA's CPU thread pool).
    fd = np.stack([(value(x + dx) - value(x - dx)) / (2 * h) for dx in h * np.eye(5)], axis=1)
    np.testing.assert_allclose(J, fd, rtol=1e-5, atol=1e-8)
    assert float(J[2, 4]) != 0.0 and float(J[0, 0]) != 0.0  # the direction and the covariance matter


def test_bad_input():
    Sigma, lower = two_levels(6)
    for covariance in (np.eye(3)[:2], np.diag([1.0, -1.0, 1.0]), np.triu(np.ones((3, 3))), np.ones(3), ()):
        with pytest.raises(ParameterError, match="covariance"):
            MaskedSSRCovariance(covariance=covariance)
    with pytest.raises(ParameterError, match="direction"):
        MaskedSSRCovariance(covariance=Sigma, direction=lower[:5])
    with pytest.raises(ParameterError, match="direction"):
        MaskedSSRCovariance(covariance=Sigma, direction=0 * lower)
    with pytest.raises(ParameterError, match="alpha"):
        MaskedSSRCovariance(covariance=Sigma, alpha=0.0)
    with pytest.raises(ValueError, match="dimension 6"):
        simulate(MaskedSSRCovariance(covariance=Sigma), d=10)


def test_error_gradients_match_finite_differences():
    """d(test and training errors) / d(covariance along a symmetric direction, alpha, lam) against
    central differences at d = 40 on two variance levels (degenerate eigenvalues: Cholesky solves)."""
    d = 40
    base = jnp.asarray(np.diag(np.where(np.arange(d) >= d // 2, 0.25, 4.0)))
    P = np.random.default_rng(0).normal(size=(d, d)) / 10
    P = jnp.asarray(P + P.T)

    def observed(x):
        obs = hd.solve(MaskedSSRCovariance(covariance=base + x[0] * P, alpha=x[1], lam=x[2], spectra=False)).observables
        return jnp.stack([obs["test_error"], obs["train_error"], obs["test_errors"][3]])

    values_and_jacobian = jax.jit(lambda x: (observed(x), jax.jacfwd(observed)(x)))
    x = jnp.array([0.0, 2.0, 0.2])
    J = values_and_jacobian(x)[1]
    h = 1e-5
    for i in range(3):
        dx = jnp.zeros(3).at[i].set(h)
        fd = (values_and_jacobian(x + dx)[0] - values_and_jacobian(x - dx)[0]) / (2 * h)
        np.testing.assert_allclose(J[:, i], fd, rtol=1e-6, atol=1e-9, err_msg=str(i))
    assert float(J[0, 0]) != 0.0
