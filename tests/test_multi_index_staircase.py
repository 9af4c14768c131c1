"""The staircase example (examples/staircase.py, run here in its quick mode rather than by
tests/test_examples.py): which direction of ``y = z1 + z1 z2 + noise`` is learned at which alpha; and the
one-step slopes of ``z1 + z1 z2 + z1 z2 z3``."""

import importlib.util
from pathlib import Path

import jax
import numpy as np

import hdtheory as hd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOISE = 0.1


def _one_step_monte_carlo(k, noise, seed, n=100_000, grid=np.linspace(-14.0, 14.0, 281)):
    """``T = E_y E[z|y] E[z|y]^T`` by brute force, independently of the model's rules: ``p(y)`` and
    ``E[z p(y|z)]`` as Monte Carlo averages over ``n`` draws of the fields (a Gaussian likelihood of
    width ``sqrt(noise)`` about the staircase), integrated over ``y`` by the trapezoid rule on ``grid``."""
    z = np.random.default_rng(seed).standard_normal((n, k))
    g = np.sum(np.cumprod(z, 1), 1)
    likelihood = np.exp(-0.5 * (grid[:, None] - g) ** 2 / noise) / np.sqrt(2 * np.pi * noise)
    p = likelihood.mean(1)
    mean = (likelihood @ z / n) / p[:, None]
    return np.einsum("y,yi,yj->ij", p, mean, mean) * (grid[1] - grid[0])


def test_staircase_directions_leave_zero_at_their_one_step_slopes(tmp_path):
    """Troiani et al. 2025 (AISTATS, arXiv:2405.15480): a direction with ``E[z_i | y] != 0`` is in the
    trivial subspace, learned at any ``alpha > 0`` (their part (i)). For ``z1 + z1 z2`` both are:
    ``E[z1 y] = 1`` and ``E[z2 y^2] = E[z2 (1 + z2)^2] = 2``. Then ``M = alpha T + O(alpha^2)``.

    Checked: the example's one-step slopes ``T_ii`` (the model's ``Mhat(0) / alpha``) against a Monte
    Carlo estimate (1e5 draws; three seeds spread by 3e-3 on ``T_11``, 1e-3 on ``T_22``: tolerance
    1e-2) and against the Cauchy-Schwarz lower bounds of the linear and quadratic estimators,
    ``T_11 >= E[z1 y]^2 / E y^2 = 1 / (2 + noise)`` and
    ``T_22 >= Cov(z2, y^2)^2 / Var(y^2) = 4 / (30 + 12 noise + 3 noise^2 - (2 + noise)^2)``
    (``E y^4 = 3 E(1 + z2)^4 + 12 noise + 3 noise^2``, ``E(1 + z2)^4 = 10``); the hierarchy
    ``T_11 > T_22`` of the Monte Carlo estimate; the solved overlaps at the smallest ``alpha``
    (0.02) on ``alpha T_ii`` within 2% (the ``O(alpha)`` correction), ``M_11 > M_22`` at every
    ``alpha``, every solve converged (the Hermite rule's error estimate below 5e-3 up to
    ``alpha = 0.5``) and the figure written."""
    spec = importlib.util.spec_from_file_location("staircase", EXAMPLES / "staircase.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "staircase.png"
    result = example.main(quick=True, out=str(out))
    assert out.stat().st_size > 0
    assert example.NOISE == NOISE and result["converged"].all()

    reference = _one_step_monte_carlo(2, NOISE, seed=0)
    np.testing.assert_allclose(result["slopes"], np.diag(reference), atol=1e-2)
    assert abs(reference[0, 1]) < 1e-2
    assert reference[0, 0] > reference[1, 1] + 0.2
    slopes = result["slopes"]
    assert slopes[0] > 1 / (2 + NOISE)
    assert slopes[1] > 4 / (30 + 12 * NOISE + 3 * NOISE**2 - (2 + NOISE) ** 2)

    alphas, m = example.QUICK["alphas"], result["m"]
    np.testing.assert_allclose(m[0] / alphas[0], slopes, rtol=2e-2)
    assert np.all(m[:, 0] > m[:, 1]) and np.all(m > 0)


def test_three_fields_one_step_slopes():
    """``z1 + z1 z2 + z1 z2 z3`` (``k = 3``, the issue's staircase): every field is trivial
    (``E[z3 y^2] = E[z3 (1 + z3)^2] = 2`` as for ``z2``), and the one-step law ``T`` keeps the hierarchy.
    ``T`` couples ``z2`` and ``z3`` (its ``(2, 3)`` entry about 0.05, as large as ``T_33``), so the slopes
    are its eigenvalues: the model's (``weak_recovery``'s ``trivial``) against the Monte Carlo estimate
    above (four seeds spread by 6e-3, 5e-3 and 1e-3 on the three: tolerances 1e-2, 1e-2 and 2e-3), the
    smallest an order of magnitude below the middle one."""
    slopes = np.asarray(jax.jit(lambda: hd.MultiIndex(link="staircase", k=3, noise=NOISE).weak_recovery()[1])())
    reference = np.linalg.eigvalsh(_one_step_monte_carlo(3, NOISE, seed=0))[::-1]
    assert np.all(np.abs(slopes - reference) < [1e-2, 1e-2, 2e-3])
    assert slopes[0] > slopes[1] > 10 * slopes[2] > 0
