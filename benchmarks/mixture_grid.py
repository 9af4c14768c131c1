r"""Benchmark: a K = 3 cross-entropy phase diagram of the Gaussian mixture, hdtheory against NumPy.

What is compared. Both sides solve the replica fixed point of ridge-regularised softmax
cross-entropy on a balanced 3-cluster Gaussian mixture with orthogonal means of squared norm
``snr d`` (``hdtheory.Mixture(K=3, loss="cross-entropy")``, ``snr = 1``, penalty ``(lam / 2) |W|^2``
not divided by ``n``) on an ``n x n`` grid, ``alpha`` in ``linspace(0.5, 5, n)`` and ``lam`` in
``logspace(-2, 1, n)``, with the same quadrature (the product Gauss-Hermite rule of order 24 over the
two fields, 576 nodes per cluster), and report the 0-1 test error.

* hdtheory: :func:`hdtheory.solve` (Newton on the fixed point, the prox by a globalised Newton
  solve vectorised over the nodes, default tolerance 1e-10) over the flattened grid as
  ``lax.map`` over ``vmap``-ped chunks of ``--batch-size`` points, compiled once with ``jax.jit``.
  The trace + compile time (ahead of time, ``lower(...).compile()``) and the run time (the second
  call of the compiled program, up to ``block_until_ready``) are reported apart.
* baseline (``benchmarks/baseline_mixture.py``): the same equations in NumPy/SciPy, one point at a
  time, the proximal operators by Newton's method vectorised over the nodes, the damped iteration
  ``x <- (x + T(x)) / 2`` to a relative change of 1e-8. Far too slow for the whole grid, it is
  timed on a random sample of grid points (``--baseline-points``) in the same process.

Printed: the hdtheory timings, iterations and convergence counts and its slowest points; per
sampled point the baseline's time, its ratio to hdtheory's time per point, both iteration counts
and the ``|test_error|`` difference; the mean ratio, the ratio including hdtheory's compilation,
the baseline's projected time for the whole grid and the largest difference. Timings are printed,
never asserted.

Under ``vmap`` every ``while_loop`` of a chunk (the fixed-point iteration, its line search, the prox's
Newton loop over ``chunk x 3 x 576`` nodes) runs until its slowest lane stops. Each solve is
already vectorised over its 1728 prox problems, so on a CPU chunks of one point (the default) waste
nothing on stragglers and lose no vector width: on 10 x 10 points, 23 ms per point in chunks of
one against 59 ms in chunks of ten.

Run: ``python benchmarks/mixture_grid.py [--n 50] [--baseline-points 3] [--batch-size 1] [--seed 0]``.
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
import baseline_mixture  # noqa: E402


def make_grid(n):
    A, L = np.meshgrid(np.linspace(0.5, 5.0, n), np.logspace(-2.0, 1.0, n), indexing="ij")
    return A.ravel(), L.ravel()


def make_solver(batch_size):
    """The jitted grid solver: ``lax.map`` over vmapped chunks of ``batch_size`` points."""

    def one(point):
        alpha, lam = point
        solution = hd.solve(hd.Mixture(K=3, loss="cross-entropy", alpha=alpha, lam=lam))
        return solution.observables["test_error"], solution.iterations, solution.status

    return jax.jit(lambda a, l: jax.lax.map(one, (a, l), batch_size=batch_size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="grid side (n x n points)")
    parser.add_argument("--baseline-points", type=int, default=3,
                        help="random grid points solved by the NumPy baseline (0 to skip)")
    parser.add_argument("--batch-size", type=int, default=1, help="points per vmapped chunk")
    parser.add_argument("--seed", type=int, default=0, help="seed of the baseline sample")
    args = parser.parse_args(argv)

    A, L = make_grid(args.n)
    size = A.size
    a_dev, l_dev = jnp.asarray(A), jnp.asarray(L)
    solver = make_solver(args.batch_size)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, host CPUs {os.cpu_count()}")
    print(f"grid: {args.n} x {args.n} = {size} points, alpha in [0.5, 5], lam in [1e-2, 10], "
          f"K = 3, snr = 1, Gauss-Hermite order 24, chunks of {args.batch_size}")

    start = time.perf_counter()
    compiled = solver.lower(a_dev, l_dev).compile()
    t_compile = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(a_dev, l_dev))
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    errors, iterations, status = (np.asarray(x) for x in jax.block_until_ready(compiled(a_dev, l_dev)))
    t_run = time.perf_counter() - start
    per_point = t_run / size

    print("\nhdtheory (jit, lax.map over vmapped chunks)")
    print(f"  trace + compile (AOT)      {t_compile:10.2f} s")
    print(f"  run, first call            {t_first:10.2f} s")
    print(f"  run, second call           {t_run:10.2f} s   {1e3 * per_point:.2f} ms / point")
    print(f"  iterations                 max {iterations.max()}, mean {iterations.mean():.2f}")
    print(f"  converged                  {int((status == 0).sum())} of {size} "
          f"(status counts {dict(zip(*(v.tolist() for v in np.unique(status, return_counts=True))))})")
    slowest = np.argsort(-iterations, kind="stable")[:5]
    print("  most iterations (alpha, lam, iterations):",
          ", ".join(f"({A[i]:.3g}, {L[i]:.3g}, {iterations[i]})" for i in slowest))

    if args.baseline_points <= 0:
        return
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(size, size=min(args.baseline_points, size), replace=False)
    print(f"\nNumPy baseline on {sample.size} random grid points (seed {args.seed})")
    print(f"  {'alpha':>7} {'lam':>9} {'ratio':>9} {'iters':>6} {'hd iters':>8} "
          f"{'test_error (baseline)':>22} {'|diff|':>9}")
    times, diffs = [], []
    for i in sample:
        start = time.perf_counter()
        error, baseline_iterations = baseline_mixture.solve(float(A[i]), float(L[i]))
        times.append(time.perf_counter() - start)
        diffs.append(abs(error - float(errors[i])))
        print(f"  {A[i]:7.3f} {L[i]:9.3g} {times[-1] / per_point:8.0f}x {baseline_iterations:6d} "
              f"{int(iterations[i]):8d} {error:22.15f} {diffs[-1]:9.2e}")

    baseline = float(np.mean(times))
    print("\nsummary")
    print(f"  ratio baseline / hdtheory per point (run):           {baseline / per_point:9.0f} x")
    print(f"  ratio for the whole grid, hdtheory's compile included: {baseline * size / (t_run + t_compile):7.0f} x")
    print(f"  baseline for the whole grid (projected): {baseline * size / 3600:.1f} h "
          f"({1e3 * baseline:.0f} ms per point) against hdtheory {t_run:.1f} s run + {t_compile:.1f} s compile")
    print(f"  max |test_error difference| on the sample: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
