r"""The largest stable learning rate of a steady state: ``hd.threshold(theory, "lr", "stability")``.

Closed forms, derived here (K = M = 1, fixed output weights ``v`` for student and teacher, teacher
norm ``T = tau``; our normalisation: ``w <- w - lr Delta v g'(lambda) x / sqrt(d)``, time n / d):

- the linear perceptron (g(x) = x): with ``e = v^2 (Q - 2R + tau)``,
  ``de/dt = (lr^2 v^4 - 2 lr v^2) e + lr^2 v^4 noise`` and ``dR/dt = -lr v^2 (R - tau)``, so the
  Jacobian's eigenvalues are ``-lr v^2`` and ``lr^2 v^4 - 2 lr v^2``: ``lr_c = 2 / v^2`` whatever
  the noise (with noise the steady error ``lr v^2 noise / (2 - lr v^2)`` diverges there).
- the erf perceptron (g(x) = erf(x / sqrt 2)), noiseless, at the learned teacher Q = R = 1
  (``tau = 1``): linearising Saad & Solla's equations there (``I_3`` in closed form; the ``lr^2``
  term to first order is ``E[g'(nu)^4] (Q - 2R + 1) = 4 / (pi^2 sqrt 5) (Q - 2R + 1)``), with
  ``a = lr v^2 / (pi sqrt 3)`` and ``b = lr^2 v^4 4 / (pi^2 sqrt 5)`` the Jacobian in ``(Q, R)`` is
  ``[[-2a + b, 8a/3 - 2b], [a, -8a/3]]``, whose determinant ``(8a^2 - 2ab) / 3`` vanishes first
  (before the trace): ``lr_c = pi sqrt(5/3) / v^2 = 4.0558 / v^2``. Past it the learned point is a
  saddle, and a steady state of positive error takes over its stability (a transcritical exchange).

- a fold (derived here): ``dx/dt = c - lr^2 - x^2``, ``dy/dt = x / 10 - y`` has the stable steady
  state ``x = sqrt(c - lr^2)`` (eigenvalues ``-2x`` and ``-1``), which meets the unstable
  ``x = -sqrt(c - lr^2)`` and ends at ``lr_c = sqrt(c)``: no growth rate changes sign on a grid, the
  branch ends; ``d lr_c / dc = 1 / (2 sqrt(c))``.

The derivatives of the located threshold are checked against these closed forms and, in the
teacher norm ``tau`` (which moves the learned point ``Q = R = tau``), against central differences of
located thresholds.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory._steady import largest_real_part
from hdtheory._theory import NONNEGATIVE, POSITIVE, ODETheory, parameter


class Fold(ODETheory):
    """A steady state that ends at a fold (module docstring)."""

    lr: jax.Array = parameter(0.1, NONNEGATIVE, "the control parameter")
    c: jax.Array = parameter(1.0, POSITIVE, "the fold's place: lr = sqrt(c)")

    def init(self):
        return jnp.array([1.0, 0.5])

    def vector_field(self, t, x):
        return jnp.stack([self.c - self.lr**2 - x[0] ** 2, x[0] / 10 - x[1]])

    def observables(self, t, x):
        return {"x": x[0]}


def linear(v, noise):
    return hd.Committee(K=1, M=1, activation="linear", noise=noise, q0=0.3, R0=[[0.2]],
                        v0=jnp.reshape(v, (1,)), teacher_v=jnp.reshape(v, (1,)))


def erf(v, tau):
    # Started on the learned teacher, Q = R = T.
    one = jnp.reshape(tau, (1, 1))
    return hd.Committee(K=1, M=1, Q0=one, R0=one, T=one, v0=jnp.reshape(v, (1,)), teacher_v=jnp.reshape(v, (1,)))


def test_linear_perceptron_limit_is_two_over_v_squared_with_and_without_noise():
    # One compiled program for the four (and for the grid of the last test): plain calls.
    for v, noise in [(0.8, 0.0), (1.0, 0.1), (1.3, 0.1), (1.0, 1.0)]:
        found = hd.threshold(linear(jnp.float64(v), jnp.float64(noise)), "lr", "stability", (0.5, 3.5), num=7)
        assert found.found
        assert float(found.value) == pytest.approx(2 / v**2, rel=1e-10)
        if noise == 0:  # the noiseless steady state is the teacher at any learning rate
            assert float(found.states[0].R[0, 0]) == pytest.approx(1.0, rel=1e-10)


def test_linear_perceptron_limit_derivative_in_v_is_the_closed_forms():
    """``d lr_c / dv = -4 / v^3`` by the crossing's implicit derivative (forward mode, under ``jit`` and
    ``vmap``), without and with noise."""
    v, noise = jnp.array([0.8, 1.3]), jnp.array([0.0, 0.1])

    def value(v, noise):
        return hd.threshold(linear(v, noise), "lr", "stability", (0.5, 3.5), num=7, end="crossing").value

    values, slopes = jax.jit(jax.vmap(lambda v, noise: jax.jvp(lambda v: value(v, noise), (v,), (jnp.ones_like(v),))))(v, noise)
    np.testing.assert_allclose(values, 2 / v**2, rtol=1e-10)
    np.testing.assert_allclose(slopes, -4 / v**3, rtol=1e-7)


@pytest.fixture(scope="module")
def erf_thresholds():
    """Located thresholds at (v, tau) and tau -+ 1e-4, with their derivatives in v at tau = 1 and
    in tau at (1, 1): one directional derivative per point (forward mode, as the refinement's
    derivative rule is stated: reverse mode is its transpose)."""
    dt = 1e-4
    v = jnp.array([1.0, 1.2, 1.0, 1.0, 1.0])
    tau = jnp.array([1.0, 1.0, 1.0 + dt, 1.0 - dt, 1.0])
    d_v = jnp.array([1.0, 1.0, 0.0, 0.0, 0.0])  # the last point's direction is tau

    def value(v, tau):
        # The learned point loses its stability (a crossing): the fold's refinement is not compiled.
        return hd.threshold(erf(v, tau), "lr", "stability", (1.0, 6.0), num=6, end="crossing").value

    values, slopes = jax.jit(jax.vmap(lambda *a: jax.jvp(value, a[:2], a[2:])))(v, tau, d_v, 1 - d_v)
    slopes = np.asarray(slopes)
    return np.asarray(v), dt, np.asarray(values), (slopes[:2], slopes[4])


# The default run checks the threshold located on the committee's steady state, and its derivative
# through the crossing's refinement, against the linear perceptron's closed forms.
@pytest.mark.extended
def test_erf_perceptron_limit_in_closed_form(erf_thresholds):
    v, _, values, (d_v, _) = erf_thresholds
    closed = np.pi * np.sqrt(5 / 3) / v[:2] ** 2
    np.testing.assert_allclose(values[:2], closed, rtol=1e-9)
    np.testing.assert_allclose(d_v, -2 * closed / v[:2], rtol=1e-7)


# The default run checks the threshold located on the committee's steady state, and its derivative
# through the crossing's refinement, against the linear perceptron's closed forms.
@pytest.mark.extended
def test_erf_threshold_derivative_in_the_teacher_norm_against_finite_differences(erf_thresholds):
    _, dt, values, (_, d_tau) = erf_thresholds
    fd = (values[2] - values[3]) / (2 * dt)
    # Central differences of thresholds located to ~1e-11: error ~1e-11 / 1e-4 + O(dt^2).
    assert abs(d_tau) > 0.1  # the learned point moves with tau, and the threshold with it
    assert d_tau == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_a_stable_branch_that_ends_at_a_fold():
    """The stability limit is the fold, with its derivative, also under ``vmap`` with ``end="auto"``
    (where the crossing's refinement is computed too and must not spoil the fold's derivative)."""
    located = hd.threshold(Fold(), "lr", "stability", (0.2, 1.5), num=8)
    assert bool(located.found)
    assert float(located.value) == pytest.approx(1.0, rel=1e-9)
    assert abs(float(located.states[0][0])) < 1e-6  # x = 0 at the fold
    c = jnp.array([1.0, 0.8])
    values, slopes = jax.jit(jax.vmap(jax.value_and_grad(
        lambda c: hd.threshold(Fold(c=c), "lr", "stability", (0.2, 1.5), num=8).value
    )))(c)
    np.testing.assert_allclose(values, np.sqrt(c), rtol=1e-9)
    np.testing.assert_allclose(slopes, 1 / (2 * np.sqrt(c)), rtol=1e-6)


def test_largest_real_part_derivative_for_a_complex_pair():
    rng = np.random.default_rng(0)
    a = jnp.array([[0.1, -2.0, 0.3], [2.0, 0.1, 0.0], [0.2, 0.0, -1.0]])  # top pair 0.1 +- 2i
    e = jnp.array(rng.normal(size=(3, 3)))
    h = 1e-6
    fd = (largest_real_part(a + h * e) - largest_real_part(a - h * e)) / (2 * h)
    assert float(jnp.sum(jax.grad(largest_real_part)(a) * e)) == pytest.approx(float(fd), rel=1e-7)


def test_bad_requests_are_parameter_errors():
    with pytest.raises(hd.ParameterError, match="ODETheory or a Stationary"):
        hd.threshold(hd.ERM(), "lam", "stability", (0.1, 1.0))
    with pytest.raises(hd.ParameterError, match="'axis' must be one of"):
        hd.threshold(linear(1.0, 0.1), "alpha", "stability", (0.5, 1.5))
    with pytest.raises(hd.ParameterError, match="'end' must be one of"):
        hd.threshold(linear(1.0, 0.1), "lr", "stability", (0.5, 1.5), end="hopf")
    with pytest.raises(hd.ParameterError, match="does not change sign over bracket .* nor does a stable branch end"):
        hd.threshold(linear(jnp.float64(1.0), jnp.float64(0.1)), "lr", "stability", (0.5, 1.5), num=7)  # stable throughout


def test_continuation_follows_the_saad_solla_plateau_to_its_small_learning_rate_height():
    # From a symmetric start, Newton's method lands on the plateau (a saddle) at lr = 0.5; followed
    # downward, its height tends to Saad & Solla's (1995) eta -> 0 value for K = M, T = I, erf,
    # eps* = (K / pi) (pi / 6 - K arcsin(1 / (2K))), with a correction linear in lr.
    K = 2
    committee = hd.Committee(K=K, M=K, Q0=0.3 * jnp.eye(K), R0=0.2 * jnp.ones((K, K)))
    lrs = np.array([1e-3, 2e-3, 0.1, 0.5])
    down = hd.continuation(committee, "lr", lrs).sel(branch="down")
    assert down["converged"].all() and not down["stable"].any()  # a saddle all along
    R = down["R"].values
    np.testing.assert_allclose(R, np.broadcast_to(R.mean(axis=(1, 2), keepdims=True), R.shape), rtol=1e-8)  # unspecialised
    eg = down["eg"].values
    at_zero = 2 * eg[0] - eg[1]  # linear extrapolation: error O(lr^2) ~ 1e-8 of eg
    closed = K / np.pi * (np.pi / 6 - K * np.arcsin(1 / (2 * K)))
    assert at_zero == pytest.approx(closed, rel=1e-5)
