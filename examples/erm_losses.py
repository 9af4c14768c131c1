"""Test error of ERM against alpha for the square and logistic losses, with d(error)/d(lam).

Sign teacher, lam = 0.1. Each curve is one vmapped solve; the derivative comes from the implicit
function theorem at each fixed point. Writes erm_losses.png.
Run: python examples/erm_losses.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(points: int, out: str) -> None:
    alphas = jnp.linspace(0.2, 6.0, points)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, constrained_layout=True)
    for loss in ("square", "logistic"):

        def error(alpha, lam, loss=loss):
            return hd.solve(hd.ERM(alpha=alpha, lam=lam, loss=loss)).observables["test_error"]

        value_and_slope = jax.jit(jax.vmap(jax.value_and_grad(error, argnums=1), in_axes=(0, None)))
        values, slopes = value_and_slope(alphas, 0.1)
        top.plot(alphas, values, label=loss)
        bottom.plot(alphas, slopes, label=loss)
    top.set_ylabel("test error")
    top.legend()
    bottom.axhline(0.0, color="gray", lw=0.5)
    bottom.set_ylabel(r"$\partial\, \mathrm{error} / \partial \lambda$")
    bottom.set_xlabel(r"$\alpha = n/d$")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100, help="values of alpha")
    parser.add_argument("--quick", action="store_true", help="12 values of alpha")
    parser.add_argument("--out", default="erm_losses.png")
    args = parser.parse_args()
    main(12 if args.quick else args.points, args.out)
