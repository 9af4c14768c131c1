r"""Integrating ODE theories: :func:`integrate` and its :class:`Trajectory`.

``integrate(theory, t1)`` solves ``d state / dt = theory.vector_field(t, state)`` from
``theory.init()`` at ``t = 0`` to ``t1`` with diffrax and evaluates ``theory.observables`` at the
requested times. The default solver is Tsitouras' 5(4) Runge-Kutta pair with a PID step-size
controller: the step grows along the long plateaus of online-SGD dynamics and shrinks at the escape,
so a curve to ``t = 10^4`` costs a few hundred steps. ``solver="kvaerno5"`` (an L-stable implicit
ESDIRK method) is the choice for stiff dynamics (very different time scales, large learning rates).

Derivatives with respect to anything the theory holds (learning rates, schedule parameters, initial
overlaps) go through diffrax's adjoint: ``RecursiveCheckpointAdjoint`` (discretise-then-optimise,
exact gradients of the computed solution) by default, ``BacksolveAdjoint`` (continuous adjoint, memory
independent of the number of steps) on request. ``jit`` and ``vmap`` compose with it: a batch of
learning rates, widths of the initial condition or overlaps is one call.

**Failure is reported, not a NaN.** The solve stops when the state leaves every bound
(``max |state| > max_norm``) or stops being finite: ``status = ODEStatus.DIVERGED`` and
``t_stop`` is the blow-up time. When the step budget runs out, ``status = ODEStatus.MAX_STEPS``.
Observables at saved times after ``t_stop`` are ``+inf`` (the solution does not exist there).

**Events.** ``event(theory, t, state) -> real`` stops the solve where it changes sign (found to
solver precision by Newton's method on the dense interpolant); :func:`crossing` builds the common one,
an observable reaching a level, which gives, for example, the plateau escape time as the first time
the generalisation error drops below a threshold.
"""

import enum
from typing import Any, Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._theory import ODETheory, ParameterError, is_concrete


class ODEStatus(enum.IntEnum):
    """Why an integration stopped; ``Trajectory.status`` holds these codes."""

    COMPLETED = 0
    """Reached ``t1``."""
    MAX_STEPS = 1
    """The step budget ran out before ``t1``."""
    DIVERGED = 2
    """The state blew up (non-finite, or larger than ``max_norm``) at ``t_stop``."""
    EVENT = 3
    """The event function changed sign at ``t_stop``."""


class Trajectory(eqx.Module):
    """The result of :func:`integrate` (every field gains the batch axes of a vmapped call)."""

    ts: jax.Array
    """The saved times."""
    observables: dict[str, jax.Array]
    """``theory.observables`` at each saved time, stacked along a leading time axis."""
    state: Any
    """The state at each saved time (leading time axis)."""
    final_state: Any
    """The state at ``t_stop``."""
    t_stop: jax.Array
    """Where the solve stopped: ``t1``, the event or blow-up time, or where the steps ran out."""
    status: jax.Array
    """An :class:`ODEStatus` code."""
    steps: jax.Array
    """The number of accepted solver steps."""

    @property
    def success(self) -> jax.Array:
        """Whether the solve reached ``t1`` or stopped at the requested event."""
        return (self.status == ODEStatus.COMPLETED) | (self.status == ODEStatus.EVENT)

    @property
    def event_time(self) -> jax.Array:
        """``t_stop`` where the event fired, ``+inf`` otherwise."""
        return jnp.where(self.status == ODEStatus.EVENT, self.t_stop, jnp.inf)


_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "kvaerno5": diffrax.Kvaerno5}


def crossing(name: str, level: float, index=()) -> Callable:
    """An event for :func:`integrate`: observable ``name`` (entry ``index``) equals ``level``."""

    def event(theory, t, state):
        return jnp.asarray(theory.observables(t, state)[name])[index] - level

    return event


