"""ERM on elliptical (heavy-tailed) covariates ``x = sqrt(omega) z`` (Adomaityte, Defilippis,
Loureiro & Sicuro 2023, "High-dimensional robust regression under heavy-tailed data: asymptotics and
universality"): the scale's quadrature against SciPy, a constant scale against Gaussian data with a
rescaled covariance, ridge and Huber against simulations, the paper's qualitative claims, gradients
by finite differences, input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import hdtheory as hd
from hdtheory import ERM, ParameterError
from hdtheory.kernels import inverse_gamma_rule
from hdtheory.models.erm import Overlaps
from hdtheory.simulate import simulate

_COMMON = dict(teacher="linear", scale="inverse-gamma", scale_order=6)


def _solver(loss):
    """One compiled, vmapped solve per loss for the whole file, over rows ``(alpha, lam, tail,
    delta, noise)``."""

    def one(p):
        theory = ERM(alpha=p[0], lam=p[1], tail=p[2], delta=p[3], noise=p[4], loss=loss, **_COMMON)
        sol = hd.solve(theory)
        return sol.observables, sol.converged

    return jax.jit(jax.vmap(one))


@pytest.fixture(scope="module")
def solvers():
    return {loss: _solver(loss) for loss in ("square", "huber")}


@pytest.mark.parametrize("a", [1.5, 3.0, 30.0])
def test_inverse_gamma_rule_against_quad(a):
    rule = jax.jit(inverse_gamma_rule, static_argnums=2)
    omega, w = map(np.asarray, rule(a, a - 1, 8))
    law = stats.invgamma(a, scale=a - 1)
    for f in (lambda o: o, lambda o: o / (1 + 0.05 * o), np.sqrt, lambda o: np.exp(-o)):
        # In log omega, where the integrand is smooth; SciPy's adaptive rule to 1e-13.
        ref = integrate.quad(
            lambda x: f(np.exp(x)) * law.pdf(np.exp(x)) * np.exp(x), -60, 200,
            points=[np.log((a - 1) / a)], limit=2000, epsabs=0, epsrel=1e-13,
        )[0]
        np.testing.assert_allclose(np.sum(w * f(omega)), ref, rtol=1e-10)
    np.testing.assert_allclose(np.sum(w * omega), 1.0, rtol=1e-10)  # E omega = 1
    omega32, w32 = rule(jnp.float32(a), jnp.float32(a - 1), 8)
    assert omega32.dtype == jnp.float32 and np.isfinite(omega32).all()
    np.testing.assert_allclose(float(jnp.sum(w32 * omega32)), 1.0, rtol=1e-4)


_EXPONENT = {"linear": 1.0, "probit": 1.0}


@eqx.filter_jit
def _update_and_observables(theory, state):
    """The map and the observables at ``state``, one compiled program per theory's structure."""
    return theory.update(state), theory.observables(state)


@pytest.mark.parametrize(
    "loss, teacher, noise, c",
    [("square", "linear", 0.3, 1.0), ("square", "linear", 0.3, 2.5), ("huber", "linear", 0.3, 2.5),
     ("logistic", "probit", 0.2, 0.4)],
)
def test_constant_scale_is_gaussian_data_rescaled(loss, teacher, noise, c):
    """``omega = c`` is Gaussian data of covariance ``c I`` with the noise scaled alike: ERM with
    ``w' = sqrt(c) w``, ``rho' = c rho``, ``lam' = lam / c``, the noise ``c^k noise``, and overlaps
    ``c (m, q, V)`` (conjugates ``/ c``); the errors and the training loss are the same numbers."""
    params = dict(alpha=1.7, lam=0.2, rho=1.3, loss=loss, teacher=teacher, panel_order=16, order=24)
    elliptical = ERM(**params, noise=noise, scale="two-point", scale_1=c, scale_2=c, scale_p=0.3)
    gaussian = ERM(**(params | dict(rho=c * 1.3, lam=0.2 / c, noise=noise * c ** _EXPONENT[teacher])))
    state = Overlaps(m=jnp.asarray(0.5), q=jnp.asarray(0.9), V=jnp.asarray(0.7))
    scaled = Overlaps(m=c * state.m, q=c * state.q, V=c * state.V)
    mapped, obs = _update_and_observables(elliptical, state)
    reference, ref = _update_and_observables(gaussian, scaled)
    for key in ("m", "q", "V"):
        np.testing.assert_allclose(c * getattr(mapped, key), getattr(reference, key), rtol=1e-11, err_msg=key)
    for key in ("mhat", "qhat", "Vhat"):
        np.testing.assert_allclose(obs[key] / c, ref[key], rtol=1e-11, err_msg=key)
    for key in ("test_error", "test_error_total", "train_loss"):
        np.testing.assert_allclose(obs[key], ref[key], rtol=1e-11, err_msg=key)


# The default run checks the same path against simulation with the square loss.
@pytest.mark.parametrize("loss, tail, d, seeds", [("square", 2.0, 500, 4),
                                                  pytest.param("huber", 3.0, 500, 3, marks=pytest.mark.extended)])
