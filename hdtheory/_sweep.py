"""Phase diagrams: :func:`sweep` solves a theory over a grid of any of its fields.

The grid (the Cartesian product of the axes, or the axes zipped together) is flattened and solved in
chunks of a fixed size by one compiled, vmapped program, each chunk sharded over every local device
along the grid axis. Stragglers do not set the cost of a chunk: every point first gets a small
iteration budget; only the points that exhaust it are solved again, gathered into a small batch, with
the full budget. The result is an :class:`xarray.Dataset` with one variable per observable, the
diagnostics (``converged``, ``iterations``, ``residual``, ``status``), one coordinate per axis, and
the fixed parameters in its attributes.

An ODE theory (:class:`~hdtheory.ODETheory`: learning curves of online SGD) is integrated at every
grid point instead (:func:`hdtheory.integrate`, to ``t1``, saving at ``saveat``), in the same chunks:
its observables gain a last dimension ``t``, and its diagnostics are the trajectory's (``converged``,
true where the integration reached ``t1``; ``status``, an :class:`~hdtheory.ODEStatus` code;
``t_stop``; ``steps``). An observable with axes of its own (the committee machine's overlap
matrices) has them after ``t``, named ``{name}_0``, ``{name}_1``...

Several machines (or processes): start every process with :func:`jax.distributed.initialize`
(on the CPU backend also ``jax.config.update("jax_cpu_collectives_implementation", "gloo")``) and
call :func:`sweep` with the same arguments in each; every process solves one contiguous block of the
grid on its local devices and all of them return the whole Dataset.
"""

import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._batch import map_instances
from ._fixed_point import Status, solve
from ._integrate import ODEStatus, integrate
from ._theory import FixedPointTheory, ODETheory, ParameterError, parameters

_CPU_CHUNK = 512


def _grid(axes: Mapping[str, np.ndarray], product: bool) -> tuple[dict, tuple[int, ...]]:
    if product:
        mesh = np.meshgrid(*axes.values(), indexing="ij")
        return {k: v.ravel() for k, v in zip(axes, mesh)}, tuple(len(v) for v in axes.values())
    lengths = {len(v) for v in axes.values()}
    if len(lengths) != 1:
        sizes = {k: len(v) for k, v in axes.items()}
        raise ParameterError(f"zipped axes need equal lengths, got {sizes}")
    return dict(axes), (lengths.pop(),)


def _check_axes(theory, axes, product: bool = True) -> dict[str, np.ndarray]:
    """The axes as float arrays; unknown fields, non-numbers and out-of-domain values (at every grid
    point: the product of the axes, or the axes zipped) rejected before anything is traced."""
    if not isinstance(theory, (FixedPointTheory, ODETheory)):
        raise ParameterError(f"sweep needs a FixedPointTheory or an ODETheory, got {type(theory).__name__}")
    if not isinstance(axes, Mapping) or not axes:
        raise ParameterError(f"axes must be a non-empty mapping of field names to values, got {axes!r}")
    fields = parameters(type(theory))
    for name in axes:
        if name not in fields or "domain" not in fields[name].metadata:
            numeric = [k for k, f in fields.items() if "domain" in f.metadata]
            raise ParameterError(f"cannot sweep {name!r}: the numeric parameters are {', '.join(numeric)}")
    converted = {}
    for name, values in axes.items():
        try:
            converted[name] = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ParameterError(f"axis {name!r} must hold numbers, got {values!r}") from None
        if converted[name].ndim != 1 or converted[name].size == 0:
            raise ParameterError(f"axis {name!r} must be a non-empty 1-D array of values")
    # Building the theory with every grid point runs its own checks, cross-parameter ones included.
    grid, _ = _grid(converted, product)
    type(theory)(**({k: getattr(theory, k) for k in fields} | {k: jnp.asarray(v) for k, v in grid.items()}))
    return converted