def integrate(
    theory: ODETheory,
    t1,
    *,
    saveat=None,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-8,
    atol: float | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    max_norm: float = 1e8,
    event: Callable | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> Trajectory:
    """Integrate an ODE theory from ``t = 0`` to ``t1``.

    Args:
        theory: an :class:`~hdtheory.ODETheory`.
        t1: the final time (may be traced).
        saveat: the times at which to report observables, an array in ``[0, t1]``; by default 101
            equally spaced times.
        solver: ``"tsit5"`` (default), ``"dopri5"``, ``"kvaerno5"`` (stiff) or a diffrax solver.
        rtol: the relative tolerance of the step-size controller.
        atol: the absolute tolerance. By default (``None``) each entry of the state gets its own,
            ``rtol`` times the magnitude ``|y0_i|`` of its initial value, but not below the
            rounding level ``eps max_j |y0_j|`` of the state (an entry that starts at zero gets
            that level). Each entry is then followed to ``rtol`` relative accuracy from its start:
            an overlap that starts at ``1e-9`` beside one of order one (the seed of a plateau
            escape) is not lost in an absolute tolerance meant for the large one. A number gives
            one absolute tolerance for every entry. ``rtol`` and ``atol`` are raised to ``100 eps``
            and ``eps`` of the working dtype where they are below them, as in float32.
            ``rtol``, ``atol``, ``dt0`` and ``max_norm`` are traced: a new value reuses the
            compiled solve.
        dt0: the first step; by default chosen by the controller.
        max_steps: the step budget (a Python int: it sizes the adjoint's checkpoints).
        max_norm: the state is declared divergent when an entry exceeds this in absolute value.
        event: ``event(theory, t, state) -> real``; the solve stops where it changes sign.
        adjoint: a diffrax adjoint; ``RecursiveCheckpointAdjoint()`` by default.

    Returns:
        A :class:`Trajectory`.
    """
    if not isinstance(theory, ODETheory):
        raise TypeError(f"integrate needs an ODETheory, got {type(theory).__name__}")
    if isinstance(solver, str):
        if solver not in _SOLVERS:
            raise ParameterError(f"solver must be one of {', '.join(_SOLVERS)}, got {solver!r}")
        solver = _SOLVERS[solver]()
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ParameterError(f"max_steps must be a positive integer, got {max_steps!r}")
    if is_concrete(t1) and is_concrete(saveat):
        # Checked on the host, before anything is traced.
        end = np.asarray(t1, float)
        times = end * np.linspace(0.0, 1.0, 101) if saveat is None else np.asarray(saveat, float)
        if end.ndim != 0 or not np.isfinite(end) or end < 0:
            raise ParameterError(f"t1 must be a finite time >= 0, got {t1}")
        if times.ndim != 1 or np.any(times < 0) or np.any(times > end) or np.any(np.diff(times) < 0):
            shown = f"shape {times.shape}" if times.ndim != 1 else f"[{times.min():g}, {times.max():g}]"
            raise ParameterError(f"saveat must be a 1-D increasing array of times in [0, t1={end:g}], got {shown}")
    y0 = theory.init()
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(y0))
    t1 = jnp.asarray(t1, dtype)
    if saveat is None:
        saveat = jnp.linspace(0.0, 1.0, 101, dtype=dtype) * t1
    saveat = jnp.asarray(saveat, dtype)

    for name, value in (("rtol", rtol), ("atol", atol), ("dt0", dt0), ("max_norm", max_norm)):
        if value is not None and is_concrete(value):
            if np.ndim(value) != 0 or not np.isfinite(value) or not value > 0:
                raise ParameterError(f"{name} must be a finite number > 0, got {value!r}")
    # Arrays, not Python floats: traced by the compiled solve, so that a new value does not
    # recompile it. ``atol=None`` (scaled tolerances) is the only structural choice.
    scaled = atol is None
    options = {
        "rtol": jnp.asarray(rtol, dtype),
        "atol": jnp.asarray(rtol if scaled else atol, dtype),
        "dt0": None if dt0 is None else jnp.asarray(dt0, dtype),
        "max_norm": jnp.asarray(max_norm, dtype),
    }
    return _solve(theory, t1, saveat, solver, options, scaled, max_steps, event, adjoint)


def _scales(y0, rtol, eps):
    """The scale ``s_i = max(|y0_i|, eps max_j |y0_j| / rtol)`` of each entry of ``y0`` (``1``
    when the whole state is zero), a constant of the solve (no derivative): ``rtol s_i`` is the
    absolute tolerance of entry ``i``, never below the rounding level of the state."""
    magnitudes = jax.tree_util.tree_map(lambda x: jnp.abs(jax.lax.stop_gradient(x)), y0)
    largest = jnp.max(jnp.stack([jnp.max(x) for x in jax.tree_util.tree_leaves(magnitudes)]))
    floor = eps * jnp.where(largest > 0, largest, 1.0) / rtol
    return jax.tree_util.tree_map(lambda x: jnp.maximum(x, floor), magnitudes)


# The vector field and the event as jitted functions: diffrax calls each at several places of its
# step, its root finder and the loop's first step, which then share one trace (and under vmap or a
# derivative one transformed trace) instead of tracing the theory's integrals at every call.
@eqx.filter_jit
def _scaled_field(theory, t, z, s):
    """``dz/dt = f(t, s z) / s``."""
    y = jax.tree_util.tree_map(jnp.multiply, z, s)
    return jax.tree_util.tree_map(jnp.divide, theory.vector_field(t, y), s)


