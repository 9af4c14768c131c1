"""The spectrum of the features after one gradient step (``hdtheory.models.learned_spectrum``): the
closed-form Marchenko-Pastur transform against quadrature, the Marchenko-Pastur limit, the bulk
against eigenvalue histograms of finite feature matrices (Kolmogorov distance), the outlier against
the top eigenvalue of networks stepped at finite d, the threshold step size, derivatives against
finite differences, bad input and the command line."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.cli import main
from hdtheory.models.gcm import marchenko_pastur_rule
from hdtheory.models.gcm import gaussian_equivalence
from hdtheory.models.learned_spectrum import marchenko_pastur_stieltjes, one_step_ridge
from hdtheory.simulate import simulate
from hdtheory.simulate.learned_spectrum import feature_eigenvalues, one_step_ridge_errors


SIZE = 12
"""Every call of the point program is padded to this many points: one compilation."""


@pytest.fixture(scope="module")
def erf():
    """erf features, compiled once: (x, eta, gamma, alpha) -> (observables, d outlier / d eta,
    d density / d gamma), at most ``SIZE`` points a call."""

    def theory(x, eta, gamma, alpha):
        return hd.LearnedSpectrum(x=x, eta=eta, gamma=gamma, alpha=alpha)

    def one(x, eta, gamma, alpha):
        solution = hd.solve(theory(x, eta, gamma, alpha))
        outlier = jax.grad(lambda e: theory(x, e, gamma, alpha).top_eigenvalue()[0])(eta)  # no state
        density = jax.grad(lambda g: hd.solve(theory(x, eta, g, alpha)).observables["density"])(gamma)
        return solution.observables, solution.converged, outlier, density

    program = jax.jit(jax.vmap(one))

    def run(x, eta, gamma, alpha):
        args = jnp.broadcast_arrays(*(jnp.asarray(a, float) for a in (x, eta, gamma, alpha)))
        size = args[0].size
        args = [jnp.pad(jnp.ravel(a), (0, SIZE - size), mode="edge") for a in args]
        obs, converged, d_outlier, d_density = program(*args)
        assert np.all(converged)
        return {k: np.asarray(v)[:size] for k, v in obs.items()}, np.asarray(d_outlier)[:size], np.asarray(d_density)[:size]

    return run


GRID = 1000


@pytest.fixture(scope="module")
def grid():
    """erf features, compiled once: (x, eps, gamma, alpha, eta) -> (density, edge), ``GRID`` points."""

    def one(x, eps, gamma, alpha, eta):
        solution = hd.solve(hd.LearnedSpectrum(x=x, eps=eps, gamma=gamma, alpha=alpha, eta=eta))
        return solution.observables["density"], solution.observables["edge"], solution.converged

    program = jax.jit(jax.vmap(one))

    def run(x, eps, gamma, alpha, eta):
        args = jnp.broadcast_arrays(*(jnp.asarray(a, float) for a in (x, eps, gamma, alpha, eta)))
        size = args[0].size
        density, edge, converged = program(*(jnp.pad(jnp.ravel(a), (0, GRID - size), mode="edge") for a in args))
        assert np.all(converged)
        return np.asarray(density)[:size], np.asarray(edge)[:size]

    return run


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_marchenko_pastur_transform_against_quadrature(ratio):
    """The closed form (its branch) against the Gauss-Legendre rule of the Marchenko-Pastur law."""
    s, w = marchenko_pastur_rule(ratio, 200)
    for point in (0.7 + 0.4j, 3.0 + 0.5j, -0.5 + 0.0j, (1 + math.sqrt(ratio)) ** 2 + 0.3):
        expected = complex(jnp.sum(w / (s - point)))
        got = complex(marchenko_pastur_stieltjes(jnp.asarray(point), ratio))
        assert abs(got - expected) < 1e-10 * (1 + abs(expected)), (point, got, expected)


def test_marchenko_pastur_limit(grid):
    """``p << d`` (gamma = 1e-12, c = p / n = 0.5): W W^T = I and K is a Wishart matrix of ratio c
    scaled by ``E erf(u)^2 = (2 / pi) arcsin(2 / 3)``, whose density and edge are closed forms.
    Within 1e-5 (the limit's error is O(sqrt(gamma)))."""
    c, scale, xs = 0.5, 2 / np.pi * np.arcsin(2 / 3), np.array([0.3, 1.0, 2.0])
    density, edge = grid(xs * scale, 1e-9, 1e-12, 2e-12, 0.0)
    a, b = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2
    np.testing.assert_allclose(density, np.sqrt((b - xs) * (xs - a)) / (2 * np.pi * c * xs) / scale, rtol=1e-5)
    np.testing.assert_allclose(edge, b * scale, rtol=1e-5)


def test_bulk_against_eigenvalue_histogram(grid):
    """erf features, gamma = 1, alpha = 2, after a step eta = 4 that creates an outlier: the
    cumulative distribution of the density against that of the eigenvalues of two instances at
    d = 500 (1000 eigenvalues). Kolmogorov distance below 0.02: the empirical distribution is
    rigid to O(1 / p) = 0.002, the smoothing eps = 1e-6 and the grid add less; Gaussian equivalence
    holds to O(1 / sqrt(d)) (seen: 0.004). The trapezoid rule on the density gives a mass of one to
    1e-3 (the outlier carries none)."""
    theory = hd.LearnedSpectrum(gamma=1.0, alpha=2.0, eta=4.0)
    values = np.sort(np.concatenate([feature_eigenvalues(theory, d=500, key=jax.random.PRNGKey(s)) for s in (1, 2)]))
    xs = 3.2 * np.linspace(0.0, 1.0, GRID) ** 2  # dense near the steep lower edge (mu_*^2 = 0.04)
    density, _ = grid(xs, 1e-6, 1.0, 2.0, 4.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(xs))])
    empirical = np.searchsorted(values, xs, side="right") / values.size
    assert abs(cdf[-1] - 1) < 1e-3
    assert np.max(np.abs(empirical - cdf)) < 0.02


