"""Spiked Wigner models with a sign or ReLU generative prior: the separable limit beta -> 0, the
closed-form weak-recovery threshold, the stationarity of the free entropy, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import hdtheory as hd
from hdtheory import kernels

LAM_C = 1 / (1 + 8 / np.pi**2)  # beta = 2
SNR = jnp.array([0.8, 1.5, 3.0, 1.5])
BETA = jnp.array([1e-7, 1e-7, 1e-7, 2.0])


def _solve(activation):
    build = lambda snr, beta: hd.Spiked(prior="generative", activation=activation, snr=snr, beta=beta)
    return jax.jit(jax.vmap(lambda snr, beta: hd.solve(build(snr, beta))))


@pytest.fixture(scope="module")
def sign():
    """The sign activation over (SNR, BETA), one compiled solve."""
    sols = _solve("sign")(SNR, BETA)
    assert np.all(sols.converged)
    return sols


def test_sign_at_small_beta_is_the_rademacher_prior(sign):
    """``beta = d / k -> 0``: the latent is not learned (``qhat_z = O(beta)``) and ``v = sign(h)`` has
    independent ``+-1`` entries: ``q`` is the fixed point of the Rademacher prior's overlap
    (:mod:`hdtheory.kernels.priors`, another quadrature) and the free entropy is its
    ``psi(lam q) - lam q^2 / 4``, to ``O(beta)``. Below ``lam = 1`` the overlap is zero."""
    prior = kernels.Rademacher(1.0)
    for snr, q, f in zip(SNR[:3], sign.observables["q"][:3], sign.observables["free_entropy"][:3]):
        np.testing.assert_allclose(prior.overlap(snr * q), q, atol=1e-7)
        np.testing.assert_allclose(prior.free_entropy(snr * q) - snr * q**2 / 4, f, atol=1e-7)
    q = np.asarray(sign.observables["q"][:3])
    assert q[0] < 1e-8 and np.all(q[1:] > 0.3)


def test_sign_weak_recovery_is_the_closed_form():
    """At ``q = q_z = 0`` the state evolution's Jacobian is ``[[lam, 2 / pi], [beta lam 2 / pi, 0]]``
    (``E sign'(h) = sqrt(2 / pi)``), of spectral radius 1 at ``lam (1 + 4 beta / pi^2) = 1``:
    ``Delta_c = 1 + 4 alpha / pi^2`` in the paper's notation (its ``alpha`` is ``beta`` here), the
    critical noise of a single sign layer on the authors' NeurIPS 2019 poster
    (github.com/benjaminaubin-zz/StructuredPrior_demo, ``Poster/Poster_NeurIPS2019_StructuredPrior.pdf``,
    "Application: single sign layer", where AMP and LAMP share it). Checked on the Jacobian of
    ``update`` (the quadrature, differentiated through the smoothing at ``A = q = 0``) at the threshold
    and 10% below and above."""

    def radius(snr):
        theory = hd.Spiked(prior="generative", activation="sign", snr=snr, beta=2.0)
        return jnp.max(jnp.abs(jnp.linalg.eigvals(jax.jacfwd(theory.update)(jnp.zeros(2)))))

    radii = np.asarray(jax.jit(jax.vmap(radius))(jnp.array([1.0, 0.9, 1.1]) * LAM_C))
    np.testing.assert_allclose(radii[0], 1.0, atol=1e-8)
    assert radii[1] < 0.95 and radii[2] > 1.05


@pytest.mark.extended
def test_sign_weak_recovery_threshold_under_vmap_and_grad():
    """``lam_c = 1 / (1 + 4 beta / pi^2)`` located at ``beta = 2, 2 +- h`` in one program, batched and
    differentiated in ``beta``: the derivative at ``-(4 / pi^2) lam_c^2`` and at the central difference
    of the located thresholds (truncation ``O(h^2)``, 2e-8 relative at ``h = 1e-3``)."""

    def locate(beta):
        theory = hd.Spiked(prior="generative", activation="sign", beta=beta)
        found = hd.threshold(theory, "snr", "weak-recovery", (0.3, 1.0), num=4)
        return found.value, found.found

    h = 1e-3
    beta = jnp.array([2 - h, 2.0, 2 + h])
    (values, found), slopes = jax.jit(jax.vmap(jax.value_and_grad(locate, has_aux=True)))(beta)
    assert np.all(found)
    lam_c = 1 / (1 + 4 * beta / np.pi**2)
    np.testing.assert_allclose(values, lam_c, atol=1e-8)
    np.testing.assert_allclose(slopes, -4 / np.pi**2 * lam_c**2, rtol=1e-7)
    np.testing.assert_allclose(slopes[1], (values[2] - values[0]) / (2 * h), rtol=1e-6)


def test_free_entropy_is_stationary(sign):
    """The free entropy (the factor's ``E log Z`` by its own quadrature) is stationary in ``(q, q_z)``
    at the fixed point that the update (``E v* d_B log Z``, ``E (d_omega log Z)^2``) finds."""
    theory = hd.Spiked(prior="generative", activation="sign", snr=float(SNR[-1]), beta=2.0)
    state = sign.state[-1]
    assert 0.1 < float(state[1]) < 0.9
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(state), 0.0, atol=1e-8)


# The default run checks the ReLU layer against AMP at finite d (test_spiked_generative_amp.py) and the
# sign layer against closed forms here.
@pytest.mark.extended
def test_relu():
    """``v = relu(h)``. At ``beta -> 0`` the entries are independent: the overlap is that of the scalar
    channel ``B = A v + sqrt(A) xi`` at the solved ``A = lam q``, by SciPy quadrature of the posterior
    mean. At ``beta = 1`` the free entropy is stationary, and the non-zero mean keeps
    ``q >= (E relu)^2 = 1 / (2 pi)`` even at small ``lam``: no uninformative fixed point."""
    sols = _solve("relu")(jnp.array([2.0, 0.3]), jnp.array([1e-7, 1.0]))
    assert np.all(sols.converged)
    A = 2.0 * float(sols.observables["q"][0])
    pdf = lambda t: np.exp(-(t**2) / 2) / np.sqrt(2 * np.pi)
    # E[v | B] in closed form: v = 0 with probability 1/2, else the half-Gaussian tilted by
    # exp(B v - A v^2 / 2), i.e. N(m, s^2) on v > 0 with s^2 = 1 / (1 + A), m = B s^2.
    s = 1 / np.sqrt(1 + A)

    def mean(B):
        m = B * s**2
        on = s * np.exp(m**2 / (2 * s**2)) * special.ndtr(m / s)
        first = s * np.exp(m**2 / (2 * s**2)) * (m * special.ndtr(m / s) + s * np.exp(-m**2 / (2 * s**2)) / np.sqrt(2 * np.pi))
        return first / (0.5 + on)

    # E_{h > 0, x} h mean(A h + sqrt(A) x) by a dense Gauss-Legendre product rule (NumPy).
    nodes, weights = np.polynomial.legendre.leggauss(400)
    h, wh = 4.5 * (nodes + 1), 4.5 * weights * pdf(4.5 * (nodes + 1))
    x, wx = 9 * nodes, 9 * weights * pdf(9 * nodes)
    overlap = np.einsum("i,j,ij->", wh, wx, h[:, None] * mean(A * h[:, None] + np.sqrt(A) * x[None, :]))
    np.testing.assert_allclose(float(sols.observables["q"][0]), overlap, atol=1e-7)

    theory = hd.Spiked(prior="generative", activation="relu", snr=0.3, beta=1.0)
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sols.state[1]), 0.0, atol=1e-8)
    assert 1 / (2 * np.pi) < float(sols.observables["q"][1]) < 0.5


def test_gradient_matches_finite_differences():
    """d mmse / d beta through the fixed point of the sign activation's quadrature."""

    def mmse(beta):
        return hd.solve(hd.Spiked(prior="generative", activation="sign", snr=1.5, beta=beta)).observables["mmse"]

    both = jax.jit(jax.value_and_grad(mmse))
    h = 1e-5
    np.testing.assert_allclose(both(0.7)[1], (both(0.7 + h)[0] - both(0.7 - h)[0]) / (2 * h), rtol=1e-5)
