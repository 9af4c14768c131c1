"""Adversarial training against l-infinity attacks (``hd.Adversarial(attack="linf")``): ERM at
``eps = 0``, the attacked norm ``P = |w|_1 / d`` in closed form against quadrature, the fixed point
against simulations (with a check that fails without the attack's conjugate ``Phat``), derivatives
against finite differences, and bad input.

One vmapped solve per (loss, penalty) (a module-scoped fixture) holds every fixed point the tests
read: the ``eps = 0`` points, the simulated point and its finite-difference neighbours.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

import hdtheory as hd
from hdtheory import kernels
from hdtheory.simulate import simulate

from adversarial_checks import assert_gradients_match_differences, assert_matches_simulation, solved_with_gradients

H = 1e-5
"""Step of the central finite differences."""
ZERO = [dict(alpha=2.0, lam=0.1, noise=0.0, eps=0.0, eps_test=0.3),
        dict(alpha=0.8, lam=0.02, noise=0.1, eps=0.0, eps_test=0.3)]
"""Settings at which ``eps = 0`` is compared with ERM."""
AT = dict(alpha=2.0, lam=0.1, noise=0.0, eps=0.5, eps_test=0.5)
"""The point compared with simulations and of the derivatives."""
CONFIGS = [("logistic", "l1"), ("hinge", "ridge")]
"""(loss, penalty): between them both losses, both penalties and both of the simulation's fits."""


def _points():
    points = ZERO + [AT]
    for name in ("eps", "lam"):
        points += [AT | {name: AT[name] + sign * H} for sign in (-1.0, 1.0)]
    return {k: jnp.array([p[k] for p in points]) for k in points[0]}


POINTS = _points()
SIM = len(ZERO)
"""Index of ``AT`` in the fixture."""


# The default run checks the l-infinity attack with the logistic loss and the l1 penalty, the ridge's
# weight side with the attack's l1 term against quad (test_weight_averages_against_quadrature), and the
# hinge loss's attacked fit against simulation in test_adversarial_hinge.
@pytest.fixture(scope="module", params=[pytest.param(c, id="-".join(c), marks=[pytest.mark.extended] * (c[0] == "hinge"))
                                        for c in CONFIGS])
def solved(request):
    """The fixed points, and at each the gradient of :func:`adversarial_checks.combined` in
    ``(eps, lam)`` (:func:`adversarial_checks.solved_with_gradients`)."""
    loss, penalty = request.param

    def theory(p):
        return hd.Adversarial(attack="linf", loss=loss, penalty=penalty, **p)

    sol, grad = solved_with_gradients(theory, POINTS)
    obs = {k: np.asarray(v) for k, v in sol.observables.items()}
    assert np.all(np.asarray(sol.converged)), sol.status
    return loss, penalty, obs, [np.asarray(g) for g in grad]


