"""Tuning lam by gradient descent on the asymptotic error against a dense grid search.

For ridge, logistic, hinge and Huber on the sign and linear teachers (alpha = 3), prints the optimal
lam found by :func:`hdtheory.tune` (BFGS through the fixed point) and by a grid of 1000 log-spaced
values on [1e-3, 1e2] (one vmapped solve, the fastest way to grid-search with hdtheory), the number
of solves each used and their ratio, and the ratio of their times (both compiled first, timed on a
second call; target: at least 10x fewer solves and less time), and the ratio of their first calls,
compilation included (what a user waits for once per model configuration). The same for
``search="batched"`` (a grid of 32 values in one vmapped solve, then Newton with the exact Hessian),
with its time against the default search's. The grid's cost against a SciPy loop is measured in
``erm_grid.py``.

    python benchmarks/tune_vs_grid.py [--points 1000] [--losses logistic,hinge]
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import hdtheory as hd  # noqa: E402

CASES = [
    ("square", "linear", 0.5),
    ("square", "sign", 0.1),
    ("huber", "linear", 0.3),
    ("huber", "sign", 0.1),
    ("logistic", "sign", 0.1),
    ("hinge", "sign", 0.1),
]


def timed(f, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(f(*args))
    return out, time.perf_counter() - start


def main(points: int, losses: tuple[str, ...] | None = None) -> None:
    grid = jnp.logspace(-3, 2, points)
    print(f"{'loss':>8} {'teacher':>7} {'search':>8} {'lam (tune)':>11} {'lam (grid)':>11} {'solves':>7} "
          f"{'grid/tune solves':>16} {'grid/tune time':>15} {'tune/grid first call':>21} {'default/tune time':>18}")
    for loss, teacher, noise in CASES:
        if losses and loss not in losses:
            continue
        theory = hd.ERM(alpha=3.0, lam=1.0, noise=noise, loss=loss, teacher=teacher)

        @jax.jit
        def searched(theory, lams):
            def error(lam):
                return hd.solve(eqx.tree_at(lambda t: t.lam, theory, lam)).observables["test_error"]

            return lams[jnp.argmin(jax.vmap(error)(lams))]

        _, grid_first = timed(searched, theory, grid)
        best, grid_time = timed(searched, theory, grid)
        default_time = None
        for search in ("descent", "batched"):

            def tuned(theory):
                return hd.tune(theory, "test_error", {"lam": "log"}, search=search)

            _, tune_first = timed(tuned, theory)
            result, tune_time = timed(tuned, theory)
            default_time = default_time or tune_time
            solves = int(result.evaluations)
            print(f"{loss:>8} {teacher:>7} {search:>8} {float(result.params['lam']):>11.5g} {float(best):>11.5g} "
                  f"{solves:>7} {points / solves:>16.1f} {grid_time / tune_time:>15.1f} "
                  f"{tune_first / grid_first:>21.1f} {default_time / tune_time:>18.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000, help="grid size (default 1000)")
    parser.add_argument("--losses", default="", help="comma-separated losses to run (default: every case)")
    args = parser.parse_args()
    main(args.points, tuple(filter(None, args.losses.split(","))))
