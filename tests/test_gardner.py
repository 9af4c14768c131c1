"""The Gardner volume of the perceptron: spherical and binary weights, the storage capacity.

References: Gardner 1988 (J. Phys. A 21, 257), the spherical capacity
``alpha_c(kappa) = 1 / int_{-kappa}^inf Dt (t + kappa)^2``; Gardner & Derrida 1988 (J. Phys. A 21,
271), the binary weights' replica-symmetric saddle point reaching ``q = 1`` at ``4 / pi``; Krauth &
Mézard 1989 (J. Phys. France 50, 3057), the binary capacity ``alpha_c = 0.833`` where the
replica-symmetric entropy vanishes. The fixed points and entropies are checked against the same
equations written here independently (SciPy ``quad`` and ``brentq``), the capacity of spherical
weights against random instances (the largest margin of each by least-distance programming).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

import hdtheory as hd
from hdtheory.models import MODELS

# quad's roundoff notes at its 1e-14 target: the references agree with each other to 1e-12 (checked
# against a doubled quadrature order of the theory).
pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")

# --------------------------------------------------------------------------------------------------
# The replica-symmetric equations in SciPy (module docstring of hdtheory.models.gardner, written anew).


def _expect(f, cuts=()):
    """E f(t), t ~ N(0, 1), by quad on pieces cut at ``cuts``."""
    edges = [-np.inf, *sorted(c for c in cuts if abs(c) < 30), np.inf]
    return sum(
        integrate.quad(lambda t: stats.norm.pdf(t) * f(t), a, b, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
        for a, b in zip(edges[:-1], edges[1:])
    )


def _field(q, kappa):
    """The pattern's standardised field u(t) = (sqrt(q) t - kappa) / sqrt(1 - q), its threshold in t."""
    return (lambda t: (np.sqrt(q) * t - kappa) / np.sqrt(1 - q)), kappa / np.sqrt(q)


def _qhat(q, alpha, kappa):
    u, t0 = _field(q, kappa)
    # g = d/domega log Phi(u) = phi(u) / (Phi(u) sqrt(1 - q))
    g = lambda t: np.exp(-u(t) ** 2 / 2 - special.log_ndtr(u(t))) / np.sqrt(2 * np.pi * (1 - q))
    return alpha * _expect(lambda t: g(t) ** 2, [t0])


def _patterns(q, alpha, kappa):
    u, t0 = _field(q, kappa)
    return alpha * _expect(lambda t: special.log_ndtr(u(t)), [t0])


def _tanh2(r):
    c = 1 / np.sqrt(r)
    return _expect(lambda z: np.tanh(np.sqrt(r) * z) ** 2, [-c, 0.0, c])


def scipy_spherical(alpha, kappa):
    q = optimize.brentq(lambda q: q / (1 - q) ** 2 - _qhat(q, alpha, kappa), 1e-9, 1 - 1e-6, xtol=1e-15)
    s = 0.5 * np.log(1 - q) + q / (2 * (1 - q)) + _patterns(q, alpha, kappa)
    return q, _qhat(q, alpha, kappa), s


def scipy_binary(alpha, kappa):
    q = optimize.brentq(lambda q: _tanh2(_qhat(q, alpha, kappa)) - q, 1e-9, 1 - 1e-3, xtol=1e-15)
    r = _qhat(q, alpha, kappa)
    c = 1 / np.sqrt(r)
    log_2cosh = _expect(lambda z: np.logaddexp(np.sqrt(r) * z, -np.sqrt(r) * z), [-c, 0.0, c])
    return q, r, log_2cosh - r * (1 - q) / 2 + _patterns(q, alpha, kappa)


def gardner_capacity(kappa):
    """1 / int_{-kappa}^inf Dt (t + kappa)^2, by quad (Gardner 1988)."""
    return 1 / integrate.quad(lambda t: stats.norm.pdf(t) * (t + kappa) ** 2, -kappa, np.inf, epsabs=1e-14)[0]


# --------------------------------------------------------------------------------------------------
# Spherical weights.


