"""The lp penalty (lam / p) |w|^p in ERM: its prox against a scalar minimisation and finite
differences, its weight averages against an independent integration, the reductions to the LASSO
(p = 1) and the ridge (p = 2), gradients in lam and p, simulations at finite d, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, stats

import hdtheory as hd
from hdtheory import ERM, ParameterError, kernels
from hdtheory.simulate import simulate

# The kernels as compiled programs (one per structure and shape), not primitive by primitive.
_prox = jax.jit(lambda penalty, x, V: penalty.prox(x, V))
_lp_prox = jax.jit(kernels.lp_prox)

SPARSE = dict(loss="square", teacher="linear", prior="gauss-bernoulli", sparsity=0.2, alpha=0.6, lam=0.3, noise=0.1)


def test_prox_is_the_minimiser_and_reduces_to_l1_and_ridge():
    # argmin_w (w - x)^2 / (2 V) + (lam / p) |w|^p by SciPy's bounded scalar minimisation (its xatol
    # 1e-12 leaves the minimiser to ~1e-8); at p = 1 the soft threshold, at p = 2 x / (1 + V lam).
    lam = 0.4
    for p in (1.0, 1.2, 1.5, 1.8, 2.0):
        penalty = kernels.LP(lam, p)
        for x, V in ((0.1, 0.5), (-0.3, 2.0), (1.7, 0.8), (-2.5, 1.3), (40.0, 3.0)):
            objective = lambda w: (w - x) ** 2 / (2 * V) + lam / p * abs(w) ** p
            best = optimize.minimize_scalar(objective, bounds=(-50, 50), method="bounded", options=dict(xatol=1e-12)).x
            assert abs(float(_prox(penalty, x, V)) - best) < 2e-8 * (1 + abs(best)), (p, x, V)
    x = jnp.linspace(-3, 3, 61)
    np.testing.assert_allclose(_prox(kernels.LP(lam, 1.0), x, 0.7), kernels.L1(lam).prox(x, 0.7), rtol=0, atol=1e-15)
    np.testing.assert_allclose(_prox(kernels.LP(lam, 2.0), x, 0.7), kernels.Ridge(lam).prox(x, 0.7), rtol=1e-15, atol=0)
    # Float32 runs and agrees to its precision.
    single = _lp_prox(x.astype(jnp.float32), jnp.float32(0.3), jnp.float32(1.4))
    assert single.dtype == jnp.float32
    np.testing.assert_allclose(single, _lp_prox(x, 0.3, 1.4), rtol=1e-5, atol=1e-7)


def test_prox_derivatives_match_finite_differences():
    # The implicit-function derivatives in x, t and p against central differences (forward ones at
    # p = 1, where the derivative in p is the right derivative); inside the LASSO's threshold all vanish.
    h = 1e-6
    gradient = jax.jit(jax.grad(kernels.lp_prox, argnums=(0, 1, 2)))
    for x, t, p in ((0.7, 0.3, 1.5), (-2.0, 1.1, 1.2), (0.4, 0.3, 1.9), (1.3, 0.5, 1.0), (-0.9, 0.2, 1.05), (0.2, 0.5, 1.0)):
        grads = gradient(x, t, p)
        for i, grad in enumerate(grads):
            up, down = [x, t, p], [x, t, p]
            up[i] += h
            down[i] -= h if (i < 2 or p > 1) else 0.0
            fd = (float(_lp_prox(*up)) - float(_lp_prox(*down))) / (up[i] - down[i])
            assert abs(float(grad) - fd) < 1e-6 * (1 + abs(fd)), (x, t, p, i, float(grad), fd)


def _weight_averages_by_scipy(mhat, qhat, Vhat, lam, p, rho, sparsity):
    """``(m, q, V)`` of the scalar problem integrated by SciPy: ``w_hat = prox_{r / Vhat}(b / Vhat)`` by
    Brent's root of ``u + (lam / Vhat) u^{p-1} = |b| / Vhat``, over ``b ~ N(0, mhat^2 v + qhat)`` in each
    component of the Gauss-Bernoulli prior (``v = 0`` and ``rho / sparsity``), adaptive quadrature
    cut at ``b = 0, +-lam``; ``V = E[b w_hat] / s^2`` (Stein)."""

    def w_hat(b):
        a, t = abs(b) / Vhat, lam / Vhat
        if a == 0:
            return 0.0
        return np.sign(b) * optimize.brentq(lambda u: u + t * u ** (p - 1) - a, 0, a, xtol=1e-16, rtol=1e-15)

    total = np.zeros(3)
    for pi, v in ((1 - sparsity, 0.0), (sparsity, rho / sparsity)):
        s2 = mhat**2 * v + qhat
        s = np.sqrt(s2)

        def mean(g):
            cuts = (-12 * s, -lam, 0.0, lam, 12 * s)
            return sum(integrate.quad(lambda b: g(b) * stats.norm.pdf(b / s) / s, lo, hi, epsabs=1e-14, epsrel=1e-12,
                                      limit=200)[0] for lo, hi in zip(cuts[:-1], cuts[1:]))

        stein = mean(lambda b: b * w_hat(b)) / s2
        total += pi * np.array([mhat * v * stein, mean(lambda b: w_hat(b) ** 2), stein])
    return total


def test_weight_averages():
    # p = 1.3 against SciPy's integration (rtol 1e-9); p = 1 and 2 against the LASSO's and the
    # ridge's closed forms (1e-12), for the Gauss-Bernoulli and the Gaussian priors.
    mhat, qhat, Vhat, lam, rho, sparsity = 0.7, 0.3, 1.3, 0.4, 1.5, 0.2
    weights, variances = kernels.GaussBernoulli(sparsity).gaussian_mixture()
    variances = [rho / sparsity * v for v in variances]
    averages = jax.jit(lambda penalty, *prior: penalty.weight_averages(mhat, qhat, Vhat, *prior))
    got = averages(kernels.LP(lam, 1.3), weights, variances)
    reference = _weight_averages_by_scipy(mhat, qhat, Vhat, lam, 1.3, rho, sparsity)
    np.testing.assert_allclose([got.m, got.q, got.V], reference, rtol=1e-9)
    assert float(got.nonzero) == 1.0
    for prior in ((weights, variances), ([1.0], [rho])):
        for p, same in ((1.0, kernels.L1(lam)), (2.0, kernels.Ridge(lam))):
            got, expected = (averages(penalty, *prior) for penalty in (kernels.LP(lam, p), same))
            np.testing.assert_allclose([got.m, got.q, got.V, got.nonzero],
                                       [expected.m, expected.q, expected.V, expected.nonzero], rtol=1e-12)


KEYS = ["m", "q", "V", "mhat", "qhat", "Vhat", "weight_error", "train_loss", "sparsity_hat"]


def test_fixed_point_reduces_to_l1_and_ridge():
    # The solved fixed point at p = 1 is the LASSO's and at p = 2 the ridge's, to 1e-8 (relative).
    for p, penalty in ((1.0, "l1"), (2.0, "ridge")):
        lp, same = hd.solve(ERM(**SPARSE, penalty="lp", p=p)), hd.solve(ERM(**SPARSE, penalty=penalty))
        assert bool(lp.converged) and bool(same.converged)
        for key in KEYS:
            assert abs(float(lp.observables[key]) - float(same.observables[key])) < 1e-8 * (1 + abs(float(same.observables[key]))), (p, key)


def test_gradient_matches_finite_differences():
    # d weight_error / d (lam, p) by implicit differentiation of the fixed point, against central
    # differences (step 1e-5: truncation ~1e-10, rounding of the 1e-12 fixed point ~1e-7).
    def error(lam, p):
        return hd.solve(ERM(**(SPARSE | dict(lam=lam)), penalty="lp", p=p)).observables["weight_error"]

    x, h = (0.3, 1.5), 1e-5
    both = jax.jit(jax.value_and_grad(error, argnums=(0, 1)))  # one program; the differences reuse it
    grads = both(*x)[1]
    for i, grad in enumerate(grads):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        fd = (float(both(*up)[0]) - float(both(*down)[0])) / (2 * h)
        assert abs(float(grad) - fd) < 1e-6 * (1 + abs(fd)), (i, float(grad), fd)


@pytest.mark.parametrize(
    "kwargs, d, seeds, bias",
    [
        # Square loss, sparse teacher, p = 1.3: d = 500, 6 seeds; the largest deviation seen 1.0
        # standard errors (0.6 at d = 400, 8 seeds).
        (SPARSE | dict(p=1.3), 500, 6, 0.03),
        # Logistic loss, sign teacher, p = 1.3: d = 500, 8 seeds; the 0-1 error sat ~3% above the
        # limit at d = 400 (finite-size bias), hence 4%; seen at d = 500: within 1.2 standard errors
        # (3.8% of the weight error). Not fewer seeds: the sparse teacher's draw moves q from seed to
        # seed more than a few seeds resolve (seeds 0-3 alone: the weight error 10 of their standard
        # errors, 13%, below the theory's).
        # The default run checks the lp penalty against simulation with the square loss, the same path.
        pytest.param(dict(loss="logistic", teacher="sign", prior="gauss-bernoulli", sparsity=0.2, alpha=2.0, lam=0.5, p=1.3),
                     500, 8, 0.04, marks=pytest.mark.extended),
    ],
)
def test_against_simulation(kwargs, d, seeds, bias):
    # FISTA with the lp prox at finite d against the fixed point: within 4 standard errors plus the
    # finite-size bias (relative) stated per case.
    theory = ERM(**kwargs, penalty="lp")
    solution = hd.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=d, seeds=seeds)
    for key in ["m", "q", "test_error", "train_loss", "weight_error", "sparsity_hat"]:
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + bias * abs(predicted), (key, predicted, mean, sem)


@pytest.mark.parametrize("p", [0.5, 0.999, 2.5, float("nan")])
def test_bad_exponent_raises_parameter_error(p):
    with pytest.raises(ParameterError, match="'p'"):
        ERM(penalty="lp", p=p)
