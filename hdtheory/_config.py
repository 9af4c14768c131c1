"""Sweeps described by a TOML file: ``hdtheory sweep CONFIG.toml --out DIR``.

A config names a fixed-point model (:data:`hdtheory.models.MODELS`), its fixed parameters, the axes
of the grid, the observables to keep and the figures to draw::

    model = "erm"
    observables = ["test_error", "train_loss"]   # optional; default: all of them
    product = true                               # optional; false zips equal-length axes

    [parameters]                                 # fixed; the others keep their defaults
    loss = "logistic"
    teacher = "sign"

    [axes]                                       # swept
    alpha = { linspace = [0.2, 4.0, 40] }        # start, stop, number of values
    lam = { logspace = [-3, 1, 30] }             # exponents of 10: 1e-3 .. 1e1
    # rho = [0.5, 1.0, 2.0]                      # or the values themselves

    [[plots]]
    kind = "heatmap"                             # variable over axes x and y
    variable = "test_error"
    x = "alpha"
    y = "lam"

    [[plots]]
    kind = "curves"                              # variable along x, one curve per other axis
    variable = "train_loss"
    x = "alpha"

Everything is checked before anything is computed; a bad entry raises :class:`ConfigError`, whose
one-line message names the file and the key (``axes.alpha``, ``plots[1].x``).
"""

import dataclasses
import re
import tomllib
from pathlib import Path

import numpy as np

from ._theory import FixedPointTheory, ParameterError, parameters

_TOP = {"model", "observables", "product", "parameters", "axes", "plots"}
_PLOTS = {"heatmap": {"kind", "variable", "x", "y", "file"}, "curves": {"kind", "variable", "x", "file"}}


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file and the offending key."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A checked config: the theory at its fixed parameters, the axes' values, what to keep and draw."""

    name: str
    model: str
    theory: FixedPointTheory
    axes: dict[str, np.ndarray]
    product: bool
    observables: tuple[str, ...]
    plots: tuple[dict, ...]
    text: str


