r"""The optimal spectral estimators of a multi-index model: their overlaps with the signal, their outliers
and thresholds; per direction where the preprocessing decomposes along fixed directions, and for any
link by the coupled ``k x k`` resolvent.

**Setting** (:class:`~hdtheory.MultiIndex`: ``x_i ~ N(0, I_d)``, ``n = alpha d``, the fields
``z = W* x / sqrt(d) ~ N(0, I_k)``, labels ``y ~ P(y | g(z))``). Defilippis, Dandi, Mergny, Krzakala and
Loureiro 2025 ("Optimal spectral transitions in high-dimensional multi-index models", NeurIPS) build
the optimal spectral methods from the linearisation of GAMP about ``M = 0``, whose ``k x k``
preprocessing is ``G(y) = E[z z^T | y] - I`` (the posterior at ``omega = 0``, ``V = I``), and whose
threshold is :class:`~hdtheory.MultiIndex`'s ``alpha_c``, ``1 / lambda_max`` of ``M -> E_y G M G``.
The estimator here is the matrix analogue, built from that ``G``, of the single-index optimal
preprocessing ``1 - 1 / E[G^2 | y]`` (Luo, Alghamdi and Lu 2019, :mod:`hdtheory.models.spectral`):
``T(y) = G (I + G)^{-1} = I - E[z z^T | y]^{-1}``, acting on ``R^d x R^k`` as
``L = (1/n) sum_i x_i x_i^T (x) T(y_i)``. Its threshold is theirs (``alpha_c``, tested). Where ``G``
decomposes (below), their symmetric matrix has, in ``G``'s eigenbasis, the blocks weighted by
``lambda_l(y) / (lambda_l(y) + 1)``, ``lambda_l`` the eigenvalues of ``G(y)``, with thresholds
``1 / E[lambda_l^2]`` (their App. C.3.1 and Lemma C.3): ours, ``T_j`` and the diagonal pairs below; for links
that do not decompose, equality to their matrix is not checked (its definition is not in the text at hand).
Their asymmetric method, the linearised GAMP iteration itself, is :func:`linearised_gamp` (below), whose
outlier ``alpha / alpha_c`` and bulk radius ``sqrt(alpha / alpha_c)`` are their Theorems 2.3 and 2.4.

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
``z1 + z1 z2``) are marked not converged here: there ``L``'s blocks couple; :func:`coupled_spectral` covers them.

**Any link: the coupled estimator** (:func:`coupled_spectral`; derived here, not read from a source).
With ``U`` the teacher's directions, split ``x_i = U z_i + x_perp_i``; given the labels, ``x_perp`` is
Gaussian and independent of ``(z, y)``, and ``lambda`` outside the bulk is an eigenvalue of ``L`` iff
``0`` is one of the ``k^2 x k^2`` matrix ``H(lambda) = lambda I - Sigma(lambda)``, the Schur complement
of the signal block. Leave-one-out on ``L = (1/n) sum_i A_i T_i A_i^T``, ``A_i = x_i (x) I_k``, gives the
bulk resolvent ``(lambda - L)^{-1} ~ I_d (x) R(lambda)`` with the ``k x k`` fixed point

.. math:: R^{-1} = \lambda I - \mathbb E_y K(y), \qquad K = T (I - R T / \alpha)^{-1}
          \quad (T (I - R T/\alpha)^{-1} = (I - T R/\alpha)^{-1} T,\ \text{symmetric}),

the smallest solution, reached monotonically from ``R = 0`` (``K`` increases with ``R``); the bulk edge
is the smallest ``lambda`` where it exists (by bisection, to the iteration's tolerance). The signal
block is then

.. math:: \Sigma(\lambda) = \mathbb E_y\, S(y) \otimes K_\lambda(y), \qquad S = \mathbb E[z z^T \mid y]

(index ``(a, b)``: teacher direction ``a``, component ``b`` of ``R^k``; the sums over pairs ``i != j``
vanish because flipping ``x_perp_i`` flips their sign, so a mean ``E[z | y] != 0`` enters only through
``S``). ``H' = I - Sigma' >= I``, so each ordered eigenvalue of ``H`` increases with ``lambda`` and
crosses zero at most once: the ``m``-th largest outlier is the zero of ``H``'s ``m``-th smallest
eigenvalue above the edge (bisection, then one implicit-function step so that derivatives are
``-d_theta mu / d_lambda mu``). With ``u`` its unit null vector, the eigenvector ``v`` of ``L`` has the
signal part ``U^T V = M``, ``vec M = u / sqrt(u^T H' u)`` (``|v_perp|^2 = -vec M^T Sigma' vec M``),
``V`` the ``d x k`` reshaping of ``v``. At ``k = 1`` (``R = r``, ``lambda' = alpha / r``) this is the
single-index equation ``E[Z (s - 1) / (lambda' - Z)] = 1 / alpha``; for a decomposable link ``Sigma``
is diagonal in ``E (x) E`` and gives the pairs above (tested to ``1e-8``). Where outliers coincide
(``z1 z2``'s two directions) only the span of their eigenvectors is determined, and the per-outlier
``M`` is one basis of it. The threshold of the top outlier is ``alpha_c`` (tested within 5%).
The estimators use the second moments only: a trivial direction (``E[z | y] != 0``) is left to linear
estimators.

**The asymmetric method: linearised GAMP** (:func:`linearised_gamp`; the operator and everything below
derived here by linearising the GAMP of :mod:`hdtheory.simulate.multi_index`, the paper's text not at
hand). About the uninformed fixed point (``W_hat = 0``, ``g = 0``, ``V = C = I``, ``A = 0``, which needs
``E[z | y] = 0``), ``d E[z | y, omega, I] / d omega = E[z z^T | y]``, so that ``g_mu = G(y_mu) omega_mu`` with
``G = E[z z^T | y] - I``; with ``omega = F W_hat - g_old`` and ``W_hat = F^T g_old`` (``F = X / sqrt(d)``)
one iteration is the linear map on the ``n x k`` messages

.. math:: B:\ g_\mu \mapsto G(y_\mu) \sum_{\nu \ne \mu} (F F^T)_{\mu\nu}\, g_\nu

(the diagonal ``|F_mu|^2 - 1`` dropped: GAMP with each sample's own variance ``|F_mu|^2 C``; the same as
``d -> inf``), and the estimator is ``W_hat = F^T g`` for ``g`` the top eigenvector of ``B``. With
``Gamma: M -> E_y G M G`` on ``k x k`` matrices (eigenvalues ``mu_1 >= mu_2 >= ...``):

- *Bulk.* Messages uncorrelated with the signal have covariance ``Q -> alpha Gamma(Q)`` per step, so that
  (inferred, not proved) the bulk of ``B`` fills the disk of radius ``sqrt(alpha mu_1)``; its largest
  non-real eigenvalue at finite ``d`` is 4 to 10% outside at d = 600 to 150 (``tanh(z^2)``, ``2.5 alpha_c``),
  3.1% at d = 1000, 1.6% at d = 2000 and 1.9% at d = 4000 (the mean of 6, 3 and 2 instances): whether
  the gap closes is not resolved at these ``d``.
- *Outliers.* A real ``lambda`` is an eigenvalue iff ``W_hat = F^T G (lambda + G)^{-1} F W_hat``, i.e. iff
  ``alpha L_lambda`` has the eigenvalue one, ``L_lambda`` :func:`coupled_spectral`'s matrix with
  ``T = G (lambda + G)^{-1}``. At its eigenvalue ``1 / alpha`` the resolvent's fixed point is ``R = alpha I``
  (then ``K = G / lambda``, ``E G = 0``), so that ``Sigma = E[S (x) G] / lambda = Gamma / lambda`` and
  ``H(1 / alpha) = I / alpha - Gamma / lambda``: the outliers are ``lambda_m = alpha mu_m``, where
  ``|lambda_m| > sqrt(alpha mu_1)``; that branch holds while ``R' = -alpha^2 X``,
  ``X = (I - alpha Gamma / lambda^2)^{-1} I``, exists, i.e. exactly outside the disk. The top outlier
  ``alpha / alpha_c`` and the radius ``sqrt(alpha / alpha_c)`` cross one together at ``alpha_c``
  (``alpha_c = 1 / mu_1``, :class:`~hdtheory.MultiIndex`'s, there on symmetric matrices).
- *Overlaps.* With ``u`` the unit eigenvector of ``Gamma`` (``k^2 x k^2``, ``[(a, c), (b, d)] = E G_ab G_cd``),
  ``H' = I + (alpha / lambda^2) E[S (x) G X G]`` and ``vec M = u / sqrt(u^T H' u)`` as in
  :func:`coupled_spectral`. At ``k = 1``: ``|M|^2 = (1 - alpha_c / alpha) / (1 - alpha_c / alpha +
  alpha_c^2 E[s G^2] / alpha)``; for ``sign(z1 z2)``: ``1 - alpha_c / alpha``.

So the asymmetric estimator is the symmetric one with the preprocessing ``G (lambda* + G)^{-1}``,
``lambda* = alpha / alpha_c``, in place of the optimal ``G (I + G)^{-1}``: the two coincide at ``alpha_c``
and the symmetric one has the larger overlap above it (``tanh(z^2)``, ``noise = 0.05``, at
``2.5 alpha_c``: 0.473 against 0.674; ``sign(z1 z2)``: 0.6 against 0.674). Where ``G`` is unbounded
(Gaussian noise on ``|z|``, ``z^2``, ``z1 z2``), ``G (lambda + G)^{-1}`` approaches one on the largest
labels and ``alpha L_lambda``'s bulk edge reaches one (its hard edge): at finite ``d`` those labels give
real eigenvalues beside and above the outlier (``|z|`` with noise 0.2 at ``2.5 alpha_c``, d = 300: the
largest real part 1.34 against 2.5, squared cosine 0.12 against 0.258; at ``0.7 alpha_c`` 1.03, above one;
2 seeds). At ``2.5 alpha_c`` the outlier settles as ``d`` grows (2.27 and 2.50 at d = 2000, squared cosines
0.24 and 0.27), but below the threshold a rare large label still gives a real eigenvalue above one at
d = 2000 (1.08 at ``0.7 alpha_c``, one instance of three), so that the formulas are checked on links with
bounded ``G`` only. With bounded ``G`` too an instance's eigenvalues move with its labels' mean of ``G``,
zero only as ``n -> inf``: ``tanh(z^2)`` at ``2.5 alpha_c`` has outliers 2.2 to 2.6 at d = 1000.

``T_j`` is bounded by ``tau = 1`` for the continuous links (``s_j`` is unbounded over their labels) and
by its largest value over the two labels of ``sign-product``.
"""

