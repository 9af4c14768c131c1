r"""Hyperparameters by gradient descent on an asymptotic objective: :func:`tune`.

``tune(theory, objective, over)`` minimises ``objective(observables)`` over the fields named in
``over``, each optimised in an unconstrained coordinate ``u`` (:class:`Log`: ``x = exp(u)`` for a
regulariser; :class:`Softplus`: ``x = log(1 + exp(u))`` for a temperature or a learning rate;
:class:`Identity`) inside a box of bounds. Every evaluation solves the theory (warm-started from the
previous fixed point), and its gradient comes from the implicit function theorem through the fixed
point. The default optimiser is BFGS (the coordinates are few: a dense inverse Hessian) with a
backtracking line search on the sufficient decrease (Armijo) condition; any optax transformation can
replace it. The whole search, descent, bracket and limit alike, is one ``lax.while_loop`` that solves
the theory once per iteration at a point its phase chooses: the compiled program holds one solve with
its implicit derivative, however many roles that solve plays, so ``tune`` compiles in about the time
of a few solves. It is ``jit``-able and ``vmap``-able over the theory's other fields: the optimal
``lam(alpha)`` over a grid of ``alpha`` is one compiled call, in which each setting moves through its
own phases and the batch costs as many solves as its longest search.

**Line search.** A step is taken when it decreases the objective sufficiently, or, near the
optimum, where the objective changes by less than the solver's precision (``sqrt(eps)``, relative),
when the value stays level and the projected gradient shrinks; otherwise the step shrinks to the
minimiser of the quadratic through the two values and the slope (within ``[0.1, 0.5]`` of it), at
most 20 times. Before any curvature is known, the step is a unit step along the steepest descent in
the sup norm (a factor ``e`` in ``lam`` under :class:`Log`).

**Boundaries.** A coordinate that reaches a bound while the gradient still points out of the box stops
there and is reported in ``at_boundary`` (``-1`` low, ``+1`` high): an optimum at ``lam -> 0`` or
``lam -> infinity`` is a physical regime (for example the max-margin limit on separable data), not a
failure; where the theory's domain holds the limit itself (``lam = 0``), the objective there is
reported too (``limit_objective``). ``converged`` means that the gradient projected on the box is at
most ``gtol`` times the objective.

**Flat stretches and failed points.** A vanishing gradient is not an optimum where the objective is
flat (the hinge test error for small ``lam``, in the max-margin regime). After the descent stops, the
objective is evaluated half a grid step either side of the point along each coordinate; where one
of these equals it (a flat stretch) or the point's objective is not finite, on a grid of 16 points
per coordinate spanning the box (``u +- 10 (1 + |u|)`` where it is unbounded), each solved from the
initial state. A point better than the stopping point by more than ``sqrt(eps)`` (relative) starts
another round of descent (at most four rounds); a better point still found after the last round
leaves ``converged`` false. A step onto a point where the objective is not finite (the solve failed,
or the objective is NaN) is undone and ends the round there, so that the returned objective is that
of the last finite point (the line search first shrinks the step, as above). This search runs for
fixed-point theories only.

**Batched search.** ``search="batched"`` (fixed-point theories) spends the batch axis that a GPU
fills instead of a sequence of solves: the objective on a grid of ``points`` values per coordinate
(32 by default, ``points ** len(u)`` in all) spanning the box (or the range of the bracket above
where it is unbounded), every point solved from the initial state in one vmapped call; then, from
the best point, Newton's method on ``grad_u objective = 0`` with the exact Hessian (forward mode over
the implicit gradient through the fixed point, as for the derivatives of the optimum below), one
solve per iteration warm-started from the last fixed point, at most ``max_iterations`` of them. In
one coordinate the best point's neighbours on the grid bound the optimum (the box beyond the grid's
edge), and every evaluation tightens that bracket (the optimum lies on the side an improving
point's gradient points away from, and short of a point that does not improve); in several, the box
is the bracket (a coarse grid's best cell need not hold the optimum). The Newton step uses the
Hessian's eigenvalues in absolute value (a descent direction; Newton's own step where the Hessian is
positive definite); a step that leaves the bracket is shortened to reach at most half way to the
bracket's side along each coordinate (bisection in one coordinate). A trial is accepted under the
line search's test above, else halved. Boundaries, the limit beyond a low bound, ``converged`` and
the derivatives of the optimum are those of the default search; the grid, which spans the box from
the start, takes the place of the flat-stretch bracket. ``evaluations`` counts the grid's solves and
Newton's.

**ODE theories.** For a theory of the dynamics, the objective is taken at a time ``t1`` (an option
of ``tune``) and its gradient comes from :func:`hdtheory.integrate`'s adjoint: a constant learning
rate, or the parameters of a schedule held by the theory, minimising the error at that time.

**Derivatives of the optimum.** The tuned parameters are differentiable with respect to every other
field of the theory by the implicit function theorem on the optimality condition
``grad_u objective(u*, theta) = 0``: ``du*/dtheta = -H^{-1} d^2 objective / du dtheta``, with ``H`` the
Hessian in ``u``, itself obtained by differentiating through the fixed point twice. (The objective
and the solution returned are those the search found; their derivatives come from one more solve at
the optimum, compiled only where a derivative is taken.) Coordinates held
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
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._fixed_point import solve
from ._theory import FixedPointTheory, Interval, ParameterError, Theory, check_in, parameters

if TYPE_CHECKING:  # imported where an optimiser is given: optax takes longer to import than most answers
    import optax


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
    """The objective that is one scalar observable, checked where the search first traces the
    observables (before anything compiles): a check of its own would trace them once more, which
    costs about as much as the rest of a warm start from the compilation cache."""

    name: str = eqx.field(static=True)

    def __call__(self, observables):
        value = observables.get(self.name)
        if value is None or jnp.shape(value) != ():
            scalars = [k for k, v in observables.items() if jnp.shape(v) == ()]
            what = "" if value is None else f" (of shape {jnp.shape(value)})"
            raise ParameterError(f"objective must be one of the scalar observables {', '.join(scalars)} "
                                 f"or a function, got {self.name!r}{what}")
        return value


def _objective_fn(objective) -> Callable:
    if callable(objective):
        return objective
    if isinstance(objective, str):
        return _Observable(objective)
    raise ParameterError(f"objective must be an observable's name or a function, got {objective!r}")


def _linesearch_steps(opt_state) -> jax.Array:
    import optax

    steps = optax.tree.get(opt_state, "num_linesearch_steps", default=None)
    return jnp.asarray(0 if steps is None else steps)


def tune(
    theory: Theory,
    objective: str | Callable[[dict], jax.Array],
    over: Mapping[str, str | Transform],
    *,
    optimizer: "optax.GradientTransformation | None" = None,
    max_iterations: int = 50,
    gtol: float | None = None,
    init="uninformed",
    search: str = "descent",
    points: int = 32,
    **options,
) -> TuneResult:
    """Minimise an asymptotic objective over some of a theory's fields.

    Args:
        theory: a fixed-point or an ODE theory; the fields in ``over`` start from its values.
        objective: an observable's name (``"test_error"``) or a function of the observables' dict
            returning a scalar.
        over: the fields to tune, each with a transform: ``"log"``, ``"softplus"``, ``"identity"``
            or a :class:`Transform` with bounds, e.g. ``{"lam": Log(low=1e-6, high=1e3)}``.
        optimizer: an optax transformation of the unconstrained coordinates, whose every step is
            taken (where the objective is finite), e.g. ``optax.adam(0.05)``; by default BFGS with a
            backtracking line search (the module docstring).
        max_iterations: the optimiser's iteration budget.
        gtol: relative convergence threshold: the optimisation stops when the projected gradient's
            sup norm in the unconstrained coordinates is at most ``gtol |objective|`` (relative, so
            that an objective that vanishes as a power of a parameter, such as the noiseless ridge
            error as ``lam -> 0``, runs on to the bound); 1e-9 in float64 and 1e-4 in float32 by
            default.
        init: the initial state of the first solve (later solves start from the last fixed point).
        search: ``"descent"`` (the default: BFGS or ``optimizer``, one solve per iteration) or
            ``"batched"`` (fixed-point theories: ``points`` per coordinate solved in one vmapped
            call, then Newton's method with the exact Hessian; the module docstring).
        points: the batched search's grid points per coordinate (``points ** len(u)`` solves).
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
    if search not in ("descent", "batched"):
        raise ParameterError(f"search must be 'descent' or 'batched', got {search!r}")
    if search == "batched":
        if not isinstance(theory, FixedPointTheory):
            raise ParameterError("search='batched' tunes fixed-point theories only")
        if optimizer is not None:
            raise ParameterError("search='batched' takes Newton steps: it takes no optimizer")
        if not (type(points) is int and points >= 3):
            raise ParameterError(f"points must be an integer >= 3, got {points!r}")
    transforms = _transforms(theory, over)
    shapes = tuple(jnp.shape(getattr(theory, n)) for n in transforms)
    problem = _Problem(_objective_fn(objective), transforms, shapes, options)
    return _tune(theory, problem, optimizer, max_iterations, gtol, init, points if search == "batched" else None)


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

    def __call__(self, theory, u, warm, at_limit=None):
        """``(objective, (warm start, ok, solution, raw objective))`` at ``u``; the fields where
        ``at_limit`` holds (a mask in the shape of ``u``) take their transform's limit instead."""
        values = self.values(u)
        if at_limit is not None:
            values = [
                x if t.limit is None else jnp.where(mask, jnp.asarray(t.limit, x.dtype), x)
                for x, mask, t in zip(values, self.split(at_limit), self.transforms.values())
            ]
        raw, ok, warm, solution = self.evaluate(self.placed(theory, u, values), warm)
        # A point where the theory fails, or where the objective is not finite, is rejected.
        return jnp.where(ok & jnp.isfinite(raw), raw, jnp.inf), (warm, ok, solution, raw)


# Points per coordinate of the coarse bracket that a flat stretch triggers, the rounds of descent, and
# the evaluations one line search may spend.
_GRID = 16
_ROUNDS = 4
_TRIALS = 20
# The sufficient decrease (Armijo) constant of the line search.
_ARMIJO = 1e-4
# The phases of the search: a point to adopt as the iterate, a line-search trial, a bracket point,
# the limit at a low bound, done.
_START, _TRIAL, _BRACKET, _LIMIT, _DONE = range(5)


def _where(condition, new, old):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def _set(module, **changes):
    return dataclasses.replace(module, **changes)


class _Point(eqx.Module):
    """A point of the search with its objective, gradient, fixed point (the next warm start) and
    solution."""

    u: jax.Array
    value: jax.Array
    grad: jax.Array
    warm: Any
    ok: jax.Array
    solution: Any


class _Search(eqx.Module):
    """The state of :func:`_tune`'s loop, a pytree of arrays (so that the loop vmaps)."""

    phase: jax.Array
    x: jax.Array
    """The point the next iteration evaluates, and its warm start."""
    x_warm: Any
    point: _Point
    """The iterate."""
    best: _Point
    """The best point of the bracket so far."""
    inverse_hessian: jax.Array
    """The curvature as a dense inverse Hessian (BFGS updates; the coordinates are few)."""
    opt_state: Any
    """A given optimiser's state."""
    curved: jax.Array
    """Whether ``inverse_hessian`` holds a curvature pair of this round."""
    direction: jax.Array
    """The line search's direction, its step length and the trials it spent."""
    step: jax.Array
    trials: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    history: jax.Array
    rounds: jax.Array
    pending: jax.Array
    chunk: jax.Array
    """The bracket's chunk (0: the two neighbours of each coordinate; then pairs of grid points) and
    the index of the point within it."""
    index: jax.Array
    flat: jax.Array
    """In the bracket, whether the iterate's neighbourhood is flat (or its objective not finite); in
    the descent, whether the last step changed neither the value nor much the gradient."""
    limit_objective: jax.Array


class _Newton(eqx.Module):
    """The state of the batched search's Newton loop (the fields it shares with :class:`_Search`
    mean the same)."""

    phase: jax.Array
    x: jax.Array
    x_warm: Any
    point: _Point
    hessian: jax.Array
    """The Hessian of the objective at the iterate."""
    low: jax.Array
    """The bracket: the box around the iterate in which the optimum lies."""
    high: jax.Array
    iterations: jax.Array
    evaluations: jax.Array
    history: jax.Array
    pending: jax.Array
    limit_objective: jax.Array


@eqx.filter_jit
def _tune(theory, problem, optimizer, max_iterations, gtol, init, points):
    """The search as one loop that solves the theory once per iteration.

    Every iteration evaluates the objective, its gradient and the fixed point at one point ``x``;
    what ``x`` is comes from the phase: the first point, a trial of the line search, a point of the
    bracket, the limit beyond a low bound. The compiled program therefore holds one solve with its
    implicit derivative (or one integration with its adjoint) whatever the phases; under ``vmap``
    each setting moves through its own phases, and a batch costs as many solves as its longest
    search. With ``points`` (the batched search), the grid is one vmapped solve and Newton's method
    a second loop (:class:`_Newton`).
    """
    names = tuple(problem.transforms)
    given = optimizer is not None
    if given:
        import optax

        if not isinstance(optimizer, optax.GradientTransformationExtraArgs):
            optimizer = optax.with_extra_args_support(optimizer)
    bracketed = isinstance(theory, FixedPointTheory)
    limited = any(t.limit is not None for t in problem.transforms.values())

    dtype = jnp.result_type(*(getattr(theory, n) for n in names), float)
    gtol = (1e-9 if jnp.finfo(dtype).bits >= 64 else 1e-4) if gtol is None else gtol
    eps = jnp.finfo(dtype).eps
    # Two objective values closer than this (relative) are equal: a flat stretch.
    margin = jnp.sqrt(eps)

    def coordinate(bound):
        return problem.flatten([t.inverse(jnp.asarray(bound(n, t), dtype)) for n, t in problem.transforms.items()])

    u0 = coordinate(lambda n, t: getattr(theory, n))
    low, high = coordinate(lambda n, t: t.low), coordinate(lambda n, t: t.high)
    size = u0.size
    fixed = jax.lax.stop_gradient(theory)

    # A coordinate this close to a bound (in u) counts as on it.
    def at_low(u):
        return u <= low + 1e-6 * (1 + jnp.abs(low))

    def at_high(u):
        return u >= high - 1e-6 * (1 + jnp.abs(high))

    def projected(u, grad):
        outward = (at_low(u) & (grad > 0)) | (at_high(u) & (grad < 0))
        return jnp.where(outward, 0.0, grad), outward

    def small(value, grad, u):
        return jnp.max(jnp.abs(projected(u, grad)[0])) <= gtol * jnp.abs(value)

    def evaluate(x, warm, at_limit, curvature=False):
        """The point ``x`` and the raw objective there (NaN or not, ``ok`` or not), and with
        ``curvature`` the Hessian."""
        if curvature:
            value, grad, hessian, (warm_x, ok, solution, raw) = _derivatives(problem, fixed, x, warm, at_limit)
        else:
            value_and_grad = jax.value_and_grad(lambda v: problem(fixed, v, warm, at_limit), has_aux=True)
            (value, (warm_x, ok, solution, raw)), grad = value_and_grad(x)
        point = _Point(x, value.astype(dtype), grad.astype(dtype), warm_x, ok, solution)
        return (point, raw.astype(dtype)) + ((hessian.astype(dtype),) if curvature else ())

    def span(u):
        """The range a grid spans along each coordinate: the box, or u +- 10 (1 + |u|) where the box
        is unbounded."""
        return (jnp.where(jnp.isfinite(low), low, u - 10 * (1 + jnp.abs(u))),
                jnp.where(jnp.isfinite(high), high, u + 10 * (1 + jnp.abs(u))))

    # The bracket: along each coordinate, _GRID points spanning span(u), and first the two points half
    # a grid step either side of u.
    def bracket_point(u, chunk, index):
        lo, hi = span(u)
        step = (hi - lo) / (_GRID - 1)
        side, axis = index // size, index % size
        along = jnp.where(chunk == 0, u + (side - 0.5) * step, lo + step * (2 * (chunk - 1) + side))
        return jnp.clip(jnp.where(jnp.arange(size) == axis, along, u), low, high)

    def cold(x):
        return problem.start(problem.placed(fixed, x), init)

    def phase(value):
        return jnp.asarray(value, jnp.int32)

    def record(s, p):
        """The history with the point ``p`` at the row of the iteration."""
        row = jnp.minimum(s.iterations, max_iterations - 1)
        return s.history.at[row].set(jnp.concatenate([p.value[None], problem.flatten(problem.values(p.u))]))

    # What follows an iterate: a step, or the end of the descent.
    def step_from(s: _Search) -> _Search:
        p = s.point
        pg, outward = projected(p.u, p.grad)
        stop = (s.iterations >= max_iterations) | small(p.value, p.grad, p.u) | ~jnp.isfinite(p.value) | s.flat
        opt_state = s.opt_state
        if given:
            direction, opt_state = optimizer.update(
                pg, s.opt_state, p.u, value=p.value, grad=pg,
                value_fn=lambda v, warm: problem(fixed, v, warm)[0], warm=p.warm,
            )
            s = _set(s, evaluations=s.evaluations + _linesearch_steps(opt_state))
        else:
            # Before any curvature is known, a unit step along the steepest descent (in the sup norm).
            steepest = -pg / jnp.maximum(jnp.max(jnp.abs(pg)), jnp.finfo(dtype).tiny)
            direction = jnp.where(outward, 0.0, jnp.where(s.curved, -(s.inverse_hessian @ pg), steepest))
            descent = jnp.all(jnp.isfinite(direction)) & (jnp.vdot(direction, pg) < 0)
            direction = jnp.where(descent, direction, steepest)
        trial = _set(
            s, phase=phase(_TRIAL), x=jnp.clip(p.u + direction, low, high), x_warm=p.warm,
            direction=direction, step=jnp.ones((), dtype), trials=jnp.zeros((), jnp.int32),
            opt_state=opt_state, history=record(s, p),
        )
        return _where(stop, end_descent(s), trial)

    def end_descent(s: _Search) -> _Search:
        """To the bracket around the iterate (fixed-point theories), else to :func:`finish`."""
        if not bracketed:
            return finish(s)
        u = s.point.u
        zero = jnp.zeros((), jnp.int32)
        x = bracket_point(u, zero, zero)
        return _set(
            s, phase=phase(_BRACKET), chunk=zero, index=zero, flat=jnp.asarray(False),
            best=_set(s.point, value=jnp.asarray(jnp.inf, dtype)), x=x, x_warm=cold(x),
        )

    def finish(s):
        """To the limit beyond a low bound where a held coordinate is on one, else done."""
        _, held = projected(s.point.u, s.point.grad)
        go = jnp.asarray(limited) & jnp.any(held & at_low(s.point.u))
        return _set(s, phase=jnp.where(go, phase(_LIMIT), phase(_DONE)), x=s.point.u, x_warm=s.point.warm)

    def improves(old: _Point, p: _Point):
        """Whether ``p`` improves on ``old``: a sufficient decrease, or, near the optimum, where the
        objective changes by less than the solver's precision, a level value and a smaller gradient;
        with the change of value and the gradients' sup norms before and after."""
        sufficient = p.value <= old.value + _ARMIJO * jnp.vdot(projected(old.u, old.grad)[0], p.u - old.u)
        slope_before = jnp.max(jnp.abs(projected(old.u, old.grad)[0]))
        slope_after = jnp.max(jnp.abs(projected(p.u, p.grad)[0]))
        change = jnp.abs(p.value - old.value)
        level = change <= margin * jnp.abs(old.value)
        better = jnp.isfinite(p.value) & (sufficient | (level & (slope_after < slope_before)))
        return better, change, slope_before, slope_after

    def bfgs(s: _Search, p: _Point):
        """The BFGS update of the inverse Hessian by the step to ``p``, skipped without positive
        curvature; the first pair of a round sets the scale (Nocedal and Wright 2006, eq. 6.20)."""
        step, change = p.u - s.point.u, p.grad - s.point.grad
        sy, yy = jnp.vdot(step, change), jnp.vdot(change, change)
        ok = (sy > 1e-10 * jnp.sqrt(jnp.vdot(step, step) * yy)) & jnp.isfinite(sy) & jnp.isfinite(yy)
        eye = jnp.eye(size, dtype=dtype)
        H = jnp.where(s.curved, s.inverse_hessian, eye * sy / jnp.where(ok, yy, 1.0))
        left = eye - jnp.outer(step, change) / jnp.where(ok, sy, 1.0)
        updated = left @ H @ left.T + jnp.outer(step, step) / jnp.where(ok, sy, 1.0)
        return {"inverse_hessian": jnp.where(ok, updated, s.inverse_hessian), "curved": s.curved | ok}

    def after_trial(s: _Search, p: _Point) -> _Search:
        old = s.point
        finite = jnp.isfinite(p.value)
        better, change, slope_before, slope_after = improves(old, p)
        accept = better | (finite & given)
        curvature = {} if given else bfgs(s, p)
        stalled = (change <= 4 * eps * jnp.abs(old.value)) & (slope_after > 0.5 * slope_before)
        accepted = step_from(_set(s, point=p, iterations=s.iterations + 1, flat=stalled, **curvature))
        # Back off along the direction: to the minimiser of the quadratic through the two values and
        # the slope, kept within [0.1, 0.5] of the step (half of it where the value is not finite).
        slope = jnp.vdot(old.grad, s.direction)
        excess = p.value - old.value - slope * s.step
        positive = finite & (excess > 0)
        shrink = jnp.where(positive, -slope * s.step / (2 * jnp.where(positive, excess, 1.0)), 0.5)
        step = s.step * jnp.clip(shrink, 0.1, 0.5)
        retry = _set(s, step=step, trials=s.trials + 1, x=jnp.clip(old.u + step * s.direction, low, high))
        # A line search that finds no better finite point ends the descent at the iterate.
        failed = end_descent(_set(s, iterations=s.iterations + 1))
        give_up = jnp.asarray(given) | (s.trials + 1 >= _TRIALS)
        return _where(accept, accepted, _where(give_up, failed, retry))

    def after_bracket(s: _Search, p: _Point) -> _Search:
        u, value = s.point.u, s.point.value
        # A point clipped back onto u is u itself, whatever the precision of its objective.
        moved = jnp.any(p.u != u)
        v = jnp.where(moved, p.value, jnp.inf)
        level = moved & (jnp.abs(v - value) <= margin * jnp.abs(value))
        best = _where(v < s.best.value, _set(p, value=v), s.best)
        # After the neighbours, the grid runs where one of them is level with u or u is not finite.
        flat = s.flat | ((s.chunk == 0) & (level | ~jnp.isfinite(value)))
        last = s.index + 1 >= 2 * size
        chunk, index = jnp.where(last, s.chunk + 1, s.chunk), jnp.where(last, 0, s.index + 1)
        x = bracket_point(u, chunk, index)
        going = _set(s, best=best, flat=flat, chunk=chunk, index=index, x=x, x_warm=cold(x))
        more = ~last | (flat & (chunk <= _GRID // 2))
        # The bracket is done: a better point starts another round of descent from it; one found
        # after the last round is reported as such (not converged).
        restart = best.value < jnp.where(jnp.isfinite(value), value - margin * jnp.abs(value), jnp.inf)
        pending = restart & (s.rounds + 1 >= _ROUNDS)
        again = step_from(_set(
            going, point=best, rounds=s.rounds + 1, flat=jnp.asarray(False),
            inverse_hessian=jnp.eye(size, dtype=dtype), curved=jnp.asarray(False),
        ))
        done = finish(_set(going, pending=pending))
        return _where(more, going, _where(restart & ~pending, again, done))

    def body(s: _Search) -> _Search:
        _, held = projected(s.point.u, s.point.grad)
        at_limit = (s.phase == _LIMIT) & held & at_low(s.point.u)
        p, raw = evaluate(s.x, s.x_warm, at_limit)
        s = _set(s, evaluations=s.evaluations + jnp.where(s.phase == _LIMIT, 0, 1))
        start = step_from(_set(s, point=p, flat=jnp.asarray(False)))
        limit = _set(s, phase=phase(_DONE), limit_objective=jnp.where(p.ok, raw, jnp.nan))
        out = _where(s.phase == _TRIAL, after_trial(s, p), limit)
        if bracketed:
            out = _where(s.phase == _BRACKET, after_bracket(s, p), out)
        return _where(s.phase == _START, start, out)

    def batched() -> "_Newton":
        """The batched search: the grid in one vmapped solve, then Newton from its best point."""
        lo, hi = span(u0)
        axes = lo[:, None] + (hi - lo)[:, None] * jnp.linspace(0.0, 1.0, points, dtype=dtype)
        grid = jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, size)
        values, (warms, *_) = jax.vmap(lambda x: problem(fixed, x, cold(x)))(grid)
        best = jnp.argmin(values)
        index = jnp.stack(jnp.unravel_index(best, (points,) * size))
        # In one coordinate the best point's neighbours bound the optimum (the box beyond the grid's
        # edge); in several, a coarse grid's best cell need not hold it, and the box bounds it.
        below = jnp.where(index == 0, low, axes[jnp.arange(size), jnp.maximum(index - 1, 0)])
        above = jnp.where(index == points - 1, high, axes[jnp.arange(size), jnp.minimum(index + 1, points - 1)])
        below, above = (below, above) if size == 1 else (low, high)
        spacing = (hi - lo) / (points - 1)
        eye = jnp.eye(size, dtype=dtype)

        def newton_from(s: _Newton) -> _Newton:
            """A Newton step from the iterate on the free coordinates (the Hessian's eigenvalues
            taken in absolute value, so that the step descends); where it leaves the bracket, the
            step shortened to reach at most half way to the bracket's side along each coordinate
            (bisection in one coordinate). Without a finite step, a grid step along the steepest
            descent."""
            p = s.point
            pg, held = projected(p.u, p.grad)
            curvatures, vectors = jnp.linalg.eigh(jnp.where(held[:, None] | held[None, :], eye, s.hessian))
            curvatures = jnp.maximum(jnp.abs(curvatures), 1e-8 * jnp.max(jnp.abs(curvatures)))
            step = jnp.where(held, 0.0, -(vectors @ ((vectors.T @ pg) / curvatures)))
            steepest = -spacing * pg / jnp.maximum(jnp.max(jnp.abs(pg)), jnp.finfo(dtype).tiny)
            step = jnp.where(jnp.all(jnp.isfinite(step)), step, steepest)
            inside = jnp.all((p.u + step >= s.low) & (p.u + step <= s.high))
            room = jnp.where(step > 0, s.high - p.u, p.u - s.low)
            shorter = jnp.min(jnp.where(step != 0, room / (2 * jnp.abs(step)), jnp.inf))
            x = jnp.clip(p.u + jnp.where(inside, 1.0, jnp.minimum(shorter, 1.0)) * step, low, high)
            stop = (s.iterations >= max_iterations) | small(p.value, p.grad, p.u) | ~jnp.isfinite(p.value)
            return _where(stop | jnp.all(x == p.u), finish(s), _set(s, phase=phase(_TRIAL), x=x, x_warm=p.warm))

        def body(s: _Newton) -> _Newton:
            _, held = projected(s.point.u, s.point.grad)
            at_limit = (s.phase == _LIMIT) & held & at_low(s.point.u)
            p, raw, hessian = evaluate(s.x, s.x_warm, at_limit, curvature=True)
            limit = _set(s, phase=phase(_DONE), limit_objective=jnp.where(p.ok, raw, jnp.nan))
            take = jnp.where(s.phase == _START, jnp.isfinite(p.value), improves(s.point, p)[0])
            # The history holds the iterate after each evaluation.
            history = record(s, _where(take | (s.phase == _START), p, s.point))
            s = _set(s, evaluations=s.evaluations + 1, iterations=s.iterations + 1, history=history)
            bracket = {}
            if size == 1:
                # In one coordinate the optimum lies on the side of an improving point its gradient
                # points away from, and short of a point that does not improve.
                upper = jnp.where(take, p.grad > 0, p.u > s.point.u)
                bracket = {"low": jnp.where(upper, s.low, p.u), "high": jnp.where(upper, p.u, s.high)}
            taken = newton_from(_set(s, point=p, hessian=hessian, **bracket))
            # A trial that does not improve (or is not finite) is halved; a first point that is not
            # finite ends the search.
            shorter = _set(s, x=s.point.u + (s.x - s.point.u) / 2, **bracket)
            spent = (s.phase == _START) | (s.iterations >= max_iterations) | jnp.all(shorter.x == s.point.u)
            out = _where(take, taken, _where(spent, finish(s), shorter))
            return _where(s.phase == _LIMIT, limit, out)

        search = _Newton(
            phase=phase(_START), x=grid[best], x_warm=jax.tree.map(lambda a: a[best], warms),
            point=_set(nowhere, u=grid[best]),
            hessian=eye, low=below, high=above, iterations=zero, evaluations=zero + grid.shape[0],
            history=history, pending=jnp.asarray(False), limit_objective=jnp.asarray(jnp.nan, dtype),
        )
        return jax.lax.while_loop(lambda s: s.phase != _DONE, body, search)

    history = jnp.full((max_iterations, 1 + size), jnp.nan, dtype)
    warm0 = problem.start(fixed, init)
    zero = jnp.zeros((), jnp.int32)
    # A placeholder of a point's shapes (nothing is compiled), as the iterate before the first.
    nowhere = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(evaluate, u0, warm0, None)[0])
    nowhere = _set(nowhere, u=u0, value=jnp.asarray(jnp.inf, dtype), warm=warm0)
    if points is not None:
        search = batched()
    else:
        search = _Search(
            phase=phase(_START), x=u0, x_warm=warm0, point=nowhere, best=nowhere,
            inverse_hessian=jnp.eye(size, dtype=dtype), opt_state=optimizer.init(u0) if given else None,
            curved=jnp.asarray(False), direction=jnp.zeros_like(u0), step=jnp.ones((), dtype), trials=zero,
            iterations=zero, evaluations=zero, history=history, rounds=zero, pending=jnp.asarray(False),
            chunk=zero, index=zero, flat=jnp.asarray(False), limit_objective=jnp.asarray(jnp.nan, dtype),
        )
        search = jax.lax.while_loop(lambda s: s.phase != _DONE, body, search)
    point = search.point

    pg, held = projected(point.u, point.grad)
    u, value, solution = _at_optimum(jax.lax.stop_gradient(point.u), theory, problem, point, held)
    ok = point.ok
    side = jnp.where(held & at_low(u), -1, jnp.where(held & at_high(u), 1, 0))
    tuned = problem.placed(theory, u)
    return TuneResult(
        theory=tuned,
        params={n: getattr(tuned, n) for n in names},
        objective=value,
        limit_objective=search.limit_objective,
        grad_norm=jnp.max(jnp.abs(pg)),
        converged=small(value, point.grad, u) & ok & jnp.isfinite(value) & ~search.pending,
        at_boundary=dict(zip(names, problem.split(side))),
        iterations=search.iterations,
        evaluations=search.evaluations,
        history={"objective": search.history[:, 0]}
        | {n: jax.vmap(problem.split)(search.history[:, 1:])[i] for i, n in enumerate(names)},
        solution=solution,
    )


@eqx.filter_custom_jvp
def _at_optimum(u, theory, problem, point, held):
    """The optimum ``u`` that the search found, with its objective and solution, differentiable
    with respect to ``theory``: the objective and the solution as a solve at ``u`` is, and ``u`` by
    the implicit function theorem on the optimality condition ``F(u, theory) = 0``, which is
    ``grad_u objective = 0`` on the free coordinates and ``u = const`` on those ``held`` at a bound:
    ``du = -(dF/du)^{-1} dF/dtheory``, with ``dF/du`` the Hessian of the objective on the free block.
    The derivative solves again from the fixed point found (one Newton step, then the implicit
    function theorem; an ODE theory integrates again), once for all three: the solve's gradient,
    objective and solution are linearised in ``(u, theory)`` once, and the linear map gives the
    Hessian (along each coordinate of ``u``) and the tangents along the theory's; this solve is
    compiled only where a derivative is taken."""
    del theory, problem, held
    return u, point.value, point.solution


@_at_optimum.def_jvp
def _at_optimum_jvp(primals, tangents):
    u, theory, problem, point, held = primals
    dynamic, static = eqx.partition(theory, eqx.is_inexact_array)

    def resolved(v, dyn):
        (value, (_, _, solution, _)), gradient = jax.value_and_grad(
            lambda w: problem(eqx.combine(dyn, static), w, point.warm), has_aux=True
        )(v)
        return gradient, value, eqx.filter(solution, eqx.is_inexact_array)

    _, linear = jax.linearize(resolved, u, dynamic)
    size = u.size
    zero = jax.tree.map(jnp.zeros_like, dynamic)
    hessian = jax.vmap(lambda e: linear(e, zero)[0], out_axes=1)(jnp.eye(size, dtype=u.dtype))
    t_theory = jax.tree.map(
        lambda p, t: None if p is None else (jnp.zeros_like(p) if t is None else t),
        dynamic, tangents[1], is_leaf=lambda x: x is None,
    )
    # The optimality condition grad_u objective = 0 on the free coordinates, u = const on the held.
    jacobian = jnp.where(held[:, None] | held[None, :], jnp.eye(size, dtype=hessian.dtype), hessian)
    t_opt = -jnp.linalg.solve(jacobian, jnp.where(held, 0.0, linear(jnp.zeros_like(u), t_theory)[0]))
    _, t_value, t_solution = linear(t_opt, t_theory)
    return (u, point.value, point.solution), (t_opt, t_value, t_solution)


def _derivatives(problem, theory, u, warm, at_limit=None):
    """The objective at ``u``, its gradient and its Hessian in ``u`` (forward mode over the implicit
    gradient through the fixed point), and ``problem``'s auxiliary output."""

    def gradient(v):
        (value, aux), grad = jax.value_and_grad(lambda w: problem(theory, w, warm, at_limit), has_aux=True)(v)
        return grad, (value, grad, aux)

    hessian, (value, grad, aux) = jax.jacfwd(gradient, has_aux=True)(u)
    return value, grad, hessian, aux
