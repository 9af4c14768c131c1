"""Penalties other than the ridge (l1, elastic net) and sparse teacher priors in ERM: the weight
side's closed form against its definition, the ridge path unchanged, the LASSO and the elastic net
against scikit-learn at finite d, the Donoho-Tanner phase transition, a gradient, the simulation,
bad input and the command line."""

import json

import jax
import numpy as np
import pytest
from scipy import optimize, stats

import hdtheory as hd
from hdtheory import ERM, GCM, ParameterError, kernels
from hdtheory import cli
from hdtheory.models.erm import Overlaps
from hdtheory.simulate import simulate

SPARSE = dict(loss="square", teacher="linear", prior="gauss-bernoulli")


def test_prox_is_the_minimiser():
    # prox_{V r}(x) = argmin_w (w - x)^2 / (2 V) + r(w), by a bounded scalar minimisation.
    for penalty in (kernels.L1(0.4), kernels.ElasticNet(0.4, 0.3), kernels.Ridge(0.4)):
        for x, V in ((0.1, 0.5), (-0.3, 2.0), (1.7, 0.8), (-2.5, 1.3)):
            objective = lambda w: (w - x) ** 2 / (2 * V) + float(penalty(w))
            best = optimize.minimize_scalar(objective, bounds=(-5, 5), method="bounded", options=dict(xatol=1e-12)).x
            assert abs(float(penalty.prox(x, V)) - best) < 1e-8, (penalty, x, V)