def test_outlier_against_top_eigenvalue(erf):
    """The top eigenvalue of networks stepped at d = 500 (gamma = 1, alpha = 2, alpha0 = 2, tanh
    target), 3 seeds: at eta = 0 the edge (within 5%: the Tracy-Widom mean lies O(p^(-2/3)) below,
    seen 2-4%); at eta = 6 the outlier, 1.9 times the edge (within 5% plus two standard errors: its
    fluctuations are O(d^(-1/2)), seen 1-4%), and the second eigenvalue at the edge."""
    etas = np.array([0.0, 6.0])
    obs, _, _ = erf(1.0, etas, 1.0, 2.0)
    np.testing.assert_array_equal(obs["has_outlier"], [0.0, 1.0])
    assert obs["outlier"][1] > obs["edge"][1] * 1.5
    for eta, outlier, edge in zip(etas, obs["outlier"], obs["edge"]):
        result = simulate(hd.LearnedSpectrum(gamma=1.0, alpha=2.0, eta=eta), d=500, seeds=3)
        top, sem = result.mean["outlier"], result.sem["outlier"]
        assert abs(top - outlier) < 0.05 * outlier + 2 * sem, (eta, top, outlier)
        assert abs(result.mean["edge"] - edge) < 0.05 * edge, (eta, result.mean["edge"], edge)


def test_threshold_step_size(erf):
    """The outlier appears at ``critical_eta``: absent just below, just above it sits next to the
    edge; the threshold is positive (the features at initialisation, a rank-one part of strength
    ``mu_1^2 gamma`` included, have no outlier) at every ratio."""
    gammas, alphas = np.array([0.5, 1.0, 2.0, 1.0]), np.array([1.0, 2.0, 1.0, 0.5])
    obs, _, _ = erf(1.0, 0.0, gammas, alphas)
    critical = obs["critical_eta"]
    assert np.all(critical > 0.5) and np.all(obs["has_outlier"] == 0)
    below, _, _ = erf(1.0, critical * 0.99, gammas, alphas)
    above, _, _ = erf(1.0, critical * 1.01, gammas, alphas)
    assert np.all(below["has_outlier"] == 0) and np.all(above["has_outlier"] == 1)
    assert np.all((above["outlier"] - above["edge"]) < 0.01 * above["edge"])


