"""Smooth generative layers, ``erf`` and ``tanh`` (:class:`hdtheory.kernels.generative.Smooth`): the
factor and its derivatives against SciPy quadrature, the state-evolution averages against an
independent product rule over ``(xi, h*, eta)``, a nearly linear ``tanh(eps h) / eps`` against the
linear layer's closed forms, the I-MMSE relation, the free entropy's stationarity, a derivative through
the fixed point, multi-layer AMP at d = 1000 and the weak-recovery threshold located by ``hd.threshold``
against its closed form."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import hdtheory as hd
from hdtheory import kernels
from hdtheory.kernels.generative import Erf, Smooth, Tanh
from hdtheory.simulate.spiked import generative_amp_errors

PHI = {"erf": (Erf, special.erf, special.erfinv), "tanh": (Tanh, np.tanh, np.arctanh)}


def _posterior_moments(phi, inverse, B, A, omega, V):
    """``(log Z, <phi>, <h - omega> / V, Var(phi))`` by SciPy's adaptive quadrature of the definition,
    the posterior's peak ``phi^-1(B / A)`` given as a break point."""
    s = math.sqrt(V)
    log_t = lambda h: -((h - omega) ** 2) / (2 * V) + B * phi(h) - A * phi(h) ** 2 / 2
    grid = np.linspace(omega - 14 * s, omega + 14 * s, 20001)
    shift = np.max(log_t(grid))
    peak = float(np.clip(inverse(np.clip(B / A, -1 + 1e-15, 1 - 1e-15)), omega - 14 * s, omega + 14 * s)) if A else omega
    moment = lambda f: integrate.quad(
        lambda h: f(h) * np.exp(log_t(h) - shift), omega - 14 * s, omega + 14 * s,
        points=sorted({omega, peak}), limit=1000, epsabs=0, epsrel=1e-13,
    )[0]
    z = moment(lambda h: 1.0)
    mean, second = moment(phi) / z, moment(lambda h: phi(h) ** 2) / z
    log_z = math.log(z) + shift - 0.5 * math.log(2 * math.pi * V)
    return log_z, mean, moment(lambda h: h - omega) / z / V, second - mean**2


POINTS = [(0.3, 0.5, 0.2, 0.7), (5.0, 10.0, -0.4, 0.9), (80.0, 100.0, 0.5, 0.3), (300.0, 1000.0, 0.1, 0.05),
          (-2.0, 3.0, 1.5, 0.01), (50.0, 30.0, 0.0, 1.0), (0.01, 0.0, 0.3, 1.0)]


@pytest.mark.parametrize("name", ["erf", "tanh"])
def test_factor_and_its_derivatives_match_scipy(name):
    """``log Z``, ``d_B log Z = <phi>``, ``d_omega log Z = <h - omega> / V`` and ``d_B^2 log Z =
    Var(phi)`` (the quantities of multi-layer AMP) from the rule in ``h`` by automatic
    differentiation, at weak and strong SNR (``A`` from 0 to 1000), against SciPy: within 1e-8
    (seen: 3e-11 at most, but 2.5e-9 (erf) and 8e-10 (tanh) at ``B / A = 5 / 3``, beyond the range of
    ``phi``, where SciPy reports its own roundoff)."""
    cls, phi, inverse = PHI[name]
    log_z = cls().log_partition
    d_b = jax.grad(log_z, 0)
    derived = jax.jit(jax.vmap(lambda *a: jnp.stack([log_z(*a), d_b(*a), jax.grad(log_z, 2)(*a), jax.grad(d_b)(*a)])))
    ours = np.asarray(derived(*jnp.asarray(POINTS).T))
    for point, row in zip(POINTS, ours):
        np.testing.assert_allclose(row, _posterior_moments(phi, inverse, *point), atol=1e-8, err_msg=str(point))


