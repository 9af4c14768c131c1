r"""Phase transitions of fixed-point theories: :func:`threshold`, and :func:`iterate`.

A theory with an uninformed and an informed initialisation (``theory.init("uninformed")``,
``theory.init("informed")``) may have two attracting fixed points over a range of a control
parameter ``theta`` (a sample ratio, a signal-to-noise ratio). :func:`threshold` locates, by root
finding in ``theta``:

- ``kind="algorithmic"``: where the branch reached by iteration from the uninformed state ends (a
  spinodal: the fixed point merges with an unstable one and disappears). There ``x = T(x)`` and
  ``det(I - dT/dx) = 0``, solved by Newton's method for ``(x, theta)`` together, a system that is
  regular at a fold. Newton starts from the branch's last point found within ``1e-3`` of a grid step
  of the fold: past the grid, the branch is followed one trial value at a time towards the fold
  predicted by extrapolation (the extremum of the cubic ``theta(s)`` through its last four points,
  ``s`` the state along the last step, since ``theta_c - theta`` is quadratic in the state near a
  fold), 90% of the way there and at most twice the last step further (at least a twentieth of the
  last step where the prediction is closer than that and the last step was no prediction's), each
  trial that finds no branch point closing the interval instead (the middle of it where no
  prediction lies inside). A trial spends at most 30 Newton steps (and 100 damped ones): past the
  fold the iteration lingers at its ghost. The result counts only if it lies where the branch was
  seen to end, within the distance from its last point to the predicted fold (or to the closed end),
  not at another fold (that of the informed branch).
- ``kind="weak-recovery"``: where the fixed point reached by Newton's method from the uninformed state
  (the trivial one, which exists on both sides) loses its stability: ``det(I - dT/dx) = 0`` along
  that fixed point, by a Newton iteration in ``theta`` safeguarded by bisection (the system of the
  fold would be singular at this transcritical point).
  A theory that knows its own linearisation about its trivial fixed point provides
  ``theory.linear_stability() -> (radius, state, direction)``: the spectral radius of its map
  linearised about that point ``state``, and the direction (a state) along which the point leaves
  when it exceeds one. :func:`threshold` then locates ``radius(theta) = 1`` instead, with no
  solve: the radius over the grid brackets the crossing, :func:`~hdtheory.kernels.scalar_root`
  refines it (Newton's method safeguarded by bisection) and differentiates it implicitly, and the
  result carries ``direction`` (not differentiated) and ``states = (state,)``. It is for maps whose
  trivial point Newton's method cannot hold (:class:`~hdtheory.MultiIndex`, whose map takes the
  square root of its ``k x k`` overlap: no usable derivative at ``M = 0``). An infinite radius
  (no trivial fixed point) or one that stays below one gives ``found = False``.
- ``kind="information-theoretic"``: where the free entropies (``theory.free_entropy``) of the two
  branches are equal, ``f(x_informed(theta)) = f(x_uninformed(theta))``, by a Newton iteration in
  ``theta`` safeguarded by bisection, each evaluation solving both branches. Both free entropies
  must be stationary there (in the solver's coordinates): a branch at perfect recovery whose free
  entropy diverges (a continuous prior through a noiseless channel, where the solver's floor on the
  error sets its value) gives ``found = False``, not a crossing of meaningless values.

The branches are first followed over ``num`` values from ``bracket[0]`` to ``bracket[1]`` (the
uninformed one in that direction from where plain iteration of the map, the algorithm, goes from the
uninformed state at ``bracket[0]``; the informed one in the opposite direction from where it goes
from the informed state at ``bracket[1]``; each point an attracting fixed point as in
:func:`hdtheory.continuation`); the first grid interval where the indicator changes sign brackets
the transition and gives the starting point. The branches differ at a grid value where both
converged there and their states differ by ``1e-6`` relative in the solver's coordinates and by
``sqrt(eps)`` in the theory's own (two states on the floor of the solver's coordinates, perfect
recovery at the log of an error of a few ``eps``, are one point): past a fold the iteration lingers
near its ghost, and a state it did not converge from is on no branch. ``bracket`` may be decreasing (a noise, where
inference gets easier downward): the uninformed branch always starts at ``bracket[0]``.

- ``kind="separability"``: a threshold that the theory computes directly, without branches or a
  bracket (``bracket``, ``num`` and ``damped_steps`` are not used): its method
  ``theory.separability_threshold(axis, steps, tol)`` returns ``(value, found, residual)``. For
  :class:`~hdtheory.ERM` with the logistic or hinge loss it is the sample ratio below which the data
  are linearly separable, so that the minimiser at ``lam = 0`` does not exist (Candès and Sur 2020;
  ``inf`` for a noiseless teacher, 2 for random labels); for :class:`~hdtheory.Gardner` it is the
  storage capacity, below which random labels are stored with margin ``kappa`` by weights of its
  prior (Gardner's closed form for spherical weights, Krauth and Mézard's zero entropy for binary
  ones); ``states`` is then empty.

- ``kind="stability"``: where a steady state of an ODE theory (:func:`hdtheory.steady_state`) loses
  its stability, its ``growth_rate`` (the largest real part of the eigenvalues of the vector field's
  Jacobian) crossing zero: along a learning rate, the largest stable learning rate. ``theory`` is
  the ODE theory (the steady state reached by Newton's method from ``theory.init()``) or a
  :class:`~hdtheory.Stationary` (from its ``start``, at its time ``t``); ``axis`` is a field of the
  ODE theory. The steady state is followed over the grid (each solve warm-started from the
  previous point, and from the start again where that fails), the first interval where its growth
  rate changes sign brackets the threshold, and the secant method safeguarded by bisection refines
  it (one solve of the steady state per step). A bracket over which the growth rate keeps its sign
  and no stable branch ends (below) is a :class:`~hdtheory.ParameterError` (``found = False`` under
  ``jit`` or ``vmap``). At a real eigenvalue's crossing the Jacobian is
  singular, so that the implicit derivative of the steady state itself is not defined there: the
  derivative of the threshold takes the steady state's derivative as the mean of its implicit
  derivatives at ``theta -+ h`` (``h = eps^(1/3) (1 + |theta|)``, an error of order ``h^2``), which
  assumes that the steady state moves smoothly through the threshold (it persists, like the
  learned teacher of a noiseless committee machine, or diverges while the growth rate does not
  depend on it, like the noisy linear perceptron's). The steady state at the threshold is
  ``states[0]``; it may lie far away (the noisy linear perceptron's error diverges there as
  ``1 / (eta_c - eta)``). ``found`` requires the steady state to converge there and at
  ``theta -+ h``. A stable branch may instead end at a fold (a saddle-node: it meets an unstable
  branch and both vanish), where a real eigenvalue reaches zero without the grid's growth rates
  changing sign (past the fold there is no steady state to follow). Where the warm start fails past
  a stable point, before any sign change, the interval is narrowed by following the branch to
  ``1e-3`` of its width and the fold is located by Newton's method on ``f(x) = 0``,
  ``det(df/dx) = 0`` (as for the algorithmic threshold), its derivative the implicit one; ``found``
  requires it within a width of the interval where the branch ended.

Every refinement ends with a Newton step from the solution with the gradient on (its Jacobian
held fixed; for a fold, the central differences of the last iteration, accurate to ``O(eps^(2/3))``),
so the located threshold is differentiable with respect to every other parameter of the theory by
the implicit function theorem (for example ``d alpha_IT / d noise``), and everything composes with
``jit`` and ``vmap``.
"""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._continuation import _follow, spectral_radius
from ._fixed_point import Damped, Newton, solve
from ._steady import Stationary, stationary
from ._theory import ODETheory, ParameterError, is_concrete, parameters
from .kernels.roots import bracketed_newton, scalar_root

