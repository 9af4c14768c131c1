r"""Benchmark: Gaussian-covariate-model learning curves with hdtheory against a NumPy/SciPy baseline.

What is compared. Both sides solve the same fixed point (:mod:`hdtheory.models.gcm`, spectral form):

1. **Random-features logistic curve**: ``RandomFeatures(activation="erf", gamma=2, loss="logistic",
   teacher="sign", lam=0.01)``, 50 values of ``alpha = n / d`` in ``[0.2, 5]``. hdtheory: one
   ``jax.vmap``-ped, ``jax.jit``-compiled :func:`hdtheory.solve` (Newton). Baseline: per point, the
   conjugates of ``benchmarks/baseline_erm.py`` (adaptive ``scipy.integrate.quad``, a ``brentq`` prox)
   at ``alpha / gamma`` and the spectral sums over the same Marchenko-Pastur rule in NumPy, damped
   iteration ``x <- 0.5 T(x) + 0.5 x`` to ``1e-8``; timed on ``--baseline-points`` points.
2. **Power-law ridge curve**: ``power_law(capacity=1.5, source=0.5, modes=10^5)``, square loss,
   ``noise = 0.1``, ``lam = 1e-3``, 100 values of ``n`` in ``[10^2, 10^6]``. hdtheory: one vmapped
   solve. Baseline: the same three equations per point in NumPy (closed-form square-loss conjugates,
   ``O(P)`` sums over the 10^5 modes), damped iteration to ``1e-8``, every point.

Printed: compile and run times of hdtheory, the baseline's time per point, the largest difference
of the test errors, and the ratios baseline / hdtheory (per point, run time; and including
compilation). Times are printed, never asserted. A reference implementation that builds the
covariances as matrices also pays an eigendecomposition of ``Omega`` (``O(p^3)``), which the
spectral form avoids.

Run: ``python benchmarks/gcm_curve.py [--baseline-points 3]``.
"""

import argparse
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hdtheory as hd  # noqa: E402
from hdtheory.models.gcm import power_law  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_erm  # noqa: E402

TOL = 1e-8


def timed(fn, *args):
    lowered = jax.jit(fn).lower(*args)
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_time = time.perf_counter() - start
    compiled(*args).converged.block_until_ready()  # warm
    start = time.perf_counter()
    out = compiled(*args)
    out.converged.block_until_ready()
    return out, compile_time, time.perf_counter() - start


def damped(update, x, tol=TOL, max_iter=5000):
    for i in range(max_iter):
        new = update(x)
        if np.max(np.abs(new - x) / (1 + np.abs(x))) < tol:
            return new, i + 1
        x = 0.5 * new + 0.5 * x
    return x, max_iter


def spectral_update(mhat, qhat, Vhat, lam, omega, theta2, weights):
    D = lam + Vhat * omega
    positive = omega > 0
    D = np.where(positive, D, 1.0)
    return np.array([
        mhat * np.sum(weights * np.where(positive, theta2 / D, 0.0)),
        np.sum(weights * np.where(positive, omega * (mhat**2 * theta2 + qhat * omega) / D**2, 0.0)),
        np.sum(weights * np.where(positive, omega / D, 0.0)),
    ])


def random_features_benchmark(points: int, baseline_points: int, seed: int) -> None:
    alphas = jnp.linspace(0.2, 5.0, points)
    gamma, lam = 2.0, 0.01

    def curve(a):
        return jax.vmap(lambda a: hd.solve(hd.RandomFeatures(
            alpha=a, gamma=gamma, lam=lam, loss="logistic", teacher="sign"), tol=TOL))(a)

    sol, compile_time, run_time = timed(curve, alphas)
    gcm = hd.RandomFeatures(gamma=gamma, lam=lam).gcm
    omega, theta2, weights = (np.asarray(x) for x in (gcm.omega, gcm.theta2, gcm.weights))
    picks = np.random.default_rng(seed).choice(points, baseline_points, replace=False)
    per_point, gaps = [], []
    for i in picks:
        alpha_p = float(alphas[i]) / gamma
        start = time.perf_counter()

        def update(x):
            m, q, V = x
            return spectral_update(*baseline_erm.conjugates(m, q, V, alpha_p), lam, omega, theta2, weights)

        (m, q, V), _ = damped(update, np.array([0.1, 1.0, 1.0]))
        per_point.append(time.perf_counter() - start)
        gaps.append(abs(np.arccos(m / np.sqrt(q)) / np.pi - float(sol.observables["test_error"][i])))
    ours = run_time / points
    base = float(np.mean(per_point))
    print(f"random features, logistic, {points} points: converged {int(sol.converged.sum())}/{points}")
    print(f"  hdtheory: compile {compile_time:.2f} s, run {run_time:.3f} s ({ours * 1e3:.2f} ms/point)")
    print(f"  baseline: {base:.2f} s/point on {baseline_points} points, max |test error diff| {max(gaps):.1e}")
    print(f"  ratio baseline/hdtheory per point: {base / ours:.0f}x (with compilation: "
          f"{base * points / (compile_time + run_time):.1f}x)")


def power_law_benchmark(points: int, modes: int) -> None:
    ns = jnp.logspace(2, 6, points)
    lam, noise = 1e-3, 0.1

    def curve(n):
        return jax.vmap(lambda n: hd.solve(power_law(1.5, 0.5, modes=modes, n=n, lam=lam, noise=noise), tol=TOL))(n)

    sol, compile_time, run_time = timed(curve, ns)
    model = power_law(1.5, 0.5, modes=modes, n=1.0, lam=lam)
    omega, theta2, rho = np.asarray(model.omega), np.asarray(model.theta2), float(model.rho)
    weights = np.full(modes, 1.0 / modes)
    start, gaps = time.perf_counter(), []
    for i, n in enumerate(np.asarray(ns)):
        alpha = n / modes

        def update(x):
            m, q, V = x
            hat = alpha / (1 + V)
            qhat = alpha * (rho + noise - 2 * m + q) / (1 + V) ** 2
            return spectral_update(hat, qhat, hat, lam, omega, theta2, weights)

        (m, q, V), _ = damped(update, np.array([0.1, 1.0, 1.0]))
        gaps.append(abs((rho - 2 * m + q) - float(sol.observables["test_error"][i])) / (rho - 2 * m + q))
    base = (time.perf_counter() - start) / points
    ours = run_time / points
    print(f"power-law ridge, {modes} modes, {points} values of n: converged {int(sol.converged.sum())}/{points}")
    print(f"  hdtheory: compile {compile_time:.2f} s, run {run_time:.3f} s ({ours * 1e3:.2f} ms/point)")
    print(f"  baseline: {base * 1e3:.1f} ms/point, max relative test error diff {max(gaps):.1e}")
    print(f"  ratio baseline/hdtheory per point: {base / ours:.1f}x (with compilation: "
          f"{base * points / (compile_time + run_time):.1f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50, help="alpha values of the logistic curve")
    parser.add_argument("--n-points", type=int, default=100, help="n values of the power-law curve")
    parser.add_argument("--modes", type=int, default=100_000)
    parser.add_argument("--baseline-points", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random_features_benchmark(args.points, args.baseline_points, args.seed)
    power_law_benchmark(args.n_points, args.modes)
