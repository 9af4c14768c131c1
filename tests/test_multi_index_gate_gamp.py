"""GAMP at finite ``d`` across the stage of :class:`~hdtheory.MultiIndex`'s ``gate`` link
``y = z2 sign(|z1| - 1) + noise``: ``z1``, hard at ``M = 0``, is learned once ``z2`` is, above the
stage's threshold (``alpha* = 2.944`` at ``noise = 0.5``, located by ``threshold(..., "weak-recovery")``
of the model with ``held = diag(0, 1)``; ``tests/test_multi_index_gate.py`` checks the stage's radius
on either side), not below."""

import equinox as eqx
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


@eqx.filter_jit
def _state_evolution(theory, M0):
    """``M_t``, ``t = 0..STEPS``, from ``M0``."""
    step = lambda M, _: (theory.update(M),) * 2
    return jnp.concatenate([M0[None], jax.lax.scan(step, M0, None, length=STEPS)[1]])


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
    standard errors over the seeds plus 0.01 for the finite-size bias (seen: within 2.5 standard
    errors everywhere; above the stage ``m_1`` 0.641 +- 0.009 against 0.643 at ``t = 20``,
    0.446 +- 0.019 against 0.445 at ``t = 7``; below it ``m_2`` 0.438 +- 0.012 against 0.431).
    Above the stage the state evolution's rule in ``xi`` has 32 nodes per axis: the Hermite rule of 8
    (the default, kept below the stage, where ``m_1`` stays near zero and ``m_2*`` is 0.4308 on it
    against 0.4276 on 32) converges slowly once ``m_1`` is large, the gate's edges ``|z1| = 1`` being
    within ``sqrt(V_11)`` of ``omega_1``: one map from ``diag(0.64, 0.81)`` gives ``m_1`` 0.659,
    0.650, 0.644, 0.642 at 8, 12, 20, 32 nodes, and on 8 nodes the fixed point is ``m_1 = 0.70``,
    GAMP's 0.64 eight standard errors below it. That state evolution, 40 maps on 1024 nodes in
    ``xi``, is most of the test's time (5.5 minutes on a shared 2-core CPU)."""
    for alpha, learns, order in ((2.0, False, 8), (4.5, True, 32)):
        theory = hd.MultiIndex(link="gate", k=2, alpha=alpha, noise=NOISE, order=order)
        m2_star = _state_evolution(theory, jnp.zeros((2, 2)))[-1, 1, 1]
        M0 = jnp.diag(jnp.asarray([START, m2_star]))
        M = np.asarray(_state_evolution(theory, M0))
        result = hd.simulate.simulate(theory, d=2000, seeds=4, key=jax.random.PRNGKey(1), steps=STEPS, iterates=True, init=M0)
        expected = {"m_1": M[:, 0, 0], "m_2": M[:, 1, 1], "M_1_2": M[:, 0, 1], "mmse_1": 1 - M[:, 0, 0]}
        for name, values in expected.items():
            gap, sem = np.abs(result.mean[name] - values), result.sem[name]
            assert np.all(gap <= 3 * sem + 0.01), (alpha, name, gap, sem)
        np.testing.assert_allclose(result.mean["m_1"][0], START, atol=0.01)
        if learns:
            assert M[-1, 0, 0] > 0.6 and result.mean["m_1"][-1] > 0.5
        else:
            assert M[-1, 0, 0] < 1e-3 and abs(result.mean["m_1"][-1]) < 0.005