_event = eqx.filter_jit(lambda event, theory, t, y: event(theory, t, y))


@eqx.filter_jit
def _solve(theory, t1, saveat, solver, options, scaled, max_steps, event, adjoint):
    """The compiled solve: settings of the same structure share one compilation (the numeric
    ``options`` are traced).

    With ``scaled``, the solver integrates ``z = y / s`` (entry by entry, ``s`` from
    :func:`_scales`), ``dz/dt = f(t, s z) / s``: an absolute tolerance ``atol`` on ``z`` is
    ``atol s_i`` on entry ``i`` of ``y``, and the relative tolerance is unchanged.
    """
    y0 = theory.init()
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(y0))
    # Tolerances below the working precision cannot be met: in float32 they are raised to ~100 eps.
    eps = float(jnp.finfo(dtype).eps)
    rtol = jnp.maximum(options["rtol"], 100 * eps)
    if scaled:
        s, atol = _scales(y0, rtol, eps), rtol
    else:
        s, atol = jax.tree_util.tree_map(jnp.ones_like, y0), jnp.maximum(options["atol"], eps)
    to_y = lambda z: jax.tree_util.tree_map(jnp.multiply, z, s)
    to_z = lambda y: jax.tree_util.tree_map(jnp.divide, y, s)
    max_norm = options["max_norm"]

    def blown_up(t, y, args, **kwargs):
        leaves = jax.tree_util.tree_leaves(to_y(y))  # diffrax passes the scaled state as y=
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
        big = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
        return ~finite | (big > max_norm)

    conditions = [blown_up]
    if event is not None:
        conditions.append(lambda t, y, args, **kwargs: _event(event, theory, t, to_y(y)))
    # No jump_ts for the schedules' discontinuities: with them, a gradient through a jitted solve
    # (as tune takes it) was 2 to 25% off in a piecewise schedule's pieces, while the error control
    # alone rejects the steps across a jump until the local error meets the tolerance.
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, z, args: _scaled_field(theory, t, z, s)),
        solver,
        t0=jnp.zeros((), dtype),
        t1=t1,
        dt0=options["dt0"],
        y0=to_z(y0),
        saveat=diffrax.SaveAt(ts=saveat, t1=True),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint or diffrax.RecursiveCheckpointAdjoint(),
        event=diffrax.Event(
            conditions, root_finder=optx.Newton(rtol=1e-10, atol=1e-10) if event else None
        ),
        throw=False,
    )
    # diffrax writes the final state (at t1, or where an event stopped the solve) into the slot
    # after the last saved time it reached, and +inf after it: the final time is the largest
    # finite one.
    last = jnp.sum(jnp.isfinite(solution.ts)) - 1
    t_stop = solution.ts[last]
    ys_all = jax.tree_util.tree_map(lambda x, scale: x * scale[None], solution.ys, s)
    final = jax.tree_util.tree_map(lambda x: x[last], ys_all)
    ys = jax.tree_util.tree_map(lambda x: x[:-1], ys_all)
    mask = solution.event_mask
    status = jnp.where(
        solution.result == diffrax.RESULTS.max_steps_reached, ODEStatus.MAX_STEPS, ODEStatus.COMPLETED
    )
    if mask is not None:
        status = jnp.where(mask[0], ODEStatus.DIVERGED, status)
        if event is not None:
            status = jnp.where(mask[1], ODEStatus.EVENT, status)
    status = jnp.where(
        (status == ODEStatus.COMPLETED) & ~diffrax.is_successful(solution.result),
        ODEStatus.DIVERGED,  # the controller could not make a finite step: a blow-up
        status,
    )
    reached = saveat <= t_stop
    # Times after t_stop hold diffrax's inf: evaluate the observables there at y0 instead (no NaN
    # in the value or the gradient), then report them as +inf.
    safe = jax.tree_util.tree_map(
        lambda x, x0: jnp.where(reached.reshape((-1,) + (1,) * (x.ndim - 1)), x, x0[None]), ys, y0
    )
    observables = jax.vmap(theory.observables)(saveat, safe)
    observables = {
        k: jnp.where(reached.reshape((-1,) + (1,) * (v.ndim - 1)), v, jnp.inf)
        for k, v in observables.items()
    }
    ys = jax.tree_util.tree_map(
        lambda x: jnp.where(reached.reshape((-1,) + (1,) * (x.ndim - 1)), x, jnp.inf), ys
    )
    return Trajectory(
        ts=saveat,
        observables=observables,
        state=ys,
        final_state=final,
        t_stop=t_stop,
        status=status.astype(jnp.int32),
        steps=solution.stats["num_accepted_steps"],
    )