def test_constants_match_scipy():
    """``rho = E phi(h)^2``, ``slope = E phi'(h)``, ``second_moment(v)`` (``h ~ N(0, v)``; erf's closed
    form, tanh's panel rule) and the ``law`` of ``phi(h)``, against SciPy quadrature."""
    gauss = lambda f, v=1.0: integrate.quad(lambda h: f(h) * np.exp(-h * h / (2 * v)) / np.sqrt(2 * np.pi * v), -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13)[0]
    derivative = {"erf": lambda h: 2 / np.sqrt(np.pi) * np.exp(-h * h), "tanh": lambda h: 1 - np.tanh(h) ** 2}
    for name, (cls, phi, _) in PHI.items():
        act = cls()
        np.testing.assert_allclose(act.rho, gauss(lambda h: phi(h) ** 2), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(act.slope, gauss(derivative[name]), rtol=1e-12, err_msg=name)
        for v in (0.3, 1.0, 2.5):
            np.testing.assert_allclose(act.second_moment(v), gauss(lambda h: phi(h) ** 2, v), rtol=1e-11, err_msg=name)
        x, w = act.law(0.4, 0.6, 16)
        np.testing.assert_allclose(w @ x**2, gauss(lambda h: phi(0.4 + h) ** 2, 0.6), rtol=1e-10, err_msg=name)


def _product_rule(phi, A, q, V, n=40, m=800):
    """``(E v* (v* - <phi>), E (d_omega log Z)^2, E log Z)`` with ``xi``, ``h* = omega + sqrt(V) zeta``
    and ``eta`` each on Gauss-Hermite nodes (``n``) and the factor on ``m`` Gauss-Legendre nodes over
    ``omega +- 12 sqrt(V)``: NumPy, none of the layer's rules."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    t, wt = np.polynomial.legendre.leggauss(m)
    total = np.zeros(3)
    for xi, w_xi in zip(x, w):
        omega = math.sqrt(q) * xi
        v = phi(omega + math.sqrt(V) * x)[:, None]  # h* on the first axis, eta on the second
        B = (A * v + math.sqrt(A) * x[None, :]).ravel()
        h = omega + 12 * math.sqrt(V) * t
        log_t = np.log(12 * math.sqrt(V) * wt) - (h - omega) ** 2 / (2 * V) + B[:, None] * phi(h) - A * phi(h) ** 2 / 2
        log_z = np.logaddexp.reduce(log_t, axis=1)
        p = np.exp(log_t - log_z[:, None])
        terms = np.stack([(v * (v - (p @ phi(h)).reshape(v.shape[0], -1))).ravel(), ((p @ (h - omega)) / V) ** 2,
                          log_z - 0.5 * math.log(2 * math.pi * V)])
        total += w_xi * terms.reshape(3, n, n) @ w @ w
    return total


@pytest.mark.parametrize("name, A, q, n, m, tol", [("erf", 1.0, 0.3, 30, 400, 1e-9), ("tanh", 4.0, 0.6, 40, 500, 1e-8)])
def test_averages_match_a_product_rule(name, A, q, n, m, tol):
    """The layer's averages (the Nishimori form over ``(xi, B)``, the factor a rule in ``h`` at each
    node) against the defining average over ``(xi, h*, eta)`` by an independent product rule. The
    difference is the product rule's error: erf 2e-10 at ``(n, m) = (30, 400)``, 1.6e-12 at
    ``(40, 800)``; tanh (poles at ``+-i pi / 2``, where Gauss-Hermite converges slowly) 8e-8 at
    ``(30, 400)``, 2.8e-9 at ``(40, 800)``."""
    cls, phi, _ = PHI[name]
    layer = kernels.Generative(cls(), 1.0)
    ours = np.asarray(jax.jit(lambda A, q: jnp.stack(layer._noiseless_averages(A, q)))(A, q))
    np.testing.assert_allclose(ours, _product_rule(phi, A, q, 1 - q, n, m), atol=tol)


def _slight(eps):
    """``phi(h) = tanh(eps h) / eps``: linear to ``O(eps^2)``, a :class:`Smooth` given in a few lines."""

    class Slight(Smooth):
        bound = 1 / eps
        rho = float(Tanh().second_moment(eps**2)) / eps**2
        slope = integrate.quad(lambda h: np.exp(-h * h / 2) / np.cosh(eps * h) ** 2 / np.sqrt(2 * np.pi), -np.inf, np.inf)[0]

        def phi(self, h):
            return jnp.tanh(eps * h) / eps

        def inverse(self, x):
            return jnp.arctanh(eps * x) / eps

        def second_moment(self, variance):
            return Tanh().second_moment(eps**2 * variance) / eps**2

    return Slight()


def test_nearly_linear_tanh_is_the_linear_layer():
    """``tanh(eps h) / eps = h - eps^2 h^3 / 3 + ...``: its averages ``(q_v, qhat, E log Z)`` approach
    the linear layer's closed forms as ``eps^2`` (the differences at ``eps = 0.05`` and ``0.025`` in a
    ratio 4 within 1%; seen 3.98 to 3.99, 3.91 to 3.96 at ``eps = 0.1`` and ``0.05``, where ``O(eps^4)``
    is larger), about ``1.7 eps^2`` at most."""
    linear = kernels.Generative(kernels.generative.Linear(), 1.5)
    A, q = 1.5, 0.4
    reference = np.asarray(linear.averages(A, q))
    gaps = []
    for eps in (0.05, 0.025):
        layer = kernels.Generative(_slight(eps), 1.5)
        gaps.append(np.asarray(jax.jit(lambda A, q: jnp.stack(layer.averages(A, q)))(A, q)) - reference)
        assert np.all(np.abs(gaps[-1]) < 2 * eps**2)
    np.testing.assert_allclose(gaps[0] / gaps[1], 4.0, rtol=1e-2)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_i_mmse_and_the_state_derivative(noise):
    """For an erf layer (noiseless, and with ``Delta = 0.3``): ``d E log Z / dA = q_v / 2`` (I-MMSE)
    and ``d E log Z / dq = qhat / (2 beta)``, by central differences."""
    layer = kernels.compose("erf", 1.5, noise=noise)
    A, q, h = 0.7, 0.4, 1e-5
    averages = jax.jit(lambda A, q: jnp.stack(layer.averages(A, q)))
    q_v, qhat, _ = np.asarray(averages(A, q))
    entropy = lambda A, q: float(averages(A, q)[2])
    np.testing.assert_allclose((entropy(A + h, q) - entropy(A - h, q)) / (2 * h), q_v / 2, atol=1e-9)
    np.testing.assert_allclose((entropy(A, q + h) - entropy(A, q - h)) / (2 * h), qhat / 3.0, atol=1e-9)


def _spiked(activation, snr, beta):
    return hd.Spiked(prior="generative", activation=activation, snr=snr, beta=beta)


# The default run checks the free entropy's derivatives through the I-MMSE relation and the derivative in the
# state (test_i_mmse_and_the_state_derivative, with and without layer noise).
@pytest.mark.extended
def test_free_entropy_is_stationary():
    """A spiked Wigner model with an erf layer: the free entropy is stationary in the state at the
    fixed point (central differences of step 1e-5, whose truncation and rounding are below 1e-10)."""
    theory = _spiked("erf", 5.0, 1.0)
    sol = jax.jit(lambda: hd.solve(theory))()
    assert sol.converged and 0.1 < float(sol.state[0]) < 0.3
    free_entropy = jax.jit(lambda state: theory.free_entropy(state))
    state, h = np.asarray(sol.state), 1e-5
    for step in h * np.eye(2):
        np.testing.assert_allclose((free_entropy(state + step) - free_entropy(state - step)) / (2 * h), 0.0, atol=1e-8)


def test_derivatives_of_the_averages_match_finite_differences():
    """The derivatives of a tanh layer's averages ``(q_v, qhat, E log Z)`` in ``A``, ``q`` and ``beta``
    by automatic differentiation (forward and reverse) through the rules, whose nodes in ``u`` and
    ``h`` move with ``A`` and ``q`` without being differentiated, against central differences."""

    def averages(x):
        return jnp.stack(kernels.Generative(Tanh(), x[2], noise=0.2).averages(x[0], x[1]))

    x, h = jnp.array([2.0, 0.5, 1.5]), 1e-5
    forward, reverse, f = jax.jit(jax.jacfwd(averages)), jax.jit(jax.jacrev(averages)), jax.jit(averages)
    differences = np.stack([(f(x + e) - f(x - e)) / (2 * h) for e in h * np.eye(3)], axis=1)
    np.testing.assert_allclose(forward(x), differences, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(reverse(x), forward(x), rtol=1e-12, atol=1e-14)


@pytest.mark.extended
def test_gradient_through_the_fixed_point_matches_finite_differences():
    """``d mmse / d beta`` through the erf layer's fixed point against central differences."""
    mmse = lambda beta: hd.solve(_spiked("erf", 5.0, beta)).observables["mmse"]
    both = jax.jit(jax.value_and_grad(mmse))
    h = 1e-5
    np.testing.assert_allclose(both(1.0)[1], (both(1.0 + h)[0] - both(1.0 - h)[0]) / (2 * h), rtol=1e-5)


