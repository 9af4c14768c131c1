"""GAMP at finite ``d`` across the stage of :class:`~hdtheory.MultiIndex`'s ``gate`` link
``y = z2 sign(|z1| - 1) + noise``: ``z1``, hard at ``M = 0``, is learned once ``z2`` is, above the
stage's threshold (``alpha* = 2.944`` at ``noise = 0.5``, located by ``threshold(..., "weak-recovery")``
of the model with ``held = diag(0, 1)``; ``tests/test_multi_index_gate.py`` checks the stage's radius
on either side), not below."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

NOISE = 0.5
STEPS = 20
START = 0.05
"""GAMP's start on ``z1``: ``M_0 = diag(START, m_2*)``, ``m_2*`` the state evolution's fixed point with
``z1`` unlearned (a start at ``m_1 = 0`` never leaves it: the posterior is even in ``z1``, and with
``m_2 = 0`` the state evolution sends ``m_1`` to zero at once, ``z1`` being hard there)."""


# The default run checks GAMP against the state evolution iterate by iterate (tests/test_multi_index_gamp.py)
# and the gate's stage in the state evolution (its radius on both sides, tests/test_multi_index_gate.py);
# the start from an overlap is checked for its input in tests/test_multi_index_stage_gamp.py.
@pytest.mark.extended
def test_gamp_learns_the_gated_field_only_above_the_stage_threshold():
    """``y = z2 sign(|z1| - 1) + sqrt(0.5) eps``: GAMP at ``d = 2000`` (4 seeds) from
    ``M_0 = diag(0.05, m_2*)`` against the state evolution from the same ``M_0``, every iterate
    ``t = 0..20``: ``m_1``, ``m_2``, ``M_1_2`` and ``mmse_1`` (``1 - M_11`` by the Nishimori identity).
    Below the stage (``alpha = 2``, 0.68 ``alpha*``) ``m_1`` decays to zero (GAMP below 0.005 at
    ``t = 20``), above it (``alpha = 4.5``, 1.53 ``alpha*``) it grows to 0.64. Tolerances: three
    standard errors over the seeds plus 0.01 for the finite-size bias (seen, against the state
    evolution on 32 Hermite nodes per axis in ``xi``: within 2.5 standard errors everywhere; above the
    stage ``m_1`` 0.641 +- 0.009 against 0.643 at ``t = 20``, 0.446 +- 0.019 against 0.445 at ``t = 7``;
    below it ``m_2`` 0.438 +- 0.012 against 0.431). The state evolution (:func:`~hdtheory.iterate`) is on
    the default rule in ``xi``, the gate's panels cut at ``omega_1 = +-1`` and ``omega_2 = 0``: past the
    stage the gate's edges ``|z1| = 1`` lie within ``sqrt(V_11)`` of ``omega_1``, where the Hermite rule
    of 8 nodes puts the fixed point at ``m_1 = 0.70``, GAMP's 0.64 eight standard errors below it, and
    the panels are within 3.4e-4 of 48 nodes (``tests/test_multi_index_gate.py``). Its 80 maps on
    3264 nodes in ``xi`` are most of the test's time (26 minutes on a 2-core CPU under a load of 9;
    5.5 minutes on 32 Hermite nodes under a lighter one)."""
    for alpha, learns in ((2.0, False), (4.5, True)):
        theory = hd.MultiIndex(link="gate", k=2, alpha=alpha, noise=NOISE)
        m2_star = hd.iterate(theory, STEPS, jnp.zeros((2, 2)))["m_2"][-1]
        M0 = jnp.diag(jnp.asarray([START, m2_star]))
        expected = hd.iterate(theory, STEPS, M0)
        result = hd.simulate.simulate(theory, d=2000, seeds=4, key=jax.random.PRNGKey(1), steps=STEPS, iterates=True, init=M0)
        for name in ("m_1", "m_2", "M_1_2", "mmse_1"):
            gap, sem = np.abs(result.mean[name] - expected[name]), result.sem[name]
            assert np.all(gap <= 3 * sem + 0.01), (alpha, name, gap, sem)
        np.testing.assert_allclose(result.mean["m_1"][0], START, atol=0.01)
        m_1 = expected["m_1"][-1]
        if learns:
            assert m_1 > 0.6 and result.mean["m_1"][-1] > 0.5
        else:
            assert m_1 < 1e-3 and abs(result.mean["m_1"][-1]) < 0.005
