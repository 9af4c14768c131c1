"""Errors under consistent l-infinity and lp attacks in ``hd.Adversarial(consistent="all")`` (attacks
that keep the teacher's label, Vilucchio, Zdeborová & Loureiro 2025; l2: test_adversarial_consistency.py):
at ``attack_p = 2`` the l2 model's closed form, the attacks' dual threshold against a linear program,
the fixed point's errors against exact consistent attacks on held-out samples at ``d = 500``, and the
derivative in ``eps_test`` against finite differences.

One compiled program: the vmapped solve over ``(attack_p, eps_test)`` with the gradient of the
consistent robust error in ``eps_test`` by the implicit function theorem and the envelope theorem.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import hdtheory as hd
from hdtheory import kernels
from hdtheory.simulate import simulate
from hdtheory.simulate.adversarial import _fit, consistent_threshold
from hdtheory.simulate.erm import _draw_like, _teacher

H = 1e-5
"""Step of the central finite differences."""
BASE = dict(alpha=1.5, lam=0.05, eps=0.3, noise=0.0)
POINTS = [(2.0, 0.8), (4.0, 0.8), (1e8, 0.8), (4.0, 0.8 - H), (4.0, 0.8 + H)]
"""``(attack_p, eps_test)``: the l2 ball, the lp ball simulated, near the l-infinity ball (``k - 1 = 1e-8``),
the finite-difference neighbours."""
FIELDS = (0.0, 0.2, 0.4)
"""Teacher's fields ``|z|`` at which the consistent attack's threshold is compared with finite ``d``."""
KEYS = ("test_error", "consistent_robust_error", "robust_error", "m", "q", "P")


@pytest.fixture(scope="module")
def solved():
    def consistent(eps_test, attack_p):
        theory = hd.Adversarial(attack="lp", consistent="all", attack_p=attack_p, eps_test=eps_test, **BASE)
        sol = hd.solve(theory)
        observables = {key: sol.observables[key] for key in KEYS}
        observables["threshold"] = theory.consistent_threshold(sol.state, jnp.asarray(FIELDS))
        return sol.observables["consistent_robust_error"], (observables, sol.converged)

    program = jax.jit(jax.vmap(jax.value_and_grad(consistent, has_aux=True)))
    (_, (obs, converged)), grad = program(*(jnp.array([p[i] for p in POINTS]) for i in (1, 0)))
    assert np.all(np.asarray(converged))
    return {key: np.asarray(value) for key, value in obs.items()}, np.asarray(grad)


def test_l2_ball_is_the_closed_form(solved):
    """At ``attack_p = 2``, ``N(mu)^2 = q - 2 mu m + mu^2 rho`` and the minimisation over ``mu`` is the
    l2 model's closed form on the plane of teacher and student (kernels.inconsistent_error, itself
    checked against SciPy's quad): to 1e-6 (the quadrature in the field ``a``, seen 3e-7)."""
    obs, _ = solved
    m, q = obs["m"][0], obs["q"][0]
    closed = float(kernels.inconsistent_error(jnp.asarray(m / np.sqrt(q)), jnp.asarray(0.8)))
    assert obs["robust_error"][0] - obs["consistent_robust_error"][0] == pytest.approx(closed, abs=1e-6)


def test_threshold_against_linear_program():
    """The dual threshold ``G(|z|) = min_mu eps N(mu) + mu |z|`` of the simulation against HiGHS on the
    primal, the l-infinity ball ``|delta_i| <= eps / sqrt(d)`` with the teacher's margin kept, to 1e-12."""
    rng = np.random.default_rng(1)
    d, eps = 200, 0.8
    w_star = rng.normal(size=d)
    w = 0.7 * w_star + rng.normal(size=d)
    z = rng.normal(size=8) * 0.6
    threshold = consistent_threshold(w, w_star, np.abs(z), eps, 1.0)
    for t, zi in zip(threshold, z):
        sign = np.sign(zi)
        lp = scipy.optimize.linprog(sign * w / np.sqrt(d), A_ub=[-sign * w_star / np.sqrt(d)], b_ub=[abs(zi)],
                                    bounds=[(-eps / np.sqrt(d), eps / np.sqrt(d))] * d, method="highs")
        assert t == pytest.approx(-lp.fun, abs=1e-12)
    assert np.any(threshold < eps * np.mean(np.abs(w)) - 0.01)  # the teacher's margin binds somewhere


