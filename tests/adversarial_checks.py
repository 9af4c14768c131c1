"""Pieces shared by the adversarial-training tests: the scalar whose derivatives they check, the
solves with its gradient in one compiled program, and the comparison with a finite-size simulation."""

import jax
import pytest

import hdtheory as hd


def combined(observables):
    """``test_error + 2 robust_error``: one scalar whose derivatives check both errors' derivatives."""
    return observables["test_error"] + 2 * observables["robust_error"]


def solved_with_gradients(theory, points, names=("eps", "lam")):
    """At each of ``points`` (parameters stacked along a first axis), the solve of ``theory(point)``
    and the gradient of :func:`combined` in the parameters ``names`` by the implicit function theorem:
    one compiled program, one trace of the solve (the solution is the auxiliary output of
    ``value_and_grad``). Returns the stacked solutions and a tuple of gradients in ``names``' order."""

    def value(args, p):
        sol = hd.solve(theory(p | dict(zip(names, args))))
        return combined(sol.observables), sol

    def at(p):
        (_, sol), grad = jax.value_and_grad(value, has_aux=True)(tuple(p[name] for name in names), p)
        return sol, grad

    return jax.jit(jax.vmap(at))(points)


def assert_gradients_match_differences(observables, grad, names, at, first, h):
    """The implicit derivatives of :func:`combined` at the point ``at`` against central differences
    (step ``h``) between the points ``first + 2 k`` (``names[k]`` lowered by ``h``) and ``first + 2 k + 1``
    (raised), to 1e-5 relative: the differences' error is ~1e-9."""
    values = combined(observables)
    for k, name in enumerate(names):
        fd = (values[first + 2 * k + 1] - values[first + 2 * k]) / (2 * h)
        assert float(grad[k][at]) == pytest.approx(fd, rel=1e-5, abs=1e-8), (name, float(grad[k][at]), fd)


def assert_matches_simulation(sim, theory, tolerances, *, held_out=True):
    """Each ``(key, rel, atol)`` of ``tolerances``: the simulated mean within four standard errors plus
    ``rel |theory| + atol`` of the theory's value (the finite-size bias that the calling test states).
    With ``held_out``, also the error of the fitted weights on fresh samples under the attack (a Monte
    Carlo estimate) within four standard errors plus 0.01 of the simulated ``robust_error``: the
    attack budget that the theory assumes is the one that the attack reaches."""
    for key, rel, atol in tolerances:
        expected = float(theory[key])
        assert abs(sim.mean[key] - expected) <= 4 * sim.sem[key] + rel * abs(expected) + atol, (
            key, sim.mean[key], sim.sem[key], expected)
    if held_out:
        empirical = sim.mean["robust_error_empirical"]
        assert abs(empirical - sim.mean["robust_error"]) <= 4 * sim.sem["robust_error_empirical"] + 0.01