@pytest.mark.extended
@pytest.mark.parametrize("activation, snr, beta", [("tanh", 6.0, 2.0), ("tanh,erf", 6.0, (1.0, 1.5))])
def test_free_entropy_is_stationary_for_tanh_and_a_stack(activation, snr, beta):
    """The stationarity of the default run's erf layer, for a tanh layer and the stack ``tanh,erf``."""
    theory = _spiked(activation, snr, beta)
    sol = jax.jit(lambda: hd.solve(theory))()
    assert sol.converged and float(sol.state[0]) > 0.05
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sol.state), 0.0, atol=1e-8)


def test_amp_follows_state_evolution():
    """Multi-layer AMP at d = 1000 through an erf layer (``snr = 6``, ``beta = 1``) from a side
    observation of the latent at SNR 1: the errors per iteration, three seeds averaged, within
    ``3 / sqrt(d)`` of the state evolution (seen: within 1.3 / sqrt(d)) while the signal's falls from
    0.46 to 0.22."""
    theory, steps, snr0, d = _spiked("erf", 6.0, 1.0), 8, 1.0, 1000
    errors = generative_amp_errors(theory, d=d, seeds=3, steps=steps, snr0=snr0, key=jax.random.PRNGKey(1))
    predicted = hd.iterate(theory, steps, init=jnp.array([0.0, snr0 / (1 + snr0)]))
    for key, error in errors.items():
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=3 / np.sqrt(d), err_msg=key)
    assert predicted["mmse"][0] - predicted["mmse"][-1] > 5 / np.sqrt(d)


