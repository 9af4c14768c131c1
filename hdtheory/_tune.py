r"""Hyperparameters by gradient descent on an asymptotic objective: :func:`tune`.

``tune(theory, objective, over)`` minimises ``objective(observables)`` over the fields named in
``over``, each optimised in an unconstrained coordinate ``u`` (:class:`Log`: ``x = exp(u)`` for a
regulariser; :class:`Softplus`: ``x = log(1 + exp(u))`` for a temperature or a learning rate;
:class:`Identity`) inside a box of bounds. Every evaluation solves the theory (warm-started from the
previous fixed point), and its gradient comes from the implicit function theorem through the fixed
point, so one iteration costs about two solves. The optimiser is optax (L-BFGS with a zoom line search
by default); the whole loop is one ``lax.while_loop``, so ``tune`` is ``jit``-able and ``vmap``-able
over the theory's other fields: the optimal ``lam(alpha)`` over a grid of ``alpha`` is one compiled
call.

**Boundaries.** A coordinate that reaches a bound while the gradient still points out of the box stops
there and is reported in ``at_boundary`` (``-1`` low, ``+1`` high): an optimum at ``lam -> 0`` or
``lam -> infinity`` is a physical regime (for example the max-margin limit on separable data), not a
failure; where the theory's domain holds the limit itself (``lam = 0``), the objective there is
reported too (``limit_objective``). ``converged`` means that the gradient projected on the box is at
most ``gtol`` times the objective.

**Flat stretches and failed points.** A vanishing gradient is not an optimum where the objective is
flat (the hinge test error for small ``lam``, in the max-margin regime). After L-BFGS stops, the
objective is evaluated half a grid step either side of the point along each coordinate; where one
of these equals it (a flat stretch) or the point's objective is not finite, on a grid of 16 points
per coordinate spanning the box (``u +- 10 (1 + |u|)`` where it is unbounded), each solved from the
initial state. A point better than the stopping point by more than ``sqrt(eps)`` (relative) starts
another round of L-BFGS (at most four rounds); a better point still found after the last round
leaves ``converged`` false. A step onto a point where the objective is not finite (the solve failed,
or the objective is NaN) is undone and ends the round there, so that the returned objective is that
of the last finite point. This search runs for fixed-point theories only.

**ODE theories.** For a theory of the dynamics, the objective is taken at a time ``t1`` (an option
of ``tune``) and its gradient comes from :func:`hdtheory.integrate`'s adjoint: a constant learning
rate, or the parameters of a schedule held by the theory, minimising the error at that time.

**Derivatives of the optimum.** The tuned parameters are differentiable with respect to every other
field of the theory by the implicit function theorem on the optimality condition
``grad_u objective(u*, theta) = 0``: ``du*/dtheta = -H^{-1} d^2 objective / du dtheta``, with ``H`` the
Hessian in ``u``, itself obtained by differentiating through the fixed point twice. Coordinates held
at a bound have zero derivative. The formula holds at the optimum, so the derivative is as accurate
as the optimum is located: where the objective is flat in a parameter, pass a tighter ``gtol``
(1e-12 makes the derivative of the logistic ``lam*`` in ``alpha`` agree with finite differences to
1e-7, where the default gives 3e-4). (For ODE theories this needs forward-mode differentiation through
the integration, which the default reverse-mode adjoint does not offer.)
"""

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._fixed_point import solve
from ._theory import FixedPointTheory, Interval, ParameterError, Theory, check_in, parameters


class Transform(eqx.Module):
    """A map from an unconstrained coordinate ``u`` to a parameter ``x``, with bounds on ``x``.

    ``limit`` is the value that ``x`` tends to as ``u -> -infinity`` (0 for :class:`Log` and
    :class:`Softplus`): when the optimum runs to the low bound, the theory is also solved there.
    """

    low: float
    high: float
    limit: float | None = eqx.field(default=None, static=True)

    def forward(self, u):
        raise NotImplementedError

    def inverse(self, x):
        raise NotImplementedError


class Log(Transform):
    """``x = exp(u)``: a positive parameter on a log scale (a regulariser); default box [1e-8, 1e8]."""

    low: float = 1e-8
    high: float = 1e8
    limit: float | None = eqx.field(default=0.0, static=True)

    def forward(self, u):
        return jnp.exp(u)

    def inverse(self, x):
        return jnp.log(x)


