"""AMP at finite d against the state evolution of :class:`hdtheory.Spiked` (Wigner), iteration by
iteration, and the simulated fixed point against the solved one."""

import jax
import numpy as np

import hdtheory as hd
from hdtheory.simulate.spiked import amp_errors


def test_amp_follows_state_evolution():
    """Rademacher prior at lam = 2, from a side observation at SNR 0.1: the error falls from 0.9 to
    0.38 in a few iterations. Per seed it fluctuates by O(1/sqrt(d)) about its limit (0.02 at
    d = 2000), with an O(1/d) bias; three seeds average it to ~0.013."""
    theory = hd.Spiked(snr=2.0, prior="rademacher", order=32)
    steps, d, snr0 = 8, 2000, 0.1
    errors = np.asarray(amp_errors(theory, d=d, seeds=3, steps=steps, snr0=snr0, key=jax.random.PRNGKey(3)))
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
