"""Escape time against d for a hard single-index target (information exponent 3), spherical SGD.

Target and student f = f* = He_3 / sqrt(6); the overlap starts at m0 = d^(-1/2) (a random start) and
the escape time is when m reaches 1/2 (an event of the integrator, one vmapped call over d). With the
learning rate scaled as eta = eta0 / sqrt(d) (at larger eta0, about 0.1 here, the eta^2 term stops
the escape altogether: the time is +inf), the time grows as d^((k-2)/2) / eta = d: sample
complexity d^2 = d^(k-1). Writes
single_index_escape.png. Run: python examples/single_index_escape.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(quick: bool, out: str) -> None:
    ds = jnp.logspace(2, 4 if quick else 7, 3 if quick else 6)

    def escape(d, eta0):
        theory = hd.dynamics.SingleIndex(lr=eta0 / jnp.sqrt(d), m0=1 / jnp.sqrt(d))
        trajectory = hd.integrate(theory, 1e12, saveat=jnp.array([0.0]),
                                  event=hd.crossing("m", 0.5), max_steps=20_000)
        return trajectory.event_time

    fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    eta0s = (0.02, 0.05)
    # One compiled program for every (eta0, d).
    grid = jax.jit(jax.vmap(jax.vmap(escape, in_axes=(0, None)), in_axes=(None, 0)))(ds, jnp.asarray(eta0s))
    for eta0, times in zip(eta0s, grid):
        ax.loglog(ds, times, "o-", ms=3, label=rf"$\eta = {eta0} / \sqrt{{d}}$")
    ax.loglog(ds, 20 * ds, "k--", lw=1, label=r"$\propto d$")
    ax.set_xlabel("d")
    ax.set_ylabel("escape time t (samples / d)")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller d")
    parser.add_argument("--out", default="single_index_escape.png")
    args = parser.parse_args()
    main(args.quick, args.out)
