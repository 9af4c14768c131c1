"""The optimal spectral estimators of decomposable multi-index links
(``hdtheory.models.multi_index_spectral``): their overlaps against the top eigenvectors of the
preprocessed matrices at finite d, their threshold against ``MultiIndex``'s ``alpha_c``, ``k = 1``
against ``Spectral``, the overlap's derivative against finite differences."""

import math

import jax
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.models.multi_index_spectral import decomposition, multi_index_spectral
from hdtheory.simulate.spectral import simulate_multi_index_spectral

ALPHA, H = 3.0, 1e-4


@pytest.fixture(scope="module")
def product():
    """``y = z1 z2 + N(0, 0.1)`` at alpha in {3, 3 +- h}, and the derivative of the first overlap."""

    def one(alpha):
        return multi_index_spectral(hd.MultiIndex(link="product", k=2, noise=0.1, alpha=alpha))

    program = jax.jit(lambda alpha: (one(alpha), jax.grad(lambda a: one(a)["overlaps"][0, 0])(alpha)))
    runs = [program(alpha) for alpha in (ALPHA, ALPHA + H, ALPHA - H)]
    results = {k: np.stack([np.asarray(r[k]) for r, _ in runs]) for k in runs[0][0]}
    return results, float(runs[0][1])


def test_product_basis_and_threshold(product):
    """``E[z z^T | y]`` of ``z1 z2`` is diagonal in the directions ``(z1 +- z2) / sqrt(2)`` (its entries are
    ``E[z1^2 | y] = E[z2^2 | y]`` and ``E[z1 z2 | y] = y``, up to the noise); the two estimators' thresholds are
    equal (the directions are exchanged by ``y -> -y``) and their minimum is ``MultiIndex``'s ``alpha_c``, the
    optimal spectral threshold of Defilippis et al. 2025. Off-diagonal pairs: no outlier."""
    results, _ = product
    assert np.all(results["converged"]) and np.all(results["decomposable"])
    basis = results["basis"][0]
    np.testing.assert_allclose(np.abs(basis), math.sqrt(0.5), atol=1e-8)
    spec = results["alpha_spec"][0]
    np.testing.assert_allclose(spec[0, 0], spec[1, 1], rtol=1e-8)
    assert np.isinf(spec[0, 1]) and np.isinf(spec[1, 0])
    # On the same posterior rule (16 nodes per panel; MultiIndex's default 4 moves alpha_c by 2e-6).
    alpha_c, _ = jax.jit(lambda: hd.MultiIndex(link="product", k=2, noise=0.1, inner_order=16).weak_recovery())()
    np.testing.assert_allclose(results["alpha_c"][0], float(alpha_c), rtol=1e-9)
    assert np.all(results["overlaps"][0][~np.eye(2, dtype=bool)] == 0)


# The default run checks the estimators against the matrices at finite d on sign(z1 z2) below.
@pytest.mark.extended
def test_product_overlaps_match_simulation(product):
    """The top eigenvectors of ``D_j`` at d = 1000 (3 seeds): squared cosines with their own direction
    within 4 standard errors plus 0.03 of the theory, with the other direction below ``10 / d``; the top
    eigenvalues likewise."""
    results, _ = product
    theory = hd.MultiIndex(link="product", k=2, noise=0.1, alpha=ALPHA)
    sim = simulate_multi_index_spectral(theory, results["basis"][0], d=1000, seeds=3)
    predicted = results["top_overlaps"][0]  # each D_j's top eigenvector: its own direction only
    assert 0.3 < predicted[0, 0] < 0.8 and np.all(predicted[~np.eye(2, dtype=bool)] == 0)
    mean, sem = sim.mean["overlaps"], sim.sem["overlaps"]
    np.testing.assert_array_less(np.abs(np.diag(mean) - np.diag(predicted)), 4 * np.diag(sem) + 0.03)
    assert np.all(mean[~np.eye(2, dtype=bool)] < 10 / 1000)
    top = np.max(results["eigenvalues"][0], axis=1)
    np.testing.assert_array_less(np.abs(sim.mean["eigenvalue"] - top), 4 * sim.sem["eigenvalue"] + 0.03)


