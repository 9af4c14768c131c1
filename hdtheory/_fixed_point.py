r"""Solving fixed-point theories: :func:`solve` and its :class:`Solution`.

The fixed point of ``x = T(x)`` is found as a root of ``r(x) = T(x) - x`` on the flattened state, in
the theory's unconstrained coordinates (``theory.unconstrain``; the state itself by default). The
default method, :class:`Newton`, takes Newton steps with a backtracking line search on ``|r|`` and
falls back to a damped step ``x <- (1 - damping) T(x) + damping x`` when no step length decreases the
residual (or the step leaves the theory's domain, where ``T`` is not finite). :class:`Damped` is the
plain damped iteration.

Derivatives of the solution with respect to anything the theory holds come from the implicit
function theorem, through :func:`jax.lax.custom_root`: ``dx = (I - dT/dx)^{-1} dT/dtheta . dtheta``, a
linear solve of the state's size at the solution, never a backpropagation through the iterations.
``grad``, ``jvp``, ``jacfwd``, ``jit`` and ``vmap`` all compose with it.
"""

import enum

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._theory import FixedPointTheory, ParameterError, is_concrete


class Status(enum.IntEnum):
    """Why a solve stopped; ``Solution.status`` holds these codes."""

    CONVERGED = 0
    MAX_STEPS = 1
    """Not converged within the budget (or, below 64 bits, the error estimate misses the tolerance)."""
    DIVERGED = 2
    """The state left the theory's domain for good (non-finite) or ended unconverged past ``max_norm``."""
    NOT_FINITE = 3
    """The iteration met its tolerance, but an observable is NaN there: the state is outside the
    domain where the theory's formulas hold (an overlap rounded below zero). Never a result."""
    INACCURATE = 4
    """The iteration met its tolerance, but the theory's estimate of its own numerical error there
    (:meth:`~hdtheory.FixedPointTheory.accurate`: a quadrature rule's) exceeds its tolerance."""


class Solution(eqx.Module):
    """The result of :func:`solve` (every field gains the batch axes of a vmapped solve)."""

    state: object
    observables: dict[str, jax.Array]
    converged: jax.Array
    iterations: jax.Array
    residual: jax.Array
    """``max_i |T(x)_i - x_i| / (1 + |x_i|)`` at the returned state, in the solver's coordinates; for
    a fixed point to rounding whose residual there is above the tolerance (near perfect recovery),
    ``max_i |T(s)_i - s_i| / |s_i|`` in the theory's own variables ``s``, the test it met."""
    status: jax.Array
    """A :class:`Status` code."""


class Damped(eqx.Module):
    """Damped iteration ``x <- (1 - damping) T(x) + damping x`` (damping weights the old iterate)."""

    damping: float = 0.5

    def step(self, residual, x, r, active):
        del active
        x_new = x + (1 - self.damping) * r
        return x_new, residual(x_new)


