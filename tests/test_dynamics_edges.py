"""ODE theories at the edges: initial overlaps many scales apart, the error at convergence, solver
options that must not recompile, long Hermite expansions."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import hermite_e

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import Committee, SingleIndex


def test_default_tolerances_follow_initial_overlaps_of_1e_minus_9():
    """The setup of Goldt et al.'s public ``pyscm`` code (examples/scm_ode.py of
    github.com/sgoldt/pyscm): K = M = 4, erf, T = I, lr = 0.5, Q0 = diag(U(0, 1/2)) plus a
    symmetrised 1e-9 N(0, 1) part, R0 = 1e-9 U(0, 1). The plateau lasts until t ~ 1400, the error
    then falls from 0.06 to 1e-9 at t = 2000. At the default tolerances the error is within 1e-3 of
    a tight reference (atol 1e-16, rtol 1e-12) across the plateau and after it."""
    rng = np.random.RandomState(0)
    K = M = 4
    Q0 = np.diag(0.5 * rng.rand(K)) + 1e-9 * rng.randn(K, K)
    Q0 = 0.5 * (Q0 + Q0.T)
    R0 = 1e-9 * rng.rand(K, M)
    theory = Committee(K=K, M=M, lr=0.5, Q0=Q0, R0=R0)
    ts = jnp.array([100.0, 1000.0, 1400.0, 1500.0, 1600.0, 1700.0, 1800.0, 1900.0, 2000.0])
    default = hd.integrate(theory, 2000.0, saveat=ts)
    reference = hd.integrate(theory, 2000.0, saveat=ts, atol=1e-16, rtol=1e-12)
    assert bool(default.success) and bool(reference.success)
    eg, eg_ref = np.asarray(default.observables["eg"]), np.asarray(reference.observables["eg"])
    assert eg_ref[-1] < 1e-8 < 0.05 < eg_ref[0]  # the plateau and the escape are both covered
    np.testing.assert_allclose(eg, eg_ref, rtol=1e-3)


def _eg_in_long_double(Q, R, v):
    """``eg`` of erf committees (``T = I``, ``v* = 1``) in 80-bit arithmetic:
    ``E[g(u) g(u')] = (2 / pi) arcsin(C / sqrt((1 + C_uu)(1 + C_u'u')))`` for
    ``g(x) = erf(x / sqrt(2))`` (Saad & Solla 1995)."""
    ld = np.longdouble
    K = Q.shape[0]
    omega = np.block([[Q, R], [R.T, np.eye(K)]]).astype(ld)
    c = np.concatenate([v, -np.ones(K)]).astype(ld)
    d = np.sqrt(1 + np.diag(omega))
    return 0.5 * c @ ((2 / ld(np.pi)) * np.arcsin(omega / np.outer(d, d))) @ c


@pytest.mark.parametrize("K", [2, pytest.param(4, marks=pytest.mark.extended)])
def test_error_at_convergence_is_that_of_the_overlaps(K):
    """Long after the student has learnt the teacher (lr = 0.5), ``eg`` is a difference of
    order-one terms: it is the error of the integrated overlaps (computed again in long double)
    within the reported rounding level, and it is negative only where those overlaps give a
    negative error themselves (they are then no covariance, by the integration's rounding)."""
    theory = Committee(K=K, M=K, lr=0.5, q0=0.5, r0=0.1)
    t1 = 1000.0
    ts = jnp.linspace(0.5 * t1, t1, 41)
    trajectory = hd.integrate(theory, t1, saveat=ts)
    assert bool(trajectory.success)
    eg = np.asarray(trajectory.observables["eg"])
    assert eg[-1] < 1e-13  # converged: what is left is rounding
    rounding = np.asarray(trajectory.observables["eg_rounding"])
    Q, R, v = (np.asarray(x) for x in (trajectory.state.Q, trajectory.state.R, trajectory.state.v))
    reference = np.array([float(_eg_in_long_double(Q[i], R[i], v[i])) for i in range(len(ts))])
    np.testing.assert_array_less(np.abs(eg - reference), rounding + 1e-9 * np.abs(reference))
    assert np.all(reference[eg < 0] < 0)
    assert np.all(rounding < 1e-12)


_TRACES = []


class _Counted(Committee):
    """A committee machine that records each trace of its vector field."""

    def vector_field(self, t, state):
        _TRACES.append(1)
        return super().vector_field(t, state)


def test_new_tolerances_reuse_the_compiled_solve():
    theory = _Counted(K=1, M=1, activation="linear", lr=0.5, q0=0.3, R0=[[0.2]])
    ts = jnp.array([5.0])
    loose = hd.integrate(theory, 5.0, saveat=ts, rtol=1e-4, atol=1e-6, max_norm=1e8, dt0=0.1)
    traces = len(_TRACES)
    assert traces > 0
    tight = hd.integrate(theory, 5.0, saveat=ts, rtol=1e-10, atol=1e-12, max_norm=1e6, dt0=0.01)
    assert len(_TRACES) == traces  # no new trace: the same compiled program
    assert int(tight.steps) > int(loose.steps)  # the tolerances do reach the controller
    # e = 2 eg obeys de/dt = -(2 eta - eta^2) e (the linear perceptron without noise).
    exact = 0.5 * (0.3 - 2 * 0.2 + 1.0) * math.exp(-(2 * 0.5 - 0.25) * 5.0)
    assert float(tight.observables["eg"][-1]) == pytest.approx(exact, rel=1e-9)
    # Scaled tolerances (the default) are a second program, and a second rtol reuses it.
    hd.integrate(theory, 5.0, saveat=ts, rtol=1e-6)
    traces = len(_TRACES)
    hd.integrate(theory, 5.0, saveat=ts, rtol=1e-9)
    assert len(_TRACES) == traces


@pytest.mark.parametrize("bad", [{"rtol": -1.0}, {"atol": float("nan")}, {"max_norm": 0.0}])
def test_bad_tolerances_are_refused(bad):
    with pytest.raises(ParameterError, match=next(iter(bad))):
        hd.integrate(Committee(K=1, M=1), 1.0, **bad)


def _exact_moments(s, t, m, noise):
    """The moments of the spherical single-index ODE by Hermite algebra (numpy's HermiteE products)
    and ``E[He_j(lambda) He_k(nu)] = k! m^k delta_jk`` for standard ``(lambda, nu)`` of
    correlation ``m``: ``(eg, E[D f' nu], E[D f' lambda], E[(D^2 + noise) f'^2])``."""
    scale = np.array([1 / math.sqrt(math.factorial(k)) for k in range(len(s))])
    S, T = s * scale, t * scale  # coefficients of He_k
    dS, x, one = hermite_e.hermeder(S), np.array([0.0, 1.0]), np.array([1.0])
    mul = hermite_e.hermemul

    def E(a, b):
        return sum(a[k] * b[k] * math.factorial(k) * m**k for k in range(min(len(a), len(b))))

    eg = 0.5 * (E(mul(S, S), one) - 2 * E(S, T) + E(mul(T, T), one))
    e_nu = E(mul(S, dS), x) - E(dS, mul(x, T))
    e_lam = E(mul(mul(S, dS), x), one) - E(mul(x, dS), T)
    dS2 = mul(dS, dS)
    e_sq = E(mul(mul(S, S), dS2), one) - 2 * E(mul(S, dS2), T) + E(dS2, mul(T, T))
    return eg, e_nu, e_lam, e_sq + noise * E(dS2, one)


def test_single_index_with_forty_hermite_coefficients_is_exact():
    """40 coefficients (degree 39): eg by orthogonality, ``eg = sum_k (s_k - t_k)^2 / 2 +
    sum_k s_k t_k (1 - m^k)``, and the overlap's vector field against Hermite algebra."""
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=40) / 6, rng.normal(size=40) / 6
    m, eta, noise = 0.3, 1e-3, 0.1
    theory = SingleIndex(lr=eta, m0=m, target=t, student=s, noise=noise)
    state = theory.init()
    eg = float(theory.observables(0.0, state)["eg"])
    exact = 0.5 * np.sum((s - t) ** 2) + np.sum(s * t * (1 - m ** np.arange(40)))
    assert eg == pytest.approx(exact, rel=1e-12)
    _, e_nu, e_lam, e_sq = _exact_moments(s, t, m, noise)
    dm = -eta * (e_nu - m * e_lam) - 0.5 * eta**2 * m * e_sq
    assert float(theory.vector_field(0.0, state).m) == pytest.approx(dm, rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"target": np.ones(65)}, "target"), ({"student": np.ones(70)}, "student"),
     ({"target": np.ones(10), "order": 12}, "order")],
)
def test_single_index_refuses_what_it_cannot_integrate_exactly(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SingleIndex(**kwargs)
