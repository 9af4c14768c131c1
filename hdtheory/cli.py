"""The ``hdtheory`` command: list, eval, sweep, tune, simulate, demo.

``eval`` solves a fixed-point model (:data:`hdtheory.models.MODELS`) or integrates an ODE theory
(:data:`hdtheory.dynamics.DYNAMICS`) to the times ``t=...``; ``sweep`` runs a grid described by a TOML
file (:mod:`hdtheory._config`); ``tune`` minimises an observable over some parameters
(:func:`hdtheory.tune`); ``simulate`` runs the finite-size counterpart (:func:`hdtheory.simulate.simulate`);
``demo`` writes the figures of the quick start. The commands are generic over the two registries:
a model added to either appears everywhere.

Every command takes ``--json`` (machine-readable output on stdout), ``--precision float32|float64``
(default float64) and ``--device cpu|gpu`` (default: jax's, a GPU when one is installed). Errors in
the input are one line on stderr and exit status 2: a bad parameter, key, value, option, file or
output folder, and a size whose memory estimate exceeds what is available (refused before
anything is allocated). A solve that does not converge is reported (``converged``, ``status``) with
exit status 0, since it is a result, not an error. An interrupt (Ctrl-C) is one line and exit status
130; any other failure is one line and exit status 1 (``HDTHEORY_DEBUG=1`` shows the traceback).
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

from ._compilation import faster_compilation


def _models():
    from .dynamics import DYNAMICS
    from .models import MODELS

    return MODELS | DYNAMICS


def _model(name: str):
    """The class registered as ``name``, or None; the ODE theories (whose module takes a tenth of a
    second to import) are imported only for a name that is not a fixed-point model."""
    from .models import MODELS

    return MODELS[name] if name in MODELS else _models().get(name)


def _parameter_table(model) -> list[dict]:
    from ._theory import parameters

    rows = []
    for name, field in parameters(model).items():
        meta = field.metadata
        allowed = ", ".join(meta["options"]) if "options" in meta else str(meta["domain"])
        rows.append({"name": name, "default": field.default, "allowed": allowed, "doc": meta["doc"]})
    return rows


def _strict(value):
    """``value`` for strict JSON: an infinite or NaN number as its text (``"inf"``, as typed on the
    command line), tuples as lists."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _cmd_list(args) -> int:
    table = {name: _parameter_table(model) for name, model in _models().items()}
    if args.json:
        print(json.dumps(_strict(table), indent=2, allow_nan=False, default=str))
        return 0
    for name, rows in table.items():
        print(f"{name}: {_models()[name].__doc__.splitlines()[0]}")
        for row in rows:
            print(f"  {row['name']:<8} default {row['default']!s:<9} in {row['allowed']:<24} {row['doc']}")
    return 0


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


def build_theory(model_name: str, assignments: list[str]):
    """A theory from ``key=value`` strings, with every key and value checked."""
    from ._theory import parameters

    model = _model(model_name)
    if model is None:
        raise UsageError(f"unknown model {model_name!r}; choose one of {', '.join(_models())}")
    fields = parameters(model)
    kwargs = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"expected key=value, got {item!r}")
        if key not in fields:
            raise UsageError(f"unknown parameter {key!r} for {model_name}; known: {', '.join(fields)}")
        if "options" in fields[key].metadata:
            kwargs[key] = value
        elif fields[key].metadata.get("integer"):
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise UsageError(f"parameter {key!r} must be an integer, got {value!r}") from None
        else:
            kwargs[key] = _value(key, fields[key], value)
    from ._config import check_memory

    check_memory(model, kwargs)
    return model(**kwargs)


def _value(key: str, field, value: str):
    """A number for a scalar parameter, a tuple for an array parameter (its default is a tuple).

    ``inf`` and ``nan`` are accepted only where the default is that value (``features=inf``: the
    kernel limit), and ``inf`` where the domain holds it (``M=inf``: an infinite ensemble)."""
    import numpy as np

    domain = field.metadata["domain"]
    array = np.ndim(field.default) > 0 or field.metadata.get("vector", False)
    if array and value.lstrip().startswith("["):  # a matrix, as nested lists: K=2 gram=[[1,0],[0,1]]
        try:
            matrix = np.asarray(json.loads(value), float)
        except (ValueError, TypeError):
            raise UsageError(f"parameter {key!r} must be a rectangular array of numbers written as nested "
                             f"lists, such as [[1,0.5],[0.5,1]], got {value!r}") from None
        if not np.all(np.isfinite(matrix)):
            raise UsageError(f"parameter {key!r} must hold finite numbers in {domain}, got {value!r}")
        return matrix
    numbers = _numbers(key, value)
    if len(numbers) > 1 and not array:
        raise UsageError(f"parameter {key!r} takes one number in {domain}, got {value!r} "
                         "(a grid of values: hdtheory sweep)")
    for number in numbers:
        if not math.isfinite(number) and number != field.default and not (domain.infinite and math.isinf(number)):
            raise UsageError(f"parameter {key!r} must be a finite number in {domain}, got {value!r}")
    return numbers if np.ndim(field.default) > 0 or len(numbers) > 1 else numbers[0]