class Softplus(Transform):
    """``x = log(1 + exp(u))``: a positive parameter, linear when large (a temperature, a learning
    rate); default box [1e-8, 1e8]."""

    low: float = 1e-8
    high: float = 1e8
    limit: float | None = eqx.field(default=0.0, static=True)

    def forward(self, u):
        return jax.nn.softplus(u)

    def inverse(self, x):
        return x + jnp.log(-jnp.expm1(-x))


class Identity(Transform):
    """``x = u``: an unconstrained parameter; default box the real line."""

    low: float = -math.inf
    high: float = math.inf

    def forward(self, u):
        return u

    def inverse(self, x):
        return x


TRANSFORMS = {"log": Log, "softplus": Softplus, "identity": Identity}


class TuneResult(eqx.Module):
    """The result of :func:`tune` (every field gains the batch axes of a vmapped call)."""

    theory: Theory
    """The theory with the tuned values in place."""
    params: dict[str, jax.Array]
    """The tuned values, by field name."""
    objective: jax.Array
    """The objective at the returned parameters."""
    limit_objective: jax.Array
    """Where a field stopped at its low bound: the objective in the limit beyond it (the field at
    its transform's ``limit``, e.g. ``lam = 0``) when the theory's domain holds that value and its fixed
    point converges there; NaN otherwise."""
    grad_norm: jax.Array
    """Sup norm of the gradient in the unconstrained coordinates, projected on the box."""
    converged: jax.Array
    """``grad_norm <= gtol |objective|`` and the fixed point at the optimum converged."""
    at_boundary: dict[str, jax.Array]
    """Per field (per entry of an array field): ``-1`` stopped at the low bound, ``+1`` at the high
    bound, ``0`` interior."""
    iterations: jax.Array
    evaluations: jax.Array
    """Number of solves (objective and gradient evaluations) the optimisation used."""
    history: dict[str, jax.Array]
    """``objective`` and each tuned field per iteration (leading axis of length ``max_iterations``, NaN
    after the end)."""
    solution: Any
    """The fixed point (a :class:`~hdtheory.Solution`) or the trajectory at the optimum."""


def _transforms(theory, over) -> dict[str, Transform]:
    fields = parameters(type(theory))
    if not over:
        raise ParameterError("'over' must name at least one field to tune")
    result = {}
    for name, spec in over.items():
        if name not in fields or "domain" not in fields[name].metadata:
            numeric = [k for k, f in fields.items() if "domain" in f.metadata]
            raise ParameterError(f"cannot tune {name!r}: the numeric parameters are {', '.join(numeric)}")
        if isinstance(spec, str):
            if spec not in TRANSFORMS:
                raise ParameterError(
                    f"transform for {name!r} must be one of {', '.join(TRANSFORMS)}, got {spec!r}"
                )
            spec = TRANSFORMS[spec]()
        if not isinstance(spec, Transform):
            raise ParameterError(f"transform for {name!r} must be a name or a Transform, got {spec!r}")
        if not spec.low < spec.high:
            raise ParameterError(f"bounds for {name!r} must satisfy low < high, got {spec.low}, {spec.high}")
        check_in(name, getattr(theory, name), Interval(spec.low, spec.high), " (the tuning bounds)")
        domain = fields[name].metadata["domain"]
        for bound in (spec.low, spec.high):
            if math.isfinite(bound):
                check_in(f"{name} bound", bound, domain, f" (the domain of {name!r})")
        if spec.limit is not None and not domain.contains(spec.limit):
            spec = dataclasses.replace(spec, limit=None)
        result[name] = spec
    return result


class _Observable(eqx.Module):
    name: str = eqx.field(static=True)

    def __call__(self, observables):
        return observables[self.name]


def _objective_fn(objective) -> Callable:
    if callable(objective):
        return objective
    if isinstance(objective, str):
        return _Observable(objective)
    raise ParameterError(f"objective must be an observable's name or a function, got {objective!r}")


def _linesearch_steps(opt_state) -> jax.Array:
    steps = optax.tree.get(opt_state, "num_linesearch_steps", default=None)
    return jnp.asarray(0 if steps is None else steps)


