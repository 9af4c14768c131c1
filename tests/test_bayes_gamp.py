"""GAMP at finite d against the state evolution of :class:`hdtheory.BayesGLM`, iteration by iteration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.bayes import _draw, gamp, gamp_errors


@pytest.mark.parametrize(
    "kw",
    [
        dict(prior="rademacher", channel="sign", alpha=1.3),
        # The default run checks GAMP on the perceptron through the same path.
        pytest.param(
            dict(prior="gauss-bernoulli", rho=0.3, channel="linear", noise=0.01, alpha=0.8), marks=pytest.mark.extended
        ),
    ],
    ids=["perceptron", "compressed-sensing"],
)
def test_gamp_follows_state_evolution(kw):
    theory = hd.BayesGLM(**kw, order=48, panel_order=8)
    steps, d = 8, 2000
    errors = np.asarray(gamp_errors(theory, d=d, seeds=3, steps=steps, key=jax.random.PRNGKey(1)))
    predicted = np.asarray(hd.iterate(theory, steps, init=jnp.asarray(0.0))["mmse"])
    # Per seed the error fluctuates by O(1/sqrt(d)) about its limit (0.02 at d = 2000), with an
    # O(1/d) bias; three seeds average it to ~0.013. The iterates move by far more than that.
    np.testing.assert_allclose(errors.mean(axis=0), predicted, atol=3 / np.sqrt(d) * theory.rho)
    assert predicted[0] - predicted[-1] > 10 / np.sqrt(d) * theory.rho


def test_simulate_matches_the_fixed_point():
    theory = hd.BayesGLM(prior="gaussian", channel="probit", noise=0.1, alpha=1.0, order=48, panel_order=8)
    sim = hd.simulate.simulate(theory, d=1000, seeds=3, steps=30)
    sol = hd.solve(theory)
    for key in ("m", "mmse", "gen_error"):
        assert abs(sim.mean[key] - sol.observables[key]) < 4 * sim.sem[key] + 3e-3, key


def test_padded_rows_change_nothing():
    # simulate holds n samples in bucket(n) rows, the extra ones zero and weighted out: GAMP on the
    # padded instance is GAMP on the n samples alone, to rounding (n = 130 in 144 rows).
    theory = hd.BayesGLM(prior="rademacher", channel="sign", alpha=1.3, order=48, panel_order=8)
    X, y, _, weight = _draw(theory, jax.random.PRNGKey(3), 130, 100)
    assert X.shape[0] == 144 and int(weight.sum()) == 130 and not np.any(np.asarray(X[130:]))
    padded = gamp(theory, X, y, 6, weight)
    alone = gamp(theory, X[:130], y[:130], 6)
    assert float(jnp.max(jnp.abs(padded[-1]))) > 0.1
    np.testing.assert_allclose(padded, alone, atol=1e-12)
