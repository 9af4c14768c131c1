"""Adversarial training against lp attacks with the l1 and elastic-net penalties
(``hd.Adversarial(attack="lp", penalty="elastic-net")``, ``l1_ratio = 1`` the LASSO): the weight side,
the lp prox of the soft threshold, against SciPy; the l2 model at ``attack_p = 2`` and the l-infinity
one as ``attack_p -> inf``; the fixed point against simulations; derivatives in ``eps``, ``lam`` and
``attack_p`` against finite differences.

One vmapped solve (a module-scoped fixture) holds every fixed point and gradient the tests read.
"""

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
AT = dict(alpha=2.0, lam=0.1, noise=0.0, eps=0.5, eps_test=0.5, attack_p=4.0, l1_ratio=1.0)
"""The LASSO at ``attack_p = 4`` (``k = 4 / 3``): compared with simulations, the derivatives' point."""
FD = ("eps", "lam", "attack_p")


def _points():
    points = [AT]
    for name in FD:
        points += [AT | {name: AT[name] + sign * H} for sign in (-1.0, 1.0)]
    return {k: jnp.array([p[k] for p in points]) for k in AT}


def _theory(p, **kwargs):
    return hd.Adversarial(loss="logistic", **(dict(attack="lp", penalty="elastic-net") | kwargs | p))


@pytest.fixture(scope="module")
def solved():
    sol, grad = solved_with_gradients(_theory, _points(), FD)
    assert np.all(np.asarray(sol.converged)), sol.status
    return {k: np.asarray(v) for k, v in sol.observables.items()}, [np.asarray(g) for g in grad]


def _prox(x, l1, c, t, k):
    """``argmin_w c w^2 / 2 - x w + l1 |w| + (t / k) |w|^k`` by bracketing the root of
    ``c u + t u^{k - 1} = |x| - l1``."""
    a = abs(x) - l1
    if a <= 0:
        return 0.0
    return np.sign(x) * scipy.optimize.brentq(lambda u: c * u + t * u ** (k - 1) - a, 0.0, a / c, xtol=1e-15,
                                              rtol=1e-15)


@pytest.mark.parametrize("k", [4 / 3, 3.0])
def test_weight_averages_against_quad(k):
    """The weight side ``w_hat = lp_prox(soft(b, l1) / c, Phat / c, k)``, ``c = Vhat + l2``, on panels with
    edges at the threshold, against SciPy's quad of the prox found by bracketing (Gaussian prior):
    ``m``, ``q``, ``V`` (by Stein ``E[b w] / s^2``), ``E|w|^k`` to 1e-8 and ``P(|b| > l1)``."""
    mhat, qhat, Vhat, l1, l2, Phat, rho = 1.3, 0.8, 1.1, 0.3, 0.05, 0.4, 1.0
    out = kernels.LP(Phat, k, 40, l2=l2, l1=l1).weight_averages(mhat, qhat, Vhat, [1.0], [rho])
    s = np.sqrt(mhat**2 * rho + qhat)

    def w(b):
        return _prox(b, l1, Vhat + l2, Phat, k)

    def mean(f):
        return sum(scipy.integrate.quad(lambda b: f(b) * scipy.stats.norm.pdf(b, scale=s), lo, hi,
                                        limit=400, epsabs=1e-13, epsrel=1e-12)[0]
                   for lo, hi in ((-12 * s, -l1), (l1, 12 * s)))

    stein = mean(lambda b: b * w(b)) / s**2
    expected = dict(m=mhat * rho * stein, q=mean(lambda b: w(b) ** 2), V=stein,
                    moment=mean(lambda b: abs(w(b)) ** k), nonzero=2 * scipy.stats.norm.sf(l1 / s))
    for key, value in expected.items():
        assert float(getattr(out, key)) == pytest.approx(value, rel=1e-8, abs=1e-12), key


@pytest.mark.parametrize("prior", ["gaussian", "gauss-bernoulli"])
def test_p2_is_l2_and_large_p_is_linf(prior):
    """The weight side of the elastic net ``l1 |w| + (l2 / 2) w^2`` plus the attack's ``(Phat / k) |w|^k``
    on panels: at ``k = 2`` (``attack_p = 2``) the elastic net with the ridge ``l2 + Phat`` (the l2
    attack's norm term, which the l2 model folds into ``Vhat``) in closed form, to 1e-9, ``P(w != 0)``
    included, and ``E|w|^2 = q``; at ``k = 1 + 1e-8`` (``attack_p -> inf``) the elastic net with the l1
    strength ``l1 + Phat`` (the l-infinity attack's), ``E|w|`` included, within 1e-6 (``O(k - 1)``).
    Both priors of the teacher's components. The rest of the fixed point is the ridge model's, whose
    reductions are test_adversarial_lp.py's."""
    mhat, qhat, Vhat, l1, l2, Phat = 1.3, 0.8, 1.1, 0.3, 0.05, 0.4
    erm = hd.ERM(prior=prior, sparsity=0.2, rho=1.0)
    lp = [erm.weight_averages(mhat, qhat, Vhat, kernels.LP(Phat, k, 40, l2=l2, l1=l1)) for k in (2.0, 1 + 1e-8)]
    net = [erm.weight_averages(mhat, qhat, Vhat, kernels.penalties.Strengths(a, b))
           for a, b in ((l1, l2 + Phat), (l1 + Phat, l2))]
    for key in ("m", "q", "V", "nonzero"):
        assert float(getattr(lp[0], key)) == pytest.approx(float(getattr(net[0], key)), rel=1e-9), key
    assert float(lp[0].moment) == pytest.approx(float(lp[0].q), rel=1e-9)
    for key in ("m", "q", "V", "moment"):
        assert float(getattr(lp[1], key)) == pytest.approx(float(getattr(net[1], key)), rel=1e-6), key


def test_against_simulation(solved):
    """The LASSO at ``attack_p = 4`` against adversarial training at d = 500 (2 seeds; L-BFGS-B in
    ``w = u - v`` on the robust objective with the shift ``eps (|w|_k^k / d)^{1 / k}``, ``k = 4 / 3``).
    Tolerance: four standard errors plus a finite-size bias of 3% of ``m``, ``q``, ``P``, 0.01 in the
    errors and 0.02 in the fraction of non-zero weights (seen at d = 500: within 4.2% (one standard
    error), 0.007 and 0.005; at d = 400, 3 seeds: 2.1%, 0.004 and 0.005); the held-out attacked error
    checks the budget ``eps_test P^{1/k} / sqrt(q)``."""
    obs, _ = solved
    obs = {key: value[0] for key, value in obs.items()}
    sim = simulate(_theory(AT, penalty="l1"), d=500, seeds=2)
    tolerances = [("m", 0.03, 0), ("q", 0.03, 0), ("P", 0.03, 0), ("test_error", 0, 0.01),
                  ("robust_error", 0, 0.01), ("sparsity_hat", 0, 0.02)]
    assert_matches_simulation(sim, obs, tolerances)


def test_gradients_against_finite_differences(solved):
    """d/d eps, d/d lam and d/d attack_p of ``test_error + 2 robust_error`` by the implicit function
    theorem, against central differences of the vmapped solve (step 1e-5: error ~1e-9)."""
    obs, grad = solved
    assert_gradients_match_differences(obs, grad, FD, 0, 1, H)
