"""hdtheory.tune(search="batched"): a grid in one vmapped solve, then Newton with the exact Hessian.

References: the ridge optimum lam = noise / rho in closed form (and its derivatives), dense grids of
the objective, the default search, finite differences.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd


def _at(theory, **values):
    names = list(values)
    return eqx.tree_at(lambda t: [getattr(t, n) for n in names], theory, [jnp.asarray(v) for v in values.values()])


RIDGE = hd.ERM(alpha=2.0, lam=1.0, rho=2.0, noise=0.5, loss="square", teacher="linear", order=16)
BOX = {"lam": hd.Log(low=1e-4)}
H = 1e-4
# (alpha, noise, rho): the closed form lam* = noise / rho at three alphas, two points either side in
# noise for finite differences, and noiseless ridge, whose optimum lam = 0 lies beyond the low bound.
ROWS = np.array([
    [0.3, 0.5, 2.0], [1.0, 0.5, 2.0], [3.0, 0.5, 2.0],
    [1.0, 0.5 + H, 2.0], [1.0, 0.5 - H, 2.0],
    [0.5, 0.0, 1.0], [2.0, 0.0, 1.0],
])


@pytest.fixture(scope="module")
def ridge():
    # One compiled program: the batched search vmapped over the settings (a batch of grids, a 2-D
    # batch), with the derivative of the tuned lam in the noise by the implicit function theorem.
    @jax.jit
    @jax.vmap
    def tuned(alpha, noise, rho):
        def lam_star(noise):
            result = hd.tune(_at(RIDGE, alpha=alpha, noise=noise, rho=rho), "test_error", BOX, search="batched")
            return result.params["lam"], result

        return jax.value_and_grad(lam_star, has_aux=True)(noise)

    (lam, result), slope = tuned(*ROWS.T)
    return np.asarray(lam), result, np.asarray(slope)


def test_ridge_optimum_and_its_derivative_follow_the_closed_form(ridge):
    # lam* = noise / rho, d lam* / d noise = 1 / rho (closed form), and finite differences.
    lam, result, slope = ridge
    assert np.all(np.asarray(result.converged[:5]))
    assert np.all(np.asarray(result.at_boundary["lam"][:5]) == 0)
    np.testing.assert_allclose(lam[:5], ROWS[:5, 1] / ROWS[:5, 2], rtol=1e-7)
    np.testing.assert_allclose(slope[:3], 1 / ROWS[:3, 2], rtol=1e-7)
    fd = (lam[3] - lam[4]) / (2 * H)
    np.testing.assert_allclose(slope[1], fd, rtol=1e-6)
    # A grid of 32 points and a few Newton steps, each in the history (NaN after the end).
    assert np.all(np.asarray(result.evaluations[:5]) <= 32 + 6)
    history, iterations = np.asarray(result.history["objective"]), np.asarray(result.iterations)
    steps = np.arange(history.shape[1])[None, :] < iterations[:, None]
    assert np.isfinite(history[steps]).all() and np.isnan(history[~steps]).all()


def test_an_optimum_beyond_the_low_bound_is_reported_with_the_limit(ridge):
    # Noiseless ridge: the posterior mean is lam = noise / rho = 0, below the box [1e-4, 1e8]. At
    # alpha = 2 least squares (lam = 0) recovers the teacher: the limit of the test error is 0. At
    # alpha = 0.5 the fixed point at lam = 0 does not converge (V is infinite): no limit is reported.
    lam, result, slope = ridge
    assert np.all(np.asarray(result.at_boundary["lam"][5:]) == -1)
    assert np.all(np.asarray(result.converged[5:]))
    np.testing.assert_allclose(lam[5:], 1e-4, rtol=1e-10)
    np.testing.assert_allclose(slope[5:], 0.0)
    assert abs(float(result.limit_objective[6])) < 1e-10 < float(result.objective[6])
    assert np.isnan(float(result.limit_objective[5]))


# The dense grid of tests/test_tune.py: 1000 log-spaced values of lam on [1e-3, 1e2].
GRID = np.logspace(-3, 2, 1000)


# The default run checks the batched search against ridge's closed form (above) and the default
# search against a dense grid (test_tune).
@pytest.mark.extended
def test_the_batched_search_agrees_with_the_default_and_a_dense_grid():
    # The square loss on a noisy sign teacher (no closed form for lam*); benchmarks/tune_vs_grid.py
    # compares the two searches for Huber, logistic and hinge too (a compilation each: too slow here).
    theory = hd.ERM(alpha=3.0, lam=1.0, noise=0.1, loss="square", teacher="sign")
    batched = hd.tune(theory, "test_error", {"lam": "log"}, search="batched")
    default = hd.tune(theory, "test_error", {"lam": "log"})
    assert bool(batched.converged) and int(batched.at_boundary["lam"]) == 0
    # Both meet the relative gradient 1e-9 where the objective's curvature in log lam is of order its
    # value: the optima agree to about sqrt(1e-9), the objectives to the solver's precision.
    np.testing.assert_allclose(batched.params["lam"], default.params["lam"], rtol=1e-4)
    np.testing.assert_allclose(batched.objective, default.objective, rtol=1e-10)
    errors = jax.jit(jax.vmap(lambda lam: hd.solve(_at(theory, lam=lam)).observables["test_error"]))(GRID)
    best = int(jnp.argmin(errors))
    assert 0 < best < len(GRID) - 1, "the grid must bracket the optimum"
    assert abs(np.log(float(batched.params["lam"]) / GRID[best])) <= np.log(GRID[1] / GRID[0])
    assert float(batched.objective) <= float(errors[best]) + 1e-10


def test_a_search_out_of_iterations_is_not_converged():
    # One Newton iteration is the evaluation at the best grid point: the grid's spacing in log lam
    # (1.2) leaves the gradient there far above gtol, so the search ends there, not converged.
    result = hd.tune(RIDGE, "test_error", {"lam": "log"}, search="batched", max_iterations=1)
    assert not bool(result.converged) and int(result.iterations) == 1
    assert float(result.grad_norm) > 1e-3 * float(result.objective)
    assert np.isfinite(float(result.objective))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"search": "newton"}, "search must be"),
        ({"search": "batched", "points": 2}, "points must be an integer >= 3"),
        ({"search": "batched", "optimizer": object()}, "no optimizer"),
    ],
)
def test_bad_input_is_rejected_before_compiling(options, match):
    with pytest.raises(hd.ParameterError, match=match):
        hd.tune(RIDGE, "test_error", {"lam": "log"}, **options)


def test_an_ode_theory_is_rejected():
    with pytest.raises(hd.ParameterError, match="fixed-point theories only"):
        hd.tune(hd.Committee(K=2, M=2, lr=0.5), "eg", {"lr": "log"}, t1=1.0, search="batched")
