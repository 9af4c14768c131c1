"""The latent prior of a generative prior as a named part (``latent``, with ``rho``, ``values`` and
``probabilities`` as its parameters): the Gaussian latent against its closed forms, a Gaussian latent of
variance ``rho`` against the Gaussian prior of scaled Marchenko-Pastur covariance, a Rademacher latent
under a linear layer against the Bayes-optimal linear regression of the latent, the discrete prior of two
atoms against the Rademacher one, multi-layer AMP at finite d with a Rademacher latent, gradients, the
command line and bad input."""

import contextlib
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from test_spiked_generative import _marchenko_pastur_overlap

import hdtheory as hd
from hdtheory import kernels
from hdtheory.simulate.bayes import generative_gamp_errors


def _cs(latent="gaussian", activation="linear", alpha=0.5, beta=3.0, noise=0.3, **prior):
    return hd.BayesGLM(
        prior="generative", activation=activation, latent=latent, channel="linear", noise=noise, alpha=alpha,
        beta=beta, **prior,
    )


def test_gaussian_latent_is_the_closed_form():
    """The default latent, ``N(0, 1)``: ``q_z' = qhat / (1 + qhat)`` and
    ``psi_z(qhat) = qhat / 2 - log(1 + qhat) / 2`` under a sign layer, to 1e-12."""
    layer = kernels.compose("sign", 1.5)
    A, q = 0.8, jnp.array([0.3])

    @jax.jit  # one program rather than op by op
    def evaluated(A, q):
        return layer.averages(A, q[0]), layer.update(A, q)[1], layer.free_entropy(A, q)

    (_, qhat, entropy), q_z, free_entropy = evaluated(A, q)
    np.testing.assert_allclose(q_z, qhat / (1 + qhat), rtol=1e-12)
    psi_z = qhat / 2 - jnp.log1p(qhat) / 2
    np.testing.assert_allclose(free_entropy, (psi_z - q[0] * qhat / 2) / 1.5 + entropy, rtol=1e-12)


def test_gaussian_latent_of_variance_rho_is_a_scaled_marchenko_pastur_covariance():
    """``z ~ N(0, rho I)`` under a linear layer: ``w`` is ``N(0, rho W W^T / k)``, and the overlap solves
    ``q = rho overlap_MP(rho A)`` at ``A = alpha / (noise + rho - q)`` (SciPy), to 1e-8; its derivative in
    ``rho`` by central differences."""
    rho, alpha, beta, noise = 2.0, 0.5, 3.0, 0.3
    q_of = jax.jit(lambda r: hd.solve(_cs(rho=r, alpha=alpha, beta=beta, noise=noise)).observables["q"])
    g = lambda q: rho * _marchenko_pastur_overlap(rho * alpha / (noise + rho - q), beta) - q
    np.testing.assert_allclose(q_of(rho), optimize.brentq(g, 0.0, rho - 1e-12, xtol=1e-14), atol=1e-8)
    h = 1e-5
    np.testing.assert_allclose(jax.jit(jax.grad(q_of))(rho), (q_of(rho + h) - q_of(rho - h)) / (2 * h), rtol=1e-6)


def test_rademacher_latent_under_a_linear_layer_is_the_regression_of_the_latent():
    """Seeing ``v = W z / sqrt(k)`` at SNR ``A`` is the linear regression of ``z`` from ``n = d = beta k``
    measurements with noise variance ``1 / A`` (derived here): at fixed ``A`` the layer's fixed point
    ``q_z`` is ``BayesGLM(prior=rademacher, channel=linear, alpha=beta, noise=1/A)``'s overlap (the
    channel's quadrature there, the layer's closed form here), to 1e-8. The discrete prior of the atoms
    ``+-1`` gives the Rademacher one's solution to 1e-10."""
    A, beta = 1.5, 0.7
    layer = kernels.compose("linear", beta, prior=kernels.Rademacher(1.0))
    q_z = jax.jit(lambda: jax.lax.fori_loop(0, 400, lambda _, q: layer.update(A, q)[1], jnp.zeros(1)))()
    glm = hd.solve(hd.BayesGLM(prior="rademacher", channel="linear", alpha=beta, noise=1 / A))
    assert glm.converged and 0.2 < float(glm.observables["q"]) < 0.95
    np.testing.assert_allclose(q_z[0], glm.observables["q"], atol=1e-8)
    rademacher = hd.solve(_cs("rademacher", noise=0.5, alpha=0.4, beta=2.0))
    discrete = hd.solve(_cs("discrete", noise=0.5, alpha=0.4, beta=2.0, values=(-1.0, 1.0), probabilities=(0.5, 0.5)))
    assert rademacher.converged and 0.05 < float(rademacher.observables["mmse_z"]) < 0.95
    np.testing.assert_allclose(discrete.state, rademacher.state, atol=1e-10)


def test_multilayer_amp_with_a_rademacher_latent_follows_state_evolution():
    """Compressed sensing of ``w = W z / sqrt(k)``, ``z`` of ``+-1`` entries (``beta = 3``, ``alpha = 0.5``,
    noise 0.3) by GAMP with multi-layer AMP (the latent denoised by the Rademacher posterior mean), from
    a side observation of ``z`` at SNR 1, against ``hd.iterate`` from ``(0, q_z)`` (``q_z`` the
    Rademacher overlap at SNR 1): three seeds at d = 2000, ``3 / sqrt(d)``. After eight steps the
    state evolution's MMSE is 0.113, against 0.251 with a Gaussian latent."""
    theory = _cs("rademacher")
    d, steps, snr0 = 2000, 8, 1.0
    errors = generative_gamp_errors(theory, d=d, seeds=3, steps=steps, snr0=snr0, key=jax.random.PRNGKey(3))
    q_z = kernels.Rademacher(1.0).overlap(snr0)
    predicted = jax.jit(lambda t: hd.iterate(t, steps, init=jnp.stack([0.0, q_z])))(theory)
    for key in ("mmse", "mmse_z"):
        np.testing.assert_allclose(np.mean(errors[key], axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
    assert predicted["mmse"][-1] < 0.15


def test_cli_eval():
    """``hdtheory eval bayes-glm prior=generative latent=sparse-rademacher rho=0.3 ...``: the latent's
    MMSE is below its second moment 0.3."""
    from hdtheory import cli

    buffer = io.StringIO()
    args = ["eval", "bayes-glm", "prior=generative", "latent=sparse-rademacher", "rho=0.3", "beta=2", "alpha=0.5",
            "noise=0.1", "--json"]
    with contextlib.redirect_stdout(buffer):
        assert cli.main(args) == 0
    out = json.loads(buffer.getvalue())
    assert out["converged"] and 0 < out["mmse_z"] < 0.3


def test_bad_input_names_the_parameter():
    with pytest.raises(hd.ParameterError, match="latent"):
        hd.BayesGLM(prior="generative", latent="tanh")
    with pytest.raises(hd.ParameterError, match="latent=discrete"):
        hd.Spiked(prior="generative", values=(-1.0, 1.0), probabilities=(0.5, 0.5))
    with pytest.raises(hd.ParameterError, match="rho"):
        hd.BayesGLM(prior="generative", latent="sparse-rademacher", rho=1.5)
    with pytest.raises(NotImplementedError, match="latent"):
        hd.Spiked(prior="generative", latent="rademacher").lamp()