def _numbers(key: str, value: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (one number: a 1-tuple)."""
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise UsageError(f"parameter {key!r} must be a number, got {value!r}") from None


def _trajectory_record(theory, times: list[float]) -> dict:
    """Integrate an ODE theory to ``times`` (one time, or several: a curve)."""
    import jax

    from ._integrate import ODEStatus, integrate

    ts = jax.numpy.asarray(times)
    trajectory = integrate(theory, times[-1], saveat=ts)
    curve = ts.size > 1
    record = {"t": ts.tolist() if curve else float(ts[0])}
    for name, values in trajectory.observables.items():
        values = jax.numpy.asarray(values)
        record[name] = values.tolist() if curve else values[0].tolist()
    record |= {
        "success": bool(trajectory.success),
        "status": ODEStatus(int(trajectory.status)).name.lower(),
        "t_stop": float(trajectory.t_stop),
        "steps": int(trajectory.steps),
    }
    return record


def _solution_record(solution) -> dict:
    from ._fixed_point import Status

    # A vector observable (one value per direction) is a list.
    record = {k: v.tolist() if v.ndim else float(v) for k, v in solution.observables.items()}
    record |= {
        "converged": bool(solution.converged),
        "iterations": int(solution.iterations),
        "residual": float(solution.residual),
        "status": Status(int(solution.status)).name.lower(),
    }
    return record


def _cmd_eval(args) -> int:
    from ._fixed_point import solve

    is_ode = _is_ode(args.model)
    params, taken = _take(args.params, {"t"} if is_ode else set())
    theory = build_theory(args.model, params)
    if is_ode:
        record = _trajectory_record(theory, _times(taken.get("t", "100")))
    else:
        record = _solution_record(solve(theory))
    _print(args, record)
    return 0


def _cmd_demo(args) -> int:
    from . import demo

    paths = demo.run(_out_path(args.out), quick=args.quick, progress=True, overwrite=args.overwrite)
    _print(args, {k: str(v) for k, v in paths.items()})
    return 0


def _finite(value):
    """``value`` with NaN and infinities as None: strict JSON has no such numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _print(args, record: dict) -> None:
    """``record`` as JSON (NaN as null), or one ``key  value`` line per entry."""
    if args.json:
        print(json.dumps(_finite(record), indent=2, allow_nan=False))
        return
    width = max(map(len, record), default=0)
    for key, value in record.items():
        shown = value if isinstance(value, str) else f"{value:.10g}" if isinstance(value, float) else json.dumps(value)
        print(f"{key:<{width}}  {shown}")


def _is_ode(model_name: str) -> bool:
    from ._theory import ODETheory

    model = _model(model_name)
    return isinstance(model, type) and issubclass(model, ODETheory)


def _take(assignments: list[str], keys: set[str]) -> tuple[list[str], dict[str, str]]:
    """Split off the ``key=value`` items whose key is in ``keys`` (options, not model parameters)."""
    rest, taken = [], {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if sep and key in keys:
            taken[key] = value
        else:
            rest.append(item)
    return rest, taken


def _count(key: str, value: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(f"{key!r} must be an integer >= 1, got {value!r}")
    return number


def _times(value: str) -> list[float]:
    """``t=T1,T2,...``: finite times >= 0, increasing."""
    times = list(_numbers("t", value))
    if not all(0 <= t < math.inf for t in times):
        raise UsageError(f"parameter 't' must be finite times >= 0, got {value!r}")
    if any(b <= a for a, b in zip(times, times[1:])):
        raise UsageError(f"parameter 't' must be increasing times, got {value!r}")
    return times


def _out_path(text: str) -> Path:
    if not text.strip():
        raise UsageError("--out: an empty path; name a folder")
    return Path(text)


def _check_simulation_memory(theory, d: int) -> None:
    """Refuse a simulation whose data need more memory than is free, naming ``d``.

    A simulation of a fixed-point theory holds matrices whose sides are among ``d``, the number of
    samples ``n = alpha d``, of features ``p = gamma d``, the sizes ``n`` and ``features`` where a
    model takes them directly, and a test set of 10 000 samples; its estimate is twice the largest
    product of two sides. An online simulation (an ODE theory) holds ``d``-vectors, one per hidden
    unit or sample of a batch: ``d`` times the largest integer size.
    """
    from ._config import device_memory, memory_text
    from ._theory import ODETheory, parameters

    fields = parameters(type(theory))
    if isinstance(theory, ODETheory):
        units = [getattr(theory, k) for k, f in fields.items() if f.metadata.get("integer") and k != "seed"]
        sides = [d, max(units, default=1)]
    else:
        sides = [d, 10_000]
        sides += [float(getattr(theory, k)) * d for k in ("alpha", "gamma") if k in fields]
        sides += [float(getattr(theory, k)) for k in ("n", "features") if k in fields]
        sides = sorted((s for s in sides if math.isfinite(s)), reverse=True)
    need = 2 * 8 * sides[0] * sides[1]
    free = device_memory()
    if need > free:
        raise UsageError(f"parameter 'd' = {d} needs at least {memory_text(need)} of memory for one "
                         f"instance, more than the {memory_text(free)} available; use a smaller d")


def _listed(value):
    """A number or a (nested) list of numbers from a scalar or an array."""
    import numpy as np

    return np.asarray(value).tolist()


def _cmd_sweep(args) -> int:
    from . import _config

    try:
        config = _config.load(args.config)
    except _config.ConfigError as error:
        raise UsageError(str(error)) from None
    out = _out_path(config.name if args.out is None else args.out)
    paths = _config.run(config, out, progress=not args.json, overwrite=args.overwrite)
    _print(args, {k: str(v) for k, v in paths.items()})
    return 0


def _over(spec: str) -> tuple[str, object]:
    """``name:transform`` or ``name:transform:low:high``."""
    from ._tune import TRANSFORMS

    parts = spec.split(":")
    if len(parts) not in (2, 4) or parts[1] not in TRANSFORMS:
        raise UsageError(f"--over {spec!r}: expected name:transform[:low:high] with transform one of "
                         f"{', '.join(TRANSFORMS)}")
    if len(parts) == 2:
        return parts[0], parts[1]
    try:
        low, high = float(parts[2]), float(parts[3])
    except ValueError:
        raise UsageError(f"--over {spec!r}: the bounds must be numbers") from None
    return parts[0], TRANSFORMS[parts[1]](low=low, high=high)


def _cmd_tune(args) -> int:
    from ._fixed_point import Status
    from ._tune import tune

    ode = _is_ode(args.model)
    params, taken = _take(args.params, {"t"} if ode else set())
    theory = build_theory(args.model, params)
    # tune checks that the objective is a scalar observable while it traces the search, before
    # anything compiles (a separate check would trace the observables once more).
    options = {"t1": _times(taken.get("t", "100"))[-1]} if ode else {}
    over = dict(_over(spec) for spec in args.over)
    result = tune(theory, args.objective, over, max_iterations=args.max_iterations, **options)
    record = {
        "model": args.model,
        "objective": args.objective,
        "params": {k: _listed(v) for k, v in result.params.items()},
        "value": float(result.objective),
        "at_boundary": {k: _listed(v) for k, v in result.at_boundary.items()},
        "limit_value": float(result.limit_objective),
        "converged": bool(result.converged),
        "iterations": int(result.iterations),
        "evaluations": int(result.evaluations),
        "grad_norm": float(result.grad_norm),
    }
    if not ode:
        record["status"] = Status(int(result.solution.status)).name.lower()
        record["observables"] = {k: _listed(v) for k, v in result.solution.observables.items()}
    _print(args, record)
    return 0


def _cmd_simulate(args) -> int:
    import jax

    from .simulate import simulate

    ode = _is_ode(args.model)
    params, taken = _take(args.params, {"d", "seeds"} | ({"t"} if ode else set()))
    theory = build_theory(args.model, params)
    d, seeds = _count("d", taken.get("d"), 1000), _count("seeds", taken.get("seeds"), 4)
    options = {"times": _times(taken["t"])} if "t" in taken else {}
    if simulate.dispatch(type(theory)) is simulate.dispatch(object):
        raise UsageError(f"no simulation is registered for {args.model}")
    _check_simulation_memory(theory, d)
    if getattr(theory, "modes", False) is None:
        # A spectrum summed to infinity (krr) is simulated as a finite kernel of d modes.
        theory = dataclasses.replace(theory, modes=d)
    result = simulate(theory, d=d, seeds=seeds, key=jax.random.PRNGKey(args.seed), **options)
    record = {"model": args.model, "d": result.d, "n": result.n, "seeds": result.seeds,
              "mean": {k: _listed(v) for k, v in result.mean.items()},
              "sem": {k: _listed(v) for k, v in result.sem.items()}}
    _print(args, record)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return number


def _common() -> argparse.ArgumentParser:
    """The options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("--precision", choices=("float32", "float64"), default="float64",
                   help="floating-point precision (default: float64)")
    p.add_argument("--device", choices=("cpu", "gpu"), default=None,
                   help="where to compute (default: a GPU when jax has one, else the CPU)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the compilation cache (see hdtheory.enable_cache)")
    return p


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hdtheory",
        description="Exact high-dimensional learning curves as differentiable JAX programs. "
        "'hdtheory COMMAND --help' describes each command.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    common = [_common()]

    s = sub.add_parser("list", parents=common, help="models, their parameters, defaults and allowed ranges")
    s.set_defaults(run=_cmd_list)

    s = sub.add_parser(
        "eval",
        parents=common,
        help="solve one setting and print its observables and diagnostics",
        description="Examples: hdtheory eval erm loss=logistic teacher=sign alpha=2 lam=0.1 --json; "
        "hdtheory eval committee K=2 M=2 lr=0.5 t=10,50,100 --json (ODE theories: observables at "
        "the times t, samples/d; one time or a comma-separated list).",
    )
    s.add_argument("model", help="a model name (see 'hdtheory list')")
    s.add_argument("params", nargs="*", metavar="key=value", help="parameters; others keep defaults")
    s.set_defaults(run=_cmd_eval)

    s = sub.add_parser(
        "sweep",
        parents=common,
        help="a grid described by a TOML file: netCDF, CSV and figures",
        description="Solve a fixed-point model, or integrate an ODE theory to t1 (learning curves "
        "with a dimension t), over the grid that CONFIG.toml describes (model, [parameters], [axes] "
        "as linspace, logspace or a list, observables, [[plots]], t1 and times for an ODE theory; see "
        "examples/configs/) and write NAME.nc, NAME.csv and the figures into --out. The files appear "
        "together once all are written: an interrupted or failed run leaves the folder as it was.",
    )
    s.add_argument("config", metavar="CONFIG.toml", help="the sweep's description")
    s.add_argument("--out", default=None, help="output folder (default: ./NAME, the config's name)")
    s.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds files, replacing those of the same names")
    s.set_defaults(run=_cmd_sweep)

    s = sub.add_parser(
        "tune",
        parents=common,
        help="minimise an observable over some parameters (the optimum, the objective, at_boundary)",
        description="Example: hdtheory tune erm loss=logistic alpha=2 --over lam:log "
        "--objective test_error --json. Each --over is name:transform or name:transform:low:high "
        "with transform log, softplus or identity; the named parameters start from their given "
        "values. ODE theories: t=T is the time at which the objective is taken. at_boundary is -1 "
        "(+1) where a parameter stopped at its low (high) bound; limit_value is the objective "
        "in the limit beyond a low bound (e.g. lam = 0).",
    )
    s.add_argument("model", help="a model name (see 'hdtheory list')")
    s.add_argument("params", nargs="*", metavar="key=value", help="parameters; others keep defaults")
    s.add_argument("--over", action="append", required=True, metavar="NAME:TRANSFORM[:LOW:HIGH]",
                   help="a parameter to tune (repeat for several)")
    s.add_argument("--objective", required=True, help="a scalar observable to minimise, e.g. test_error")
    s.add_argument("--max-iterations", type=_positive, default=50, help="optimiser iterations (default 50)")
    s.set_defaults(run=_cmd_tune)

    s = sub.add_parser(
        "simulate",
        parents=common,
        help="the same setting at finite dimension d, averaged over seeds",
        description="Example: hdtheory simulate erm alpha=2 lam=0.1 d=1000 seeds=4 --json. d (default "
        "1000) and seeds (default 4) set the size and the number of instances (krr: d is the number "
        "of modes of the finite kernel simulated); ODE theories take "
        "t=T1,T2,... for the times at which the observables are measured. Prints the mean and the "
        "standard error of the mean of every observable.",
    )
    s.add_argument("model", help="a model name (see 'hdtheory list')")
    s.add_argument("params", nargs="*", metavar="key=value", help="parameters, d=, seeds=")
    s.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    s.set_defaults(run=_cmd_simulate)

    s = sub.add_parser(
        "demo",
        parents=common,
        help="the quick start: phase diagram with the optimal lam, learning curve, double descent, plateau",
        description="Writes into --out the test error of logistic regression over (alpha, lam) with "
        "the optimal lam(alpha) found by tune, the learning curve with finite-size simulations, the "
        "random-features double descent, the Saad-Solla plateau of a committee machine, their data, "
        "and an index.html showing them. "
        "About two minutes on a 2-core CPU.",
    )
    s.add_argument("--out", default="hdtheory-demo", help="output folder (default: ./hdtheory-demo)")
    s.add_argument("--quick", action="store_true", help="a reduced run (fewer points, smaller d)")
    s.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds files, replacing those of the same names")
    s.set_defaults(run=_cmd_demo)
    return p


def _use_device(device: str | None) -> None:
    """Compute on the CPU only, or check that there is a GPU (jax's default backend when present)."""
    import jax

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    elif device == "gpu":
        try:
            jax.devices("gpu")
        except RuntimeError:
            raise UsageError("--device gpu: jax finds no GPU (install jax[cuda12], see the README)") from None


@contextlib.contextmanager
def _interrupts(flag):
    """Ctrl-C raises ``KeyboardInterrupt`` and also sets ``flag``: Python reports and drops an
    exception raised in a garbage-collector callback, so an interrupt that lands there would be lost
    (and printed) without it. Only in the main thread, where signal handlers can be installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        flag.set()
        raise KeyboardInterrupt

    def unraisable(info, default=sys.unraisablehook):
        if not issubclass(info.exc_type, KeyboardInterrupt):
            default(info)

    flag.clear()
    previous_handler, previous_hook = signal.signal(signal.SIGINT, on_sigint), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        flag.clear()


def main(argv=None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    # key=value parameters may come after the options, too.
    if extra and hasattr(args, "params") and all("=" in e and not e.startswith("-") for e in extra):
        args.params += extra
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.no_cache:
        from ._cache import cache_dir

        if cache_dir() is not None:
            # A program with a host callback is never written to the persistent cache, and
            # equinox's runtime checks are host callbacks. The only ones in these programs are
            # diffrax's checks of its save times and jump times, which the input checks have
            # already done (save times increasing in [0, t1]; a schedule's jumps are increasing by
            # construction). Returning NaN instead of raising, they compile without callbacks, so
            # that the ODE theories' programs are cached too. Read when equinox is first imported.
            os.environ.setdefault("EQX_ON_ERROR", "nan")
    # One setting's answer costs milliseconds and its compilation seconds: XLA's backend
    # optimisations, which make a large grid run about twice as fast, would cost a first answer a
    # quarter of its compilation. Read when jax's backend starts; part of the cache's key.
    faster_compilation(optimise_backend=args.command not in _ONE_SETTING)
    try:
        # jax loads in the time an interrupt may come: inside the try, so that it is one line too.
        import jax

        from ._config import INTERRUPTED, OutputError
        from ._theory import ParameterError
    except KeyboardInterrupt:
        print("hdtheory: interrupted", file=sys.stderr)
        return 130
    jax.config.update("jax_enable_x64", args.precision == "float64")
    if not args.no_cache:  # HDTHEORY_NO_CACHE=1 or HDTHEORY_CACHE_DIR="" turn it off, too
        from ._cache import enable_cache
        enable_cache()

    try:
        with _interrupts(INTERRUPTED):
            _use_device(args.device)
            status = args.run(args)
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt
        return status
    except (UsageError, ParameterError, OutputError) as error:
        return _report("error", error, 2)
    except KeyboardInterrupt:
        print("hdtheory: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last resort: one line, not a traceback
        if os.environ.get("HDTHEORY_DEBUG"):
            raise
        if isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error):
            return _report("error", f"out of memory ({_first_line(error)}); use smaller sizes", 2)
        return _report("internal error", f"{type(error).__name__}: {_first_line(error)} "
                                         "(HDTHEORY_DEBUG=1 shows the traceback)", 1)


_ONE_SETTING = {"eval", "tune"}
"""Commands that compute one setting (``sweep``, ``simulate`` and ``demo`` run large programs)."""


def _first_line(error) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), "")


def _report(kind: str, message, status: int) -> int:
    """``message`` on one line of stderr; returns the exit status."""
    print(f"hdtheory: {kind}: {' '.join(str(message).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
