r"""Continuation along one parameter: both branches of a first-order transition.

:func:`continuation` follows the fixed point as one field of the theory moves through a list of
values, each solve warm-started from the previous one (a :func:`jax.lax.scan`), once upward and once
downward. Where a branch ends (a spinodal), the warm start falls onto the other branch, so the two
sweeps differ exactly on the region of coexistence: hysteresis marks a first-order transition.

Each point must be an attracting fixed point of ``update`` (the physical branch that iteration
follows): Newton may converge to an unstable root, or fail past a spinodal where no root is near the
warm start, so a point whose Jacobian ``dT/dx`` has spectral radius >= 1, or that did not converge,
is solved again by damped iteration from the same warm start. If the theory defines
``free_entropy(state)``, the branch of larger free entropy is the thermodynamically stable one and the
values where the two branches' free entropies cross are reported.

A steady state of an ODE theory (an :class:`~hdtheory.ODETheory`, from its ``init()``, or a
:class:`~hdtheory.Stationary`, from its ``start``; ``axis`` a field of the ODE theory) is followed
the same way, by Newton's method from the previous point, whatever its stability: a plateau is a
saddle, and the map ``x + f(x)`` of :class:`~hdtheory.Stationary` attracts its iteration only
where the ODE's steps of size one would, which is not the ODE's stability. That is reported in the
observables ``growth_rate`` and ``stable``; a point that does not converge is solved again by damped
iteration, that is Euler steps of the flow.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._fixed_point import Damped, solve
from ._steady import Stationary, stationary
from ._sweep import _check_axes
from ._theory import ODETheory, ParameterError


def spectral_radius(theory, state) -> jax.Array:
    """Largest ``|eigenvalue|`` of ``dT/dx`` at ``state``: below 1 for an attracting fixed point."""
    flat, unravel = ravel_pytree(theory.unconstrain(state))
    jac = jax.jacfwd(
        lambda x: ravel_pytree(theory.unconstrain(theory.update(theory.constrain(unravel(x)))))[0]
    )(flat)
    return jnp.max(jnp.abs(jnp.linalg.eigvals(jac)))


@eqx.filter_jit
def _follow(theory, name: str, values, init, damped_steps: int, options: tuple):
    options = dict(options)

    steady = isinstance(theory, Stationary)

    def step(state, value):
        th = theory.at(name, value) if steady else eqx.tree_at(lambda t: getattr(t, name), theory, value)
        sol = solve(th, state, **options)
        # A steady state is followed whatever its stability (module docstring).
        unstable = False if steady else ~(spectral_radius(th, sol.state) < 1)
        sol = jax.lax.cond(
            unstable | ~sol.converged,
            lambda: solve(th, state, method=Damped(0.5), max_steps=damped_steps, tol=options.get("tol")),
            lambda: sol,
        )
        entropy = th.free_entropy(sol.state) if hasattr(th, "free_entropy") else jnp.nan
        # A failed point does not poison the warm start of the next one.
        carry = jax.tree.map(lambda new, old: jnp.where(sol.converged, new, old), sol.state, state)
        return carry, (sol, entropy)

    _, (solutions, entropy) = jax.lax.scan(step, init, values)
    return solutions, entropy


def continuation(
    theory,
    axis: str,
    values,
    *,
    init: str = "uninformed",
    damped_steps: int = 5000,
    **solve_options,
):
    """Follow the fixed point of ``theory`` along ``axis`` upward and downward.

    Args:
        theory: the fixed parameters; an ODE theory or a :class:`~hdtheory.Stationary` for its
            steady state (module docstring).
        axis: the name of a numeric field (of the ODE theory, for a steady state).
        values: increasing values of that field.
        init: the initialisation at the first value of each direction.
        damped_steps: budget of the damped re-solve at points where Newton lands on an unstable root.
        **solve_options: passed to :func:`hdtheory.solve`.

    Returns:
        An :class:`xarray.Dataset` with dimensions ``(branch, axis)``, ``branch`` being ``"up"`` and
        ``"down"``: the observables, the diagnostics and, if the theory has one, ``free_entropy``;
        ``hysteresis`` (the branches differ); and, with a free entropy, the variables of the stable
        branch with the prefix ``stable_`` and the crossing points in ``attrs["transitions"]``.
    """
    import xarray as xr

    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size < 2 or np.any(np.diff(values) <= 0):
        raise ParameterError(f"continuation along {axis!r} needs at least two increasing values")
    if isinstance(theory, ODETheory):
        theory = stationary(theory)
    fields = theory.theory if isinstance(theory, Stationary) else theory
    _check_axes(fields, {axis: values})
    dtype = jnp.result_type(getattr(fields, axis), float)
    state0 = theory.init(init)
    options = tuple(sorted(solve_options.items()))
    runs = {
        "up": _follow(theory, axis, jnp.asarray(values, dtype), state0, damped_steps, options),
        "down": _follow(theory, axis, jnp.asarray(values[::-1], dtype), state0, damped_steps, options),
    }
    flip = {"up": slice(None), "down": slice(None, None, -1)}

    def stacked(get):
        return np.stack([np.asarray(get(runs[b]))[flip[b]] for b in ("up", "down")])

    dims = ("branch", axis)
    data = {}
    for k in runs["up"][0].observables:
        value = stacked(lambda r, k=k: r[0].observables[k])
        # An array observable (the overlap matrices of a steady state) has dimensions of its own.
        data[k] = (dims + tuple(f"{k}_{i}" for i in range(value.ndim - 2)), value)
    for key in ("converged", "iterations", "residual", "status"):
        data[key] = (dims, stacked(lambda r, key=key: getattr(r[0], key)))
    flatten = jax.vmap(lambda state: ravel_pytree(state)[0])
    states = {b: np.asarray(flatten(runs[b][0].state))[flip[b]] for b in runs}
    scale = 1 + np.maximum(np.abs(states["up"]), np.abs(states["down"]))
    data["hysteresis"] = (axis, np.max(np.abs(states["up"] - states["down"]) / scale, axis=1) > 1e-6)
    attrs = {"transitions": []}
    if hasattr(theory, "free_entropy"):
        entropy = stacked(lambda r: r[1])
        data["free_entropy"] = (dims, entropy)
        stable = np.where(entropy[0] >= entropy[1], 0, 1)
        for key in list(data):
            if data[key][0] == dims and key != "free_entropy":
                data[f"stable_{key}"] = (axis, np.take_along_axis(data[key][1], stable[None], 0)[0])
        gap = np.where(data["hysteresis"][1], entropy[0] - entropy[1], np.nan)
        for i in np.flatnonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) < 0):
            # Linear interpolation of the free-entropy difference between the bracketing values.
            t = gap[i] / (gap[i] - gap[i + 1])
            attrs["transitions"].append(float(values[i] + t * (values[i + 1] - values[i])))
    attrs["transitions"] = np.asarray(attrs["transitions"])
    return xr.Dataset(data, coords={"branch": ["up", "down"], axis: values}, attrs=attrs)

