"""Rank-one spiked Wigner and Wishart models: closed forms and the spectral thresholds."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd


def test_wigner_gaussian_closed_form():
    """Gaussian prior: q = lam q / (1 + lam q), so q = 1 - 1 / lam above lam = 1."""
    for snr in (1.5, 3.0):
        sol = hd.solve(hd.Spiked(snr=snr), "informed")
        assert sol.converged
        np.testing.assert_allclose(sol.observables["q"], 1 - 1 / snr, rtol=1e-9)
        np.testing.assert_allclose(sol.observables["mmse_matrix"], 1 - (1 - 1 / snr) ** 2, rtol=1e-9)


# The default run checks the uninformed solve against this closed form on both sides of lam = 1 in
# test_bayes_edges.py.
@pytest.mark.extended
def test_uninformed_solve_reaches_the_informative_fixed_point():
    """From the uninformed start (an infinitesimal overlap) the solve follows state evolution: past
    weak recovery it leaves the repelling q = 0 for q = 1 - 1 / lam (Gaussian prior, closed form),
    and below it stays at q = 0. One compiled solve for all the values."""
    snr = jnp.asarray([0.5, 0.9, 1.05, 1.5, 2.0, 3.0])
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(snr=s)))(snr)
    assert np.all(sols.converged)
    np.testing.assert_allclose(sols.observables["q"], np.maximum(1 - 1 / snr, 0), atol=1e-9)


def test_uninformed_solve_in_float32():
    """In float32 the uninformed overlap (1e-3 rho) is above the solver's tolerance (1e-5), so the
    first step of the iteration is seen: the same informative fixed point, to float32 accuracy."""
    f32 = lambda x: np.float32(x)
    theory = hd.Spiked(snr=f32(2.0), alpha=f32(1.0), rho=f32(1.0), rho_u=f32(1.0))
    sol = hd.solve(theory)
    assert sol.state.dtype == np.float32 and sol.converged
    np.testing.assert_allclose(sol.observables["q"], 0.5, atol=1e-4)


def test_cli_eval_past_weak_recovery(capsys):
    """``hdtheory eval spiked snr=2``: the mmse of the informative fixed point, not that of q = 0."""
    from hdtheory import cli

    assert cli.main(["eval", "spiked", "snr=2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["converged"]
    np.testing.assert_allclose(record["mmse"], 0.5, atol=1e-9)  # rho - q = 1 / lam


# The default run locates this threshold by hd.threshold on three grids in test_bayes_edges.py.
@pytest.mark.extended
def test_wigner_weak_recovery_at_snr_one():
    """The trivial fixed point loses stability at lam rho^2 = 1 (Lesieur et al. 2017; the BBP
    spectral threshold for the Gaussian prior)."""
    found = hd.threshold(hd.Spiked(), "snr", "weak-recovery", (0.6, 2.0), num=4)
    assert found.found
    np.testing.assert_allclose(found.value, 1.0, atol=1e-8)


def test_wishart_weak_recovery_is_bbp():
    """u Gaussian: weak recovery at lam^2 alpha = 1 (Baik, Ben Arous and Peche 2005)."""
    found = hd.threshold(hd.Spiked(ensemble="wishart", alpha=2.0), "snr", "weak-recovery", (0.3, 1.5), num=4)
    assert found.found
    np.testing.assert_allclose(found.value, 1 / np.sqrt(2.0), atol=1e-8)


# The default run checks the uninformed solve against this closed form on both sides of BBP in
# test_bayes_edges.py.
@pytest.mark.extended
def test_wishart_uninformed_solve_gaussian_closed_form():
    """Gaussian u and v: q_u = lam q_v / (1 + lam q_v), q_v = lam alpha q_u / (1 + lam alpha q_u), so
    past BBP (lam^2 alpha > 1) q_u = (lam^2 alpha - 1) / (lam alpha (lam + 1)) and
    q_v = (lam^2 alpha - 1) / (lam (lam alpha + 1)). From the uninformed start the solve leaves the
    repelling q = 0 along the alternating iteration; one compiled solve for all the values."""
    snr, alpha = jnp.asarray([0.5, 0.8, 1.0, 1.5, 3.0]), 2.0
    sols = jax.vmap(lambda s: hd.solve(hd.Spiked(ensemble="wishart", snr=s, alpha=alpha)))(snr)
    assert np.all(sols.converged)
    gap = np.maximum(snr**2 * alpha - 1, 0)
    np.testing.assert_allclose(sols.observables["q_u"], gap / (snr * alpha * (snr + 1)), atol=1e-9)
    np.testing.assert_allclose(sols.observables["q_v"], gap / (snr * (snr * alpha + 1)), atol=1e-9)


def test_wishart_free_entropy_is_stationary():
    theory = hd.Spiked(ensemble="wishart", alpha=1.5, snr=2.0, prior="rademacher")
    sol = hd.solve(theory, "informed")
    assert sol.converged
    assert 0.05 < sol.observables["q_v"] < 0.99
    # Exact up to the quadrature (order 64) of the two sides; a wrong formula is off by O(1).
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sol.state), 0.0, atol=1e-6)


def test_gradient_matches_finite_differences():
    def mmse(snr):
        theory = hd.Spiked(snr=snr, prior="rademacher")
        return hd.solve(theory, "informed").observables["mmse"]

    both = jax.jit(jax.value_and_grad(mmse))  # one program; the differences reuse it
    h = 1e-5
    np.testing.assert_allclose(both(1.7)[1], (both(1.7 + h)[0] - both(1.7 - h)[0]) / (2 * h), rtol=1e-6)