KINDS = ("algorithmic", "weak-recovery", "information-theoretic", "separability", "stability")


class Threshold(eqx.Module):
    """The result of :func:`threshold` (every field gains the batch axes of a vmapped call)."""

    value: jax.Array
    """The control parameter at the transition; NaN where none was found (``inf`` for
    ``kind="separability"`` where the data are separable at every value)."""
    states: tuple
    """The fixed point(s) there: ``(x,)``, or ``(x_uninformed, x_informed)`` for
    ``kind="information-theoretic"``; ``()`` for ``kind="separability"``."""
    found: jax.Array
    """Whether the grid bracketed a transition and the refinement converged."""
    residual: jax.Array
    """The largest residual of the refined system."""
    direction: object = None
    """``kind="weak-recovery"`` of a theory with its own ``linear_stability``: the direction (a
    state) along which the trivial point becomes unstable at ``value`` (where none was found, the
    theory's direction at the refinement's last point: where the trivial point does not exist, the
    directions learned at once); ``None`` otherwise."""


def _with(theory, axis, value):
    if isinstance(theory, Stationary):
        return theory.at(axis, value)
    return eqx.tree_at(lambda t: getattr(t, axis), theory, value)


def _first(mask):
    """Index of the first true entry of ``mask`` and whether there is one."""
    return jnp.argmax(mask), jnp.any(mask)


def _newton(G, z0, steps: int, tol: float):
    """Newton's method on ``G(z) = 0`` from ``z0``, with halving on ``|G|``: ``(z, max |G(z)|)`` and
    the Jacobian of ``G`` at ``z`` (central differences).

    ``G`` is evaluated at one point an iteration, batched with the central differences that give its
    Jacobian (the root is that of ``G``, exactly): ``G`` is traced once, since its own derivatives
    (second derivatives of the map, for the fold) are slow to compile. ``steps`` bounds the Newton
    steps, each with up to ten halvings.
    """
    n = z0.size
    h = jnp.finfo(z0.dtype).eps ** (1 / 3) * (1 + jnp.abs(z0))
    offsets = jnp.concatenate([jnp.zeros((1, n), z0.dtype), jnp.diag(h), -jnp.diag(h)])

    def probe(z):
        g = jax.vmap(G)(z + offsets)
        return g[0], ((g[1 : n + 1] - g[n + 1 :]) / (2 * h[:, None])).T

    def running(carry):
        _, g, _, _, _, i = carry
        return (jnp.max(jnp.abs(g)) > tol) & (i < 11 * steps) & jnp.all(jnp.isfinite(g))

    def body(carry):
        z, g, jac, trial, t, i = carry
        g_trial, jac_trial = probe(trial)
        better = jnp.all(jnp.isfinite(g_trial)) & (jnp.linalg.norm(g_trial) < jnp.linalg.norm(g))
        ok = better | (t < 1e-3)
        z, g, jac = (jnp.where(ok, a, b) for a, b in ((trial, z), (g_trial, g), (jac_trial, jac)))
        t = jnp.where(ok, 1.0, t / 2)
        return z, g, jac, z - t * jnp.linalg.solve(jac, g), t, i + 1

    # The first iteration probes z0 itself, accepted against the largest residual.
    g0 = jnp.full((n,), jnp.finfo(z0.dtype).max, z0.dtype)
    init = (z0, g0, jnp.eye(n, dtype=z0.dtype), z0, jnp.ones((), z0.dtype), 0)
    z, g, jac, *_ = jax.lax.while_loop(running, body, init)
    return z, jnp.max(jnp.abs(g)), jac


