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
about its uninformed point; its ``nk x nk`` operator formed and decomposed densely or, for ``d`` in the
thousands, applied through its factors under ARPACK's Arnoldi iteration).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse.linalg import LinearOperator, eigs

from .._batch import map_instances
from .._theory import ParameterError
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


def _estimates(W, F, g):
    """Squared cosines ``(outliers, k, k)`` of the teacher's unit directions with the columns of
    ``W_hat = F^T g_m`` (normalised), ``g`` the ``outliers`` real eigenvectors of ``B`` as columns."""
    outliers, n, k = g.shape[1], F.shape[0], W.shape[0]
    V = jnp.einsum("id,mib->mdb", F, jnp.real(g).T.reshape(outliers, n, k))
    V = V / jnp.linalg.norm(V, axis=(1, 2), keepdims=True)
    directions = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    return jnp.einsum("ad,mdb->mab", directions, V) ** 2


def _non_real_radius(values):
    """The largest modulus of a non-real eigenvalue (zero without one)."""
    complex_ = jnp.abs(jnp.imag(values)) > 1e-8 * jnp.max(jnp.abs(values))
    return jnp.max(jnp.where(complex_, jnp.abs(values), 0.0))


def _factors(theory: MultiIndex, key, n: int, d: int):
    """``(W*, F, G)`` of one instance: ``F = X / sqrt(d)``, ``G = E[z z^T | y] - I`` per sample."""
    W, X, seconds = _draw(theory, key, n, d)
    G = 0.5 * (seconds + jnp.swapaxes(seconds, 1, 2)) - jnp.eye(theory.k, dtype=X.dtype)
    return W, X / jnp.sqrt(d), G


@eqx.filter_jit
def _linearised_instance(theory: MultiIndex, key, n: int, d: int, outliers: int):
    """``(squared cosines (outliers, k, k), eigenvalues (outliers,), bulk radius)`` of one instance of
    :func:`simulate_linearised_gamp`'s operator ``B``, formed and decomposed densely."""
    W, F, G = _factors(theory, key, n, d)
    k = theory.k
    P = F @ F.T
    P = P - jnp.diag(jnp.diag(P))
    B = jnp.einsum("mab,mn->manb", G, P).reshape(n * k, n * k)
    values, vectors = jnp.linalg.eig(B)
    order = jnp.argsort(-jnp.real(values))[:outliers]
    return _estimates(W, F, vectors[:, order]), jnp.real(values[order]), _non_real_radius(values)


_factors_jit = eqx.filter_jit(_factors)


def _arnoldi_instance(theory: MultiIndex, key, n: int, d: int, outliers: int, modes: int):
    """As :func:`_linearised_instance`, with ``B`` applied through its factors,
    ``g -> G (F (F^T g) - diag(|F_mu|^2) g)`` (``O(n d k)`` a product), and ARPACK's implicitly restarted
    Arnoldi iteration (``scipy.sparse.linalg.eigs``): the ``outliers`` eigenvalues of largest real part
    with their eigenvectors (to ARPACK's machine precision), and the ``modes`` of largest modulus (to
    ``1e-4``, enough for the bulk's radius, which is the largest modulus of a non-real one among them).
    ARPACK's failure to converge is raised (``ArpackNoConvergence``)."""
    W, F, G = (np.asarray(a) for a in _factors_jit(theory, key, n, d))
    size, norms = n * theory.k, np.sum(F**2, axis=1)

    def apply(g):
        g = g.reshape(n, theory.k)
        return np.einsum("nab,nb->na", G, F @ (F.T @ g) - norms[:, None] * g).reshape(-1)

    B = LinearOperator((size, size), matvec=apply, dtype=F.dtype)
    start = np.random.default_rng(0).standard_normal(size)
    subspace = min(size, max(64, 2 * modes + 1))
    values, vectors = eigs(B, k=outliers, which="LR", ncv=subspace, v0=start)
    order = np.argsort(-values.real)
    edge = eigs(B, k=modes, which="LM", ncv=subspace, tol=1e-4, v0=start, return_eigenvectors=False)
    return _estimates(W, F, vectors[:, order]), values.real[order], _non_real_radius(edge)


_DENSE_SIZE = 2000
"""The largest ``n k`` that ``solver="auto"`` decomposes densely (``O((nk)^3)``: seconds on a CPU)."""


def simulate_linearised_gamp(
    theory: MultiIndex,
    *,
    d: int = 200,
    seeds: int = 4,
    key=None,
    outliers: int = 1,
    solver: str = "auto",
    modes: int = 16,
) -> SimulationResult:
    """The asymmetric spectral method at finite ``d``
    (:func:`~hdtheory.models.multi_index_spectral.linearised_gamp`): a teacher ``W*`` with i.i.d.
    ``N(0, 1)`` entries, ``n = round(alpha d)`` inputs, labels by ``theory.sample_labels``, and the top
    eigenpairs of the ``nk x nk`` operator of GAMP linearised about its uninformed point,
    ``g_mu <- G(y_mu) sum_{nu != mu} (x_mu . x_nu / d) g_nu``, ``G = E[z z^T | y] - I``. Measured:
    ``eigenvalues``, the ``outliers`` largest real parts; ``bulk_radius``, the largest modulus of a
    non-real eigenvalue (the bulk's disk); ``overlaps[m, a, b]``, the squared cosine of the teacher's
    direction ``a`` with column ``b`` of the estimate ``W_hat = F^T g_m`` (``F = X / sqrt(d)``, ``g_m`` the
    eigenvector of the ``m``-th eigenvalue, real part) reshaped to ``d x k``.

    ``solver``: ``"dense"`` forms ``B`` and takes every eigenvalue (``jnp.linalg.eig``; ``n k`` up to a few
    thousand); ``"arnoldi"`` applies ``B`` through its factors, never forming it, and finds the ``outliers``
    eigenvalues of largest real part and the ``modes`` of largest modulus by ARPACK (host-side SciPy;
    ``d`` in the thousands: some 20-50 s an instance at ``d = 1000``, ``alpha = 2.7``, ``k = 1`` on a CPU),
    the radius then the largest modulus of a non-real one among those (the same number as the dense one's
    while a non-real eigenvalue is among them); ``"auto"``: dense up to ``n k = 2000``."""
    check_size(d, seeds)
    if solver not in ("auto", "dense", "arnoldi"):
        raise ParameterError(f"parameter 'solver' must be 'auto', 'dense' or 'arnoldi', got {solver!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    size = n * theory.k
    if not 1 <= outliers < size - 1 or not 1 <= modes < size - 1:
        raise ParameterError(f"parameters 'outliers' and 'modes' must be in [1, n k - 2] = [1, {size - 2}]")
    dense = solver == "dense" or (solver == "auto" and size <= _DENSE_SIZE)

    def instance(seed_key):
        if dense:
            return _linearised_instance(theory, seed_key, n, d, outliers)
        return _arnoldi_instance(theory, seed_key, n, d, outliers, modes)

    samples = [instance(seed_key) for seed_key in jax.random.split(key, seeds)]
    names = ("overlaps", "eigenvalues", "bulk_radius")
    return SimulationResult.from_samples([dict(zip(names, s)) for s in samples], d=d, n=n)