def test_spherical_capacity_is_gardners_closed_form():
    kappas = jnp.array([0.0, 0.3, 1.0, 2.5])
    capacity = jax.jit(jax.vmap(lambda k: hd.Gardner(kappa=k).capacity().alpha))
    values = np.asarray(capacity(kappas))
    expected = [gardner_capacity(k) for k in np.asarray(kappas)]
    np.testing.assert_allclose(values, expected, rtol=1e-8)
    assert abs(values[0] - 2.0) < 1e-12  # Cover's count, Gardner's alpha_c(0) = 2
    # The same through threshold, and its derivative in kappa against finite differences.
    assert abs(float(hd.threshold(hd.Gardner(kappa=0.3), "alpha", "separability").value) - expected[1]) < 1e-8
    slope = float(jax.grad(lambda k: hd.Gardner(kappa=k).capacity().alpha)(0.3))
    h = 1e-5
    assert abs(slope - (gardner_capacity(0.3 + h) - gardner_capacity(0.3 - h)) / (2 * h)) < 1e-6


def test_spherical_fixed_point_against_scipy_and_its_limits():
    alpha_c = gardner_capacity(0.5)
    points = [(1.0, 0.0), (0.5, 0.8), ((1 - 1e-5) * alpha_c, 0.5), (2.2, 0.0)]
    alphas, kappas = (jnp.array(x) for x in zip(*points))
    sols = jax.jit(jax.vmap(lambda a, k: hd.solve(hd.Gardner(alpha=a, kappa=k))))(alphas, kappas)
    assert np.asarray(sols.converged).tolist() == [True, True, True, False]  # none beyond alpha_c(0) = 2
    for i, (alpha, kappa) in enumerate(points[:2]):
        q, qhat, s = scipy_spherical(alpha, kappa)
        assert abs(float(sols.observables["q"][i]) - q) < 1e-9
        assert abs(float(sols.observables["qhat"][i]) - qhat) < 1e-8 * qhat
        assert abs(float(sols.observables["entropy"][i]) - s) < 1e-9
    # Near the capacity two solutions nearly coincide, and the replicon tends to alpha_c Phi(kappa)
    # (below one: replica symmetry is stable for kappa >= 0, Gardner 1988), approaching it as
    # sqrt(1 - q) (seen: 1e-3 off at 1 - q = 6e-6, 1e-2 at 6e-4).
    assert float(sols.observables["q"][2]) > 0.9999
    assert abs(float(sols.observables["replicon"][2]) - alpha_c * special.ndtr(0.5)) < 3e-3
    assert float(sols.observables["replicon"][2]) < 1


# --------------------------------------------------------------------------------------------------
# Binary weights.


def test_binary_fixed_point_against_scipy_and_its_stability():
    rs_limit = 4 / np.pi  # Gardner & Derrida 1988: q -> 1 there
    points = [(0.5, 0.0), (0.3, 0.7), (1.2, 0.0), (0.833, 0.0), (0.995 * rs_limit, 0.0)]
    alphas, kappas = (jnp.array(x) for x in zip(*points))
    theory = lambda a, k: hd.Gardner(alpha=a, kappa=k, prior="binary")
    sols = jax.jit(jax.vmap(lambda a, k: hd.solve(theory(a, k))))(alphas, kappas)
    assert bool(np.all(sols.converged))
    for i, (alpha, kappa) in enumerate(points[:3]):
        q, qhat, s = scipy_binary(alpha, kappa)
        assert abs(float(sols.observables["q"][i]) - q) < 1e-9
        assert abs(float(sols.observables["qhat"][i]) - qhat) < 1e-8 * qhat
        assert abs(float(sols.observables["entropy"][i]) - s) < 1e-9
    replicon = np.asarray(sols.observables["replicon"])
    # Stable up to the capacity (Huang, Wong & Kabashima 2013, J. Phys. A 46, 375002), not at 1.2.
    assert replicon[0] < replicon[3] < 1 < replicon[2]
    # The entropy at Krauth and Mezard's 0.833 is zero to the digits given (its slope in alpha is -1.2).
    assert abs(float(sols.observables["entropy"][3])) < 1e-3
    assert float(sols.observables["q"][4]) > 0.98


