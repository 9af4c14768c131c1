"""Random-feature ridge regression with a finite number of features (``hd.KRR(features=p)``, the
deterministic equivalent of Defilippis, Loureiro, Misiakiewicz 2024): against simulations across the
double-descent peak, the kernel limit, finite differences and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.cli import main

# One compiled configuration: a 2000-mode spectrum, n = 300, vmapped over (features, lam).
SPECTRUM = dict(capacity=1.5, source=0.4, noise=0.2, n=300.0, modes=2000)


@jax.jit
@jax.vmap
def _solve(features, lam):
    return hd.solve(hd.KRR(features=features, lam=lam, **SPECTRUM))


def test_finite_features_against_simulation_across_the_interpolation_peak():
    # p < n, p = n (the peak at small lam) and p > n; the kernel limit last.
    ps = [100.0, 300.0, 900.0]
    sol = _solve(jnp.array(ps + [np.inf]), jnp.full(4, 0.01))
    assert bool(jnp.all(sol.converged))
    error = np.asarray(sol.observables["test_error"])
    np.testing.assert_allclose(error, sol.observables["bias"] + sol.observables["variance"], rtol=1e-12)
    assert error[1] > 1.5 * max(error[0], error[2])  # the double-descent peak at p = n
    assert error[3] < error[2]  # more features (the kernel) do better past the peak
    for i, p in enumerate(ps):
        sim = hd.simulate.simulate(hd.KRR(features=p, lam=0.01, **SPECTRUM), seeds=6, key=jax.random.PRNGKey(1))
        for key in ("test_error", "bias", "variance"):
            z = (sim.mean[key] - float(sol.observables[key][i])) / sim.sem[key]
            assert abs(z) <= 3, (p, key, z)


def test_kernel_limit_and_approximation_error():
    # p -> infinity: the KRR equation kappa = lam + kappa df1 / n, error corrections O(1 / p).
    sol = _solve(jnp.array([1e6, 1e12, np.inf]), jnp.full(3, 0.01))
    kernel = hd.solve(hd.KRR(lam=0.01, **SPECTRUM))
    for key in ("kappa", "test_error", "bias", "variance"):
        assert float(sol.observables[key][1]) == pytest.approx(float(kernel.observables[key]), rel=1e-9)
        assert float(sol.observables[key][2]) == pytest.approx(float(kernel.observables[key]), rel=1e-12)
    assert abs(float(sol.observables["test_error"][0] - kernel.observables["test_error"])) < 1e-4
    kernel_df1 = kernel.observables["df1"]
    np.testing.assert_allclose(kernel.observables["kappa"], 0.01 / (1 - kernel_df1 / 300.0), rtol=1e-9)
    # Many samples, p fixed, vanishing ridge: the error of projecting the teacher on p random features,
    # sum_k beta*_k^2 eta_k nu / (eta_k + nu) with df1 = sum_k eta_k / (eta_k + nu) = p (nu by bisection
    # here), no variance left.
    p, n = 50.0, 1e7
    model = hd.KRR(capacity=1.5, source=0.4, noise=0.2, lam=1e-6, n=n, modes=2000, features=p)
    approx = hd.solve(model)
    k = np.arange(1, 2001.0)
    eta, power = k**-1.5, k ** (-1 - 2 * 1.5 * 0.4)
    lo, hi = 1e-12, 1e3
    for _ in range(200):
        nu = np.sqrt(lo * hi)
        lo, hi = (nu, hi) if np.sum(eta / (eta + nu)) > p else (lo, nu)
    assert bool(approx.converged)
    assert float(approx.observables["bias"]) == pytest.approx(np.sum(power * nu / (eta + nu)), rel=1e-4)
    assert float(approx.observables["variance"]) < 1e-4


def test_gradients_in_lam_and_features_match_finite_differences():
    # Infinite spectrum, p < n and p > n; (lam, features, noise) as the variables.
    def error(x):
        model = hd.KRR(capacity=1.8, source=0.4, lam=x[0], features=x[1], noise=x[2], n=1000.0)
        return hd.solve(model).observables["test_error"]

    value_and_grad = jax.jit(jax.vmap(lambda x: (error(x), jax.jacfwd(error)(x))))
    x = jnp.array([[0.3, 400.0, 0.5], [0.3, 2500.0, 0.5]])
    values, grad = value_and_grad(x)
    h = 1e-5 * x
    fd = jnp.stack([
        (value_and_grad(x.at[:, i].add(h[:, i]))[0] - value_and_grad(x.at[:, i].add(-h[:, i]))[0]) / (2 * h[:, i])
        for i in range(3)
    ], axis=1)
    assert bool(jnp.all(jnp.isfinite(values)))
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert bool(jnp.all(grad[:, 1] < 0))  # more features, smaller error at this lam


def test_bad_input_and_command_line(capsys):
    with pytest.raises(hd.ParameterError, match="'features'"):
        hd.KRR(features=0.0)
    with pytest.raises(hd.ParameterError, match="'lam'"):
        hd.KRR(lam=0.0, n=3000.0, features=2500.0, modes=2000)
    hd.KRR(lam=0.0, n=3000.0, features=1500.0, modes=2000)  # fewer features than modes: well posed
    assert main(["eval", "krr", "capacity=2", "source=0.3", "noise=0.5", "lam=10", "n=1e4", "features=500", "--json"]) == 0
    import json

    record = json.loads(capsys.readouterr().out)
    assert record["converged"] and record["test_error"] == pytest.approx(record["bias"] + record["variance"])
    assert main(["eval", "krr", "features=-3"]) == 2
    assert "'features'" in capsys.readouterr().err
