"""K-dimensional kernels against closed forms, Monte Carlo, SciPy and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from hdtheory import kernels
from hdtheory.kernels import multivariate


def _random_cov(rng, n, scale=1.0):
    A = rng.normal(size=(n, n))
    return scale * (A @ A.T / n + 0.3 * np.eye(n))


def test_product_rule_moment_generating_function():
    # E exp(a.x) = exp(a.mean + a^T C a / 2), and its gradient in C is (a a^T / 2) times that.
    rng = np.random.default_rng(0)
    cov, mean, a = _random_cov(rng, 3, 0.5), rng.normal(size=3), rng.normal(size=3) * 0.7
    exact = np.exp(a @ mean + a @ cov @ a / 2)

    def expectation(cov):
        return kernels.gaussian_expectation_nd(lambda x: jnp.exp(x @ a), cov, order=24, mean=mean)

    value, grad = jax.jit(jax.value_and_grad(expectation))(jnp.asarray(cov))
    assert abs(float(value) / exact - 1) < 1e-12
    np.testing.assert_allclose(np.asarray(grad + grad.T) / 2, np.outer(a, a) / 2 * exact, rtol=1e-10)


def test_expectations_against_monte_carlo_and_each_other():
    # A smooth non-polynomial integrand in K = 3: the product rule at order 12 against order 40
    # (a high-order reference) and against 2e6 Monte Carlo samples (4 standard errors).
    rng = np.random.default_rng(1)
    cov, mean = _random_cov(rng, 3), rng.normal(size=3) * 0.5
    f = lambda x: jnp.cos(x[..., 0]) * jnp.tanh(x[..., 1] + x[..., 2]) + x[..., 2] ** 2  # noqa: E731
    expectation = jax.jit(kernels.gaussian_expectation_nd, static_argnames=("f", "order", "rule", "points"))
    ours = float(expectation(f=f, cov=cov, order=12, mean=mean))
    high = float(expectation(f=f, cov=cov, order=40, mean=mean))
    sobol = float(expectation(f=f, cov=cov, mean=mean, rule="sobol", points=2**16))
    assert abs(ours - high) < 2e-4  # tanh's poles limit the convergence (algebraic-like at order 12)
    assert abs(sobol - high) < 2e-4
    X = rng.multivariate_normal(mean, cov, size=2_000_000)
    samples = np.asarray(jax.jit(f)(X))
    assert abs(samples.mean() - high) < 4 * samples.std() / np.sqrt(samples.size)


def test_sobol_rule_in_eight_dimensions():
    # The stated accuracy of the shifted Sobol rule beyond a product rule's reach: E exp(a.x), K = 8.
    rng = np.random.default_rng(2)
    cov, a = _random_cov(rng, 8, 0.3), rng.normal(size=8) * 0.4
    exact = np.exp(a @ cov @ a / 2)
    ours = kernels.gaussian_expectation_nd(lambda x: jnp.exp(x @ a), cov, rule="sobol", points=2**14)
    assert abs(float(ours) / exact - 1) < 2e-3
    with pytest.raises(ValueError, match="power of two"):
        kernels.gaussian_expectation_nd(lambda x: x[..., 0], cov, rule="sobol", points=1000)


def test_orthant_probability():
    # n = 2 at zero mean: 1/4 + arcsin(r) / (2 pi) (Sheppard); n = 1: Phi; n = 3 against SciPy's
    # multivariate normal distribution function (Genz's own method, to its default 1e-5 or so).
    orthant_probability = jax.jit(kernels.orthant_probability, static_argnames="order")
    r = 0.6
    cov2 = jnp.array([[1.0, r], [r, 1.0]])
    assert abs(float(orthant_probability(jnp.zeros(2), cov2, order=24)) - (0.25 + np.arcsin(r) / (2 * np.pi))) < 1e-12
    assert abs(float(orthant_probability(jnp.array([0.7]), jnp.array([[2.0]]), order=24)) - stats.norm.cdf(0.7 / np.sqrt(2))) < 1e-15
    rng = np.random.default_rng(3)
    for n in (2, 3):
        cov, mean = _random_cov(rng, n), rng.normal(size=n)
        ours = float(orthant_probability(jnp.asarray(mean), jnp.asarray(cov), order=24))
        ref = stats.multivariate_normal(mean=-mean, cov=cov, abseps=1e-9, releps=1e-9).cdf(np.zeros(n))
        assert abs(ours - ref) < 1e-6


def _batch(rng, count, K, log_scale):
    """Random (y, omega, V) with steps from 1e-3 to 10^log_scale."""
    ys, omegas, Vs = [], [], []
    for _ in range(count):
        ys.append(np.eye(K)[rng.integers(K)])
        omegas.append(rng.normal(size=K) * rng.choice([1.0, 8.0]))
        Vs.append(_random_cov(rng, K, 10 ** rng.uniform(-3, log_scale)))
    return np.array(ys), np.array(omegas), np.array(Vs)


def _direct(y, omega, V):
    Vi = np.linalg.inv(V)

    def objective(z):
        return 0.5 * (z - omega) @ Vi @ (z - omega) - y @ z + np.logaddexp.reduce(z)

    def gradient(z):
        return Vi @ (z - omega) - y + np.exp(z - np.logaddexp.reduce(z))

    return optimize.minimize(objective, omega, jac=gradient, method="BFGS", options={"gtol": 1e-13}).x


@jax.jit
def _panel_sums(width):
    """For the test below, with the panel rules of order 6: the error of ``E[Phi(nu_1.xi / w)
    Phi(nu_2.xi / w)]`` against the orthant probability, ``E xi_1^2`` and ``E[xi_1 Phi(xi_1 / w)]``."""
    from jax.scipy.special import ndtr

    nu = jnp.asarray([[1.0, 0.3], [-0.5, 1.0], [0.2, -1.0]])
    nu = nu / jnp.linalg.norm(nu, axis=1, keepdims=True)
    x, w = multivariate.line_panel_rule(nu, jnp.full(3, width), 6)
    values = ndtr(x @ nu[0] / width) * ndtr(x @ nu[1] / width)
    c = nu[0] @ nu[1]
    exact = multivariate.orthant_probability(jnp.zeros(2), jnp.asarray([[1 + width**2, c], [c, 1 + width**2]]), 48)
    x1, w1 = multivariate.line_panel_rule(jnp.asarray([[1.0]]), jnp.reshape(width, (1,)), 6)
    return jnp.sum(w * values) - exact, jnp.sum(w * x[:, 0] ** 2), jnp.sum(w1 * x1[:, 0] * ndtr(x1[:, 0] / width))


@pytest.mark.parametrize("width", [1.0, 0.1, 1e-3])
def test_line_panel_rule_resolves_sharp_transitions(width):
    # E[Phi(nu_1.xi / w) Phi(nu_2.xi / w)] is the orthant probability of (nu_j.xi + w eta_j) with
    # covariance [[1 + w^2, nu_1.nu_2], [., 1 + w^2]]; E[xi_1 Phi(xi_1 / w)] = phi(0) / sqrt(1 + w^2)
    # (Stein). A product Gauss-Hermite rule of 24^2 nodes is off by 1e-2 at w = 1e-3.
    error, second, stein = _panel_sums(width)
    assert abs(float(error)) < 1e-8
    assert abs(float(second) - 1) < 1e-7
    assert abs(float(stein) - 1 / np.sqrt(2 * np.pi * (1 + width**2))) < 1e-8


def test_cross_entropy_prox_against_direct_minimisation():
    # Steps up to 1e6 (the small-regularisation regime where an undamped Newton iteration fails).
    rng = np.random.default_rng(4)
    y, omega, V = _batch(rng, 24, 3, 6)
    ours = np.asarray(jax.jit(jax.vmap(kernels.cross_entropy_prox))(y, omega, V))
    for i in range(len(y)):
        assert np.all(np.isfinite(ours[i]))
        np.testing.assert_allclose(ours[i], _direct(y[i], omega[i], V[i]), atol=1e-5 * (1 + np.abs(ours[i]).max()))


def test_square_prox_against_direct_minimisation():
    rng = np.random.default_rng(5)
    y, omega, V = _batch(rng, 1, 4, 2)
    y, omega, V = y[0], omega[0], V[0]
    Vi = np.linalg.inv(V)
    ref = optimize.minimize(lambda z: 0.5 * (z - omega) @ Vi @ (z - omega) + 0.5 * np.sum((y - z) ** 2),
                            omega, method="BFGS", options={"gtol": 1e-12}).x
    np.testing.assert_allclose(np.asarray(jax.jit(kernels.square_prox)(y, omega, V)), ref, atol=1e-6)


def test_prox_jvp_against_finite_differences():
    rng = np.random.default_rng(6)
    y, omega, V = _batch(rng, 1, 3, 1)
    y, omega, V = y[0] * 0.7 + 0.1, omega[0], V[0]  # a soft label: the derivative in y too
    direction = (rng.normal(size=3) * 0.1, rng.normal(size=3), _random_cov(rng, 3, 0.2))
    f = lambda t: kernels.cross_entropy_prox(*(p + t * d for p, d in zip((y, omega, V), direction)))  # noqa: E731
    h = 1e-5

    @jax.jit
    def derivatives():
        # The Jacobian in omega is (I + V H)^{-1}.
        z = kernels.cross_entropy_prox(y, omega, V)
        jacobian = jax.jacfwd(kernels.cross_entropy_prox, argnums=1)(y, omega, V)
        return jax.jvp(f, (0.0,), (1.0,))[1], f(h), f(-h), jacobian, multivariate.prox_jacobian(kernels.cross_entropy, y, z, V)

    tangent, plus, minus, jacobian, expected = derivatives()
    np.testing.assert_allclose(np.asarray(tangent), np.asarray((plus - minus) / (2 * h)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(jacobian), np.asarray(expected), rtol=1e-10, atol=1e-12)


def test_two_class_cross_entropy_is_binary_logistic():
    # For K = 2 the loss depends on delta = z1 - z2 only: log(1 + exp(-s delta)), s = +1 for class 1.
    # The prox therefore moves along V a, a = (1, -1), and delta is the binary logistic prox with
    # step a^T V a at a.omega.
    rng = np.random.default_rng(7)
    y, omega, V = _batch(rng, 16, 2, 5)
    z = jax.jit(jax.vmap(kernels.cross_entropy_prox))(y, omega, V)
    a = np.array([1.0, -1.0])
    s = y @ a
    delta = jax.jit(kernels.Logistic().prox)(jnp.asarray(s), jnp.asarray(omega @ a), jnp.asarray(np.einsum("i,nij,j->n", a, V, a)))
    np.testing.assert_allclose(np.asarray(z @ a), np.asarray(delta), rtol=1e-9, atol=1e-9)
    # and z - omega is along V a
    shift = np.asarray(z) - omega
    along = np.einsum("nij,j->ni", V, a)
    cross = shift[:, 0] * along[:, 1] - shift[:, 1] * along[:, 0]
    np.testing.assert_allclose(cross, 0.0, atol=1e-8 * (1 + np.abs(shift).max() * np.abs(along).max()))


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7])
def test_small_solve_against_lapack(n):
    # Unrolled elimination up to n = 6, jnp.linalg.solve beyond; a zero leading pivot needs the row swap.
    rng = np.random.default_rng(8)
    A = rng.normal(size=(5, n, n))
    if n > 1:
        A[0, 0, 0] = 0.0
    b, B = rng.normal(size=(5, n)), rng.normal(size=(5, n, 3))
    w = rng.normal(size=n)

    @jax.jit
    def ours(A, b, B, w):
        # Linear in b, so reverse mode transposes it: the gradient of w.A^{-1} b in b is A^{-T} w.
        gradient = jax.grad(lambda b: w @ multivariate.small_solve(A[1], b))(b[1])
        return multivariate.small_solve(A, b), jax.vmap(multivariate.small_solve)(A, B), multivariate.small_inv(A), gradient

    solved, solved_columns, inverse, gradient = ours(A, b, B, w)
    np.testing.assert_allclose(np.asarray(solved), np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(solved_columns), np.linalg.solve(A, B), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(inverse), np.linalg.inv(A), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gradient), np.linalg.solve(A[1].T, w), rtol=1e-10, atol=1e-12)


def test_sign_tilted_moments_derivative_in_the_flip_at_zero():
    """At ``flip = 0``, the edge of its range, the derivative of every output of
    :func:`~hdtheory.kernels.sign_tilted_moments` in ``flip`` (forward and reverse mode) is the
    one-sided one: second-order one-sided differences (step 1e-4, error about 1e-8) to 1e-6, no NaN.
    At zero mean, ``Z = (1 - flip) P_y + flip (1 - P_y)`` with ``P_+ = 1/2 + arcsin(r) / pi`` (``r``
    the correlation; Sheppard's formula), so ``d log Z / d flip = (1 - P_y) / P_y - 1``, to 1e-8."""
    mean, cov = jnp.asarray([0.4, -0.7]), jnp.asarray([[1.0, 0.3], [0.3, 0.8]])

    @jax.jit
    def outputs(flip, mean, y=1.0):
        return jnp.concatenate([jnp.ravel(x) for x in kernels.sign_tilted_moments(y, flip, mean, cov)])

    zero = jnp.zeros(())
    forward, reverse = jax.jit(jax.jacfwd(outputs))(zero, mean), jax.jit(jax.jacrev(outputs))(zero, mean)
    h = 1e-4
    one_sided = (-3 * outputs(zero, mean) + 4 * outputs(zero + h, mean) - outputs(zero + 2 * h, mean)) / (2 * h)
    assert np.all(np.isfinite(forward))
    np.testing.assert_allclose(forward, one_sided, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(reverse, forward, rtol=1e-12)
    positive = 0.5 + np.arcsin(0.3 / np.sqrt(0.8)) / np.pi
    slope = jax.vmap(jax.grad(lambda f, y: outputs(f, jnp.zeros(2), y)[0]), (None, 0))
    slope = jax.jit(slope)(zero, jnp.asarray([1.0, -1.0]))  # log Z at y = +1 and -1
    np.testing.assert_allclose(slope, [(1 - p) / p - 1 for p in (positive, 1 - positive)], rtol=1e-8)


def test_zero_cut_rule_per_axis_crossings():
    """``crossings`` cuts each axis at its own values: ``((0,), (0,))`` is the default rule, and cuts at
    ``x_1 = +-1`` (none on ``x_2``) integrate the jump of ``1{|x_1| > 1}`` against ``2 Q(1 / s_1)``,
    ``s_1`` the standard deviation of ``x_1``, and the smooth ``x_2^2`` against its variance."""
    L = jnp.asarray([[0.8, 0.0], [0.3, 0.6]])
    mean, width = jnp.zeros(2), jnp.asarray([0.4, 0.5])
    default = multivariate.zero_cut_rule(mean, L, width, 4)
    same = multivariate.zero_cut_rule(mean, L, width, 4, crossings=((0.0,), (0.0,)))
    for a, b in zip(default, same):
        np.testing.assert_array_equal(a, b)
    u, w = multivariate.zero_cut_rule(mean, L, width, 6, crossings=((-1.0, 1.0), ()))
    x = u @ L.T
    np.testing.assert_allclose(w @ (jnp.abs(x[:, 0]) > 1), 2 * stats.norm.sf(1 / 0.8), rtol=1e-8)
    np.testing.assert_allclose(w @ x[:, 1] ** 2, 0.3**2 + 0.6**2, rtol=1e-7)
