"""Spiked Wigner and Wishart models with a single-layer generative prior (``prior="generative"``):
the linear activation against a Gaussian prior of Marchenko-Pastur covariance, the authors' number,
the closed-form weak-recovery threshold, the two-sided factor against the teacher channels, and the
quadrature against the closed forms."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import hdtheory as hd
from hdtheory import kernels
from hdtheory.kernels import generative


def _marchenko_pastur_overlap(A, beta):
    """``q(A) = E_s[A s^2 / (1 + A s)]`` over the spectrum of ``W W^T / k`` (ratio ``beta = d / k``),
    the overlap of a Gaussian prior of that covariance seen at SNR ``A``; the atom at 0 adds nothing."""
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    density = lambda s: math.sqrt(max((b - s) * (s - a), 0.0)) / (2 * math.pi * beta * s)
    return integrate.quad(lambda s: density(s) * A * s**2 / (1 + A * s), a, b, epsabs=1e-13, epsrel=1e-13)[0]


SNR = np.array([0.5, 1.2, 2.0, 4.0, 0.45, 2.0])
BETA = np.array([0.5, 0.5, 2.0, 3.0, 3.0, 1.0])


@pytest.fixture(scope="module")
def linear_solutions():
    """One compiled solve of the linear activation over (snr, beta)."""
    solve = jax.jit(jax.vmap(lambda snr, beta: hd.solve(hd.Spiked(prior="generative", snr=snr, beta=beta))))
    return solve(SNR, BETA)


def test_linear_activation_is_a_gaussian_prior_of_marchenko_pastur_covariance(linear_solutions):
    """``v = W z / sqrt(k)`` is ``N(0, W W^T / k)``: the Bayes-optimal overlap is the fixed point
    ``q = E_s[lam q s^2 / (1 + lam q s)]`` over the Marchenko-Pastur law of ratio ``beta``, here by
    SciPy quadrature and root finding, nothing shared with the two-layer state evolution."""
    sols = linear_solutions
    assert np.all(sols.converged)
    for lam, b, q in zip(SNR, BETA, np.asarray(sols.observables["q"])):
        g = lambda x: _marchenko_pastur_overlap(lam * x, b) - x
        expected = optimize.brentq(g, 1e-6, 1.0, xtol=1e-14) if g(1e-6) > 0 else 0.0
        np.testing.assert_allclose(q, expected, atol=1e-8)
    # Below and above the weak-recovery threshold lam (1 + beta) = 1.
    q = np.asarray(sols.observables["q"])
    assert q[0] < 1e-8 and np.all(q[1:] > 0.05)


def test_the_authors_state_evolution_number(linear_solutions):
    """Aubin et al. 2019's demonstration notebook (github.com/benjaminaubin/StructuredPrior_demo,
    ``Demo_amp_lamp_pca.ipynb``): spiked Wigner, linear activation, their ``alpha = p / k = 1`` and
    ``Delta = 0.5`` (``beta = 1``, ``snr = 2`` here): ``SE MSEv: 0.319`` (printed to three decimals)."""
    assert abs(float(linear_solutions.observables["mmse"][-1]) - 0.319) < 5e-4


def test_linear_weak_recovery_threshold():
    """The trivial fixed point loses its stability at ``lam (1 + beta) = 1`` (the linearised state
    evolution, whose Jacobian at 0 is ``[[lam, 1], [beta lam, 0]]``): ``Delta_c = 1 + alpha`` in the
    paper's notation (its ``alpha`` is ``beta`` here, its ``Delta`` is ``1 / lam``), beyond PCA's
    ``Delta = 1``: the authors' ``Delta_c[alpha_] := 1 + alpha``, where "an eigenvalue equal to 1
    detaches" from the bulk of LAMP's matrix (their random-matrix notebook,
    github.com/benjaminaubin-zz/StructuredPrior_demo, ``Demo_RMT/notebook.nb``, section "Computing
    lambda max"; LAMP at finite d in tests/test_spiked_generative_lamp_published.py)."""
    found = hd.threshold(hd.Spiked(prior="generative", beta=2.0), "snr", "weak-recovery", (0.2, 1.0), num=4)
    assert found.found
    np.testing.assert_allclose(found.value, 1 / 3, atol=1e-9)


