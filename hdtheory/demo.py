"""The demo: ``hdtheory demo``, four figures of the theory with their data and an index page.

1. ``phase_diagram``: the test error of logistic regression on a sign teacher with label flips over
   ``(alpha, lam)`` (one :func:`hdtheory.sweep`), with the optimal ``lam(alpha)`` found by
   :func:`hdtheory.tune` (one vmapped call over ``alpha``) drawn on top.
2. ``learning_curve``: the test error of :class:`hdtheory.ERM` on its defaults against ``alpha``,
   with finite-size simulation points (:func:`hdtheory.simulate.simulate`) over a few seeds.
3. ``double_descent``: ridge regression on random features ``erf(F x / sqrt(d))`` against the
   number of features per sample ``p / n``, for three penalties (:class:`hdtheory.RandomFeatures`,
   one vmapped solve): the peak at the interpolation threshold ``p = n`` as ``lam -> 0``.
4. ``committee_plateau``: the Saad-Solla plateau of online SGD in a soft committee machine
   (K = M = 3, erf), three learning rates, with online SGD at finite ``d`` on top.

Each figure is written as PNG and PDF, its data as netCDF and CSV; ``index.html`` shows the figures
and links the data. Progress goes to stderr. The output folder is checked before anything is
computed, and the files appear in it together once all are written (as for ``hdtheory sweep``: an
interrupted run leaves the folder as it was); a folder holding files is written into only with
``overwrite``.
"""

import math
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

_GRID = {True: (8, 6), False: (40, 30)}
"""(alpha, lam) points of the phase diagram, reduced (--quick) and full."""


def _save(fig, out: Path, name: str) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(out / f"{name}.png", dpi=150)
    fig.savefig(out / f"{name}.pdf")
    plt.close(fig)


def _write(out: Path, name: str, main, **parts) -> None:
    """One netCDF file of everything; one CSV table per part (their dimensions differ)."""
    import xarray as xr

    xr.merge([main, *parts.values()], combine_attrs="no_conflicts").to_netcdf(out / f"{name}.nc")
    main.to_dataframe().to_csv(out / f"{name}.csv")
    for part, data in parts.items():
        data.to_dataframe().to_csv(out / f"{name}_{part}.csv")


def phase_diagram(out: Path, quick: bool, progress: bool) -> str:
    """Test error over (alpha, lam) with the tuned lam(alpha); returns the figure's caption."""
    import xarray as xr

    from . import plot
    from ._sweep import sweep
    from ._tune import Log, tune
    from .models import ERM

    theory = ERM(loss="logistic", teacher="sign", noise=0.1)
    alphas = np.linspace(0.25, 5.0, _GRID[quick][0])
    lams = np.logspace(-3, 1, _GRID[quick][1])
    grid = sweep(theory, {"alpha": alphas, "lam": lams}, progress=progress)

    bounds = Log(low=float(lams[0]), high=float(lams[-1]))
    at = lambda a: tune(eqx.tree_at(lambda t: t.alpha, theory, a), "test_error", {"lam": bounds})
    best = jax.jit(jax.vmap(at))(jnp.asarray(alphas))
    optimum = xr.Dataset(
        {
            "optimal_lam": ("alpha", np.asarray(best.params["lam"])),
            "optimal_test_error": ("alpha", np.asarray(best.objective)),
            "optimal_at_boundary": ("alpha", np.asarray(best.at_boundary["lam"], dtype=np.int32)),
            "optimal_converged": ("alpha", np.asarray(best.converged)),
        },
        coords={"alpha": alphas},
    )
    _write(out, "phase_diagram", grid, optimum=optimum)
    data = xr.merge([grid, optimum], combine_attrs="no_conflicts")

    fig = plot.heatmap(data, "test_error", "alpha", "lam")
    ax = fig.axes[0]
    interior = data["optimal_at_boundary"].values == 0
    ax.plot(alphas, data["optimal_lam"], color="C3", lw=2, label=r"optimal $\lambda(\alpha)$ (tune)")
    if (~interior).any():
        ax.plot(alphas[~interior], data["optimal_lam"].values[~interior], "v", color="C3", ms=5,
                label="optimum on the box's bound")
    ax.set_xlabel(r"$\alpha = n/d$")
    ax.set_ylabel(r"$\lambda$")
    ax.set_title("logistic loss, sign teacher, 10% label flips", fontsize="medium")
    ax.legend(loc="lower left", fontsize="small")
    _save(fig, out, "phase_diagram")
    return ("Test error (0-1, against the noiseless label) of ridge-regularised logistic regression "
            "on a sign teacher with 10% label flips, over the sample ratio alpha and the penalty lam, "
            "with the optimal lam(alpha) found by gradient descent on the asymptotic error.")