import jax
import jax.numpy as jnp

from .._batch import map_instances
from .._theory import ParameterError
from .._fixed_point import solve
from ..kernels.multivariate import small_inv
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


_TRIVIAL = 1e-12
"""The largest ``E_y |E[z | y]|^2`` of a link without a trivial direction (rounding of the posterior's mean)."""
_ITERATIONS = 400
"""Iterations of the bulk's resolvent map from ``R = 0`` (monotone: the iterates increase to the
smallest fixed point where it exists)."""
_BISECTIONS = 60


def _label_law(theory: MultiIndex, inner_order: int = _INNER):
    """``(weights, means, S)`` on the label nodes at the uninformed point: the law of the labels
    (normalised), ``E[z | y]`` (zero on empty nodes) and ``S = E[z z^T | y]`` (symmetrised; ``I`` on
    empty nodes)."""
    dtype, k = theory._dtype(), theory.k
    eye = theory._eye(dtype)
    weights, means, S = theory._labels(jnp.zeros(k, dtype), eye, None, inner_order)
    live = weights > 0
    S = jnp.where(live[:, None, None], 0.5 * (S + jnp.swapaxes(S, 1, 2)), eye)
    return weights / jnp.sum(weights), jnp.where(live[:, None], means, 0.0), S


def _coupled_law(theory: MultiIndex, inner_order: int = _INNER):
    """``(weights, S, T)`` on the label nodes: :func:`_label_law`'s weights and ``S``, and ``T = I -
    S^{-1}`` (zero on empty nodes)."""
    weights, _, S = _label_law(theory, inner_order)
    T = jnp.where((weights > 0)[:, None, None], theory._eye(S.dtype) - small_inv(S), 0.0)
    return weights, S, T


