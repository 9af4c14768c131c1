"""Sweeps described by a TOML file: ``hdtheory sweep CONFIG.toml --out DIR``.

A config names a model (a fixed-point one of :data:`hdtheory.models.MODELS`, or an ODE theory of
:data:`hdtheory.dynamics.DYNAMICS`), its fixed parameters, the axes of the grid, the observables to
keep and the figures to draw::

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

An ODE theory's learning curves are integrated at every grid point to the final time ``t1``
(required), saved at ``times`` (optional: a number of evenly spaced times from 0 to ``t1``, 101 by
default, or the increasing times themselves); the grid gains the dimension ``t``, which a figure
may take as ``x`` or ``y``::

    model = "committee"
    t1 = 50.0
    times = 51

    [parameters]
    K = 2
    M = 2

    [axes]
    lr = [0.5, 1.0, 2.0]

    [[plots]]
    kind = "curves"
    variable = "eg"
    x = "t"

Everything is checked before anything is computed; a bad entry raises :class:`ConfigError`, whose
one-line message names the file and the key (``axes.alpha``, ``plots[1].x``), and so does a grid too
large for the memory.

Output (:func:`run`, and the demo): the folder is checked and created before anything is computed
(:func:`prepare_output`, raising :class:`OutputError`); a folder that already holds files is written
into only with ``overwrite``, which replaces the files of the same names and leaves the others. The
files are written into a hidden folder inside it and moved into place only once every one of them
is written (:func:`staged`), so that a failure or an interrupt leaves the folder as it was.
"""

import contextlib
import dataclasses
import math
import os
import re
import shutil
import tempfile
import threading
import tomllib
from pathlib import Path

import numpy as np

from ._theory import FixedPointTheory, ODETheory, ParameterError, parameters

_TOP = {"model", "observables", "product", "parameters", "axes", "plots", "t1", "times"}
_PLOTS = {"heatmap": {"kind", "variable", "x", "y", "file"}, "curves": {"kind", "variable", "x", "file"}}


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file and the offending key."""


class OutputError(ValueError):
    """An output folder that cannot be written, or that holds files and may not be written into."""


def available_memory() -> int:
    """Bytes of host memory available now (``MemAvailable``; the physical memory where unknown)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_text(size: float) -> str:
    """``size`` bytes for a message: ``18.4 GB``, ``3.2 PB``."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g} {unit}"
        size /= 1000


def device_memory() -> int:
    """Bytes free where the computation runs: the accelerator's memory, or the host's."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return available_memory()


def _largest_array(theory) -> int:
    """Bytes of the largest array in one step of a theory's map (its update, or its vector field),
    by tracing: nothing is allocated or compiled."""
    import jax

    if isinstance(theory, FixedPointTheory):
        jaxpr = jax.make_jaxpr(lambda th: th.update(th.init()))(theory)
    else:
        jaxpr = jax.make_jaxpr(lambda th: th.vector_field(0.0, th.init()))(theory)
    largest, stack = 0, [jaxpr.jaxpr]
    while stack:
        for eqn in stack.pop().eqns:
            for var in eqn.outvars:
                if hasattr(var.aval, "shape"):
                    largest = max(largest, math.prod(var.aval.shape) * var.aval.dtype.itemsize)
            for param in eqn.params.values():  # the bodies of loops, conditionals, calls
                for sub in param if isinstance(param, (list, tuple)) else [param]:
                    sub = getattr(sub, "jaxpr", sub)
                    if hasattr(sub, "eqns"):
                        stack.append(sub)
    return largest


_TRACED = 32
"""Integer sizes up to this are traced as they are; larger ones are extrapolated from 16 and 32."""


