"""The ``hdtheory`` command: list models, evaluate one setting, run the demo.

``eval`` solves a fixed-point model (:data:`hdtheory.models.MODELS`) or integrates an ODE theory
(:data:`hdtheory.dynamics.DYNAMICS`) to the times ``t=...``.

Errors in the input are one line on stderr and exit status 2; a solve that does not converge is
reported (``converged``, ``status``) with exit status 0, since it is a result, not an error.
"""

import argparse
import json
import sys
from pathlib import Path

import jax


def _models():
    from .dynamics import DYNAMICS
    from .models import MODELS

    return MODELS | DYNAMICS


def _parameter_table(model) -> list[dict]:
    from ._theory import parameters

    rows = []
    for name, field in parameters(model).items():
        meta = field.metadata
        allowed = ", ".join(meta["options"]) if "options" in meta else str(meta["domain"])
        rows.append({"name": name, "default": field.default, "allowed": allowed, "doc": meta["doc"]})
    return rows


def _cmd_list(args) -> int:
    table = {name: _parameter_table(model) for name, model in _models().items()}
    if args.json:
        print(json.dumps(table, indent=2, default=str))
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

    models = _models()
    if model_name not in models:
        raise UsageError(f"unknown model {model_name!r}; choose one of {', '.join(models)}")
    model = models[model_name]
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
            kwargs[key] = _numbers(key, value)
    return model(**kwargs)


def _numbers(key: str, value: str):
    """A number, or a comma-separated list of numbers (a tuple)."""
    try:
        numbers = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise UsageError(f"parameter {key!r} must be a number, got {value!r}") from None
    return numbers[0] if len(numbers) == 1 and "," not in value else numbers


def _trajectory_record(theory, assignments: list[str]) -> dict:
    """Integrate an ODE theory to the times given as ``t=...`` (one time, or a list: a curve)."""
    from ._integrate import ODEStatus, integrate

    times = [item.partition("=")[2] for item in assignments if item.partition("=")[0] == "t"]
    ts = jax.numpy.atleast_1d(jax.numpy.asarray(_numbers("t", times[-1]) if times else 100.0))
    if ts.size == 0 or bool(jax.numpy.any(ts < 0)) or not bool(jax.numpy.all(jax.numpy.isfinite(ts))):
        raise UsageError(f"parameter 't' must be finite times >= 0, got {times[-1]!r}")
    trajectory = integrate(theory, float(ts.max()), saveat=ts)
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

    record = {k: float(v) for k, v in solution.observables.items()}
    record |= {
        "converged": bool(solution.converged),
        "iterations": int(solution.iterations),
        "residual": float(solution.residual),
        "status": Status(int(solution.status)).name.lower(),
    }
    return record


def _cmd_eval(args) -> int:
    from ._fixed_point import solve

    from ._theory import ODETheory

    model = _models().get(args.model)
    is_ode = isinstance(model, type) and issubclass(model, ODETheory)
    params = [p for p in args.params if not (is_ode and p.partition("=")[0] == "t")]
    theory = build_theory(args.model, params)
    record = _trajectory_record(theory, args.params) if is_ode else _solution_record(solve(theory))
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        width = max(map(len, record))
        for key, value in record.items():
            shown = f"{value:.10g}" if isinstance(value, float) else json.dumps(value)
            print(f"{key:<{width}}  {shown}" if not isinstance(value, str) else f"{key:<{width}}  {value}")
    return 0


def _cmd_demo(args) -> int:
    from . import demo

    paths = demo.run(Path(args.out), quick=args.quick, progress=not args.json)
    if args.json:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    else:
        for name, path in paths.items():
            print(f"{name}: {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hdtheory",
        description="Exact high-dimensional learning curves as differentiable JAX programs.",
    )
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="models, their parameters, defaults and allowed ranges")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_list)

    s = sub.add_parser(
        "eval",
        help="solve one setting and print its observables and diagnostics",
        description="Examples: hdtheory eval erm loss=logistic teacher=sign alpha=2 lam=0.1 --json; "
        "hdtheory eval committee K=2 M=2 lr=0.5 t=10,50,100 --json (ODE theories: observables at "
        "the times t, samples/d; one time or a comma-separated list).",
    )
    s.add_argument("model", help="a model name (see 'hdtheory list')")
    s.add_argument("params", nargs="*", metavar="key=value", help="parameters; others keep defaults")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_eval)

    s = sub.add_parser("demo", help="the learning curve of erm on its defaults, with simulations")
    s.add_argument("--out", default="hdtheory-demo", help="output folder (default: ./hdtheory-demo)")
    s.add_argument("--quick", action="store_true", help="a reduced run (fewer points, smaller d)")
    s.add_argument("--json", action="store_true", help="print the written paths as JSON")
    s.set_defaults(run=_cmd_demo)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    jax.config.update("jax_enable_x64", not args.float32)
    from ._theory import ParameterError

    try:
        return args.run(args)
    except (UsageError, ParameterError) as error:
        print(f"hdtheory: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
