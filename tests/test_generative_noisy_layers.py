"""Generative layers with Gaussian noise on their outputs, ``u_l = phi_l(h) + sqrt(Delta_l) eps``
(``layer_noise``): the noisy factor against SciPy quadrature, a noisy linear layer against the Gaussian
prior of Marchenko-Pastur covariance shifted by ``Delta``, a noisy sign layer at ``beta -> 0`` against
the scalar Gaussian-mixture prior, the I-MMSE relation, the free entropy's stationarity, ``Delta -> 0``,
derivatives in ``Delta``, multi-layer AMP at finite d and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import hdtheory as hd
from hdtheory import kernels
from hdtheory.simulate.bayes import generative_gamp_errors

ALPHA = np.array([0.3, 0.8, 1.5])
BETA = np.array([0.5, 2.0, 1.0])
DELTA = np.array([0.2, 0.5, 0.05])
NOISE = 0.1


def _cs(alpha, beta, layer_noise, activation="linear"):
    return hd.BayesGLM(
        prior="generative", activation=activation, channel="linear", noise=NOISE, alpha=alpha, beta=beta,
        layer_noise=layer_noise,
    )


def test_noisy_factor_is_the_integral_over_the_noise():
    """``log Z_Delta = log E_{h ~ N(omega, V)} int du N(u; phi(h), Delta) e^{B u - A u^2 / 2}`` by SciPy's
    double quadrature, for the sign and relu layers."""
    B, A, omega, V, delta = 0.7, 1.3, -0.4, 0.6, 0.35
    normal = lambda x, m, v: math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)
    for name, phi in (("sign", lambda h: 1.0 if h >= 0 else -1.0), ("relu", lambda h: max(h, 0.0))):
        f = lambda u, h: normal(h, omega, V) * normal(u, phi(h), delta) * math.exp(B * u - A * u**2 / 2)
        z = sum(integrate.dblquad(f, lo, hi, -12, 12, epsabs=1e-13, epsrel=1e-11)[0] for lo, hi in ((-9, 0), (0, 9)))
        layer = kernels.compose(name, 1.0, noise=delta)
        np.testing.assert_allclose(float(layer.log_partition(B, A, omega, V)), math.log(z), rtol=1e-9, err_msg=name)


def _shifted_marchenko_pastur_overlap(A, beta, delta):
    """``E_s[A (s + Delta)^2 / (1 + A (s + Delta))]`` over the spectrum of ``W W^T / k + Delta I`` (ratio
    ``beta = d / k``): the overlap of a Gaussian prior of that covariance at SNR ``A``, with the atom
    ``1 - 1 / beta`` at ``s = 0`` for ``beta > 1``."""
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    density = lambda s: math.sqrt(max((b - s) * (s - a), 0.0)) / (2 * math.pi * beta * s)
    term = lambda s: A * (s + delta) ** 2 / (1 + A * (s + delta))
    bulk = integrate.quad(lambda s: density(s) * term(s), a, b, epsabs=1e-13, epsrel=1e-13)[0]
    return bulk + max(0.0, 1 - 1 / beta) * term(0.0)


def test_noisy_linear_layer_is_a_gaussian_prior_of_shifted_marchenko_pastur_covariance():
    """``w = W z / sqrt(k) + sqrt(Delta) eps`` is ``N(0, W W^T / k + Delta I)``: the overlap solves
    ``q = overlap(alpha / (noise + 1 + Delta - q))`` (SciPy's root finding and quadrature)."""
    sols = jax.jit(jax.vmap(lambda a, b, delta: hd.solve(_cs(a, b, delta))))(ALPHA, BETA, DELTA)
    assert np.all(sols.converged)
    for a, b, delta, q in zip(ALPHA, BETA, DELTA, np.asarray(sols.observables["q"])):
        rho = 1 + delta
        g = lambda q: _shifted_marchenko_pastur_overlap(a / (NOISE + rho - q), b, delta) - q
        expected = optimize.brentq(g, 0.0, rho - 1e-12, xtol=1e-14)
        np.testing.assert_allclose(q, expected, atol=1e-8)
    np.testing.assert_allclose(sols.observables["mmse"], 1 + DELTA - sols.observables["q"], atol=1e-12)


def _mixture_overlap(A, delta):
    """The overlap ``E v E[v | y]`` of the prior ``v = +-1 + sqrt(Delta) eps`` (a two-Gaussian mixture)
    seen as ``y = v + N(0, 1 / A)``: SciPy quadrature of the posterior mean, in closed form given the
    component."""
    var = delta + 1 / A
    normal = lambda x, m, v: math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    def weighted(y):
        p = [0.5 * normal(y, s, var) for s in (-1.0, 1.0)]
        mean = sum(pi * (s + delta * A * (y - s) / (1 + A * delta)) for pi, s in zip(p, (-1.0, 1.0))) / sum(p)
        return sum(p) * mean**2

    return integrate.quad(weighted, -12 - 12 * math.sqrt(var), 12 + 12 * math.sqrt(var), epsabs=1e-13, limit=200)[0]


def test_noisy_sign_layer_at_small_beta_is_the_gaussian_mixture_prior():
    """``beta -> 0``: the latent is not learned and ``v = sign(h) + sqrt(Delta) eps`` has independent
    entries of the two-Gaussian mixture ``+-1 + N(0, Delta)``: the spiked Wigner overlap is the fixed
    point ``q = overlap(lam q)`` of that scalar prior (SciPy), to ``O(beta)``."""
    snr, delta = jnp.array([1.5, 3.0]), jnp.array([0.3, 0.6])
    build = lambda s, dl: hd.Spiked(prior="generative", activation="sign", snr=s, beta=1e-7, layer_noise=dl)
    sols = jax.jit(jax.vmap(lambda s, dl: hd.solve(build(s, dl))))(snr, delta)
    assert np.all(sols.converged)
    for s, dl, q in zip(np.asarray(snr), np.asarray(delta), np.asarray(sols.observables["q"])):
        assert q > 0.3
        np.testing.assert_allclose(_mixture_overlap(s * q, dl), q, atol=1e-7)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_i_mmse_and_the_state_derivative_of_the_noisy_factor(activation):
    """For a layer with ``Delta = 0.3``: ``d E log Z_Delta / dA = q_v / 2`` (I-MMSE: the averages'
    ``q_v`` and ``E log Z`` are transformed separately) and ``d E log Z_Delta / dq = qhat / (2 beta)``,
    by central differences."""
    layer = kernels.compose(activation, 1.5, noise=0.3)
    A, q, h = 0.7, 0.4, 1e-5
    # The point and its four neighbours in one compiled program rather than op by op.
    points = jnp.asarray([(A, q), (A + h, q), (A - h, q), (A, q + h), (A, q - h)])
    q_v, qhat, entropy = jax.jit(jax.vmap(layer.averages))(points[:, 0], points[:, 1])
    np.testing.assert_allclose((entropy[1] - entropy[2]) / (2 * h), q_v[0] / 2, atol=1e-9)
    np.testing.assert_allclose((entropy[3] - entropy[4]) / (2 * h), qhat[0] / 3.0, atol=1e-9)


def test_free_entropy_is_stationary_and_vanishing_noise_is_the_noiseless_layer():
    """Two composed layers, ``sign`` then ``linear`` with noises ``(0.3, 0.1)``: the free entropy is
    stationary in ``(q, q_z, q_h1)`` at the fixed point. ``Delta = 1e-12`` gives the noiseless
    solution to 1e-9 (from which the noisy one is more than 0.05 away)."""
    theory = _cs(0.8, (1.5, 2.0), (0.3, 0.1), "sign,linear")
    solve = jax.jit(lambda delta: hd.solve(_cs(0.8, (1.5, 2.0), delta, "sign,linear")))
    sol = solve(jnp.array([0.3, 0.1]))
    assert sol.converged and 0.05 < float(sol.state[2]) < 1.25  # rho_1 = 1 + 0.3
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sol.state), 0.0, atol=1e-8)
    # Strongly typed, as the first point is: a weakly typed one would compile the solve again.
    tiny, zero = solve(jnp.full(2, 1e-12, float)), solve(jnp.zeros(2))
    np.testing.assert_allclose(tiny.state, zero.state, atol=1e-9)
    assert float(jnp.max(jnp.abs(sol.state - zero.state))) > 0.05