def test_derivatives_against_finite_differences(erf):
    """d outlier / d eta (eta = 5) and d density / d gamma (x = 1.2, inside the bulk) by central
    differences (h = 1e-5), to 1e-6 relative."""
    h = 1e-5
    obs, d_outlier, d_density = erf(1.2, [5.0, 5.0 + h, 5.0 - h, 5.0, 5.0], [1.0, 1.0, 1.0, 1.0 + h, 1.0 - h], 2.0)
    fd_outlier = (obs["outlier"][1] - obs["outlier"][2]) / (2 * h)
    fd_density = (obs["density"][3] - obs["density"][4]) / (2 * h)
    assert abs(d_outlier[0] - fd_outlier) < 1e-6 * abs(fd_outlier)
    assert abs(d_density[0] - fd_density) < 1e-6 * abs(fd_density) + 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [({"eta": -1.0}, "'eta'"), ({"gamma": -2.0}, "'gamma'"), ({"alpha0": 0.0}, "'alpha0'"),
     ({"activation": "relu"}, "'activation'.*mean"), ({"activation": "sign"}, "'activation'.*gradient"),
     ({"target": "cubic"}, "'target'")],
)
def test_bad_input_is_one_line(kwargs, match):
    with pytest.raises(hd.ParameterError, match=match) as error:
        hd.LearnedSpectrum(**kwargs)
    assert "\n" not in str(error.value)


