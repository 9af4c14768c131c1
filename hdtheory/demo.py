"""The demo: the learning curve of ``erm`` on its default parameters, theory against simulation.

The theory is one :func:`hdtheory.sweep` over ``alpha``; the simulation points fit the same
estimator at finite ``d`` over a few seeds (:func:`hdtheory.simulate.simulate`). Writes a labelled
dataset (netCDF and CSV) and the figure (PNG and PDF).
"""

import sys
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._sweep import sweep
from .models import ERM


def _progress(items, enabled: bool, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        return items
    return tqdm(items, desc=desc, disable=not enabled, file=sys.stderr)


def run(out: Path, *, quick: bool = False, progress: bool = True) -> dict[str, Path]:
    """Compute, simulate, save and plot; returns the written files by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from .simulate import simulate

    out.mkdir(parents=True, exist_ok=True)
    theory = ERM()
    alphas = np.linspace(0.1, 5.0, 25 if quick else 100)
    data = sweep(theory, {"alpha": alphas}, progress=progress)

    sim_alphas = np.array([0.5, 2.0, 4.0]) if quick else np.array([0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    d, seeds = (200, 2) if quick else (800, 4)
    sims = [
        simulate(eqx.tree_at(lambda t: t.alpha, theory, jnp.asarray(a)), d=d, seeds=seeds)
        for a in _progress(sim_alphas, progress, "simulating")
    ]
    sim = xr.Dataset(
        {
            "simulated_test_error": ("alpha_sim", [s.mean["test_error"] for s in sims]),
            "simulated_test_error_sem": ("alpha_sim", [s.sem["test_error"] for s in sims]),
        },
        coords={"alpha_sim": sim_alphas},
        attrs={"simulation_d": d, "simulation_seeds": seeds},
    )
    paths = {"csv": out / "learning_curve.csv", "png": out / "learning_curve.png",
             "pdf": out / "learning_curve.pdf"}
    data.to_dataframe().to_csv(paths["csv"])
    paths["netcdf"] = out / "learning_curve.nc"
    xr.merge([data, sim], combine_attrs="no_conflicts").to_netcdf(paths["netcdf"])

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
    fig.savefig(paths["png"], dpi=150)
    fig.savefig(paths["pdf"])
    plt.close(fig)
    return paths