@eqx.filter_jit
def _iterated(theory, axis, values, inits, steps, options):
    """The states reached by ``steps`` plain iterations of the map from each of ``inits`` (stacked
    states) at ``axis = values`` (one value each), in one loop over them: the solve is traced and
    compiled once, not once a start."""
    options = dict(options) | {"method": Damped(0.0), "max_steps": steps}
    return jax.lax.map(lambda a: solve(_with(theory, axis, a[0]), a[1], **options).state, (values, inits))


@eqx.filter_jit
def _trivial_branch(theory, axis, grid, options):
    """Newton's solutions from the uninformed state over ``grid``, and their spectral radii."""
    # Plain Newton (not following the flow): it lands on the trivial point on both sides.
    options = {"method": Newton()} | dict(options)
    sols = jax.vmap(lambda v: solve(_with(theory, axis, v), "uninformed", **options))(grid)
    radius = jax.vmap(lambda v, s: spectral_radius(_with(theory, axis, v), s))(grid, sols.state)
    return sols, radius


@eqx.filter_jit
def _fold(theory, axis, state0, theta0, steps, tol):
    """Solve ``x = T(x)``, ``det(I - dT/dx) = 0`` for ``(x, theta)`` from ``(state0, theta0)``.

    The derivatives with respect to ``theory`` are the implicit ones, ``dz = -J^-1 dG``: those of one
    Newton step from the solution ``z`` (not taken: ``G(z) = 0``) with the Jacobian ``J`` of the
    last iteration (central differences, accurate to ``O(eps^(2/3))``) held fixed, so that only
    ``G`` itself is differentiated, once (no Jacobian of its linearisation)."""
    flat0, unravel = ravel_pytree(theory.unconstrain(state0))
    n = flat0.size

    def residual_of(theory):
        def G(z):
            th = _with(theory, axis, z[n])

            def T(u):
                return ravel_pytree(th.unconstrain(th.update(th.constrain(unravel(u)))))[0]

            u = z[:n]
            jac = jax.jacfwd(T)(u)
            return jnp.concatenate([T(u) - u, jnp.linalg.det(jnp.eye(n, dtype=u.dtype) - jac)[None]])

        return G

    z0 = jax.lax.stop_gradient(jnp.concatenate([flat0, jnp.reshape(theta0, (1,)).astype(flat0.dtype)]))
    z, residual, jac = _newton(residual_of(jax.lax.stop_gradient(theory)), z0, steps, tol)
    step = -jnp.linalg.solve(jac, residual_of(theory)(z))
    z = z + step - jax.lax.stop_gradient(step)
    return z[n], (theory.constrain(unravel(z[:n])),), residual


@eqx.filter_jit
def _branches(theory, axis, values, up_start, down_start, damped_steps, options):
    """The branch followed upward over ``values`` from ``up_start`` and the one followed downward
    from ``down_start`` (reordered upward), their free entropies, and where their states differ.
    Both are followed in one loop over the two directions (:func:`_follow_both`)."""
    starts = jax.tree.map(lambda a, b: jnp.stack([a, b]), up_start, down_start)
    (up, down), (up_entropy, down_entropy) = _follow_both(
        theory, axis, jnp.stack([values, values[::-1]]), starts, damped_steps, options
    )
    down, down_entropy = jax.tree.map(lambda x: x[::-1], (down, down_entropy))
    return up, up_entropy, down, down_entropy, _differ(theory, up, down)


def _differ(theory, up, down):
    """Where two stacks of solutions are distinct converged points (module docstring)."""
    flatten = jax.vmap(lambda s: ravel_pytree(theory.unconstrain(s))[0])
    u_up, u_down = flatten(up.state), flatten(down.state)
    scale = 1 + jnp.maximum(jnp.abs(u_up), jnp.abs(u_down))
    # Both in the solver's coordinates and in the theory's own: two states on the floor of the
    # solver's coordinates (perfect recovery, the log of an error of a few eps) differ there by
    # O(1) rounding but are one point.
    x_up, x_down = (jax.vmap(lambda s: ravel_pytree(s)[0])(b.state) for b in (up, down))
    x_scale = 1 + jnp.maximum(jnp.abs(x_up), jnp.abs(x_down))
    apart = jnp.max(jnp.abs(x_up - x_down) / x_scale, axis=-1) > jnp.sqrt(jnp.finfo(x_up.dtype).eps)
    differ = (jnp.max(jnp.abs(u_up - u_down) / scale, axis=-1) > 1e-6) & apart
    # A point where a branch did not converge is not on it: past a fold the iteration lingers near
    # the fold's ghost for many steps, and its last state is no fixed point.
    return differ & up.converged & down.converged


@eqx.filter_jit
def _follow_both(theory, axis, values, starts, damped_steps, options):
    """:func:`~hdtheory._continuation._follow` over each row of ``values`` from each of ``starts``,
    in a loop over the rows: the branch following (a solve, its damped fallback, the free entropy)
    is compiled once, not once a direction. Returns the solutions and the entropies, stacked."""
    solutions, entropy = jax.lax.map(lambda a: _follow(theory, axis, a[0], a[1], damped_steps, options), (values, starts))
    return tuple(jax.tree.map(lambda x: x[i], solutions) for i in range(2)), (entropy[0], entropy[1])