# The default run checks eps = 0 against ERM under the l2 attack (test_adversarial); the simulation
# checks this attack's path.
@pytest.mark.extended
def test_eps_zero_is_erm(solved):
    """At ``eps = 0`` the attack and its conjugate vanish: ERM's fixed point to the solver's
    precision; ``P = E|w|`` is then ``sqrt(2 q / pi)`` for the ridge (Gaussian weights)."""
    loss, penalty, obs, _ = solved
    keys = {k: jnp.array([p[k] for p in ZERO]) for k in ZERO[0] if k not in ("eps", "eps_test")}
    erm = jax.jit(jax.vmap(lambda p: hd.solve(hd.ERM(loss=loss, penalty=penalty, **p))))(keys).observables
    for key in ("m", "q", "V", "mhat", "qhat", "Vhat", "test_error", "train_loss", "sparsity_hat"):
        np.testing.assert_allclose(obs[key][: len(ZERO)], erm[key], rtol=1e-9, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(obs["margin_shift"][: len(ZERO)], 0.0)
    if penalty == "ridge":
        np.testing.assert_allclose(obs["P"][: len(ZERO)], np.sqrt(2 * obs["q"][: len(ZERO)] / np.pi), rtol=1e-12)
    else:
        assert np.all(obs["sparsity_hat"][: len(ZERO)] < 1)


@pytest.mark.parametrize("l1, l2", [(0.0, 0.7), (0.4, 0.0), (0.3, 0.5)])
def test_weight_averages_against_quadrature(l1, l2):
    """``E|w_hat|`` (and ``m``, ``q``, ``V``) of the elastic net's weight side against SciPy's ``quad``
    over ``w*`` and ``xi`` of ``soft(b, l1) / (Vhat + l2)``, ``b = mhat w* + sqrt(qhat) xi``, for the
    Gaussian and a Gauss-Bernoulli prior; ``plus_l1`` adds to the l1 strength."""
    mhat, qhat, Vhat = 0.8, 0.6, 1.3
    penalty = kernels.penalties.Strengths(jnp.asarray(l1 - 0.1), l2).plus_l1(0.1)
    for weights, variances in [([1.0], [1.0]), ([0.7, 0.3], [0.0, 1 / 0.3])]:
        got = penalty.weight_averages(mhat, qhat, Vhat, weights, variances)
        expected = dict(m=0.0, q=0.0, V=0.0, moment=0.0)
        for pi, v in zip(weights, variances):
            s = math.sqrt(mhat**2 * v + qhat)  # b ~ N(0, s^2) given the component

            def average(g):
                return scipy.integrate.quad(lambda b: g(b) * scipy.stats.norm.pdf(b / s) / s, -np.inf, np.inf,
                                            points=None, epsabs=1e-13, epsrel=1e-12)[0]

            w_hat = lambda b: np.sign(b) * max(abs(b) - l1, 0.0) / (Vhat + l2)  # noqa: E731
            # E[w* | b] = mhat v b / s^2 (jointly Gaussian), E[d w_hat / d b] = E[b w_hat] / s^2 (Stein).
            expected["m"] += pi * average(lambda b: mhat * v * b / s**2 * w_hat(b))
            expected["q"] += pi * average(lambda b: w_hat(b) ** 2)
            expected["V"] += pi * average(lambda b: b * w_hat(b)) / s**2
            expected["moment"] += pi * average(lambda b: abs(w_hat(b)))
        for key, value in expected.items():
            assert float(getattr(got, key)) == pytest.approx(value, rel=1e-9, abs=1e-12), key


class _WithoutPhat(hd.Adversarial):
    """The l-infinity model with its margin shift but without the conjugate of ``P`` on the weight
    side: what the fixed point would be if the shift's dependence on the weights were dropped."""

    def attack_conjugate(self, state, slope):
        return jnp.zeros_like(slope)


def test_against_simulation(solved):
    """The fixed point against adversarial training at d = 500 (4 seeds; L-BFGS-B on the robust
    objective in ``w = u - v``, the dual for the hinge). Tolerance: four standard errors plus the
    finite-size bias, 6% of ``m``, ``q``, ``P``, 0.01 in the errors and 0.03 in ``sparsity_hat``
    (seen at d = 500: within 1.8%, 0.006 and 0.008; at d = 300, 3 seeds: within 2.2%, 0.004 and
    0.015). Not fewer seeds: seeds 0 and 1 alone put the logistic loss's clean error 0.0099 above the
    theory, near its allowance (six seeds: 0.004). The held-out robust error (10^4 samples under attack)
    checks the boundary error's budget ``eps_test P / sqrt(q)`` by Monte Carlo. Without ``Phat`` the
    ridge's weight side would keep every weight (``sparsity_hat = 1``, against 0.77) and ``q``
    would be three times too large (12.2 against 3.9): the simulations reject it."""
    loss, penalty, obs, _ = solved
    obs = {key: value[SIM] for key, value in obs.items()}
    theory = hd.Adversarial(attack="linf", loss=loss, penalty=penalty, **AT)
    sim = simulate(theory, d=500, seeds=4)
    tolerances = [("m", 0.06, 0), ("q", 0.06, 0), ("P", 0.06, 0), ("test_error", 0, 0.01),
                  ("robust_error", 0, 0.01), ("sparsity_hat", 0, 0.03)]
    assert_matches_simulation(sim, obs, tolerances)
    assert obs["sparsity_hat"] < 0.9  # the attack's |w| term zeroes weights, whatever the penalty
    if penalty == "ridge":
        dropped = hd.solve(_WithoutPhat(attack="linf", loss=loss, penalty=penalty, **AT)).observables
        assert float(dropped["sparsity_hat"]) == 1.0
        wrong = float(dropped["q"])
        assert abs(sim.mean["q"] - wrong) > 4 * sim.sem["q"] + 0.06 * wrong, (sim.mean["q"], wrong)


def test_gradients_against_finite_differences(solved):
    """d/d eps and d/d lam of ``test_error + 2 robust_error`` by the implicit function theorem,
    against central differences of the vmapped solve (step 1e-5: error ~1e-9)."""
    _, _, obs, grad = solved
    assert_gradients_match_differences(obs, grad, ("eps", "lam"), SIM, SIM + 1, H)


def test_parameter_errors():
    """Unsupported settings fail before anything compiles, naming the parameter."""
    for kwargs, name in [(dict(attack="l3"), "attack"), (dict(attack="l1", penalty="lp"), "penalty"),
                         (dict(attack="linf", eps=-0.1), "eps")]:
        with pytest.raises(hd.ParameterError, match=name):
            hd.Adversarial(**kwargs)
