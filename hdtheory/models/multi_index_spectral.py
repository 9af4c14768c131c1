r"""The optimal spectral estimators of a multi-index model whose preprocessing decomposes along fixed
directions: their overlaps with the signal, their outliers and thresholds.

**Setting** (:class:`~hdtheory.MultiIndex`: ``x_i ~ N(0, I_d)``, ``n = alpha d``, the fields
``z = W* x / sqrt(d) ~ N(0, I_k)``, labels ``y ~ P(y | g(z))``). Defilippis, Dandi, Mergny, Krzakala and
Loureiro 2025 ("Optimal spectral transitions in high-dimensional multi-index models", NeurIPS) build
the optimal spectral methods from the linearisation of GAMP about ``M = 0``, whose ``k x k``
preprocessing is ``G(y) = E[z z^T | y] - I`` (the posterior at ``omega = 0``, ``V = I``), and whose
threshold is :class:`~hdtheory.MultiIndex`'s ``alpha_c``, ``1 / lambda_max`` of ``M -> E_y G M G``.
The estimator here is the matrix analogue, built from that ``G``, of the single-index optimal
preprocessing ``1 - 1 / E[G^2 | y]`` (Luo, Alghamdi and Lu 2019, :mod:`hdtheory.models.spectral`):
``T(y) = G (I + G)^{-1} = I - E[z z^T | y]^{-1}``, acting on ``R^d x R^k`` as
``L = (1/n) sum_i x_i x_i^T (x) T(y_i)``. Its threshold is theirs (``alpha_c``, tested); that ``L`` is
exactly their symmetric spectral matrix is not checked here (their text was not at hand), and their
asymmetric method, the linearised GAMP iteration itself, is not written.

**What is covered: decomposable links.** Where ``E[z z^T | y] = E diag(s_1(y), ..., s_k(y)) E^T`` for
one orthonormal ``E`` and every label (``z1 z2`` and ``sign(z1 z2)`` with ``E`` the 45 degree rotation;
``|z1| - |z2|``, ``z1 + ... + zk`` at ``k = 1``, with ``E = I``), ``L`` is, in the rotated directions
``u = E^T z``, block diagonal: ``L = sum_j D_j (x) e_j e_j^T`` with the ``d x d`` matrices

.. math:: D_j = \frac{1}{n} \sum_i T_j(y_i)\, x_i x_i^T, \qquad T_j(y) = 1 - \frac{1}{s_j(y)}, \qquad
          s_j(y) = \mathbb{E}[u_j^2 \mid y],

so that the estimator of direction ``j`` (the column ``W* E e_j`` of the rotated teacher) is the top
eigenvector of ``D_j``. Each ``D_j`` is a weighted covariance with a ``k``-dimensional signal; its
signal block ``E[T_j(y) u u^T / (lambda - T_j(y))]`` is diagonal because ``E[u_a u_b | y] = 0`` for
``a != b``, so that the ``k x k`` outlier equation of the multi-spike theorem (Kovacevic, Zhang and
Mondelli 2025, "Spectral estimators for multi-index models: precise asymptotics and optimal weak
recovery", COLT) factorises into ``k`` scalar ones: direction ``l`` gives ``D_j`` an outlier where

.. math:: \mathbb{E}\frac{Z_j (s_l(Y) - 1)}{\lambda - Z_j} = \frac{1}{\alpha}, \qquad Z_j = T_j(Y),

above the bulk's ``bar lambda`` (``psi_j``'s minimiser), with the eigenvector's squared cosine with
direction ``l`` given by the single-index formula and orthogonal to the other directions: each pair
``(j, l)`` is :class:`~hdtheory.Spectral`'s ``k = 1`` problem with the law of ``Z = T_j(Y)`` and
``g = s_l``, solved by its machinery (:class:`~hdtheory.models.spectral.LabelLaw`). The top eigenvector of
``D_j`` is that of its largest outlier. The diagonal pairs' thresholds are Mondelli and Montanari's
``1 / E[(s_j - 1)^2]``, and their minimum is ``alpha_c`` (in the basis ``E`` the operator
``M -> E_y G M G`` is diagonal on ``E_jl`` with eigenvalues ``E[(s_j - 1)(s_l - 1)]``, largest on the
diagonal by Cauchy-Schwarz).

``E`` is found from the data: the eigenvectors of ``E[z z^T | y]`` at the label node where its
eigenvalues are best separated (weighted by the node's mass; the posterior on 16 nodes per panel);
``decomposable`` reports whether it diagonalises ``E[z z^T | y]`` over the labels (the mean absolute
off-diagonal entry within ``1e-6`` of ``G``'s mean absolute entry). Links that do not decompose (the staircase
``z1 + z1 z2``) are not covered: there ``L``'s blocks couple, and the numbers are marked not converged.
The estimators use the second moments only: a trivial direction (``E[z | y] != 0``) is left to linear
estimators.

``T_j`` is bounded by ``tau = 1`` for the continuous links (``s_j`` is unbounded over their labels) and
by its largest value over the two labels of ``sign-product``.
"""

import jax
import jax.numpy as jnp

