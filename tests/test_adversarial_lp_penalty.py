"""Adversarial training with the lp penalty ``(lam / p) |w|_p^p`` against l-infinity and lp attacks
(``hd.Adversarial(penalty="lp")``, the geometries of Vilucchio et al. 2024; the lp attack at
``attack_p = 2`` is the l2 one): the weight sides against SciPy (the lp prox of the soft threshold;
two powers in one prox), at ``p = 1, 2`` and ``k = 2`` against the elastic net's closed forms and the
l2 attack's weight side; the fixed points against simulations; derivatives in ``eps``, ``lam``, ``p``
and ``attack_p`` against finite differences.

One vmapped solve per attack (module-scoped fixtures) holds every fixed point and gradient the tests read.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats

import hdtheory as hd
from hdtheory import kernels
from hdtheory.simulate import simulate

from adversarial_checks import assert_gradients_match_differences, assert_matches_simulation, solved_with_gradients

H = 1e-5
"""Step of the central finite differences."""
AT = dict(alpha=2.0, lam=0.1, noise=0.0, eps=0.5, eps_test=0.5, p=1.5, attack_p=4.0)
"""The point compared with simulations and of the derivatives (``k = 4 / 3`` for the lp attack)."""
L2 = AT | dict(attack_p=2.0)
"""The lp attack at ``attack_p = 2``: the l2 attack."""
FD = {"linf": ("eps", "lam", "p"), "lp": ("eps", "lam", "p", "attack_p")}


def _points(names):
    points = [AT, L2] + [AT | {name: AT[name] + sign * H} for name in names for sign in (-1.0, 1.0)]
    return {k: jnp.array([p[k] for p in points]) for k in AT}


def _theory(attack):
    return lambda p: hd.Adversarial(attack=attack, loss="logistic", penalty="lp", **p)


# The default run checks the l-infinity attack's fixed point against simulations in test_adversarial_linf,
# this weight side (the lp penalty with the attack's l1 term) against quad, and the lp penalty's path here.
@pytest.fixture(scope="module", params=[pytest.param("linf", marks=pytest.mark.extended), "lp"])
def solved(request):
    attack = request.param
    sol, grad = solved_with_gradients(_theory(attack), _points(FD[attack]), FD[attack])
    assert np.all(np.asarray(sol.converged)), sol.status
    obs = {k: np.asarray(v) for k, v in sol.observables.items()}
    return attack, obs, [np.asarray(g) for g in grad]


def _prox(x, l1, c, powers):
    """``argmin_w c w^2 / 2 - x w + l1 |w| + sum_j (t_j / p_j) |w|^{p_j}`` by bracketing."""
    a = abs(x) - l1
    if a <= 0:
        return 0.0
    return np.sign(x) * scipy.optimize.brentq(lambda u: c * u + sum(t * u ** (p - 1) for t, p in powers) - a,
                                              0.0, a / c, xtol=1e-15, rtol=1e-15)


def _expected(l1, c, powers, k, s, mhat, rho):
    """``m``, ``q``, ``V`` (by Stein), ``E|w|^k`` of the prox of :func:`_prox` at ``b ~ N(0, s^2)``, quad."""

    def mean(f):
        return sum(scipy.integrate.quad(lambda b: f(_prox(b, l1, c, powers), b) * scipy.stats.norm.pdf(b, scale=s),
                                        lo, hi, limit=400, epsabs=1e-13, epsrel=1e-12)[0]
                   for lo, hi in ((-12 * s, -l1), (l1, 12 * s)))

    stein = mean(lambda w, b: b * w) / s**2
    return dict(m=mhat * rho * stein, q=mean(lambda w, b: w**2), V=stein, moment=mean(lambda w, b: abs(w) ** k))


MHAT, QHAT, VHAT, LAM, PHAT, RHO = 1.3, 0.8, 1.1, 0.1, 0.4, 1.0
"""Conjugates and strengths of the weight sides' checks."""
S = np.sqrt(MHAT**2 * RHO + QHAT)


@pytest.mark.parametrize("attack", ["linf", "lp"])
def test_weight_side_against_quad(attack):
    """The weight sides with the lp penalty at ``p = 1.5`` against SciPy's quad of the prox found by
    bracketing, to 1e-8: l-infinity, ``(lam / p) |w|^p + Phat |w|`` (:meth:`~hdtheory.kernels.LP.plus_l1`,
    ``P = E|w|``, ``P(|b| > Phat)``); lp at ``k = 4 / 3``, ``(lam / p) |w|^p + (Phat / k) |w|^k`` (two
    powers, ``P = E|w|^k``)."""
    if attack == "linf":
        penalty, l1, powers, k = kernels.LP(LAM, 1.5, 40).plus_l1(PHAT), PHAT, [(LAM, 1.5)], 1.0
    else:
        penalty, l1, powers, k = kernels.LP(PHAT, 4 / 3, 40, lam2=LAM, p2=1.5), 0.0, [(PHAT, 4 / 3), (LAM, 1.5)], 4 / 3
    out = penalty.weight_averages(MHAT, QHAT, VHAT, [1.0], [RHO])
    expected = _expected(l1, VHAT, powers, k, S, MHAT, RHO) | dict(nonzero=2 * scipy.stats.norm.sf(l1 / S))
    for key, value in expected.items():
        assert float(getattr(out, key)) == pytest.approx(value, rel=1e-8, abs=1e-12), key


