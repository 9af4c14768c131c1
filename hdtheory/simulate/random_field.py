r"""Exact Bayesian inference at finite ``N`` for the Gaussian-random-field model (:class:`~hdtheory.RandomField`).

**Instance.** ``x*`` of ``N = d`` i.i.d. entries from the prior; ``M = round(alpha N)`` outputs of the
field of covariance ``C(q) = c_0 + c_1 q + c_2 q^2`` (a polynomial of degree at most two),

.. math:: \Phi_\mu(x) = \sqrt{c_0}\, g_\mu + \sqrt{c_1}\, \frac{a_\mu \cdot x}{\sqrt N}
          + \sqrt{c_2}\, \frac{x^\top G_\mu x}{N},

``g_mu``, ``a_mu`` and ``G_mu`` with i.i.d. ``N(0, 1)`` entries (``G_mu`` not symmetrised: its
antisymmetric part does not enter ``x^T G x``), so that ``E Phi_mu(x) Phi_mu(x') = C(x.x'/N)`` exactly,
at every ``N``; ``y_mu = Phi_mu(x*) + sqrt(noise) xi_mu``.

**Inference.** The prior must be discrete (``rademacher``, ``sparse-rademacher`` or ``discrete``): the
``K^N`` states of its ``K`` atoms are enumerated (``K^N <= 2^22``), each weighted by its prior
probability times the likelihood ``prod_mu N(y_mu; Phi_mu(x), noise)``, in blocks of states (one
``lax.map`` step a block), and the seeds one after the other in one compiled program. Measured
exactly per instance:

- ``free_entropy``, ``log Z / N``, ``Z = sum_x P0(x) prod_mu N(y_mu; Phi_mu(x), noise)``, whose mean over
  instances tends to the theory's ``free_entropy``;
- ``mutual_information``, ``(log P(y | x*) - log Z) / N``, whose mean is ``I(x*; y | Phi) / N`` (it
  lacks the fluctuations of the noise's own likelihood, which ``free_entropy`` has);
- ``mmse_matrix``, ``|x* x*^T - <x x^T>|_F^2 / N^2``, the error of the posterior mean of ``x x^T``
  (unaffected by the sign symmetry of an even ``C``);
- ``q``, ``<|x.x*|> / N``, the overlap up to the sign ``x -> -x`` (the posterior mean's overlap with
  the signal once that symmetry is broken; the posterior mean itself is zero for an even ``C`` and a
  symmetric prior), and ``mmse = rho - q``, with ``rho = |x*|^2 / N``.

The mean of ``log Z / N`` has finite-size corrections of order ``1 / N`` (at perfect recovery with an
even ``C``, ``log 2 / N`` from the two states ``+-x*``); ``q`` is biased upwards by the posterior's
fluctuations of ``x.x* / N``, of order ``1 / sqrt(N)`` where the theory's ``q`` is zero.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import ParameterError
from ..models.random_field import RandomField
from . import SimulationResult, check_size, simulate

MAX_STATES = 2**22
"""The most states the enumeration takes."""

BLOCK = 4096
"""States per step of the enumeration."""


def _atoms(theory: RandomField):
    if theory.prior not in ("rademacher", "sparse-rademacher", "discrete"):
        raise ParameterError(
            f"parameter 'prior' must be discrete to enumerate the posterior (rademacher, sparse-rademacher "
            f"or discrete), got prior={theory.prior}"
        )
    values, probabilities = theory.prior_fn.support(2)
    return np.asarray(values, float), np.asarray(probabilities, float)


def _check(theory: RandomField, d: int, atoms) -> None:
    c = np.asarray(theory.coefficients, float)
    if np.any(c[3:] > 0):
        raise ParameterError(
            f"parameter 'coefficients' must be a polynomial of degree <= 2 to be simulated, got {c}"
        )
    if len(atoms) ** d > MAX_STATES:
        raise ParameterError(
            f"parameter 'd' must keep the {len(atoms)}^d states of the prior within {MAX_STATES}, got d={d}"
        )


def _states(values, probabilities, d: int):
    """``(X, log P0(X))``: every state of ``d`` entries, padded to whole blocks (padding weighs zero)."""
    k = len(values)
    count = k**d
    index = np.arange(-(-count // BLOCK) * BLOCK)
    digits = (index[:, None] // k ** np.arange(d)) % k
    X = values[digits]
    with np.errstate(divide="ignore"):
        log_prior = np.sum(np.log(probabilities[digits]), axis=1)
    log_prior = np.where(index < count, log_prior, -np.inf)
    return jnp.asarray(X), jnp.asarray(log_prior)


def draw_field(key, coefficients, d: int, m: int, dtype=float):
    """``(c, g, A, G)``: the coefficients ``(c_0, c_1, c_2)`` and the Gaussian parts of ``m`` outputs of
    the field in dimension ``d`` (module docstring), ``G`` flattened to ``(d^2, m)``."""
    c = jnp.concatenate([jnp.asarray(coefficients, dtype), jnp.zeros(3, dtype)])[:3]
    k_g, k_a, k_G = jax.random.split(key, 3)
    g = jax.random.normal(k_g, (m,), dtype)
    A = jax.random.normal(k_a, (d, m), dtype)
    return c, g, A, jax.random.normal(k_G, (d * d, m), dtype)


def field(params, x):
    """``Phi(x)``, shape ``(rows, m)``, at the rows of ``x`` (shape ``(rows, d)``)."""
    c, g, A, G = params
    d = x.shape[1]
    pairs = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], d * d)
    return jnp.sqrt(c[0]) * g + jnp.sqrt(c[1]) * x @ A / jnp.sqrt(d) + jnp.sqrt(c[2]) * pairs @ G / d


@eqx.filter_jit
def _enumerate(coefficients, noise, X, log_prior, atoms, keys, m: int):
    """The measured observables of each instance (one per key), stacked."""
    d = X.shape[1]
    values, probabilities = atoms
    blocks = (X.reshape(-1, BLOCK, d), log_prior.reshape(-1, BLOCK))

    def instance(key):
        k_x, k_field, k_xi = jax.random.split(key, 3)
        x_star = values[jax.random.categorical(k_x, jnp.log(probabilities), shape=(d,))]
        params = draw_field(k_field, coefficients, d, m, X.dtype)
        xi = jax.random.normal(k_xi, (m,), X.dtype)
        y = field(params, x_star[None])[0] + jnp.sqrt(noise) * xi
        log_likelihood = -jnp.sum(xi**2) / 2 - m * jnp.log(2 * jnp.pi * noise) / 2  # log P(y | x*)

        def log_weight(block):
            x, lp = block
            residual = y - field(params, x)
            return lp - jnp.sum(residual**2, axis=1) / (2 * noise) - m * jnp.log(2 * jnp.pi * noise) / 2

        lw = jax.lax.map(log_weight, blocks).reshape(-1)
        log_z = jax.scipy.special.logsumexp(lw)
        w = jnp.exp(lw - log_z)
        second = X.T @ (w[:, None] * X) / d  # <x x^T> / N
        rho = x_star @ x_star / d
        overlap = w @ jnp.abs(X @ x_star) / d
        return {
            "free_entropy": log_z / d,
            "mutual_information": (log_likelihood - log_z) / d,
            "mmse_matrix": rho**2 - 2 * x_star @ second @ x_star / d + jnp.sum(second**2),
            "q": overlap,
            "mmse": rho - overlap,
        }

    return jax.lax.map(instance, keys)


@simulate.register
def simulate_random_field(theory: RandomField, *, d: int = 14, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.RandomField`: the exact posterior by
    enumeration of the prior's states at ``N = d``; see the module docstring."""
    check_size(d, seeds)
    values, probabilities = _atoms(theory)
    _check(theory, d, values)
    key = jax.random.PRNGKey(0) if key is None else key
    m = max(round(float(theory.alpha) * d), 1)
    X, log_prior = _states(values, probabilities, d)
    atoms = (jnp.asarray(values), jnp.asarray(probabilities))
    out = _enumerate(theory.coefficients, theory.noise, X, log_prior, atoms, jax.random.split(key, seeds), m)
    return SimulationResult.from_stacked(out, d=d, n=m)
