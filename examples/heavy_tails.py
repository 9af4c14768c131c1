"""Huber against square loss on heavy-tailed data: the excess error against the tail parameter.

Regression with elliptical covariates x = sqrt(omega) z, omega ~ InvGamma(a, a - 1) (Student-t
covariates with 2a degrees of freedom and covariance I; ``hd.ERM(scale="inverse-gamma", tail=a)``),
a linear teacher whose noise is scaled alike (heavy-tailed noise of variance 1), alpha = 5: the
setting of Adomaityte, Defilippis, Loureiro & Sicuro 2023 ("High-dimensional robust regression under
heavy-tailed data: asymptotics and universality"). The square loss at its best lam and the Huber loss
at its best (lam, delta), both found by ``hd.tune`` vmapped over the tail parameter (one compiled
program per loss): the Huber loss wins as the tails get heavier (a -> 1) and the two meet as the data
become Gaussian (a -> infinity), where the best delta grows. The quick run solves at lam = delta = 1
instead of tuning. Points: finite-size simulations (``hdtheory.simulate``) at the curves' parameters.
Writes the figure and the curves as a netCDF file beside it.
Run: python examples/heavy_tails.py [--quick]
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SETTING = dict(alpha=5.0, noise=1.0, teacher="linear", scale="inverse-gamma", scale_order=6)
OVER = {"square": ("lam",), "huber": ("lam", "delta")}
BOUNDS = {"lam": hd.Log(low=1e-4, high=1e2), "delta": hd.Log(low=1e-2, high=1e2)}


def erm(loss, tail, lam=1.0, delta=1.0):
    return hd.ERM(loss=loss, tail=tail, lam=lam, **(dict(delta=delta) if loss == "huber" else {}), **SETTING)


def curve(loss, tails, tune):
    """The excess test error and the parameters at each tail: tuned, or lam = delta = 1."""
    if tune:
        result = jax.jit(jax.vmap(lambda a: hd.tune(erm(loss, a), "test_error", {k: BOUNDS[k] for k in OVER[loss]})))(tails)
        return np.asarray(result.objective), np.asarray(result.converged), {k: np.asarray(result.params[k]) for k in OVER[loss]}

    def solve(a):
        solution = hd.solve(erm(loss, a))
        return solution.observables["test_error"], solution.converged

    error, converged = jax.jit(jax.vmap(solve))(tails)
    return np.asarray(error), np.asarray(converged), {k: np.ones(tails.shape) for k in OVER[loss]}


def main(points: int, d: int, seeds: int, tune: bool, out: str) -> None:
    tails = jnp.logspace(np.log10(1.2), np.log10(30.0), points)
    picks = [points // 2] if points < 20 else list(np.linspace(0, points - 1, 4).round().astype(int))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    data = {}
    for loss in OVER:
        error, ok, params = curve(loss, tails, tune)
        label = f"{loss}, {'tuned ' + ', '.join(OVER[loss]) if tune else 'lam = delta = 1'}"
        color = left.plot(tails[ok], error[ok], label=label)[0].get_color()
        for name, values in params.items():
            right.plot(tails[ok], values[ok], "--" if name == "delta" else "-", color=color, label=f"{loss}: {name}")
        sims = [hd.simulate.simulate(erm(loss, float(tails[i]), *(float(params[k][i]) for k in OVER[loss])),
                                     d=d, seeds=seeds) for i in picks]
        left.errorbar(np.asarray(tails)[picks], [s.mean["test_error"] for s in sims],
                      [s.sem["test_error"] for s in sims], fmt="o", ms=3, color=color)
        data[f"test_error_{loss}"] = ("tail", np.where(ok, error, np.nan))
        data |= {f"{name}_{loss}": ("tail", np.where(ok, values, np.nan)) for name, values in params.items()}
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks([1.5, 3, 10, 30], ["1.5", "3", "10", "30"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("tail parameter a (2a degrees of freedom)")
        ax.legend(fontsize=7)
    left.set_ylabel("excess test error")
    left.set_title(f"alpha = {SETTING['alpha']:g}, noise variance 1; points: simulations at d = {d}", fontsize=9)
    right.set_yscale("log")
    right.set_ylabel("parameters of the curves")
    fig.savefig(out, dpi=150)
    nc = Path(out).with_suffix(".nc")
    xr.Dataset(data, coords={"tail": np.asarray(tails)}, attrs={"alpha": SETTING["alpha"], "noise": SETTING["noise"],
                                                              "tuned": int(tune)}).to_netcdf(nc)
    print(f"wrote {out} and {nc}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 tail parameters at lam = delta = 1 (no tuning), a simulation at one, d = 100")
    parser.add_argument("--out", default="heavy_tails.png")
    args = parser.parse_args()
    main(4, 100, 2, False, args.out) if args.quick else main(30, 400, 4, True, args.out)
