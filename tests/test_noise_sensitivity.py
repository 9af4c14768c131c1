"""The noise sensitivity exponent and the large-noise statistical-to-computational gap of Defilippis,
Krzakala, Loureiro and Maillard 2026, "A noise sensitivity exponent controls large statistical-to-
computational gaps in single- and multi-index models", arXiv:2603.17896: for ``y = sigma(z) + sqrt(Delta)
xi`` the exponent is ``beta* = min{b : c_b != 0}``, ``c_b = E[sigma(z)^b (z^2 - 1)]``, and Bayes-optimal
AMP's weak-recovery threshold grows as ``beta*! Delta^beta* / c_beta*^2`` while the information-theoretic
one grows as ``Delta``.

- ``hdtheory.kernels.noise_sensitivity_exponent`` against projections computed here without quadrature:
  polynomial links by exact polynomial algebra and the Gaussian moments ``E z^(2j) = (2j - 1)!!``;
  ``|z|^b`` by ``E[|z|^b (z^2 - 1)] = b E|z|^b``, ``E|z|^b = 2^(b/2) Gamma((b + 1)/2) / sqrt(pi)``; a
  fine-tuned link with ``beta* = 3`` (even polynomials of low degree have ``beta* <= 2``), a Gaussian bump
  plus ``He_2``, by ``E[exp(-a z^2 / 2) z^(2j)] = (2j - 1)!! (1 + a)^(-(2j + 1)/2)``.
- The state evolution's own ``alpha_c = 1 / E_y (E[z^2 | y] - 1)^2`` (``MultiIndex`` at ``k = 1`` with a
  custom link; ``BayesGLM``'s phase retrieval channel ``y = |z| + noise``, whose channel is in closed form,
  as the slope of its map at ``q = 0``) over a decade or more of ``Delta``: its log-log slope against
  ``beta*``, its ratio to the asymptote tending to one with a shrinking correction.
- Phase retrieval (``beta* = 1``): below ``alpha_c`` the map of ``BayesGLM`` has no fixed point but
  ``q = 0``, so the information-theoretic weak-recovery threshold lies in ``[0.99 alpha_c, alpha_c]``:
  both ``Theta(Delta)``, a bounded gap. The information-theoretic threshold of ``MultiIndex``'s links
  (``He_4``: ``Theta(Delta)`` against ``alpha_c``'s ``Delta^2``) is checked in
  ``tests/test_multi_index_free_entropy.py``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import polynomial as P
from scipy.optimize import brentq

import hdtheory as hd
from hdtheory.kernels import noise_sensitivity_exponent

SQRT24 = math.sqrt(24.0)
HE2 = np.array([-1.0, 0.0, 1.0])  # z^2 - 1, coefficients in increasing powers
HE4 = np.array([3.0, 0.0, -6.0, 0.0, 1.0]) / SQRT24  # He_4 / sqrt(4!)
CUBE = np.array([0.0, 0.0, 0.0, 1.0])


def double_factorial(n):
    return math.prod(range(n, 0, -2)) if n > 0 else 1


def gaussian_moment(k):
    return 0.0 if k % 2 else float(double_factorial(k - 1))


def polynomial_projections(coefficients, b_max):
    """``c_b = E[p(z)^b (z^2 - 1)]`` for a polynomial ``p``, by exact algebra and Gaussian moments."""
    out = []
    for b in range(1, b_max + 1):
        product = P.polymul(P.polypow(coefficients, b), HE2)
        out.append(sum(c * gaussian_moment(k) for k, c in enumerate(product)))
    return np.array(out)


def abs_moment(b):
    return 2 ** (b / 2) * math.gamma((b + 1) / 2) / math.sqrt(math.pi)


def bump_moment(a, j):
    """``E[exp(-a z^2 / 2) z^(2j)]``."""
    return double_factorial(2 * j - 1) * (1 + a) ** (-(2 * j + 1) / 2)


def bump_projection(s, b):
    """``c_b`` of ``sigma = exp(-s z^2 / 2) + kappa(s) He_2``, ``kappa = s (1 + s)^(-3/2) / 2`` (so that
    ``c_1 = 0``): ``sigma^b`` expanded binomially, each term ``e^(-m s z^2 / 2) He_2^(n + 1)`` a sum of the
    bump's moments."""
    kappa = s * (1 + s) ** -1.5 / 2
    total = 0.0
    for m in range(b + 1):  # m factors of the bump, b - m of kappa He_2
        n = b - m
        he2_power = P.polypow(HE2, n + 1)  # He_2^(b - m) (z^2 - 1), a polynomial in z^2
        term = sum(he2_power[2 * j] * bump_moment(m * s, j) for j in range(len(he2_power) // 2 + 1))
        total += math.comb(b, m) * kappa**n * term
    return total


S_STAR = brentq(lambda s: bump_projection(s, 2), 10.0, 20.0, xtol=1e-14)  # c_2 = 0 there (s ~ 12.09)
KAPPA = S_STAR * (1 + S_STAR) ** -1.5 / 2


def bump(z):
    return jnp.exp(-S_STAR * z**2 / 2) + KAPPA * (z**2 - 1)


def he4(z):
    return (z**4 - 6 * z**2 + 3) / SQRT24


def test_exponent_against_closed_form_projections():
    b_max = 6
    cases = {  # link: (its exponent, c_b for b = 1..b_max)
        "z^2 - 1": (lambda z: z**2 - 1, 1, polynomial_projections(HE2, b_max)),
        "|z|": (jnp.abs, 1, np.array([b * abs_moment(b) for b in range(1, b_max + 1)])),
        "He_4 / sqrt(24)": (he4, 2, polynomial_projections(HE4, b_max)),
        "z^3": (lambda z: z**3, 2, polynomial_projections(CUBE, b_max)),
        "bump": (bump, 3, np.array([bump_projection(S_STAR, b) for b in range(1, b_max + 1)])),
    }
    # The hand-derived values named in the module docstring and the test's brief.
    np.testing.assert_allclose(cases["z^2 - 1"][2][:2], [2.0, 8.0])
    np.testing.assert_allclose(cases["|z|"][2][0], math.sqrt(2 / math.pi))
    np.testing.assert_allclose(cases["He_4 / sqrt(24)"][2][:2], [0.0, 192.0 / 24.0], atol=1e-12)
    for name, (link, exponent, projections) in cases.items():
        result = noise_sensitivity_exponent(link, b_max)
        assert result.exponent == exponent, name
        np.testing.assert_allclose(result.coefficient, projections[exponent - 1], rtol=1e-10, err_msg=name)
        scale = np.abs(projections).max()
        np.testing.assert_allclose(result.projections, projections, rtol=1e-10, atol=1e-12 * scale, err_msg=name)
    # No b at all: sigma^b is odd or one, never on He_2.
    none = noise_sensitivity_exponent(jnp.sign, b_max)
    assert none.exponent == math.inf and none.coefficient == 0.0
    # The tolerance is relative to c_b's Cauchy-Schwarz bound: a first projection of 2e-6 counts.
    assert noise_sensitivity_exponent(lambda z: he4(z) + 1e-6 * (z**2 - 1)).exponent == 1
    # A float32 link: its rounding (1e-7) below the default tolerance of its dtype, the sums in float64.
    single = noise_sensitivity_exponent(lambda z: he4(z.astype(jnp.float32)))
    assert single.exponent == 2 and abs(single.coefficient - 8.0) < 1e-4


def test_noise_sensitivity_bad_input():
    for kwargs, name in (
        (dict(link="abs"), "link"),
        (dict(link=jnp.abs, b_max=0), "b_max"),
        (dict(link=jnp.abs, b_max=2.5), "b_max"),
        (dict(link=jnp.abs, rtol=1.5), "rtol"),
        (dict(link=lambda z: jnp.sum(z)), "link"),
        (dict(link=lambda z: jnp.exp(z**4)), "link"),
    ):
        with pytest.raises(ValueError, match=f"parameter '{name}'") as info:
            noise_sensitivity_exponent(**kwargs)
        assert "\n" not in str(info.value)
    for kwargs in (dict(k=2, link="product"), dict(k=1, link="sign-product", noise=0.1)):
        with pytest.raises(hd.ParameterError, match="k = 1 and a continuous link"):
            hd.MultiIndex(**kwargs).large_noise_alpha_c()


def _alpha_c(link, noises, inner_order=0):
    def one(noise):
        field = hd.MultiIndex(k=1, link="custom", link_fn=lambda z: link(z[..., 0]), noise=noise, inner_order=inner_order)
        return field.weak_recovery()[0]

    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(noises)))


