"""The Gibbs error of the multi-index model (the error of a posterior sample ``W_s``), against references
computed here independently of the model's rules:

- ``k = 1`` against :class:`~hdtheory.BayesGLM`'s ``gibbs_errors`` (the sign channel's closed form
  ``arccos(q) / pi``, and the linear channel's ``2 (1 - q)``);
- ``sign(z1 z2)``: the fields of the teacher and of the sample, ``(z, z_s)``, are jointly Gaussian with
  covariance ``[[I, M], [M, I]]``; the probability that ``sign(z1 z2) != sign(z_s1 z_s2)`` is a sum of
  orthant probabilities of that four-dimensional Gaussian (SciPy's ``multivariate_normal.cdf``), and
  for a diagonal ``M`` the closed form ``e1 (1 - e2) + e2 (1 - e1)``, ``e_i = arccos(M_ii) / pi``;
- ``z1 z2``: ``E (z1 z2 - z_s1 z_s2)^2 = 2 (1 - M_11 M_22 - M_12^2)`` (Isserlis), twice the Bayes error;
- Bayes error <= Gibbs error <= twice it (module docstring), and the derivatives in ``alpha`` (through a
  solve) and in ``M`` and ``noise`` against central differences.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import hdtheory as hd

errors = eqx.filter_jit(lambda theory, M: jnp.stack(theory._errors(M)))


@pytest.mark.parametrize("link, channel, noise", [("sign-product", "sign", 0.1), ("sum", "linear", 0.3)])
def test_one_direction_is_bayes_glm(link, channel, noise):
    """``k = 1``: the Gibbs errors (and the Bayes errors) at given overlaps equal ``bayes-glm``'s to 1e-9."""
    ours, glm = hd.MultiIndex(link=link, k=1, noise=noise), hd.BayesGLM(channel=channel, noise=noise)
    for q in (0.05, 0.5, 0.95):
        got = errors(ours, jnp.asarray([[q]]))
        expected = jnp.stack(glm.gen_errors(jnp.asarray(q)) + glm.gibbs_errors(jnp.asarray(q)))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def _disagreement(M):
    """``P(sign(z1 z2) != sign(z_s1 z_s2))`` for ``(z, z_s) ~ N(0, [[I, M], [M, I]])``: the orthants with an
    odd number of negative coordinates, each pair ``s, -s`` counted once and doubled (SciPy's
    quasi-Monte Carlo, absolute error 1e-7 each)."""
    C = np.block([[np.eye(2), M], [M.T, np.eye(2)]])
    total = 0.0
    for s in itertools.product((1.0, -1.0), repeat=4):
        if np.prod(s) < 0 and s[0] > 0:
            D = np.diag(s)
            law = multivariate_normal(np.zeros(4), D @ C @ D, maxpts=400_000, abseps=1e-7, releps=0)
            total += 2 * law.cdf(np.zeros(4), rng=np.random.default_rng(0))
    return total


def test_sign_product_against_orthant_probabilities():
    """``sign(z1 z2)``, flips 0.05: the Gibbs error at diagonal ``M`` against the closed form, from small
    overlaps to near perfect recovery and with unequal ones (1e-6; seen up to 3.4e-7), at a correlated
    ``M`` against the orthant probabilities (2e-6, SciPy's error), the noisy label's
    ``noise + (1 - 2 noise) e``, and ``gen_error <= gibbs_error <= 2 gen_error`` (``2 p (1 - p)`` lies
    between ``min(p, 1 - p)`` and twice it), strictly here. Noiseless labels: the same errors, finite
    near perfect recovery (the noiseless label's probability underflows there)."""
    diagonal = ([0.3, 0.2], [0.9, 0.8], [0.99, 0.97], [0.999, 0.99], [0.9999, 0.5])
    overlaps = [np.diag(m) for m in diagonal] + [np.asarray([[0.6, 0.2], [0.2, 0.5]])]
    noise = 0.05
    found = np.asarray([errors(hd.MultiIndex(link="sign-product", k=2, noise=noise), jnp.asarray(M)) for M in overlaps])
    for M, (bayes, bayes_total, gibbs, gibbs_total) in zip(overlaps, found):
        if M[0, 1] == 0:
            e1, e2 = np.arccos(np.diagonal(M)) / np.pi
            np.testing.assert_allclose(gibbs, e1 * (1 - e2) + e2 * (1 - e1), atol=1e-6)
        else:
            np.testing.assert_allclose(gibbs, _disagreement(M), atol=2e-6)
        np.testing.assert_allclose(gibbs_total, noise + (1 - 2 * noise) * gibbs, rtol=1e-12)
        assert bayes + 0.003 < gibbs < 2 * bayes - 0.003
        assert bayes_total < gibbs_total < 2 * bayes_total
    noiseless = np.asarray([errors(hd.MultiIndex(link="sign-product", k=2, noise=0.0), jnp.asarray(M)) for M in overlaps])
    np.testing.assert_allclose(noiseless, found[:, [0, 0, 2, 2]], rtol=1e-9)


