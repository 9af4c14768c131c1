"""GAMP at finite ``d`` across a stage of :class:`~hdtheory.MultiIndex`'s grand staircase: for
``z1 + z2^2`` (noise 3) ``z2`` is learned once ``z1`` is, above the stage's located threshold
(``alpha* = 1.03``, ``tests/test_multi_index_stage_threshold.py``), not below."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

STEPS = 15
START = 0.05
"""GAMP's start: the overlap ``M_0 = diag(0, START)`` (a start at ``W_hat = 0`` never leaves
``W_hat_2 = 0``: the posterior is even in ``z2``)."""


def _square(z):
    return z[..., 0] + z[..., 1] ** 2


# The default run checks GAMP against the state evolution iterate by iterate (tests/test_multi_index_gamp.py,
# from the uninformed start) and the stage itself in the state evolution (its held radius on both sides,
# tests/test_multi_index_gate.py and tests/test_multi_index_subspaces.py); a start from an overlap is checked
# for its input below.
@pytest.mark.extended
def test_gamp_learns_the_square_only_above_the_stage_threshold():
    """``y = z1 + z2^2 + sqrt(3) eps``: GAMP at ``d = 2000`` (6 seeds) from ``M_0 = diag(0, 0.05)``
    against the state evolution from the same ``M_0``, every iterate ``t = 0..15``: ``m_1``, ``m_2`` and
    ``mmse_2`` (``1 - M_22`` by the Nishimori identity). Below the stage (``alpha = 0.7``) ``m_2``
    decays to zero (the state evolution: 1e-4 at ``t = 15``; GAMP: below 0.01), above it
    (``alpha = 2.5``) it grows to 0.40 (GAMP above 0.3). Tolerances: three standard errors over the
    seeds plus 0.01 for the finite-size bias over the last five iterates (seen: all within 0.01 and 2
    standard errors: ``m_2`` 0.408 +- 0.016 against 0.402, ``m_1`` 0.331 +- 0.006 against 0.340), plus
    0.04 over the growth (``t = 2..5`` at ``alpha = 2.5``, GAMP is ahead: ``m_2`` by up to 0.025 and
    ``mmse_2`` by 0.033, 4 to 5 standard errors, a transient of the finite instance). The state
    evolution (:func:`~hdtheory.iterate`, whose observables add the rule's error estimate at each step)
    has 20 nodes per axis in ``xi`` (``Mhat_22 / alpha`` at ``M = diag(0.34, 0.41)``
    converges slowly in it: 0.2682, 0.2778, 0.2752, 0.2744, 0.2741, 0.2739 at 7, 8, 12, 16, 20, 32
    nodes; 3 nodes, exact while ``M_22 = 0``, put the fixed point's ``m_2`` at 0.32,
    not 0.40) and the posterior's 16 (``Mhat`` within 3e-4 of 32)."""
    M0 = jnp.diag(jnp.asarray([0.0, START]))
    for alpha, learns in ((0.7, False), (2.5, True)):
        theory = hd.MultiIndex(link="custom", link_fn=_square, k=2, alpha=alpha, noise=3.0, order=20, inner_order=16, label_order=4)
        expected = hd.iterate(theory, STEPS, M0)
        result = hd.simulate.simulate(theory, d=2000, seeds=6, key=jax.random.PRNGKey(1), steps=STEPS, iterates=True, init=M0)
        for name in ("m_1", "m_2", "mmse_2"):
            gap, sem = np.abs(result.mean[name] - expected[name]), result.sem[name]
            assert np.all(gap <= 3 * sem + 0.04) and np.all(gap[-5:] <= 3 * sem[-5:] + 0.01), (alpha, name, gap, sem)
        np.testing.assert_allclose(result.mean["m_2"][0], START, atol=0.01)
        m_2 = expected["m_2"][-1]
        if learns:
            assert m_2 > 0.4 and result.mean["m_2"][-1] > 0.3
        else:
            assert m_2 < 1e-3 and abs(result.mean["m_2"][-1]) < 0.01


def test_gamp_start_must_be_an_overlap():
    """``init`` is checked before anything runs: a symmetric ``k x k`` matrix with eigenvalues in [0, 1]."""
    theory = hd.MultiIndex(link="staircase", k=2, panel_order=0)
    for bad in (np.eye(3) / 2, np.diag([1.5, 0.0]), np.asarray([[0.0, 0.1], [0.0, 0.0]])):
        with pytest.raises(hd.ParameterError, match="parameter 'init'"):
            hd.simulate.simulate(theory, d=10, seeds=1, init=bad)