def _resolvent(alpha, weights, T, lam):
    """``(R, valid)``: the ``k x k`` bulk resolvent ``R(lambda)``, the smallest solution of
    ``R = (lambda I - E[K(R)])^{-1}``, ``K = T (I - R T / alpha)^{-1}``, and whether the iteration stayed
    on its branch (``lambda I - E K`` and ``I - R T / alpha`` non-singular with positive determinant at every
    node) and converged (relative change below ``1e-10``)."""
    eye = jnp.eye(T.shape[-1], dtype=T.dtype)

    def kernel(R):
        inner = eye - jnp.einsum("ab,nbc->nac", R, T) / alpha
        return jnp.einsum("nab,nbc->nac", T, small_inv(inner)), jnp.linalg.det(inner)

    def step(_, carry):
        R, ok = carry
        K, dets = kernel(R)
        outer = lam * eye - jnp.einsum("n,nab->ab", weights, K)
        ok = ok & jnp.all(dets > 0) & (jnp.linalg.det(outer) > 0) & (jnp.trace(outer) > 0)
        R_new = small_inv(outer)
        return jnp.where(ok, 0.5 * (R_new + R_new.T), R), ok

    R, ok = jax.lax.fori_loop(0, _ITERATIONS, step, (jnp.zeros_like(eye), jnp.asarray(True)))
    _, last = step(0, (R, ok))
    K, _ = kernel(R)
    change = jnp.max(jnp.abs(small_inv(lam * eye - jnp.einsum("n,nab->ab", weights, K)) - R))
    return R, last & (change <= 1e-10 * jnp.maximum(jnp.max(jnp.abs(R)), 1.0))