def _free_memory(device) -> int | None:
    """Free bytes on an accelerator, or None where the backend does not say (the CPU)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats or "bytes_limit" not in stats:
        return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)


def _default_chunk(solver, values, devices) -> int:
    """Points per chunk: half the free device memory over the compiled program's bytes per point."""
    free = _free_memory(devices[0])
    if free is None:
        return _CPU_CHUNK * len(devices)
    per_point = _bytes_per_point(solver, values[:1], devices[0].device_kind)
    return max(1, int(free // 2 // max(per_point, 1)) // len(devices)) * len(devices)


_BYTES_PER_POINT: dict = {}


def _bytes_per_point(solver, row: np.ndarray, device_kind: str) -> float:
    """Temporary and output bytes per point of the compiled sweep program, measured once per program.

    A program's memory depends on its structure and shapes only, so one probe (a compilation, which
    costs seconds on an accelerator) serves every later sweep of the same model configuration.
    """
    leaves, structure = jax.tree.flatten(solver)
    shapes = tuple((np.shape(x), jnp.result_type(x)) for x in leaves)
    key = (structure, shapes, row.shape, row.dtype, device_kind)
    if key not in _BYTES_PER_POINT:
        probe = 8
        batch = jnp.asarray(row.repeat(probe, 0))
        lowered = jax.jit(lambda v, n: solver(v, n)).lower(batch, jnp.asarray(1))
        analysis = lowered.compile().memory_analysis()
        _BYTES_PER_POINT[key] = (analysis.temp_size_in_bytes + analysis.output_size_in_bytes) / probe
    return _BYTES_PER_POINT[key]


class _Solver(eqx.Module):
    """One compiled solve over a flat batch of grid values, vmapped (:func:`~hdtheory._batch.map_instances`)."""

    theory: FixedPointTheory
    names: tuple[str, ...] = eqx.field(static=True)
    init: str = eqx.field(static=True)
    options: tuple = eqx.field(static=True)

    def __call__(self, values: jax.Array, max_steps: int):
        def one(row):
            theory = eqx.tree_at(
                lambda t: [getattr(t, k) for k in self.names], self.theory, list(row)
            )
            return solve(theory, self.init, max_steps=max_steps, **dict(self.options))

        return map_instances(one, values)


class _Integrator(eqx.Module):
    """One compiled integration over a flat batch of grid values, vmapped (:func:`~hdtheory._batch.map_instances`)."""

    theory: ODETheory
    t1: jax.Array
    saveat: jax.Array
    names: tuple[str, ...] = eqx.field(static=True)
    options: tuple = eqx.field(static=True)

    def __call__(self, values: jax.Array, max_steps: jax.Array):
        """``max_steps`` is unused: an integration's step budget sizes its program (a static
        option), so an ODE sweep makes one pass."""

        def one(row):
            theory = eqx.tree_at(
                lambda t: [getattr(t, k) for k in self.names], self.theory, list(row)
            )
            return integrate(theory, self.t1, saveat=self.saveat, **dict(self.options))

        return map_instances(one, values)


_solve_batch = eqx.filter_jit(lambda solver, values, max_steps: solver(values, max_steps))


def _run(solver, values: np.ndarray, chunk: int, sharding, max_steps: int, progress: bool, desc: str):
    n = len(values)
    chunks = range(0, n, chunk)
    if progress and len(chunks) > 1:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="chunk")
    outputs = []
    for start in chunks:
        block = values[start : start + chunk]
        pad = chunk - len(block)
        if pad:  # a fixed shape: the last chunk reuses the compiled program
            block = np.concatenate([block, np.repeat(block[-1:], pad, axis=0)])
        block = jax.device_put(block, sharding)
        # The budget is traced, so that both passes share one compiled program per chunk shape.
        out = jax.tree.map(np.asarray, _solve_batch(solver, block, jnp.asarray(max_steps)))
        outputs.append(jax.tree.map(lambda x: x[: chunk - pad], out))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)


