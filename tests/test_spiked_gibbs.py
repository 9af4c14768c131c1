"""The Gibbs error of the spiked models (the errors of a posterior sample): the heat-bath sampler of
``hdtheory.simulate.spiked.gibbs_samples`` against the exact posterior of a small instance, then its
samples at finite ``d`` against ``gibbs_error = 2 (rho - q)`` and ``gibbs_error_matrix = 2 (rho^2 - q^2)``;
the Gaussian prior's closed form, the Wishart normalisation, and the derivative in ``snr``."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import _draw, _heat_bath, gibbs_samples

THREE_ATOMS = dict(prior="discrete", values=(-1.0, 0.0, 2.0), probabilities=(0.5, 0.3, 0.2))
"""A prior of non-zero mean (-0.1) and second moment 1.3, whose atoms' squares differ."""


def test_sampler_against_enumeration():
    """The three-atom prior at ``d = 7``, ``snr = 2``: the chain's averages of ``x.x* / d``, ``|x|^2 / d``
    and of each site over 20000 sweeps (from ``x*``) against the posterior enumerated over its 3^7
    configurations with the likelihood written out here (``W`` of variance 1 off the diagonal, 2 on it),
    within 5 standard errors of batch means (20 batches)."""
    theory, d = hd.Spiked(snr=2.0, **THREE_ATOMS), 7
    Y, (x_star,), _, _ = _draw(theory, jax.random.PRNGKey(3), d, d, jnp.zeros(()))
    Y, x_star = np.asarray(Y), np.asarray(x_star)
    atoms, p = np.asarray(THREE_ATOMS["values"]), np.asarray(THREE_ATOMS["probabilities"])
    X = np.asarray(list(itertools.product(atoms, repeat=d)))
    log_prior = np.log(p)[np.searchsorted(atoms, X)].sum(1)
    c, upper = np.sqrt(2.0 / d), np.triu_indices(d, 1)
    outer = X[:, :, None] * X[:, None, :]
    log_likelihood = -0.5 * np.sum((Y[upper] - c * outer[:, upper[0], upper[1]]) ** 2, 1)
    log_likelihood -= 0.25 * np.sum((np.diagonal(Y) - c * X**2) ** 2, 1)
    weights = np.exp(log_prior + log_likelihood - np.max(log_prior + log_likelihood))
    weights /= weights.sum()
    statistics = lambda x: np.concatenate([(x @ x_star / d)[:, None], np.sum(x**2, 1)[:, None] / d, x], 1)
    exact = weights @ statistics(X)
    states = eqx.filter_jit(_heat_bath)(theory, jnp.asarray(Y), jnp.asarray(x_star), jax.random.PRNGKey(1), 20000)
    batches = statistics(np.asarray(states)).reshape(20, -1, d + 2).mean(1)
    mean, sem = batches.mean(0), batches.std(0, ddof=1) / np.sqrt(20)
    assert np.all(sem < 0.02)
    np.testing.assert_array_less(np.abs(mean - exact), 5 * sem)


@pytest.mark.parametrize(
    "prior, snr, seeds",
    [(dict(prior="rademacher"), 3.0, 12), (THREE_ATOMS, 2.0, 24)],
    ids=["rademacher", "three-atoms"],
)
def test_quiet_planting(prior, snr, seeds):
    """Posterior samples at ``d = 500`` (40 sweeps of burn-in, 40 measured, from the spike) against the
    Bayes-optimal fixed point: ``q``, ``gibbs_error`` and ``gibbs_error_matrix`` within 4 standard errors
    over the seeds plus ``2 / d`` (the finite-size bias). The error measured is not twice the mean's: the
    sample has moved away from the spike (its error is above 1.5 times the MMSE)."""
    theory = hd.Spiked(snr=snr, **prior)
    solution = hd.solve(theory, "informed")
    assert solution.converged
    result = gibbs_samples(theory, d=500, seeds=seeds, sweeps=40, burn_in=40, key=jax.random.PRNGKey(1))
    for name in ("q", "gibbs_error", "gibbs_error_matrix"):
        expected = float(solution.observables[name])
        assert abs(result.mean[name] - expected) < 4 * result.sem[name] + 2 / 500, (name, result.mean[name], expected)
    assert result.mean["gibbs_error"] > 1.5 * float(solution.observables["mmse"])


def test_gaussian_closed_form_and_wishart():
    """Gaussian prior (Wigner): ``q = 1 - 1 / lam``, so that ``gibbs_error = 2 / lam`` and
    ``gibbs_error_matrix = 2 (1 - (1 - 1 / lam)^2)``; Wishart: ``2 (rho_u - q_u)``, ``2 (rho - q_v)`` and
    ``2 (rho_u rho - q_u q_v)`` from its overlaps, ``rho_u = 1.5``, ``rho = 0.8``."""
    observables = hd.solve(hd.Spiked(snr=2.5), "informed").observables
    np.testing.assert_allclose(observables["gibbs_error"], 2 / 2.5, rtol=1e-9)
    np.testing.assert_allclose(observables["gibbs_error_matrix"], 2 * (1 - (1 - 1 / 2.5) ** 2), rtol=1e-9)
    wishart = hd.solve(hd.Spiked(snr=2.0, alpha=2.0, rho=0.8, rho_u=1.5, ensemble="wishart"), "informed")
    q_u, q_v = wishart.observables["q_u"], wishart.observables["q_v"]
    assert wishart.converged and q_u > 0.1 and q_v > 0.1
    expected = {"gibbs_error_u": 2 * (1.5 - q_u), "gibbs_error_v": 2 * (0.8 - q_v), "gibbs_error_matrix": 2 * (1.2 - q_u * q_v)}
    for name, value in expected.items():
        np.testing.assert_allclose(wishart.observables[name], value, rtol=1e-12)


@eqx.filter_jit
def _solved(snrs):
    def one(snr):
        solution = hd.solve(hd.Spiked(snr=snr, prior="rademacher"), "informed")
        return jnp.stack([solution.observables["gibbs_error"], solution.observables["gibbs_error_matrix"]])

    values = jax.vmap(one)(snrs)
    return values, jax.vmap(jax.jacfwd(one))(snrs)


def test_gradient_in_snr():
    """Rademacher prior at ``snr = 2``: the derivatives of both Gibbs errors in ``snr`` (implicit
    differentiation through the solve) against central differences (step 1e-4)."""
    h = 1e-4
    values, grads = _solved(jnp.asarray([2.0 - h, 2.0, 2.0 + h]))
    assert np.all(grads[1] < -0.1)
    np.testing.assert_allclose(grads[1], (values[2] - values[0]) / (2 * h), rtol=1e-6)


def test_bad_input():
    """The sampler needs the Wigner ensemble, a discrete prior and at least one sweep, and says so."""
    with pytest.raises(NotImplementedError, match="discrete prior"):
        gibbs_samples(hd.Spiked(prior="gaussian"), d=10)
    with pytest.raises(NotImplementedError, match="ensemble='wishart'"):
        gibbs_samples(hd.Spiked(prior="rademacher", ensemble="wishart"), d=10)
    with pytest.raises(hd.ParameterError, match="'sweeps'"):
        gibbs_samples(hd.Spiked(prior="rademacher"), d=10, sweeps=0)