def test_derivative_in_the_layer_noise_matches_finite_differences():
    """d mmse / d Delta_l for both layers of ``sign,linear`` through the fixed point."""
    mmse = lambda delta: hd.solve(_cs(0.6, (1.0, 2.0), delta, "sign,linear")).observables["mmse"]
    both = jax.jit(jax.value_and_grad(mmse))
    delta, h = jnp.array([0.2, 0.1]), 1e-5
    _, grad = both(delta)
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        np.testing.assert_allclose(grad[i], (both(delta + e)[0] - both(delta - e)[0]) / (2 * h), rtol=1e-6)


def test_multilayer_amp_with_noisy_layers_follows_state_evolution():
    """Phase retrieval of ``w = F_2 sign(F_1 z) + noise`` (``beta = (1, 2)``, ``layer_noise = (0.3,
    0.1)``, ``alpha = 1.2``) by GAMP with multi-layer AMP through the noisy layers (the noise added to
    the drawn signal, the steps on ``log Z_Delta``), from a side observation of ``z`` at SNR 1, against
    ``hd.iterate`` from ``(0, 1/2, 0)``: three seeds at d = 2000, ``3 / sqrt(d)`` (the tolerance of
    the noiseless test in test_bayes_generative.py)."""
    theory = hd.BayesGLM(
        prior="generative", activation="sign,linear", channel="abs", alpha=1.2, beta=(1.0, 2.0), layer_noise=(0.3, 0.1)
    )
    d, steps = 2000, 6
    errors = generative_gamp_errors(theory, d=d, seeds=3, steps=steps, snr0=1.0, key=jax.random.PRNGKey(2))
    predicted = jax.jit(lambda t: hd.iterate(t, steps, init=jnp.array([0.0, 0.5, 0.0])))(theory)
    for key in ("mmse", "mmse_z", "mmse_h1"):
        np.testing.assert_allclose(np.mean(errors[key], axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
    assert predicted["mmse"][0] - predicted["mmse"][-1] > 0.3


def test_bad_input_names_the_parameter():
    with pytest.raises(hd.ParameterError, match="layer_noise"):
        hd.BayesGLM(prior="generative", layer_noise=-0.1)
    with pytest.raises(hd.ParameterError, match="layer_noise"):
        hd.Spiked(prior="generative", activation="relu,sign", layer_noise=(0.1, 0.2, 0.3))
    with pytest.raises(NotImplementedError, match="layer_noise"):
        hd.Spiked(prior="generative", layer_noise=0.1).lamp()