def _legendre(edges, nodes=60):
    """Gauss-Legendre panels between consecutive ``edges`` (last axis): nodes and weights."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = np.asarray(edges)[..., :-1, None], np.asarray(edges)[..., 1:, None]
    shape = a.shape[:-2] + (-1,)
    return ((a + b) / 2 + (b - a) / 2 * x).reshape(shape), ((b - a) / 2 * w).reshape(shape)


def test_weight_averages_against_their_definition():
    # The closed form against the scalar problem integrated numerically: w_hat = soft(b, l1) /
    # (Vhat + l2) = prox_{r / Vhat}(b / Vhat), b = mhat w* + sqrt(qhat) xi, w* from the
    # Gauss-Bernoulli prior (zero w.p. 1 - s, N(0, rho / s) otherwise), xi ~ N(0, 1); V = E[xi w_hat]
    # / sqrt(qhat) (Stein's lemma). Panels in xi with edges at the soft threshold's kinks, in w*
    # smooth panels on [-12, 12] standard deviations.
    mhat, qhat, Vhat, rho, s = 0.7, 0.3, 1.3, 1.5, 0.2
    u, w_u = _legendre(np.linspace(-12, 12, 9))
    w_star = np.concatenate([[0.0], np.sqrt(rho / s) * u])[:, None]
    prob = np.concatenate([[1 - s], s * w_u * stats.norm.pdf(u)])[:, None]
    for l1, l2, penalty in ((0.4, 0.0, kernels.L1(0.4)), (0.12, 0.28, kernels.ElasticNet(0.4, 0.3)),
                            (0.0, 0.4, kernels.Ridge(0.4))):
        kinks = np.clip((np.array([-l1, l1]) - mhat * w_star) / np.sqrt(qhat), -14, 14)
        full = np.broadcast_to([-14.0, 14.0], kinks.shape)
        xi, w_xi = _legendre(np.concatenate([full[:, :1], kinks, full[:, 1:]], axis=1))
        b = mhat * w_star + np.sqrt(qhat) * xi
        w_hat = np.sign(b) * np.maximum(np.abs(b) - l1, 0) / (Vhat + l2)
        weight = prob * w_xi * stats.norm.pdf(xi)
        reference = [np.sum(weight * g) for g in (w_star * w_hat, w_hat**2, xi * w_hat / np.sqrt(qhat), w_hat != 0)]
        weights, variances = kernels.GaussBernoulli(s).gaussian_mixture()
        got = penalty.weight_averages(mhat, qhat, Vhat, weights, [rho / s * v for v in variances])
        np.testing.assert_allclose([got.m, got.q, got.V, got.nonzero], reference, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(loss="square", teacher="linear", noise=0.3, alpha=0.7, lam=0.05),
        dict(loss="square", teacher="sign", noise=0.1, alpha=3.0, lam=0.2, rho=2.0),
        dict(loss="square", teacher="linear", noise=0.3, alpha=0.7, lam=0.05, prior="gauss-bernoulli", sparsity=0.3),
    ],
)
def test_ridge_is_the_existing_update(kwargs):
    # The weight side of ERM before penalties were generic (Aubin et al. 2020, eq. (11)):
    # m = rho mhat / (lam + Vhat), q = (rho mhat^2 + qhat) / (lam + Vhat)^2, V = 1 / (lam + Vhat),
    # whatever the prior (the ridge sees its second moment only); the elastic net at l1_ratio = 0 is
    # the ridge, at l1_ratio = 1 the LASSO.
    theory = ERM(**kwargs)
    for state in (Overlaps(m=0.3, q=0.6, V=0.8), Overlaps(m=-0.2, q=2.0, V=3.0)):
        mhat, qhat, Vhat = theory.conjugates(state)
        precision = theory.lam + Vhat
        expected = [theory.rho * mhat / precision, (theory.rho * mhat**2 + qhat) / precision**2, 1 / precision]
        got = theory.update(state)
        np.testing.assert_allclose([got.m, got.q, got.V], expected, rtol=1e-12, atol=0)
        for l1_ratio, penalty in ((0.0, "ridge"), (1.0, "l1")):
            elastic = ERM(**kwargs, penalty="elastic-net", l1_ratio=l1_ratio).update(state)
            same = ERM(**kwargs, penalty=penalty).update(state)
            np.testing.assert_allclose([elastic.m, elastic.q, elastic.V], [same.m, same.q, same.V], rtol=1e-12)


def _sparse_teacher(rng, d, sparsity, rho):
    """Gauss-Bernoulli components rescaled to |w*|^2 = rho d, as hdtheory.simulate draws them."""
    w = rng.standard_normal(d) * (rng.random(d) < sparsity)
    return np.sqrt(rho * d) * w / np.linalg.norm(w)


@pytest.mark.parametrize("penalty", ["l1", "elastic-net"])
def test_sparse_regression_against_scikit_learn(penalty):
    # scikit-learn minimises (1 / (2n)) |y - F w|^2 + a (r |w|_1 + (1 - r) |w|^2 / 2) on the features
    # F = X / sqrt(d); n times that is our sum_i (y_i - w.x_i / sqrt(d))^2 / 2 + lam (...) with
    # lam = a n (Lasso: r = 1). d = 500, n = 300, 6 seeds: within 4 standard errors plus 2% of the
    # value for the finite-size bias (the largest deviation seen: 1.6 standard errors, the training loss).
    from sklearn.linear_model import ElasticNet, Lasso

    theory = ERM(**SPARSE, penalty=penalty, l1_ratio=0.6, sparsity=0.1, alpha=0.6, lam=0.3, noise=0.1)
    solution = hd.solve(theory)
    assert bool(solution.converged)
    d, n, lam = 500, 300, 0.3
    rng = np.random.default_rng(17)
    rows = []
    for _ in range(6):
        w_star = _sparse_teacher(rng, d, 0.1, 1.0)
        X = rng.standard_normal((n, d))
        y = X @ w_star / np.sqrt(d) + np.sqrt(0.1) * rng.standard_normal(n)
        F = X / np.sqrt(d)
        options = dict(alpha=lam / n, fit_intercept=False, tol=1e-12, max_iter=100_000)
        model = Lasso(**options) if penalty == "l1" else ElasticNet(l1_ratio=0.6, **options)
        w = model.fit(F, y).coef_
        rows.append([w_star @ w / d, w @ w / d, np.mean(w != 0), np.sum((w - w_star) ** 2) / d,
                     0.5 * np.mean((y - F @ w) ** 2)])
    mean, sem = np.mean(rows, 0), np.std(rows, 0, ddof=1) / np.sqrt(len(rows))
    keys = ["m", "q", "sparsity_hat", "weight_error", "train_loss"]
    predicted = np.array([float(solution.observables[k]) for k in keys])
    assert np.all(np.abs(predicted - mean) < 4 * sem + 0.02 * np.abs(predicted)), (predicted, mean, sem)


def _rho_se(delta):
    """The Donoho-Tanner weak threshold of l1 recovery of signed sparse vectors (the cross-polytope),
    k / n below which basis pursuit recovers the signal, at delta = n / d: Donoho, Maleki and
    Montanari 2009, PNAS 106, 18914, "Message-passing algorithms for compressed sensing", their
    rho_SE(delta; chi) with kappa_chi = 2 (signed signals, chi = +-): max over z of
    [1 - (2 / delta) a(z)] / [1 + z^2 - 2 a(z)], a(z) = (1 + z^2) Phi(-z) - z phi(z)."""

    def minus(z):
        a = (1 + z * z) * stats.norm.cdf(-z) - z * stats.norm.pdf(z)
        return -(1 - 2 / delta * a) / (1 + z * z - 2 * a)

    return -optimize.minimize_scalar(minus, bounds=(0.0, 10.0), method="bounded", options=dict(xatol=1e-12)).fun


@pytest.mark.parametrize("delta", [0.25, 0.5, 0.75])
def test_donoho_tanner_phase_transition(delta):
    # Noiseless LASSO at lam -> 0+ (basis pursuit) with a Gauss-Bernoulli teacher of density eps:
    # below the published curve, eps < delta rho_SE(delta), the weight error vanishes as lam -> 0
    # (as lam^2: 100 times less per decade), above it stays of order 0.05-0.1. 20% on either side
    # of the curve, lam from 0.1 to 1e-3 by half decades, each solve warm-started from the last
    # (Newton's method from a decade away, 1e-2 to 1e-3 above the curve, takes over a hundred damped
    # steps and can wander to the other branch; from half a decade, five).
    eps = delta * _rho_se(delta)
    for factor in (0.8, 1.25):
        errors, solution = {}, "uninformed"
        for lam in (1e-1, 10**-1.5, 1e-2, 10**-2.5, 1e-3):
            theory = ERM(**SPARSE, penalty="l1", sparsity=factor * eps, alpha=delta, lam=lam, noise=0.0)
            solution = hd.solve(theory, solution)
            assert bool(solution.converged), (factor, lam)
            errors[lam] = float(solution.observables["weight_error"])
        if factor < 1:
            assert errors[1e-3] < 3e-5 and errors[1e-3] < 0.03 * errors[1e-2], errors
        else:
            assert errors[1e-3] > 0.04 and errors[1e-3] > 0.8 * errors[1e-2], errors


def test_donoho_tanner_curve_parametric_form():
    # The maximum over z above against the curve's parametric form, the maximiser's stationarity
    # condition solved for delta: delta = 2 phi(z) / (z + 2 (phi(z) - z Phi(-z))),
    # rho = 1 - z Phi(-z) / phi(z).
    for z in (0.5, 1.0, 2.0):
        phi, tail = stats.norm.pdf(z), stats.norm.cdf(-z)
        delta = 2 * phi / (z + 2 * (phi - z * tail))
        assert abs(_rho_se(delta) - (1 - z * tail / phi)) < 1e-9


def test_gradient_matches_finite_differences():
    # d weight_error / d (lam, sparsity, l1_ratio) by implicit differentiation of the fixed point,
    # against central differences.
    def error(lam, sparsity, l1_ratio):
        theory = ERM(**SPARSE, penalty="elastic-net", l1_ratio=l1_ratio, sparsity=sparsity, alpha=0.8, lam=lam, noise=0.1)
        return hd.solve(theory).observables["weight_error"]

    x, h = (0.2, 0.2, 0.7), 1e-5
    both = jax.jit(jax.value_and_grad(error, argnums=(0, 1, 2)))  # one program; the differences reuse it
    grads = both(*x)[1]
    for i, grad in enumerate(grads):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        fd = (float(both(*up)[0]) - float(both(*down)[0])) / (2 * h)
        assert abs(float(grad) - fd) < 1e-6 * (1 + abs(fd)), (i, float(grad), fd)


# The l1 penalty's path: test_sparse_regression_against_scikit_learn (square loss) and
# test_simulated_lasso_is_scikit_learns (the simulation's FISTA).
@pytest.mark.extended
def test_logistic_l1_against_simulation_and_scikit_learn():
    # hdtheory.simulate fits by FISTA; on one draw it is scikit-learn's liblinear LogisticRegression
    # (objective |w|_1 + C sum_i log(1 + exp(-y_i w.f_i)), ours divided by lam: C = 1 / lam) to 1e-5.
    # The theory against the simulation at d = 500, 8 seeds: within 4 standard errors plus 3%
    # (relative) for the finite-size bias (the largest deviation seen: 1.0 standard errors, 4.6% of the
    # weight error; at d = 400, 4 seeds: 1.8 standard errors). The sparse teacher's draw moves q and
    # the weight error from seed to seed more than a few seeds resolve: seeds 0-2 alone sit 4.7 of
    # their standard errors below the theory's weight error, 8 seeds 1.0.
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from hdtheory.simulate import erm as simulate_erm

    theory = ERM(loss="logistic", teacher="sign", penalty="l1", prior="gauss-bernoulli", sparsity=0.2, alpha=2.0, lam=0.5)
    w_star = simulate_erm._teacher(theory, jax.random.PRNGKey(3), 400)
    X, y, weight = simulate_erm._draw_like(theory, jax.random.PRNGKey(4), w_star, 800)
    w = np.asarray(simulate_erm._fit(theory, X, y, weight))
    n = int(np.sum(weight))
    l1 = dict(l1_ratio=1.0) if _version(sklearn.__version__) >= (1, 8) else dict(penalty="l1")
    reference = LogisticRegression(**l1, C=1 / 0.5, solver="liblinear", fit_intercept=False, tol=1e-8)
    reference.fit(np.asarray(X[:n]) / np.sqrt(400), np.asarray(y[:n]))
    np.testing.assert_allclose(w, reference.coef_[0], atol=1e-5)  # |w| up to ~20

    solution = hd.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=500, seeds=8)
    for key in ["m", "q", "sparsity_hat", "test_error", "train_loss", "weight_error"]:
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.03 * abs(predicted), (key, predicted, mean, sem)


def test_simulated_lasso_is_scikit_learns():
    # The simulation's LASSO (FISTA, square loss) on one draw is scikit-learn's coordinate descent.
    from sklearn.linear_model import Lasso

    from hdtheory.simulate import erm as simulate_erm

    theory = ERM(**SPARSE, penalty="l1", sparsity=0.1, alpha=0.6, lam=0.3, noise=0.1)
    w_star = simulate_erm._teacher(theory, jax.random.PRNGKey(5), 300)
    assert np.mean(np.asarray(w_star) != 0) < 0.2 and abs(float(w_star @ w_star) / 300 - 1) < 1e-12
    X, y, weight = simulate_erm._draw_like(theory, jax.random.PRNGKey(6), w_star, 180)
    w = np.asarray(simulate_erm._fit(theory, X, y, weight))
    n = int(np.sum(weight))
    reference = Lasso(alpha=0.3 / n, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
    reference.fit(np.asarray(X[:n]) / np.sqrt(300), np.asarray(y[:n]))
    np.testing.assert_allclose(w, reference.coef_, atol=1e-6)


def _version(text):
    return tuple(int(part) for part in text.split(".")[:2])


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: ERM(penalty="elastic-net", l1_ratio=1.5), "l1_ratio"),
        (lambda: ERM(penalty="elastic-net", l1_ratio=-0.1), "l1_ratio"),
        (lambda: ERM(prior="gauss-bernoulli", sparsity=0.0), "sparsity"),
        (lambda: ERM(prior="gauss-bernoulli", sparsity=1.5), "sparsity"),
        (lambda: ERM(penalty="l2"), "penalty"),
        (lambda: ERM(prior="rademacher"), "prior"),
        (lambda: ERM(loss="square", teacher="linear", penalty="l1", lam=0.0, alpha=0.5), "lam"),
        (lambda: GCM(penalty="l1"), "penalty"),
        (lambda: GCM(prior="gauss-bernoulli"), "prior"),
    ],
)
def test_bad_input_raises_parameter_error(build, name):
    with pytest.raises(ParameterError, match=name):
        build()


def test_hinge_with_l1_is_not_simulated():
    with pytest.raises(NotImplementedError, match="hinge"):
        simulate(ERM(loss="hinge", penalty="l1", lam=0.1), d=20, seeds=1)


def test_command_line(capsys):
    args = ["eval", "erm", "loss=square", "teacher=linear", "penalty=l1", "prior=gauss-bernoulli",
            "sparsity=0.2", "alpha=0.5", "lam=0.01", "--json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and 0 < out["sparsity_hat"] < 1
    assert abs(out["weight_error"] - (1 - 2 * out["m"] + out["q"])) < 1e-12
