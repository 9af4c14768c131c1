"""GAMP for the multi-index model at finite d against its state evolution."""

import equinox as eqx
import jax
import numpy as np

import hdtheory as hd


def test_gamp_reaches_the_state_evolution_fixed_point():
    """The staircase ``z1 + z1 z2`` (both directions trivial, so GAMP leaves ``W_hat = 0``) at
    ``alpha = 1``, ``noise = 0.1``: GAMP at ``d = 1000`` (two seeds, 30 iterations) against the state
    evolution iterated to its fixed point (on the Hermite rule of 4 nodes per axis, ``panel_order =
    0``, as before, for the suite's time; the overlaps are moderate, 0.44 and 0.29). The overlaps of
    one instance fluctuate by about ``1 / sqrt(d) = 0.03``; the mean MMSE, an average over both
    directions, by less."""
    theory = hd.MultiIndex(link="staircase", k=2, alpha=1.0, noise=0.1, order=4, panel_order=0)
    update = eqx.filter_jit(lambda theory, M: theory.update(M))
    M = theory.init()
    for _ in range(40):
        M = update(theory, M)
    assert np.max(np.abs(update(theory, M) - M)) < 1e-6
    result = hd.simulate.simulate(theory, d=1000, seeds=2, key=jax.random.PRNGKey(0))
    mean = result.mean
    np.testing.assert_allclose(mean["mmse"], 1 - np.trace(M) / 2, atol=0.02)
    for i in range(2):
        np.testing.assert_allclose(mean[f"m_{i + 1}"], M[i, i], atol=0.06)
    assert abs(mean["M_1_2"]) < 0.06 and mean["m_1"] > mean["m_2"] + 0.1