def check_memory(model, kwargs: dict) -> None:
    """Refuse the theory ``model(**kwargs)`` before it is built (building one allocates its initial
    state) when its integer sizes (hidden units, clusters) need more memory than is free.

    For sizes above ``_TRACED``, one step's largest array is measured by tracing at 16 and extrapolated
    as a power law in each size fitted between 16 and 32 (the memory of these maps is a polynomial
    in their sizes). The estimate, twice the largest array, is a lower bound of what a run needs.
    """
    integers = [k for k, f in parameters(model).items() if f.metadata.get("integer")]
    sizes = {k: kwargs[k] for k in integers if k in kwargs}
    large = {k: v for k, v in sizes.items() if v > _TRACED}
    if not large:  # small sizes: nothing near the memory of a machine
        return
    base = kwargs | {k: _TRACED // 2 for k in large}
    try:
        bytes_, factors = _largest_array(model(**base)), {}
        doubled = {name: _largest_array(model(**(base | {name: _TRACED}))) for name in large}
    except ParameterError:  # the sizes are tied to each other: the real theory's checks will speak
        return
    for name, value in large.items():
        exponent = max(math.log2(max(doubled[name], 1) / max(bytes_, 1)), 0.0)
        factors[name] = (value / (_TRACED // 2)) ** exponent
    need = 2 * bytes_ * math.prod(factors.values())
    free = device_memory()
    if need > free:
        name = max(factors, key=factors.get)
        raise ParameterError(f"parameter {name!r} = {sizes[name]} needs at least {memory_text(need)} of "
                             f"memory, more than the {memory_text(free)} available; use a smaller value")


_BYTES_PER_NUMBER = 32
"""Memory per number of the result: the dataset, its table, the CSV text, with room to spare."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A checked config: the theory at its fixed parameters, the axes' values, what to keep and draw."""

    name: str
    model: str
    theory: FixedPointTheory | ODETheory
    axes: dict[str, np.ndarray]
    product: bool
    observables: tuple[str, ...]
    plots: tuple[dict, ...]
    text: str
    plot_files: tuple[str, ...] = ()
    t1: float | None = None
    """An ODE theory's final time (``None`` for a fixed-point model)."""
    times: np.ndarray | None = None
    """An ODE theory's saved times."""


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
        if args[2] * _BYTES_PER_NUMBER > available_memory():
            _fail(path, f"{key}.{kind}", f"{args[2]} values need more than the "
                                         f"{memory_text(available_memory())} of memory available")
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
        else:
            array = np.ndim(fields[name].default) > 0
            if isinstance(value, list) and not array:
                _fail(path, key, f"expected one number in {meta['domain']}, got a list (a grid of values "
                                 "goes in [axes])")
            values = value if isinstance(value, list) else [value]
            if array and values and any(isinstance(row, list) for row in values):
                # A matrix or a stack of them (the mixture's per-cluster spectra and covariances):
                # rows of one length.
                shape, values = _nested(values)
                if shape is None:
                    _fail(path, key, "expected nested lists of numbers with rows of one length")
            else:
                shape = (len(values),)
            if not values or not all(_number(v) for v in values):
                _fail(path, key, f"expected {'a list of numbers' if array else 'a number'} in {meta['domain']}")
            # inf and nan only where the default is that value (features = inf: the kernel limit).
            for v in values:
                if not math.isfinite(v) and v != fields[name].default:
                    _fail(path, key, f"expected a finite number in {meta['domain']}, got {v}")
            value = np.reshape(values, shape) if array else value
        kwargs[name] = value
    return kwargs


def _nested(values: list) -> tuple[tuple[int, ...] | None, list]:
    """The shape and the entries, in row-major order, of nested lists with rows of one length
    (``None`` for ragged ones)."""
    if not all(isinstance(row, list) for row in values):
        return (None if any(isinstance(row, list) for row in values) else (len(values),)), values
    rows = [_nested(row) for row in values]
    shapes = {shape for shape, _ in rows}
    if len(shapes) != 1 or None in shapes:
        return None, []
    return (len(values),) + shapes.pop(), [v for _, entries in rows for v in entries]


def load(path: str | Path) -> SweepConfig:
    """Read and check a config; raises :class:`ConfigError` naming the bad key."""
    from .dynamics import DYNAMICS
    from .models import MODELS

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{error.object[error.start]:02x} on line {line}; "
                          "TOML files are UTF-8") from None
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
    known_models = ", ".join([*MODELS, *DYNAMICS])
    if not isinstance(model_name, str):
        _fail(path, "model", f"missing or not a string; one of {known_models}")
    if model_name not in MODELS and model_name not in DYNAMICS:
        _fail(path, "model", f"unknown model {model_name!r}; the models are {known_models}")
    model = MODELS.get(model_name) or DYNAMICS[model_name]
    fields = parameters(model)
    t1, times = _times(path, config, dynamic=model_name in DYNAMICS)

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
        check_memory(model, kwargs)
        theory = model(**kwargs)
    except ParameterError as error:
        _fail_parameter(path, axes, error)

    known = observable_names(theory)
    observables = config.get("observables", list(known))
    if not isinstance(observables, list) or not all(isinstance(o, str) for o in observables):
        _fail(path, "observables", "expected a list of names")
    for name in observables:
        if name not in known:
            _fail(path, "observables", f"unknown observable {name!r} of {model_name}; known: {', '.join(known)}")

    points = math.prod(len(v) for v in axes.values()) if product else len(next(iter(axes.values())))
    numbers = sum(math.prod(known[name]) for name in observables) * (1 if times is None else len(times))
    numbers += 4 + len(axes)  # the diagnostics
    if points * numbers * _BYTES_PER_NUMBER > available_memory():
        largest = max(axes, key=lambda k: len(axes[k]))
        _fail(path, f"axes.{largest}", f"a grid of {points} points needs about "
                                       f"{memory_text(points * numbers * _BYTES_PER_NUMBER)} of memory, more than "
                                       f"the {memory_text(available_memory())} available; use fewer values")
    try:
        # Every point of the grid (which fits in memory), with the fixed parameters: the checks
        # across parameters.
        from ._sweep import _check_axes

        _check_axes(theory, axes, product)
    except ParameterError as error:
        _fail_parameter(path, axes, error)

    plots = config.get("plots", [])
    if not isinstance(plots, list) or not all(isinstance(p, dict) for p in plots):
        _fail(path, "plots", "expected an array of tables [[plots]]")
    for i, plot in enumerate(plots):
        key = f"plots[{i}]"
        kind = plot.get("kind")
        if not isinstance(kind, str) or kind not in _PLOTS:
            _fail(path, f"{key}.kind", f"expected one of {', '.join(_PLOTS)}, got {kind!r}")
        for entry in plot:
            if entry not in _PLOTS[kind]:
                _fail(path, f"{key}.{entry}", f"unknown key for a {kind}; the keys are {', '.join(sorted(_PLOTS[kind]))}")
        for entry in sorted(_PLOTS[kind] - {"kind", "file"}):
            if entry not in plot:
                _fail(path, f"{key}.{entry}", "missing")
            if not isinstance(plot[entry], str):
                _fail(path, f"{key}.{entry}", f"expected a name (a string), got {plot[entry]!r}")
        if plot["variable"] not in observables:
            _fail(path, f"{key}.variable", f"{plot['variable']!r} is not among the observables: {', '.join(observables)}")
        dims = [*axes, *([] if times is None else ["t"])]
        for entry in ("x", "y"):
            if entry in plot and (plot[entry] not in dims or (not product and kind == "heatmap")):
                why = "a heatmap needs product = true" if not product else f"the dimensions are {', '.join(dims)}"
                _fail(path, f"{key}.{entry}", f"{plot[entry]!r} is not a dimension of the grid; {why}")
        if kind == "heatmap" and (plot["x"] == plot["y"] or len(dims) != 2):
            _fail(path, key, "a heatmap needs a grid of exactly two dimensions, x and y different")
        if "file" in plot and not (isinstance(plot["file"], str) and Path(plot["file"]).suffix in (".png", ".pdf")
                                   and Path(plot["file"]).name == plot["file"]):
            _fail(path, f"{key}.file", "expected a file name ending in .png or .pdf")
    files = [_plot_file(path.stem, plot) for plot in plots]
    for i, name in enumerate(files):
        if name in files[:i]:
            _fail(path, f"plots[{i}].file", f"{name!r} is also the file of plots[{files.index(name)}]; "
                                            "each figure needs its own file")
    return SweepConfig(path.stem, model_name, theory, axes, product, tuple(observables), tuple(plots), text,
                       tuple(files), t1, times)


def _fail_parameter(path: Path, axes: dict, error: ParameterError):
    """A theory's own check, failed: the key of the parameter it names, an axis or a fixed one."""
    name = re.search(r"parameter '(\w+)'", str(error))
    name = name.group(1) if name else None
    _fail(path, f"axes.{name}" if name in axes else f"parameters.{name}" if name else "parameters", str(error))


def _times(path: Path, config: dict, dynamic: bool) -> tuple[float | None, np.ndarray | None]:
    """``(t1, times)`` of an ODE theory's config (``times``: a count from 0 to ``t1``, 101 by
    default, or the times); ``(None, None)`` for a fixed-point model, which may have neither."""
    if not dynamic:
        for key in ("t1", "times"):
            if key in config:
                _fail(path, key, f"only for the ODE theories; {config['model']!r} is a fixed-point model")
        return None, None
    t1 = config.get("t1")
    if not (_number(t1) and math.isfinite(t1) and t1 > 0):
        _fail(path, "t1", f"the final time of the learning curves is required, a number > 0; got {t1!r}")
    spec = config.get("times", 101)
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 2 <= spec <= 100_000:
            _fail(path, "times", f"a number of saved times must lie in [2, 100000], got {spec}")
        return float(t1), np.linspace(0.0, float(t1), spec)
    if not (isinstance(spec, list) and spec and all(_number(v) for v in spec)):
        _fail(path, "times", f"expected a number of times or a list of times in [0, t1]; got {spec!r}")
    times = np.asarray(spec, dtype=float)
    if np.any(times < 0) or np.any(times > t1) or np.any(np.diff(times) <= 0):
        _fail(path, "times", f"the times must increase within [0, t1 = {t1:g}]; got {spec}")
    return float(t1), times


def _plot_file(name: str, spec: dict) -> str:
    """A figure's file name: ``file``, or ``NAME_VARIABLE_X[_Y].png``."""
    return spec.get("file") or "_".join(
        [name, spec["variable"], spec["x"]] + ([spec["y"]] if "y" in spec else [])
    ) + ".png"


def prepare_output(out: Path, overwrite: bool = False) -> bool:
    """Check that ``out`` can be written, and create it; returns whether it was created.

    Raises :class:`OutputError` (one line naming the path) for an empty path, a file, a path under
    a file, a folder that cannot be created or written, and a folder that already holds files unless
    ``overwrite``.
    """
    if str(out) == "":
        raise OutputError("--out: an empty path; name a folder")
    try:
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out}: exists and is not a folder")
        ancestor = out
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise OutputError(f"--out {out}: {ancestor} is a file, not a folder")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise OutputError(f"--out {out}: the folder is not empty; --overwrite writes into it "
                              "(replacing files of the same names)")
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise OutputError(f"--out {out}: cannot write there: {error.strerror or error}") from None
    return created


INTERRUPTED = threading.Event()
"""Set by the command line's SIGINT handler. Python drops a ``KeyboardInterrupt`` raised inside a
garbage-collector callback (jax installs one), so :func:`staged` also checks this before it writes."""


@contextlib.contextmanager
def staged(out: Path, created: bool = False):
    """A hidden folder inside ``out`` to write into: when the block ends normally its files are moved
    into ``out`` (replacing files of the same names); when it raises (an interrupt included) the
    folder is removed, and so is ``out`` if this run ``created`` it and it is empty."""
    stage = None
    try:
        stage = Path(tempfile.mkdtemp(prefix=".hdtheory-partial-", dir=out))
        yield stage
        if INTERRUPTED.is_set():  # an interrupt that a callback swallowed still cancels the write
            raise KeyboardInterrupt
        files = sorted(stage.iterdir())
        for file in files:
            if (out / file.name).is_dir():
                raise OutputError(f"--out {out}: {file.name} is a folder; it cannot be replaced by a file")
        for file in files:
            os.replace(file, out / file.name)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            if created and not any(out.iterdir()):
                out.rmdir()


def run(config: SweepConfig, out: Path, *, progress: bool = True, overwrite: bool = False) -> dict[str, Path]:
    """Sweep, then write ``NAME.nc``, ``NAME.csv`` and the figures into ``out``; returns the paths.

    ``out`` is checked before anything is computed (:func:`prepare_output`); the files appear in it
    together, once all are written (:func:`staged`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot
    from ._sweep import sweep

    created = prepare_output(out, overwrite)
    with staged(out, created) as stage:
        dynamic = {} if config.t1 is None else {"t1": config.t1, "saveat": config.times}
        data = sweep(config.theory, config.axes, product=config.product, progress=progress, **dynamic)
        diagnostics = ["converged", "iterations", "residual", "status", "t_stop", "steps"]
        data = data[[*config.observables, *[d for d in diagnostics if d in data]]]
        data.attrs["model"] = config.model
        data.attrs["config"] = config.text
        names = {"netcdf": f"{config.name}.nc", "csv": f"{config.name}.csv"}
        data.to_netcdf(stage / names["netcdf"])
        data.to_dataframe().to_csv(stage / names["csv"])
        for i, (spec, name) in enumerate(zip(config.plots, config.plot_files)):
            if spec["kind"] == "heatmap":
                fig = plot.heatmap(data, spec["variable"], spec["x"], spec["y"], path=stage / name)
            else:  # zipped axes: the curve runs along the points, labelled by x (or along t)
                along = data if config.product or spec["x"] == "t" else data.swap_dims(point=spec["x"])
                fig = plot.curves(along, spec["variable"], spec["x"], path=stage / name)
            plt.close(fig)
            names[f"plot{i}"] = name
    return {key: out / name for key, name in names.items()}