def test_linear_weak_recovery_threshold_under_vmap_and_grad():
    """A latent of variance ``rho`` under a linear layer of output noise ``Delta``: about the trivial
    point ``q_v ~ lam (rho + Delta)^2 q + q_z`` and ``q_z ~ rho^2 qhat_z``, ``qhat_z ~ beta lam q``
    (derived here, as for the standard latent), of spectral radius 1 at
    ``lam_c = 1 / ((rho + Delta)^2 + beta rho^2)``. Located at ``(beta, rho, Delta) = (1, 1.2, 0.3)``
    and at ``+- h`` in each, in one program, batched and differentiated in all three: the values
    equal those located alone and the closed form, the gradient the closed form's and the central
    differences of the located thresholds (truncation ``O(h^2)``: 1.0e-6 relative in ``rho`` at ``h = 1e-3``)."""

    def locate(params):
        beta, rho, noise = params
        theory = hd.Spiked(prior="generative", beta=beta, rho=rho, layer_noise=noise)
        found = hd.threshold(theory, "snr", "weak-recovery", (0.1, 0.6), num=4)
        return found.value, found.found

    h, base = 1e-3, np.array([1.0, 1.2, 0.3])
    points = np.concatenate([base[None], base + h * np.eye(3), base - h * np.eye(3)])
    (values, found), grads = jax.jit(jax.vmap(jax.value_and_grad(locate, has_aux=True)))(jnp.asarray(points))
    assert np.all(found)
    values, grads = np.asarray(values), np.asarray(grads)
    alone = [float(locate(p)[0]) for p in points[[1, 4]]]
    np.testing.assert_allclose(values[[1, 4]], alone, rtol=1e-12)
    beta, rho, noise = points.T
    D = (rho + noise) ** 2 + beta * rho**2
    np.testing.assert_allclose(values, 1 / D, rtol=1e-9)
    closed = -np.stack([rho**2, 2 * (rho + noise) + 2 * beta * rho, 2 * (rho + noise)], axis=-1) / D[:, None] ** 2
    np.testing.assert_allclose(grads, closed, rtol=1e-8)
    np.testing.assert_allclose(grads[0], (values[1:4] - values[4:]) / (2 * h), rtol=3e-6)


def test_the_factor_is_the_teacher_channel_in_other_coordinates():
    """``Z(B, A, omega, V)`` is the channel ``y = phi(h) + N(0, 1 / A)`` of
    :mod:`hdtheory.kernels.channels` at ``y = B / A``, times ``sqrt(2 pi / A) e^{B^2 / (2 A)}``; the
    sign activation (no such channel) against SciPy quadrature of its definition."""
    rng = np.random.default_rng(0)
    for B, A, omega, V in rng.uniform([-2, 0.2, -1.5, 0.1], [2, 3.0, 1.5, 1.0], (6, 4)):
        shift = B**2 / (2 * A) + 0.5 * math.log(2 * math.pi / A)
        for name, channel in (("linear", kernels.Linear), ("relu", kernels.ReLU)):
            act = kernels.GENERATIVE_ACTIVATIONS[name]()
            expected = float(channel(1 / A).log_partition(B / A, omega, V)) + shift
            np.testing.assert_allclose(float(act.log_partition(B, A, omega, V)), expected, rtol=1e-10, atol=1e-12)
        density = lambda h: math.exp(-((h - omega) ** 2) / (2 * V)) / math.sqrt(2 * math.pi * V)
        z = sum(
            integrate.quad(lambda h: density(h) * math.exp(B * s - A / 2), lo, hi, epsabs=1e-13)[0]
            for s, lo, hi in ((-1.0, -np.inf, 0.0), (1.0, 0.0, np.inf))
        )
        np.testing.assert_allclose(float(generative.Sign().log_partition(B, A, omega, V)), math.log(z), rtol=1e-9)


def test_quadrature_against_the_linear_closed_forms():
    """The quadrature path (``law``, panels, Hermite) applied to the linear activation reproduces its
    closed forms (the MMSE ``1 - q_v = V / (1 + A V)``, ``beta A / (1 + A V)``,
    ``A / 2 - log(1 + A V) / 2``), including ``A = q = 0`` and near perfect recovery; the smoothing
    ``eps = 1e-12`` bounds the error."""
    layer = kernels.Generative(generative.Linear(), 1.5)
    both = jax.jit(jax.vmap(lambda A, q: (jnp.stack(layer._averages(A, q)), jnp.stack(layer.averages(A, q)))))
    A = jnp.array([0.0, 1e-3, 0.7, 2.0, 50.0])
    q = jnp.array([0.0, 0.0, 0.3, 0.8, 0.99])
    quadrature, closed = both(A, q)
    closed = closed.at[:, 1].divide(1.5).at[:, 0].set(1 - closed[:, 0])
    np.testing.assert_allclose(quadrature, closed, rtol=1e-9, atol=1e-11)


def test_gradient_matches_finite_differences():
    """d mmse / d beta and d mmse / d snr through the fixed point (implicit differentiation)."""

    def mmse(snr, beta):
        return hd.solve(hd.Spiked(prior="generative", snr=snr, beta=beta)).observables["mmse"]

    both = jax.jit(jax.value_and_grad(mmse, argnums=(0, 1)))
    h = 1e-5
    _, (d_snr, d_beta) = both(1.5, 0.8)
    np.testing.assert_allclose(d_snr, (both(1.5 + h, 0.8)[0] - both(1.5 - h, 0.8)[0]) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(d_beta, (both(1.5, 0.8 + h)[0] - both(1.5, 0.8 - h)[0]) / (2 * h), rtol=1e-6)


def test_cli_eval():
    """``hdtheory eval spiked prior=generative beta=1 snr=2``: the authors' number again."""
    from hdtheory import cli

    out = {}

    def run(*args):
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert cli.main(["eval", "spiked", *args, "--json"]) == 0
        out.update(json.loads(buffer.getvalue()))

    run("prior=generative", "activation=linear", "beta=1", "snr=2")
    assert out["converged"] and abs(out["mmse"] - 0.319) < 5e-4 and 0 < out["q_z"] < 1


def test_bad_input_names_the_parameter():
    with pytest.raises(hd.ParameterError, match="beta"):
        hd.Spiked(prior="generative", beta=-1.0)
    with pytest.raises(hd.ParameterError, match="activation"):
        hd.Spiked(prior="generative", activation="softplus")
