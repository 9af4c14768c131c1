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


class Solution(eqx.Module):
    """The result of :func:`solve` (every field gains the batch axes of a vmapped solve)."""

    state: object
    observables: dict[str, jax.Array]
    converged: jax.Array
    iterations: jax.Array
    residual: jax.Array
    """``max_i |T(x)_i - x_i| / (1 + |x_i|)`` at the returned state, in the solver's coordinates."""
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
    ``x + (1 - damping) r(x)`` is taken. Under ``vmap``, points that have already converged
    (``active`` false) take no backtracking steps, so they cost one residual per iteration.

    With ``follow_flow``, for maps that iteration drives monotonically to their fixed point (the
    state evolution of Bayes-optimal inference from the uninformed state, see
    :attr:`~hdtheory.FixedPointTheory.monotone`): where the Newton direction ``s`` points against the
    iteration's step in some coordinate (``s_i r_i(x) < 0``; about a stable fixed point of a
    monotone map ``(I - T')^-1`` is non-negative and they agree), Newton heads for a repelling fixed
    point (the trivial ``q = 0`` past weak recovery), and the step of iteration is taken instead,
    lengthened while the residual keeps its direction: ``x + t r(x)`` for the last of ``t = 1, 2, 4, ...``
    (``max_backtracks`` doublings) before ``r(x + t r) . r(x) <= 0``, so that it escapes the
    repelling point in a few steps but does not jump over the next fixed point.
    """

    damping: float = 0.5
    max_backtracks: int = 10
    follow_flow: bool = eqx.field(default=False, static=True)

    def step(self, residual, x, r, active):
        jac = jax.jacfwd(residual)(x)
        direction = -jnp.linalg.solve(jac, r)
        norm = jnp.linalg.norm(r)
        fallback = x + (1 - self.damping) * r
        # About a stable fixed point of a monotone map (I - T')^-1 is non-negative, so that a Newton
        # step against the residual in some coordinate heads for a repelling point.
        flow = jnp.asarray(self.follow_flow) & active & jnp.any(direction * r < 0)
        direction = jnp.where(flow, r, direction)

        def accepted(t, r_trial):
            finite = jnp.all(jnp.isfinite(r_trial))
            decrease = jnp.linalg.norm(r_trial) <= (1 - 1e-4 * t) * norm
            return finite & jnp.where(flow, jnp.vdot(r_trial, r) > 0, decrease)

        def searching(carry):
            t, _, r_trial, k, _, _ = carry
            ok = accepted(t, r_trial)
            # Newton: halve until accepted. Flow: double while the direction holds.
            return active & jnp.where(flow, ok, ~ok) & (k <= self.max_backtracks)

        def next_trial(carry):
            t, x_trial, r_trial, k, x_kept, r_kept = carry
            x_kept, r_kept = jnp.where(flow, x_trial, x_kept), jnp.where(flow, r_trial, r_kept)
            t = jnp.where(flow, 2 * t, 0.5 * t)
            # After the last halving, the Newton trial is the damped step, taken whatever its residual.
            last = ~flow & (k >= self.max_backtracks)
            x_trial = jnp.where(last, fallback, x + t * direction)
            return t, x_trial, residual(x_trial), k + 1, x_kept, r_kept

        x1 = x + direction
        r1 = residual(x1)
        init = (jnp.ones((), x.dtype), x1, r1, 0, x1, r1)
        _, x_new, r_new, _, x_kept, r_kept = jax.lax.while_loop(searching, next_trial, init)
        # The flow keeps its last trial in the direction (the plain iteration step at least).
        return jnp.where(flow, x_kept, x_new), jnp.where(flow, r_kept, r_new)


def _default_tol(dtype) -> float:
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5


def _error_estimate(residual, x, r):
    """``max_i |e_i| / (1 + |x_i|)`` for the Newton estimate ``e = (I - T')^{-1} r`` of ``x - x*``.

    Below 64 bits a residual under the tolerance is not an error under it where ``I - T'`` is
    nearly singular (near an interpolation peak), and the rounding of ``r`` is amplified alike:
    a solve is converged only when this estimate meets the tolerance too.
    """
    step = jnp.linalg.solve(jax.jacfwd(residual)(x), r)
    return jnp.where(jnp.all(jnp.isfinite(step)), jnp.max(jnp.abs(step) / (1 + jnp.abs(x))), jnp.inf)


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
            float64 and 1e-5 in float32. Below 64 bits the Newton estimate of the error,
            ``(I - T')^{-1} (T(x) - x)``, must meet it too; where it cannot (an ill-conditioned
            fixed point), the solve ends ``Status.MAX_STEPS``, not converged.
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
        return ravel_pytree(theory.unconstrain(theory.update(state)))[0] - flat

    def scaled(x, r):
        return jnp.max(jnp.abs(r) / (1 + jnp.abs(x)))

    def too_large(x):
        state = ravel_pytree(theory.constrain(unravel(x)))[0]
        return ~(jnp.max(jnp.abs(state)) <= max_norm)

    def iterate(residual, x0):
        def running(carry):
            x, r, i = carry
            finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(r))
            return (scaled(x, r) > tol) & (i < max_steps) & finite

        def body(carry):
            x, r, i = carry
            x, r = method.step(residual, x, r, scaled(x, r) > tol)
            return x, r, i + 1

        x, r, i = jax.lax.while_loop(running, body, (x0, residual(x0), 0))
        res = scaled(x, r)
        diverged = ~jnp.isfinite(res) | too_large(x)
        met = res <= tol
        if jnp.finfo(x.dtype).bits < 64:
            met &= _error_estimate(residual, x, r) <= tol
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
    return Solution(
        state=state,
        observables=theory.observables(state),
        converged=status == Status.CONVERGED,
        iterations=iterations,
        residual=res,
        status=status,
    )
