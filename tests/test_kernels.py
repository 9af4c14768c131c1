"""Kernels against independent references: SciPy integration and minimisation, finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, stats

from hdtheory import kernels
from hdtheory.kernels.quadrature import smoothed_expectation


def test_hermite_rule_is_exact_on_polynomials():
    z, w = kernels.hermite_rule(10)
    moments = [float(jnp.sum(w * z**k)) for k in range(8)]
    # E z^k for z ~ N(0, 1): 1, 0, 1, 0, 3, 0, 15, 0
    np.testing.assert_allclose(moments, [1, 0, 1, 0, 3, 0, 15, 0], atol=1e-12)


def test_gaussian_expectation_1d_closed_form_and_scipy():
    # E cos(x) = cos(mu) exp(-var / 2) for x ~ N(mu, var)
    ours = kernels.gaussian_expectation(jnp.cos, order=40, mean=0.3, var=2.0)
    assert abs(float(ours) - np.cos(0.3) * np.exp(-1.0)) < 1e-13
    # A function with poles near the real axis converges algebraically: order 200 for 1e-9.
    f = lambda x: jnp.tanh(x) ** 2  # noqa: E731
    ours = kernels.gaussian_expectation(f, order=200, mean=0.3, var=2.0)
    ref = integrate.quad(lambda x: np.tanh(x) ** 2 * stats.norm.pdf(x, 0.3, np.sqrt(2.0)), -40, 40,
                         epsabs=1e-13)[0]
    assert abs(float(ours) - ref) < 1e-9


def test_gaussian_expectation_2d_correlated():
    cov = jnp.array([[2.0, 0.6], [0.6, 1.5]])
    e = kernels.gaussian_expectation_2d(lambda a, b: a**2 * b**2, cov, order=8)
    # Isserlis: E[a^2 b^2] = c11 c22 + 2 c12^2
    assert abs(float(e) - (2.0 * 1.5 + 2 * 0.36)) < 1e-12
    e = kernels.gaussian_expectation_2d(lambda a, b: a * b, cov, order=8, mean=(1.0, -2.0))
    assert abs(float(e) - (0.6 - 2.0)) < 1e-12


@pytest.mark.parametrize("order", [0, -3, 2.5])
def test_hermite_rule_rejects_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        kernels.hermite_rule(order)


LOSSES = [kernels.Square(), kernels.Logistic(), kernels.Hinge(), kernels.Huber(0.7)]
POINTS = [(1.0, 0.3, 0.5), (-1.0, 2.0, 3.5), (1.0, -4.0, 10.0), (-1.0, 0.9, 0.05), (1.0, 0.5, 0.8)]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: type(l).__name__)
@pytest.mark.parametrize("y, omega, V", POINTS)
def test_prox_minimises_the_moreau_objective(loss, y, omega, V):
    ours = float(loss.prox(jnp.asarray(y), jnp.asarray(omega), jnp.asarray(V)))
    objective = lambda z: (z - omega) ** 2 / (2 * V) + float(loss(y, z))  # noqa: E731
    ref = optimize.minimize_scalar(objective, bounds=(omega - 50, omega + 50), method="bounded",
                                   options={"xatol": 1e-12}).x
    assert abs(ours - ref) < 1e-6


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: type(l).__name__)
@pytest.mark.parametrize("y, omega, V", POINTS)
def test_prox_derivatives_match_finite_differences(loss, y, omega, V):
    y, omega, V = jnp.asarray(y), jnp.asarray(omega), jnp.asarray(V)
    z, dz_domega, dz_dV = loss.prox_derivatives(y, omega, V)
    h = 1e-6
    fd_omega = (loss.prox(y, omega + h, V) - loss.prox(y, omega - h, V)) / (2 * h)
    fd_V = (loss.prox(y, omega, V + h) - loss.prox(y, omega, V - h)) / (2 * h)
    np.testing.assert_allclose([dz_domega, dz_dV], [fd_omega, fd_V], atol=1e-6)
    assert float(z) == pytest.approx(float(loss.prox(y, omega, V)))


def test_logistic_prox_second_derivative_through_implicit_jvp():
    loss = kernels.Logistic()
    d1 = jax.grad(lambda o: loss.prox(1.0, o, 2.0))
    d2 = jax.grad(d1)(0.4)
    h = 1e-4
    assert float(d2) == pytest.approx(float((d1(0.4 + h) - d1(0.4 - h)) / (2 * h)), abs=1e-7)


def test_logistic_prox_converges_where_plain_newton_cycles():
    # At large V plain Newton oscillates between two points for this input.
    loss = kernels.Logistic()
    y, omega, V = 1.0, -16.471718946466297, 19.95522412582722
    z = float(loss.prox(y, omega, V))
    assert abs(z - omega - V * y / (1 + np.exp(y * z))) < 1e-12


CHANNELS = [kernels.Sign(0.0), kernels.Sign(0.1), kernels.Probit(0.3), kernels.Linear(0.5)]
LAWS = {
    # P(y | z) written independently of the kernels.
    "Sign": lambda ch, y, z: ch.noise + (1 - 2 * ch.noise) * float(np.sign(z) == y),
    "Probit": lambda ch, y, z: stats.norm.cdf(y * z / np.sqrt(ch.noise)),
    "Linear": lambda ch, y, z: stats.norm.pdf(y, z, np.sqrt(ch.noise)),
}


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: f"{type(c).__name__}{float(c.noise)}")
def test_partition_function_matches_numerical_integral(channel):
    law = LAWS[type(channel).__name__]
    omega, V = 0.4, 0.7
    for y in (-1.0, 1.0, 0.3):
        if channel.classification and y not in (-1.0, 1.0):
            continue
        ref = integrate.quad(lambda z: law(channel, y, z) * stats.norm.pdf(z, omega, np.sqrt(V)),
                             -30, 30, points=[0.0])[0]
        assert float(channel.partition(y, omega, V)) == pytest.approx(ref, rel=1e-8)
        assert float(jnp.exp(channel.log_partition(y, omega, V))) == pytest.approx(ref, rel=1e-8)
        h = 1e-6
        fd = (channel.log_partition(y, omega + h, V) - channel.log_partition(y, omega - h, V)) / (2 * h)
        assert float(channel.dlog_partition(y, omega, V)) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: f"{type(c).__name__}{float(c.noise)}")
def test_label_quadrature_integrates_against_Z_and_its_derivative(channel):
    omega, V = jnp.asarray([0.4, -1.2]), 0.7
    g = lambda y: jnp.cos(y) + y**3  # noqa: E731
    y, w, dw = channel.label_quadrature(omega, V, order=40)
    for k, om in enumerate(np.asarray(omega)):
        if channel.classification:
            ref = sum(float(channel.partition(s, om, V)) * float(g(s)) for s in (-1.0, 1.0))
            h = 1e-6
            dref = sum((float(channel.partition(s, om + h, V)) - float(channel.partition(s, om - h, V)))
                       / (2 * h) * float(g(s)) for s in (-1.0, 1.0))
        else:
            s = np.sqrt(V + float(channel.noise))
            ref = integrate.quad(lambda t: float(g(t)) * stats.norm.pdf(t, om, s), -30, 30)[0]
            dref = integrate.quad(lambda t: float(g(t)) * stats.norm.pdf(t, om, s) * (t - om) / s**2,
                                  -30, 30)[0]
        assert float(jnp.sum(w[k] * g(y[k]))) == pytest.approx(ref, rel=1e-8)
        assert float(jnp.sum(dw[k] * g(y[k]))) == pytest.approx(dref, rel=1e-6, abs=1e-9)


def test_sign_log_partition_is_finite_deep_in_the_tail_and_its_noise_gradient_at_zero():
    ch = kernels.Sign(0.0)
    assert np.isfinite(float(ch.dlog_partition(1.0, -40.0, 1.0)))
    g = jax.grad(lambda n: kernels.Sign(n).log_partition(1.0, 0.3, 0.5))(0.0)
    assert np.isfinite(float(g))


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: f"{type(c).__name__}{float(c.noise)}")
def test_test_errors_match_monte_carlo(channel):
    rho, m, q = 1.3, 0.8, 1.1
    key = jax.random.PRNGKey(0)
    cov = np.array([[rho, m], [m, q]])
    zs = np.random.default_rng(0).multivariate_normal([0, 0], cov, size=400_000)
    z, omega = jnp.asarray(zs[:, 0]), jnp.asarray(zs[:, 1])
    y = channel.sample(key, z)
    excess, total = channel.test_errors(m, q, rho)
    if channel.classification:
        excess_samples = jnp.sign(omega) != jnp.sign(z)
        total_samples = jnp.sign(omega) != y
    else:
        excess_samples = (omega - z) ** 2
        total_samples = (omega - y) ** 2
    for value, samples in ((excess, excess_samples), (total, total_samples)):
        sem = float(jnp.std(samples)) / np.sqrt(samples.size)
        assert abs(float(value) - float(jnp.mean(samples))) < 4 * sem


def test_panel_rule_is_exact_for_kinks_on_its_edges():
    # E|z - a| = 2 phi(a) + a (2 Phi(a) - 1): a kink that a Hermite rule resolves only slowly.
    a = 0.3
    exact = 2 * stats.norm.pdf(a) + a * (2 * stats.norm.cdf(a) - 1)
    z, w = kernels.panel_rule(jnp.array([a]), order=30)
    assert abs(float(jnp.sum(w * jnp.abs(z - a))) - exact) < 1e-13
    zh, wh = kernels.hermite_rule(96)
    assert abs(float(jnp.sum(wh * jnp.abs(zh - a))) - exact) > 1e-6
    # Differentiable in the edges; batched edges give batched rules.
    z, w = kernels.panel_rule(jnp.array([[0.0, 1.0], [-2.0, 0.5]]), order=30)
    assert z.shape == w.shape == (2, 90)
    np.testing.assert_allclose(jnp.sum(w, axis=-1), 1.0, atol=1e-13)


def test_smoothed_expectation_differentiates_its_derivative_batched_and_compiled():
    """``E sin(a) omega^2 = sin(a) var``: its derivative in ``var``, ``E f'' / 2 = sin(a)``, is an
    expectation of a function that does not depend on ``omega``, batched over ``var`` alone and
    compiled; differentiated in turn it gives ``cos(a)`` and 0 (the batched tangent of a value that
    is not batched broke jax's linearisation, jax-ml/jax#16374)."""
    z, w = kernels.hermite_rule(8)
    e = lambda var, a: smoothed_expectation(lambda o, a: jnp.sin(a) * o**2, var, a, z, w)  # noqa: E731
    slope = jax.jit(jax.vmap(jax.grad(e), (0, None)))
    var, a = jnp.array([0.0, 0.5]), 0.3
    np.testing.assert_allclose(slope(var, a), np.sin(a), rtol=1e-14)
    d_var, d_a = jax.grad(lambda var, a: jnp.sum(slope(var, a)), (0, 1))(var, a)
    np.testing.assert_allclose(d_var, 0.0, atol=1e-14)
    np.testing.assert_allclose(d_a, 2 * np.cos(a), rtol=1e-14)
