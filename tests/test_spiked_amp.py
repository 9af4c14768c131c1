"""AMP at finite d against the state evolution of :class:`hdtheory.Spiked` (Wigner and Wishart),
iteration by iteration, and the simulated fixed point against the solved one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import amp_errors


def test_amp_follows_state_evolution():
    """Rademacher prior at lam = 2, from a side observation at SNR 0.1: the error falls from 0.9 to
    0.38 in a few iterations. Per seed it fluctuates by O(1/sqrt(d)) about its limit (0.02 at
    d = 2000), with an O(1/d) bias; three seeds average it to ~0.013."""
    theory = hd.Spiked(snr=2.0, prior="rademacher", order=32)
    steps, d, snr0 = 8, 2000, 0.1
    errors = np.asarray(amp_errors(theory, d=d, seeds=3, steps=steps, snr0=snr0, key=jax.random.PRNGKey(3))["mmse"])
    q0 = theory._priors()[0].overlap(snr0, theory.order)
    predicted = np.asarray(hd.iterate(theory, steps, init=q0)["mmse"])
    np.testing.assert_allclose(errors.mean(axis=0), predicted, atol=3 / np.sqrt(d))
    assert predicted[0] - predicted[-1] > 10 / np.sqrt(d)


def test_simulate_matches_the_uninformed_fixed_point():
    """From an almost uninformed start (SNR 1e-3) AMP reaches the informative fixed point past weak
    recovery: the Gaussian prior's closed form q = 1 - 1 / lam, solved from the uninformed state."""
    theory = hd.Spiked(snr=3.0, order=32)
    sim = hd.simulate.simulate(theory, d=1000, seeds=3, steps=40)
    sol = hd.solve(theory)
    np.testing.assert_allclose(sol.observables["q"], 1 - 1 / 3.0, rtol=1e-9)
    for key in ("q", "mmse", "mmse_matrix"):
        assert abs(sim.mean[key] - sol.observables[key]) < 4 * sim.sem[key] + 3e-3, key


def test_wishart_amp_follows_state_evolution():
    """Rademacher u (n = 2d) and v at lam = 2 (lam^2 alpha = 8 past weak recovery), from side
    observations at SNR 0.1: the errors fall from 0.91 to 0.27 (u) and 0.13 (v), u from v and then
    v from the new u, as state evolution alternates. Per seed they fluctuate by up to ~5 / sqrt(d)
    during the fall (the start's O(1 / sqrt(d)) fluctuation, amplified), less at the fixed point,
    with an O(1 / d) bias; four seeds average it to ~1 / sqrt(d). Without the Onsager terms the mean
    misses by 5-8 / sqrt(d)."""
    theory = hd.Spiked(ensemble="wishart", snr=2.0, alpha=2.0, prior="rademacher", prior_u="rademacher", order=32)
    steps, d, snr0 = 10, 2000, 0.1
    errors = amp_errors(theory, d=d, seeds=4, steps=steps, snr0=snr0, key=jax.random.PRNGKey(1))
    prior, prior_u = theory._priors()
    q0 = jnp.stack([prior_u.overlap(snr0, theory.order), prior.overlap(snr0, theory.order)])
    predicted = hd.iterate(theory, steps, init=q0)
    assert set(errors) == {"mmse_u", "mmse_v", "mmse_matrix"}
    for key, error in errors.items():
        assert error.shape == (4, steps + 1)
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
        assert predicted[key][0] - predicted[key][-1] > 10 / np.sqrt(d)


# The default run checks the Wishart AMP against the state evolution above, and simulate's fixed point on
# the Wigner model.
@pytest.mark.extended
def test_wishart_simulate_matches_the_uninformed_fixed_point():
    """Sparse PCA: Gaussian u (the rows of Y are samples of covariance I + (lam / d) v v^T, n = d / 2)
    and a Gauss-Bernoulli v of density 0.3 at lam = 8 (lam^2 alpha rho^2 = 2.9). From an almost
    uninformed start AMP reaches the fixed point that hd.solve finds from the uninformed state."""
    theory = hd.Spiked(
        ensemble="wishart", snr=8.0, alpha=0.5, rho=0.3, prior="gauss-bernoulli", prior_u="gaussian", order=32
    )
    sim = hd.simulate.simulate(theory, d=2000, seeds=4, steps=40, key=jax.random.PRNGKey(2))
    sol = hd.solve(theory)
    assert sim.n == 1000 and sol.observables["q_v"] > 0.1
    for key in ("q_u", "q_v", "mmse_u", "mmse_v", "mmse_matrix"):
        assert abs(sim.mean[key] - sol.observables[key]) < 4 * sim.sem[key] + 3e-3, key