def learning_curve(out: Path, quick: bool, progress: bool) -> str:
    """The learning curve of ERM on its defaults, theory against simulation."""
    import matplotlib.pyplot as plt
    import xarray as xr

    from ._sweep import sweep
    from .models import ERM
    from .simulate import simulate

    theory = ERM()
    # As many points as a chunk of the phase diagram's sweep, over the same fields: the compiled
    # program is the same.
    alphas = np.linspace(0.1, 5.0, _GRID[quick][0] * _GRID[quick][1] if quick else 512)
    data = sweep(theory, {"alpha": alphas, "lam": [float(theory.lam)]}, progress=progress)
    data = data.squeeze("lam", drop=True).assign_attrs(lam=float(theory.lam))
    sim_alphas = np.array([0.5, 3.0]) if quick else np.array([0.5, 1.5, 3.0, 5.0])
    d, seeds = (200, 2) if quick else (500, 4)
    sims = [simulate(eqx.tree_at(lambda t: t.alpha, theory, jnp.asarray(a)), d=d, seeds=seeds)
            for a in sim_alphas]
    sim = xr.Dataset(
        {
            "simulated_test_error": ("alpha_sim", [s.mean["test_error"] for s in sims]),
            "simulated_test_error_sem": ("alpha_sim", [s.sem["test_error"] for s in sims]),
        },
        coords={"alpha_sim": sim_alphas},
        attrs={"simulation_d": d, "simulation_seeds": seeds},
    )
    _write(out, "learning_curve", data, simulation=sim)

    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    ax.plot(alphas, data["test_error"], label="theory")
    ax.errorbar(sim_alphas, sim["simulated_test_error"], yerr=sim["simulated_test_error_sem"], fmt="o",
                label=f"simulation, d = {d}, {seeds} seeds")
    unconverged = ~data["converged"].values
    if unconverged.any():
        ax.plot(alphas[unconverged], data["test_error"].values[unconverged], "rx", label="not converged")
    ax.set_xlabel(r"$\alpha = n/d$")
    ax.set_ylabel("test error")
    ax.set_title(f"{theory.loss} loss, {theory.teacher} teacher, $\\lambda$ = {float(theory.lam):g}")
    ax.legend()
    _save(fig, out, "learning_curve")
    return (f"Learning curve of logistic regression (lam = {float(theory.lam):g}) on a noiseless sign "
            f"teacher: the asymptotic test error against finite-size simulations (d = {d}, {seeds} "
            "seeds, error bars one standard error).")


def double_descent(out: Path, quick: bool, progress: bool) -> str:
    """Random-features ridge regression against p / n for three penalties."""
    import matplotlib.pyplot as plt
    import xarray as xr

    from ._fixed_point import solve
    from .models import RandomFeatures

    gammas = np.logspace(-1, 1, 61 if quick else 241)
    lams = np.array([1e-4, 1e-2, 1e-1])
    theory = lambda gamma, lam: RandomFeatures(alpha=1.0, gamma=gamma, lam=lam, loss="square",
                                               teacher="linear", noise=0.1)
    curves = jax.jit(jax.vmap(jax.vmap(lambda g, l: solve(theory(g, l)), (0, None)), (None, 0)))
    sol = curves(jnp.asarray(gammas), jnp.asarray(lams))
    data = xr.Dataset(
        {
            "test_error": (("lam", "gamma"), np.asarray(sol.observables["test_error"])),
            "converged": (("lam", "gamma"), np.asarray(sol.converged)),
        },
        coords={"lam": lams, "gamma": gammas},
        attrs={"alpha": 1.0, "activation": "erf", "teacher": "linear", "noise": 0.1},
    )
    _write(out, "double_descent", data)

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for lam in lams:
        curve = data.sel(lam=lam)
        ax.loglog(gammas, curve["test_error"], label=rf"$\lambda$ = {lam:g}")
        bad = ~curve["converged"].values
        if bad.any():
            ax.plot(gammas[bad], curve["test_error"].values[bad], "rx")
    ax.axvline(1.0, color="gray", lw=0.5)
    ax.set_xlabel(r"$p/n$ (features per sample; $n = d$)")
    ax.set_ylabel("test error")
    ax.legend()
    _save(fig, out, "double_descent")
    return ("Double descent of ridge regression on erf random features (n = d samples, linear teacher "
            "with noise variance 0.1): the test error against the number of features per sample, "
            "peaking at p = n as the penalty vanishes.")


