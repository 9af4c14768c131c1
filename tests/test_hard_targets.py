"""Two-layer networks on hard single-index targets: the committee ODEs with Hermite activations on
the sphere (Arnaboldi, Krzakala, Loureiro & Stephan 2023, "Escaping mediocrity")."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import Committee, SingleIndex
from hdtheory.simulate import simulate

SQUARE = (1.0, 0.0, math.sqrt(2.0))  # z^2 = He_0 + sqrt(2) He_2 / sqrt(2!)


def _network(p, lr=0.5, noise=0.0, **kwargs):
    """``(1/p) sum_k (w_k.x)^2`` on the sphere learning ``(w*.x)^2``: the paper's phase retrieval."""
    return Committee(
        K=p, M=1, activation="hermite", student=SQUARE, target=SQUARE, output="mean",
        geometry="spherical", lr=lr, noise=noise, **kwargs,
    )


@eqx.filter_jit
def _field_and_error(theory):
    state = theory.init()
    return theory.vector_field(0.0, state), theory.observables(0.0, state)["eg"]


@pytest.mark.parametrize("geometry", ["spherical", "unconstrained"])
def test_one_unit_is_single_index(geometry):
    """p = 1 is :class:`SingleIndex` (another code: 2-D Christoffel-weighted rule, its own ODE)."""
    target, student = (0.3, 0.0, 0.0, 1.0), (0.1, 0.2, 0.5, 0.8)  # a He_3 target, another student
    q = 1.0 if geometry == "spherical" else 1.3
    single = SingleIndex(
        target=target, student=student, geometry=geometry, lr=0.3, noise=0.1, m0=0.2, q0=q
    )
    committee = Committee(
        K=1, M=1, activation="hermite", student=student, target=target, geometry=geometry,
        lr=0.3, noise=0.1, Q0=[[q]], R0=[[0.2]],
    )
    field, eg = _field_and_error(committee)
    state = single.init()
    expected = single.vector_field(0.0, state)
    np.testing.assert_allclose(field.R[0, 0], expected.m, rtol=1e-12)
    np.testing.assert_allclose(field.Q[0, 0], expected.q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(eg, single.observables(0.0, state)["eg"], rtol=1e-12)


def _paper_field(Q, M, gamma, p, noise):
    """The ODEs of Arnaboldi et al. 2023 for sigma = sigma* = z^2 on the sphere, teacher P = 1, in
    their closed form (their time tau = gamma t / p; ``dM/dtau = Psi``, ``dQ/dtau = Phi``; the
    polynomial moments of their Appendix, as in the authors' code ``ode/square.py``), times
    ``gamma / p`` for our time ``t``."""
    trQ, MMt = np.trace(Q), M @ M.T
    psi = 2 * ((1 - trQ / p) * M + 2 * (M - Q @ M / p))
    tt = 3 * Q + 12 * MMt
    st = -2 / p * ((trQ + 2 * np.trace(MMt)) * Q + 2 * trQ * MMt + 2 * Q @ Q + 4 * (MMt @ Q + Q @ MMt))
    ss = ((trQ**2 + 2 * np.trace(Q @ Q)) * Q + 4 * trQ * Q @ Q + 8 * Q @ Q @ Q) / p**2
    phi = 4 * ((1 - trQ / p) * Q + 2 * (MMt - Q @ Q / p)) + 4 * gamma / p * (tt + st + ss + noise * Q)
    growth = np.diag(phi) / 2
    phi = phi - Q * (growth[:, None] + growth[None, :])
    psi = psi - M * growth[:, None]
    return gamma / p * phi, gamma / p * psi


def test_square_link_matches_the_papers_closed_forms():
    p, gamma, noise = 3, 0.7, 0.2
    a = np.random.default_rng(1).normal(size=(p + 1, p + 1))
    omega = a @ a.T / (p + 1) + 0.1 * np.eye(p + 1)
    omega = omega / np.sqrt(np.outer(np.diag(omega), np.diag(omega)))  # unit diagonal: the sphere
    Q, M = omega[:p, :p], omega[:p, p:]
    field, _ = _field_and_error(_network(p, gamma, noise, Q0=Q, R0=M))
    phi, psi = _paper_field(Q, M, gamma, p, noise)
    np.testing.assert_allclose(field.Q, phi, atol=1e-13)
    np.testing.assert_allclose(field.R, psi, atol=1e-13)
    assert np.max(np.abs(psi)) > 0.02  # a state away from mediocrity, where every term counts


def _rate(p, lr, noise=0.0):
    """The growth rate at mediocrity, by hand (Wick): ``E[Delta^2 sigma'(lambda_k)^2] / 4`` at
    ``R = 0``, ``Q = I`` is ``2 + 2/p + 8/p^2`` (plus the label noise)."""
    g = lr / p
    return g * (4 - 2 * g * (2 + 2 / p + 8 / p**2 + noise))


# The default run checks the escape's event time against the paper's formula at width two
# (test_hard_targets_published).
@pytest.mark.extended
def test_escape_time_against_p():
    """The escape from the mediocre plateau takes ``log(level / m0) / r`` in its linear stage, with
    ``r = (lr/p) [4 - 2 (lr/p) c_p]``, ``c_p = 2 + 2/p + 8/p^2``: over two starts ``m0`` the
    nonlinear end of the escape cancels, and the difference of the event times is
    ``log(m0_a / m0_b) / r``. At fixed ``lr / p`` the SGD noise term falls with ``p``, so the
    escape gets faster with the width, but by a factor bounded in ``p`` (Arnaboldi et al. 2023:
    width helps by a constant factor only); here ``r`` rises from ``0.75 lr/p`` at ``p = 1`` to
    ``lr/p (4 - 4 lr/p)`` as ``p -> infinity``."""
    lr_over_p, level = 0.125, 0.05
    starts = jnp.array([1e-4, 1e-7])
    times = {}
    for p in (1, 4):

        @jax.jit
        def escape(m0):
            theory = _network(p, lr_over_p * p, R0=m0 * jnp.ones((p, 1)), Q0=jnp.eye(p))
            return hd.integrate(
                theory, 1e4, saveat=jnp.array([0.0]), event=hd.crossing("max_overlap", level)
            ).event_time

        t = jax.vmap(escape)(starts)
        assert np.all(np.isfinite(t))
        times[p] = t
        np.testing.assert_allclose(t[1] - t[0], math.log(1e3) / _rate(p, lr_over_p * p), rtol=2e-3)
    assert times[1][1] > times[4][1]  # wider escapes sooner at the same lr / p


TIMES = jnp.array([0.0, 5.0, 10.0, 15.0])


def _escaping(p, lr):
    R0 = jnp.array([[0.3], [0.25]])[:p]
    return _network(p, lr, noise=0.01, R0=R0, Q0=jnp.eye(p))


@jax.jit
def _curves(lr):
    trajectory = hd.integrate(_escaping(2, lr), TIMES[-1], saveat=TIMES)
    return trajectory.observables["eg"], trajectory.observables["R"]


# The default run checks these ODEs against the chain of the overlaps with the readout trained
# (test_hard_targets_exit), and that chain against SGD on the weights.
@pytest.mark.extended
def test_simulation_follows_the_odes():
    """Online SGD at d = 500 (4 seeds) against the ODEs through the escape. The overlaps of one
    run fluctuate by O(1/sqrt(d)) ~ 0.05, amplified along the escape; the tolerance is 4 standard
    errors of the mean over the seeds plus 0.02 for the 1/d bias."""
    eg, R = _curves(0.1)
    assert R[-1].min() > 0.8 and eg[-1] < 0.2 * eg[0]  # the ODE has escaped
    result = simulate(_escaping(2, 0.1), d=500, seeds=4, times=TIMES, key=jax.random.PRNGKey(3))
    for name, ode in (("R", R), ("eg", eg)):
        mean, sem = np.asarray(result.mean[name]), np.asarray(result.sem[name])
        assert np.all(np.abs(mean - ode) <= 4 * sem + 0.02), (name, mean, ode, sem)


# The default run checks the committee's adjoint through the same integration (test_dynamics_committee).
@pytest.mark.extended
def test_error_gradient_in_the_learning_rate():
    """d eg(t = 10) / d lr through the adjoint of the solver, against central differences (one
    unit: the smallest program; one compiled program, whose values give the differences)."""

    def error(lr):
        return hd.integrate(_escaping(1, lr), 10.0, saveat=jnp.array([10.0])).observables["eg"][0]

    both = jax.jit(jax.value_and_grad(error))
    grad = both(0.1)[1]
    h = 1e-5
    fd = (both(0.1 + h)[0] - both(0.1 - h)[0]) / (2 * h)
    assert abs(fd) > 1e-2
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_bad_input_is_refused():
    with pytest.raises(ParameterError, match="Q0"):
        _network(2, Q0=2 * jnp.eye(2), R0=jnp.zeros((2, 1)))
    with pytest.raises(ParameterError, match="student"):
        Committee(K=1, M=1, activation="hermite", student=[[1.0, 0.0]])


def test_hermite_kernel_of_degree_one_is_linear():
    """``Hermite((0, 1))`` is ``g(x) = x``: its quadrature against the closed forms of ``Linear``."""
    from hdtheory import kernels

    a = np.random.default_rng(2).normal(size=(4, 4))
    C = jnp.asarray(a @ a.T)
    h, linear = kernels.Hermite(coefficients=(0.0, 1.0)), kernels.activations.Linear()
    for name, n in (("i2", 2), ("j2", 2), ("i3", 3), ("i4", 4)):
        np.testing.assert_allclose(getattr(h, name)(C[:n, :n]), getattr(linear, name)(C[:n, :n]), rtol=1e-12)
