"""hdtheory.tune on ODE theories: learning rates minimising the error at a fixed time."""

import importlib.util
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The time and the theory of examples/lr_schedule.py's quick mode, whose constant-rate tune is then
# the same compiled program as the first test's.
T1 = 10.0
COMMITTEE = hd.Committee(K=2, M=2, lr=0.5, q0=0.2, r0=0.1)


def _error_at_t1(theory):
    return hd.integrate(theory, T1, saveat=jnp.array([T1]), max_steps=4096).observables["eg"][-1]


def test_constant_learning_rate_agrees_with_a_dense_grid():
    result = hd.tune(COMMITTEE, "eg", {"lr": hd.Log(low=1e-2, high=20.0)}, t1=T1, max_steps=4096)
    assert bool(result.converged) and int(result.at_boundary["lr"]) == 0
    grid = jnp.logspace(-1, np.log10(5.0), 400)
    errors = jax.jit(jax.vmap(lambda lr: _error_at_t1(eqx.tree_at(lambda t: t.lr, COMMITTEE, lr))))(grid)
    best = int(jnp.nanargmin(errors))
    assert 0 < best < len(grid) - 1
    assert abs(np.log(float(result.params["lr"]) / float(grid[best]))) <= np.log(grid[1] / grid[0])
    assert float(result.objective) <= float(errors[best]) + 1e-12


# The default run checks tune on this ODE theory against a dense grid (above) and the gradient in the
# schedule's pieces against differences (test_dynamics_committee).
@pytest.mark.extended
def test_a_piecewise_schedule_beats_the_best_constant_rate(tmp_path):
    """examples/lr_schedule.py (quick: K = M = 2, t1 = 10, three pieces), run here rather than by
    tests/test_examples.py: the constant rate is one point of the schedule's space, so the optimised
    schedule can only do better."""
    spec = importlib.util.spec_from_file_location("lr_schedule", EXAMPLES / "lr_schedule.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(quick=True, out=str(tmp_path / "lr_schedule.png"))
    constant, schedule = result["constant"], result["schedule"]
    assert bool(constant.converged) and schedule.params["pieces"].shape == (3,)
    assert float(schedule.objective) < float(constant.objective)
    assert (tmp_path / "lr_schedule.png").stat().st_size > 0
