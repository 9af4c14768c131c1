"""Adversarial training against lp attacks, ``p`` in ``[2, inf)`` (``hd.Adversarial(attack="lp")``,
ridge penalty; below 2: test_adversarial_lp_small.py; the l1 and elastic-net penalties:
test_adversarial_lp_lasso.py): the l2 model at ``p = 2``, the l-infinity
limit, the fixed point against simulations, derivatives in ``eps``, ``lam`` and ``attack_p`` against
finite differences.

One vmapped solve (a module-scoped fixture) holds every fixed point and gradient the tests read.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate import simulate

from adversarial_checks import assert_gradients_match_differences, assert_matches_simulation, solved_with_gradients

H = 1e-5
"""Step of the central finite differences."""
BASE = dict(alpha=2.0, lam=0.1, noise=0.0)
L2 = BASE | dict(eps=0.3, eps_test=0.3, attack_p=2.0)
"""At ``p = 2`` the lp attack is the l2 one (``P = q``, ``Phat`` the l2 model's norm term)."""
LIMIT = BASE | dict(eps=0.3, eps_test=0.3, attack_p=1e8)
"""Near ``p = inf``: the l-infinity attack, up to ``O(1 / p)``."""
AT = BASE | dict(eps=0.5, eps_test=0.5, attack_p=4.0)
"""The point compared with simulations and of the derivatives (dual exponent ``k = 4 / 3``)."""
FD = ("eps", "lam", "attack_p")


def _points():
    points = [L2, LIMIT, AT]
    for name in FD:
        points += [AT | {name: AT[name] + sign * H} for sign in (-1.0, 1.0)]
    return {k: jnp.array([p[k] for p in points]) for k in AT}


POINTS = _points()


@pytest.fixture(scope="module")
def solved():
    def theory(p):
        return hd.Adversarial(attack="lp", loss="logistic", **p)

    sol, grad = solved_with_gradients(theory, POINTS, ("eps", "lam", "attack_p"))
    assert np.all(np.asarray(sol.converged)), sol.status
    return {k: np.asarray(v) for k, v in sol.observables.items()}, [np.asarray(g) for g in grad]


def test_p2_is_l2_and_large_p_is_linf(solved):
    """``attack_p = 2`` goes through ``P`` and the lp weight side with exponent 2; the l2 model folds
    the norm term into ``Vhat``: the same fixed point to the solver's precision. At ``attack_p = 1e8``
    the l-infinity model's fixed point within 1e-6 (the difference is ``O(1 / p)``)."""
    obs, _ = solved
    l2 = {k: v for k, v in L2.items() if k != "attack_p"}
    both = jax.jit(lambda: (hd.solve(hd.Adversarial(**l2)).observables,
                            hd.solve(hd.Adversarial(attack="linf", **l2)).observables))()
    for i, reference in enumerate(both):
        keys = ("m", "q", "V", "test_error", "robust_error", "train_loss") + (("P", "Phat") if i else ())
        for key in keys:
            tolerance = dict(rtol=1e-9, atol=1e-12) if i == 0 else dict(rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(obs[key][i], reference[key], err_msg=(i, key), **tolerance)
    np.testing.assert_allclose(obs["P"][0], obs["q"][0], rtol=1e-9)


def test_against_simulation(solved):
    """The fixed point at ``attack_p = 4`` against adversarial training at d = 500 (3 seeds; L-BFGS on
    the robust objective with the shift ``eps (|w|_k^k / d)^{1 / k}``, ``k = 4 / 3``, to a relative
    gradient of 1e-5: below that the steep ``|w_i|^{1/3}`` near a weight at 1e-9 stalls it). Tolerance:
    four standard errors plus the finite-size bias, 6% of ``m``, ``q``, ``P`` and 0.01 in the errors
    (seen: within 1.2% and 0.004); the held-out attacked error checks the budget ``eps_test P^{1/k} / sqrt(q)``."""
    obs, _ = solved
    obs = {key: value[2] for key, value in obs.items()}
    sim = simulate(hd.Adversarial(attack="lp", loss="logistic", **AT), d=500, seeds=3)
    tolerances = [("m", 0.06, 0), ("q", 0.06, 0), ("P", 0.06, 0), ("test_error", 0, 0.01),
                  ("robust_error", 0, 0.01)]
    assert_matches_simulation(sim, obs, tolerances)


def test_gradients_against_finite_differences(solved):
    """d/d eps, d/d lam and d/d attack_p of ``test_error + 2 robust_error`` by the implicit function
    theorem, against central differences of the vmapped solve (step 1e-5: error ~1e-9)."""
    obs, grad = solved
    assert_gradients_match_differences(obs, grad, FD, 2, 3, H)


def test_parameter_errors():
    """The lp penalty against an l1 attack (not implemented) and a NaN exponent fail before anything
    compiles, naming the parameter (exponents at or below 1: tests/test_adversarial_lp_small.py)."""
    for kwargs, name in [(dict(attack="l1", penalty="lp"), "penalty"),
                         (dict(attack="lp", attack_p=float("nan")), "attack_p")]:
        with pytest.raises(hd.ParameterError, match=name):
            hd.Adversarial(**kwargs)
