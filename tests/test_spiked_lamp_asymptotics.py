"""LAMP's asymptotics for one linear generative layer (:meth:`hdtheory.Spiked.lamp`,
:mod:`hdtheory.models.spiked_lamp`) against the authors' saved random-matrix curves, the transition
``Delta_c = 1 + alpha``, finite differences and a finite-``d`` run of :func:`hdtheory.simulate.spiked.lamp`.

The reference numbers are the outputs saved in the authors' ``Demo_RMT/notebook.nb``
(github.com/benjaminaubin-zz/StructuredPrior_demo; Aubin et al. 2019, arXiv:1905.12385, their
``alpha = p / k`` is ``beta`` here, their ``Delta`` is ``1 / snr``), decoded from the plots'
``CompressedData``: ``Out[81]``, ``epsilon(Delta)`` at ``alpha = 2`` (300 points,
``Delta = 0.001, 0.011, ..., 2.991``; all of them agree with the formula to 1.0e-12, ten are kept here),
and ``Out[49]``, the first and second eigenvalues ``lambda_1``, ``lambda_2`` at ``alpha = 1`` (91 points,
``Delta = 0.5, 0.55, ..., 5``; all agree to 8e-16, except the second curve's first point,
``(0.532, 0.5)``, which is the plot clipped at its range, not a computed value).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import lamp

EPSILON_ALPHA_2 = [
    (0.001, 0.999500249501),
    (0.251, 0.885497985462),
    (0.501, 0.784533433637),
    (0.751, 0.691139164171),
    (1.001, 0.603048099757),
    (1.501, 0.438242342419),
    (2.001, 0.284476096973),
    (2.501, 0.138881838188),
    (2.801, 0.054699591856),
    (2.991, 0.00245539837122),
]
# (Delta, lambda_1, lambda_2) at alpha = 1: lambda_1 = 1 up to Delta_c = 2, then the bulk edge lambda_2.
EIGENVALUES_ALPHA_1 = [
    (0.55, 1.0, 0.526906422572),
    (0.8, 1.0, 0.776747646265),
    (1.0, 1.0, 0.879419746743),
    (1.5, 1.0, 0.981698104602),
    (1.95, 1.0, 0.999870630605),
    (2.5, 0.990823054788, 0.990823054788),
    (3.2, 0.962901562972, 0.962901562972),
    (5.0, 0.881259941423, 0.881259941423),
]


def _lamp(alpha, delta):
    return hd.Spiked(prior="generative", snr=1 / delta, beta=alpha).lamp()


def _over(alpha, deltas):
    return jax.vmap(lambda delta: _lamp(alpha, delta))(jnp.asarray(deltas))


def test_overlap_is_the_notebooks_epsilon_curve():
    deltas, epsilon = np.array(EPSILON_ALPHA_2).T
    out = _over(2.0, deltas)
    assert np.all(out["converged"]) and np.all(out["eigenvalue"] == 1)
    np.testing.assert_allclose(out["overlap"], epsilon, rtol=0, atol=1e-9)


def test_eigenvalues_are_the_notebooks_lambda_1_and_lambda_2():
    deltas, first, second = np.array(EIGENVALUES_ALPHA_1).T
    out = _over(1.0, deltas)
    assert np.all(out["converged"])
    np.testing.assert_allclose(out["eigenvalue"], first, rtol=0, atol=1e-9)
    np.testing.assert_allclose(out["bulk_edge"], second, rtol=0, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_the_outlier_leaves_at_delta_c_one_plus_alpha_where_the_bulk_edge_touches_one(alpha):
    """The paper's theorem (and the linearised state evolution's weak recovery, ``lam (1 + beta) = 1``):
    the overlap falls continuously to 0 at ``Delta_c = 1 + alpha``, where the bulk edge reaches 1, and
    is 0 past it, where the top eigenvalue is the edge (below 1)."""
    delta_c = 1 + alpha
    below, at, above = (_lamp(alpha, delta_c * f) for f in (1 - 1e-3, 1.0, 1 + 1e-3))
    assert 0 < float(below["overlap"]) < 0.01 and float(above["overlap"]) == 0
    assert float(below["eigenvalue"]) == 1 and float(above["eigenvalue"]) < 1
    assert abs(float(at["bulk_edge"]) - 1) < 1e-12
    assert float(below["bulk_edge"]) < 1 and float(above["bulk_edge"]) < 1


def test_without_structure_it_is_pca():
    """As ``alpha = d / k -> 0``, ``F F^T -> I``: the prior is i.i.d. Gaussian and LAMP's matrix is PCA's,
    ``Y / sqrt(Delta d) - I / Delta``, whose outlier has the squared cosine ``1 - Delta`` up to
    ``Delta_c = 1`` (BBP for ``Y / sqrt(d) = sqrt(lam) x x^T / d + W / sqrt(d)``), and the nonzero
    eigenvalues of ``F^T A F`` are those of ``A``: the bulk edge is ``A``'s top, ``-1 / Delta + 2 / sqrt(Delta)``
    (0 when that is negative: the atom of the ``k - d`` zero eigenvalues)."""
    alpha, deltas = 1e-4, np.array([0.2, 0.5, 0.8, 1.2])
    out = _over(alpha, deltas)
    assert np.all(out["converged"])
    np.testing.assert_allclose(out["overlap"], np.maximum(1 - deltas, 0), atol=1e-3)
    np.testing.assert_allclose(out["bulk_edge"], np.maximum(2 / np.sqrt(deltas) - 1 / deltas, 0), atol=1e-3)


@pytest.mark.parametrize(
    "key, alpha, delta",
    [
        ("overlap", 2.0, 1.3),
        # The default run checks the overlap's derivatives at (2, 1.3) through the same path.
        pytest.param("overlap", 0.5, 0.7, marks=pytest.mark.extended),
        ("bulk_edge", 1.0, 3.2),
    ],
)
def test_derivatives_in_alpha_and_delta_match_finite_differences(key, alpha, delta):
    grad = jax.grad(lambda a, d: _lamp(a, d)[key], argnums=(0, 1))(alpha, delta)
    h = 1e-6
    fd = (
        (_lamp(alpha + h, delta)[key] - _lamp(alpha - h, delta)[key]) / (2 * h),
        (_lamp(alpha, delta + h)[key] - _lamp(alpha, delta - h)[key]) / (2 * h),
    )
    np.testing.assert_allclose(np.array(grad), np.array(fd), rtol=1e-6, atol=1e-8)
    assert min(abs(float(g)) for g in grad) > 0.04


# The default run checks these asymptotics against the authors' published curves above, and LAMP at finite
# d against the same curves in test_spiked_generative_lamp_published.py.
@pytest.mark.extended
def test_finite_d_lamp_approaches_the_asymptotics():
    """At ``alpha = 1``, ``Delta = 0.8`` (not a point of the published curves), d = k = 1000, 4 seeds:
    the squared cosine (seen mean 0.504, seeds 0.41-0.60, against 0.5262) and the outlier at 1 (seen
    mean 0.995). The second eigenvalue sits below the edge 0.7767 (seen mean 0.733): the density is
    thin near its edge, and the top eigenvalue of the noise part alone was seen at 0.775, 0.750, 0.764
    for k = 500, 1000, 2000."""
    theory = hd.Spiked(prior="generative", snr=1 / 0.8, beta=1.0)
    asymptotic, out = theory.lamp(), lamp(theory, d=1000, seeds=4, key=jax.random.PRNGKey(3))
    assert abs(float(np.mean(out["overlap"])) - float(asymptotic["overlap"])) < 0.05
    assert abs(float(np.mean(out["eigenvalue"])) - 1) < 0.05
    assert 0 < float(asymptotic["bulk_edge"]) - float(np.mean(out["bulk_edge"])) < 0.08


def test_bad_input_and_other_priors_are_refused():
    with pytest.raises(hd.ParameterError, match="'beta' must lie in"):
        _lamp(0.0, 1.0)
    with pytest.raises(hd.ParameterError, match="'snr' must lie in"):
        _lamp(1.0, -1.0)
    with pytest.raises(NotImplementedError, match="one linear layer"):
        hd.Spiked(prior="generative", activation="sign").lamp()