def tune(
    theory: Theory,
    objective: str | Callable[[dict], jax.Array],
    over: Mapping[str, str | Transform],
    *,
    optimizer: optax.GradientTransformation | None = None,
    max_iterations: int = 50,
    gtol: float | None = None,
    init="uninformed",
    **options,
) -> TuneResult:
    """Minimise an asymptotic objective over some of a theory's fields.

    Args:
        theory: a fixed-point or an ODE theory; the fields in ``over`` start from its values.
        objective: an observable's name (``"test_error"``) or a function of the observables' dict
            returning a scalar.
        over: the fields to tune, each with a transform: ``"log"``, ``"softplus"``, ``"identity"``
            or a :class:`Transform` with bounds, e.g. ``{"lam": Log(low=1e-6, high=1e3)}``.
        optimizer: an optax transformation of the unconstrained coordinates; L-BFGS with a zoom line
            search by default. First-order methods work too, e.g. ``optax.adam(0.05)``.
        max_iterations: the optimiser's iteration budget.
        gtol: relative convergence threshold: the optimisation stops when the projected gradient's
            sup norm in the unconstrained coordinates is at most ``gtol |objective|`` (relative, so
            that an objective that vanishes as a power of a parameter, such as the noiseless ridge
            error as ``lam -> 0``, runs on to the bound); 1e-9 in float64 and 1e-4 in float32 by
            default.
        init: the initial state of the first solve (later solves start from the last fixed point).
        **options: for a fixed-point theory, passed to :func:`hdtheory.solve` (``tol``,
            ``max_steps``, ``method``); for an ODE theory, ``t1`` (required: the time at which the
            objective is taken) and options of :func:`hdtheory.integrate`.

    Returns:
        A :class:`TuneResult`. It never raises for a setting in the domain: an optimum on a bound is
        in ``at_boundary``, an optimisation that ran out of steps has ``converged`` false.
    """
    if not isinstance(theory, Theory):
        raise ParameterError(f"tune needs a theory, got {type(theory).__name__}")
    if not isinstance(theory, FixedPointTheory) and "t1" not in options:
        raise ParameterError("tuning an ODE theory needs the time t1 at which the objective is taken")
    if not (type(max_iterations) is int and max_iterations >= 1):
        raise ParameterError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    if gtol is not None and not (isinstance(gtol, (int, float)) and gtol > 0):
        raise ParameterError(f"gtol must be a number > 0, got {gtol!r}")
    if isinstance(theory, FixedPointTheory) and isinstance(init, str) and init not in ("uninformed", "informed"):
        raise ParameterError(f"init must be 'uninformed', 'informed' or a state, got {init!r}")
    transforms = _transforms(theory, over)
    if isinstance(objective, str):
        # The observables' names, from an abstract evaluation (nothing is compiled).
        if isinstance(theory, FixedPointTheory):
            names = jax.eval_shape(lambda th: th.observables(th.init()), theory)
        else:
            names = jax.eval_shape(lambda th: th.observables(jnp.zeros(()), th.init()), theory)
        if objective not in names:
            raise ParameterError(f"objective must be one of {', '.join(names)} or a function, got {objective!r}")
    shapes = tuple(jnp.shape(getattr(theory, n)) for n in transforms)
    problem = _Problem(_objective_fn(objective), transforms, shapes, options)
    return _tune(theory, problem, optimizer, max_iterations, gtol, init)


