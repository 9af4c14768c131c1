"""Pictures of sweeps and continuations: PNG and PDF through matplotlib.

Both functions take the :class:`xarray.Dataset` of :func:`hdtheory.sweep` or
:func:`hdtheory.continuation`, mark the points that did not converge, and return the figure; pass
``path`` to save it (the suffix picks the format, ``.png`` or ``.pdf``).
"""

from pathlib import Path

import numpy as np


def _figure():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 3.8), constrained_layout=True)


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _save(fig, path):
    if path is not None:
        fig.savefig(Path(path), dpi=150)
    return fig


def heatmap(data, variable: str, x: str, y: str, *, contours: int = 8, path=None, log_y=None):
    """``variable`` over the two axes ``x`` and ``y`` of a sweep, with contour lines.

    Unconverged points are crossed out; ``log_y`` defaults to a log scale when ``y`` spans more than
    two decades.
    """
    fig, ax = _figure()
    field = data[variable].transpose(y, x)
    xs, ys = data[x].values, data[y].values
    mesh = ax.pcolormesh(xs, ys, field.values, shading="nearest")
    fig.colorbar(mesh, ax=ax, label=variable)
    if contours:
        ax.contour(xs, ys, field.values, levels=contours, colors="white", linewidths=0.6)
    failed = ~data["converged"].broadcast_like(field).transpose(y, x).values  # no t: one flag per curve
    if failed.any():
        gx, gy = np.meshgrid(xs, ys)
        ax.plot(gx[failed], gy[failed], "rx", ms=4, label="not converged")
        ax.legend(loc="upper right")
    if log_y if log_y is not None else (ys.min() > 0 and ys.max() / ys.min() > 100):
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return _save(fig, path)


def curves(data, variable: str, axis: str, *, path=None):
    """``variable`` along ``axis``: one curve per other coordinate, or per branch of a continuation.

    A continuation's coexistence region is shaded and its transitions drawn as vertical lines.
    """
    fig, ax = _figure()
    values = data[variable]
    others = [d for d in values.dims if d != axis]
    lines = values.stack(line=others) if others else values.expand_dims(line=[""])
    ok = data["converged"].broadcast_like(values)
    ok = ok.stack(line=others) if others else ok.expand_dims(line=[""])
    xs = data[axis].values
    for i in range(lines.sizes["line"]):
        key = lines["line"].values[i]
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{d} = {_fmt(v)}" for d, v in zip(others, key)) or variable
        y = lines.isel(line=i).transpose(axis).values
        good = ok.isel(line=i).transpose(axis).values
        ax.plot(xs, np.where(good, y, np.nan), label=label)
        if (~good).any():
            ax.plot(xs[~good], y[~good], "rx", ms=4)
    if "hysteresis" in data:
        region = data["hysteresis"].values
        ax.fill_between(xs, 0, 1, where=region, alpha=0.15, color="gray",
                        transform=ax.get_xaxis_transform(), label="coexistence")
        for t in np.atleast_1d(data.attrs.get("transitions", [])):
            ax.axvline(t, color="k", ls="--", lw=0.8)
    ax.set_xlabel(axis)
    ax.set_ylabel(variable)
    ax.legend(fontsize="small")
    return _save(fig, path)
