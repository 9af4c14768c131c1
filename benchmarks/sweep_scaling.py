"""How the cost of a logistic ``erm`` phase diagram scales with its size.

Prints, for grids of 10^2 ... 10^N points (alpha in [0.2, 5], lam log-spaced in [1e-3, 10]):
the time per point of :func:`hdtheory.sweep` (compiled once, timed on a second call), its ratio
against a Python loop over a jitted single-point solve (the way one would use a JAX solver without a
sweep engine), and the ratio of the time of a grid where 1% of the points are hard (lam = 1e-4 at
alpha = 5, the largest norms) to that of a grid of easy points only (target: below 2).

    python benchmarks/sweep_scaling.py [--max-exponent 5] [--loop-points 50]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import hdtheory as hd  # noqa: E402


def timed(f, *args, **kwargs):
    start = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - start


def grid(n_points: int, rng) -> dict[str, np.ndarray]:
    return {"alpha": rng.uniform(0.2, 5.0, n_points), "lam": 10 ** rng.uniform(-3, 1, n_points)}


def sweep(axes):
    return hd.sweep(hd.ERM(), axes, product=False, progress=False, tol=1e-8)


def main(max_exponent: int, loop_points: int) -> None:
    rng = np.random.default_rng(0)
    sweep(grid(8, rng))  # compile once for the small shapes

    solve_one = jax.jit(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l), tol=1e-8).observables["test_error"])
    sample = grid(loop_points, rng)
    solve_one(sample["alpha"][0], sample["lam"][0]).block_until_ready()
    _, loop_time = timed(lambda: [solve_one(a, l).block_until_ready() for a, l in zip(*sample.values())])
    loop_per_point = loop_time / loop_points

    print(f"{'points':>8} {'s/point (sweep)':>16} {'loop / sweep':>13} {'max iter':>9} {'unconverged':>12}")
    for exponent in range(2, max_exponent + 1):
        axes = grid(10**exponent, rng)
        sweep(axes)  # compile this chunk shape
        data, seconds = timed(sweep, axes)
        print(f"{10**exponent:>8} {seconds / 10**exponent:>16.2e} {loop_per_point / (seconds / 10**exponent):>13.1f} "
              f"{int(data['iterations'].max()):>9} {int((~data['converged']).sum()):>12}")

    n = 10 ** min(max_exponent, 4)
    easy = grid(n, rng)
    hard = {k: v.copy() for k, v in easy.items()}
    picked = rng.choice(n, n // 100, replace=False)
    hard["alpha"][picked], hard["lam"][picked] = 5.0, 1e-4
    sweep(easy)
    _, t_easy = timed(sweep, easy)
    data, t_hard = timed(sweep, hard)
    print(f"\n{n} points, 1% hard: {t_hard / t_easy:.2f} x the time of the easy grid "
          f"(hard points: max {int(data['iterations'].values[picked].max())} iterations)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-exponent", type=int, default=5)
    parser.add_argument("--loop-points", type=int, default=50)
    args = parser.parse_args()
    main(args.max_exponent, args.loop_points)