def committee_plateau(out: Path, quick: bool, progress: bool) -> str:
    """The Saad-Solla plateau: ODEs for three learning rates, online SGD at finite d."""
    import matplotlib.pyplot as plt
    import xarray as xr

    from ._integrate import integrate
    from .dynamics import Committee
    from .simulate import simulate

    K = 3
    t1, d, seeds = (40.0, 200, 2) if quick else (300.0, 500, 2)
    ts = np.linspace(0.0, t1, 301)
    lrs = np.array([0.5, 0.3, 0.1])
    make = lambda lr: Committee(K=K, M=K, lr=lr, q0=0.2, r0=0.02)
    curves = jax.jit(jax.vmap(lambda lr: integrate(make(lr), t1, saveat=jnp.asarray(ts)).observables["eg"]))
    eg = np.asarray(curves(jnp.asarray(lrs)))
    sim = simulate(make(lrs[0]), d=d, seeds=seeds, times=np.linspace(0.0, t1, 16))
    plateau = K / math.pi * (math.pi / 6 - K * math.asin(1 / (2 * K)))
    theory = xr.Dataset(
        {"eg": (("lr", "t"), eg)}, coords={"lr": lrs, "t": ts},
        attrs={"K": K, "M": K, "activation": "erf", "plateau_height": plateau},
    )
    simulation = xr.Dataset(
        {"simulated_eg": ("t_sim", sim.mean["eg"]), "simulated_eg_sem": ("t_sim", sim.sem["eg"])},
        coords={"t_sim": sim.mean["t"]},
        attrs={"simulation_lr": lrs[0], "simulation_d": d, "simulation_seeds": seeds},
    )
    _write(out, "committee_plateau", theory, simulation=simulation)

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for lr, curve in zip(lrs, eg):
        ax.semilogy(ts, curve, label=rf"ODE, $\eta$ = {lr:g}")
    ax.errorbar(sim.mean["t"], sim.mean["eg"], yerr=sim.sem["eg"], fmt="o", ms=3, color="C0",
                label=rf"SGD, $\eta$ = {lrs[0]:g}, d = {d}, {seeds} seeds")
    ax.axhline(plateau, ls="--", color="gray", lw=1, label="symmetric plateau (Saad & Solla)")
    ax.set_xlabel("t = samples / d")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.legend(fontsize=8)
    _save(fig, out, "committee_plateau")
    return ("Online SGD of a soft committee machine (K = M = 3, erf): the generalisation error from "
            "the ODEs of Saad & Solla (1995) for three learning rates, finite-d SGD on top, and the "
            "height of the symmetric plateau.")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>hdtheory demo</title>
<style>body {{ font-family: sans-serif; max-width: 62em; margin: 2em auto; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ max-width: 48em; }}</style>
</head>
<body>
<h1>hdtheory demo</h1>
<p>Asymptotic theory of high-dimensional learning, computed by <code>hdtheory demo</code>{mode}.
Each figure's data is in netCDF (open with <code>xarray.open_dataset</code>) and CSV.</p>
{figures}
</body>
</html>
"""

_FIGURE = """<figure id="{name}">
<img src="{name}.png" alt="{name}">
<figcaption>{caption} Data: {data}; vector figure: <a href="{name}.pdf">{name}.pdf</a>.</figcaption>
</figure>"""


def run(out: Path, *, quick: bool = False, progress: bool = True, overwrite: bool = False) -> dict[str, Path]:
    """Compute every figure, write data, figures and ``index.html``; returns the written files.

    Raises :class:`hdtheory._config.OutputError` before computing anything if ``out`` cannot be
    written, or holds files and not ``overwrite``.
    """
    from ._config import prepare_output, staged

    created = prepare_output(out, overwrite)
    with staged(out, created) as stage:
        paths = _run(stage, quick, progress)
    return {name: out / path.name for name, path in paths.items()}


def _run(out: Path, quick: bool, progress: bool) -> dict[str, Path]:
    import html

    import matplotlib

    matplotlib.use("Agg")

    stages = {
        "phase_diagram": ("test error over (alpha, lam), optimal lam(alpha) by tune", phase_diagram),
        "learning_curve": ("learning curve and finite-size simulations", learning_curve),
        "double_descent": ("random-features double descent", double_descent),
        "committee_plateau": ("Saad-Solla plateau: ODEs and online SGD", committee_plateau),
    }
    start = time.perf_counter()
    paths, figures = {}, []
    for i, (name, (what, make)) in enumerate(stages.items(), 1):
        if progress:
            print(f"[{i}/{len(stages)}] {what} ...", file=sys.stderr, flush=True)
        caption = make(out, quick, progress)
        written = {f"{name}.{ext}": out / f"{name}.{ext}" for ext in ("png", "pdf", "nc", "csv")}
        written |= {p.name: p for p in sorted(out.glob(f"{name}_*.csv"))}
        paths |= written
        links = ", ".join(f'<a href="{f}">{f}</a>' for f in written if not f.endswith((".png", ".pdf")))
        figures.append(_FIGURE.format(name=name, caption=html.escape(caption), data=links))
        if progress:
            print(f"      done after {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    paths["index.html"] = out / "index.html"
    paths["index.html"].write_text(
        _PAGE.format(mode=" (reduced run, --quick)" if quick else "", figures="\n".join(figures))
    )
    return paths