def test_overlap_gradient_matches_finite_differences(product):
    results, slope = product
    fd = (results["overlaps"][1, 0, 0] - results["overlaps"][2, 0, 0]) / (2 * H)
    np.testing.assert_allclose(slope, fd, rtol=1e-5)
    assert slope > 0


def test_one_direction_is_spectral():
    """``k = 1``, ``y = z + N(0, 0.5)``: the single-index optimal spectral method of ``Spectral`` (the linear
    channel), its threshold ``(1 + noise)^2 / 2`` in closed form; the overlap to the two label rules' agreement."""
    result, single = jax.jit(
        lambda: (
            multi_index_spectral(hd.MultiIndex(link="sum", k=1, noise=0.5, alpha=2.0)),
            hd.solve(hd.Spectral(channel="linear", noise=0.5, alpha=2.0)).observables,
        )
    )()
    np.testing.assert_allclose(float(result["alpha_c"]), 1.125, rtol=1e-8)
    np.testing.assert_allclose(float(result["overlaps"][0, 0]), float(single["overlap"]), rtol=1e-3)
    np.testing.assert_allclose(float(result["eigenvalues"][0, 0]), float(single["eigenvalue"]), rtol=1e-6)


def test_staircase_is_not_decomposable():
    """``z1 + z1 z2``: ``E[z1 z2 | y]`` and ``E[z1^2 | y] - E[z2^2 | y]`` vary independently with ``y``, so no
    fixed directions diagonalise ``E[z z^T | y]``, and the estimators' numbers are not marked converged."""
    theory = hd.MultiIndex(link="staircase", k=2, noise=0.1)
    assert not bool(jax.jit(lambda: decomposition(theory)[3])())


def test_not_a_multi_index_theory_is_an_error():
    with pytest.raises(hd.ParameterError, match="theory"):
        multi_index_spectral(hd.Spectral())


def test_sign_product_closed_form_and_simulation():
    """``sign(z1 z2)``, no flips: ``E[z1 z2 | y] = 2 y / pi`` and ``E[z1^2 | y] = 1``, so that along
    ``(z1 +- z2) / sqrt(2)`` ``s(y) = 1 +- c y``, ``c = 2 / pi``, and ``T = 1 - 1 / s`` takes the two values
    ``a = c / (1 + c)``, ``b = -c / (1 - c)`` with ``s - 1 = +-c``. The outlier equation
    ``E[T (s - 1) / (lambda - T)] = 1 / alpha`` is then the quadratic
    ``(lambda - a)(lambda - b) = alpha c (a - b) lambda / 2`` (its root above ``a``), and the overlap
    ``psi' / (psi' - phi')`` follows in closed form; the threshold is ``1 / c^2 = pi^2 / 4`` (Troiani et al.
    2025). Against the top eigenvectors at d = 1000 (3 seeds) as for ``z1 z2``."""
    alpha = 4.0
    theory = hd.MultiIndex(link="sign-product", k=2, noise=0.0, alpha=alpha)
    results = {k: np.asarray(v) for k, v in jax.jit(lambda: multi_index_spectral(theory))().items()}
    c = 2 / math.pi
    a, b = c / (1 + c), -c / (1 - c)
    B = a + b + alpha * c * (a - b) / 2  # lambda^2 - B lambda + a b = 0
    lam = (B + math.sqrt(B**2 - 4 * a * b)) / 2
    Z, g = np.array([a, b]), np.array([1 + c, 1 - c])
    r = Z / (lam - Z)
    slope = 1 / alpha - np.mean(r**2)
    overlap = slope / (slope + np.mean(r**2 * g))
    np.testing.assert_allclose(results["alpha_c"], math.pi**2 / 4, rtol=1e-9)
    np.testing.assert_allclose(np.diag(results["overlaps"]), overlap, rtol=1e-8)
    sim = simulate_multi_index_spectral(theory, results["basis"], d=1000, seeds=3)
    mean, sem = sim.mean["overlaps"], sim.sem["overlaps"]
    np.testing.assert_array_less(np.abs(np.diag(mean) - overlap), 4 * np.diag(sem) + 0.03)
    assert np.all(mean[~np.eye(2, dtype=bool)] < 10 / 1000)
