"""hdtheory.tune at the edges: flat stretches, points where the objective is not finite, optima on a bound."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hdtheory as hd


def _at(theory, **values):
    names = list(values)
    return eqx.tree_at(lambda t: [getattr(t, n) for n in names], theory, [jnp.asarray(v) for v in values.values()])


def test_a_flat_stretch_is_not_an_optimum_hinge_from_both_sides():
    # Hinge on a sign teacher at alpha = 0.5: the data are separable, and for lam below about 0.12 the
    # estimator is the max-margin one up to its norm, so the test error is exactly constant there
    # (and again for large lam, where every sample is inside the margin). A start on either plateau
    # has a vanishing gradient without being an optimum. Reference: a dense grid of the objective.
    theory = hd.ERM(alpha=0.5, lam=1.0, loss="hinge", teacher="sign")
    starts = jnp.array([0.1, 1.0, 1e-3, 100.0])
    results = jax.jit(jax.vmap(lambda lam: hd.tune(_at(theory, lam=lam), "test_error", {"lam": "log"})))(starts)
    grid = np.logspace(-3, 2, 400)
    errors = np.asarray(jax.jit(jax.vmap(lambda lam: hd.solve(_at(theory, lam=lam)).observables["test_error"]))(grid))
    best = int(np.argmin(errors))
    assert 0 < best < len(grid) - 1 and errors[0] - errors[best] > 1e-3
    spacing = np.log(grid[1] / grid[0])
    for i, start in enumerate(np.asarray(starts)):
        assert bool(results.converged[i]) and int(results.at_boundary["lam"][i]) == 0, start
        assert abs(np.log(float(results.params["lam"][i]) / grid[best])) <= spacing, start
        assert float(results.objective[i]) <= errors[best] + 1e-10, start


RIDGE = hd.ERM(alpha=2.0, lam=1.0, rho=2.0, noise=0.5, loss="square", teacher="linear", order=16)


def test_a_point_where_the_objective_is_nan_is_never_returned():
    # The objective is the test error where lam < 0.5 (q above its value there; q decreases with
    # lam) and NaN beyond. Started in the NaN region, tune must not return the NaN start: it finds
    # the finite region and in it the optimum lam = noise / rho = 0.25 (the closed form).
    q_edge = float(hd.solve(_at(RIDGE, lam=0.5)).observables["q"])

    def objective(observables):
        return jnp.where(observables["q"] > q_edge, observables["test_error"], jnp.nan)

    result = hd.tune(_at(RIDGE, lam=1.0), objective, {"lam": "log"})
    assert np.isfinite(float(result.objective))
    assert bool(result.converged) and int(result.at_boundary["lam"]) == 0
    np.testing.assert_allclose(result.params["lam"], 0.25, rtol=1e-6)
    finite = np.isfinite(np.asarray(result.history["objective"]))
    assert finite[: int(result.iterations)].all()


def test_an_optimum_on_the_bound_is_reported_there():
    # Noiseless ridge on a linear teacher: the optimal lam is noise / rho = 0 at every alpha (the
    # posterior mean), so with the box [1e-4, 1e8] every optimum is on the low bound. Over a batch of
    # alphas, every point reaches it and says so, instead of stopping inside where a warm-started
    # solve failed, or returning a point whose objective is infinite.
    noiseless = _at(RIDGE, noise=0.0, rho=1.0)
    alphas = jnp.array([0.3, 0.5, 0.9, 1.1, 1.5, 3.0])
    results = jax.jit(jax.vmap(lambda a: hd.tune(_at(noiseless, alpha=a), "test_error", {"lam": hd.Log(low=1e-4)})))(alphas)
    assert np.all(np.asarray(results.at_boundary["lam"]) == -1), np.asarray(results.at_boundary["lam"])
    assert np.all(np.asarray(results.converged)), np.asarray(results.converged)
    np.testing.assert_allclose(results.params["lam"], 1e-4, rtol=1e-10)
    assert np.all(np.isfinite(np.asarray(results.objective)))
