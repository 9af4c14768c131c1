"""The Saad-Solla plateau: generalisation error of online SGD, K = M = 3, erf, with simulations.

ODE curves for three learning rates, each from the same small initial overlaps, and finite-d online
SGD (d = 1000, a few seeds) at the first learning rate, started from exactly those overlaps. The
dashed line is the plateau height of the symmetric fixed point for eta -> 0, Saad & Solla 1995:
eg* = (K / pi) (pi / 6 - K arcsin(1 / (2K))). Writes committee_plateau.png.
Run: python examples/committee_plateau.py [--quick]
"""

import argparse
import math

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(quick: bool, out: str) -> None:
    K = 3
    t1, d, seeds = (40.0, 200, 2) if quick else (300.0, 1000, 2)
    ts = jnp.linspace(0.0, t1, 301)
    lrs = jnp.array([0.5, 0.3, 0.1])
    make = lambda lr: hd.Committee(K=K, M=K, lr=lr, q0=0.2, r0=0.02)
    curves = jax.vmap(lambda lr: hd.integrate(make(lr), t1, saveat=ts).observables["eg"])(lrs)
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for lr, eg in zip(lrs, curves):
        ax.semilogy(ts, eg, label=rf"ODE, $\eta$ = {float(lr):g}")
    sim_times = np.linspace(0.0, t1, 16)
    sim = hd.simulate.simulate(make(lrs[0]), d=d, seeds=seeds, times=sim_times)
    ax.errorbar(sim.mean["t"], sim.mean["eg"], yerr=sim.sem["eg"], fmt="o", ms=3, color="C0",
                label=f"SGD, d = {d}, {seeds} seeds")
    plateau = K / math.pi * (math.pi / 6 - K * math.asin(1 / (2 * K)))
    ax.axhline(plateau, ls="--", color="gray", lw=1, label="symmetric plateau (Saad & Solla)")
    ax.set_xlabel("t = samples / d")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smaller d, shorter t)")
    parser.add_argument("--out", default="committee_plateau.png")
    args = parser.parse_args()
    main(args.quick, args.out)