class Newton(eqx.Module):
    """Newton's method on ``T(x) - x`` with backtracking, falling back to a damped step.

    Trial steps of length ``t = 1, 1/2, ...`` (``max_backtracks`` halvings) are accepted when the
    residual there is finite and ``|r(x + t s)| <= (1 - 1e-4 t) |r(x)|``; if none is, the damped step
    ``x + (1 - damping) r(x)`` is taken. Every trial evaluates the residual and its Jacobian
    together (``linearised``): the Jacobian of the accepted trial is the next step's, so that an
    iteration costs one evaluation of the map with its tangents, not a residual and then the
    Jacobian at the same point (which evaluated the map twice; with a prox solved by Newton's
    method at every quadrature node, the map's evaluation outweighs its tangents). Under ``vmap``,
    points that have already converged (``active`` false) take no backtracking steps, so they cost
    one such evaluation per iteration.

    With ``follow_flow``, for maps that iteration drives monotonically to their fixed point (the
    state evolution of Bayes-optimal inference from the uninformed state, see
    :attr:`~hdtheory.FixedPointTheory.monotone`): where the Newton direction ``s`` points against the
    iteration's step in some coordinate (``s_i r_i(x) < 0``; about a stable fixed point of a
    monotone map ``(I - T')^-1`` is non-negative and they agree), Newton heads for a repelling fixed
    point (the trivial ``q = 0`` past weak recovery), and the step of iteration is taken instead,
    lengthened while the residual keeps its direction and does not halve: ``x + t r(x)`` for the
    last of ``t = 1, 2, 4, ...`` (``max_doublings`` doublings) before ``r(x + t r) . r(x) <= 0`` or
    ``|r(x + t r)| < |r(x + t r / 2)| / 2``. The residual grows with the distance from a repelling
    point, and it shrinks towards the next fixed point, linearly near it, so that a doubling that
    would more than halve it is the one that would reach the fixed point: the flow stops short of
    it. The cap on the doublings keeps the step within ``2^max_doublings`` times that of the
    iteration, so that coarse trials cannot jump over a narrow band of the next fixed points (the
    uninformed branch just below an algorithmic threshold).
    """

    damping: float = 0.5
    max_backtracks: int = 10
    max_doublings: int = 10
    follow_flow: bool = eqx.field(default=False, static=True)

    def step(self, linearised, x, r, active, jac, first=False):
        """``(x, r, jac)`` after one step from ``x``, where ``r`` and ``jac`` are the residual and
        its Jacobian; ``linearised(x)`` returns both. With ``first`` (true at the start, where ``r``
        and ``jac`` are not known yet), the step is ``x`` itself with its residual and Jacobian: the
        solve evaluates the map in one place, the line search, for a shorter compilation."""
        lu = jax.scipy.linalg.lu_factor(jac)
        direction = jnp.where(first, 0.0, -jax.scipy.linalg.lu_solve(lu, r))
        norm, length = jnp.linalg.norm(r), jnp.linalg.norm(direction)
        fallback = x + (1 - self.damping) * r
        # About a stable fixed point of a monotone map (I - T')^-1 is non-negative, so that a Newton
        # step against the residual in some coordinate heads for a repelling point.
        flow = jnp.asarray(self.follow_flow) & active & jnp.any(direction * r < 0) & ~first
        direction = jnp.where(flow, r, direction)

        def accepted(t, r_trial, r_kept):
            finite = jnp.all(jnp.isfinite(r_trial))
            # The residual decreases, or the Newton step from the trial, measured with the Jacobian
            # at x, is shorter (Deuflhard's natural monotonicity test, invariant under linear
            # changes of coordinates): along a curved valley of slow convergence (max-margin at
            # large alpha) the residual's fast components grow quadratically with t and the first
            # test alone crawls; the second weighs each component by the inverse Jacobian.
            natural = jnp.linalg.norm(jax.scipy.linalg.lu_solve(lu, r_trial)) <= (1 - t / 4) * length
            decrease = (jnp.linalg.norm(r_trial) <= (1 - 1e-4 * t) * norm) | natural
            holds = jnp.linalg.norm(r_trial) >= 0.5 * jnp.linalg.norm(r_kept)
            onward = (jnp.vdot(r_trial, r) > 0) & holds
            return finite & jnp.where(flow, onward, decrease)

        def searching(carry):
            t, _, r_trial, _, k, _, r_kept, _ = carry
            ok = accepted(t, r_trial, r_kept)
            # Newton: halve until accepted. Flow: double while the direction holds and |r| does
            # not halve. The first pass (k = -1) makes the first trial, the full step: one place
            # in the program evaluates the map, for a shorter compilation.
            budget = jnp.where(flow, self.max_doublings, self.max_backtracks)
            return (k < 0) | (active & ~first & jnp.where(flow, ok, ~ok) & (k <= budget))

        def next_trial(carry):
            t, x_trial, r_trial, j_trial, k, *kept = carry
            first = k < 0
            kept = [jnp.where(flow, trial, old) for trial, old in zip((x_trial, r_trial, j_trial), kept)]
            t = jnp.where(first, 1.0, jnp.where(flow, 2 * t, 0.5 * t))
            # After the last halving, the Newton trial is the damped step, taken whatever its residual.
            last = ~flow & (k >= self.max_backtracks)
            x_trial = jnp.where(last, fallback, x + t * direction)
            r_trial, j_trial = linearised(x_trial)
            # The full step is also the first point the flow keeps.
            kept = [jnp.where(first, trial, old) for trial, old in zip((x_trial, r_trial, j_trial), kept)]
            return t, x_trial, r_trial, j_trial, k + 1, *kept

        init = (jnp.ones((), x.dtype), x, r, jac, -1, x, r, jac)
        _, x_new, r_new, j_new, _, x_kept, r_kept, j_kept = jax.lax.while_loop(searching, next_trial, init)
        # The flow keeps its last trial in the direction (the plain iteration step at least).
        return tuple(jnp.where(flow, kept, new) for kept, new in ((x_kept, x_new), (r_kept, r_new), (j_kept, j_new)))


