"""Steady states of ODE theories (``hd.steady_state``): zeros of the vector field by Newton's method,
their stability, their derivatives.

References: the linear perceptron's exact steady state (K = M = 1, g(x) = x: ``R* = 1``,
``e* = Q* - 2 R* + 1 = eta^2 sigma / (2 eta - eta^2)``, ``eg = e / 2``; the Jacobian's eigenvalues
``-eta`` (along R) and ``eta^2 - 2 eta`` (along Q), so stable for ``eta < 2``), and, for the
committee machine, the integration itself: its plateau, and the exponential rates of its escape
and of its final convergence.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

ETA, SIGMA = 0.5, 0.1


def perceptron(lr=ETA, noise=SIGMA):
    return hd.Committee(K=1, M=1, activation="linear", lr=lr, noise=noise, q0=0.3, R0=[[0.2]])


def test_linear_perceptron_steady_state_and_its_stability_in_closed_form():
    lrs = jnp.array([0.25, 0.5, 1.5, 1.9, 2.1])
    sols = jax.jit(jax.vmap(lambda lr: hd.steady_state(perceptron(lr=lr))))(lrs)
    assert sols.converged.all()
    eta = np.asarray(lrs)
    e = eta**2 * SIGMA / (2 * eta - eta**2)
    np.testing.assert_allclose(sols.observables["eg"][:-1], (e / 2)[:-1], rtol=1e-10)
    np.testing.assert_allclose(sols.state.R[:, 0, 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(sols.observables["growth_rate"], np.maximum(-eta, eta**2 - 2 * eta), rtol=1e-10)
    # Past eta = 2 the steady state still exists (a negative "error": no covariance) but repels.
    np.testing.assert_array_equal(sols.observables["stable"], eta < 2)


def test_derivatives_of_the_steady_state_by_implicit_differentiation():
    def eg(lr, noise):
        return hd.steady_state(perceptron(lr, noise)).observables["eg"]

    d_lr, d_noise = jax.grad(eg, argnums=(0, 1))(ETA, SIGMA)
    # eg = eta sigma / (2 (2 - eta)).
    assert float(d_noise) == pytest.approx(ETA / (2 * (2 - ETA)), rel=1e-10)
    assert float(d_lr) == pytest.approx(SIGMA / (2 - ETA) ** 2, rel=1e-10)


@pytest.fixture(scope="module")
def committee_run():
    theory = hd.Committee(K=2, M=2, lr=0.5)
    ts = jnp.linspace(0.0, 1000.0, 201)
    return theory, ts, hd.integrate(theory, 1000.0, saveat=ts)


def test_the_committee_plateau_is_a_saddle_whose_rate_sets_the_escape(committee_run):
    theory, ts, run = committee_run
    eg = np.asarray(run.observables["eg"])
    flattest = np.argmin(np.where(eg > 1e-3, np.abs(np.gradient(eg, ts)), np.inf))
    on_plateau = jax.tree.map(lambda x: x[flattest], run.state)
    plateau = hd.steady_state(theory, on_plateau)
    assert plateau.converged and not plateau.observables["stable"]
    # The integration passes within its initial asymmetry (r0 = 1e-3) of the saddle.
    assert float(plateau.observables["eg"]) == pytest.approx(eg[flattest], abs=5e-5)
    Q, R = np.asarray(plateau.state.Q), np.asarray(plateau.state.R)
    np.testing.assert_allclose(R, R.mean(), rtol=1e-8)  # symmetric: every student alike
    # Leaving it, eg drops by the square of the unstable mode (eg is stationary in it by
    # symmetry), so as exp(2 growth_rate t): the rate fitted on the integration's escape.
    # Fitted where the gap is between 2e-3 and 1e-1 of eg: past the approach to the saddle (whose
    # decaying part still shows below), before the fall to the teacher.
    gap = float(plateau.observables["eg"]) - eg
    window = (np.asarray(ts) > ts[flattest]) & (gap > 2e-3 * eg[flattest]) & (gap < 1e-1 * eg[flattest])
    assert window.sum() >= 3
    fitted = np.polyfit(np.asarray(ts)[window], np.log(gap[window]), 1)[0]
    assert fitted == pytest.approx(2 * float(plateau.observables["growth_rate"]), rel=0.05)
    assert np.all(np.linalg.eigvalsh(Q) > 0)


def test_the_committee_learns_the_teacher_at_a_stable_point_with_the_final_rate(committee_run):
    theory, ts, run = committee_run
    learned = hd.steady_state(theory, jax.tree.map(lambda x: x[100], run.state))
    assert learned.converged and learned.observables["stable"]
    assert learned.observables["eg"] < 1e-12
    R = np.abs(np.asarray(learned.state.R))
    np.testing.assert_allclose(np.sort(R, axis=None), [0, 0, 1, 1], atol=1e-8)  # a permutation
    eg = np.asarray(run.observables["eg"])
    late = (ts > 600) & (ts < 900)
    fitted = np.polyfit(np.asarray(ts)[late], np.log(eg[late]), 1)[0]
    assert fitted == pytest.approx(2 * float(learned.observables["growth_rate"]), rel=0.02)


def test_bad_requests_are_parameter_errors():
    with pytest.raises(hd.ParameterError, match="ODETheory"):
        hd.steady_state(hd.ERM())
    with pytest.raises(hd.ParameterError, match="t must"):
        hd.steady_state(perceptron(), t=-1.0)
