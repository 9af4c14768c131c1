r"""The spectral method at finite ``d`` (:class:`~hdtheory.models.spectral.Spectral`).

**Instance.** ``w* ~ N(0, rho I_d)``; ``n = round(alpha d)`` inputs ``x_i ~ N(0, I_d)``; labels drawn by
``theory.channel_fn.sample`` from ``z_i = w*.x_i / sqrt(d)``; the preprocessed labels
``theory.transform(y_i)``.

**Measured** (``jax.numpy.linalg.eigh`` of ``D = (1/n) sum_i T(y_i) x_i x_i^T``): ``overlap``, the squared
cosine ``(v.w*)^2 / |w*|^2`` of the top eigenvector ``v``; ``eigenvalue``, the top eigenvalue; and
``bulk_edge``, the second eigenvalue (the edge of the bulk, from below, at finite ``d``; above the
threshold the first is the outlier). The finite-size fluctuations of the overlap are of order
``d^{-1/2}`` away from the threshold and of order ``d^{-1/3}`` at it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.spectral import Spectral
from . import SimulationResult, check_size, simulate


@eqx.filter_jit
def _instance(theory: Spectral, key, n: int, d: int):
    """``(overlap, eigenvalue, second eigenvalue)`` of one instance."""
    w_key, x_key, y_key = jax.random.split(key, 3)
    dtype = jnp.result_type(theory.alpha, float)
    w_star = jnp.sqrt(theory.rho) * jax.random.normal(w_key, (d,), dtype)
    X = jax.random.normal(x_key, (n, d), dtype)
    t = theory.transform(theory.channel_fn.sample(y_key, X @ w_star / jnp.sqrt(d)))
    values, vectors = jnp.linalg.eigh((X.T * t) @ X / n)
    cosine = vectors[:, -1] @ w_star / jnp.linalg.norm(w_star)
    return cosine**2, values[-1], values[-2]


@simulate.register
def simulate_spectral(theory: Spectral, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.spectral.Spectral`; see the module
    docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_instance(theory, seed_key, n, d) for seed_key in jax.random.split(key, seeds)]
    names = ("overlap", "eigenvalue", "bulk_edge")
    return SimulationResult.from_samples([dict(zip(names, s)) for s in samples], d=d, n=n)
