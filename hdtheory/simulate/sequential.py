r"""Sequential feature recovery at finite ``D`` (:class:`~hdtheory.models.sequential.SequentialRecovery`).

**Instance** (at ``D = d``, which the theory's ``dim`` should equal: it sets the cut of the labels'
law). Random signs ``z_i``; the directions ``A_i`` the first ``p`` coordinate axes (the law is
rotation invariant); ``n = round(alpha D)`` inputs ``F ~ N(0, I_D)``; ``y = h2 + sqrt(noise) xi``.

**Measured** (``jax.numpy.linalg.eigh`` of ``C_hat = (1/n) sum y (F F^T - I)``). The outliers are
matched to the directions by sign and rank: the directions with ``lambda_i > 0``, by decreasing
``|lambda_i|``, to the largest eigenvalues in order, those with ``lambda_i < 0`` to the smallest
(the order of the theory's outliers wherever they are separated). Per direction ``(p,)``:
``overlap``, the squared cosine of the matched eigenvector with ``A_i``, and ``eigenvalue``, the
matched eigenvalue's absolute value. ``mse``: the population error of the second layer fitted on the
matched eigenvectors ``u_i`` (exact for Gaussian ``F``: ``E[He2(u_i.F) He2(u_k.F)] = 2 delta_ik`` and
``E[h2 He2(u_i.F)] / sqrt 2 = sum_j lambda_j (A_j.u_i)^2 =: v_i``, so ``1 - sum_i v_i^2``), with the
leakage between directions that the theory neglects. ``bulk_edge``: the largest eigenvalue not
matched to a positive direction.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.sequential import SequentialRecovery
from . import SimulationResult, check_size, simulate

_CHUNK = 8192
"""Samples per block, at most, of the sum ``sum y F F^T`` (the ``n x D`` inputs are never held at once)."""


@eqx.filter_jit
def _instance(theory: SequentialRecovery, key, n: int, D: int):
    dtype = theory._dtype()
    p = theory.p
    sign_key, data_key = jax.random.split(key)
    lam = theory.strengths() * jnp.where(jax.random.bernoulli(sign_key, 0.5, (p,)), 1.0, -1.0)
    blocks = -(-n // _CHUNK)
    chunk = -(-n // blocks)

    def block(carry, b):
        C, total = carry
        x_key, xi_key = jax.random.split(jax.random.fold_in(data_key, b))
        F = jax.random.normal(x_key, (chunk, D), dtype)
        live = (b * chunk + jnp.arange(chunk)) < n
        h2 = (F[:, :p] ** 2 - 1) @ lam / jnp.sqrt(2.0)
        y = h2 + jnp.sqrt(theory.noise) * jax.random.normal(xi_key, (chunk,), dtype)
        y = jnp.where(live, y, 0.0)
        return (C + (F.T * y) @ F, total + jnp.sum(y)), None

    (C, total), _ = jax.lax.scan(block, (jnp.zeros((D, D), dtype), jnp.zeros((), dtype)), jnp.arange(blocks))
    C = (C - total * jnp.eye(D, dtype=dtype)) / n
    values, vectors = jnp.linalg.eigh(C)
    # Rank of each direction among those of its sign, by decreasing |lambda|.
    positive = lam > 0
    rank = jnp.cumsum(positive) - 1
    rank_negative = jnp.cumsum(~positive) - 1
    column = jnp.where(positive, D - 1 - rank, rank_negative)
    u = vectors[:, column]  # (D, p): the matched eigenvectors
    cross = u[:p, :] ** 2  # (A_j.u_i)^2, [j, i]
    v = lam @ cross
    return {
        "overlap": jnp.diagonal(cross),
        "eigenvalue": jnp.abs(values[column]),
        "mse": 1 - jnp.sum(v**2),
        "bulk_edge": values[D - 1 - jnp.sum(positive)],
    }


@simulate.register
def simulate_sequential(
    theory: SequentialRecovery, *, d: int = 500, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.sequential.SequentialRecovery`
    (``d`` is the input dimension ``D``); see the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_instance(theory, seed_key, n, d) for seed_key in jax.random.split(key, seeds)]
    return SimulationResult.from_samples(samples, d=d, n=n)