class _Problem(eqx.Module):
    """The objective as a function of the unconstrained coordinates.

    A fixed-point theory is solved from a warm start (the last fixed point); an ODE theory is
    integrated to the time ``t1`` in ``options`` and its observables taken there.
    """

    objective: Callable
    transforms: dict[str, Transform]
    shapes: tuple[tuple[int, ...], ...]
    options: dict

    def split(self, flat):
        """The flat coordinates cut into one array per field, in the field's shape."""
        sizes = [math.prod(shape) for shape in self.shapes]
        pieces = jnp.split(flat, list(itertools.accumulate(sizes))[:-1])
        return [piece.reshape(shape) for piece, shape in zip(pieces, self.shapes)]

    def flatten(self, arrays):
        return jnp.concatenate([jnp.ravel(jnp.broadcast_to(a, s)) for a, s in zip(arrays, self.shapes)])

    def values(self, u):
        return [t.forward(x) for x, t in zip(self.split(u), self.transforms.values())]

    def placed(self, theory, u, values=None):
        names = tuple(self.transforms)
        values = self.values(u) if values is None else values
        return eqx.tree_at(lambda th: [getattr(th, n) for n in names], theory, values)

    def start(self, theory, init):
        """The first warm start: a fixed-point theory's initial state; nothing for an ODE theory."""
        if isinstance(theory, FixedPointTheory):
            return theory.init(init) if isinstance(init, str) else init
        return None

    def evaluate(self, theory, warm):
        """``(objective, ok, next warm start, solution or trajectory)`` of one setting."""
        if isinstance(theory, FixedPointTheory):
            solution = solve(theory, warm, **self.options)
            ok = solution.converged
            warm = jax.tree.map(lambda a, b: jnp.where(ok, a, b), solution.state, warm)
            return self.objective(solution.observables), ok, warm, solution
        from ._integrate import integrate

        options = dict(self.options)
        t1 = options.pop("t1")
        trajectory = integrate(theory, t1, saveat=jnp.reshape(jnp.asarray(t1), (1,)), **options)
        observables = {k: v[-1] for k, v in trajectory.observables.items()}
        return self.objective(observables), trajectory.success, warm, trajectory

    def __call__(self, theory, u, warm):
        value, ok, warm, solution = self.evaluate(self.placed(theory, u), warm)
        # A point where the theory fails, or where the objective is not finite, is rejected.
        return jnp.where(ok & jnp.isfinite(value), value, jnp.inf), (warm, ok, solution)


# Points per coordinate of the coarse bracket that a flat stretch triggers, and the rounds of L-BFGS.
_GRID = 16
_ROUNDS = 4


def _where(condition, new, old):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


