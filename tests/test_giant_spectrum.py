"""The bulk of the features' spectrum after a giant step (``hdtheory.models.giant_spectrum``): the
density against eigenvalue histograms of networks stepped at d = 500 (Kolmogorov distance between the
identically smoothed distribution functions), the outlier of the features' mean against the top
eigenvalue, the limit eta~ = 0 against ``learned-spectrum``, the derivative in eta~ against finite
differences, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate import simulate
from hdtheory.simulate.learned_spectrum import feature_eigenvalues

CASE = dict(gamma=1.0, alpha=2.0, alpha0=1.0, activation="tanh", target="tanh", order=48)
"""Where the bulk moves most in ``giant-step``'s checks (``c = 1.154``, ``kappa_s = 0.39``)."""

EPS = 0.02
GRID = jnp.linspace(-0.3, 3.0, 100)


@pytest.fixture(scope="module")
def program():
    """(x, eta~) -> (density, converged, outlier_per_unit, d density / d eta~), one compilation."""

    def density(x, eta):
        return hd.solve(hd.GiantSpectrum(x=x, eta=eta, eps=EPS, **CASE)).observables["density"]

    def one(x, eta):
        solution = hd.solve(hd.GiantSpectrum(x=x, eta=eta, eps=EPS, **CASE))
        obs = solution.observables
        return obs["density"], solution.converged, obs["outlier_per_unit"], jax.grad(density, 1)(x, eta)

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def call(eta):
        out = run(GRID, jnp.asarray(eta, float))
        assert np.all(out[1])
        return [np.asarray(o) for o in out]

    return call


def smoothed_cdf(density):
    return np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(np.asarray(GRID)))])


def test_bulk_against_networks_stepped_at_finite_d(program):
    """The eigenvalues of K (the top one, the features' mean, left out) smoothed by the same Cauchy
    kernel of width eps as the theory: Kolmogorov distance 0.004 at d = 300 and 0.006 at d = 600
    (two networks each); with the bulk of the initial law (kappa_s = 0, Cui et al. 2024) 0.031 and
    0.023."""
    density, _, _, _ = program(2.0)
    theory = hd.GiantSpectrum(eta=2.0, **CASE)
    values = np.concatenate([np.asarray(feature_eigenvalues(theory, d=500, key=jax.random.PRNGKey(s)))[:-1] for s in range(2)])
    x = np.asarray(GRID)[:, None]
    empirical = np.mean(EPS / np.pi / ((x - values) ** 2 + EPS**2), axis=1)
    distance = np.max(np.abs(smoothed_cdf(density) - smoothed_cdf(empirical)))
    assert distance < 0.012, distance


def test_mean_outlier_against_top_eigenvalue(program):
    """The features' mean ``mu_0(kappa) a``: ``lambda_max / p -> E mu_0^2``. Four networks at
    d = 500 (``simulate``): 0.234 +- 0.009 against 0.2399 (at d = 1000, 0.239; at eta~ = 1, 0.0866
    against 0.0864); the networks' spread, 5 to 8 %, does not shrink from d = 250 to 1000."""
    _, _, outlier, _ = program(2.0)
    measured = simulate(hd.GiantSpectrum(eta=2.0, **CASE), d=500, seeds=4)
    tops, error = measured.mean["outlier_per_unit"], measured.sem["outlier_per_unit"]
    assert abs(tops - outlier[0]) < 3 * error + 2 / 500, (measured.samples["outlier_per_unit"], outlier[0])


def test_no_step_is_learned_spectrum(program):
    """At eta~ = 0 the bulk is that of ``learned-spectrum`` at eta = 0 (its Marchenko-Pastur
    closed form), to the Hermite rule's error in the coefficients (48 nodes: 2e-6 in ``mu_*^2``)."""
    density, _, outlier, _ = program(0.0)

    def reference(x):
        theory = hd.LearnedSpectrum(x=x, eps=EPS, gamma=CASE["gamma"], alpha=CASE["alpha"], activation="tanh")
        return hd.solve(theory).observables["density"]

    expected = np.asarray(jax.jit(jax.vmap(reference))(GRID))
    np.testing.assert_allclose(density, expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(outlier, 0.0, atol=1e-12)


def test_derivative_in_eta_against_finite_differences(program):
    h = 1e-4
    _, _, _, grad = program(1.5)
    plus, minus = program(1.5 + h)[0], program(1.5 - h)[0]
    np.testing.assert_allclose(grad, (plus - minus) / (2 * h), rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(grad)) > 0.05  # the bulk moves with the step


@pytest.mark.parametrize(
    "kwargs, name",
    [({"eps": 0.0}, "eps"), ({"eta": -1.0}, "eta"), ({"alpha0": 0.0}, "alpha0"), ({"activation": "relu"}, "activation"),
     ({"target": "sign"}, "target")],
)
def test_bad_input(kwargs, name):
    with pytest.raises(hd.ParameterError, match=name) as error:
        hd.GiantSpectrum(**kwargs)
    assert "\n" not in str(error.value)
