"""Compressed sensing and phase retrieval with a generative prior (``hd.BayesGLM(prior="generative")``,
Aubin, Loureiro, Baker, Krzakala and Zdeborova 2019, arXiv:1912.02008), with one layer and with
composed layers: Gaussian covariances (Marchenko-Pastur, and a sampled product of two mixings), the
perfect-recovery and weak-recovery thresholds against closed forms, the separable limit beta -> 0,
the stationarity of the composed free entropy, multi-layer AMP at d = 2000 iteration by iteration,
gradients and the command line."""

import contextlib
import io
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from test_spiked_generative import _marchenko_pastur_overlap

import hdtheory as hd
from hdtheory.simulate.bayes import generative_gamp_errors
from hdtheory.simulate.spiked import generative_amp_errors as spiked_generative_amp_errors

ALPHA = np.array([0.3, 0.8, 1.5, 0.8])
BETA = np.array([0.5, 2.0, 1.0, 3.0])
NOISE = 0.1


def _cs(alpha, beta, activation="linear", noise=NOISE):
    return hd.BayesGLM(prior="generative", activation=activation, channel="linear", noise=noise, alpha=alpha, beta=beta)


def _gaussian_covariance_overlap(alpha, noise, overlap):
    """The Bayes-optimal overlap of the linear channel with a Gaussian prior of covariance spectrum
    ``s``: ``q = overlap(A)`` at ``A = alpha / (noise + 1 - q)`` (``overlap(A) = E_s A s^2 / (1 + A s)``),
    by SciPy's root finding on the largest root."""
    g = lambda q: overlap(alpha / (noise + 1 - q)) - q
    return optimize.brentq(g, 0.0, 1 - 1e-12, xtol=1e-14)


def test_linear_layer_is_a_gaussian_prior_of_marchenko_pastur_covariance():
    """``w = W z / sqrt(k)`` is ``N(0, W W^T / k)``: the overlap is the fixed point of the Gaussian
    prior of that covariance, the Marchenko-Pastur law of ratio ``beta`` (SciPy quadrature)."""
    sols = jax.jit(jax.vmap(lambda a, b: hd.solve(_cs(a, b))))(ALPHA, BETA)
    assert np.all(sols.converged)
    for a, b, q in zip(ALPHA, BETA, np.asarray(sols.observables["q"])):
        expected = _gaussian_covariance_overlap(a, NOISE, lambda A: _marchenko_pastur_overlap(A, b))
        np.testing.assert_allclose(q, expected, atol=1e-8)


def test_two_linear_layers_are_a_gaussian_prior_of_the_product_covariance():
    """``w = F_2 F_1 z``: a Gaussian prior of covariance ``M = F_2 F_1 F_1^T F_2^T``, whose spectrum is
    sampled here (d = 2000, ``beta = (2, 1.5)``: k_1 = 1333, k_0 = 667). The overlap is a spectral
    average whose fluctuation between draws is seen up to 4e-3 at d = 2000 (mostly ``tr M / d``, off 1
    by a few ``1 / d``); four draws averaged, tolerance 5e-3 (a layer composed wrongly moves q by 0.1)."""
    rng = np.random.default_rng(0)
    d, betas = 2000, (2.0, 1.5)
    k1 = round(d / betas[1])
    k0 = round(k1 / betas[0])
    alphas = np.array([0.2, 0.6])
    expected = np.zeros(2)
    for _ in range(4):
        F = rng.standard_normal((d, k1)) / math.sqrt(k1) @ (rng.standard_normal((k1, k0)) / math.sqrt(k0))
        s = np.linalg.eigvalsh(F.T @ F)  # the nonzero spectrum of M; the zero eigenvalues add nothing
        overlap = lambda A: float(np.sum(A * s**2 / (1 + A * s))) / d
        expected += [_gaussian_covariance_overlap(a, NOISE, overlap) / 4 for a in alphas]
    sols = jax.jit(jax.vmap(lambda a: hd.solve(_cs(a, betas, "linear,linear"))))(alphas)
    assert np.all(sols.converged)
    np.testing.assert_allclose(np.asarray(sols.observables["q"]), expected, atol=5e-3)
    assert set(sols.observables) >= {"q_z", "mmse_z", "q_h1", "mmse_h1"}