@eqx.filter_jit
def _tune(theory, problem, optimizer, max_iterations, gtol, init):
    names = tuple(problem.transforms)
    optimizer = optax.lbfgs() if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformationExtraArgs):
        optimizer = optax.with_extra_args_support(optimizer)

    dtype = jnp.result_type(*(getattr(theory, n) for n in names), float)
    gtol = (1e-9 if jnp.finfo(dtype).bits >= 64 else 1e-4) if gtol is None else gtol
    # Two objective values closer than this (relative) are equal: a flat stretch.
    margin = jnp.sqrt(jnp.finfo(dtype).eps)

    def coordinate(bound):
        return problem.flatten([t.inverse(jnp.asarray(bound(n, t), dtype)) for n, t in problem.transforms.items()])

    u0 = coordinate(lambda n, t: getattr(theory, n))
    low, high = coordinate(lambda n, t: t.low), coordinate(lambda n, t: t.high)

    fixed = jax.lax.stop_gradient(theory)
    value_and_grad = jax.value_and_grad(lambda u, warm: problem(fixed, u, warm), has_aux=True)

    # A coordinate this close to a bound (in u) counts as on it.
    at_low, at_high = (
        (lambda u: u <= low + 1e-6 * (1 + jnp.abs(low))),
        (lambda u: u >= high - 1e-6 * (1 + jnp.abs(high))),
    )

    def projected(u, grad):
        outward = (at_low(u) & (grad > 0)) | (at_high(u) & (grad < 0))
        return jnp.where(outward, 0.0, grad), outward

    def small(value, grad, u):
        return jnp.max(jnp.abs(projected(u, grad)[0])) <= gtol * jnp.abs(value)

    def evaluate(u, warm):
        (value, (warm, _, _)), grad = value_and_grad(u, warm)
        return value, grad, warm

    def running(carry):
        u, _, _, value, grad, k, _, _, decrease, failed = carry
        stalled = jnp.abs(decrease) <= 4 * jnp.finfo(dtype).eps * jnp.abs(value)
        return (k < max_iterations) & ~small(value, grad, u) & ~failed & ~stalled

    def body(carry):
        u, opt_state, warm, value, grad, k, evaluations, history, _, _ = carry
        history = history.at[k].set(jnp.concatenate([value[None], problem.flatten(problem.values(u))]))
        pg, _ = projected(u, grad)
        updates, new_state = optimizer.update(
            pg,
            opt_state,
            u,
            value=value,
            grad=pg,
            value_fn=lambda v, warm: problem(fixed, v, warm)[0],
            warm=warm,
        )
        new_u = jnp.clip(u + updates, low, high)
        new_value, new_grad, new_warm = evaluate(new_u, warm)
        evaluations = evaluations + 1 + _linesearch_steps(new_state)
        # A step onto a point where the objective is not finite is undone, and the descent stops there.
        failed = ~jnp.isfinite(new_value)
        u, opt_state, warm, decrease, value, grad = _where(
            failed,
            (u, opt_state, warm, jnp.zeros_like(value), value, grad),
            (new_u, new_state, new_warm, value - new_value, new_value, new_grad),
        )
        return u, opt_state, warm, value, grad, k + 1, evaluations, history, decrease, failed

    def descend(u, warm, k, evaluations, history):
        """L-BFGS from ``u``; ends at the last point where the objective is finite."""
        value, grad, warm = evaluate(u, warm)
        inf = jnp.asarray(jnp.inf, dtype)
        carry = (u, optimizer.init(u), warm, value, grad, k, evaluations + 1, history, inf, ~jnp.isfinite(value))
        u, _, warm, value, grad, k, evaluations, history, _, _ = jax.lax.while_loop(running, body, carry)
        return u, warm, value, grad, k, evaluations, history

    # The bracket: along each coordinate, _GRID points spanning the box (or u +- 10 (1 + |u|) where
    # the box is unbounded), and first the two points half a grid step either side of u.
    def span(u):
        lo = jnp.where(jnp.isfinite(low), low, u - 10 * (1 + jnp.abs(u)))
        hi = jnp.where(jnp.isfinite(high), high, u + 10 * (1 + jnp.abs(u)))
        return lo, (hi - lo) / (_GRID - 1)

    def bracket_points(u, j):
        lo, step = span(u)
        eye = jnp.eye(u.size, dtype=dtype)
        probes = jnp.stack([u - 0.5 * step, u + 0.5 * step])
        grid = lo + step * (2 * (j - 1) + jnp.arange(2, dtype=dtype))[:, None]
        along = jnp.where(j == 0, probes, grid)  # (2, size): two values per coordinate
        points = u + eye[None] * (along[:, :, None] - u[None, :, None])  # (2, size, size)
        return jnp.clip(points.reshape(-1, u.size), low, high)

    def bracket_values(points, starts):
        """The objective at each point, and its fixed point (the warm start of a next round)."""
        return jax.lax.map(lambda a: (lambda out: (out[0], out[1][0]))(problem(fixed, *a)), (points, starts))

    def search(u, value, warm):
        """``(best point, its objective, its fixed point, solves)`` of the bracket around ``u``.

        First the two neighbours of each coordinate; where one of them differs from ``u`` but not
        its objective (a flat stretch, where the gradient vanishes although ``u`` is no optimum), or
        where the objective at ``u`` is not finite, the whole grid. Every point is solved from the
        initial state ``init``, not from ``u``'s fixed point: a warm start far from its fixed point
        is where a solve is likeliest to fail. Written as a loop so that, under ``vmap``, the grid
        costs nothing unless some point needs it; the points are solved one after the other
        (``lax.map``), which compiles one solve instead of a batched one.
        """

        def more(carry):
            j, _, _, _, flat = carry
            return (j == 0) | (flat & (j <= _GRID // 2))

        def chunk(carry):
            j, best_u, best_v, best_warm, flat = carry
            points = bracket_points(u, j)
            cold = jax.vmap(lambda v: problem.start(problem.placed(fixed, v), init))(points)
            values, states = bracket_values(points, cold)
            # A point clipped back onto u is u itself, whatever the precision of its objective.
            moved = jnp.any(points != u, axis=1)
            values = jnp.where(moved, values, jnp.inf)
            level = jnp.abs(values - value) <= margin * jnp.abs(value)
            flat = jnp.where(j == 0, jnp.any(moved & level) | ~jnp.isfinite(value), flat)
            i = jnp.argmin(values)
            better = values[i] < best_v
            best = (points[i], values[i], jax.tree.map(lambda a: a[i], states))
            return (j + 1, *_where(better, best, (best_u, best_v, best_warm)), flat)

        inf = jnp.asarray(jnp.inf, dtype)
        j, best_u, best_v, best_warm, _ = jax.lax.while_loop(more, chunk, (0, u, inf, warm, jnp.asarray(False)))
        return best_u, best_v, best_warm, 2 * u.size * j

    bracketed = isinstance(theory, FixedPointTheory)

    def rounds_running(carry):
        return (carry[0] == 0) | carry[1]

    def round_body(carry):
        """L-BFGS, then the bracket: a better point found there starts another round."""
        rounds, _, _, u_next, start, _, _, k, evaluations, history = carry
        u, warm, value, grad, k, evaluations, history = descend(u_next, start, k, evaluations, history)
        restart = jnp.asarray(False)
        if bracketed:
            best_u, best_v, best_warm, solves = search(u, value, warm)
            evaluations = evaluations + solves
            restart = best_v < jnp.where(jnp.isfinite(value), value - margin * jnp.abs(value), jnp.inf)
            u_next, start = _where(restart, (best_u, best_warm), (u, warm))
        # A better point found after the last round is reported as such: not converged.
        pending = restart & (rounds + 1 >= _ROUNDS)
        return rounds + 1, restart & ~pending, pending, u_next, start, warm, (u, value, grad), k, evaluations, history

    history = jnp.full((max_iterations, 1 + u0.size), jnp.nan, dtype)
    warm0 = problem.start(fixed, init)
    zero = jnp.zeros((), dtype)
    carry = (0, jnp.asarray(False), jnp.asarray(False), u0, warm0, warm0, (u0, zero, u0), 0, 0, history)
    carry = jax.lax.while_loop(rounds_running, round_body, carry)
    _, _, pending, _, _, warm, (u, _, grad), k, evaluations, history = carry

    pg, held = projected(u, grad)
    u = _optimum(jax.lax.stop_gradient(u), theory, problem, warm, held)
    value, (_, ok, solution) = problem(theory, u, warm)
    limit_objective = _limit_objective(theory, problem, u, held & at_low(u), warm)
    side = jnp.where(held & at_low(u), -1, jnp.where(held & at_high(u), 1, 0))
    grad_norm = jnp.max(jnp.abs(pg))
    tuned = problem.placed(theory, u)
    return TuneResult(
        theory=tuned,
        params={n: getattr(tuned, n) for n in names},
        objective=value,
        limit_objective=limit_objective,
        grad_norm=grad_norm,
        converged=small(value, grad, u) & ok & jnp.isfinite(value) & ~pending,
        at_boundary=dict(zip(names, problem.split(side))),
        iterations=k,
        evaluations=evaluations,
        history={"objective": history[:, 0]}
        | {n: jax.vmap(problem.split)(history[:, 1:])[i] for i, n in enumerate(names)},
        solution=solution,
    )


def _limit_objective(theory, problem, u, at_low, warm):
    limits = [t.limit for t in problem.transforms.values()]
    if all(limit is None for limit in limits):
        return jnp.full((), jnp.nan, u.dtype)
    values = [
        x if limit is None else jnp.where(low, limit, x)
        for x, low, limit in zip(problem.values(u), problem.split(at_low), limits)
    ]
    value, ok, _, _ = problem.evaluate(problem.placed(theory, u, values), warm)
    return jnp.where(jnp.any(at_low) & ok, value, jnp.nan)


@eqx.filter_custom_jvp
def _optimum(u, theory, problem, warm, held):
    """``u``, whose derivative with respect to ``theory`` follows the implicit function theorem.

    The optimality condition ``F(u, theory) = 0`` is ``grad_u objective = 0`` on the free
    coordinates and ``u = const`` on those ``held`` at a bound, so ``du = -(dF/du)^{-1} dF/dtheory``;
    ``dF/du`` is the Hessian of the objective on the free block, formed only when a derivative is
    asked for.
    """
    del theory, problem, warm, held
    return u


@_optimum.def_jvp
def _optimum_jvp(primals, tangents):
    u, theory, problem, warm, held = primals
    t_theory = tangents[1]

    def optimality(v, th):
        gradient = jax.grad(lambda w: problem(th, w, warm)[0])(v)
        return jnp.where(held, v - u, gradient)

    jacobian = jax.jacfwd(optimality)(u, theory)
    _, rhs = eqx.filter_jvp(lambda th: optimality(u, th), (theory,), (t_theory,))
    return u, -jnp.linalg.solve(jacobian, rhs)