# The default run checks the same path at attack_p = 4; test_threshold_at_finite_d checks the l-infinity ball.
@pytest.mark.parametrize("attack, at", [pytest.param("linf", 2, marks=pytest.mark.extended), ("lp", 1)])
def test_against_exact_attacks_at_finite_d(solved, attack, at):
    """d = 500, 2 seeds, 10000 held-out samples shared by the seeds; the consistent attack's threshold
    per sample by :func:`consistent_threshold` (the dual, exact). The consistent robust error within four
    standard errors plus 0.01 (the finite-size allowance of tests/test_adversarial.py; seen at d = 500:
    0.002 for both, the robust and clean errors within 0.009 and 0.005; at d = 400, 3 seeds: 0.006), and
    the part only label-changing attacks reach (robust minus consistent, counted on the samples) within
    four Monte Carlo standard deviations plus 0.002 (seen at d = 500: 0.0132 against 0.0124 l-infinity,
    0.0184 against 0.0189 lp at p = 4; the l2 formula at the same budget gives 0.0155 against 0.0124 for
    l-infinity, too close to reject here: :func:`test_threshold_at_finite_d` does)."""
    obs, _ = solved
    theory = {key: value[at] for key, value in obs.items()}
    kwargs = dict(attack="linf") if attack == "linf" else dict(attack="lp", attack_p=4.0)
    sim = simulate(hd.Adversarial(eps_test=0.8, **kwargs, **BASE), d=500, seeds=2)
    for key in ("consistent_robust_error", "robust_error", "test_error"):
        sim_key = "consistent_robust_error_empirical" if key == "consistent_robust_error" else key
        assert abs(theory[key] - sim.mean[sim_key]) <= 4 * sim.sem[sim_key] + 0.01, key
    counted = sim.mean["robust_error_empirical"] - sim.mean["consistent_robust_error_empirical"]
    expected = theory["robust_error"] - theory["consistent_robust_error"]
    assert abs(counted - expected) <= 4 * np.sqrt(expected / 10_000) + 0.002, (counted, expected)
    assert expected > 0.01


@pytest.mark.parametrize("attack, at", [("linf", 2), ("lp", 1)])
def test_threshold_at_finite_d(solved, attack, at):
    """The consistent attack's threshold ``G(|z|)`` at ``|z| = 0, 0.2, 0.4``, where the teacher's margin
    binds, against the exact one of adversarially trained weights at d = 500 (2 seeds, the dual of
    :func:`consistent_threshold`), within 3% of the mean (seen at d = 400: within 1.2% l-infinity, 1.3%
    lp; the seeds differ by up to 2.4%). For l-infinity the l2 formula at the same budget is 8% too low at 0."""
    theory = dict(attack="linf") if attack == "linf" else dict(attack="lp", attack_p=4.0)
    theory = hd.Adversarial(eps_test=0.8, **theory, **BASE)
    k, d = float(theory.dual_exponent), 500
    thresholds = []
    for seed in range(2):
        teacher_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        w_star = _teacher(theory, teacher_key, d)
        n = round(BASE["alpha"] * d)
        X, y, _ = _draw_like(theory, data_key, w_star, n)
        w = _fit(theory, np.asarray(X[:n]), np.asarray(y[:n]))
        thresholds.append(consistent_threshold(w, np.asarray(w_star), np.asarray(FIELDS), 0.8, k))
    np.testing.assert_allclose(np.mean(thresholds, axis=0), solved[0]["threshold"][at], rtol=0.03)


def test_derivative_against_finite_differences(solved):
    obs, grad = solved
    fd = (obs["consistent_robust_error"][4] - obs["consistent_robust_error"][3]) / (2 * H)
    assert grad[1] == pytest.approx(fd, rel=1e-5)


def test_parameter_errors():
    with pytest.raises(hd.ParameterError, match="consistent"):
        hd.Adversarial(attack="l1", consistent="all")