def test_compressed_sensing_perfect_recovery_at_the_latent_dimension():
    """Noiseless compressed sensing of ``w`` in the range of linear layers: ``w`` lies in a subspace of
    dimension ``k_0 = d / prod(beta)``, recovered exactly from ``n >= k_0`` measurements (linear algebra):
    perfect recovery at ``alpha = 1 / prod(beta)``, one layer (``beta = 2``) and two (``(1, 2)``)."""
    solve = jax.jit(jax.vmap(lambda a: hd.solve(_cs(a, 2.0, noise=0.0)).observables["mmse"]))
    one = np.asarray(solve(jnp.array([0.45, 0.55])))
    solve2 = jax.jit(jax.vmap(lambda a: hd.solve(_cs(a, (1.0, 2.0), "linear,linear", 0.0)).observables["mmse"]))
    two = np.asarray(solve2(jnp.array([0.45, 0.55])))
    for below, above in (one, two):
        assert below > 1e-3 and above < 1e-12


def _radius(theory):
    """The spectral radius of the state evolution's Jacobian at the trivial fixed point ``0``."""
    state = jnp.zeros(1 + theory.prior_fn.depth)
    return jnp.max(jnp.abs(jnp.linalg.eigvals(jax.jacfwd(theory.update)(state))))


def test_phase_retrieval_weak_recovery_of_composed_linear_layers():
    """Noiseless real phase retrieval (``channel="abs"``): ``qhat ~ 2 alpha q`` near ``q = 0`` (the
    separable Gaussian prior's ``alpha_WR = 1/2``, Barbier et al. 2019, Mondelli and Montanari 2018),
    and a linear layer's output overlap is its input's plus ``A`` (``q_v ~ A + q_{l-1}``,
    ``qhat_{l-1} ~ beta_l A``): the linearised state evolution loses the stability of ``q = 0`` at
    ``alpha = 1 / (2 (1 + sum_l d / k_l))``, ``d / k_l`` the ratio of the signal's dimension to each
    layer's input (``beta`` for one layer, ``1 / (2 (1 + beta))``; ``beta_2 + beta_1 beta_2`` for two).
    Two layers, ``beta = (1.5, 2)``: ``alpha_WR = 1 / 12``; the Jacobian's spectral radius is 1 there,
    and 10% below and above it the root of the linearised map's characteristic polynomial. (``hd.threshold(theory, "alpha", "weak-recovery", ...)``
    locates the crossing of the same radius, ``BayesGLM.linear_stability``: one layer in
    test_bayes_generative_thresholds.py.)"""
    build = lambda a: hd.BayesGLM(prior="generative", activation="linear,linear", channel="abs", alpha=a, beta=(1.5, 2.0))
    radii = np.asarray(jax.jit(jax.vmap(lambda a: _radius(build(a))))(jnp.array([1.0, 0.9, 1.1]) / 12))
    np.testing.assert_allclose(radii[0], 1.0, atol=1e-6)
    # The radius solves l^3 = c (l^2 + 2 l + 3), c = 2 alpha: 0.95608 and 1.04190 at 0.9 and 1.1 times 1/12.
    np.testing.assert_allclose(radii[1:], [0.95608, 1.04190], atol=1e-5)


# The default run checks the composed layers' weak recovery under BayesGLM above, and hd.threshold on the
# spiked generative prior of one layer in test_spiked_generative.py.
@pytest.mark.extended
def test_composed_spiked_weak_recovery_by_threshold():
    """The same composition in the spiked Wigner model (``A = lam q``): ``q = 0`` loses its stability at
    ``lam (1 + beta_2 + beta_1 beta_2) = 1``, ``lam = 1 / 6`` for ``beta = (1.5, 2)`` (one layer:
    ``Delta_c = 1 + beta``, Aubin et al. 2019, NeurIPS, checked in test_spiked_generative.py), located by
    ``hd.threshold``."""
    theory = hd.Spiked(prior="generative", activation="linear,linear", beta=(1.5, 2.0))
    found = hd.threshold(theory, "snr", "weak-recovery", (0.1, 0.3), num=3)
    assert found.found
    np.testing.assert_allclose(found.value, 1 / 6, atol=1e-8)