def _located(beta):
    found = hd.threshold(_spiked("erf", 1.0, beta), "snr", "weak-recovery", (2.0, 3.0), num=3)
    assert found.found
    return float(found.value)


# The default run checks the same linearisation's threshold located by hd.threshold on the linear layer
# (test_spiked_generative.py::test_linear_weak_recovery_threshold) and on the Jacobian of the sign layer's
# map (test_spiked_generative_nonlinear.py::test_sign_weak_recovery_is_the_closed_form), and erf's
# constants rho and s against SciPy (test_constants_match_scipy).
@pytest.mark.extended
def test_weak_recovery_threshold():
    """About ``q = q_z = 0`` the state evolution is linear (derived here, as for the sign layer):
    ``q_v ~ rho^2 A + s^2 q_z`` and ``q_z ~ beta s^2 A`` at ``A = lam q``, ``s = E erf'(h) = 2 /
    sqrt(3 pi)``, ``rho = E erf(h)^2``, whose Jacobian ``[[lam rho^2, s^2], [beta s^2 lam, 0]]`` has
    the eigenvalue 1 at ``lam_c = 1 / (rho^2 + beta s^4)``, 2.5256 at ``beta = 1``: the threshold
    located by ``hd.threshold`` meets it."""
    np.testing.assert_allclose(_located(1.0), 1 / (Erf.rho**2 + Erf.slope**4), rtol=1e-8)


@pytest.mark.extended
def test_weak_recovery_threshold_derivative_matches_located_thresholds():
    """The thresholds located at ``beta = 1, 1 +- h`` in one program, batched and differentiated in
    ``beta``: the derivative at the closed form's ``-s^4 / (rho^2 + beta s^4)^2`` and at the central
    difference of the located thresholds (truncation ``O(h^2)``, about 1e-6 relative at ``h = 1e-3``)."""

    def locate(beta):
        found = hd.threshold(_spiked("erf", 1.0, beta), "snr", "weak-recovery", (2.0, 3.0), num=3)
        return found.value, found.found

    rho, s, h = Erf.rho, Erf.slope, 1e-3
    beta = jnp.array([1 - h, 1.0, 1 + h])
    (values, found), slopes = jax.jit(jax.vmap(jax.value_and_grad(locate, has_aux=True)))(beta)
    assert np.all(found)
    np.testing.assert_allclose(values, 1 / (rho**2 + beta * s**4), rtol=1e-8)
    np.testing.assert_allclose(slopes, -(s**4) / (rho**2 + beta * s**4) ** 2, rtol=1e-7)
    np.testing.assert_allclose(slopes[1], (values[2] - values[0]) / (2 * h), rtol=1e-5)


@pytest.mark.extended
def test_phase_retrieval_threshold_derivative_matches_located_thresholds():
    """Noiseless real phase retrieval through an erf layer (``hd.BayesGLM(channel="abs")``, ``beta =
    2``): ``d alpha_WR / d beta`` by ``hd.threshold``'s implicit derivative against central differences
    of the thresholds located at ``beta +- 1e-3``, in one compiled program."""
    theory = hd.BayesGLM(prior="generative", activation="erf", channel="abs", noise=0.0, alpha=0.5, beta=2.0,
                         panel_order=8, label_order=6)

    def locate(beta):
        found = hd.threshold(eqx.tree_at(lambda t: t.beta, theory, beta), "alpha", "weak-recovery", (0.15, 0.22), num=3)
        return found.value, found

    h = 1e-3
    (values, founds), slopes = jax.jit(jax.vmap(jax.value_and_grad(locate, has_aux=True)))(jnp.array([2 - h, 2.0, 2 + h]))
    assert np.all(founds.found)
    np.testing.assert_allclose(slopes[1], (values[2] - values[0]) / (2 * h), rtol=1e-5)
