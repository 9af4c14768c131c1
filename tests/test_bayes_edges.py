"""The Bayes-optimal models at the edges of their domains: just past weak recovery, where the
uninformed start lies within the solver's tolerance of the repelling q = 0; the priors' averages at
large SNR and small density, against scipy's adaptive quadrature; and the weak-recovery threshold
on a grid value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import hdtheory as hd
from compiled import optimised


def test_uninformed_solve_just_past_weak_recovery():
    """Gaussian prior, spiked Wigner: q = 1 - 1 / lam above lam = 1 (closed form). At lam = 1 + 1e-4
    the residual at the uninformed start (q = 1e-6) is 1e-10, below the tolerance, next to the
    repelling q = 0: the solve must follow the iteration to q = 1e-4, and stay at q = 0 below."""
    snr = jnp.asarray([0.5, 0.999, 1 + 1e-4, 1 + 1e-3, 1.05])
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(snr=s)))(snr)
    assert np.all(sols.converged)
    np.testing.assert_allclose(sols.observables["q"], np.maximum(1 - 1 / snr, 0), rtol=1e-6, atol=1e-10)


def test_wishart_uninformed_solve_just_past_bbp():
    """Gaussian u and v: the closed form of test_spiked at lam^2 alpha = 1 + 1e-4, 1 + 1e-3 (and just
    below, where q = 0)."""
    alpha = 2.0
    snr = jnp.sqrt(jnp.asarray([1 - 1e-3, 1 + 1e-4, 1 + 1e-3]) / alpha)
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(ensemble="wishart", snr=s, alpha=alpha)))(snr)
    assert np.all(sols.converged)
    gap = np.maximum(snr**2 * alpha - 1, 0)
    q_u, q_v = gap / (snr * alpha * (snr + 1)), gap / (snr * (snr * alpha + 1))
    np.testing.assert_allclose(sols.observables["q_u"], q_u, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(sols.observables["q_v"], q_v, rtol=1e-6, atol=1e-10)


def test_uninformed_solve_just_past_weak_recovery_in_float32():
    """float32 (uninformed q = 1e-3, tolerance 1e-5): a point is either within float32's reach of
    q = 1 - 1 / lam or reported unconverged (at lam = 1 + 1e-4 the slope 1 - T' = 1e-4 turns the
    rounding of the map, ~1e-7, into an error of ~1e-3 in q); from lam = 1.005 on it converges."""
    snr = np.asarray([0.5, 1 + 1e-4, 1 + 1e-3, 1.005, 1.01, 2.0], np.float32)
    one = np.float32(1.0)
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(snr=s, alpha=one, rho=one, rho_u=one)))(snr)
    assert sols.state.dtype == np.float32
    assert np.all(np.asarray(sols.converged)[[0, 3, 4, 5]])
    error = np.abs(sols.observables["q"] - np.maximum(1 - 1 / snr.astype(float), 0))
    assert np.all(~sols.converged | (error <= 2e-5)), error


def _gaussian_wishart(snr, alpha, rho_u):
    """q_u, q_v of the rank-one Wishart model with Gaussian u (second moment rho_u) and v (1):
    q_u = rho_u^2 lam q_v / (1 + rho_u lam q_v), q_v = lam alpha q_u / (1 + lam alpha q_u)."""
    q_u = lambda q_v: rho_u**2 * snr * q_v / (1 + rho_u * snr * q_v)
    q_v = lambda q_u: snr * alpha * q_u / (1 + snr * alpha * q_u)
    root = optimize.brentq(lambda q: q_v(q_u(q)) - q, 1e-12, 1.0, xtol=1e-15)
    return q_u(root), root


# The default run checks the solve just past weak recovery on the spiked Wigner and Wishart models above.
@pytest.mark.extended
def test_clusters_uninformed_solve_just_past_the_algorithmic_threshold():
    """k = 2, rho = 1: the rank-one Wishart model with a Rademacher u of second moment 1/2 and a
    Gaussian v, weak recovery at lam = k / sqrt(alpha). The Rademacher overlap
    ``s E tanh(s r + sqrt(s r) z) = s^2 r - s^3 r^2 + O(r^3)`` agrees with the Gaussian one to second
    order, so that at lam = (1 + eps) k / sqrt(alpha) the overlaps are those of Gaussian u and v
    (a one-dimensional root, by scipy) up to a relative O(eps); below, q = 0."""
    alpha, eps = 1.5, np.asarray([-1e-3, 1e-4, 1e-3])
    snr = 2 / np.sqrt(alpha) * (1 + eps)
    theory = lambda s: hd.SubspaceClustering(snr=s, alpha=alpha, rho=1.0, clusters=2)
    # Solves that creep to the fixed point next to the threshold: the run is the cost.
    sols = optimised(jax.vmap(lambda s: hd.solve(theory(s))))(jnp.asarray(snr))
    # At eps = 1e-4 the capped flow may need more than the default 100 steps: then it must say so.
    converged = np.asarray(sols.converged)
    assert converged[0] and converged[2]
    np.testing.assert_allclose(sols.observables["q_u"][0], 0.0, atol=1e-10)
    np.testing.assert_allclose(sols.observables["q_v"][0], 0.0, atol=1e-10)
    for i in np.flatnonzero(converged[1:]) + 1:
        q_u, q_v = _gaussian_wishart(snr[i], alpha, 0.5)
        np.testing.assert_allclose(sols.observables["q_u"][i], q_u, rtol=5 * eps[i])
        np.testing.assert_allclose(sols.observables["q_v"][i], q_v, rtol=5 * eps[i])


def test_weak_recovery_with_a_grid_value_on_the_threshold():
    """Spiked Wigner, threshold at lam = 1 (Lesieur et al. 2017): found when the grid has 1.0 itself
    ((0.5, 1.5) with 5 values, (0.9, 1.1) with 3), and from a generic grid."""
    for bracket, num in (((0.5, 1.5), 5), ((0.9, 1.1), 3), ((0.55, 1.7), 5)):
        found = hd.threshold(hd.Spiked(), "snr", "weak-recovery", bracket, num=num)
        assert found.found, (bracket, num)
        np.testing.assert_allclose(found.value, 1.0, atol=1e-8)


def _normal(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _quad(f, points, lo=-12.0, hi=12.0):
    """``int f`` over ``[lo, hi]`` by adaptive quadrature split at ``points`` (the mass of a
    standard normal beyond 12 is below 1e-32)."""
    edges = np.unique(np.clip(np.concatenate([[lo, hi], np.asarray(points, float)]), lo, hi))
    pieces = zip(edges[:-1], edges[1:])
    return sum(integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0] for a, b in pieces)


def _rademacher(r):
    """Overlap ``E tanh(r + sqrt(r) z)`` and ``psi = E log cosh(r + sqrt(r) z) - r / 2`` (rho = 1, the
    sign of x* taken +1 by symmetry), split at the transition z = -sqrt(r)."""
    log_cosh = lambda y: abs(y) + np.log1p(np.exp(-2 * abs(y))) - np.log(2)
    B = lambda z: r + np.sqrt(r) * z
    overlap = _quad(lambda z: np.tanh(B(z)) * _normal(z), [-np.sqrt(r)])
    return overlap, _quad(lambda z: log_cosh(B(z)) * _normal(z), [-np.sqrt(r)]) - r / 2


def _gauss_bernoulli(rho, r):
    """Overlap ``E x* mean(r x* + sqrt(r) z)`` and ``psi = E log Z_0`` as double integrals over x* and
    z (x* = 0 with probability 1 - rho, N(0, 1) otherwise), each inner one split where the posterior
    odds of a non-zero entry are even."""
    log_nonzero = lambda B: np.log(rho) + B * B / (2 * (1 + r)) - 0.5 * np.log1p(r)
    log_Z = lambda B: np.logaddexp(np.log1p(-rho), log_nonzero(B))
    mean = lambda B: np.exp(log_nonzero(B) - log_Z(B)) * B / (1 + r)
    b_c = np.sqrt(max((1 + r) * (np.log1p(r) + 2 * np.log((1 - rho) / rho)), 0.0))

    def inner(g, x):
        cuts = [(b_c - r * x) / np.sqrt(r), (-b_c - r * x) / np.sqrt(r)]
        return _quad(lambda z: g(r * x + np.sqrt(r) * z) * _normal(z), cuts)

    x_cuts = [b_c / r, -b_c / r, 0.0]
    overlap = rho * _quad(lambda x: x * inner(mean, x) * _normal(x), x_cuts)
    psi = (1 - rho) * inner(log_Z, 0.0) + rho * _quad(lambda x: inner(log_Z, x) * _normal(x), x_cuts)
    return overlap, psi


def test_prior_averages_against_adaptive_quadrature():
    """The Rademacher posterior mean switches over 1 / sqrt(r) in z, the Gauss-Bernoulli one where
    the odds of a non-zero entry are even, at |B| ~ sqrt(r log r): at the default order every
    overlap and free entropy is within 1e-10 of scipy's adaptive quadrature (a fixed Gauss-Hermite
    rule of 64 nodes was 5e-6 off for the Rademacher prior at r = 10, 2e-5 for Gauss-Bernoulli at
    r = 100). One compiled program a prior."""
    from hdtheory import kernels

    both = lambda prior, r: jnp.stack([prior.overlap(r), prior.free_entropy(r)])
    r = np.asarray([2.0, 5.0, 10.0, 50.0])
    ours = jax.jit(jax.vmap(lambda r: both(kernels.Rademacher(1.0), r)))(jnp.asarray(r))
    np.testing.assert_allclose(ours, [_rademacher(x) for x in r], rtol=0, atol=1e-10)
    rho, r = np.asarray([0.05, 0.01, 0.01, 0.2]), np.asarray([100.0, 10.0, 1000.0, 30.0])
    ours = jax.jit(jax.vmap(lambda rho, r: both(kernels.GaussBernoulli(rho), r)))(jnp.asarray(rho), jnp.asarray(r))
    np.testing.assert_allclose(ours, [_gauss_bernoulli(*x) for x in zip(rho, r)], rtol=0, atol=1e-10)


# The default run checks the Rademacher prior's averages against SciPy above, and the spiked solve against
# closed forms (test_spiked.py).
@pytest.mark.extended
def test_spiked_rademacher_against_adaptive_quadrature():
    """Spiked Wigner with a Rademacher prior: q = E tanh(lam q + sqrt(lam q) z), the root by scipy
    (brentq on the adaptive quadrature), at lam in {2, 5, 10, 50}; 3e-6 and 5e-6 off at lam = 5
    and 10 with the former Gauss-Hermite rule."""
    snr = np.asarray([2.0, 5.0, 10.0, 50.0])
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(snr=s, prior="rademacher")))(jnp.asarray(snr))
    assert np.all(sols.converged)
    expected = [optimize.brentq(lambda q: _rademacher(s * q)[0] - q, 0.1, 1.0, xtol=1e-15) for s in snr]
    np.testing.assert_allclose(sols.observables["q"], expected, rtol=0, atol=1e-9)
