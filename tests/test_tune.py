"""hdtheory.tune: optima against closed forms and dense grids, boundaries, vmap and derivatives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hdtheory as hd

# The square loss with a linear teacher integrates polynomials: a low order is exact.
RIDGE = hd.ERM(alpha=2.0, lam=1.0, rho=2.0, noise=0.5, loss="square", teacher="linear", order=16)


@jax.jit
def _ridge_lam(theory):
    return hd.tune(theory, "test_error", {"lam": "log"})


def _at(theory, **values):
    names = list(values)
    return eqx.tree_at(lambda t: [getattr(t, n) for n in names], theory, [jnp.asarray(v) for v in values.values()])


def test_ridge_optimum_is_noise_over_prior_variance_over_200_alphas_in_one_call():
    # Ridge with a linear teacher is the posterior mean when lam = Delta / rho: the Bayes-optimal
    # estimator, so that is the optimal lam at every alpha (closed form).
    alphas = jnp.linspace(0.2, 5.0, 200)
    batch = jax.jit(jax.vmap(lambda a: hd.tune(_at(RIDGE, alpha=a), "test_error", {"lam": "log"})))(alphas)
    assert bool(jnp.all(batch.converged)), np.asarray(alphas)[~np.asarray(batch.converged)]
    np.testing.assert_allclose(batch.params["lam"], 0.5 / 2.0, rtol=1e-6)
    assert np.all(np.asarray(batch.at_boundary["lam"]) == 0)
    # The batched call equals tuning each alpha alone.
    some = np.arange(0, 200, 40)
    alone = np.array([_ridge_lam(_at(RIDGE, alpha=alphas[i])).params["lam"] for i in some])
    np.testing.assert_allclose(batch.params["lam"][some], alone, rtol=1e-8)


@jax.jit
def _ridge_derivatives(noise, rho, alpha):
    """The tuned lam, objective and q, their forward-mode derivatives in alpha and their reverse-mode
    derivatives in (noise, rho, alpha): one compiled program for the two tests of derivatives."""

    def tuned(noise, rho, alpha):
        result = _ridge_lam(_at(RIDGE, noise=noise, rho=rho, alpha=alpha))
        return result.params["lam"], result.objective, result.solution.observables["q"]

    values, forward = jax.jvp(lambda a: tuned(noise, rho, a), (alpha,), (jnp.ones_like(alpha),))
    reverse = jax.jacrev(tuned, argnums=(0, 1, 2))(noise, rho, alpha)
    return values, forward, reverse


def _float(x):
    return jnp.asarray(x, float)


def test_tuned_lam_derivatives_follow_the_closed_form():
    # lam* = noise / rho: d lam*/d noise = 1 / rho, d lam*/d rho = -noise / rho^2, d lam*/d alpha = 0.
    grads = _ridge_derivatives(_float(0.5), _float(2.0), _float(2.0))[2][0]  # reverse mode, of lam
    np.testing.assert_allclose(grads, [1 / 2.0, -0.5 / 4.0, 0.0], atol=1e-7)


# Dense grids: 1000 log-spaced values of lam on [1e-3, 1e2].
GRID = np.logspace(-3, 2, 1000)
# One case per loss (each a compiled tune and grid): ridge on a linear teacher has the closed-form
# optimum of the first test, checked at 200 alphas. The default run checks the search against the grid
# with the square loss; the other losses reach tune through the same path.
CASES = [
    ("square", "sign", 0.1),
    pytest.param("huber", "linear", 0.3, marks=pytest.mark.extended),
    pytest.param("logistic", "sign", 0.1, marks=pytest.mark.extended),
    pytest.param("hinge", "sign", 0.1, marks=pytest.mark.extended),
]


@pytest.mark.parametrize(("loss", "teacher", "noise"), CASES)
def test_tuned_lam_agrees_with_a_dense_grid_search(loss, teacher, noise):
    theory = hd.ERM(alpha=3.0, lam=1.0, noise=noise, loss=loss, teacher=teacher)
    result = hd.tune(theory, "test_error", {"lam": "log"})
    assert bool(result.converged) and int(result.at_boundary["lam"]) == 0
    errors = jax.jit(jax.vmap(lambda lam: hd.solve(_at(theory, lam=lam)).observables["test_error"]))(GRID)
    best = int(jnp.argmin(errors))
    assert 0 < best < len(GRID) - 1, "the grid must bracket the optimum"
    spacing = np.log(GRID[1] / GRID[0])
    assert abs(np.log(float(result.params["lam"]) / GRID[best])) <= spacing
    # The tuned objective is at least as good as the grid's best, to the solver's precision.
    assert float(result.objective) <= float(errors[best]) + 1e-10
    assert int(result.evaluations) * 10 <= len(GRID)


# The default run checks the derivative of lam* through the same implicit path against its closed
# form (test_tuned_lam_derivatives_follow_the_closed_form).
@pytest.mark.extended
def test_gradient_of_the_tuned_lam_with_respect_to_alpha_matches_finite_differences():
    # Logistic regression on a noisy sign teacher: lam* depends on alpha (no closed form). The test
    # error is flat in lam near its optimum here, so the optimum is located to a tight relative
    # gradient (1e-12): the derivative formula holds at the optimum, and both sides then agree to 1e-7.
    theory = hd.ERM(alpha=3.0, lam=1.0, noise=0.1, loss="logistic", teacher="sign")

    def lam_star(alpha):
        return hd.tune(_at(theory, alpha=alpha), "test_error", {"lam": "log"}, gtol=1e-12).params["lam"]

    # One compiled program gives lam* and its derivative; the differences reuse it.
    tuned = jax.jit(jax.value_and_grad(lam_star))
    eps = 1e-4
    fd = (tuned(3.0 + eps)[0] - tuned(3.0 - eps)[0]) / (2 * eps)
    assert abs(float(fd)) > 1e-3
    np.testing.assert_allclose(tuned(3.0)[1], fd, rtol=1e-5)


def test_an_optimum_beyond_the_low_bound_is_reported_with_the_limit():
    # The training loss decreases down to lam = 0, where ridge is least squares; at alpha > 1 its
    # training loss (1/2 per sample) is noise (1 - 1/alpha) / 2 (the residual has n - d degrees of
    # freedom).
    result = hd.tune(RIDGE, lambda observables: observables["train_loss"], {"lam": hd.Log(low=1e-2)})
    assert int(result.at_boundary["lam"]) == -1 and bool(result.converged)
    np.testing.assert_allclose(result.params["lam"], 1e-2, rtol=1e-6)
    np.testing.assert_allclose(result.limit_objective, 0.5 * (1 - 1 / 2.0) / 2, rtol=1e-8)
    assert float(result.objective) > float(result.limit_objective)


def test_separable_data_run_to_the_max_margin_limit():
    # Noiseless sign teacher at alpha = 1: the data are separable, the logistic training loss goes to
    # zero only as lam -> 0, and the unregularised minimiser does not exist (no limit to report).
    theory = hd.ERM(alpha=1.0, lam=0.1, loss="logistic", teacher="sign")
    result = hd.tune(theory, "train_loss", {"lam": hd.Log(low=1e-6)})
    assert int(result.at_boundary["lam"]) == -1
    assert float(result.objective) < 1e-3
    assert np.isnan(float(result.limit_objective))


def test_first_order_optimiser_and_softplus_transform():
    result = hd.tune(RIDGE, "test_error", {"lam": "softplus"}, optimizer=optax.sgd(3.0), max_iterations=300, gtol=1e-5)
    assert bool(result.converged)
    np.testing.assert_allclose(result.params["lam"], 0.25, rtol=1e-3)
    history = np.asarray(result.history["objective"])
    assert np.isnan(history[int(result.iterations) :]).all()
    assert np.isfinite(history[: int(result.iterations)]).all()


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({}, "at least one"),
        ({"loss": "log"}, "cannot tune 'loss'"),
        ({"lam": "cube"}, "transform for 'lam' must be one of"),
        ({"lam": hd.Log(low=2.0)}, r"'lam' must lie in \[2"),
        ({"lam": hd.Identity(low=-1.0, high=1.0)}, "'lam bound' must lie in"),
        ({"lam": hd.Log(low=1.0, high=0.5)}, "low < high"),
    ],
)
def test_bad_input_is_rejected_before_compiling(over, match):
    with pytest.raises(hd.ParameterError, match=match):
        hd.tune(RIDGE, "test_error", over)


def test_bad_objective_is_rejected():
    with pytest.raises(hd.ParameterError, match="objective"):
        hd.tune(RIDGE, 3, {"lam": "log"})


def test_the_tuned_objective_and_solution_differentiate_like_a_solve_at_the_optimum():
    # The objective and the solution that tune returns come from its search; their derivatives come
    # from a solve at the optimum, taken only when asked for. Against central differences of the
    # tuned objective and of an observable there (q), in alpha, by reverse and forward mode.
    # One compiled program, shared with the test above: its values give the differences.
    at = lambda alpha: _ridge_derivatives(_float(0.5), _float(2.0), _float(alpha))
    h = 1e-4
    (_, up, q_up), (_, down, q_down) = at(2.0 + h)[0], at(2.0 - h)[0]
    fd = np.array([(up - down) / (2 * h), (q_up - q_down) / (2 * h)])
    assert np.all(np.abs(fd) > 1e-2)
    _, forward, reverse = at(2.0)
    np.testing.assert_allclose([reverse[1][2], reverse[2][2]], fd, rtol=1e-6)
    np.testing.assert_allclose(forward[1:], fd, rtol=1e-6)
