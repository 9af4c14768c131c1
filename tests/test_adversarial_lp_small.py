"""Adversarial training against lp attacks with ``p`` in ``(1, 2)`` (``hd.Adversarial(attack="lp")``,
ridge penalty; the dual exponent ``k = p / (p - 1)`` above 2): the lp prox and its weight averages
for ``k > 2`` against SciPy, continuity across ``p = 2``, the ``p -> 1`` limit (the weights clipped
at ``max |w_i|``), the fixed point against simulations, derivatives in ``eps`` and ``attack_p``
against finite differences, exponents at or below 1 refused.

One vmapped solve (a module-scoped fixture) holds every fixed point and gradient the tests read.
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

from adversarial_checks import assert_gradients_match_differences, assert_matches_simulation, combined

H = 1e-5
"""Step of the central finite differences."""
BASE = dict(alpha=2.0, lam=0.1, noise=0.0)
AT = BASE | dict(eps=0.5, eps_test=0.5, attack_p=1.5)
"""The point compared with simulations and of the derivatives (``k = 3``)."""
DELTA = 1e-4
"""Offset on either side of ``p = 2`` for the continuity of the fixed point and its derivative."""
NEAR_ONE = (1.05, 1.02)
"""Exponents near 1 (``k = 21, 51``) for the clipping limit."""
FD = ("eps", "attack_p")


def _points():
    points = [AT | {"attack_p": p} for p in (2.0 - DELTA, 2.0, 2.0 + DELTA, *NEAR_ONE)] + [AT]
    for name in FD:
        points += [AT | {name: AT[name] + sign * H} for sign in (-1.0, 1.0)]
    return {k: jnp.array([p[k] for p in points]) for k in AT}


POINTS = _points()
AT_INDEX = 5


def _theory(p):
    return hd.Adversarial(attack="lp", loss="logistic", **p)


@pytest.fixture(scope="module")
def solved():
    def value(eps, attack_p, p):
        theory = _theory(p | dict(eps=eps, attack_p=attack_p))
        sol = hd.solve(theory)
        mhat, qhat, Vhat, _, slope = theory._channel_averages(sol.state)
        conjugates = dict(mhat=mhat, qhat=qhat, Vhat=Vhat, slope=slope)
        return combined(sol.observables), (sol, conjugates)

    def at(p):
        (_, aux), grad = jax.value_and_grad(value, argnums=(0, 1), has_aux=True)(p["eps"], p["attack_p"], p)
        return aux, grad

    (sol, conjugates), grad = jax.jit(jax.vmap(at))(POINTS)
    assert np.all(np.asarray(sol.converged)), sol.status
    obs = {k: np.asarray(v) for k, v in sol.observables.items()}
    return obs, {k: np.asarray(v) for k, v in conjugates.items()}, [np.asarray(g) for g in grad]


def _prox(x, t, k):
    """``argmin_w (w - x)^2 / 2 + (t / k) |w|^k`` by bracketing the root of ``u + t u^{k-1} = |x|``."""
    a = abs(x)
    if a == 0:
        return 0.0
    return np.sign(x) * scipy.optimize.brentq(lambda u: u + t * u ** (k - 1) - a, 0.0, a, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("k", [3.0, 51.0])
def test_weight_averages_against_quad(k):
    """The weight side for ``k > 2`` (the lp prox with the ridge, Gauss-Legendre panels with an edge at
    the prox's turn) against SciPy's quad of the prox found by bracketing, Gaussian prior: ``m``,
    ``q``, ``V`` (``E[dw/db]``, by Stein ``E[b w] / s^2``) and ``E|w|^k`` to 1e-8."""
    mhat, qhat, Vhat, lam, Phat, rho = 1.3, 0.8, 1.1, 0.1, 0.4, 1.0
    out = kernels.LP(Phat, k, 40, l2=lam).weight_averages(mhat, qhat, Vhat, [1.0], [rho])
    s = np.sqrt(mhat**2 * rho + qhat)
    c = Vhat + lam

    def w(b):
        return _prox(b / c, Phat / c, k)

    def mean(f):
        return scipy.integrate.quad(lambda b: f(b) * scipy.stats.norm.pdf(b, scale=s), -12 * s, 12 * s,
                                    limit=400, epsabs=1e-13, epsrel=1e-12)[0]

    stein = mean(lambda b: b * w(b)) / s**2
    expected = dict(m=mhat * rho * stein, q=mean(lambda b: w(b) ** 2), V=stein, moment=mean(lambda b: abs(w(b)) ** k))
    for key, value in expected.items():
        assert float(getattr(out, key)) == pytest.approx(value, rel=1e-8, abs=1e-12), key


@pytest.mark.parametrize("k", [3.0, 21.0])
def test_prox_derivatives_against_finite_differences(k):
    """The implicit-function derivatives of the lp prox in ``x``, ``t`` and ``p`` for ``p > 2`` (the
    form without the ``u^{2 - p}`` lift), against central differences (step 1e-6, error ~1e-10), and
    its value against bracketing; at ``x = 0`` the derivative in ``x`` is 1 (``w ~ x`` there)."""
    x, t = 1.7, 0.3
    grad = jax.grad(kernels.penalties.lp_prox, argnums=(0, 1, 2))(x, t, k)
    assert float(kernels.penalties.lp_prox(x, t, k)) == pytest.approx(_prox(x, t, k), rel=1e-13)
    h = 1e-6
    args = [x, t, k]
    for i in range(3):
        hi, lo = list(args), list(args)
        hi[i] += h
        lo[i] -= h
        fd = (float(kernels.penalties.lp_prox(*hi)) - float(kernels.penalties.lp_prox(*lo))) / (2 * h)
        assert float(grad[i]) == pytest.approx(fd, rel=1e-6, abs=1e-9), i
    assert float(jax.grad(kernels.penalties.lp_prox)(0.0, t, k)) == 1.0


def test_continuous_across_p2(solved):
    """Below and above ``p = 2`` (dual exponents above and below 2) the fixed point and its derivative
    in ``attack_p`` are continuous: the values at ``2 -+ 1e-4`` within ``2e-4 |d/dp|`` of the value at 2
    (first order), the autodiff derivatives on either side within 1e-3 of each other relative (their
    difference ``O(1e-4)`` times the second derivative), and the one-sided finite differences within
    1% of the autodiff derivative at 2."""
    obs, _, grad = solved
    f = combined(obs)
    d_p = grad[1]
    for i in (0, 2):
        assert abs(f[i] - f[1]) <= 2 * DELTA * abs(d_p[1])
        assert d_p[i] == pytest.approx(d_p[1], rel=1e-3)
    for slope in ((f[1] - f[0]) / DELTA, (f[2] - f[1]) / DELTA):
        assert slope == pytest.approx(d_p[1], rel=1e-2)
    np.testing.assert_allclose(obs["P"][1], obs["q"][1], rtol=1e-9)


def test_limit_p_to_one_clips_the_weights(solved):
    """As ``p -> 1`` (``k -> inf``) the attack's ``(Phat / k) |w|^k`` becomes the constraint
    ``|w| <= R`` with ``R = lim P^{1/k} = max |w_i|``: at the channel's conjugates of the fixed point,
    ``w_hat = clip(b / (Vhat + lam), R)``, ``b ~ N(0, s^2)``, with ``R`` from the multipliers' mass
    ``E(|b| - (Vhat + lam) R)_+ = eps alpha E|l'|`` (the attack's force ``eps |sum_i l'_i|`` shared
    by the clipped weights), whose ``m = mhat rho V``, ``V = P(|b| < B) / (Vhat + lam)``,
    ``q = E[b^2; |b| < B] / (Vhat + lam)^2 + R^2 P(|b| > B)``, ``B = (Vhat + lam) R``, are closed forms.
    The fixed points at ``k = 21`` and ``51`` approach them at first order: the largest relative gap
    in ``R``, ``m``, ``q``, ``V`` below ``2.5 / k``, and ``k`` times it the same at both within 10%
    (seen: ``1.76 / k`` and ``1.75 / k``, the gap in ``q``)."""
    obs, conj, _ = solved
    Q, phi = scipy.stats.norm.sf, scipy.stats.norm.pdf
    gaps = []
    for i, p in zip((3, 4), NEAR_ONE):
        k = p / (p - 1)
        mhat, qhat, Vhat, slope = (float(conj[key][i]) for key in ("mhat", "qhat", "Vhat", "slope"))
        s = np.sqrt(mhat**2 * BASE.get("rho", 1.0) + qhat)
        c = Vhat + BASE["lam"]

        def mass(R):
            u = c * R / s
            return 2 * (s * phi(u) - c * R * Q(u)) - AT["eps"] * slope

        R = scipy.optimize.brentq(mass, 1e-9, 50 * s / c, xtol=1e-14)
        u = c * R / s
        inside = 1 - 2 * Q(u)
        V = inside / c
        limit = dict(R=R, m=mhat * V, V=V, q=s**2 * (inside - 2 * u * phi(u)) / c**2 + R**2 * 2 * Q(u))
        fixed = dict(R=obs["P"][i] ** (1 / k), m=obs["m"][i], V=obs["V"][i], q=obs["q"][i])
        gap = max(abs(fixed[key] / limit[key] - 1) for key in limit)
        assert gap <= 2.5 / k, (k, fixed, limit)
        gaps.append(gap * k)
    assert gaps[1] == pytest.approx(gaps[0], rel=0.1), gaps


def test_against_simulation(solved):
    """The fixed point at ``attack_p = 1.5`` against adversarial training at d = 500 (3 seeds; L-BFGS on
    the robust objective with the shift ``eps (|w|_3^3 / d)^{1/3}``). Tolerance: four standard errors
    (about 3% of ``m``, 7% of ``q``, 12% of ``P``, 0.008 and 0.007 in the errors) plus a finite-size bias
    of 3% of ``m``, ``q``, ``P`` and 0.01 in the errors (seen: within 1.0% and 0.006); the held-out
    attacked error checks the budget ``eps_test P^{1/k} / sqrt(q)``."""
    obs, _, _ = solved
    obs = {key: value[AT_INDEX] for key, value in obs.items()}
    sim = simulate(_theory(AT), d=500, seeds=3)
    tolerances = [("m", 0.03, 0), ("q", 0.03, 0), ("P", 0.03, 0), ("test_error", 0, 0.01),
                  ("robust_error", 0, 0.01)]
    assert_matches_simulation(sim, obs, tolerances)


def test_gradients_against_finite_differences(solved):
    """d/d eps and d/d attack_p of ``test_error + 2 robust_error`` at ``attack_p = 1.5`` by the implicit
    function theorem, against central differences of the vmapped solve (step 1e-5: error ~1e-9)."""
    obs, _, grad = solved
    assert_gradients_match_differences(obs, grad, FD, AT_INDEX, AT_INDEX + 1, H)


@pytest.mark.parametrize("p", [1.0, 0.5, -2.0])
def test_exponent_at_or_below_one_is_refused(p):
    """``attack_p <= 1`` (the l1 ball, ``k = inf``, is ``attack=l1``; below 1 no norm) fails before
    anything compiles, with one line naming the parameter and its range."""
    with pytest.raises(hd.ParameterError, match=r"attack_p.*\(1, inf\)") as error:
        hd.Adversarial(attack="lp", attack_p=p)
    assert "\n" not in str(error.value)
