"""Continuation on a theory with a known first-order transition (mean-field Ising model)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory._theory import POSITIVE, Interval, parameter


class CurieWeiss(hd.FixedPointTheory):
    """Magnetisation ``x = tanh(beta x + h)``; free entropy ``-beta x^2 / 2 + log 2 cosh(beta x + h)``.

    For ``beta > 1`` two stable branches coexist for ``|h| < h_c``, with the spinodal
    ``h_c = beta x_s - atanh(x_s)``, ``x_s = sqrt(1 - 1 / beta)``; by symmetry their free entropies
    cross at ``h = 0``.
    """

    beta: jax.Array = parameter(1.5, POSITIVE, "inverse temperature")
    h: jax.Array = parameter(0.0, Interval(), "external field")

    def init(self, kind="uninformed"):
        return {"x": jnp.asarray({"uninformed": 0.0, "informed": 1.0}[kind], float)}

    def update(self, state):
        return {"x": jnp.tanh(self.beta * state["x"] + self.h)}

    def observables(self, state):
        return {"x": state["x"]}

    def free_entropy(self, state):
        x = state["x"]
        return -self.beta * x**2 / 2 + jnp.log(2 * jnp.cosh(self.beta * x + self.h))


BETA = 1.5
X_S = np.sqrt(1 - 1 / BETA)
H_C = BETA * X_S - np.arctanh(X_S)


@pytest.fixture(scope="module")
def result():
    return hd.continuation(CurieWeiss(beta=BETA), "h", np.linspace(-0.5, 0.5, 100))


def test_both_branches_and_the_hysteresis_loop(result):
    h = result["h"].values
    assert bool(result["converged"].all())
    np.testing.assert_array_equal(result["hysteresis"].values, np.abs(h) < H_C)
    up, down = result["x"].sel(branch="up").values, result["x"].sel(branch="down").values
    assert np.all(up[h < H_C] < 0) and np.all(down[h > -H_C] > 0)
    # Every point is a fixed point of the map, and an attracting one.
    np.testing.assert_allclose(up, np.tanh(BETA * up + h), atol=1e-10)


def test_stable_branch_and_transition(result):
    h = result["h"].values
    np.testing.assert_allclose(result.attrs["transitions"], [0.0], atol=1e-9)
    stable = result["stable_x"].values
    assert np.all(np.sign(stable) == np.sign(h))


def test_newton_alone_would_land_on_the_unstable_root():
    # From a warm start next to the spinodal, Newton converges to the unstable middle root; the
    # continuation detects it (spectral radius > 1) and follows the attracting branch instead.
    theory = CurieWeiss(beta=BETA, h=0.1)
    sol = hd.solve(theory, {"x": jnp.asarray(-0.2)})
    assert bool(sol.converged) and float(hd.spectral_radius(theory, sol.state)) > 1


def test_continuation_rejects_bad_values():
    with pytest.raises(hd.ParameterError, match="increasing"):
        hd.continuation(CurieWeiss(), "h", [0.2, 0.1])
    with pytest.raises(hd.ParameterError, match="beta"):
        hd.continuation(CurieWeiss(), "beta", [-1.0, 1.0])


def test_branches_picture(result, tmp_path):
    from hdtheory import plot

    plot.curves(result, "x", "h", path=tmp_path / "branches.png")
    assert (tmp_path / "branches.png").stat().st_size > 1000