def sweep(
    theory: FixedPointTheory | ODETheory,
    axes: Mapping[str, np.ndarray],
    *,
    product: bool = True,
    init: str = "uninformed",
    chunk_size: int | None = None,
    budget: tuple[int, int] = (25, 500),
    progress: bool = True,
    t1=None,
    saveat=None,
    **options,
):
    """Solve ``theory`` over a grid of its numeric fields; returns an :class:`xarray.Dataset`.

    Args:
        theory: the fixed parameters; the swept fields take the axes' values.
        axes: field name -> 1-D array of values.
        product: the Cartesian product of the axes (dimensions named after them), or, if False, the
            axes zipped together along one dimension ``point``.
        init: the initialisation passed to :func:`hdtheory.solve` (fixed-point theories).
        chunk_size: points per compiled call; by default half the accelerator's free memory over
            the compiled program's bytes per point (read from XLA's memory analysis), or
            512 per device on the CPU (a chunk runs as long as its slowest point). Rounded up to a multiple of the local device count.
        budget: ``(first, full)`` iteration budgets of fixed-point solves: every point gets
            ``first``; the points that exhaust it are solved again with ``full``. Points that still
            do not converge are reported (``converged=False``, ``status``), never retried further.
        progress: show a progress bar when there is more than one chunk.
        t1, saveat: ODE theories: the final time and the saved times (by default 101 times from 0
            to ``t1``), as in :func:`hdtheory.integrate`; the same at every grid point.
        **options: passed to :func:`hdtheory.solve` (``method``, ``tol``, ``max_norm``), or for
            an ODE theory to :func:`hdtheory.integrate` (``solver``, ``rtol``, ``atol``,
            ``max_steps``, ``max_norm``).
    """
    import xarray as xr

    from . import __version__

    axes = _check_axes(theory, axes, product)
    dynamic = isinstance(theory, ODETheory)
    if dynamic and t1 is None:
        raise ParameterError("sweeping an ODE theory needs the final time t1")
    if not dynamic and (t1 is not None or saveat is not None):
        raise ParameterError(f"t1 and saveat are for ODE theories; {type(theory).__name__} is a fixed-point theory")
    if not (isinstance(budget, (tuple, list)) and len(budget) == 2
            and all(type(b) is int and b >= 1 for b in budget)):
        raise ParameterError(f"budget must be two integers >= 1 (first, full), got {budget!r}")
    if chunk_size is not None and not (type(chunk_size) is int and chunk_size >= 1):
        raise ParameterError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}")
    flat, shape = _grid(axes, product)
    names = tuple(flat)
    dtype = jnp.result_type(*(getattr(theory, k) for k in names), float)
    values = np.stack([flat[k] for k in names], axis=1).astype(dtype)

    devices = jax.local_devices()
    if dynamic:
        # One integration at the first grid point checks the times and the options (and compiles
        # nothing): integrate's own checks, before the sweep's program is traced.
        probe = eqx.tree_at(lambda t: [getattr(t, k) for k in names], theory, list(jnp.asarray(values[0])))
        jax.eval_shape(lambda th: integrate(th, t1, saveat=saveat, **options), probe)
        times = np.asarray(t1, dtype) * np.linspace(0.0, 1.0, 101) if saveat is None else np.asarray(saveat, dtype)
        solver = _Integrator(theory, jnp.asarray(t1, dtype), jnp.asarray(times), names, tuple(sorted(options.items())))
        budget = (budget[0], budget[0])  # one pass: see _Integrator
    else:
        solver = _Solver(theory, names, init, tuple(sorted(options.items())))
    chunk = chunk_size or _default_chunk(solver, values, devices)
    chunk = math.ceil(chunk / len(devices)) * len(devices)
    sharding = NamedSharding(Mesh(np.array(devices), ("grid",)), PartitionSpec("grid"))

    if jax.process_count() == 1:
        out = _solve_points(solver, values, chunk, sharding, budget, progress)
    else:
        out = _solve_distributed(solver, values, chunk, sharding, budget, progress)

    dims = tuple(axes) if product else ("point",)
    coords = dict(axes) if product else {k: ("point", v) for k, v in axes.items()}
    if dynamic:
        coords["t"] = times
        diagnostics, codes = {"converged": out.success, "status": out.status, "t_stop": out.t_stop,
                              "steps": out.steps}, ODEStatus
    else:
        diagnostics, codes = {k: getattr(out, k) for k in ("converged", "iterations", "residual", "status")}, Status
    data = {}
    named = getattr(theory, "observable_dims", {})
    for k, v in out.observables.items():
        own = (("t",) if dynamic else ()) + named.get(k, tuple(f"{k}_{i}" for i in range(v.ndim - 1 - dynamic)))
        data[k] = (dims + own, np.reshape(v, shape + v.shape[1:]))
    data |= {k: (dims, np.reshape(v, shape)) for k, v in diagnostics.items()}
    fixed = {k: _attribute(getattr(theory, k)) for k in parameters(type(theory)) if k not in axes}
    # A matrix parameter (the mixture's per-cluster spectrum) is stored flat, with its shape.
    fixed |= {f"{k}_shape": np.shape(getattr(theory, k)) for k in fixed if np.ndim(getattr(theory, k)) > 1}
    attrs = fixed | {"theory": type(theory).__name__, "hdtheory_version": __version__,
                     "status_codes": ", ".join(f"{s.value}={s.name.lower()}" for s in codes)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _attribute(value):
    """A fixed parameter as a netCDF attribute: a string, a number, or the entries of an array,
    flattened (an empty array, the default of an optional array such as the mixture's ``weights``,
    as ``[]``)."""
    if isinstance(value, str):
        return value
    if np.ndim(value) == 0:
        return float(value)
    return np.asarray(value, float).ravel()


def _solve_points(solver, values, chunk, sharding, budget, progress):
    """Both passes over a flat batch of grid values: every point, then the stragglers."""
    n_devices = sharding.mesh.size
    chunk = min(chunk, math.ceil(len(values) / n_devices) * n_devices)
    out = _run(solver, values, chunk, sharding, budget[0], progress, "sweep")
    retry = np.flatnonzero(out.status == Status.MAX_STEPS)
    if len(retry) and budget[1] > budget[0]:
        small = min(chunk, max(n_devices, 2 ** math.ceil(math.log2(len(retry)))))
        small = math.ceil(small / n_devices) * n_devices
        again = _run(solver, values[retry], small, sharding, budget[1], progress, "stragglers")
        again = eqx.tree_at(lambda s: s.iterations, again, again.iterations + budget[0])
        out = jax.tree.map(lambda a, b: _scatter(a, retry, b), out, again)
    return out


def _solve_distributed(solver, values, chunk, sharding, budget, progress):
    """Each process solves one contiguous block of the grid on its own devices; all gather."""
    from jax.experimental import multihost_utils

    per = math.ceil(len(values) / jax.process_count())
    block = values[jax.process_index() * per :][:per]
    block = np.concatenate([block, np.repeat(values[-1:], per - len(block), axis=0)])
    local = _solve_points(solver, block, chunk, sharding, budget, progress and jax.process_index() == 0)
    gathered = multihost_utils.process_allgather(local)
    return jax.tree.map(lambda x: np.reshape(x, (-1, *x.shape[2:]))[: len(values)], gathered)


def _scatter(full: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    full = np.array(full)
    full[index] = values
    return full