# The default run checks the sign layer's limit under the spiked model (test_spiked_generative_nonlinear.py).
@pytest.mark.extended
def test_sign_layer_at_small_beta_is_the_rademacher_prior():
    """``beta = d / k -> 0``: the latent is not learned and ``w = sign(h)`` has independent ``+-1``
    entries: the state evolution's map and free entropy are those of ``prior="rademacher"`` (another
    quadrature) to ``O(beta)``, at overlaps from 0.1 to 0.9 (so that their fixed points agree)."""
    q = jnp.array([0.1, 0.5, 0.9])

    def both(q):
        layer = hd.BayesGLM(prior="generative", activation="sign", channel="abs", alpha=1.0, beta=1e-7)
        separable = hd.BayesGLM(prior="rademacher", channel="abs", alpha=1.0)
        state = jnp.array([q, 0.0])
        return (layer.update(state)[0], layer.free_entropy(state)), (separable.update(q), separable.free_entropy(q))

    (update, entropy), (update_ref, entropy_ref) = jax.jit(jax.vmap(both))(q)
    np.testing.assert_allclose(update, update_ref, atol=1e-6)
    np.testing.assert_allclose(entropy, entropy_ref, atol=1e-6)
    assert np.all(np.diff(np.asarray(update)) > 0.05)


# The default run checks the sign layer's closed-form weak recovery under the spiked model
# (test_spiked_generative_nonlinear.py) and this Jacobian's radius on composed linear layers above.
@pytest.mark.extended
def test_sign_layer_weak_recovery_is_the_closed_form():
    """``E sign'(h) = sqrt(2 / pi)``: ``q_v ~ A + (2 / pi) q_z``, ``qhat_z ~ beta (2 / pi) A``, and
    ``alpha_WR = 1 / (2 (1 + 4 beta / pi^2))``; the Jacobian of ``update`` at ``q = q_z = 0`` has
    spectral radius 1 there, below 1 10% below it, above 1 10% above."""
    beta = 1.0
    alpha_c = 1 / (2 * (1 + 4 * beta / np.pi**2))

    build = lambda a: hd.BayesGLM(prior="generative", activation="sign", channel="abs", alpha=a, beta=beta)
    radii = np.asarray(jax.jit(jax.vmap(lambda a: _radius(build(a))))(jnp.array([1.0, 0.9, 1.1]) * alpha_c))
    np.testing.assert_allclose(radii[0], 1.0, atol=1e-6)
    assert radii[1] < 0.95 and radii[2] > 1.05


def test_composed_free_entropy_is_stationary():
    """The free entropy of two composed layers (each ``E log Z`` by its own closed form) is stationary
    in ``(q, q_z, q_h1)`` at the fixed point that ``update`` finds."""
    theory = _cs(0.6, (1.5, 2.0), "linear,linear")
    sol = hd.solve(theory)
    assert sol.converged and 0.05 < float(sol.state[2]) < 0.95
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sol.state), 0.0, atol=1e-9)


@eqx.filter_jit
def _predicted_errors(theory, steps):
    """``hd.iterate`` from ``(0, 1/2, 0)``, compiled for the errors alone: the other observables (the
    free entropy's quadrature among them) are unused outputs, dropped before compilation."""
    predicted = hd.iterate(theory, steps, init=jnp.array([0.0, 0.5, 0.0]))
    return {key: value for key, value in predicted.items() if key.startswith("mmse")}


def test_multilayer_amp_follows_state_evolution():
    """Phase retrieval of ``w = F_2 sign(F_1 z)`` (``beta = (1, 2)``, ``alpha = 1``) by GAMP with
    multi-layer AMP through the prior, from a side observation of ``z`` at SNR 1, against
    ``hd.iterate`` from ``(0, 1/2, 0)``. Per seed the errors fluctuate by ``O(1 / sqrt(d))``
    (seen: standard deviations up to 0.055 over seeds at d = 2000); three seeds averaged,
    ``3 / sqrt(d)`` bounds the difference. The error falls from 1 to 0.15 in six iterations."""
    theory = hd.BayesGLM(prior="generative", activation="sign,linear", channel="abs", alpha=1.0, beta=(1.0, 2.0))
    d, steps = 2000, 6
    errors = generative_gamp_errors(theory, d=d, seeds=3, steps=steps, snr0=1.0, key=jax.random.PRNGKey(1))
    predicted = _predicted_errors(theory, steps)
    assert set(errors) == {"mmse", "mmse_z", "mmse_h1"} == set(predicted)
    for key, error in errors.items():
        assert error.shape == (3, steps + 1)
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
    assert predicted["mmse"][0] - predicted["mmse"][-1] > 0.5