@pytest.mark.parametrize("prior", ["gaussian", "gauss-bernoulli"])
def test_weight_sides_in_their_limits(prior):
    """At ``p = 2`` the l-infinity weight side of the lp penalty is the ridge's (``Phat |w| + (lam / 2) w^2``),
    at ``p = 1`` the LASSO's (``(lam + Phat) |w|``): the elastic net's closed forms to 1e-9, ``E|w|`` and
    ``P(w != 0)`` included. The lp attack's at ``k = 2`` is the l2 attack's, the lp penalty at the
    precision ``Vhat + Phat`` (the l2 model's norm term), to 1e-9. Both priors of the teacher's components."""
    erm = hd.ERM(prior=prior, sparsity=0.2, rho=1.0)
    for p, strengths in ((2.0, (PHAT, LAM)), (1.0, (LAM + PHAT, 0.0))):
        lp = erm.weight_averages(MHAT, QHAT, VHAT, kernels.LP(LAM, p, 40).plus_l1(PHAT))
        net = erm.weight_averages(MHAT, QHAT, VHAT, kernels.penalties.Strengths(*strengths))
        for key in ("m", "q", "V", "nonzero", "moment"):
            assert float(getattr(lp, key)) == pytest.approx(float(getattr(net, key)), rel=1e-9), (p, key)
    two = erm.weight_averages(MHAT, QHAT, VHAT, kernels.LP(PHAT, 2.0, 40, lam2=LAM, p2=1.5))
    l2 = erm.weight_averages(MHAT, QHAT, VHAT + PHAT, kernels.LP(LAM, 1.5, 40))
    for key in ("m", "q", "V"):
        assert float(getattr(two, key)) == pytest.approx(float(getattr(l2, key)), rel=1e-9), key


@pytest.mark.parametrize("args", [(1.7, 0.3, 1.5, 0.4, 4 / 3), (1.7, 0.3, 1.5, 0.4, 3.0), (-1.1, 0.2, 1.2, 0.5, 2.0)])
def test_two_power_prox(args):
    """The prox of two powers against bracketing to 1e-13, its implicit-function derivatives in ``x``,
    both strengths and both exponents against central differences (step 1e-6, error ~1e-10)."""
    x, t, p, t2, p2 = args
    assert float(kernels.lp_prox(*args)) == pytest.approx(_prox(x, 0.0, 1.0, [(t, p), (t2, p2)]), rel=1e-13)
    grad = jax.grad(kernels.lp_prox, argnums=tuple(range(5)))(*args)
    h = 1e-6
    for i in range(5):
        hi, lo = list(args), list(args)
        hi[i] += h
        lo[i] -= h
        fd = (float(kernels.lp_prox(*hi)) - float(kernels.lp_prox(*lo))) / (2 * h)
        assert float(grad[i]) == pytest.approx(fd, rel=1e-6, abs=1e-9), i


def test_against_simulation(solved):
    """The fixed points at ``p = 1.5`` against adversarial training at d = 500 (2 seeds; L-BFGS-B in
    ``w = u - v`` on the robust objective with the penalty ``(lam / p) |w|_p^p``): l-infinity, lp at
    ``attack_p = 4`` and at ``attack_p = 2`` (the l2 attack). Tolerance: four standard errors plus a
    finite-size bias of 3% of ``m``, ``q``, ``P``, 0.01 in the errors and 0.02 in the fraction of
    non-zero weights (seen at d = 500: within 3.4% (1.8 standard errors), 0.008 and 0.005; at d = 400,
    3 seeds: 2.0%, 0.006 and 0.009; the l-infinity attack zeroes a quarter of the weights, the lp
    penalty none); the held-out attacked error checks the budget."""
    attack, obs, _ = solved
    for i, point in enumerate([AT, L2] if attack == "lp" else [AT]):
        sim = simulate(_theory(attack)(point), d=500, seeds=2)
        tolerances = [("m", 0.03, 0), ("q", 0.03, 0), ("P", 0.03, 0), ("test_error", 0, 0.01),
                      ("robust_error", 0, 0.01), ("sparsity_hat", 0, 0.02)]
        assert_matches_simulation(sim, {key: value[i] for key, value in obs.items()}, tolerances)


def test_gradients_against_finite_differences(solved):
    """Derivatives of ``test_error + 2 robust_error`` in ``eps``, ``lam``, ``p`` (and ``attack_p``) by the
    implicit function theorem, against central differences of the vmapped solve (step 1e-5: error ~1e-9)."""
    attack, obs, grad = solved
    assert_gradients_match_differences(obs, grad, FD[attack], 0, 2, H)


def test_parameter_errors():
    """The lp penalty against an l1 attack (not implemented) and an exponent outside ``[1, 2]`` fail
    before anything compiles, with one line naming the parameter."""
    for kwargs, name in [(dict(attack="l1"), "penalty"), (dict(p=2.5), "'p'")]:
        with pytest.raises(hd.ParameterError, match=name) as error:
            hd.Adversarial(penalty="lp", **kwargs)
        assert "\n" not in str(error.value)
