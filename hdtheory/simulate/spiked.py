r"""AMP at finite ``d`` for the rank-one spiked Wigner model (:class:`~hdtheory.Spiked`,
``ensemble="wigner"``).

**Instance.** ``x*`` with i.i.d. entries from the prior (second moment ``rho``);
``Y = sqrt(lam / d) x* x*^T + W``, ``W`` symmetric with ``N(0, 1)`` entries off the diagonal
(``N(0, 2)`` on it, which does not matter at large ``d``).

**Algorithm** (Bayes-optimal AMP: Rangan and Fletcher 2012; Deshpande and Montanari 2014; Lesieur,
Krzakala and Zdeborova 2017, in their normalisation ``Delta = 1 / lam``). The start is the posterior
mean of a side observation of the signal at signal-to-noise ratio ``A_0``,
``x_0 = f_a(A_0 x* + sqrt(A_0) z, A_0)`` (independent of ``W``; ``A_0 -> 0`` is the uninformed
start), and each iteration

.. math::
    B_t = \sqrt{\lambda / d}\, Y \hat x_t - \lambda\, \overline{v_t}\, \hat x_{t-1}, \quad
    A_t = \lambda |\hat x_t|^2 / d, \quad \hat x_{t+1} = f_a(B_t, A_t), \quad v_{t+1} = f_v(B_t, A_t),

with the prior's posterior mean and variance ``f_a``, ``f_v`` (:mod:`hdtheory.kernels.priors`), bars
averages over the entries and ``x_{-1} = 0``. ``B_t`` is then distributed as the scalar channel
``A x* + sqrt(A) z`` with ``A = lam q_t``, and state evolution predicts
``|x_t - x*|^2 / d -> rho - q_t``, ``q_0 = prior.overlap(A_0)``, ``q_{t+1} = theory.update(q_t)``:
:func:`hdtheory.iterate` from the state ``q_0``.

:func:`amp_errors` returns the squared error after every iteration; :func:`simulate` the observables
of the last iterate: ``q = x*.x_hat / d``, ``mmse = |x_hat - x*|^2 / d`` and
``mmse_matrix = |x_hat x_hat^T - x* x*^T|_F^2 / d^2``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.spiked import Spiked
from . import SimulationResult, check_size, simulate


def _check(theory: Spiked, d: int, seeds: int):
    if theory.ensemble != "wigner":
        raise NotImplementedError("AMP is simulated for the spiked Wigner ensemble only")
    check_size(d, seeds)


def _draw(theory: Spiked, key, d: int, snr0):
    x_key, w_key, z_key = jax.random.split(key, 3)
    prior = theory._priors()[0]
    x_star = prior.sample(x_key, (d,))
    G = jax.random.normal(w_key, (d, d))
    Y = jnp.sqrt(theory.snr / d) * jnp.outer(x_star, x_star) + (G + G.T) / jnp.sqrt(2.0)
    side = snr0 * x_star + jnp.sqrt(snr0) * jax.random.normal(z_key, (d,))
    return Y, x_star, prior.mean(side, snr0), prior.variance(side, snr0)


@eqx.filter_jit
def amp(theory: Spiked, Y, x0, v0, steps: int):
    """The AMP iterates ``x_t``, ``t = 0..steps`` (from ``x0``, ``v0``), stacked on axis 0."""
    d = Y.shape[0]
    prior, lam = theory._priors()[0], theory.snr

    def step(carry, _):
        x, v, x_old = carry
        B = jnp.sqrt(lam / d) * (Y @ x) - lam * jnp.mean(v) * x_old
        A = lam * (x @ x) / d
        return (prior.mean(B, A), prior.variance(B, A), x), prior.mean(B, A)

    _, xs = jax.lax.scan(step, (x0, v0, jnp.zeros_like(x0)), None, length=steps)
    return jnp.concatenate([x0[None], xs])


def amp_errors(theory: Spiked, *, d: int = 2000, seeds: int = 4, steps: int = 10, snr0=0.1, key=None):
    """``|x_t - x*|^2 / d`` for ``t = 0..steps`` over ``seeds`` instances: shape ``(seeds, steps + 1)``;
    state evolution predicts ``hd.iterate(theory, steps, init=prior.overlap(snr0))["mmse"]``."""
    _check(theory, d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    errors = []
    for seed_key in jax.random.split(key, seeds):
        Y, x_star, x0, v0 = _draw(theory, seed_key, d, snr0)
        errors.append(jnp.mean((amp(theory, Y, x0, v0, steps) - x_star) ** 2, axis=1))
    return jnp.stack(errors)


@simulate.register
def simulate_spiked(
    theory: Spiked, *, d: int = 1000, seeds: int = 4, key=None, steps: int = 50, snr0=1e-3
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.Spiked` (Wigner): AMP run for
    ``steps`` iterations from a side observation at SNR ``snr0``; see the module docstring."""
    _check(theory, d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    samples = []
    for seed_key in jax.random.split(key, seeds):
        Y, x_star, x0, v0 = _draw(theory, seed_key, d, snr0)
        x = amp(theory, Y, x0, v0, steps)[-1]
        matrix = ((x @ x) ** 2 - 2 * (x @ x_star) ** 2 + (x_star @ x_star) ** 2) / d**2
        samples.append({"q": x_star @ x / d, "mmse": jnp.mean((x - x_star) ** 2), "mmse_matrix": matrix})
    return SimulationResult.from_samples(samples, d=d, n=d)
