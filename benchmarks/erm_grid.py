r"""Benchmark: a logistic-regression phase diagram with hdtheory against a per-point SciPy baseline.

What is compared. Both sides solve the same replica saddle point of ridge-regularised logistic
regression on isotropic Gaussian data with a noiseless sign teacher (``hdtheory.ERM(loss="logistic",
teacher="sign")``, ``rho = 1``, penalty ``(lam / 2) |w|^2`` not divided by ``n``), on a grid of
``n x n`` points, ``alpha`` in ``linspace(0.2, 5, n)`` and ``lam`` in ``logspace(-3, 1, n)``.

* hdtheory: :func:`hdtheory.solve` (Newton on the fixed point with a damped fallback,
  Gauss-Legendre panels at the prox's breakpoints, a monotone Newton prox) ``vmap``-ped over the
  flattened grid and compiled once with ``jax.jit``, ``tol = 1e-8``. The trace + compile time
  (ahead of time, ``lower(...).compile()``) and the run time (the second call of the compiled
  program, up to ``block_until_ready``) are reported separately.
* baseline (``benchmarks/baseline_erm.py``): the same equations in plain NumPy/SciPy, one point at a
  time, as commonly written in research code: adaptive ``scipy.integrate.quad`` over ``xi`` for each
  conjugate, a ``scipy.optimize.brentq`` prox per integrand evaluation, and the damped iteration
  ``x <- 0.5 T(x) + 0.5 x`` on ``(m, q, V)`` until ``max |T(x) - x| / (1 + |x|) < 1e-8``. It is far
  too slow for the whole grid, so it is timed on a random sample of grid points
  (``--baseline-points``) in the same process.

Printed: the hdtheory timings, iterations and convergence counts; per sampled point the baseline's
time, iterations and ``|test_error|`` difference; and the ratio of the per-point times
(baseline / hdtheory). Timings are printed, never asserted. The test error is
``arccos(m / sqrt(rho q)) / pi``; the two agree to ~1e-8 over the grid (both tolerances are 1e-8).

``--batch-size B`` solves the grid as ``lax.map`` over vmapped chunks of ``B`` points instead of one
``vmap``: under ``vmap`` every ``while_loop`` (the outer Newton loop, its line search, the prox's
Newton loop) runs until its slowest lane in the batch stops, so smaller batches waste less work.

Run: ``python benchmarks/erm_grid.py [--n 100] [--baseline-points 5] [--seed 0] [--panel-order 40]
[--batch-size 500]``.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_erm  # noqa: E402

TOL = 1e-8


def make_grid(n):
    alphas = np.linspace(0.2, 5.0, n)
    lams = np.logspace(-3.0, 1.0, n)
    A, L = np.meshgrid(alphas, lams, indexing="ij")
    return A.ravel(), L.ravel()


def make_solver(order, batch_size=0):
    """The jitted grid solver: one ``vmap`` over all points, or ``lax.map`` over chunks of them."""

    def one(alpha, lam):
        theory = hd.ERM(alpha=alpha, lam=lam, loss="logistic", teacher="sign", panel_order=order)
        return hd.solve(theory, tol=TOL)

    if batch_size <= 0:
        return jax.jit(jax.vmap(one))
    return jax.jit(lambda a, l: jax.lax.map(lambda al: one(*al), (a, l), batch_size=batch_size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="grid side (n x n points)")
    parser.add_argument("--baseline-points", type=int, default=5,
                        help="random grid points solved by the SciPy baseline (0 to skip)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the baseline sample")
    parser.add_argument("--panel-order", type=int, default=40,
                        help="hdtheory Gauss-Legendre nodes per panel")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="solve the grid as lax.map over vmapped chunks of this size "
                             "(0: a single vmap over the whole grid; default 500)")
    args = parser.parse_args(argv)

    A, L = make_grid(args.n)
    npts = A.size
    a_dev, l_dev = jnp.asarray(A), jnp.asarray(L)
    solver = make_solver(args.panel_order, args.batch_size)

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}, "
          f"host CPUs {os.cpu_count()}")
    print(f"grid: {args.n} x {args.n} = {npts} points, alpha in [0.2, 5], lam in [1e-3, 10], "
          f"tol {TOL:g}, panel order {args.panel_order}, "
          + (f"lax.map in chunks of {args.batch_size}" if args.batch_size > 0 else "one vmap"))

    t0 = time.perf_counter()
    compiled = solver.lower(a_dev, l_dev).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = jax.block_until_ready(compiled(a_dev, l_dev))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = jax.block_until_ready(compiled(a_dev, l_dev))
    t_run = time.perf_counter() - t0

    iters = np.asarray(sol.iterations)
    converged = np.asarray(sol.converged)
    status = np.asarray(sol.status)
    test_error = np.asarray(sol.observables["test_error"])
    hd_per_point = t_run / npts

    print("\nhdtheory (jit + vmap over the grid)")
    print(f"  trace + compile (AOT)      {t_compile:10.3f} s")
    print(f"  run, first call            {t_first:10.3f} s")
    print(f"  run, second call           {t_run:10.3f} s   {1e3 * hd_per_point:.4f} ms / point")
    print(f"  iterations                 max {iters.max()}, mean {iters.mean():.2f}")
    print(f"  not converged              {int((~converged).sum())} of {npts} "
          f"(status counts {dict(zip(*np.unique(status, return_counts=True)))})")
    if (~converged).any():
        bad = np.flatnonzero(~converged)[:10]
        print("  first unconverged (alpha, lam):",
              ", ".join(f"({A[i]:.3g}, {L[i]:.3g})" for i in bad))

    if args.baseline_points <= 0:
        return
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(npts, size=min(args.baseline_points, npts), replace=False)

    print(f"\nSciPy baseline on {sample.size} random grid points (seed {args.seed})")
    header = (f"  {'alpha':>7} {'lam':>9} {'time [s]':>9} {'iters':>6} {'hd iters':>8} "
              f"{'test_error (baseline)':>22} {'|diff|':>9}")
    print(header)
    times, diffs = [], []
    for i in sample:
        t0 = time.perf_counter()
        ref = baseline_erm.solve(float(A[i]), float(L[i]), tol=TOL)
        dt = time.perf_counter() - t0
        diff = abs(ref["test_error"] - float(test_error[i]))
        times.append(dt)
        diffs.append(diff)
        flag = "" if ref["converged"] else "  (baseline not converged)"
        print(f"  {A[i]:7.3f} {L[i]:9.3g} {dt:9.2f} {ref['iterations']:6d} {int(iters[i]):8d} "
              f"{ref['test_error']:22.15f} {diff:9.2e}{flag}")

    base_per_point = float(np.mean(times))
    print("\nsummary")
    print(f"  {'':34} {'time / point':>14}")
    print(f"  {'hdtheory (grid, after compile)':34} {1e3 * hd_per_point:11.4f} ms")
    print(f"  {'baseline (mean over sample)':34} {1e3 * base_per_point:11.1f} ms")
    print(f"  {'ratio baseline / hdtheory':34} {base_per_point / hd_per_point:11.0f} x")
    print(f"  baseline, whole grid (extrapolated): {base_per_point * npts / 3600:.2f} h "
          f"vs hdtheory {t_run:.2f} s run + {t_compile:.2f} s compile")
    print(f"  max |test_error difference| on the sample: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