def test_against_simulation(solvers, loss, tail, d, seeds):
    """Student-t covariates (``2 tail`` degrees of freedom; ``tail = 2``: ``x x^T`` of infinite
    variance) and heavy-tailed noise. Tolerance: four standard errors over the seeds (the
    finite-size bias, ``O(1 / d)``, is below one here: ridge at ``d = 1200`` agrees to 3e-5 in
    ``m``)."""
    obs, converged = solvers[loss](jnp.asarray([[2.0, 0.1, tail, 1.0, 0.5]]))
    assert converged.all()
    sim = simulate(ERM(alpha=2.0, lam=0.1, tail=tail, noise=0.5, loss=loss, **_COMMON), d=d, seeds=seeds)
    for key in ("m", "q", "test_error", "train_loss"):
        theory = float(obs[key][0])
        assert abs(theory - sim.mean[key]) <= 4 * sim.sem[key], (key, theory, sim.mean[key], sim.sem[key])
    # The held-out error is measured on elliptical test data.
    assert abs(float(obs["test_error"][0]) - sim.mean["test_error_empirical"]) <= 4 * sim.sem["test_error_empirical"]


def test_huber_beats_square_and_needs_a_penalty(solvers):
    """The paper's claims (its section on the Huber loss, heavy-tailed noise): under heavy tails
    (``tail = 1.5``, joint noise of variance 1, ``alpha = 5``) the Huber loss beats the square loss,
    each at its best ``lam``, and Huber's best ``lam`` is not zero even with ``delta`` tuned: the
    best ``delta`` at ``lam -> 0`` is worse than the best ``(delta, lam)``. A grid of 10 ``lam`` and
    3 ``delta``; near-Gaussian data (``tail = 1e6``) for contrast, where the square loss wins and
    agrees with Gaussian ridge in closed form."""
    lams = np.logspace(-3, 1.5, 10)
    deltas = (0.3, 1.0, 3.0)
    rows = lambda tail, delta: np.stack([[5.0, lam, tail, delta, 1.0] for lam in lams])
    square, ok = solvers["square"](jnp.asarray(np.concatenate([rows(1.5, 1.0), rows(1e6, 1.0)])))
    assert ok.all()
    huber, ok = solvers["huber"](jnp.asarray(np.concatenate([rows(1.5, d) for d in deltas] + [rows(1e6, 1.0)])))
    assert ok.all()
    square_heavy, square_gauss = np.split(np.asarray(square["test_error"]), 2)
    huber_heavy = np.asarray(huber["test_error"][: 3 * len(lams)]).reshape(3, len(lams))
    huber_gauss = np.asarray(huber["test_error"][3 * len(lams):])
    assert huber_heavy.min() < 0.95 * square_heavy.min()
    assert huber_heavy[:, 0].min() > 1.2 * huber_heavy.min()  # lam = 1e-3, the best delta
    best = np.unravel_index(np.argmin(huber_heavy), huber_heavy.shape)
    assert 0 < best[1] < len(lams) - 1  # an interior optimum in lam
    assert square_gauss.min() < huber_gauss.min()
    # tail -> inf is Gaussian data (Var omega = 1 / (tail - 2)): ridge's closed form.
    for lam, error in zip(lams, square_gauss):
        ridge = ERM(alpha=5.0, lam=lam, noise=1.0, loss="square", teacher="linear")._ridge_fixed_point(jnp.ones(()))
        np.testing.assert_allclose(error, 1.0 - 2 * ridge.m + ridge.q, rtol=1e-5)


def test_gradients_by_finite_differences(solvers):
    """``d test_error / d lam`` and ``/ d tail`` (Huber, ``tail = 3``) through the fixed point and
    the scale's quadrature, against central differences (step 1e-5, error ~1e-10)."""
    point = np.array([2.0, 0.1, 3.0, 1.0, 0.5])

    def error(lam, tail):
        return hd.solve(ERM(alpha=2.0, lam=lam, tail=tail, noise=0.5, loss="huber", **_COMMON)).observables["test_error"]

    grad = jax.jit(jax.grad(error, argnums=(0, 1)))(0.1, 3.0)
    h = 1e-5
    steps = np.array([[0, h, 0, 0, 0], [0, -h, 0, 0, 0], [0, 0, h, 0, 0], [0, 0, -h, 0, 0]])
    obs, converged = solvers["huber"](jnp.asarray(point + steps))
    assert converged.all()
    e = np.asarray(obs["test_error"])
    np.testing.assert_allclose(float(grad[0]), (e[0] - e[1]) / (2 * h), rtol=1e-5)
    np.testing.assert_allclose(float(grad[1]), (e[2] - e[3]) / (2 * h), rtol=1e-5)
    assert abs(float(grad[1])) > 1e-4  # the tail matters


def test_input():
    with pytest.raises(ParameterError, match="'tail'"):
        ERM(scale="inverse-gamma", tail=1.0)
    with pytest.raises(ParameterError, match="'scale_p'"):
        ERM(scale="two-point", scale_p=1.5)
    with pytest.raises(ParameterError, match="'scale_1'"):
        ERM(scale="two-point", scale_1=0.0)
    with pytest.raises(ParameterError, match="'scale'"):
        ERM(scale="cauchy")
    with pytest.raises(ParameterError, match="'scale'"):
        hd.GCM(scale="two-point")
    with pytest.raises(ParameterError, match="'noise_scaling'"):
        ERM(teacher="probit", noise=0.5, scale="two-point", noise_scaling="none").separability_threshold("alpha")
