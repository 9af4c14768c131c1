"""Phase retrieval on power-law data (Braun et al. 2025, arXiv:2511.18661): the mode-by-mode
gradient flow against the logistic closed form of one direction, the isotropic ODE of
``SingleIndex``, the linearised escape rate, the spectral-tail exponent, online SGD at d = 1000, and
finite differences. The P = 1000 curves are one vmapped solve (a module fixture)."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import PowerLawRetrieval, SingleIndex
from hdtheory.dynamics.power_law import convergence_exponent

BASE = PowerLawRetrieval(modes=1000, lr=1.0)
# (decay a, teacher_decay b, sigma0): three tails, a start 10^-8 for the escape, the simulated one.
SETTINGS = jnp.array([[2.0, 0.0, 1e-2], [2.0, 1.0, 1e-2], [3.0, 0.0, 1e-2], [2.0, 0.0, 1e-8],
                      [2.0, 0.0, 0.1]])
EARLY = np.array([0.0, 2.0, 3.0, 5.0, 10.0, 20.0])
TAIL = np.geomspace(100.0, 1000.0, 12)
TIMES = jnp.asarray(np.concatenate([EARLY, TAIL]))


def _set(theory, a, b, sigma0):
    return eqx.tree_at(lambda t: (t.decay, t.teacher_decay, t.sigma0), theory, (a, b, sigma0))


@pytest.fixture(scope="module")
def curves():
    def solve(setting):
        theory = _set(BASE, *setting)
        return hd.integrate(theory, TIMES[-1], saveat=TIMES, rtol=1e-6, max_steps=20_000)

    trajectory = jax.jit(jax.vmap(solve))(SETTINGS)
    assert np.all(np.asarray(trajectory.status) == hd.ODEStatus.COMPLETED)
    return {k: np.asarray(v) for k, v in trajectory.observables.items()}


def test_spectral_tail_exponent(curves):
    """Phase (iii): eg ~ t^-(a + b - 1) / a (derived in the module docstring from the per-mode
    relaxation rates 4 B lr lambda_k, the paper's third phase), the tail beyond the modes learned by t
    (K(t) ~ t^(1/a)), fitted over t in [100, 1000] (1 << K(t) << P) for (a, b) = (2, 0),
    (2, 1), (3, 0), P = 1000: within 0.05 (the discreteness of the first unlearned modes and the end
    of the spectrum bend the fitted slope by 0.03, 0.005 and 0.004 here)."""
    window = slice(len(EARLY), None)
    fitted = np.asarray(convergence_exponent(TAIL, curves["eg"][:3, window]))
    a, b = np.asarray(SETTINGS[:3, 0]), np.asarray(SETTINGS[:3, 1])
    np.testing.assert_allclose(fitted, (a + b - 1) / a, atol=0.05)
    for a_, b_ in zip(a, b):
        assert float(_set(BASE, a_, b_, 1e-2).convergence_exponent) == pytest.approx((a_ + b_ - 1) / a_)


def test_fast_escape_at_the_linearised_rate(curves):
    """From w = sigma0 g, w = 0 is a saddle: dw/dt = lr M w with M = 2B Sigma + 4 (Sigma theta)
    (Sigma theta)^T, so |C| grows as exp(lr mu t), mu the top eigenvalue (escape_rate), between
    t = 3 and 5 from sigma0 = 1e-8 (the next eigenvalue's share has died out to ~1%, |C| < 0.02);
    the escape from sigma0 = 1e-2 is over by t ~ log(1e2) / (lr mu) + O(1)."""
    theory = _set(BASE, 2.0, 0.0, 1e-8)
    m = curves["m"][3]
    rate = math.log(m[3] / m[2]) / (EARLY[3] - EARLY[2])
    assert rate == pytest.approx(float(theory.escape_rate()), rel=2e-2)
    assert m[3] < 0.02 and curves["overlap"][0, len(EARLY) - 1] > 0.9


def test_ode_matches_online_sgd(curves):
    """d = P = 1000, a = 2, lr = 1, sigma0 = 0.1, 4 seeds, to t = 10: eg, m, q within 4 standard
    errors plus 0.02 (a seed's SGD noise moves them by ~lr / sqrt(d) = 0.03, and biases eg upward
    by O(lr^2 / d))."""
    theory = _set(BASE, 2.0, 0.0, 0.1)
    index = np.flatnonzero(EARLY <= 10.0)
    sim = hd.simulate.simulate(theory, seeds=4, times=EARLY[index], key=jax.random.PRNGKey(1))
    ode = {k: curves[k][4, index] for k in ("eg", "m", "q")}
    assert ode["eg"][-1] < 0.2 * ode["eg"][0]  # not trivial: the error falls fivefold
    for key in ("eg", "m", "q"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - ode[key]), 4 * sim.sem[key] + 0.02)
    with pytest.raises(ParameterError, match="'d'"):
        hd.simulate.simulate(theory, d=400)


def test_flat_spectrum_is_isotropic_phase_retrieval():
    """decay = 0 is isotropic data. From a general start, (m, q) = (C, A) follow the isotropic ODE of
    SingleIndex with f = f* = z^2 (Hermite coefficients (1, 0, sqrt(2))) and eta = lr / P, up to
    its O(eta^2) SGD-noise term (relative 1e-5 here). From w(0) = m0 theta, w = s theta with
    ds/dt = 6 (lr / P) s (1 - s^2) (one direction, one mode): u = s^2 is logistic,
    u(t) = u0 e^(r t) / (1 - u0 + u0 e^(r t)), r = 12 lr / P, and eg = 3 (1 - u)^2."""
    P, eta = 40, 1e-5
    theory = PowerLawRetrieval(modes=P, decay=0.0, lr=P * eta)
    ts = jnp.array([0.0, 0.1, 0.2, 0.5, 1.0]) / eta
    starts = jnp.array([[0.2, 0.1], [0.0, 0.01]])  # (sigma0, m0)

    def solve(start):
        moved = eqx.tree_at(lambda t: (t.sigma0, t.m0), theory, (start[0], start[1]))
        return hd.integrate(moved, ts[-1], saveat=ts, rtol=1e-10).observables

    ours = jax.vmap(solve)(starts)
    isotropic = SingleIndex(target=(1.0, 0.0, math.sqrt(2)), student=(1.0, 0.0, math.sqrt(2)),
                            geometry="unconstrained", lr=eta, m0=ours["m"][0, 0], q0=ours["q"][0, 0])
    theirs = hd.integrate(isotropic, ts[-1], saveat=ts, rtol=1e-10).observables
    assert float(ours["m"][0, -1]) > 0.9 > 3 * float(ours["m"][0, 0])
    for key in ("m", "q"):
        np.testing.assert_allclose(ours[key][0], theirs[key], rtol=1e-4)
    np.testing.assert_allclose(ours["eg"][0], 2 * theirs["eg"], rtol=1e-3)  # eg without the 1/2

    growth = np.exp(12 * eta * np.asarray(ts))
    u = 1e-4 * growth / (1 - 1e-4 + 1e-4 * growth)
    np.testing.assert_allclose(ours["eg"][1], 3 * (1 - u) ** 2, rtol=1e-7)
    assert float(ours["eg"][1, -1]) < 0.1 < 2.9 < float(ours["eg"][1, 0])


def test_gradients_match_finite_differences():
    """d eg(T) / d (lr, decay) by forward-mode differentiation through the solve, against central
    differences (step 1e-5) from the same compiled program, to 1e-6 relative."""
    theory = PowerLawRetrieval(modes=100, decay=2.0, lr=0.5, sigma0=0.05)

    def eg(p):
        moved = eqx.tree_at(lambda t: (t.lr, t.decay), theory, (p[0], p[1]))
        trajectory = hd.integrate(moved, 10.0, saveat=jnp.array([10.0]), rtol=1e-10,
                                  max_steps=1024, adjoint=diffrax.ForwardMode())
        value = trajectory.observables["eg"][0]
        return value, value

    h = 1e-5
    points = jnp.array([[0.5, 2.0], [0.5 + h, 2.0], [0.5 - h, 2.0], [0.5, 2.0 + h], [0.5, 2.0 - h]])
    grads, values = jax.vmap(jax.jacfwd(eg, has_aux=True))(points)
    fd = np.array([values[1] - values[2], values[3] - values[4]]) / (2 * h)
    np.testing.assert_allclose(np.asarray(grads[0]), fd, rtol=1e-6)
    assert np.all(np.abs(fd) > 1e-2)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"modes": 0}, "modes"), ({"decay": -1.0}, "decay"), ({"lr": 0.0}, "lr"),
     ({"teacher_decay": -0.5}, "teacher_decay"), ({"sigma0": 0.0, "m0": 0.0}, "sigma0")],
)
def test_bad_input(kwargs, name):
    from hdtheory.dynamics import DYNAMICS

    assert DYNAMICS["phase-retrieval-power-law"] is PowerLawRetrieval is hd.PowerLawRetrieval
    with pytest.raises(ParameterError, match=name):
        PowerLawRetrieval(**kwargs)
