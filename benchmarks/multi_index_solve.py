"""Time of a ``k = 2`` multi-index solve on the CPU at the default orders against a former default, in
the same process: ``--before panel_order`` (the default) the Hermite rule in the fields,
``panel_order = 0`` (the default for the continuous links before 2026-12-03); ``--before label_order``
``label_order = 8`` (the default before 2026-12-02); ``--before map_orders`` ``label_order = 6,
inner_order = 4`` (the map's label and posterior rules at ``k = 2`` before 2026-12-03).

The solve is ``hd.solve(hd.MultiIndex(alpha, noise, link, k=2))``: its compile time (the first
call, with the persistent compilation cache off, after an untimed solve of another model), its run time (the minimum of ``--repeats`` calls)
and that of one evaluation of the map with its Jacobian (``jax.jacfwd``, what each trial of Newton's
line search costs), and the largest difference of the two fixed points.

    python benchmarks/multi_index_solve.py [--alpha 100] [--noise 0.01] [--link product] [--repeats 3]
        [--before panel_order|label_order|map_orders]
"""

import argparse
import os
import time

os.environ.setdefault("HDTHEORY_NO_CACHE", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import hdtheory as hd  # noqa: E402


_BEFORE = {"panel_order": {"panel_order": 0}, "label_order": {"label_order": 8}, "map_orders": {"label_order": 6, "inner_order": 4}}


def _timed(f, *args):
    start = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - start


def measure(theories, repeats):
    """``(compile, solve, map with Jacobian, solution)`` per theory, the calls interleaved so that
    a change of the machine's load weighs on both alike."""
    hd.solve(hd.MultiIndex(link="sum", k=1))  # one-off costs of the first solve, untimed
    compile_s = [_timed(hd.solve, theory) for theory in theories]
    linearised = jax.jit(lambda t, u: jax.jacfwd(lambda u: t.unconstrain(t.update(t.constrain(u))))(u))
    solutions = [hd.solve(theory) for theory in theories]
    points = [theory.unconstrain(sol.state) for theory, sol in zip(theories, solutions)]
    for theory, u in zip(theories, points):
        _timed(linearised, theory, u)
    run_s, map_s = [[] for _ in theories], [[] for _ in theories]
    for _ in range(repeats):
        for i, (theory, u) in enumerate(zip(theories, points)):
            run_s[i].append(_timed(hd.solve, theory))
            map_s[i].append(_timed(linearised, theory, u))
    return [(c, min(r), min(m), sol) for c, r, m, sol in zip(compile_s, run_s, map_s, solutions)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=100.0)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--link", default="product")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", choices=tuple(_BEFORE), default="panel_order")
    args = parser.parse_args()
    settings = dict(alpha=args.alpha, noise=args.noise, link=args.link, k=2)
    before = _BEFORE[args.before]
    names = (", ".join(f"{key}={value}" for key, value in before.items()) + " (before)", "default")
    theories = [hd.MultiIndex(**settings, **before), hd.MultiIndex(**settings)]
    rows = dict(zip(names, measure(theories, args.repeats)))
    print("| orders | compile + first run | solve | map with Jacobian | iterations | converged |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (compile_s, run_s, map_s, sol) in rows.items():
        print(f"| {name} | {compile_s:.1f} s | {run_s:.2f} s | {map_s:.3f} s | {int(sol.iterations)} | {bool(sol.converged)} |")
    (_, before, before_map, old), (_, after, after_map, new) = rows.values()
    print(f"solve: before / after = {before / after:.2f}; map with Jacobian: {before_map / after_map:.2f}")
    print(f"max |M_before - M_after| = {float(jnp.max(jnp.abs(old.state - new.state))):.1e}")


if __name__ == "__main__":
    main()