def _fail(path: Path, key: str, message: str):
    raise ConfigError(f"{path}: {key}: {message}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def observable_names(theory) -> dict[str, tuple[int, ...]]:
    """The observables of a theory and their shapes, by tracing (nothing is solved or compiled)."""
    import jax

    if isinstance(theory, FixedPointTheory):
        shapes = jax.eval_shape(lambda th: th.observables(th.init()), theory)
    else:
        shapes = jax.eval_shape(lambda th: th.observables(0.0, th.init()), theory)
    return {k: v.shape for k, v in shapes.items()}


def _axis(path: Path, name: str, spec, fields) -> np.ndarray:
    key = f"axes.{name}"
    if name not in fields:
        _fail(path, key, f"unknown parameter; known: {', '.join(fields)}")
    if "domain" not in fields[name].metadata or fields[name].metadata.get("integer"):
        numeric = [k for k, f in fields.items() if "domain" in f.metadata and not f.metadata.get("integer")]
        _fail(path, key, f"cannot sweep {name!r}; the real parameters are {', '.join(numeric)}")
    if isinstance(spec, list):
        if not spec or not all(_number(v) for v in spec):
            _fail(path, key, "a list of values must hold at least one number, and only numbers")
        values = np.asarray(spec, dtype=float)
    elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in ("linspace", "logspace"):
        (kind, args), = spec.items()
        if not (isinstance(args, list) and len(args) == 3 and all(_number(a) for a in args)
                and isinstance(args[2], int) and args[2] >= 1):
            _fail(path, f"{key}.{kind}", "expected [start, stop, number of values >= 1]")
        values = getattr(np, kind)(float(args[0]), float(args[1]), int(args[2]))
    else:
        _fail(path, key, "expected a list of values, { linspace = [start, stop, num] } or "
                         "{ logspace = [start exponent, stop exponent, num] }")
    domain = fields[name].metadata["domain"]
    outside = ~domain.contains(values)
    if outside.any() or not np.all(np.isfinite(values)):
        bad = values[outside][0] if outside.any() else values[~np.isfinite(values)][0]
        _fail(path, key, f"values must lie in {domain}, got {bad:g}")
    return values


def _fixed(path: Path, model_name: str, table, fields) -> dict:
    kwargs = {}
    for name, value in table.items():
        key = f"parameters.{name}"
        if name not in fields:
            _fail(path, key, f"unknown parameter of {model_name}; known: {', '.join(fields)}")
        meta = fields[name].metadata
        if "options" in meta:
            if not isinstance(value, str):
                _fail(path, key, f"expected one of {', '.join(meta['options'])} (a string)")
        elif meta.get("integer"):
            if not isinstance(value, int) or isinstance(value, bool):
                _fail(path, key, f"expected an integer in {meta['domain']}")
        elif not (_number(value) or (isinstance(value, list) and all(_number(v) for v in value))):
            _fail(path, key, f"expected a number in {meta['domain']}")
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return kwargs


def load(path: str | Path) -> SweepConfig:
    """Read and check a config; raises :class:`ConfigError` naming the bad key."""
    from .dynamics import DYNAMICS
    from .models import MODELS

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        where = re.search(r"at line (\d+)", str(error))
        line = text.splitlines()[int(where.group(1)) - 1].strip() if where else ""
        raise ConfigError(f"{path}: malformed TOML: {error}" + (f": {line!r}" if line else "")) from None

    for key in config:
        if key not in _TOP:
            _fail(path, key, f"unknown key; the keys are {', '.join(sorted(_TOP))}")
    model_name = config.get("model")
    if not isinstance(model_name, str):
        _fail(path, "model", f"missing or not a string; one of {', '.join(MODELS)}")
    if model_name in DYNAMICS:
        _fail(path, "model", f"{model_name!r} is an ODE theory ('hdtheory eval {model_name} t=...'); "
                             f"sweep takes the fixed-point models {', '.join(MODELS)}")
    if model_name not in MODELS:
        _fail(path, "model", f"unknown model {model_name!r}; the fixed-point models are {', '.join(MODELS)}")
    model = MODELS[model_name]
    fields = parameters(model)

    table = config.get("parameters", {})
    if not isinstance(table, dict):
        _fail(path, "parameters", "expected a table [parameters]")
    kwargs = _fixed(path, model_name, table, fields)

    axes_table = config.get("axes")
    if not isinstance(axes_table, dict) or not axes_table:
        _fail(path, "axes", "expected a table [axes] with at least one axis")
    axes = {}
    for name, spec in axes_table.items():
        if name in kwargs:
            _fail(path, f"axes.{name}", "also fixed in [parameters]")
        axes[name] = _axis(path, name, spec, fields)

    product = config.get("product", True)
    if not isinstance(product, bool):
        _fail(path, "product", "expected true or false")
    if not product and len({len(v) for v in axes.values()}) > 1:
        _fail(path, "product", f"false zips the axes, which need equal lengths; got "
                               f"{ {k: len(v) for k, v in axes.items()} }")

    try:
        theory = model(**kwargs)
        # Every value of every axis, with the fixed parameters: the cross-parameter checks.
        from ._sweep import _check_axes

        _check_axes(theory, axes)
    except ParameterError as error:
        name = re.search(r"parameter '(\w+)'", str(error))
        name = name.group(1) if name else None
        _fail(path, f"axes.{name}" if name in axes else f"parameters.{name}" if name else "parameters",
              str(error))

    known = observable_names(theory)
    observables = config.get("observables", list(known))
    if not isinstance(observables, list) or not all(isinstance(o, str) for o in observables):
        _fail(path, "observables", "expected a list of names")
    for name in observables:
        if name not in known:
            _fail(path, "observables", f"unknown observable {name!r} of {model_name}; known: {', '.join(known)}")

    plots = config.get("plots", [])
    if not isinstance(plots, list) or not all(isinstance(p, dict) for p in plots):
        _fail(path, "plots", "expected an array of tables [[plots]]")
    for i, plot in enumerate(plots):
        key = f"plots[{i}]"
        kind = plot.get("kind")
        if kind not in _PLOTS:
            _fail(path, f"{key}.kind", f"expected one of {', '.join(_PLOTS)}, got {kind!r}")
        for entry in plot:
            if entry not in _PLOTS[kind]:
                _fail(path, f"{key}.{entry}", f"unknown key for a {kind}; the keys are {', '.join(sorted(_PLOTS[kind]))}")
        for entry in _PLOTS[kind] - {"kind", "file"}:
            if entry not in plot:
                _fail(path, f"{key}.{entry}", "missing")
        if plot["variable"] not in observables:
            _fail(path, f"{key}.variable", f"{plot['variable']!r} is not among the observables: {', '.join(observables)}")
        for entry in ("x", "y"):
            if entry in plot and (plot[entry] not in axes or (not product and kind == "heatmap")):
                why = "a heatmap needs product = true" if not product else f"the axes are {', '.join(axes)}"
                _fail(path, f"{key}.{entry}", f"{plot[entry]!r} is not a dimension of the grid; {why}")
        if kind == "heatmap" and (plot["x"] == plot["y"] or len(axes) != 2):
            _fail(path, key, "a heatmap needs exactly two axes, x and y different")
        if "file" in plot and not (isinstance(plot["file"], str) and Path(plot["file"]).suffix in (".png", ".pdf")
                                   and Path(plot["file"]).name == plot["file"]):
            _fail(path, f"{key}.file", "expected a file name ending in .png or .pdf")
    return SweepConfig(path.stem, model_name, theory, axes, product, tuple(observables), tuple(plots), text)


def run(config: SweepConfig, out: Path, *, progress: bool = True) -> dict[str, Path]:
    """Sweep, then write ``NAME.nc``, ``NAME.csv`` and the figures into ``out``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot
    from ._sweep import sweep

    data = sweep(config.theory, config.axes, product=config.product, progress=progress)
    diagnostics = ["converged", "iterations", "residual", "status"]
    data = data[[*config.observables, *[d for d in diagnostics if d in data]]]
    data.attrs["model"] = config.model
    data.attrs["config"] = config.text
    out.mkdir(parents=True, exist_ok=True)
    paths = {"netcdf": out / f"{config.name}.nc", "csv": out / f"{config.name}.csv"}
    data.to_netcdf(paths["netcdf"])
    data.to_dataframe().to_csv(paths["csv"])
    for i, spec in enumerate(config.plots):
        name = spec.get("file") or "_".join(
            [config.name, spec["variable"], spec["x"]] + ([spec["y"]] if "y" in spec else [])
        ) + ".png"
        if spec["kind"] == "heatmap":
            fig = plot.heatmap(data, spec["variable"], spec["x"], spec["y"], path=out / name)
        else:  # zipped axes: the curve runs along the points, labelled by x
            along = data if config.product else data.swap_dims(point=spec["x"])
            fig = plot.curves(along, spec["variable"], spec["x"], path=out / name)
        plt.close(fig)
        paths[f"plot{i}"] = out / name
    return paths