def test_product_closed_form():
    """``z1 z2`` (noise 0.1): Gibbs error ``2 (1 - M_11 M_22 - M_12^2)`` (plus the noise for the total)
    and the Bayes error half of it, to 1e-12 (the Hermite rule is exact for these polynomials)."""
    theory = hd.MultiIndex(link="product", k=2, noise=0.1)
    M = np.asarray([[0.6, 0.2], [0.2, 0.5]])
    excess = 1 - M[0, 0] * M[1, 1] - M[0, 1] ** 2
    expected = [excess, excess + 0.1, 2 * excess, 2 * excess + 0.1]
    np.testing.assert_allclose(errors(theory, jnp.asarray(M)), expected, rtol=1e-12)


@eqx.filter_jit
def _solved_gibbs(alphas):
    def one(alpha):
        solution = hd.solve(hd.MultiIndex(link="sign-product", k=1, alpha=alpha, noise=0.1))
        return solution.observables["gibbs_error"], solution.converged

    (value, converged), (grad, _) = jax.vmap(lambda a: jax.jvp(one, (a,), (jnp.ones_like(a),)))(alphas)
    return value, converged, grad


def test_gradient_in_alpha():
    """``sign`` at ``k = 1`` (flips 0.1, ``alpha = 2``): the derivative of the solved Gibbs error in ``alpha``
    (implicit differentiation) against central differences (step 1e-4: truncation ~1e-9, the solve's
    rounding ~1e-6 relative)."""
    h = 1e-4
    value, converged, grad = _solved_gibbs(jnp.asarray([2.0 - h, 2.0, 2.0 + h]))
    assert np.all(converged) and grad[1] < -0.01
    np.testing.assert_allclose(grad[1], (value[2] - value[0]) / (2 * h), rtol=1e-5)


def test_gradient_in_overlap_and_noise():
    """``sign(z1 z2)`` at a correlated ``M``: the derivative of the Gibbs errors in ``(M_11, M_12, noise)``
    against central differences (step 1e-5; the rule's nodes move with ``M``); the noiseless label's
    error does not depend on ``noise``."""
    M0 = jnp.asarray([[0.6, 0.2], [0.2, 0.5]])

    def f(x):
        M = M0 + jnp.asarray([[x[0], x[1]], [x[1], 0.0]])
        return jnp.stack(hd.MultiIndex(link="sign-product", k=2, noise=0.05 + x[2]).gibbs_errors(M))

    h, steps = 1e-5, jnp.eye(3)
    jacobian, values = eqx.filter_jit(lambda x: (jax.jacfwd(f)(x), jax.vmap(f)(jnp.concatenate([h * steps, -h * steps]))))(
        jnp.zeros(3)
    )
    fd = (values[:3] - values[3:]).T / (2 * h)
    assert np.all(np.abs(jacobian[:, :2]) > 0.01) and jacobian[0, 2] == 0 and abs(jacobian[1, 2]) > 0.01
    np.testing.assert_allclose(jacobian, fd, rtol=1e-5, atol=1e-9)