def _attracting(jac) -> jax.Array:
    """Whether a fixed point of a monotone map ``T`` (``T' >= 0`` entrywise), at which the residual
    ``T(x) - x`` has the Jacobian ``jac = T' - I``, attracts the iteration: ``I - T'`` is then a
    Z-matrix, and the spectral radius of ``T'`` is below one iff ``(I - T')^-1`` exists and is
    entrywise non-negative (a non-singular M-matrix), a test without nonsymmetric eigenvalues.
    Entries that vanish exactly may come out of the inverse at rounding level below zero."""
    inverse = jnp.linalg.inv(-jac)
    slack = jnp.sqrt(jnp.finfo(inverse.dtype).eps) * jnp.max(jnp.abs(inverse))
    return jnp.all(jnp.isfinite(inverse)) & jnp.all(inverse >= -slack)


_ROUNDING = 16
"""A state that the map moves by at most this many machine epsilons (relative, entry by entry, in
the theory's own variables) is a fixed point to rounding."""


def _default_tol(dtype) -> float:
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5


def _newton_error(jac, x, r) -> jax.Array:
    """``max_i |e_i| / (1 + |x_i|)`` for the Newton estimate ``e = (I - T')^{-1} r`` of ``x - x*``.

    Near a bifurcation or an interpolation peak ``I - T'`` is nearly singular: a small residual is
    no small error there.
    """
    error = jnp.abs(jnp.linalg.solve(-jac, r)) / (1 + jnp.abs(x))
    return jnp.where(jnp.all(jnp.isfinite(error)), jnp.max(error), jnp.inf)


# The map, traced once per solve and reused wherever the solve evaluates it (the residual, its
# Jacobian, the line search, the implicit derivative): the trace of a model's map (quadratures,
# inner Newton solves of proximal operators) is much of the time to compile a solve.
_update = eqx.filter_jit(lambda theory, state: theory.update(state))


