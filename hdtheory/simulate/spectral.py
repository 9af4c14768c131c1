r"""The spectral method at finite ``d`` (:class:`~hdtheory.models.spectral.Spectral`).

**Instance.** ``w* ~ N(0, rho I_d)``; ``n = round(alpha d)`` inputs ``x_i ~ N(0, I_d)``; labels drawn by
``theory.channel_fn.sample`` from ``z_i = w*.x_i / sqrt(d)``; the preprocessed labels
``theory.transform(y_i)``.

**Measured** (``jax.numpy.linalg.eigh`` of ``D = (1/n) sum_i T(y_i) x_i x_i^T``): ``overlap``, the squared
cosine ``(v.w*)^2 / |w*|^2`` of the top eigenvector ``v``; ``eigenvalue``, the top eigenvalue; and
``bulk_edge``, the second eigenvalue (the edge of the bulk, from below, at finite ``d``; above the
threshold the first is the outlier). The finite-size fluctuations of the overlap are of order
``d^{-1/2}`` away from the threshold and of order ``d^{-1/3}`` at it.

:func:`simulate_multi_index_spectral` does the same for the ``k`` matrices ``D_j`` of the optimal
spectral estimators of a decomposable multi-index link
(:mod:`hdtheory.models.multi_index_spectral`), :func:`simulate_coupled_spectral` for the ``dk x dk``
matrix of any link, and :func:`simulate_linearised_gamp` for the asymmetric method (GAMP linearised
about its uninformed point).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._batch import map_instances
from ..kernels.multivariate import small_inv
from ..models.multi_index import MultiIndex
from ..models.multi_index_spectral import _INNER, decomposition
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


def _draw(theory: MultiIndex, key, n: int, d: int):
    """One instance of a multi-index model: the teacher ``W*`` (``k x d``, i.i.d. ``N(0, 1)``), the
    inputs ``X`` (``n x d``) and the posterior second moments ``E[z z^T | y_i]`` (``n x k x k``) of the
    fields given each label, in batches of 256 (the posterior's rule at k = 3 is too large to hold for
    every sample at once; on the theory's own rule where it asks for more nodes)."""
    w_key, x_key, y_key = jax.random.split(key, 3)
    dtype, k = theory._dtype(), theory.k
    W = jax.random.normal(w_key, (k, d), dtype)
    X = jax.random.normal(x_key, (n, d), dtype)
    y = theory.sample_labels(y_key, X @ W.T / jnp.sqrt(d))
    zero, eye = jnp.zeros(k, dtype), jnp.eye(k, dtype=dtype)
    order = max(theory.inner_order, _INNER)
    _, _, seconds = jax.lax.map(lambda y: theory.posterior(y, zero, eye, order), y, batch_size=256)
    return W, X, seconds


@eqx.filter_jit
def _multi_index_instance(theory: MultiIndex, basis, key, n: int, d: int):
    """``(squared cosines (k, k), top eigenvalues (k,))`` of one instance of the estimators of
    :mod:`hdtheory.models.multi_index_spectral`."""
    W, X, seconds = _draw(theory, key, n, d)
    s = jnp.einsum("ai,nab,bi->ni", basis, seconds, basis)
    directions = basis.T @ W  # row j: W* E e_j

    def top(t):
        values, vectors = jnp.linalg.eigh((X.T * t) @ X / n)
        return vectors[:, -1], values[-1]

    v, values = map_instances(top, (1 - 1 / s).T)  # k eigendecompositions: not batched on the CPU
    cosines = (v @ directions.T) ** 2 / jnp.sum(directions**2, axis=1)
    return cosines, values


def simulate_multi_index_spectral(
    theory: MultiIndex, basis=None, *, d: int = 500, seeds: int = 4, key=None
) -> SimulationResult:
    """The optimal spectral estimators of a decomposable multi-index link at finite ``d``
    (:func:`~hdtheory.models.multi_index_spectral.multi_index_spectral`): a teacher ``W*`` with i.i.d.
    ``N(0, 1)`` entries, ``n = round(alpha d)`` inputs, labels by ``theory.sample_labels``, and for each
    direction ``j`` of ``basis`` (columns; ``None``: those of ``decomposition(theory)``) the top
    eigenvector ``v_j`` of ``D_j = (1/n) sum_i (1 - 1 / s_j(y_i)) x_i x_i^T``, ``s_j(y) = E[u_j^2 | y]``.
    Measured: ``overlaps[j, l]``, the squared cosine of ``v_j`` with the teacher's rotated direction
    ``W* E e_l``, and ``eigenvalue[j]``, the top eigenvalue of ``D_j``."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    basis = decomposition(theory)[2] if basis is None else jnp.asarray(basis, theory._dtype())
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_multi_index_instance(theory, basis, seed_key, n, d) for seed_key in jax.random.split(key, seeds)]
    return SimulationResult.from_samples(
        [{"overlaps": c, "eigenvalue": e} for c, e in samples], d=d, n=n
    )


@eqx.filter_jit
def _coupled_instance(theory: MultiIndex, key, n: int, d: int, outliers: int):
    """``(squared cosines (outliers, k, k), eigenvalues (outliers,))`` of the top eigenvectors of one
    instance of ``L`` (:func:`~hdtheory.models.multi_index_spectral.coupled_spectral`)."""
    W, X, seconds = _draw(theory, key, n, d)
    k = theory.k
    T = jnp.eye(k, dtype=theory._dtype()) - small_inv(0.5 * (seconds + jnp.swapaxes(seconds, 1, 2)))
    weighted = (X[:, :, None, None] * T[:, None]).reshape(n, d * k * k)  # no (n, d, d) intermediate
    L = jnp.moveaxis((weighted.T @ X).reshape(d, k, k, d), 3, 2).reshape(d * k, d * k) / n
    values, vectors = jnp.linalg.eigh(L)
    V = vectors[:, ::-1][:, :outliers].T.reshape(outliers, d, k)
    directions = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    return jnp.einsum("ad,mdb->mab", directions, V) ** 2, values[::-1][:outliers]


def simulate_coupled_spectral(
    theory: MultiIndex, *, d: int = 500, seeds: int = 4, key=None, outliers: int = 1
) -> SimulationResult:
    """The optimal spectral estimator of any multi-index link at finite ``d``
    (:func:`~hdtheory.models.multi_index_spectral.coupled_spectral`): a teacher ``W*`` with i.i.d.
    ``N(0, 1)`` entries, ``n = round(alpha d)`` inputs, labels by ``theory.sample_labels``, and the top
    ``outliers`` eigenvectors ``v_m`` of the ``dk x dk`` matrix ``L = (1/n) sum_i x_i x_i^T (x) T(y_i)``,
    ``T = I - E[z z^T | y]^{-1}``. Measured: ``overlaps[m, a, b]``, the squared cosine of the teacher's
    direction ``a`` with column ``b`` of ``v_m`` reshaped to ``d x k``, and ``eigenvalues[m]``."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_coupled_instance(theory, seed_key, n, d, outliers) for seed_key in jax.random.split(key, seeds)]
    return SimulationResult.from_samples([{"overlaps": c, "eigenvalues": e} for c, e in samples], d=d, n=n)


@eqx.filter_jit
def _linearised_instance(theory: MultiIndex, key, n: int, d: int, outliers: int):
    """``(squared cosines (outliers, k, k), eigenvalues (outliers,), bulk radius)`` of one instance of
    :func:`simulate_linearised_gamp`'s operator ``B``."""
    W, X, seconds = _draw(theory, key, n, d)
    k = theory.k
    G = 0.5 * (seconds + jnp.swapaxes(seconds, 1, 2)) - jnp.eye(k, dtype=X.dtype)
    F = X / jnp.sqrt(d)
    P = F @ F.T
    P = P - jnp.diag(jnp.diag(P))
    B = jnp.einsum("mab,mn->manb", G, P).reshape(n * k, n * k)
    values, vectors = jnp.linalg.eig(B)
    order = jnp.argsort(-jnp.real(values))
    values, vectors = values[order], vectors[:, order]
    complex_ = jnp.abs(jnp.imag(values)) > 1e-8 * jnp.max(jnp.abs(values))
    radius = jnp.max(jnp.where(complex_, jnp.abs(values), 0.0))
    g = jnp.real(vectors[:, :outliers]).T.reshape(outliers, n, k)
    V = jnp.einsum("id,mib->mdb", F, g)  # W_hat = F^T g, d x k per outlier
    V = V / jnp.linalg.norm(V, axis=(1, 2), keepdims=True)
    directions = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    return jnp.einsum("ad,mdb->mab", directions, V) ** 2, jnp.real(values[:outliers]), radius


def simulate_linearised_gamp(
    theory: MultiIndex, *, d: int = 200, seeds: int = 4, key=None, outliers: int = 1
) -> SimulationResult:
    """The asymmetric spectral method at finite ``d``
    (:func:`~hdtheory.models.multi_index_spectral.linearised_gamp`): a teacher ``W*`` with i.i.d.
    ``N(0, 1)`` entries, ``n = round(alpha d)`` inputs, labels by ``theory.sample_labels``, and the
    eigendecomposition (dense, ``jnp.linalg.eig``) of the ``nk x nk`` operator of GAMP linearised about its
    uninformed point, ``g_mu <- G(y_mu) sum_{nu != mu} (x_mu . x_nu / d) g_nu``,
    ``G = E[z z^T | y] - I``. Measured: ``eigenvalues``, the ``outliers`` largest real parts;
    ``bulk_radius``, the largest modulus of a non-real eigenvalue (the bulk's disk); ``overlaps[m, a, b]``,
    the squared cosine of the teacher's direction ``a`` with column ``b`` of the estimate
    ``W_hat = F^T g_m`` (``F = X / sqrt(d)``, ``g_m`` the eigenvector of the ``m``-th eigenvalue, real
    part) reshaped to ``d x k``. The dense eigendecomposition limits ``n k`` to a few thousand."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = [_linearised_instance(theory, seed_key, n, d, outliers) for seed_key in jax.random.split(key, seeds)]
    names = ("overlaps", "eigenvalues", "bulk_radius")
    return SimulationResult.from_samples([dict(zip(names, s)) for s in samples], d=d, n=n)