def _phase_retrieval(alpha, noise):
    return hd.BayesGLM(alpha=alpha, noise=noise, channel="abs", order=16, panel_order=6)


@jax.jit
@jax.vmap
def _phase_retrieval_alpha_c(noise):
    """``1 / (dT/dq at q = 0)`` at ``alpha = 1``: ``qhat`` is proportional to ``alpha``."""
    return 1 / jax.grad(lambda q: _phase_retrieval(1.0, noise).update(q))(jnp.zeros((), noise.dtype))


def test_state_evolution_gap_grows_as_the_exponent():
    """``alpha_c`` from the state evolution against ``beta*! Delta^beta* / c^2`` with the hand-derived ``c``:
    the last log-log slope within 0.02 of ``beta*`` and the ratio within 1% of one at the largest noise,
    its distance to one shrinking along ``Delta``. The ``Delta`` ranges start where the asymptote applies
    (``He_4 / sqrt(24)`` has ``c_3 = 235``, ``c_4 = 12528``: its series in ``Delta^(-1/2)`` settles beyond
    ``Delta ~ 10^4``) and stop where ``alpha_c`` stays below ``1e10`` (beyond, ``MultiIndex`` reports
    ``inf``, the linearisation's eigenvalue within its rules' error of zero). The bump's narrow Gaussian
    (width 0.29) is run at 256 posterior nodes per panel (on the former Gauss-Hermite posterior rule, the
    default 24 nodes left the rule's own ``c_1`` not zero enough: ``alpha_c`` grew as ``Delta``, slopes 1.4
    to 1.05); seen: ratios 0.83, 0.94, 0.98, 0.994
    (``z^2 - 1``), 0.970, 0.9971, 0.9990 (``He_4``), 0.962, 0.987, 0.996 (bump), 0.9974, 0.99951,
    0.99995 (``|z|``)."""
    cases = (  # (alpha_c over Delta, Delta, beta*, c)
        (lambda d: _alpha_c(lambda z: z**2 - 1, d), [30.0, 100.0, 300.0, 1000.0], 1, 2.0),
        (lambda d: _alpha_c(he4, d), [1e4, 1e5, 3e5], 2, 8.0),
        (lambda d: _alpha_c(bump, d, inner_order=256), [10.0, 30.0, 100.0], 3, bump_projection(S_STAR, 3)),
        (lambda d: np.asarray(_phase_retrieval_alpha_c(jnp.asarray(d))), [10.0, 100.0, 1000.0], 1, math.sqrt(2 / math.pi)),
    )
    for alpha_c, noises, exponent, c in cases:
        noises = np.asarray(noises)
        values = alpha_c(noises)
        slopes = np.diff(np.log(values)) / np.diff(np.log(noises))
        assert abs(slopes[-1] - exponent) < 0.02, (exponent, slopes)
        distance = np.abs(values / (math.factorial(exponent) * noises**exponent / c**2) - 1)
        assert distance[-1] < 0.01, (exponent, distance)
        assert np.all(np.diff(distance) < 0), (exponent, distance)


