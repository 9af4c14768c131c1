"""A field hard at ``M = 0`` that the grand staircase learns once another is: the ``gate`` link
``y = z2 sign(|z1| - 1) + noise`` of :class:`~hdtheory.MultiIndex` (derived here: the label's law given
``z1`` is ``N(0, 1 + noise)`` whatever ``z1``, so ``z1`` is independent of the label; once ``z2`` is
known, the label's sign against it reveals the gate)."""

import dataclasses
import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

NOISE = 0.5


@eqx.filter_jit
def _subspaces(theory):
    return theory.subspaces()


@eqx.filter_jit
def _conjugate(theory, M, order):
    return theory.conjugate(M, order)


@eqx.filter_jit
def _stage(theory):
    """The radius and held fixed point of stage 1, ``z2`` held learned."""
    return dataclasses.replace(theory, held=jnp.diag(jnp.asarray([0.0, 1.0]))).linear_stability()[:2]


def test_gate_hard_at_zero():
    """At ``M = 0``, with ``s = sign(|z1| - 1)`` independent of ``z2``, ``E[s] = 4 Q(1) - 1``
    (``Q`` the normal tail): ``E[z | y] = (0, E[s] y / (1 + noise))``, so ``T = diag(0, E[s]^2 / (1 + noise))``
    (``z2`` trivial); ``E[z2^2 | y] - 1 = y^2 / (1 + noise)^2 - 1 / (1 + noise)``, whose square averages to
    ``2 / (1 + noise)^2``, the top rate on ``E_22``; the label is independent of ``z1``, so
    ``E[z1 z | y] = E[z1 z]`` and ``G(y) e_1 = 0``: ``z1`` hard, its rates zero (all to 1e-6, the
    posterior's panels cut at ``z1 = 0, +-1``). The grand staircase: stage 0 learns ``z2`` at any
    ``alpha`` (stage 1 below)."""
    theory = hd.MultiIndex(link="gate", k=2, noise=NOISE)
    s = _subspaces(theory)
    gate = 4 * 0.5 * math.erfc(1 / math.sqrt(2)) - 1
    np.testing.assert_allclose(s.trivial_values, [gate**2 / (1 + NOISE), 0.0], rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(np.abs(s.trivial_basis[:, 0]), [0.0, 1.0], atol=1e-10)
    np.testing.assert_allclose(s.rates[0], 2 / (1 + NOISE) ** 2, rtol=1e-6)
    assert np.max(np.abs(s.rates[1:])) < 1e-10
    np.testing.assert_array_equal(s.hard, [False, True])
    np.testing.assert_allclose(np.abs(s.easy_basis[:, 1]), [1.0, 0.0], atol=1e-10)



# The default run checks a held stage's radius on both sides of its threshold for z1 + z2^2
# (tests/test_multi_index_subspaces.py) and the gate's closed forms at M = 0 (above).
@pytest.mark.extended
def test_gate_learned_after_the_linear_field():
    """The grand staircase of the gate: at stage 1 (``held = diag(0, 1)``) the conditional rate of ``z1``
    at the fixed point held on ``z2`` is positive, so ``z1`` joins where ``alpha mu(alpha) = 1`` (located
    at 2.944 at this noise): the stage's radius below one at ``alpha = 2``, above at 4."""
    theory = hd.MultiIndex(link="gate", k=2, noise=NOISE)
    for alpha, learns in ((2.0, False), (4.0, True)):
        radius, M = _stage(eqx.tree_at(lambda t: t.alpha, theory, jnp.asarray(alpha)))
        assert (radius > 1) == learns and M[1, 1] > 0.3 and M[0, 0] == 0


def test_gate_panels_past_the_stage():
    """Past the stage (``alpha = 4.5``, ``m_1`` near 0.64) the gate's edges ``|z1| = 1`` lie within
    ``sqrt(V_11)`` of ``omega_1``: at ``M = diag(0.64, 0.81)`` the default rule in ``xi`` (panels cut at
    ``omega_1 = +-1`` and ``omega_2 = 0``, 4 nodes each) puts ``Mhat`` within 1e-3 (relative, each
    diagonal entry) of the product Hermite rule of 48 nodes per axis, an independent rule (measured:
    ``Mhat_11`` 1.78753 against 1.78814, converging algebraically: 1.79189 at 32, 1.78737 at 64), where
    the Hermite rule of 8 nodes, the former default, puts ``Mhat_11`` 8% high."""
    theory = hd.MultiIndex(link="gate", k=2, alpha=4.5, noise=NOISE)
    M = jnp.diag(jnp.asarray([0.64, 0.81]))
    panels, fine, coarse = (np.diagonal(_conjugate(theory, M, order)) for order in (None, 48, 8))
    np.testing.assert_allclose(panels, fine, rtol=1e-3)
    assert coarse[0] / fine[0] - 1 > 0.05