def _signal(alpha, weights, S, T, lam):
    """``Sigma(lambda) = E[S(y) (x) K_lambda(y)]`` ``(k^2, k^2)``: the Schur complement of the signal block."""
    R, _ = _resolvent(alpha, weights, T, lam)
    eye = jnp.eye(T.shape[-1], dtype=T.dtype)
    K = jnp.einsum("nab,nbc->nac", T, small_inv(eye - jnp.einsum("ab,nbc->nac", R, T) / alpha))
    k = T.shape[-1]
    return jnp.einsum("n,nab,ncd->acbd", weights, S, K).reshape(k * k, k * k)


def _bisect(f, lo, hi):
    """The point of ``(lo, hi)`` where the increasing ``f`` changes sign (``f(lo) < 0 <= f(hi)``)."""

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = f(mid) < 0
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    return jax.lax.fori_loop(0, _BISECTIONS, step, (lo, hi))


def coupled_spectral(theory: MultiIndex) -> dict[str, jax.Array]:
    r"""The optimal spectral estimator ``L = (1/n) sum_i x_i x_i^T (x) T(y_i)``, ``T = I - E[z z^T | y]^{-1}``,
    of any ``k``-index link (the preprocessing's eigenvectors may depend on the label); derived here, see
    the module docstring. Returns

    - ``eigenvalues`` ``(k^2,)``: ``L``'s outliers, largest first (``nan`` where there are fewer);
    - ``overlaps`` ``(k^2, k, k)``: for each outlier, ``M[a, b]``, the cosine of the unit teacher direction
      ``a`` with column ``b`` of its eigenvector ``v`` reshaped to ``d x k`` (``|v| = 1``; sign fixed by
      the largest entry being positive; zero without the outlier); ``overlap``: ``|M|_F^2`` per outlier,
      the squared norm of its eigenvector's projection on the signal;
    - ``bulk_edge``; ``converged``: the resolvent's iteration converged at the edge's bracket and at
      each outlier, and the search interval held them.
    """
    if not isinstance(theory, MultiIndex):
        raise ParameterError(f"parameter 'theory' must be a MultiIndex, got {type(theory).__name__}")
    return _outliers(theory.alpha, *_coupled_law(theory))


def _outliers(alpha, weights, S, T) -> dict[str, jax.Array]:
    """:func:`coupled_spectral`'s outliers for the preprocessing ``T`` on the label nodes (``weights``,
    ``S = E[z z^T | y]``)."""
    k = T.shape[-1]
    size = jnp.max(jnp.abs(T)) * (1 + 1 / jnp.sqrt(alpha)) ** 2 * jnp.max(jnp.linalg.eigvalsh(S)) + 1.0
    lo, hi = jax.lax.stop_gradient(
        _bisect(lambda lam: jnp.where(_resolvent(alpha, weights, T, lam)[1], 1.0, -1.0), -size, size)
    )
    edge = hi

    def H(lam):
        return lam * jnp.eye(k * k, dtype=T.dtype) - _signal(alpha, weights, S, T, lam)

    def root(m):
        f = lambda lam: jnp.linalg.eigvalsh(H(lam))[m]  # noqa: E731 -- increasing: H' = I - Sigma' >= I
        present = f(edge) < 0
        low, high = _bisect(f, edge, 4 * size)
        lam_b = jax.lax.stop_gradient(high)
        # One implicit step: the value is lam_b, the derivative -d_theta f / d_lam f.
        slope = jax.lax.stop_gradient(jax.jacfwd(f)(lam_b))
        value = f(lam_b)
        lam = lam_b - (value - jax.lax.stop_gradient(value)) / slope
        values, vectors = jnp.linalg.eigh(H(lam))
        u = vectors[:, m]
        weight = 1 / (u @ jax.jacfwd(H)(lam) @ u)
        u = u * jnp.sign(u[jnp.argmax(jnp.abs(u))])
        M = jnp.sqrt(weight) * u.reshape(k, k)
        ok = ~present | (_resolvent(alpha, weights, T, lam_b)[1] & (f(4 * size) > 0))
        return jnp.where(present, lam, jnp.nan), jnp.where(present, M, 0.0), ok

    eigenvalues, M, ok = jax.vmap(root)(jnp.arange(k * k))
    return {
        "eigenvalues": eigenvalues,
        "overlaps": M,
        "overlap": jnp.sum(M**2, axis=(1, 2)),
        "bulk_edge": edge,
        "converged": jnp.all(ok) & _resolvent(alpha, weights, T, edge)[1],
    }