# tests/test_cli.py checks the eval command; the fixture's program, the model.
@pytest.mark.extended
def test_cli_eval(erf, capsys):
    """``hdtheory eval learned-spectrum eta=6 x=1`` (the defaults gamma = 1, alpha = 2) against the
    compiled program of this file."""
    assert main(["eval", "learned-spectrum", "eta=6", "x=1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected, _, _ = erf(1.0, 6.0, 1.0, 2.0)
    assert record["converged"] and record["has_outlier"] == 1
    assert abs(record["outlier"] - float(expected["outlier"][0])) < 1e-9


# -- ridge on the learned features -----------------------------------------------------------------

KEYS = jax.random.split(jax.random.PRNGKey(3), 3)


@pytest.fixture(scope="module")
def ridge():
    """Compiled once: (eta, key) -> (test_error_total, observables), d test_error_total / d eta; ridge
    lam = 0.1 on erf features of a network stepped at d = 300 (gamma = 1, alpha = 2, tanh target)."""

    def error(eta, key):
        observables = hd.solve(one_step_ridge(eta=eta, key=key, d=300, lam=0.1)).observables
        return observables["test_error_total"], observables

    program = jax.jit(jax.value_and_grad(error, has_aux=True))

    def run(eta, key):
        (total, observables), slope = program(jnp.asarray(eta, float), key)
        return float(total), {k: float(v) for k, v in observables.items()}, float(slope)

    return run


def test_one_step_ridge_against_simulation(ridge):
    """Ridge on the features of networks stepped at d = 300 (the same weights as the theory's, 3
    seeds, 4000 held-out samples): the total and excess test errors within four standard errors
    plus 3% at eta = 0 and 6 (seen: within one standard error); the step lowers the error by more
    than a fifth (Ba et al. 2022: one step of size O(1) improves on the random features by
    learning the target's linear part better), in the theory and in the simulation."""
    means = {}
    for eta in (0.0, 6.0):
        theory = [ridge(eta, key)[1] for key in KEYS]
        result = one_step_ridge_errors(eta=eta, d=300, keys=KEYS, lam=0.1)
        for name in ("test_error_total", "test_error"):
            expected = np.mean([o[name] for o in theory])
            assert abs(result.mean[name] - expected) < 4 * result.sem[name] + 0.03 * expected, (eta, name)
        means[eta] = (np.mean([o["test_error_total"] for o in theory]), result.mean["test_error_total"])
    assert means[6.0][0] < 0.8 * means[0.0][0] and means[6.0][1] < 0.8 * means[0.0][1]


def test_one_step_ridge_at_zero_step_is_random_features(ridge):
    """eta = 0: random features with weights drawn at d = 300, against the Marchenko-Pastur limit of
    ``random-features`` (teacher ``c_1 beta.x``, the rest of the target as label noise) within 4%
    (the weights' spectrum differs by O(1 / sqrt(d)); seen 2%)."""
    _, c1, gstar = gaussian_equivalence("tanh")
    limit = hd.solve(hd.RandomFeatures(alpha=2.0, gamma=1.0, lam=0.1, rho=float(c1**2), noise=float(gstar**2),
                                       loss="square", teacher="linear")).observables
    drawn = np.mean([ridge(0.0, key)[0] for key in KEYS])
    assert abs(drawn - float(limit["test_error_total"])) < 0.04 * float(limit["test_error_total"])


def test_one_step_ridge_derivative_in_eta(ridge):
    """d test_error_total / d eta at eta = 4 (through the step, the eigendecomposition and the fixed
    point) against central differences (h = 1e-5), to 1e-6 relative."""
    h = 1e-5
    _, _, slope = ridge(4.0, KEYS[0])
    fd = (ridge(4.0 + h, KEYS[0])[0] - ridge(4.0 - h, KEYS[0])[0]) / (2 * h)
    assert slope < 0 and abs(slope - fd) < 1e-6 * abs(fd)


@pytest.mark.parametrize("kwargs, match", [({"eta": -1.0}, "'eta'"), ({"gamma": 0.0}, "'gamma'"),
                                           ({"activation": "relu"}, "'activation'")])
def test_one_step_ridge_bad_input(kwargs, match):
    with pytest.raises(hd.ParameterError, match=match):
        one_step_ridge(**kwargs)


def test_one_step_ridge_model_is_the_builder():
    """``one-step-ridge`` (the registered model, for the command line) is the builder's GCM at
    ``PRNGKey(seed)``: same spectrum, projections and ratio."""
    model = hd.OneStepRidge(eta=3.0, seed=2, d=100).gcm
    built = one_step_ridge(eta=3.0, d=100, key=jax.random.PRNGKey(2), lam=0.1)
    for name in ("omega", "theta2", "alpha", "rho", "noise", "lam"):
        np.testing.assert_allclose(getattr(model, name), getattr(built, name), rtol=1e-12)
    assert hd.models.MODELS["one-step-ridge"] is hd.OneStepRidge


class _RebuiltEachIteration(hd.OneStepRidge):
    """``one-step-ridge`` iterated through its own map, which draws the weights and decomposes the
    features' covariance at every evaluation (what ``solve`` did before it built the GCM once)."""

    def equivalent(self):
        return self


# The default run checks one-step ridge against simulation (test_one_step_ridge_against_simulation); this
# is the equality of the built-once GCM to the rebuilt map, an implementation check.
@pytest.mark.extended
def test_one_step_ridge_builds_its_gcm_once_per_solve():
    """``solve`` iterates the equivalent GCM built once (``EquivalentGCM.equivalent``): the fixed
    point, every observable and the derivative of the test error in ``eta`` (implicit
    differentiation, now through one construction of the GCM) equal those of the model's own map,
    rebuilt at each iteration, to 1e-12."""

    def solved(model):
        def error(eta):
            solution = hd.solve(model(eta=eta, seed=2, d=60))
            return solution.observables["test_error"], solution

        return jax.value_and_grad(error, has_aux=True)(jnp.asarray(3.0))

    (value, once), grad = solved(hd.OneStepRidge)
    (reference, each), reference_grad = solved(_RebuiltEachIteration)
    assert bool(once.converged) and bool(each.converged)
    for name, observable in each.observables.items():
        np.testing.assert_allclose(once.observables[name], observable, rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(grad, reference_grad, rtol=1e-12)
    assert abs(float(grad)) > 1e-3  # the step size moves the error: the derivative is no zero