def test_large_noise_alpha_c_helper():
    """``MultiIndex.large_noise_alpha_c`` for ``He_4 / sqrt(24)``: ``2! Delta^2 / 8^2 = Delta^2 / 32``, under
    ``vmap``; its derivative in ``noise`` against central finite differences; the linear link's exact
    ``alpha_c`` and its asymptote; the bump's."""
    def helper(noise):
        return hd.MultiIndex(k=1, link="custom", link_fn=lambda z: he4(z[..., 0]), noise=noise).large_noise_alpha_c()

    noises = jnp.asarray([1e2, 1e4])
    np.testing.assert_allclose(jax.vmap(helper)(noises), noises**2 / 32, rtol=1e-12)
    step = 1e-3
    difference = (helper(100.0 + step) - helper(100.0 - step)) / (2 * step)
    np.testing.assert_allclose(jax.grad(helper)(100.0), difference, rtol=1e-8)
    # The linear link z (beta* = 2, c_2 = E[z^2 (z^2 - 1)] = 2): alpha_c = (1 + Delta)^2 / 2 in closed form
    # (y ~ N(0, 1 + Delta), E[z^2 | y] - 1 = (y^2 / (1 + Delta) - 1) / (1 + Delta)), its asymptote Delta^2 / 2.
    linear = hd.MultiIndex(k=1, link="sum", noise=1e3)
    np.testing.assert_allclose(linear.large_noise_alpha_c(), 1e6 / 2, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(lambda: linear.weak_recovery()[0])(), 1001.0**2 / 2, rtol=1e-9)
    bump_link = hd.MultiIndex(k=1, link="custom", link_fn=lambda z: bump(z[..., 0]), noise=10.0)
    np.testing.assert_allclose(bump_link.large_noise_alpha_c(), 6e3 / bump_projection(S_STAR, 3) ** 2, rtol=1e-8)


@jax.jit
def _phase_retrieval_map_gain(noises, alphas):
    """``T(q) - q`` of ``BayesGLM``'s phase retrieval map on a grid of ``q`` in ``(0, 1)``, per point."""
    qs = jnp.concatenate([jnp.geomspace(1e-4, 0.1, 5), jnp.linspace(0.2, 0.99, 9)])
    return jax.vmap(lambda noise, alpha: jax.vmap(lambda q: _phase_retrieval(alpha, noise).update(q) - q)(qs))(
        noises, alphas
    )


def test_phase_retrieval_information_theoretic_threshold_is_computational():
    """``beta* = 1``: at ``Delta = 10`` and ``100`` and ``alpha = 0.99 alpha_c`` the map ``q -> T(q)`` of the
    state evolution stays below ``q`` on a grid over ``(0, 1)`` (seen: at most ``-0.01 q``), so that
    ``q = 0`` is its only fixed point and the Bayes-optimal estimator does not weakly recover (the informed
    and uninformed branches meet: a continuous transition); above ``alpha_c``, ``q = 0`` is unstable. The
    information-theoretic weak-recovery threshold is in ``[0.99, 1] alpha_c``: both ``Theta(Delta)``, the gap
    bounded (``Delta^(beta* - 1) = 1``)."""
    noises = np.array([10.0, 100.0])
    gain = np.asarray(_phase_retrieval_map_gain(jnp.asarray(noises), 0.99 * _phase_retrieval_alpha_c(jnp.asarray(noises))))
    assert np.all(gain < 0), gain.max(axis=1)