def linearised_gamp(theory: MultiIndex) -> dict[str, jax.Array]:
    r"""The asymmetric spectral method of Defilippis et al. 2025: GAMP linearised about its uninformed
    fixed point (derived here; see the module docstring). Returns

    - ``eigenvalues`` ``(k^2,)``: the outliers ``alpha mu_m`` of the operator ``B``, ``mu_m`` the
      eigenvalues of ``M -> E_y G M G`` on ``k x k`` matrices, largest first (``nan`` inside the bulk);
    - ``bulk_radius``: ``sqrt(alpha mu_1)``, the radius of the bulk's disk;
    - ``overlaps`` ``(k^2, k, k)``: per outlier, ``M[a, b]``, the cosine of the unit teacher direction ``a``
      with column ``b`` of the estimate ``W_hat = F^T g`` (``|W_hat|_F = 1``, ``g`` the eigenvector of
      ``B``; zero without the outlier; where outliers coincide, as ``z1 z2``'s two, one basis of their
      span, and its derivative undefined); ``overlap``: ``|M|_F^2``;
    - ``alpha_c``: ``1 / mu_1``, where the top outlier leaves the bulk and crosses one;
    - ``fixed_point``: whether ``W_hat = 0`` is a fixed point of GAMP (``E_y |E[z | y]|^2`` below
      ``1e-12``); where it is not (a trivial direction), GAMP leaves it at once and the linearisation
      describes no fixed point.
    """
    if not isinstance(theory, MultiIndex):
        raise ParameterError(f"parameter 'theory' must be a MultiIndex, got {type(theory).__name__}")
    alpha, k = theory.alpha, theory.k
    dtype = theory._dtype()
    eye, eye2 = theory._eye(dtype), jnp.eye(k * k, dtype=dtype)
    weights, means, S = _label_law(theory, max(theory.inner_order, _INNER))
    G = S - eye  # zero on the empty nodes
    trivial = jnp.einsum("n,ni->", weights, means**2)
    gamma = jnp.einsum("n,nab,ncd->acbd", weights, G, G).reshape(k * k, k * k)
    mu, U = jnp.linalg.eigh(0.5 * (gamma + gamma.T))
    mu, U = mu[::-1], U[:, ::-1]
    radius = jnp.sqrt(alpha * mu[0])

    def outlier(m):
        lam = alpha * mu[m]
        X = jnp.linalg.solve(eye2 - alpha * gamma / lam**2, eye.reshape(-1)).reshape(k, k)
        GXG = jnp.einsum("nab,bc,ncd->nad", G, X, G)
        slope = eye2 + alpha / lam**2 * jnp.einsum("n,nab,ncd->acbd", weights, S, GXG).reshape(k * k, k * k)
        u = U[:, m] * jnp.sign(U[jnp.argmax(jnp.abs(U[:, m])), m])
        M = u.reshape(k, k) / jnp.sqrt(u @ slope @ u)
        present = jnp.abs(lam) > radius
        return jnp.where(present, lam, jnp.nan), jnp.where(present, M, 0.0)

    eigenvalues, M = map_instances(outlier, jnp.arange(k * k))  # a solve each: not batched on the CPU
    return {
        "eigenvalues": eigenvalues,
        "overlaps": M,
        "overlap": jnp.sum(M**2, axis=(1, 2)),
        "bulk_radius": radius,
        "alpha_c": 1 / mu[0],
        "fixed_point": trivial <= _TRIVIAL,
    }
