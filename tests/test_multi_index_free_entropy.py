"""The replica-symmetric free entropy of ``MultiIndex`` (``potential``, ``free_entropy``, ``output_entropy``,
``mutual_information``) and its information-theoretic threshold (``threshold(..., "information-theoretic")``).

- ``k = 1`` against ``BayesGLM`` (the linear and sign channels, each written there in closed form) and against
  the linear channel's closed form ``f = r/2 - log(1 + r)/2 - r q/2 - alpha log(2 pi e (1 - q + Delta))/2``.
- ``k = 2`` with a link of ``z1`` alone against ``k = 1``: ``Mhat_22 = 0`` and ``z2`` integrates out, at any
  ``M_22``.
- Stationarity at a solved fixed point: the gradient of the potential in ``M`` and ``Mhat`` (automatic
  differentiation of the functional, not of the map) vanishes, and ``dPhi / dalpha = psi_out(M*)`` against
  central differences of the free entropy of solves; the mutual information per variable against
  ``log det(I + X^T X / (d Delta)) / (2 d)`` of sampled ``X`` (the linear channel; exact per instance).
- The large-noise gap of Defilippis, Krzakala, Loureiro and Maillard 2026 (arXiv:2603.17896, abstract: the
  onset of a computational bottleneck at large additive noise is characterized by the noise sensitivity
  exponent): for ``He_4 / sqrt(24)`` (``beta* = 2``) the located information-theoretic threshold against its
  large-noise asymptote derived here. At leading order in ``1 / Delta`` the information a label carries on
  ``omega`` is ``psi_out(m) - psi_out(0) = I(y; omega) ~ Var E[g | omega] / (2 Delta) = m^4 / (2 Delta)``
  (``E[He_4(z) | omega] = m^2 He_4(xi)``), and the Gaussian prior's part of the potential, extremised in
  ``mhat``, is ``m / 2 + log(1 - m) / 2``: ``alpha_IT ~ Delta min_m (-m - log(1 - m)) / m^4 = 1.97591 Delta``
  at ``m = 0.8045``, while ``alpha_c ~ Delta^2 / 32``. For ``z^2 - 1`` (``beta* = 1``) both are
  ``Theta(Delta)``: the reduced potential stays below the uninformed one at ``0.97 alpha_c`` and not at
  ``1.03 alpha_c`` (a continuous transition, ``alpha_IT = alpha_c``).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd

SQRT24 = math.sqrt(24.0)
IT_SLOPE = 1.9759051077604095  # min_m (-m - log(1 - m)) / m^4, at m = 0.80452 (scipy, bounded Brent)
HE4_BRACKETS = {1e4: (1.75e4, 2.4e4), 1e5: (1.75e5, 2.4e5)}


def he4(z):
    return (z[..., 0] ** 4 - 6 * z[..., 0] ** 2 + 3) / SQRT24


def one_field(z):
    return z[..., 0] ** 2


@jax.jit
def _k1_reductions():
    """Free entropies of ``MultiIndex`` at ``k = 1`` and of ``BayesGLM`` at the same overlaps."""
    qs = jnp.asarray([1e-6, 0.3, 0.8])

    def one(q):
        M = q * jnp.ones((1, 1))
        linear = hd.MultiIndex(k=1, link="sum", noise=0.5, alpha=2.0)
        # The sign's kink at omega = 0 on the Hermite rule in xi: 2.3e-5 off at q = 0.8 with the default 48 nodes,
        # 2.8e-7 with 96, 8e-10 with 192.
        sign = hd.MultiIndex(k=1, link="sign-product", noise=0.1, alpha=1.5, order=192)
        return (
            linear.free_entropy(M),
            hd.BayesGLM(channel="linear", noise=0.5, alpha=2.0).free_entropy(q),
            linear.conjugate(M)[0, 0],
            sign.free_entropy(M),
            hd.BayesGLM(channel="sign", noise=0.1, alpha=1.5).free_entropy(q),
        )

    return qs, jax.lax.map(one, qs)


def test_k1_against_bayes_glm_and_the_closed_form():
    """Seen: the linear channel within 5e-12 of ``BayesGLM`` and of the closed form; the sign channel within
    1e-9 of ``BayesGLM`` (on 192 Hermite nodes in ``xi``; ``BayesGLM`` cuts its panels at the kink)."""
    qs, (linear, glm_linear, r, sign, glm_sign) = _k1_reductions()
    closed = r / 2 - 0.5 * jnp.log1p(r) - r * qs / 2 - 2.0 * 0.5 * jnp.log(2 * math.pi * math.e * (1 - qs + 0.5))
    np.testing.assert_allclose(r, 2.0 / (1 - qs + 0.5), rtol=1e-9)  # qhat = alpha / (V + Delta)
    np.testing.assert_allclose(linear, closed, rtol=0, atol=1e-10)
    np.testing.assert_allclose(linear, glm_linear, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sign, glm_sign, rtol=0, atol=5e-9)


@jax.jit
def _one_field(ms, m2s):
    kw = dict(link="custom", link_fn=one_field, noise=4.0, alpha=3.0, order=8, label_order=6)
    one, two = hd.MultiIndex(k=1, **kw), hd.MultiIndex(k=2, inner_order=48, **kw)
    pair = lambda m, m2: (one.free_entropy(m * jnp.ones((1, 1))), two.free_entropy(jnp.diag(jnp.stack([m, m2]))))
    return jax.vmap(pair)(ms, m2s)


def test_k2_link_of_one_field_equals_k1():
    """``g = z1^2`` plus noise (``noise = 4``) at ``k = 2``, ``M = diag(m, m2)``: the free entropy of ``k = 1`` at
    ``m``, for any ``m2``, within 1e-7 (seen 2e-8 at ``m = 0.4``, 3e-15 at 0.9): ``k = 1``'s posterior is on
    panels at the label's preimages, ``k = 2``'s on the product Hermite rule (48 nodes per axis, the second
    axis' exact on a constant), which converges to it (at ``noise = 0.5``, ``m = 0.4``: 6e-3 at 24 nodes, 4e-4
    at 48)."""
    ms, m2s = jnp.asarray([0.4, 0.4, 0.9]), jnp.asarray([0.0, 0.3, 0.5])
    one, two = _one_field(ms, m2s)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-7)
    assert abs(float(one[0] - one[2])) > 0.05  # the check moves with m


@jax.jit
def _linear_fixed_point(alpha):
    theory = hd.MultiIndex(k=1, link="sum", noise=0.5, alpha=alpha)
    solution = hd.solve(theory, "informed")
    M = solution.state
    gradients = jax.grad(theory.potential, argnums=(0, 1))(M, theory.conjugate(M))
    out = dict(M=M, free_entropy=theory.free_entropy(M), psi_out=theory.output_entropy(M))
    return out | dict(gradients=gradients, residual=solution.residual, converged=solution.converged,
                      mutual_information=theory.mutual_information(M), psi_zero=theory.output_entropy(0 * M))


@jax.jit
def _two_fields():
    """The potential's gradients for ``sum`` at ``k = 2`` at its fixed point and at an ``M`` that is none; the map's
    residual at the fixed point. ``y / sqrt(2) = u.z + sqrt(Delta / 2) eps`` along ``u = (1, 1) / sqrt(2)``: the
    linear channel, ``m = mhat / (1 + mhat)``, ``mhat = alpha / (1 - m + Delta / 2)``, ``m^2 - 3.25 m + 2 = 0`` at
    ``alpha = 2``, ``Delta = 0.5``; ``z1 - z2`` is not learned."""
    theory = hd.MultiIndex(k=2, link="sum", noise=0.5, alpha=2.0)
    m = (3.25 - jnp.sqrt(3.25**2 - 8.0)) / 2
    fixed = m / 2 * jnp.ones((2, 2))
    off = jnp.asarray([[0.5, 0.2], [0.2, 0.3]])
    gradients = [jax.grad(theory.potential, argnums=(0, 1))(M, theory.conjugate(M)) for M in (fixed, off)]
    return gradients, theory.update(fixed) - fixed


def test_stationarity_and_the_derivative_in_alpha():
    """The linear channel at ``alpha = 2``, ``Delta = 0.5`` (``m* = 0.7192``): the potential's gradient in
    ``M`` and ``Mhat`` at the solved point within 1e-9 (seen: 2e-11, the solve's residual 2e-12);
    ``dPhi / dalpha`` by central differences (``h = 1e-3``) equals ``psi_out(M*)`` (seen: 1e-8 apart, against
    0.19 from ``psi_out(0)``); the mutual information (0.72117) against ``log det`` at ``d = 400`` over 4
    samples (seen: 0.72108, their spread 1e-3). ``d Phi / dM = 0`` wherever ``Mhat`` is the conjugate of ``M``
    (``Mhat = 2 alpha d psi_out / dM``: the map's average of ``g_out g_out^T`` against the derivative of
    ``psi_out``, on the same rules), ``d Phi / dMhat = 0`` at a fixed point only: ``sum`` at ``k = 2`` at its
    closed-form fixed point (``M* = 0.4123 [[1, 1], [1, 1]]``; the map's step there 2.5e-7, its Hermite rules
    of 8 nodes per axis, not symmetric in the fields) with its off-diagonal entries, seen ``d Phi / dM``
    1.4e-6 and ``d Phi / dMhat`` 1.2e-7 at ``M*``, 0.09 off it."""
    alpha, h = 2.0, 1e-3
    at = _linear_fixed_point(alpha)
    assert at["converged"]
    assert 0.5 < float(at["M"][0, 0]) < 0.9
    for gradient in at["gradients"]:
        np.testing.assert_allclose(gradient, 0.0, atol=1e-9)
    difference = (_linear_fixed_point(alpha + h)["free_entropy"] - _linear_fixed_point(alpha - h)["free_entropy"]) / (2 * h)
    np.testing.assert_allclose(difference, at["psi_out"], rtol=0, atol=1e-6)
    assert abs(float(at["psi_out"] - at["psi_zero"])) > 0.1
    (fixed, off), step = _two_fields()
    np.testing.assert_allclose(step, 0.0, atol=1e-6)
    for gradient in (fixed[0], off[0]):
        np.testing.assert_allclose(gradient, 0.0, atol=1e-5)
    np.testing.assert_allclose(fixed[1], 0.0, atol=1e-6)
    assert float(jnp.max(jnp.abs(off[1]))) > 0.05
    d, n = 400, 800
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(4):
        X = rng.standard_normal((n, d))
        samples.append(0.5 * np.sum(np.log1p(np.linalg.eigvalsh(X.T @ X / d) / 0.5)) / d)
    np.testing.assert_allclose(at["mutual_information"], np.mean(samples), atol=3e-3)


def _he4(noise):
    return hd.MultiIndex(k=1, link="custom", link_fn=he4, noise=noise)


def _located(noise):
    """The information-theoretic threshold of ``He_4 / sqrt(24)`` at ``noise`` and its derivative in it,
    by implicit differentiation (one compiled program per bracket, for the values and their differences)."""
    return _locator(HE4_BRACKETS[round(float(noise), -3)])(jnp.asarray(noise, jnp.float64))


@functools.cache
def _locator(bracket):
    def value(noise):
        located = hd.threshold(_he4(noise), "alpha", "information-theoretic", bracket, num=4)
        return located.value, located

    def located(noise):
        (_, located), derivative = jax.value_and_grad(value, has_aux=True)(noise)
        return located, derivative

    return jax.jit(located)


@jax.jit
def _he4_gradients(alpha, M):
    theory = eqx.tree_at(lambda t: t.alpha, _he4(1e4), alpha)
    return jnp.stack(jax.grad(theory.potential, argnums=(0, 1))(M, theory.conjugate(M)))


@jax.jit
def _reduced_potential(noise, alphas, ms):
    """``alpha (psi_out(m) - psi_out(0)) + m / 2 + log(1 - m) / 2`` (the potential extremised in ``mhat`` for
    the Gaussian prior: ``f(m) - f(0)``) on a grid of ``m``, for each ``alpha``; and ``alpha_c``."""
    theory = hd.MultiIndex(k=1, link="custom", link_fn=lambda z: z[..., 0] ** 2 - 1, noise=noise)
    psi = jax.lax.map(lambda m: theory.output_entropy(m * jnp.ones((1, 1))), jnp.concatenate([jnp.zeros(1), ms]))
    gain = psi[1:] - psi[0]
    return alphas[:, None] * gain + ms / 2 + jnp.log1p(-ms) / 2, theory.weak_recovery()[0]


def test_he4_information_theoretic_threshold_and_its_derivative():
    """``He_4 / sqrt(24)`` at ``Delta = 1e4``: ``alpha_IT / Delta`` within 0.5% of the asymptote 1.97591 (seen:
    1.97150, the overlap there 0.8029 against 0.8045), while ``alpha_c`` (3.03e6) is more than 100 times
    it; the informed state stationary (the potential's gradient within 1e-6, seen 2.2e-7 against ``Mhat = 4.07``:
    ``d psi_out / dM = E g_out^2 / 2`` is an integration by parts that the label and posterior rules satisfy to
    their error, 3e-11 on the former Hermite posterior rule);
    ``d alpha_IT / d noise`` by implicit differentiation against central differences of located thresholds
    (``h = 1``, the same compiled program; seen 1.975906 both)."""
    noise, h = 1e4, 1.0
    located, derivative = _located(noise)
    assert located.found
    value = float(located.value)
    assert abs(value / noise / IT_SLOPE - 1) < 5e-3, value / noise
    assert abs(float(located.states[1][0, 0]) - 0.8045) < 0.01
    assert float(located.states[0][0, 0]) < 1e-6
    gradients = _he4_gradients(located.value, located.states[1])
    np.testing.assert_allclose(gradients, 0.0, atol=1e-6)
    alpha_c = float(_he4(noise).weak_recovery()[0])
    assert alpha_c / value > 100, (alpha_c, value)
    difference = (float(_located(noise + h)[0].value) - float(_located(noise - h)[0].value)) / (2 * h)
    np.testing.assert_allclose(derivative, difference, rtol=1e-4)
    assert abs(difference - IT_SLOPE) < 0.05


def test_beta_one_is_continuous():
    """``z^2 - 1`` (``beta* = 1``) at ``Delta = 100``: no ``m`` on a grid over ``(0, 1)`` has a free entropy
    above the uninformed one at ``0.97 alpha_c``, some has at ``1.03 alpha_c``: ``alpha_IT = alpha_c``
    to 3%, both ``Theta(Delta)`` (``alpha_c ~ Delta / 4``)."""
    ms = jnp.concatenate([jnp.geomspace(0.01, 0.1, 4), jnp.linspace(0.15, 0.99, 15)])
    _, alpha_c = _reduced_potential(100.0, jnp.ones(1), ms)
    potential, _ = _reduced_potential(100.0, jnp.asarray([0.97, 1.03]) * alpha_c, ms)
    assert float(jnp.max(potential[0])) < 0, potential[0]
    assert float(jnp.max(potential[1])) > 0, potential[1]
    assert 0.2 < float(alpha_c) / 100 < 0.3


@pytest.mark.extended
def test_he4_gap_over_a_decade():
    """``Delta = 1e4`` and ``1e5``: ``alpha_IT`` grows as ``Delta`` (log-log slope within 0.01 of one), ``alpha_c``
    as ``Delta^2`` (within 0.02 of two), their ratio as ``Delta`` (within 0.03 of one)."""
    noises = np.asarray([1e4, 1e5])
    its = np.asarray([float(_located(n)[0].value) for n in noises])
    alpha_cs = np.asarray([float(_he4(n).weak_recovery()[0]) for n in noises])
    slope = lambda v: float(np.diff(np.log(v))[0] / np.diff(np.log(noises))[0])
    assert abs(slope(its) - 1) < 0.01, its
    assert abs(slope(alpha_cs) - 2) < 0.02, alpha_cs
    assert abs(slope(alpha_cs / its) - 1) < 0.03
    assert np.all(np.abs(its / noises / IT_SLOPE - 1) < 5e-3), its / noises


@pytest.mark.extended
def test_k2_located_threshold_equals_k1():
    """``threshold(..., "information-theoretic")`` at ``k = 2`` for ``He_4 / sqrt(24)`` of ``z1`` alone at ``Delta = 1e4``
    against ``k = 1`` on the same rules (8 Hermite nodes in ``xi``, 6 label nodes per panel): seen 19714.90025 both,
    5e-9 relative apart, the informed ``M_22 = 0`` (the default tier checks ``k = 2``'s free entropy against
    ``k = 1`` in ``test_k2_link_of_one_field_equals_k1`` and ``k = 1``'s located threshold)."""
    located = []
    for k, orders in ((1, dict(order=8, label_order=6)), (2, {})):
        theory = hd.MultiIndex(k=k, link="custom", link_fn=he4, noise=1e4, **orders)
        located.append(hd.threshold(theory, "alpha", "information-theoretic", HE4_BRACKETS[1e4], num=4))
    assert located[0].found and located[1].found
    np.testing.assert_allclose(located[1].value, located[0].value, rtol=1e-7)
    np.testing.assert_allclose(located[1].states[1][0, 0], located[0].states[1][0, 0], atol=1e-7)
    assert abs(float(located[1].states[1][1, 1])) < 1e-9
