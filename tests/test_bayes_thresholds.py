"""Published thresholds of noiseless real phase retrieval with a Gaussian prior (``BayesGLM``,
``prior="gaussian"``, ``channel="abs"``, ``noise=0``), to the digits the papers give.

- Weak recovery ``alpha_WR = 1/2``: Mondelli and Montanari 2018, "Fundamental limits of weak recovery
  with applications to phase retrieval", Found. Comput. Math. 19, 703 (real case, Gaussian sensing
  vectors); a closed form, checked through the slope of the map at ``q = 0`` as well.
- Information-theoretic (perfect recovery) ``alpha_IT = 1``: Maillard, Loureiro, Krzakala and
  Zdeborova 2020, "Phase retrieval in high dimensions: statistical and computational phase
  transitions", NeurIPS 2020, arXiv:2006.05228, stated in the abstract: "the information-theoretic
  transition to perfect recovery for full-rank matrices appears at alpha = 1 (real case)".
- Algorithmic ``alpha_alg ~ 1.13`` (AMP reaches perfect recovery; i.i.d. Gaussian sensing matrix,
  real case): the same paper's analysis of AMP, and Barbier, Krzakala, Macris, Miolane and Zdeborova
  2019, PNAS 116, 5451, on phase retrieval. Published with three digits, 1.13; the fold located by
  ``hd.threshold(..., "algorithmic", (1.0, 1.3))`` at these orders is 1.12848.

Everything runs in one compiled program (solves vmapped over the cases) at low quadrature orders,
which meet three digits since the xi panels are capped at the Gaussian's scales.
"""

import jax
import jax.numpy as jnp
import numpy as np

import hdtheory as hd
from compiled import optimised

ORDERS = dict(order=16, panel_order=6)


def phase_retrieval(alpha):
    return hd.BayesGLM(alpha=alpha, prior="gaussian", channel="abs", noise=0.0, **ORDERS)


@optimised  # solves that creep to the fixed point next to each threshold: the run is the cost
def _uninformed_mmse(alphas):
    sols = jax.vmap(lambda a: hd.solve(phase_retrieval(a)))(alphas)
    return sols.observables["mmse"], sols.converged


def test_weak_recovery_and_algorithmic_thresholds():
    """AMP's fixed point (state evolution from the uninformed start) on both sides of each threshold,
    half a unit of the third digit away: q = 0 below alpha_WR = 0.500 and q > 0 above; an error bounded
    away from zero below alpha_alg and perfect recovery (mmse 0) above, with alpha_alg in
    [1.125, 1.135), the published 1.13 to its three digits."""
    alphas = jnp.asarray([0.4995, 0.5005, 1.125, 1.135])
    mmse, converged = _uninformed_mmse(alphas)
    assert np.all(converged)
    assert abs(mmse[0] - 1) < 1e-8  # the trivial fixed point, stable
    assert 1e-4 < 1 - mmse[1] < 0.05  # a small overlap, growing from zero at alpha_WR
    assert mmse[2] > 0.05  # the uninformed branch still exists
    assert mmse[3] < 1e-10  # ... and has ended: AMP recovers the signal


def test_weak_recovery_is_where_the_trivial_point_loses_stability():
    """``dT/dq`` at ``q = 0`` is proportional to alpha (``qhat`` is), so its inverse at alpha = 1 is
    alpha_WR; it is 1 / E[(E[z^2 | y] - 1)^2] = 1 / 2 for y = |z| (Mondelli and Montanari 2018)."""
    slope = jax.jit(jax.grad(lambda q: phase_retrieval(1.0).update(q)))(jnp.asarray(0.0))
    np.testing.assert_allclose(1 / slope, 0.5, atol=1e-6)


def test_information_theoretic_threshold():
    """With a continuous prior and a noiseless channel, the potential ``f(q) = f_RS(q, qhat(q))``
    diverges at perfect recovery as ``c(alpha) log(1 / mmse)``, ``c = (alpha - alpha_IT) / 2``: to
    ``-inf`` below alpha_IT (the maximiser is inside, mmse > 0) and to ``+inf`` above (perfect
    recovery is optimal). The two branches' free entropies do not cross at finite values; the sign
    change of ``c`` is the threshold. ``c`` from two small mmse, at three alphas, is linear in alpha
    with slope 1/2 and vanishes at alpha_IT = 1. (Labels near perfect recovery need the higher label
    order: at 10 the slope is 1% off.)"""
    alphas = jnp.asarray([0.8, 1.0, 1.2])
    mmse = jnp.asarray([1e-6, 1e-9])

    def potential(alpha, v):
        theory = hd.BayesGLM(
            alpha=alpha, prior="gaussian", channel="abs", order=32, panel_order=12, label_order=20
        )
        return theory.free_entropy(theory.rho - v)

    f = jax.jit(jax.vmap(lambda a: jax.vmap(lambda v: potential(a, v))(mmse)))(alphas)
    c = (f[:, 1] - f[:, 0]) / np.log(mmse[0] / mmse[1])
    np.testing.assert_allclose(np.diff(c) / np.diff(alphas), 0.5, atol=1e-3)
    alpha_it = alphas - 2 * c
    np.testing.assert_allclose(alpha_it, 1.0, atol=1e-3)


def test_a_diverging_free_entropy_is_no_crossing():
    """``threshold(..., "information-theoretic")`` accepts a crossing only where both free entropies
    are stationary in the solver's coordinates. At perfect recovery (the informed state, on the
    solver's floor) the noiseless phase-retrieval potential still moves with ``log(1 / mmse)`` (see
    above): not stationary, so no crossing of its floor value is
    reported; the binary perceptron's is flat there (a finite free entropy, the first-order
    transition of Gyorgyi 1990, located in tests/test_bayes.py together with interior crossings)."""
    import equinox as eqx

    from hdtheory._transitions import _stationary

    _stationary = eqx.filter_jit(_stationary)
    retrieval = phase_retrieval(1.2)
    perceptron = hd.BayesGLM(alpha=1.6, prior="rademacher", channel="sign", **ORDERS)
    assert not _stationary(retrieval, retrieval.init("informed"))
    assert _stationary(perceptron, perceptron.init("informed"))