@eqx.filter_jit
def solve(
    theory: FixedPointTheory,
    init="uninformed",
    *,
    method=None,
    tol: float | None = None,
    max_steps: int | jax.Array = 100,
    max_norm: float = 1e8,
) -> Solution:
    """The fixed point of ``theory.update``, its observables and diagnostics.

    Args:
        theory: a :class:`~hdtheory.FixedPointTheory`.
        init: ``"uninformed"`` or ``"informed"`` (passed to ``theory.init``), a state, or a previous
            :class:`Solution` (a warm start).
        method: :class:`Newton` or :class:`Damped`; by default ``Newton(follow_flow=theory.monotone)``.
        tol: convergence threshold on ``max_i |T(x)_i - x_i| / (1 + |x_i|)``; defaults to 1e-10 in
            float64 and 1e-5 in float32. Following the flow (``Newton(follow_flow=True)``, the
            default for a :attr:`~hdtheory.FixedPointTheory.monotone` theory), the point must also
            attract the iteration (``(I - T')^-1`` exists and is non-negative) and the Newton step
            ``(I - T')^-1 (T(x) - x)``, the distance to the fixed point, must meet the same
            threshold: just past weak recovery the uninformed start has a residual below ``tol``
            next to the repelling ``q = 0``, and a small residual near a bifurcation is no small
            error.
            A state that the map moves by no more than rounding (16 machine epsilons of each
            entry, in the theory's own variables) is converged too: near perfect recovery the
            solver's coordinates (``log(rho - q)``) are finer than ``q`` holds, and the residual
            has a floor of rounding there.
            Below 64 bits the Newton estimate of the error, ``(I - T')^{-1} (T(x) - x)``, must meet
            it in any case; where it cannot (an ill-conditioned fixed point), the solve ends
            ``Status.MAX_STEPS``, not converged.
        max_steps: iteration budget; a solve that runs out reports ``Status.MAX_STEPS``.
        max_norm: a state that has not converged within ``max_steps`` and is larger than this
            (sup norm) is reported as ``Status.DIVERGED``: the physical regime of a diverging norm
            (separable data at ``lam -> 0``), not a crash. A larger state that converges (a variance
            ``~ 1 / lam`` at a tiny ``lam``) is a solution: the bound does not stop the iteration.

    Returns:
        A :class:`Solution`. It never raises for a setting in the domain that fails to converge: the
        failure is in ``converged``, ``status`` and ``residual`` (per point under ``vmap``).

    ``solve`` is compiled once per theory type and static configuration (``equinox.filter_jit``):
    new parameter values reuse the compiled program.
    """
    # Argument checks: they run while tracing, before anything compiles.
    if not isinstance(theory, FixedPointTheory):
        raise ParameterError(f"solve needs a FixedPointTheory (integrate an ODETheory), got {type(theory).__name__}")
    if isinstance(init, str) and init not in ("uninformed", "informed"):
        raise ParameterError(f"init must be 'uninformed', 'informed', a state or a Solution, got {init!r}")
    if not (isinstance(max_steps, jax.Array) or type(max_steps) is int and max_steps >= 1):
        raise ParameterError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    for name, value in (("tol", tol), ("max_norm", max_norm)):
        if value is not None and is_concrete(value) and not (np.ndim(value) == 0 and float(value) > 0):
            raise ParameterError(f"{name} must be a number > 0, got {value!r}")
    if method is not None and not hasattr(method, "step"):
        raise ParameterError(f"method must be Newton(...) or Damped(...), got {method!r}")
    theory = theory.equivalent()
    if isinstance(init, str):
        state0 = theory.init(init)
    elif isinstance(init, Solution):
        state0 = init.state
    else:
        state0 = init
    method = Newton(follow_flow=theory.monotone) if method is None else method
    flat0, unravel = ravel_pytree(theory.unconstrain(state0))
    tol = _default_tol(flat0.dtype) if tol is None else tol

    def residual(flat):
        state = theory.constrain(unravel(flat))
        return ravel_pytree(theory.unconstrain(_update(theory, state)))[0] - flat

    def scaled(x, r):
        return jnp.max(jnp.abs(r) / (1 + jnp.abs(x)))

    def too_large(x):
        state = ravel_pytree(theory.constrain(unravel(x)))[0]
        return ~(jnp.max(jnp.abs(state)) <= max_norm)

    # Following the flow of a monotone map, a residual below tol is convergence only at a point that
    # attracts the iteration: the uninformed start lies within tol of the repelling q = 0 just past
    # weak recovery. Below 64 bits the Newton estimate of the error must meet tol too. The Jacobian
    # these need is carried to the next Newton step, which would compute it there anyway.
    flow = getattr(method, "follow_flow", False)
    low_precision = jnp.finfo(flat0.dtype).bits < 64

    def change(x, r):
        # max_i |T(s)_i - s_i| / |s_i| in the theory's own variables s (0 where both are 0).
        state = ravel_pytree(theory.constrain(unravel(x)))[0]
        mapped = ravel_pytree(theory.constrain(unravel(x + r)))[0]
        return jnp.max(jnp.where(mapped == state, 0.0, jnp.abs(mapped - state) / jnp.abs(state)))

    def settled(x, r):
        # The iteration moves the theory's own variables by rounding only: where the solver's
        # coordinates resolve more than those variables hold (log(rho - q) near perfect recovery,
        # q = rho - exp(u) rounded to q's precision), the residual has a floor above tol there.
        return change(x, r) <= _ROUNDING * jnp.finfo(x.dtype).eps

    def done(x, r, jac):
        met = (scaled(x, r) <= tol) | settled(x, r)
        if flow:
            met &= _attracting(jac)
        # Near a bifurcation I - T' is nearly singular and a small residual leaves the point far
        # from the fixed point: the Newton step (I - T')^-1 r, the distance to it, must be small.
        # Below 64 bits always (the rounding of r is amplified alike), and a fixed point to
        # rounding (settled) is no exception there: it can be cond(I - T') epsilons off.
        if low_precision:
            met &= _newton_error(jac, x, r) <= tol
        elif flow:
            met &= (_newton_error(jac, x, r) <= tol) | settled(x, r)
        return met

    newton = isinstance(method, Newton)

    def iterate(residual, x0):
        def jacobian(x):
            return jax.jacfwd(residual)(x) if flow or low_precision else None

        def linearised(x):
            # The residual and its Jacobian from one evaluation of the map: jacfwd evaluates it
            # once beside its tangents, and returns it as the auxiliary output.
            def twice(x):
                r = residual(x)
                return r, r

            jac, r = jax.jacfwd(twice, has_aux=True)(x)
            return r, jac

        def running(carry):
            x, r, jac, i = carry
            finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(r))
            return (i < 0) | ~done(x, r, jac) & (i < max_steps) & finite

        def body(carry):
            x, r, jac, i = carry
            if newton:
                return *method.step(linearised, x, r, (i < 0) | ~done(x, r, jac), jac, first=i < 0), i + 1
            x, r = method.step(residual, x, r, ~done(x, r, jac))
            return x, r, jacobian(x), i + 1

        if newton:
            # Linearised at x0 by the loop's first pass (i = -1), a step of length zero.
            init = (x0, jnp.zeros_like(x0), -jnp.eye(x0.size, dtype=x0.dtype), -1)
        else:
            init = (x0, residual(x0), jacobian(x0), 0)
        x, r, jac, i = jax.lax.while_loop(running, body, init)
        res = scaled(x, r)
        diverged = ~jnp.isfinite(res) | too_large(x)
        met = done(x, r, jac)
        # A fixed point to rounding reports the change of its own variables, which met the test.
        res = jnp.where(met & (res > tol) & settled(x, r), change(x, r), res)
        status = jnp.where(
            met, Status.CONVERGED, jnp.where(diverged, Status.DIVERGED, Status.MAX_STEPS)
        )
        # custom_root differentiates its auxiliary outputs too: carry them as floats.
        return x, jnp.stack([i, res, status]).astype(x.dtype)

    def tangent_solve(linear, rhs):
        return jnp.linalg.solve(jax.jacfwd(linear)(rhs), rhs)

    flat, aux = jax.lax.custom_root(residual, flat0, iterate, tangent_solve, has_aux=True)
    aux = jax.lax.stop_gradient(aux)
    iterations, res, status = aux[0].astype(jnp.int32), aux[1], aux[2].astype(jnp.int32)
    state = theory.constrain(unravel(flat))
    observables = theory.observables(state)
    nan = jnp.stack([jnp.any(jnp.isnan(v)) for v in jax.tree_util.tree_leaves(observables)])
    status = jnp.where((status == Status.CONVERGED) & jnp.any(nan), Status.NOT_FINITE, status)
    accurate = jnp.asarray(theory.accurate(state, observables))
    status = jnp.where((status == Status.CONVERGED) & ~accurate, Status.INACCURATE, status)
    return Solution(
        state=state,
        observables=observables,
        converged=status == Status.CONVERGED,
        iterations=iterations,
        residual=res,
        status=status,
    )