# The default run checks the multi-layer AMP (hdtheory.simulate._layers) under BayesGLM above, and the
# spiked generative AMP of one layer in test_spiked_generative_amp.py.
@pytest.mark.extended
def test_spiked_multilayer_amp_follows_state_evolution():
    """The same layers under the spiked Wigner model (``w = F_2 relu(F_1 z)``, ``beta = (1, 2)``,
    ``lam = 1.5``), multi-layer AMP against ``hd.iterate`` from ``(0, 1/2, 0)``: three seeds at
    d = 2000 (standard deviations over seeds up to 0.034 seen), ``3 / sqrt(d)``."""
    theory = hd.Spiked(prior="generative", activation="relu,linear", snr=1.5, beta=(1.0, 2.0))
    d, steps = 2000, 6
    errors = spiked_generative_amp_errors(theory, d=d, seeds=3, steps=steps, snr0=1.0, key=jax.random.PRNGKey(1))
    predicted = _predicted_errors(theory, steps)
    assert set(errors) == {"mmse", "mmse_z", "mmse_h1", "mmse_matrix"} == set(predicted)
    for key, error in errors.items():
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
    assert predicted["mmse"][0] - predicted["mmse"][2] > 0.25


def test_gradient_matches_finite_differences():
    """d mmse / d alpha and d mmse / d beta (both layers' ratios) through the fixed point."""

    def mmse(alpha, beta):
        return hd.solve(_cs(alpha, beta, "linear,linear")).observables["mmse"]

    both = jax.jit(jax.value_and_grad(mmse, argnums=(0, 1)))
    h, alpha, beta = 1e-5, 0.4, jnp.array([1.5, 2.0])
    _, (d_alpha, d_beta) = both(alpha, beta)
    np.testing.assert_allclose(d_alpha, (both(alpha + h, beta)[0] - both(alpha - h, beta)[0]) / (2 * h), rtol=1e-6)
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        np.testing.assert_allclose(d_beta[i], (both(alpha, beta + e)[0] - both(alpha, beta - e)[0]) / (2 * h), rtol=1e-6)


def test_cli_eval():
    """``hdtheory eval bayes-glm prior=generative activation=linear,linear beta=1,2 ...``: noiseless
    compressed sensing either side of perfect recovery at ``alpha = 1 / (1 * 2)``."""
    from hdtheory import cli

    def run(alpha):
        buffer = io.StringIO()
        args = ["eval", "bayes-glm", "prior=generative", "activation=linear,linear", "beta=1,2", "noise=0",
                f"alpha={alpha}", "--json"]
        with contextlib.redirect_stdout(buffer):
            assert cli.main(args) == 0
        return json.loads(buffer.getvalue())

    below, above = run(0.45), run(0.55)
    assert below["converged"] and above["converged"]
    assert below["mmse"] > 1e-3 and above["mmse"] < 1e-12 and 0 < below["q_h1"] < 1


def test_bad_input_names_the_parameter():
    with pytest.raises(hd.ParameterError, match="beta"):
        hd.BayesGLM(prior="generative", activation="relu,sign", beta=(1.0, 2.0, 3.0))
    with pytest.raises(hd.ParameterError, match="beta"):
        hd.BayesGLM(prior="generative", beta=(1.0, -2.0))
    with pytest.raises(hd.ParameterError, match="activation"):
        hd.BayesGLM(prior="generative", activation="relu,softplus")
    with pytest.raises(NotImplementedError):
        generative_gamp_errors(hd.BayesGLM(), d=10)
    with pytest.raises(NotImplementedError):
        hd.simulate.simulate(hd.BayesGLM(prior="generative"), d=10)
