"""The generic engine on small theories with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

import hdtheory as hd
from hdtheory._theory import NONNEGATIVE, parameter


class Kepler(hd.FixedPointTheory):
    """``x = a cos(x) + b``: a contraction for ``a < 1``; dx/da = cos(x) / (1 + a sin(x))."""

    a: jax.Array = parameter(0.5, NONNEGATIVE, "slope")
    b: jax.Array = parameter(0.3, NONNEGATIVE, "offset")

    def init(self, kind="uninformed"):
        return {"x": jnp.asarray({"uninformed": 0.0, "informed": 1.0}[kind], float)}

    def update(self, state):
        return {"x": self.a * jnp.cos(state["x"]) + self.b}

    def observables(self, state):
        return {"x": state["x"], "x2": state["x"] ** 2}


class Runaway(hd.FixedPointTheory):
    """``x = 2 x + 1`` iterated by the damped method runs away; its root x = -1 is repelling."""

    def init(self, kind="uninformed"):
        return jnp.asarray(1.0)

    def update(self, state):
        return 2 * state + 1

    def observables(self, state):
        return {"x": state}


def reference(a, b):
    return optimize.brentq(lambda x: a * np.cos(x) + b - x, -10, 10, xtol=1e-15)


@pytest.mark.parametrize("method", [hd.Newton(), hd.Damped(0.3)], ids=["newton", "damped"])
@pytest.mark.parametrize("init", ["uninformed", "informed", {"x": jnp.asarray(5.0)}])
def test_fixed_point_and_implicit_derivative(method, init):
    sol = hd.solve(Kepler(a=0.7, b=0.2), init, method=method, max_steps=500)
    x = reference(0.7, 0.2)
    assert bool(sol.converged) and int(sol.status) == hd.Status.CONVERGED
    assert float(sol.observables["x"]) == pytest.approx(x, abs=1e-9)

    grad = jax.grad(lambda a: hd.solve(Kepler(a=a, b=0.2), init, method=method,
                                       max_steps=500).observables["x2"])(0.7)
    assert float(grad) == pytest.approx(2 * x * np.cos(x) / (1 + 0.7 * np.sin(x)), rel=1e-7)


def test_warm_start_from_a_solution_takes_fewer_steps():
    cold = hd.solve(Kepler(a=0.9, b=0.1), method=hd.Damped(0.0), max_steps=1000)
    warm = hd.solve(Kepler(a=0.9, b=0.1), cold, method=hd.Damped(0.0), max_steps=1000)
    assert int(warm.iterations) < int(cold.iterations)


def test_budget_exhaustion_and_divergence_are_reported():
    sol = hd.solve(Kepler(a=0.9, b=0.1), method=hd.Damped(0.0), max_steps=2)
    assert not bool(sol.converged) and int(sol.status) == hd.Status.MAX_STEPS
    assert float(sol.residual) > 1e-10
    sol = hd.solve(Runaway(), method=hd.Damped(0.0), max_steps=1000)
    assert int(sol.status) == hd.Status.DIVERGED
    # Newton finds the repelling root that the iteration cannot.
    assert float(hd.solve(Runaway()).observables["x"]) == pytest.approx(-1.0)


def test_vmap_gives_per_point_diagnostics():
    a = jnp.array([0.2, 0.5, 0.9])
    sol = jax.vmap(lambda a: hd.solve(Kepler(a=a, b=0.3), method=hd.Damped(0.0), max_steps=40))(a)
    assert sol.converged.shape == (3,)
    assert bool(sol.converged[0]) and not bool(sol.converged[2])
    np.testing.assert_allclose(sol.observables["x"][:2], [reference(0.2, 0.3), reference(0.5, 0.3)],
                               atol=1e-9)


def test_parameters_are_checked_before_tracing():
    with pytest.raises(hd.ParameterError, match="'a' must lie in \\[0, inf\\)"):
        Kepler(a=-1.0)
    # Traced values are not checked (no host sync inside jit).
    assert jax.jit(lambda a: hd.solve(Kepler(a=a)).observables["x"])(0.5).shape == ()


class OutsideFormulas(hd.FixedPointTheory):
    """``x = x / 2 - eps``: the fixed point ``x = -2 eps`` lies where the observable ``sqrt(x)`` has
    no value, as an overlap that rounds below zero does."""

    eps: jax.Array = parameter(1e-3, NONNEGATIVE, "how far below zero the fixed point lies")

    def init(self, kind="uninformed"):
        return jnp.asarray(1.0)

    def update(self, state):
        return state / 2 - self.eps

    def observables(self, state):
        return {"x": state, "root": jnp.sqrt(state)}


class SelfEstimated(hd.FixedPointTheory):
    """``x = x / 2 + c`` (fixed point ``2 c``), whose own estimate of its numerical error is ``c``."""

    c: jax.Array = parameter(0.1, NONNEGATIVE, "the fixed point's half and its error estimate")

    def init(self, kind="uninformed"):
        return jnp.asarray(0.0)

    def update(self, state):
        return state / 2 + self.c

    def observables(self, state):
        return {"x": state, "error": self.c}

    def accurate(self, state, observables):
        return observables["error"] <= 0.5


def test_an_inaccurate_fixed_point_is_never_converged():
    """A fixed point whose theory estimates its own error above its tolerance (``accurate`` false) is
    ``INACCURATE``, not converged, its numbers still reported; below it, converged (one program)."""
    solutions = jax.vmap(lambda c: hd.solve(SelfEstimated(c=c)))(jnp.asarray([0.1, 1.0]))
    assert solutions.status.tolist() == [hd.Status.CONVERGED, hd.Status.INACCURATE]
    assert solutions.converged.tolist() == [True, False]
    np.testing.assert_allclose(solutions.state, [0.2, 2.0], rtol=1e-10)


def test_a_nan_observable_is_never_converged():
    """A solve that meets its tolerance where an observable is NaN reports ``NOT_FINITE``; the same
    theory with its fixed point inside the formulas' domain converges (one compiled program)."""
    solutions = jax.vmap(lambda eps: hd.solve(OutsideFormulas(eps=eps)))(jnp.asarray([1e-3, 0.0]))
    assert solutions.status.tolist() == [hd.Status.NOT_FINITE, hd.Status.CONVERGED]
    assert solutions.converged.tolist() == [False, True]
