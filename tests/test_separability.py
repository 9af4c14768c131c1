"""The separability threshold of logistic and hinge regression at lam = 0.

Checked against: Cover's (1965) capacity alpha = 2 for random labels; Candès and Sur's (2020,
Ann. Statist. 48(1) 27-42, Theorem 2.1) definition of the boundary, h = min over (t0, t1) of
E[(t0 Y + t1 Y V - Z)_+^2], evaluated independently (SciPy quad over V, the Z integral checked
against quad, BFGS over both t0 and t1, that is with their intercept), in their variables: a
logistic model P(Y = 1 | V) = sigmoid(gamma V) is teacher=logistic with noise = 1 and rho = gamma^2,
and kappa = p / n = 1 / alpha; linear-programming feasibility of simulated data at d = 200; the
solver, which converges at lam = 0 only above the threshold; finite differences.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats
from scipy.optimize import linprog

import hdtheory as hd
from hdtheory import kernels

_kernel = jax.jit(kernels.separability_threshold, static_argnums=2)


def _alpha(theory):
    return hd.threshold(theory, "alpha", "separability")


@functools.cache
def _probit_threshold():
    return float(_alpha(hd.ERM(loss="logistic", teacher="probit", noise=0.5, lam=0.0)).value)


def test_random_labels_give_covers_capacity():
    result = _alpha(hd.ERM(loss="hinge", teacher="random", lam=0.1))
    assert bool(result.found) and result.states == ()
    assert abs(float(result.value) - 2.0) < 1e-10


@pytest.mark.parametrize("channel", [kernels.Sign(0.0), kernels.Probit(0.0), kernels.Logit(0.0)])
def test_noiseless_teachers_are_separable_at_every_alpha(channel):
    result = _kernel(channel, 1.0)
    assert float(result.alpha) == np.inf and bool(result.converged)
    # The derivative there is zero, not NaN.
    assert float(jax.grad(lambda n: _kernel(type(channel)(n), 1.0).alpha)(0.0)) == 0.0


def _g(a):
    """E(a - Z)_+^2 in closed form (checked against quad in the test below)."""
    return (a * a + 1) * special.ndtr(a) + a * stats.norm.pdf(a)


def _candes_sur_h(p_up):
    """min over (t0, t1) of sum_y E_V[P(y | V) g(t0 y + t1 y V)]: Theorem 2.1 with an intercept."""

    def expectation(f):
        # Split at 0, where the sign teacher's label law steps.
        return sum(
            integrate.quad(lambda v: stats.norm.pdf(v) * f(v), lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
            for lo, hi in ((-np.inf, 0.0), (0.0, np.inf))
        )

    def H(t):
        values = np.zeros(3)
        for y in (-1.0, 1.0):
            p = lambda v: p_up(v) if y > 0 else 1 - p_up(v)
            a = lambda v: t[0] * y + t[1] * y * v
            values += [
                expectation(lambda v: p(v) * _g(a(v))),
                expectation(lambda v: p(v) * y * _dg(a(v))),
                expectation(lambda v: p(v) * y * v * _dg(a(v))),
            ]
        return values[0], values[1:]

    result = optimize.minimize(H, [0.2, -0.5], jac=True, method="BFGS", options={"gtol": 1e-11})
    return result.fun, result.x


def _dg(a):
    return 2 * (a * special.ndtr(a) + stats.norm.pdf(a))


def test_against_candes_and_sur_definition():
    for a in (-1.3, 0.0, 2.1):
        by_quad = integrate.quad(lambda z: stats.norm.pdf(z) * (a - z) ** 2, -np.inf, a, epsabs=1e-14)[0]
        slope = integrate.quad(lambda z: stats.norm.pdf(z) * 2 * (a - z), -np.inf, a, epsabs=1e-14)[0]
        assert abs(_g(a) - by_quad) < 1e-12 and abs(_dg(a) - slope) < 1e-12
    cases = [
        # Their logistic model at signal strength gamma: teacher=logistic, noise = 1, rho = gamma^2.
        (kernels.Logit(1.0), 1.0, lambda v: special.expit(1.0 * v)),
        (kernels.Logit(1.0), 25.0, lambda v: special.expit(5.0 * v)),
        # Labels sign(V) flipped with probability 0.1.
        (kernels.Sign(0.1), 1.0, lambda v: np.where(v > 0, 0.9, 0.1)),
    ]
    for channel, rho, p_up in cases:
        h, (t0, t1) = _candes_sur_h(p_up)
        ours = _kernel(channel, rho)
        assert abs(t0) < 1e-5  # the intercept's direction does not help: same threshold without it
        assert abs(float(ours.h) - h) < 1e-8, (channel, rho, float(ours.h), h)
        assert abs(float(ours.t) - t1) < 1e-4
        assert abs(float(ours.alpha) - 1 / h) < 1e-7


def _separable(rng, d, n, labels):
    """Whether simulated data are linearly separable: the largest margin ``s`` of ``y_i x_i . w /
    sqrt(d) >= s`` over ``|w_j| <= 1`` (a bounded linear program, always feasible) is positive."""
    x = rng.standard_normal((n, d))
    z = x @ rng.standard_normal(d) / np.sqrt(d)
    y = labels(rng, z)
    cost = np.zeros(d + 1)
    cost[-1] = -1.0
    constraints = np.hstack([-(y[:, None] * x) / np.sqrt(d), np.ones((n, 1))])
    bounds = [(-1.0, 1.0)] * d + [(None, 1.0)]
    res = linprog(cost, A_ub=constraints, b_ub=np.zeros(n), bounds=bounds, method="highs")
    assert res.status == 0
    return -res.fun > 1e-6


def test_simulated_data_are_separable_below_the_threshold_only():
    """At d = 200 the fraction of separable data sets falls from ~1 to ~0 over about +-10% of alpha*
    (measured: 0.9 at 0.9 alpha*, 0.5 at alpha*, 0.2 at 1.1 alpha*, 10 seeds, probit; the largest
    margins at 0.75 alpha* are 0.04 to 0.16): 0.75 and 1.3 times alpha* are about 2.5 widths away,
    where each seed is on its side with probability ~0.99. At d = 500 (3 seeds) it holds too, but the
    linear programs take 150 s."""
    d, seeds = 200, 4
    teachers = [
        (hd.ERM(loss="logistic", teacher="probit", noise=0.5, lam=0.0),
         lambda rng, z: np.where(z + np.sqrt(0.5) * rng.standard_normal(z.shape) >= 0, 1.0, -1.0)),
        (hd.ERM(loss="hinge", teacher="sign", noise=0.1, lam=0.0),
         lambda rng, z: np.where(z >= 0, 1.0, -1.0) * np.where(rng.random(z.shape) < 0.1, -1.0, 1.0)),
    ]
    for theory, labels in teachers:
        alpha = float(_alpha(theory).value)
        rng = np.random.default_rng(0)
        below = [_separable(rng, d, round(0.75 * alpha * d), labels) for _ in range(seeds)]
        above = [_separable(rng, d, round(1.3 * alpha * d), labels) for _ in range(seeds)]
        assert all(below) and not any(above), (theory.teacher, below, above)


# tests/test_erm.py checks the solve at lam = 0 on both sides of the threshold (logistic loss, sign
# teacher); Candès and Sur's definition and the simulated data check the threshold.
@pytest.mark.extended
def test_solver_converges_at_lam_zero_only_above_the_threshold():
    alpha = _probit_threshold()
    factors = jnp.array([0.8, 0.9, 1.1, 1.2])
    theory = hd.ERM(loss="logistic", teacher="probit", noise=0.5, lam=0.0)
    solve = jax.vmap(lambda a: hd.solve(eqx.tree_at(lambda t: t.alpha, theory, a)))
    sol = solve(factors * alpha)
    assert np.array_equal(np.asarray(sol.converged), [False, False, True, True])
    below = np.asarray(sol.status)[:2]
    assert set(below.tolist()) <= {int(hd.Status.DIVERGED), int(hd.Status.MAX_STEPS)}
    # The norm grows as alpha comes down to the threshold.
    q = np.asarray(sol.observables["q"])[2:]
    assert q[0] > 1.5 * q[1]


def test_derivatives_against_finite_differences():
    # Through hd.threshold (probit), and through the kernel (the sign and logistic teachers).
    cases = [
        lambda n, r: _alpha(hd.ERM(loss="logistic", teacher="probit", noise=n, rho=r, lam=0.0)).value,
        lambda n, r: _kernel(kernels.Sign(n), r).alpha,
        lambda n, r: _kernel(kernels.Logit(n), r).alpha,
    ]
    eps = 1e-5
    for alpha, noise, rho in zip(cases, (0.5, 0.1, 1.0), (1.0, 1.0, 4.0)):
        grad = jax.grad(alpha, argnums=(0, 1))(noise, rho)
        fd_noise = (alpha(noise + eps, rho) - alpha(noise - eps, rho)) / (2 * eps)
        fd_rho = (alpha(noise, rho + eps) - alpha(noise, rho - eps)) / (2 * eps)
        assert abs(float(grad[0]) - float(fd_noise)) < 1e-6 * (1 + abs(float(fd_noise))), noise
        assert abs(float(grad[1]) - float(fd_rho)) < 1e-6 * (1 + abs(float(fd_rho))), noise
        if noise == 0.5:
            # Probit labels see rho / noise only: d/drho = -(noise / rho) d/dnoise.
            assert abs(float(grad[1]) + 0.5 * float(grad[0])) < 1e-10
            # Forward mode agrees.
            tangent = jax.jvp(lambda n: alpha(n, rho), (noise,), (1.0,))[1]
            assert abs(float(tangent) - float(grad[0])) < 1e-10 * (1 + abs(float(tangent)))
    # The sign teacher's labels do not depend on rho at all.
    assert float(jax.grad(cases[1], argnums=1)(0.1, 1.0)) == 0.0


def test_vmapped_over_noise_with_a_noiseless_point():
    noise = jnp.array([0.0, 0.05, 0.2])
    alpha = jax.vmap(lambda n: _kernel(kernels.Sign(n), 1.0).alpha)(noise)
    grads = jax.vmap(jax.grad(lambda n: _kernel(kernels.Sign(n), 1.0).alpha))(noise)
    assert float(alpha[0]) == np.inf and np.all(np.isfinite(np.asarray(alpha[1:])))
    assert np.all(np.diff(np.asarray(alpha[1:])) < 0)  # noisier labels separate at fewer samples
    assert np.all(np.isfinite(np.asarray(grads))) and float(grads[0]) == 0.0
    # Each point as computed alone.
    alone = _kernel(kernels.Sign(0.05), 1.0).alpha
    assert abs(float(alpha[1]) - float(alone)) < 1e-12 * float(alone)


def test_quadrature_order_and_float32():
    # Nearly noiseless labels (alpha* ~ 32, t* ~ -10): the panels follow the scale 1 / |t|.
    low, high = (float(_kernel(kernels.Sign(1e-4), 1.0, order).alpha) for order in (20, 80))
    assert abs(low - high) < 1e-9 * high
    single = _kernel(kernels.Probit(jnp.float32(0.5)), jnp.float32(1.0))
    assert single.alpha.dtype == jnp.float32 and bool(single.converged)
    assert abs(float(single.alpha) - _probit_threshold()) < 1e-5 * _probit_threshold()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _alpha(hd.ERM(loss="square", teacher="sign")), "'loss' must be logistic or hinge"),
        (lambda: hd.threshold(hd.ERM(noise=0.1), "noise", "separability"), "'axis' must be alpha"),
        (lambda: hd.threshold(hd.ERM(noise=0.1), "bogus", "separability"), "'axis' must be one of alpha"),
        (lambda: _alpha(hd.GCM(noise=0.1)), "GCM has no separability threshold"),
        (lambda: hd.threshold(hd.Spiked(), "snr", "separability"), "Spiked has no separability threshold"),
        (lambda: hd.threshold(hd.ERM(noise=0.1), "alpha", "separability", steps=0), "steps must be"),
        (lambda: hd.threshold(hd.Spiked(), "snr", "weak-recovery"), "bracket must be two"),
    ],
)
def test_errors(call, message):
    with pytest.raises(hd.ParameterError, match=message):
        call()