from .._theory import ParameterError
from .._fixed_point import solve
from .multi_index import MultiIndex
from .spectral import LabelLaw

_OFF_DIAGONAL = 1e-6
"""The mean over the labels of ``E^T E[z z^T | y] E``'s off-diagonal entries, relative to ``G``'s, of a
decomposable link."""
_INNER = 16
"""Nodes per panel of the posterior's rule: the few largest labels need more than the state evolution's
default (four) for ``E[z z^T | y]`` to be diagonal in the rotated basis to ``1e-6``."""


def decomposition(theory: MultiIndex, inner_order: int = _INNER) -> tuple[jax.Array, ...]:
    """``(weights, s, basis, decomposable)``: the law of the labels (``N`` nodes), ``s[n, j] =
    E[u_j^2 | y_n]`` in the rotated fields ``u = basis^T z``, the basis ``(k, k)`` (columns: the
    directions) and whether it diagonalises ``E[z z^T | y]`` over the labels; see the module docstring."""
    dtype, k = theory._dtype(), theory.k
    eye = theory._eye(dtype)
    weights, _, seconds = theory._labels(jnp.zeros(k, dtype), eye, None, inner_order)
    seconds = 0.5 * (seconds + jnp.swapaxes(seconds, 1, 2))
    values = jnp.linalg.eigvalsh(seconds)
    gap = jnp.min(jnp.diff(values, axis=1), axis=1, initial=jnp.inf) if k > 1 else jnp.ones_like(weights)
    node = jnp.argmax(jnp.where(weights > 0, gap * weights, -1.0))
    _, basis = jnp.linalg.eigh(seconds[node])
    rotated = jnp.einsum("ai,nab,bj->nij", basis, seconds, basis)
    s = jnp.diagonal(rotated, axis1=1, axis2=2)
    off = jnp.einsum("n,nij->", weights, jnp.abs(rotated - jax.vmap(jnp.diag)(s)))
    scale = jnp.einsum("n,nij->", weights, jnp.abs(seconds - eye))
    return weights, s, basis, off <= _OFF_DIAGONAL * jnp.maximum(scale, 1e-30)


def multi_index_spectral(theory: MultiIndex) -> dict[str, jax.Array]:
    """The optimal spectral estimators of ``theory`` (a :class:`~hdtheory.MultiIndex` at its ``alpha``) for
    a decomposable link; see the module docstring. Returns

    - ``basis`` ``(k, k)``: the directions ``E`` (columns); direction ``j`` of the teacher is ``W* E e_j``;
    - ``overlaps`` ``(k, k)``: ``[j, l]`` the squared cosine with direction ``l`` of the eigenvector of
      ``D_j``'s outlier along ``l`` (0 without one);
    - ``top_overlaps`` ``(k, k)``: the squared cosines of ``D_j``'s top eigenvector with each direction
      (its largest outlier's row of ``overlaps``, zero without an outlier);
    - ``eigenvalues`` ``(k, k)``: those outliers (the bulk edge without one); ``bulk_edge`` ``(k,)``;
    - ``alpha_spec`` ``(k, k)``: each outlier's threshold; ``alpha_c``: the smallest diagonal one;
    - ``decomposable``, ``converged``: whether the link is covered and every root was found.
    """
    if not isinstance(theory, MultiIndex):
        raise ParameterError(f"parameter 'theory' must be a MultiIndex, got {type(theory).__name__}")
    weights, s, basis, decomposable = decomposition(theory)
    live = weights > 0
    Z = jnp.where(live[:, None], 1 - 1 / jnp.where(live[:, None], s, 1.0), 0.0)
    g = jnp.where(live[:, None], s, 1.0)
    if theory._spec.discrete:
        tau = jnp.max(jnp.where(live[:, None], Z, -jnp.inf), axis=0)
    else:
        tau = jnp.ones(theory.k, Z.dtype)

    def pair(Z, tau, g):
        law = LabelLaw(alpha=theory.alpha, weights=weights, Z=Z, g=g, tau=tau)
        solution = solve(law)
        return solution.observables, solution.converged

    rows = jax.vmap(pair, in_axes=(None, None, 1))  # l: the direction of the outlier
    obs, converged = jax.vmap(rows, in_axes=(1, 0, None))(Z, tau, g)  # j: the matrix D_j
    spike = obs["overlap"] > 0
    eigenvalues = jnp.where(spike, obs["eigenvalue"], obs["bulk_edge"])
    top = jnp.argmax(jnp.where(spike, eigenvalues, -jnp.inf), axis=1)
    chosen = jax.nn.one_hot(top, theory.k, dtype=Z.dtype) * jnp.any(spike, axis=1, keepdims=True)
    alpha_spec = obs["alpha_spec"]
    return {
        "basis": basis,
        "overlaps": obs["overlap"],
        "top_overlaps": chosen * obs["overlap"],
        "eigenvalues": eigenvalues,
        "bulk_edge": obs["bulk_edge"][:, 0],
        "alpha_spec": alpha_spec,
        "alpha_c": jnp.min(jnp.diagonal(alpha_spec)),
        "decomposable": decomposable,
        "converged": decomposable & jnp.all(converged),
    }