def _at(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _vertex(ts, us, before):
    """The fold predicted from the last four points ``(ts, us)`` of a branch (oldest first; ``us``
    flattened states; the oldest may be NaN): the extremum of the cubic ``theta(s)`` through them,
    ``s`` the state's coordinate along the last step (the parabola through the last three where the
    cubic has no extremum or the oldest is NaN), and whether it lies past ``ts[3]`` and before
    ``before``. Near a fold
    ``theta_c - theta`` is analytic in the state and quadratic to leading order: the parabola's
    vertex misses the fold by a relative ``O(sqrt(theta_c - theta))``, the cubic's by
    ``O(theta_c - theta)``."""
    e = us[3] - us[2]
    s = (us - us[3]) @ (e / jnp.linalg.norm(e))
    # theta = ts[3] + B s + A s^2 + D s^3: the divided differences of g = (theta - ts[3]) / s.
    g = (ts[:3] - ts[3]) / s[:3]
    g01, g12 = (g[1] - g[0]) / (s[1] - s[0]), (g[2] - g[1]) / (s[2] - s[1])

    def extremum(D):
        A = g12 - D * (s[1] + s[2])
        B = g[2] - A * s[2] - D * s[2] ** 2
        # The root of theta'(s) = B + 2 A s + 3 D s^2 nearest the last point (-B / 2A for D = 0).
        vertex = -B / (A + jnp.sign(A) * jnp.sqrt(A**2 - 3 * B * D))
        return ts[3] + vertex * (B + vertex * (A + vertex * D))

    cubic, parabola = extremum((g12 - g01) / (s[2] - s[0])), extremum(0.0)
    # The parabola where the cubic has no extremum (far from the fold) or there is no fourth point.
    predicted = jnp.where(jnp.isfinite(cubic), cubic, parabola)
    where = (predicted - ts[3]) / (before - ts[3])
    return predicted, jnp.isfinite(where) & (where > 0) & (where < 1)


@eqx.filter_jit
def _spinodal(theory, axis, grid, start, stop, damped_steps, options):
    """Where the uninformed branch ends: ``((theta_1, theta_c), x_1, found)``, its last point
    ``theta_1`` within ``1e-3`` of a grid step of the fold ``theta_c`` (predicted, or a value where
    the branch was seen to have ended) and its state ``x_1`` there; ``found`` whether it ends on the
    grid.

    Rounds of :func:`_follow_both` over ``num`` values, one compiled loop (at most 40 rounds). The
    first follows the branches from ``start`` and ``stop`` over ``grid``: the first grid interval at
    whose start they differ and at whose end they do not brackets the end, ``[theta_1, theta_end]``.
    Each further round follows them over ``theta_1``, a trial value, then ``theta_1`` again, from
    the branch's last state and the informed one at ``theta_end``, with at most 30 Newton and 100
    damped steps: the trial is ``0.9 (theta_c - theta_1)`` past ``theta_1`` but at most twice the
    last step, ``theta_c`` predicted by :func:`_vertex`, or the middle of the interval where the
    prediction is not inside it; a prediction within a twentieth of the last step is untrusted,
    and the trial then goes that far at least (half the tolerance after a trusted one). Where the
    branches differ at the trial value it is the branch's new last point, else its new
    ``theta_end``. Rounds stop when ``|theta_c - theta_1|`` (from a
    prediction whose last step is within 20 times that) or ``|theta_end - theta_1|`` is below
    ``1e-3`` of a grid step."""
    num = grid.shape[0]
    max_steps = dict(options).get("max_steps", 100)
    flatten = jax.vmap(lambda x: ravel_pytree(theory.unconstrain(x))[0])
    tolerance = 1e-3 * jnp.abs(grid[1] - grid[0])

    def predict(ts, us, end):
        predicted, inside = _vertex(ts, us, end)
        trusted = inside & (jnp.abs(ts[3] - ts[2]) <= 20 * jnp.abs(predicted - ts[3]))
        width = jnp.where(trusted, jnp.abs(predicted - ts[3]), jnp.abs(end - ts[3]))
        return jnp.where(inside, predicted, end), inside, trusted, width

    def body(carry):
        values, x1, other, ts, us, end, found, pending, guided, i = carry
        starts = jax.tree.map(lambda a, b: jnp.stack([a, b]), x1, other)
        # Past the fold the iteration lingers at its ghost: a trial spends at most 30 Newton steps.
        budget = jnp.where(i == 0, max_steps, jnp.minimum(max_steps, 30))
        damped = jnp.where(i == 0, damped_steps, jnp.minimum(damped_steps, 100))
        (up, down), _ = _follow_both(
            theory, axis, jnp.stack([values, values[::-1]]), starts, damped,
            tuple(sorted((dict(options) | {"max_steps": budget}).items())),
        )
        down = jax.tree.map(lambda x: x[::-1], down)
        differ = _differ(theory, up, down)
        # The first round: the grid.
        k, any_ = _first(differ[:-1] & ~differ[1:])
        last = k + jnp.arange(-3, 1)
        on = (last >= 0) & up.converged[jnp.maximum(last, 0)]
        grid_round = (
            _at(up.state, k), _at(down.state, k + 1), jnp.where(on, values[jnp.maximum(last, 0)], jnp.nan),
            flatten(_at(up.state, jnp.maximum(last, 0))), values[k + 1], any_,
        )
        # A further round: the trial value.
        moved = differ[1]
        newest = flatten(_at(up.state, slice(1, 2)))[0]
        shifted = (jnp.roll(ts, -1).at[3].set(values[1]), jnp.roll(us, -1, axis=0).at[3].set(newest))
        trial_round = (
            jax.tree.map(lambda a, b: jnp.where(moved, a, b), _at(up.state, 1), x1), other,
            jnp.where(moved, shifted[0], ts), jnp.where(moved, shifted[1], us),
            jnp.where(moved, end, values[1]), found,
        )
        x1, other, ts, us, end, found = jax.tree.map(lambda a, b: jnp.where(i == 0, a, b), grid_round, trial_round)
        guided = (i > 0) & jnp.where(moved, pending, guided)
        predicted, inside, trusted, _ = predict(ts, us, end)
        # At most twice the last step (a cubic through points far from the fold may overshoot it).
        # A prediction much closer than the last step (untrusted) after a step that was not itself
        # predicted is no nearer than a twentieth of that step (after a predicted one, half the
        # tolerance), and within the interval.
        last = jnp.abs(ts[3] - ts[2])
        reach = 0.9 * jnp.abs(predicted - ts[3])
        floor = jnp.where(guided, tolerance / 2, last / 20)
        reach = jnp.minimum(jnp.where(trusted, reach, jnp.maximum(reach, floor)), 2 * last)
        reach = jnp.minimum(reach, 0.9 * jnp.abs(end - ts[3]))
        trial = jnp.where(inside, ts[3] + jnp.sign(end - ts[3]) * reach, (ts[3] + end) / 2)
        values = jnp.full((num,), ts[3]).at[1].set(trial)
        return values, x1, other, ts, us, end, found, inside & trusted, guided, i + 1

    def running(carry):
        _, _, _, ts, us, end, found, _, _, i = carry
        return (i == 0) | (found & (predict(ts, us, end)[3] > tolerance) & (i < 40))

    n = flatten(jax.tree.map(lambda x: x[None], start)).shape[1]
    init = (
        grid, start, stop, jnp.full((4,), jnp.nan, grid.dtype), jnp.zeros((4, n), grid.dtype), grid[-1],
        jnp.array(False), jnp.array(False), jnp.array(False), 0,
    )
    _, x1, _, ts, us, end, found, _, _, _ = jax.lax.while_loop(running, body, init)
    predicted = predict(ts, us, end)[0]
    return jax.lax.stop_gradient((ts[3], predicted)), x1, found


@eqx.filter_jit
def _crossing(theory, axis, states, bracket, steps, tol, solve_options):
    """``f(x_b(theta)) = f(x_a(theta))`` in ``bracket``, each branch solved from its state."""
    solve_options = dict(solve_options)
    state_a, state_b = jax.lax.stop_gradient(states)

    def branches(theta):
        th = _with(theory, axis, theta)
        return th, solve(th, state_a, **solve_options).state, solve(th, state_b, **solve_options).state

    def F(theta):
        th, a, b = branches(theta)
        return th.free_entropy(b) - th.free_entropy(a)

    value, residual = scalar_root(F, bracket, steps, tol)
    return value, branches(value)[1:], residual


@eqx.filter_jit
def _instability(theory, axis, state, bracket, steps, tol, solve_options):
    """``det(I - dT/dx) = 0`` at the fixed point ``x(theta)`` solved from ``state``, in ``bracket``."""
    # Plain Newton, as on the grid: following the flow would leave the trivial point where it repels.
    solve_options = {"method": Newton()} | dict(solve_options)
    state = jax.lax.stop_gradient(state)

    def point(theta):
        # The point is held fixed under differentiation: at the threshold I - dT/dx is singular, so
        # the implicit derivative of the point itself is not defined (the point is the symmetric,
        # uninformed one, which does not move with the parameters).
        th = _with(theory, axis, theta)
        return th, jax.lax.stop_gradient(solve(th, state, **solve_options).state)

    def F(theta):
        th, x = point(theta)
        flat, unravel = ravel_pytree(th.unconstrain(x))
        T = lambda u: ravel_pytree(th.unconstrain(th.update(th.constrain(unravel(u)))))[0]
        return jnp.linalg.det(jnp.eye(flat.size, dtype=flat.dtype) - jax.jacfwd(T)(flat))

    value, residual = scalar_root(F, bracket, steps, tol, ends=True)
    return value, (point(value)[1],), residual


@eqx.filter_jit
def _steady_branch(problem, axis, grid, options):
    """The steady state followed over ``grid``, its growth rates (NaN where it did not converge) and
    whether the warm start converged (the branch followed, not found again from the start).

    Each point is solved from the previous one and from the start at once (one traced solve), the
    first converged kept: the warm start follows the branch, the start recovers it past a point
    where the branch was lost."""
    options = dict(options)

    def step(state, value):
        th = problem.at(axis, value)
        starts = jax.tree.map(lambda a, b: jnp.stack([a, b]), state, problem.start)
        both = jax.vmap(lambda s: solve(th, s, **options))(starts)
        sol = _at(both, jnp.where(both.converged[0], 0, 1))
        carry = jax.tree.map(lambda new, old: jnp.where(sol.converged, new, old), sol.state, state)
        return carry, (sol, both.converged[0])

    _, (sols, followed) = jax.lax.scan(step, problem.start, grid)
    return sols.state, jnp.where(sols.converged, sols.observables["growth_rate"], jnp.nan), followed


def _differentiated_where(mask, tree):
    """``tree`` with the derivatives of its arrays kept where ``mask`` holds and cut elsewhere: the
    branch of a selection that is not taken gets no tangents, so that its derivative (not finite
    where it was computed from meaningless inputs) cannot reach the one taken as ``0 * NaN``."""
    return jax.tree.map(
        lambda x: jnp.where(mask, x, jax.lax.stop_gradient(x)) if eqx.is_inexact_array(x) else x, tree
    )


def _approach_end(problem, axis, values, states, k, options):
    """Narrow ``[values[k], values[k + 1]]``, where the stable branch followed from ``states[k]``
    ends, by following it over ``len(values)`` points within it, until it is ``1e-3`` of its width:
    the interval and the branch's last state. Each round reuses the compiled branch following."""
    num = values.shape[0]
    lo, hi, state = values[k], values[k + 1], _at(states, k)
    for _ in range(math.ceil(3 / math.log10(num - 1))):
        values = jnp.linspace(lo, hi, num, dtype=values.dtype)
        states, _, followed = _steady_branch(eqx.tree_at(lambda p: p.start, problem, state), axis, values, options)
        j, any_ = _first(followed[:-1] & ~followed[1:])
        j = jnp.where(any_, j, num - 2)
        lo, hi, state = values[j], values[j + 1], _at(states, j)
    return jax.lax.stop_gradient((lo, hi)), state


@eqx.filter_jit
def _stability(problem, axis, state, bracket, rates, steps, tol, solve_options):
    """``growth_rate(x(theta)) = 0`` in ``bracket`` (where the growth rates are ``rates``), the
    steady state solved from ``state``: ``(theta, (x,), |growth_rate|, converged)``, the last
    whether the steady state converged there and beside it (not past the end of a branch)."""
    solve_options = dict(solve_options)
    fixed, state, (lo, hi), (f_lo, f_hi) = jax.lax.stop_gradient((problem, state, bracket, rates))

    def evaluate(theta):
        sol = solve(fixed.at(axis, theta), state, **solve_options)
        return fixed.at(axis, theta).growth_rate(sol.state), None, (sol.state, sol.converged)

    # The secant method from the end where the rate is known: no evaluation before the loop.
    root, f, _, (x, converged) = bracketed_newton(
        evaluate, lo, hi, f_lo, lo, f_lo, (f_hi - f_lo) / (hi - lo), (state, jnp.array(True)), steps, tol
    )

    # The steady state at theta -+ h, where the Jacobian is regular (module docstring); solved
    # once, its derivatives those of one Newton step from it (the implicit ones, since it is a zero).
    h = jnp.finfo(root.dtype).eps ** (1 / 3) * (1 + jnp.abs(root))
    offsets = jnp.stack([-h, h])
    sols = jax.vmap(lambda d: solve(fixed.at(axis, root + d), x, **solve_options))(offsets)
    sides, converged = sols.state, converged & jnp.all(sols.converged)
    rates = jax.vmap(lambda d, s: fixed.at(axis, root + d).growth_rate(s))(offsets, sides)
    slope = (rates[1] - rates[0]) / (2 * h)  # along the steady state, to O(h^2)

    def newton_step(theta, problem, state):
        th = problem.at(axis, theta)
        flat, unravel = ravel_pytree(th.unconstrain(state))
        G = lambda u: ravel_pytree(th.unconstrain(th.update(th.constrain(unravel(u)))))[0] - u
        jacobian = jax.lax.stop_gradient(jax.jacfwd(G)(flat))
        return th.constrain(unravel(flat - jnp.linalg.solve(jacobian, G(flat))))

    # The growth rate at x, the derivatives of the steady state the mean of those at the sides;
    # one Newton step in theta with the gradient on (as in scalar_root): the implicit derivative.
    near = jax.vmap(lambda d, s: newton_step(root + d, problem, s))(offsets, sides)
    tangent = jax.tree.map(lambda s: (s[0] + s[1]) / 2 - jax.lax.stop_gradient((s[0] + s[1]) / 2), near)
    rate = problem.at(axis, root).growth_rate(jax.tree.map(jnp.add, x, tangent))
    return root - rate / slope, (x,), jnp.abs(f), converged


@eqx.filter_jit
def _linear_instability(theory, axis, grid, steps, tol):
    """``radius(theta) = 1`` for a theory's own ``linear_stability`` (module docstring)."""
    fixed = jax.lax.stop_gradient(theory)
    radii = jax.vmap(lambda v: _with(fixed, axis, v).linear_stability()[0])(grid)
    unstable = radii > 1
    k, any_ = _first(unstable[:-1] != unstable[1:])
    any_ = any_ & jnp.isfinite(radii[k]) & jnp.isfinite(radii[k + 1])  # inf: no trivial fixed point
    F = lambda theta: _with(theory, axis, theta).linear_stability()[0] - 1
    value, residual = scalar_root(F, (grid[k], grid[k + 1]), steps, tol, ends=True)
    _, state, direction = _with(fixed, axis, jax.lax.stop_gradient(value)).linear_stability()
    lo, hi = jnp.minimum(grid[0], grid[-1]), jnp.maximum(grid[0], grid[-1])
    found = any_ & (residual <= jnp.sqrt(tol)) & (value >= lo) & (value <= hi)
    return Threshold(value=jnp.where(found, value, jnp.nan), states=(state,), found=found, residual=residual, direction=direction)


@eqx.filter_jit
def _separability(theory, axis, steps, tol):
    value, found, residual = theory.separability_threshold(axis, steps, tol)
    return Threshold(value=jnp.where(found, value, jnp.nan), states=(), found=found, residual=residual)


def threshold(
    theory,
    axis: str,
    kind: str,
    bracket=None,
    *,
    num: int = 16,
    steps: int = 50,
    tol: float | None = None,
    damped_steps: int = 5000,
    end: str = "auto",
    **solve_options,
) -> Threshold:
    """Locate a transition of ``theory`` in the parameter ``axis``; see the module docstring.

    Args:
        theory: the other parameters (the value of ``axis`` itself is ignored).
        axis: the control parameter, a numeric field of ``theory``.
        kind: ``"algorithmic"``, ``"weak-recovery"``, ``"information-theoretic"``,
            ``"separability"`` (computed by the theory itself, without ``bracket``) or
            ``"stability"`` (of a steady state: ``theory`` an ODE theory or a
            :class:`~hdtheory.Stationary`, ``axis`` a field of the ODE theory).
        bracket: ``(start, stop)``: the uninformed branch (the steady state) is followed from
            ``start`` to ``stop`` (not used for ``kind="separability"``).
        num: number of grid values in the bracket (static).
        steps: iteration budget of the refinement.
        tol: tolerance of the refinement, 1e-10 in float64 and 1e-5 in float32 by default.
        damped_steps: budget of the damped re-solves along the branches.
        end: ``kind="stability"`` only: how the stable branch ends, ``"crossing"`` (its growth rate
            changes sign), ``"fold"`` or ``"auto"`` (whichever comes first along the grid). Under
            ``jit`` or ``vmap`` ``"auto"`` compiles both refinements; naming the end compiles one.
        **solve_options: passed to :func:`hdtheory.solve`.

    Returns:
        A :class:`Threshold`; ``found`` is false (and ``value`` NaN) where the grid bracketed no
        transition of that kind or the refinement did not converge.
    """
    if kind not in KINDS:
        raise ParameterError(f"parameter 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "stability":
        if isinstance(theory, ODETheory):
            theory = stationary(theory)
        if not isinstance(theory, Stationary):
            raise ParameterError(
                f"kind='stability' needs an ODETheory or a Stationary (a steady state), got {type(theory).__name__}"
            )
    ENDS = ("auto", "crossing", "fold")
    if end not in ENDS or (end != "auto" and kind != "stability"):
        raise ParameterError(f"parameter 'end' must be one of {', '.join(ENDS)} (not 'auto' only with kind='stability'), got {end!r}")
    if kind == "information-theoretic" and not hasattr(theory, "free_entropy"):
        raise ParameterError(f"{type(theory).__name__} has no free_entropy: no information-theoretic threshold")
    declared = parameters(type(theory.theory if kind == "stability" else theory))
    domain = declared.get(axis, dataclasses.field()).metadata.get("domain")
    if domain is None:
        numeric = [k for k, f in declared.items() if "domain" in f.metadata]
        raise ParameterError(f"parameter 'axis' must be one of {', '.join(numeric)}, got {axis!r}")
    if kind == "separability":
        if not hasattr(theory, "separability_threshold"):
            raise ParameterError(f"{type(theory).__name__} has no separability threshold")
        if not (type(steps) is int and steps >= 1):
            raise ParameterError(f"steps must be an integer >= 1, got steps={steps!r}")
        return _separability(theory, axis, steps, tol)
    if bracket is None or not (np.shape(bracket) == (2,) and domain.contains(bracket).all() and bracket[0] != bracket[1]):
        raise ParameterError(f"bracket must be two different values of {axis!r} in {domain}, got {bracket!r}")
    if not (type(num) is int and num >= 2 and type(steps) is int and steps >= 1):
        raise ParameterError(f"num must be an integer >= 2 and steps >= 1, got num={num!r}, steps={steps!r}")
    dtype = jnp.result_type(getattr(theory.theory if kind == "stability" else theory, axis), float)
    tol = (1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5) if tol is None else tol
    grid = jnp.linspace(bracket[0], bracket[1], num, dtype=dtype)
    options = tuple(sorted(solve_options.items()))

    if kind == "stability":
        # The grid only brackets the threshold: no derivative goes through it.
        fixed = jax.lax.stop_gradient(theory)
        states, rate, followed = _steady_branch(fixed, axis, grid, options)
        k, crossing = _first(jnp.sign(rate[:-1]) * jnp.sign(rate[1:]) < 0)
        # A stable branch that ends (the warm start fails past it) ends at a fold, where a real
        # eigenvalue reaches zero: the stability limit, located by Newton's method on the fold.
        j, ends = _first((rate[:-1] < 0) & followed[:-1] & ~followed[1:])
        crossing, ends = crossing & (end != "fold"), ends & (end != "crossing")
        eager = is_concrete(rate)
        if eager and not (crossing | ends):
            raise ParameterError(
                f"the steady state's growth_rate does not change sign over bracket {tuple(bracket)!r} "
                f"of {axis!r}, nor does a stable branch end there: {np.round(np.asarray(rate), 6).tolist()} "
                f"on {num} values (NaN: no converged steady state); widen the bracket or start from another state"
            )

        def at_crossing(taken):
            value, states, residual, converged = _stability(
                _differentiated_where(taken, theory), axis, _at(states_k, k), (grid[k], grid[k + 1]),
                (rate[k], rate[k + 1]), steps, tol, options,
            )
            return value, states, residual, crossing & converged

        def at_fold(taken):
            (near, far), state0 = _approach_end(fixed, axis, grid, states_k, j, options)
            value, states, residual = _fold(_differentiated_where(taken, theory), axis, state0, near, steps, tol)
            width = jnp.abs(far - near)
            inside = (value - jnp.minimum(near, far) >= -width) & (value - jnp.maximum(near, far) <= width)
            return value, states, residual, ends & inside

        states_k = states
        # A named end traces one refinement (under jit, even an array made from a constant is a
        # tracer, so the choice is made on the name).
        if end == "crossing":
            value, states, residual, any_ = at_crossing(True)
        elif end == "fold":
            value, states, residual, any_ = at_fold(True)
        elif eager:
            # The first end along the grid; the crossing where the fold's refinement fails.
            fold_first = ends & (~crossing | (j < k))
            value, states, residual, any_ = at_fold(True) if fold_first else at_crossing(True)
            if fold_first and not any_ and crossing:
                value, states, residual, any_ = at_crossing(True)
        else:
            # Under jit or vmap both, the fold where it comes first and is found. (Where it comes
            # first and is not found, its derivative, not taken, may reach the taken one as NaN.)
            fold_first = ends & (~crossing | (j < k))
            fold = at_fold(fold_first)
            use_fold = fold_first & fold[3]
            cross = at_crossing(~use_fold)
            value, states, residual, any_ = jax.tree.map(lambda a, b: jnp.where(use_fold, a, b), fold, cross)
    elif kind == "weak-recovery" and hasattr(theory, "linear_stability"):
        return _linear_instability(theory, axis, grid, steps, tol)
    elif kind == "weak-recovery":
        sols, radius = _trivial_branch(theory, axis, grid, options)
        stable = (radius < 1) & sols.converged
        k, any_ = _first(stable[:-1] != stable[1:])
        # A grid value on the threshold (within ~|x_uninformed - x_trivial|) keeps the uninformed
        # start, from which Newton converges only linearly to the double root: the other end of
        # the bracket is then the better start for the trivial point.
        marginal = jnp.abs(1 - radius[k]) <= math.sqrt(tol)
        end = jnp.where(marginal & (jnp.abs(1 - radius[k + 1]) > jnp.abs(1 - radius[k])), k + 1, k)
        state0 = jax.tree.map(lambda x: x[end], sols.state)
        value, states, residual = _instability(
            theory, axis, state0, (grid[k], grid[k + 1]), steps, tol, options
        )
    else:
        # Each branch starts where the iteration (the algorithm) from its initialisation goes: Newton's
        # method from there could land on the other branch.
        # The branches only bracket the threshold and start its refinement (whose start is cut from
        # the derivative): no derivative goes through them, and none is traced.
        fixed = jax.lax.stop_gradient(theory)
        inits = jax.tree.map(lambda a, b: jnp.stack([a, b]), theory.init("uninformed"), theory.init("informed"))
        ends = _iterated(fixed, axis, jnp.stack([grid[0], grid[-1]]), inits, damped_steps, options)
        start, stop = (jax.tree.map(lambda x, i=i: x[i], ends) for i in range(2))
        if kind == "algorithmic":
            (near, far), state0, any_ = _spinodal(fixed, axis, grid, start, stop, damped_steps, options)
            value, states, residual = _fold(theory, axis, state0, near, steps, tol)
            # The fold lies between the last point of the branch and the predicted fold (or the
            # first value past its end): Newton's method converging to another fold (the informed
            # branch's) is no result.
            width = jnp.abs(far - near)
            inside = (value - jnp.minimum(near, far) >= -width) & (value - jnp.maximum(near, far) <= width)
            any_ = any_ & inside
        else:
            up, up_entropy, down, down_entropy, differ = _branches(
                fixed, axis, grid, start, stop, damped_steps, options
            )
            gap = down_entropy - up_entropy
            k, any_ = _first(differ[:-1] & differ[1:] & (jnp.sign(gap[:-1]) * jnp.sign(gap[1:]) < 0))
            states0 = tuple(_at(s.state, k) for s in (up, down))
            value, states, residual = _crossing(
                theory, axis, states0, (grid[k], grid[k + 1]), steps, tol, options
            )
            # Both branches solved onto the same point make F = 0 anywhere: no crossing.
            a, b = (ravel_pytree(theory.unconstrain(x))[0] for x in states)
            any_ = any_ & (jnp.max(jnp.abs(a - b) / (1 + jnp.maximum(jnp.abs(a), jnp.abs(b)))) > 1e-6)
            # A branch on the edge of the domain where the free entropy is not stationary (perfect
            # recovery with a continuous prior and a noiseless channel) has no finite free entropy:
            # its value is that of the solver's floor, and no crossing of such values is a result.
            at = eqx.tree_at(lambda t: getattr(t, axis), theory, value)
            any_ = any_ & _stationary(at, states[0]) & _stationary(at, states[1])
    lo, hi = jnp.minimum(grid[0], grid[-1]), jnp.maximum(grid[0], grid[-1])
    found = any_ & (residual <= jnp.sqrt(tol)) & (value >= lo) & (value <= hi)
    return Threshold(value=jnp.where(found, value, jnp.nan), states=states, found=found, residual=residual)


@eqx.filter_jit
def _stationary(theory, state) -> jax.Array:
    """Whether the free entropy is stationary at ``state`` in the solver's coordinates: its slope
    below ``0.05 (1 + |f|)``. A diverging free entropy moves by O(1) per unit of the coordinates (the
    log of the error, on the floor); at a fixed point the slope is the quadrature's error, orders of
    magnitude below (at most ~4e-3 near perfect recovery at order 32)."""
    flat, unravel = ravel_pytree(theory.unconstrain(state))
    entropy = lambda x: theory.free_entropy(theory.constrain(unravel(x)))
    slope = jax.grad(entropy)(flat)
    return jnp.all(jnp.abs(slope) <= 0.05 * (1 + jnp.abs(entropy(flat))))


@eqx.filter_jit
def iterate(theory, steps: int, init="uninformed") -> dict[str, jax.Array]:
    """The observables along ``steps`` iterations of ``theory.update`` from ``init``.

    For a state-evolution theory this is the prediction for the algorithm at each iteration (for
    example AMP from its uninformed start). ``init`` is ``"uninformed"``, ``"informed"`` or a state.
    Returns the observables with a leading axis of length ``steps + 1`` (the start included).
    """
    state0 = theory.init(init) if isinstance(init, str) else init

    def step(state, _):
        return theory.update(state), theory.observables(state)

    last, history = jax.lax.scan(step, state0, None, length=steps)
    final = theory.observables(last)
    return jax.tree.map(lambda h, f: jnp.concatenate([h, f[None]]), history, final)