def test_binary_capacity_krauth_mezard_and_its_derivative():
    h = 1e-5

    def capacity(kappa):
        result = hd.Gardner(kappa=kappa, prior="binary").capacity()
        return result.alpha, (result.alpha_rs, result.q, result.converged)

    kappas = jnp.array([0.0, 0.5 - h, 0.5 + h, 0.5])
    program = jax.jit(jax.vmap(lambda k: jax.jvp(capacity, (k,), (jnp.ones_like(k),), has_aux=True)))
    alpha, slope, (alpha_rs, q, converged) = program(kappas)
    alpha, slope = np.asarray(alpha), np.asarray(slope)
    assert bool(np.all(converged))
    # Krauth & Mezard 1989: alpha_c = 0.833 (to the digits published) at kappa = 0.
    assert abs(alpha[0] - 0.833) < 5e-4
    # The zero of the replica-symmetric entropy written in SciPy.
    root = optimize.brentq(lambda a: scipy_binary(a, 0.0)[2], 0.8, 0.87, xtol=1e-13)
    assert abs(alpha[0] - root) < 1e-8
    assert abs(float(q[0]) - scipy_binary(root, 0.0)[0]) < 1e-7
    # The q -> 1 limit of the saddle point: 4 / pi (Gardner & Derrida 1988), not the capacity.
    assert abs(float(alpha_rs[0]) - 4 / np.pi) < 1e-12
    assert alpha[3] < float(alpha_rs[3]) < gardner_capacity(0.5)
    # d alpha_c / d kappa against central differences.
    assert abs(slope[3] - (alpha[2] - alpha[1]) / (2 * h)) < 1e-6


# --------------------------------------------------------------------------------------------------
# Finite size, domain, registration.


def _max_margin(x, y):
    """The largest kappa with y_i w.x_i / sqrt(d) >= kappa |w| / sqrt(d) for all i: the least |w| with
    A w >= 1 (A = y x / sqrt(d)) is sqrt(d) / kappa, found by least-distance programming through
    non-negative least squares (Lawson & Hanson 1974, ch. 23); 0 if the labels are not separable."""
    n, d = x.shape
    A = y[:, None] * x / np.sqrt(d)
    E = np.vstack([A.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = optimize.nnls(E, f, maxiter=50 * n)
    r = E @ u - f
    if abs(r[-1]) < 1e-10:
        return 0.0
    w = -r[:d] / r[-1]
    assert np.min(A @ w) > 1 - 1e-8
    return np.sqrt(d) / np.linalg.norm(w)


@pytest.mark.parametrize("kappa", [0.5, 1.0])
def test_spherical_capacity_against_random_instances(kappa):
    """At n = alpha_c(kappa) d the largest margin of random labels is kappa: the fraction of instances
    separable with margin kappa crosses 1/2 there. d = 200, 20 instances: the mean margin within four
    standard errors plus 0.03 (its finite-size shift, seen 0.01-0.02)."""
    d = 200
    n = int(round(float(hd.Gardner(kappa=kappa).capacity().alpha) * d))
    rng = np.random.default_rng(19)
    margins = np.array([
        _max_margin(rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], n)) for _ in range(20)
    ])
    error = margins.std(ddof=1) / np.sqrt(margins.size)
    assert abs(margins.mean() - kappa) < 4 * error + 0.03
    assert 0.2 <= np.mean(margins >= kappa) <= 0.8


@pytest.mark.parametrize(
    "kwargs, name",
    [({"alpha": 0.0}, "alpha"), ({"kappa": -0.1}, "kappa"), ({"prior": "ising"}, "prior"), ({"order": 4}, "order")],
)
def test_bad_parameters_are_named(kwargs, name):
    with pytest.raises(hd.ParameterError, match=name):
        hd.Gardner(**kwargs)


def test_threshold_axis_and_registration():
    with pytest.raises(hd.ParameterError, match="axis"):
        hd.threshold(hd.Gardner(), "kappa", "separability")
    assert MODELS["gardner"] is hd.Gardner


def test_float32_runs():
    sol = hd.solve(hd.Gardner(alpha=jnp.float32(1.0)))
    assert sol.state.dtype == jnp.float32 and bool(sol.converged)
    assert abs(float(sol.observables["q"]) - scipy_spherical(1.0, 0.0)[0]) < 1e-4
