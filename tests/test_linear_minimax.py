"""The minimax linear rule over the source-condition ellipsoid (``hdtheory.models.krr.LinearMinimax``),
against a NumPy Bayes risk, the continuum closed form, the rates, simulations and finite differences,
and tuned ridge's worst case over the same ellipsoid (``KRR``'s ``worst_case_error``)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

import hdtheory as hd
from hdtheory.cli import main
from hdtheory.models.krr import fitted_rate, minimax_rate, published_rate
from hdtheory.simulate import simulate
from hdtheory.simulate.gcm import _linear_rule_errors


def numpy_bayes_risk(spectrum, n, noise):
    """The ridge deterministic equivalent's Bayes risk for the prior-weighted spectrum ``s_k``:
    ``kappa - noise = sum_k kappa s_k / (kappa + n s_k)`` by bisection, then
    ``sum_k s_k kappa / (kappa + n s_k)``."""
    lo, hi = 1e-300, 1e6
    for _ in range(2000):
        mid = np.sqrt(lo * hi)
        if mid - noise - np.sum(mid * spectrum / (mid + n * spectrum)) > 0:
            hi = mid
        else:
            lo = mid
    return np.sum(spectrum * mid / (mid + n * spectrum))


@pytest.mark.parametrize("noise", [0.1, 0.0])
def test_water_filling_is_the_least_favourable_prior(noise):
    """The theory's prior lies on the ellipsoid's boundary; its Bayes risk, computed by NumPy from
    the prior alone, is the theory's minimax risk to 1e-9; every other prior on the boundary has a
    smaller Bayes risk (maximin); ridge at any lam has a larger worst case (minimax over rules)."""
    P, n, capacity, source = 1000, 200.0, 2.0, 0.5
    theory = hd.LinearMinimax(capacity=capacity, source=source, noise=noise, n=n, modes=P)
    sol = hd.solve(theory)
    assert sol.converged
    risk = float(sol.observables["test_error"])
    k = np.arange(1.0, P + 1)
    eta = k**-capacity
    weight = eta ** (1 - 2 * source)  # the ellipsoid: sum_k gamma_k weight_k <= 1
    gamma = np.asarray(theory.prior(sol.state, k))
    assert np.sum(gamma * weight) == pytest.approx(1.0, rel=1e-10, abs=0)
    active = gamma > 0
    assert np.sum(active) == int(sol.observables["cutoff"])
    assert numpy_bayes_risk(eta * gamma, n, noise) == pytest.approx(risk, rel=1e-9, abs=0)
    rng = np.random.default_rng(0)
    for _ in range(5):  # random priors on the boundary, and one spread over twice as many modes
        other = gamma * rng.uniform(0.5, 1.5, P)
        other /= np.sum(other * weight)
        assert numpy_bayes_risk(eta * other, n, noise) < risk
    wide = np.where(k <= 2 * np.sum(active), 1.0 / weight, 0.0) / (2 * np.sum(active))
    assert numpy_bayes_risk(eta * wide, n, noise) < risk
    lams = jnp.concatenate([jnp.zeros(1), jnp.logspace(-6, 3, 10)])
    ridge = jax.vmap(
        lambda lam: hd.solve(hd.KRR(capacity=capacity, source=source, noise=noise, n=n, lam=lam, modes=P))
    )(lams)
    assert np.all(ridge.converged) and np.all(ridge.observables["worst_case_error"] > risk)


def test_averaged_risk_at_a_power_law_prior_is_krr_at_lam_equal_to_the_noise():
    """The optimal averaged risk at a fixed prior (Ayme & Loureiro's central object, as the module
    docstring states it): the Bayes risk of a prior with eta_k gamma_k = k^-c, by NumPy, is KRR's
    error with capacity c, source (c - 1) / (2c), lam = noise (to 1e-9)."""
    P, n, noise, c = 1000, 200.0, 0.1, 2.5
    k = np.arange(1.0, P + 1)
    krr = hd.solve(hd.KRR(capacity=c, source=(c - 1) / (2 * c), lam=noise, noise=noise, n=n, modes=P))
    assert float(krr.observables["test_error"]) == pytest.approx(numpy_bayes_risk(k**-c, n, noise), rel=1e-9, abs=0)


def continuum(capacity, source, noise, n):
    """The minimax risk, the cutoff and ``df2`` with the sums over modes ``k = 1, 2, ...`` as
    integrals from ``1/2`` (Euler-Maclaurin's midpoint rule): ``df1 = K rho / (1 + rho) - 1/2``,
    ``df2 = 2 c rho K - 1/2`` and ``S K^(-2 rho) = c K`` with ``c = rho / ((1 + rho)(1 + 2 rho))``."""
    rho = capacity * source
    c = rho / ((1 + rho) * (1 + 2 * rho))
    if noise == 0:
        cutoff = (n + 0.5) * (1 + rho) / rho
        return n / (c * cutoff ** (1 + 2 * rho)), cutoff, 2 * c * rho * cutoff - 0.5
    equation = lambda K: n - K * rho / (1 + rho) + 0.5 - noise * c * K ** (1 + 2 * rho)  # noqa: E731
    cutoff = brentq(equation, 0.0, 2 * (n + 1) * (1 + rho) / rho)
    df1 = cutoff * rho / (1 + rho) - 0.5
    return noise * df1 / (n - df1), cutoff, 2 * c * rho * cutoff - 0.5


@pytest.fixture(scope="module")
def minimax_curve():
    """The minimax risk over ``n`` for a batch of exponents and noises (one compile)."""

    def observables(a, s, noise, n):
        return hd.solve(hd.LinearMinimax(capacity=a, source=s, noise=noise, n=n)).observables

    return jax.jit(jax.vmap(jax.vmap(observables, in_axes=(None, None, None, 0)), in_axes=(0, 0, 0, None)))


def test_continuum_closed_form_and_minimax_rates(minimax_curve):
    """At large n the summed theory meets the continuum closed form (the midpoint rule from k = 1/2)
    up to its remainders, O(cutoff^-2) in the risk and O(cutoff^-min(rho, 2)) in the cutoff
    (tolerances ten times these; seen: 1e-11 noiseless, 5e-6 noisy); the exponents fitted over
    n = 10^3..10^5 match 2 rho (noiseless, within 0.005) and 2 rho / (1 + 2 rho) (noisy, Caponnetto &
    De Vito 2007, within 0.03)."""
    a = jnp.array([2.0, 1.5, 2.0, 1.5])
    s = jnp.array([0.5, 1.5, 0.5, 1.5])
    noise = jnp.array([0.0, 0.0, 1e-2, 1e-2])
    big = minimax_curve(a, s, noise, jnp.array([1e5, 1e6]))
    assert np.all(big["test_error"] > 0)
    for i in range(4):
        for j, n in enumerate((1e5, 1e6)):
            expected, cutoff, df2 = continuum(float(a[i]), float(s[i]), float(noise[i]), n)
            rho = float(a[i] * s[i])
            assert float(big["cutoff"][i, j]) == pytest.approx(cutoff, rel=10 / cutoff ** min(rho, 2), abs=0)
            assert float(big["test_error"][i, j]) == pytest.approx(expected, rel=10 / cutoff**2, abs=0)
            assert float(big["df2"][i, j]) == pytest.approx(df2, rel=10 / cutoff ** min(rho, 2), abs=0)
    ns = jnp.logspace(3, 5, 5)
    curve = minimax_curve(a, s, 100 * noise, ns)
    exponents = np.asarray(fitted_rate(ns, curve["test_error"]))
    for i in range(4):
        noisy = float(noise[i]) > 0
        expected = minimax_rate(float(a[i]), float(s[i]), noisy)
        assert exponents[i] == pytest.approx(expected, abs=0.03 if noisy else 0.005)


def test_tuned_ridge_is_rate_optimal_only_up_to_source_one(minimax_curve):
    """Ridge's worst case over the ellipsoid, at lam = 0 without noise and at the best of a lam grid
    (ten points a decade) with noise: its exponent is Cui et al.'s optimal rate with
    r = min(source, 1) (within 0.005 noiseless, 0.03 noisy), equal to the minimax exponent for
    source <= 1 (the ratio ridge / minimax stays flat) and below it beyond."""
    ns = jnp.logspace(3, 5, 5)
    lams = jnp.concatenate([jnp.zeros(1), jnp.logspace(-4, 4, 81)])

    @jax.jit
    def ridge(a, s, noise):
        def at(n, lam):
            return hd.solve(hd.KRR(capacity=a, source=s, noise=noise, n=n, lam=lam * n)).observables["worst_case_error"]

        return jax.vmap(lambda n: jax.vmap(lambda lam: at(n, lam))(lams))(ns).min(axis=1)

    a = jnp.array([2.0, 2.0, 2.0, 2.0])
    s = jnp.array([0.5, 1.5, 0.5, 1.5])
    noise = jnp.array([0.0, 0.0, 1.0, 1.0])
    minimax = minimax_curve(a, s, noise, ns)["test_error"]
    for i in range(4):
        a_i, s_i, noisy = float(a[i]), float(s[i]), float(noise[i]) > 0
        best = ridge(a[i], s[i], noise[i])
        assert np.all(best > minimax[i])
        e_ridge = float(fitted_rate(ns, best))
        e_minimax = float(fitted_rate(ns, minimax[i]))
        assert e_ridge == pytest.approx(published_rate(a_i, s_i, None, noisy), abs=0.03 if noisy else 0.005)
        if s_i <= 1:
            assert e_ridge == pytest.approx(e_minimax, abs=0.01)
            ratio = np.asarray(best / minimax[i])
            assert ratio.max() < 1.1 * ratio.min()
        else:
            assert e_minimax - e_ridge > (0.04 if noisy else 1.9)


@pytest.mark.parametrize(
    "params",
    [dict(capacity=2.0, source=0.5, noise=0.1, n=200.0),
     pytest.param(dict(capacity=1.5, source=1.5, noise=0.0, n=200.0), marks=pytest.mark.extended)],
)
def test_against_simulation(params):
    """The rule built from the theory's prior on 600-mode Gaussian data, n = 200, 8 seeds: its
    error averaged over the least favourable prior, its bias and variance, within 3 standard errors
    of the seeds plus 1 / n relative (the deterministic equivalent's finite-n correction); its error
    on the single teachers on the ellipsoid's boundary is the minimax risk on the active modes (the
    equaliser: on mode 1 and averaged over the active modes, the same tolerance) and no larger
    beyond (averaged over the inactive modes); its shrinkage per mode is the theory's x_k."""
    theory = hd.LinearMinimax(modes=600, **params)
    obs = hd.solve(theory).observables
    result = simulate(theory, seeds=8)
    risk, slack = float(obs["test_error"]), float(obs["test_error"]) / params["n"]
    for key in ("test_error", "bias", "variance"):
        assert abs(result.mean[key] - float(obs[key])) <= 3 * result.sem[key] + slack, (key, result.mean[key])
    active = int(obs["cutoff"])
    assert 5 < active < 600
    per_seed = result.samples["mode_error"]
    for name, errors in (("first", per_seed[:, 0]), ("active", per_seed[:, :active].mean(1))):
        sem = errors.std(ddof=1) / np.sqrt(len(errors))
        assert abs(errors.mean() - risk) <= 3 * sem + slack, (name, errors.mean(), risk)
    beyond = per_seed[:, active + 1 :].mean(1)
    assert beyond.mean() <= risk + 3 * beyond.std(ddof=1) / np.sqrt(len(beyond)) + slack
    # The rule's shrinkage of each mode, (L Psi)_kk, against x_k: seen within 0.05 per mode (the
    # per-mode fluctuations at n = 200) and 0.004 on average over the modes.
    x = np.asarray(theory.shrinkage(hd.solve(theory).state, np.arange(1.0, 601)))
    deviation = np.abs(result.mean["shrinkage"] - x)
    assert deviation.max() < 0.1 and deviation.mean() < 0.01, (deviation.max(), deviation.mean())


def test_ridge_worst_case_against_simulation():
    """KRR's worst_case_error (600 modes, n = 200) against ridge on Gaussian data: the largest, over
    the modes, of the seed-averaged error on the single teachers on the ellipsoid's boundary, within
    4 standard errors plus 1 / n (16 seeds), at source = 0.5 (the worst mode inside the spectrum)
    and 1.5 (the first mode)."""
    P, n, capacity, noise, lam = 600, 200, 2.0, 0.1, 0.05
    k = np.arange(1.0, P + 1)
    eta = k**-capacity
    for source in (0.5, 1.5):
        theory = hd.KRR(capacity=capacity, source=source, noise=noise, lam=lam, n=float(n), modes=P)
        expected = float(hd.solve(theory).observables["worst_case_error"])
        keys = jax.random.split(jax.random.PRNGKey(1), 16)
        boundary = eta ** (2 * source - 1)
        errors = np.stack([
            _linear_rule_errors(jax.random.normal(key, (n, P)) * np.sqrt(eta), np.ones(P), lam, eta, noise, boundary)
            ["mode_error"]
            for key in keys
        ])
        mean, sem = errors.mean(0), errors.std(0, ddof=1) / 4
        worst = int(np.argmax(mean))
        assert (worst > 0) == (source < 1)
        assert abs(mean[worst] - expected) <= 4 * sem[worst] + expected / n, (source, mean[worst], expected)


def test_gradients_match_finite_differences():
    """d(minimax risk) / d(capacity, source, noise, n) against central differences of the value."""

    def risk(x):
        return hd.solve(hd.LinearMinimax(capacity=x[0], source=x[1], noise=x[2], n=x[3])).observables["test_error"]

    value_and_grad = jax.jit(jax.value_and_grad(risk))
    x = jnp.array([1.8, 0.6, 0.3, 3000.0])
    _, grad = value_and_grad(x)
    for i, h in enumerate((1e-5, 1e-5, 1e-6, 1e-2)):
        dx = jnp.zeros(4).at[i].set(h)
        fd = (value_and_grad(x + dx)[0] - value_and_grad(x - dx)[0]) / (2 * h)
        assert float(grad[i]) == pytest.approx(float(fd), rel=1e-5, abs=0)
    assert float(grad[0]) < 0 and float(grad[1]) < 0 and float(grad[2]) > 0 and float(grad[3]) < 0
    # Without noise (its domain's end): the derivative in the noise against a one-sided difference,
    # whose O(h) error is large at this curvature (seen: 30% at h = 1e-8, 7e-4 at h = 1e-11).
    x = x.at[2].set(0.0)
    value, grad = value_and_grad(x)
    h = 1e-11
    fd = (value_and_grad(x.at[2].set(h))[0] - value) / h
    assert float(grad[2]) == pytest.approx(float(fd), rel=1e-3, abs=0)


def test_bad_input_and_command_line(capsys):
    with pytest.raises(hd.ParameterError, match="'noise'"):
        hd.LinearMinimax(noise=0.0, n=600.0, modes=500)
    with pytest.raises(hd.ParameterError, match="'source'"):
        hd.LinearMinimax(source=0.0)
    assert main(["eval", "linear-minimax", "capacity=2", "source=1.5", "noise=1", "n=1e4", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["converged"]
    assert record["test_error"] == pytest.approx(record["bias"] + record["variance"], rel=1e-10, abs=0)
    expected, cutoff, _ = continuum(2.0, 1.5, 1.0, 1e4)
    assert record["test_error"] == pytest.approx(expected, rel=10 / cutoff**2, abs=0)
    assert main(["eval", "linear-minimax", "capacity=1"]) == 2
    assert "'capacity'" in capsys.readouterr().err
