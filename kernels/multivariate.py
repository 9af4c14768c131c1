r"""Kernels in ``K`` dimensions: Gaussian expectations over correlated fields, orthant probabilities
and proximal operators with a matrix step.

**Expectations.** :func:`gaussian_expectation_nd` computes ``E f(x)``, ``x ~ N(mean, cov)`` in ``K``
dimensions, through a factor ``L`` of ``cov`` (:func:`psd_cholesky`, which accepts singular
covariances): ``x = mean + L z``, ``z ~ N(0, I_K)`` on a deterministic point set chosen by ``rule``:

- ``"product"``: the tensor product of the Gauss-Hermite rule of ``order`` nodes per axis
  (``order^K`` nodes), exact for polynomials of degree ``2 order - 1`` in each variable and
  exponentially convergent for analytic ``f``; the rule for ``K <= 4``.
- ``"sobol"``: ``points`` (a power of two) points of the unscrambled Sobol sequence shifted by half a
  cell, ``u_i + 1 / (2 points)`` modulo 1, mapped through the normal quantile. Deterministic (the
  same nodes on every call, so a fixed-point map stays a fixed function) and of error
  ``O(log(points)^K / points)`` for smooth ``f``: in the tests, 2e-3 relative at ``2^14`` points in
  ``K = 8`` and 2e-4 absolute at ``2^16`` points in ``K = 3``, where Monte Carlo with as many points
  errs by about 1e-2. The rule for ``K > 4``, where a product rule of useful order is too large.

Both are differentiable in ``mean`` and ``cov`` (the nodes are fixed) and vmappable. Where the
integrand changes sharply across lines through the origin (a label's probability as a student aligns
with its teacher), :func:`line_panel_rule` places Gauss-Legendre panels at those lines in one or two
dimensions (polar coordinates in two).

**Orthant probabilities.** :func:`orthant_probability` is ``P(x > 0)`` componentwise, ``x ~ N(a, S)``
in ``n`` dimensions, the probability that a linear classifier's scores rank one class first. By the
separation of variables of Genz (1992, "Numerical computation of multivariate normal
probabilities", J. Comput. Graph. Stat. 1, 141), with ``S = L L^T``,

.. math:: P = \int_{[0,1]^{n-1}} \prod_{i=1}^{n} \Phi(-t_i(w))\, dw, \qquad
          t_i = -\frac{a_i + \sum_{j<i} L_{ij} z_j}{L_{ii}}, \quad
          z_j = -\Phi^{-1}\big((1 - w_j)\, \Phi(-t_j)\big),

a smooth integrand on the unit cube except for logarithmic singularities at its faces (the normal
quantile), flattened by the substitution ``w = s^3 (10 - 15 s + 6 s^2)`` per axis and integrated by a
product Gauss-Legendre rule of ``order`` nodes per axis in ``s``: exact (``Phi``) for ``n = 1``, a
one-dimensional integral for ``n = 2`` (three classes), accurate to about 1e-12 at ``order = 24``
for ``n = 2`` and to 1e-6 for ``n = 3`` (the tests).

**Proximal operators with a matrix step.** For a convex loss ``l(y, z)``, ``z in R^K``, and a
positive-definite step ``V`` (``K x K``),

.. math:: \mathrm{prox}(\omega) = \arg\min_z \tfrac12 (z - \omega)^T V^{-1} (z - \omega) + l(y, z),

the root of ``r(z) = z - omega + V grad l(y, z)``. :func:`prox_newton` finds it for any twice
differentiable convex ``l`` by Newton's method on that objective, globalised by a backtracking
(Armijo) line search on the objective itself: the Newton step ``-(I + V H)^{-1} r`` is a descent
direction (``H`` the Hessian of ``l``), and the search keeps the iteration from overshooting where
``V`` is large and ``l`` nearly linear (small regularisation), where an undamped Newton iteration
on the softmax cross-entropy oscillates or diverges. A point that does not reach a residual of
``sqrt(eps)`` of its scale in ``_NEWTON_STEPS`` steps is returned as NaN, never as a number. The
derivative is the implicit function theorem on ``r = 0`` (a ``custom_jvp``):
``dz = -(I + V H)^{-1} (dr at fixed z)``, to any order, never through the iterations. Its Jacobian in
``omega``, ``(I + V H)^{-1}``, is :func:`prox_jacobian`.

:func:`cross_entropy` is the softmax cross-entropy ``l(y, z) = -y.z + logsumexp(z)`` of a label
vector ``y`` (one-hot, or any probability vector) and :func:`square_prox` the closed form for
``l = |y - z|^2 / 2``: ``(I + V)^{-1} (omega + V y)``. These functions act on one point (``omega`` of
shape ``(K,)``, ``V`` of shape ``(K, K)``); ``jax.vmap`` them over points.

**Tilted Gaussian moments.** For a likelihood ``P(y | z)`` of ``K`` fields ``z ~ N(mean, cov)``,
:func:`gaussian_tilted_moments` returns ``log Z`` (``Z = E P(y | z)``), the posterior mean
``E[z | y]`` and second moment ``E[z z^T | y]`` on the product Gauss-Hermite rule (``z = mean + L u``),
in log space so that a sharp likelihood underflows nowhere. Where the likelihood is Gaussian,
``y ~ N(a + b z_K, noise)``, with ``a`` and ``b`` functions of the other fields and ``b`` taking one
value for ``z_K > 0`` and another for ``z_K < 0`` (sums, products, staircases of fields, differences of
their absolute values), :func:`piecewise_linear_tilted_moments` integrates ``z_K`` exactly given the
others (:func:`half_line_moments`: a Gaussian product restricted to a half-line) and the other ``K - 1``
fields on the product rule: ``order^(K-1)`` nodes, and no node spacing to compare with the noise's
width along ``z_K``.

**Small linear systems.** The matrices of these kernels are ``K x K`` with ``K`` of a few units, one
per quadrature node and grid point. :func:`small_solve` solves them by Gaussian elimination with
partial pivoting unrolled while tracing: elementwise operations that XLA fuses with their
neighbours, where ``jnp.linalg.solve`` calls LAPACK once per matrix of the batch. Besides being
slower on batches of tiny matrices, those calls can deadlock on the CPU (jaxlib 0.10): a LAPACK
call on a large enough batch splits it over XLA's intra-op thread pool and, running on a worker of
that pool, waits for the pieces; when as many such calls run at once as the pool has threads (two
on a 2-core machine), every worker waits and none is left to run the pieces. A vmapped solve of
:class:`~hdtheory.Mixture` over 50 grid points hung this way, forever and at 0% CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr, ndtri

from .quadrature import hermite_rule, legendre_panels, panel_rule

_RULES = ("product", "sobol")


def _sqrt0(x):
    """``sqrt(max(x, 0))`` with a finite derivative at 0 (a zero there), for degenerate covariances."""
    tiny = jnp.finfo(jnp.result_type(x, float)).tiny
    positive = x > tiny
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def psd_cholesky(cov):
    """A lower-triangular ``L`` with ``L L^T = cov`` for a positive semi-definite ``cov`` (small n).

    Zero pivots (a variable that is a linear combination of earlier ones) give a zero column,
    so singular covariances are fine. ``cov`` has shape ``(..., n, n)``.
    """
    n = cov.shape[-1]
    scale = jnp.max(jnp.abs(jnp.diagonal(cov, axis1=-2, axis2=-1)), axis=-1)
    tol = 64 * jnp.finfo(cov.dtype).eps * scale
    cols = [[None] * n for _ in range(n)]
    for j in range(n):
        pivot = cov[..., j, j] - sum(cols[j][k] ** 2 for k in range(j))
        ok = pivot > tol
        root = _sqrt0(jnp.where(ok, pivot, 0.0))
        cols[j][j] = root
        safe = jnp.where(ok, root, 1.0)
        for i in range(j + 1, n):
            off = cov[..., i, j] - sum(cols[i][k] * cols[j][k] for k in range(j))
            cols[i][j] = jnp.where(ok, off / safe, 0.0)
    zero = jnp.zeros_like(cov[..., 0, 0])
    rows = [jnp.stack([cols[i][j] if j <= i else zero for j in range(n)], -1) for i in range(n)]
    return jnp.stack(rows, -2)


_SMALL = 6
"""Systems up to this size are solved by :func:`small_solve`'s unrolled elimination."""


def small_solve(A, b):
    """``A^{-1} b`` for a small non-singular ``A`` (``(..., n, n)``), ``b`` of shape ``(..., n)`` or
    ``(..., n, m)``: Gaussian elimination with partial pivoting, unrolled for ``n <= 6`` (no LAPACK
    call; see the module docstring), ``jnp.linalg.solve`` beyond."""
    n = A.shape[-1]
    vector = b.ndim == A.ndim - 1
    if n > _SMALL:
        return jnp.linalg.solve(A, b[..., None])[..., 0] if vector else jnp.linalg.solve(A, b)
    B = b[..., None] if vector else b
    dtype = jnp.result_type(A, B)
    # The rows of A and of B apart: B only ever gets combinations whose coefficients come from A, so
    # that the solve stays linear in b (reverse mode transposes it).
    a = [A[..., i, :].astype(dtype) for i in range(n)]
    c = [B[..., i, :].astype(dtype) for i in range(n)]
    for k in range(n):
        if k < n - 1:
            p = jnp.argmax(jnp.stack([jnp.abs(row[..., k]) for row in a[k:]], -1), -1)[..., None]
            for rows in (a, c):
                pivot = rows[k]
                for j in range(1, n - k):
                    pivot = jnp.where(p == j, rows[k + j], pivot)
                rows[k:] = [pivot] + [jnp.where(p == j, rows[k], rows[k + j]) for j in range(1, n - k)]
        for i in range(k + 1, n):
            factor = a[i][..., k : k + 1] / a[k][..., k : k + 1]
            a[i], c[i] = a[i] - factor * a[k], c[i] - factor * c[k]
    x = [None] * n
    for i in reversed(range(n)):
        acc = c[i]
        for j in range(i + 1, n):
            acc = acc - a[i][..., j : j + 1] * x[j]
        x[i] = acc / a[i][..., i : i + 1]
    X = jnp.stack(x, -2)
    return X[..., 0] if vector else X


def small_inv(A):
    """``A^{-1}`` for a small non-singular ``A`` by :func:`small_solve`."""
    return small_solve(A, jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape))


def product_rule(n: int, order: int, dtype):
    """Nodes ``(order^n, n)`` and weights ``(order^n,)`` of the product Gauss-Hermite rule."""
    z, w = hermite_rule(order, dtype)
    grid = jnp.stack(jnp.meshgrid(*([z] * n), indexing="ij"), -1).reshape(-1, n)
    weights = jnp.prod(jnp.stack(jnp.meshgrid(*([w] * n), indexing="ij"), -1).reshape(-1, n), -1)
    return grid, weights


_LINE_EDGES = (1.0, 4.0, 16.0)
_RADIAL_EDGES = (0.5, 1.5, 3.0, 5.0, 9.0)


def line_panel_rule(normals, widths, order: int = 8):
    r"""Nodes ``(N, n)`` and weights ``(N,)`` for ``E f(xi)``, ``xi ~ N(0, I_n)``, ``n`` = 1 or 2, where
    ``f`` changes sharply across lines through the origin.

    ``normals`` ``(J, n)`` are the lines' normals and ``widths`` ``(J,)`` the distances over which
    ``f`` changes across them (a label probability ``Phi(nu.xi / w)``, say): a product rule in any
    fixed coordinates cannot resolve a transition narrower than its node spacing. For ``n = 1`` the
    rule is :func:`hdtheory.kernels.panel_rule` with edges at ``0``, ``+-c w_j`` and the Gaussian's
    scales ``+-{0.5, 1.5, 3, 5, 9}``; for ``n = 2`` it
    is polar, ``xi = r (cos theta, sin theta)``: Gauss-Legendre panels in ``theta`` with edges at the
    lines' directions and at angular distances ``c w_j / r`` from them, and in ``r`` (density
    ``r exp(-r^2 / 2)``) with edges at ``c min_j w_j`` and at the Gaussian's scales
    ``{0.5, 1.5, 3, 5, 9}``, for ``c`` in ``{1, 4, 16}``; ``order`` nodes per panel. Nodes and weights
    are differentiable in ``normals`` and ``widths``.
    """
    normals, widths = jnp.asarray(normals), jnp.asarray(widths)
    n, dtype = normals.shape[-1], jnp.result_type(normals, widths, float)
    scales = jnp.asarray(_LINE_EDGES, dtype)
    if n == 1:
        edges = jnp.concatenate([jnp.asarray((0.0,) + _RADIAL_EDGES, dtype), (widths[:, None] * scales).ravel()])
        z, w = panel_rule(jnp.concatenate([edges, -edges]), order)
        return z[:, None], w
    if n != 2:
        raise ValueError(f"line_panel_rule works in 1 or 2 dimensions, got {n}")
    # Radial panels: Gauss-Legendre in r on [0, 10] with the density r exp(-r^2 / 2).
    r_edges = jnp.concatenate(
        [jnp.asarray((0.0, 10.0) + _RADIAL_EDGES, dtype), jnp.clip(jnp.min(widths) * scales, 0.0, 10.0)]
    )
    r, w_r = legendre_panels(r_edges, order)
    w_r = w_r * r * jnp.exp(-0.5 * r**2)
    # Angular panels at each radius: the lines' directions (the normal's angle +- pi/2) and the
    # transition's edges about them, wrapped into [0, 2 pi).
    direction = jnp.arctan2(normals[:, 1], normals[:, 0]) + 0.5 * jnp.pi
    offsets = jnp.concatenate([jnp.zeros(1, dtype), scales, -scales])  # (E,)
    spread = jnp.minimum(widths[None, :, None] * offsets / jnp.maximum(r[:, None, None], 1e-300), jnp.pi / 2)
    angles = direction[None, :, None] + spread  # (R, J, E), and the opposite ray of each line
    angles = jnp.concatenate([angles, angles + jnp.pi], axis=1).reshape(r.shape[0], -1)
    angles = jnp.mod(angles, 2 * jnp.pi)
    bounds = jnp.broadcast_to(jnp.asarray([0.0, 2 * jnp.pi], dtype), (r.shape[0], 2))
    theta, w_theta = legendre_panels(jnp.concatenate([bounds, angles], axis=1), order)  # (R, T)
    nodes = jnp.stack([r[:, None] * jnp.cos(theta), r[:, None] * jnp.sin(theta)], axis=-1).reshape(-1, 2)
    weights = (w_r[:, None] * w_theta / (2 * jnp.pi)).reshape(-1)
    return nodes, weights


@functools.lru_cache(maxsize=None)
def _sobol(n: int, points: int) -> np.ndarray:
    from scipy.special import ndtri as normal_quantile
    from scipy.stats import qmc

    u = qmc.Sobol(d=n, scramble=False).random(points)
    return normal_quantile(np.mod(u + 0.5 / points, 1.0))


def sobol_rule(n: int, points: int, dtype):
    """Nodes ``(points, n)`` and equal weights of the shifted Sobol rule for ``N(0, I_n)``."""
    if points < 2 or points & (points - 1):
        raise ValueError(f"points must be a power of two >= 2, got {points!r}")
    nodes = jnp.asarray(_sobol(int(n), int(points)), dtype)
    return nodes, jnp.full((points,), 1.0 / points, dtype)


def _nodes(n: int, order: int, dtype):
    """:func:`product_rule`, with the single node of weight one in zero dimensions."""
    if n == 0:
        return jnp.zeros((1, 0), dtype), jnp.ones((1,), dtype)
    return product_rule(n, order, dtype)


def _tilted(log_weight, first, second, scale=None):
    """``(log Z, E[z], E[z z^T])`` of a discrete measure with log weights ``(N,)``, given per node the
    conditional first ``(N, K)`` and second ``(N, K, K)`` moments.

    ``scale`` (``(N,)``, ``>= 0``) multiplies the weights as numbers, not through its log: a factor
    that reaches 0 (a likelihood at the edge of its range) keeps the derivative of the weight it
    multiplies, where ``log(scale)``'s would be ``inf`` times 0. The shift that keeps the exponentials
    finite is held constant (it cancels from every output); exponents are capped at the largest finite
    one, which moves a value only where a factor is below the smallest normal number.
    """
    if scale is None:
        log_Z = jax.nn.logsumexp(log_weight)
        p = jnp.exp(log_weight - log_Z)
    else:
        shift = jnp.max(jax.lax.stop_gradient(log_weight) + jnp.log(jax.lax.stop_gradient(scale)))
        largest = float(np.log(np.finfo(log_weight.dtype).max))
        weight = jnp.exp(jnp.minimum(log_weight - shift, largest)) * scale
        total = jnp.sum(weight)
        log_Z, p = shift + jnp.log(total), weight / total
    return log_Z, p @ first, jnp.einsum("n,nij->ij", p, second)


def gaussian_tilted_moments(log_likelihood, mean, cov, order: int = 16):
    r"""``(log Z, E[z | y], E[z z^T | y])`` for ``z ~ N(mean, cov)`` tilted by ``exp(log_likelihood(z))``.

    ``log_likelihood`` maps nodes ``(N, K)`` to ``(N,)``; ``Z = E exp(log_likelihood(z))``. The
    product Gauss-Hermite rule of ``order`` nodes per axis; one point (``mean`` ``(K,)``, ``cov``
    ``(K, K)``), ``jax.vmap`` it over points. Accurate where the likelihood varies on scales
    larger than the nodes' spacing (about ``3 / sqrt(order)`` standard deviations).
    """
    mean, cov = jnp.asarray(mean), jnp.asarray(cov)
    dtype = jnp.result_type(mean, cov, float)
    u, w = _nodes(mean.shape[-1], order, dtype)
    z = mean + u @ psd_cholesky(cov.astype(dtype)).T
    return _tilted(jnp.log(w) + log_likelihood(z), z, z[:, :, None] * z[:, None, :])


def half_line_moments(y, a, slopes, mean, var, noise):
    r"""The Gaussian field ``t ~ N(mean, var)`` seen through ``y ~ N(a + b t, noise)``, ``b = slopes[0]``
    for ``t > 0`` and ``slopes[1]`` for ``t < 0``: per half-line ``h`` (the last axis, positive first),
    ``log`` of ``int_h N(t; mean, var) N(y; a + b_h t, noise) dt`` and the conditional moments
    ``E[t | y, h]``, ``E[t^2 | y, h]``.

    On each half-line the product of the two Gaussians is ``N(y; a + b m0, P) N(t; m, v)`` with
    ``P = noise + b^2 var``, ``m = mean + var b (y - a - b mean) / P``, ``v = var noise / P``; its mass
    there is ``Phi(s m / sqrt(v))`` (``s = +-1``) and its moments those of a truncated Gaussian:
    ``E[t] = m + s sqrt(v) r``, ``E[t^2] = m^2 + v + s m sqrt(v) r``, ``r`` the inverse Mills ratio
    ``phi / Phi`` at ``s m / sqrt(v)``. Equal slopes give the Gaussian posterior exactly.
    """
    sign = jnp.asarray([1.0, -1.0], jnp.result_type(mean, float))
    b = jnp.stack(jnp.broadcast_arrays(*slopes), -1)
    a, y, mean, var = (jnp.asarray(x)[..., None] for x in (a, y, mean, var))
    P = noise + b**2 * var
    residual = y - a - b * mean
    m = mean + var * b * residual / P
    sd = jnp.sqrt(jnp.maximum(var * noise / P, jnp.finfo(P.dtype).tiny))
    x = sign * m / sd
    log_mass = log_ndtr(x)
    mills = jnp.exp(-0.5 * x**2 - 0.5 * jnp.log(2 * jnp.pi) - log_mass)
    log_Z = -0.5 * (residual**2 / P + jnp.log(2 * jnp.pi * P)) + log_mass
    first = m + sign * sd * mills
    second = m**2 + sd**2 + sign * m * sd * mills
    return log_Z, first, second


def zero_cut_rule(mean, L, width, order: int = 6, points=None, scales=_LINE_EDGES, gaussian=_RADIAL_EDGES, crossings=None):
    r"""Nodes ``u`` ``(N, n)`` and weights ``(N,)`` for ``E f(x)``, ``x = mean + L u ~ N(mean, L L^T)``,
    ``u ~ N(0, I_n)`` (``L`` lower triangular, ``n >= 0``), where ``f`` changes sharply, over a distance ``width``, as a
    coordinate ``x_i`` crosses zero (a slope ``x_1`` that vanishes, a kink of ``|x_1|``).

    Axis by axis, as in Genz's separation of variables: given ``u_1..u_{i-1}``, ``x_i = 0`` at
    ``u_i = -(mean_i + sum_{j<i} L_ij u_j) / L_ii``, and :func:`hdtheory.kernels.panel_rule` cuts
    ``u_i`` there, at ``+-{1, 4, 16} width_i / L_ii`` about it (``scales``; ``width`` a scalar or one per
    axis, ``(n,)``), and at the Gaussian's scales ``+-{0.5, 1.5, 3, 5, 9}`` (``gaussian``): ``18 order``
    nodes per axis by default, ``(18 order)^n`` in all; ``points`` (an array ``(P,)``) adds cuts where a
    coordinate crosses each of them too, ``7 P`` edges more. ``crossings`` (one tuple of values per
    axis) replaces zero and ``points``: ``x_i`` is cut where it crosses each of ``crossings[i]``, and
    an axis with none is cut at the Gaussian's scales alone. The nodes move
    with ``mean`` and ``L`` so that the cuts stay at ``x_i = 0``: the rule's sum is differentiable
    in them even where ``f`` jumps there (a sign), its derivative that of the integral.
    """
    dtype = jnp.result_type(mean, L, float)
    scales = jnp.asarray((0.0,) + tuple(scales) + tuple(-x for x in scales), dtype)
    gaussian = jnp.asarray(tuple(gaussian) + tuple(-x for x in gaussian), dtype)
    widths = jnp.broadcast_to(jnp.asarray(width, dtype), mean.shape[-1:])
    if crossings is None:
        shared = jnp.zeros(1, dtype) if points is None else jnp.concatenate([jnp.zeros(1, dtype), points])
        crossings = (shared,) * mean.shape[-1]
    u, w = jnp.zeros((1, 0), dtype), jnp.ones((1,), dtype)
    for i in range(mean.shape[-1]):
        # A vanishing L_ii puts every cut past the rule's bound; the floor's square must not underflow, or
        # the cuts' derivative is 0 / 0 there.
        diagonal = jnp.maximum(L[i, i], jnp.sqrt(jnp.finfo(dtype).tiny))
        cut = (jnp.asarray(crossings[i], dtype) - mean[i] - (u @ L[i, :i])[:, None]) / diagonal  # (N, P)
        edges = (cut[:, :, None] + scales * widths[i] / diagonal).reshape(cut.shape[0], cut.shape[1] * scales.shape[0])
        edges = jnp.concatenate([edges, jnp.broadcast_to(gaussian, (cut.shape[0], gaussian.shape[0]))], -1)
        ui, wi = panel_rule(edges, order)  # (N, P)
        P = ui.shape[-1]
        u = jnp.concatenate([jnp.repeat(u, P, axis=0), ui.reshape(-1, 1)], -1)
        w = (w[:, None] * wi).reshape(-1)
    return u, w


def sign_tilted_moments(y, flip, mean, cov, order: int = 6):
    r""":func:`gaussian_tilted_moments` for the label ``y = +-1`` of ``sign(z_1 z_2 ... z_K)`` flipped
    with probability ``flip``: ``z_K`` given the others integrated exactly on its two half-lines
    (the moments of a truncated Gaussian, :func:`half_line_moments` with zero slopes), the others on
    :func:`zero_cut_rule` (unit width; the likelihood jumps where a field crosses zero). The
    likelihoods ``1 - flip`` and ``flip`` multiply the half-lines' masses linearly, so that the
    derivative in ``flip`` at 0 is the one-sided one (a log of ``flip`` would be ``-inf`` there).
    """
    mean, cov = jnp.asarray(mean), jnp.asarray(cov)
    dtype = jnp.result_type(mean, cov, float)
    K = mean.shape[-1]
    L = psd_cholesky(cov.astype(dtype))
    u, w = zero_cut_rule(mean[: K - 1], L[: K - 1, : K - 1], jnp.ones((), dtype), order)
    head = mean[: K - 1] + u @ L[: K - 1, : K - 1].T
    centre = mean[K - 1] + u @ L[K - 1, : K - 1]
    zero = jnp.zeros_like(centre)
    log_mass, t1, t2 = half_line_moments(zero, zero, (zero, zero), centre, L[K - 1, K - 1] ** 2, 1.0)
    parity = jnp.sign(jnp.prod(head, -1))[:, None] * jnp.asarray([1.0, -1.0], dtype)  # label per half
    flip = jnp.asarray(flip, dtype)
    likelihood = jnp.where(parity * y > 0, 1 - flip, flip)
    return _assemble(w, head, log_mass + 0.5 * jnp.log(2 * jnp.pi), t1, t2, likelihood)


def _assemble(w, head, log_Z, t1, t2, scale=None):
    """:func:`_tilted` over the nodes of ``z'`` (weights ``w``) and the two half-lines of ``z_K``
    (log masses ``log_Z``, times ``scale`` where given)."""
    N, K = w.shape[0], head.shape[-1] + 1
    head = jnp.broadcast_to(head[:, None, :], (N, 2, K - 1)).reshape(2 * N, K - 1)
    t1, t2 = t1.reshape(-1), t2.reshape(-1)
    first = jnp.concatenate([head, t1[:, None]], -1)
    second = first[:, :, None] * first[:, None, :]
    second = second.at[:, K - 1, K - 1].set(t2)
    # Panels clipped to nothing at the rule's bound have weight 0, and a log of 0 a NaN derivative.
    log_w = jnp.log(jnp.maximum(w, jnp.finfo(w.dtype).tiny))
    scale = None if scale is None else jnp.broadcast_to(scale, log_Z.shape).reshape(-1)
    return _tilted((log_w[:, None] + log_Z).reshape(-1), first, second, scale)


def piecewise_linear_tilted_moments(y, split, noise, mean, cov, order: int = 6, points=None):
    r""":func:`gaussian_tilted_moments` for ``y ~ N(a + b z_K, noise)``, ``(a, b_pos, b_neg) = split(z')``
    of the first ``K - 1`` fields ``z'`` (nodes ``(N, K - 1)`` to three ``(N,)`` arrays), ``b = b_pos``
    for ``z_K > 0`` and ``b_neg`` below: ``z_K`` given ``z'`` integrated exactly
    (:func:`half_line_moments`), ``z'`` on :func:`zero_cut_rule` of width ``sqrt(noise)`` and
    ``order`` nodes per panel (the links of multi-index models, products and absolute values of
    fields, change character where a field crosses zero). Where the slopes differ, the posterior's
    mass moves between the half-lines where ``a(z') = y``, over a distance ``sqrt(noise)``: give those
    crossings as ``points`` (``+-y`` for ``a = |z_1|``).
    """
    mean, cov = jnp.asarray(mean), jnp.asarray(cov)
    dtype = jnp.result_type(mean, cov, float)
    K = mean.shape[-1]
    L = psd_cholesky(cov.astype(dtype))
    u, w = zero_cut_rule(mean[: K - 1], L[: K - 1, : K - 1], jnp.sqrt(noise), order, points)
    head = mean[: K - 1] + u @ L[: K - 1, : K - 1].T  # z'
    centre = mean[K - 1] + u @ L[K - 1, : K - 1]  # E[z_K | z']
    a, b_pos, b_neg = split(head)
    log_Z, t1, t2 = half_line_moments(y, a, (b_pos, b_neg), centre, L[K - 1, K - 1] ** 2, noise)
    return _assemble(w, head, log_Z, t1, t2)


def gaussian_expectation_nd(f, cov, order: int = 16, mean=None, rule: str = "product", points: int = 4096):
    r"""``E[f(x)]`` for ``x ~ N(mean, cov)``, ``cov`` of shape ``(..., n, n)``; see the module docstring.

    ``f`` maps an array ``(..., N, n)`` of nodes to ``(..., N)`` or ``(..., N, ...)`` (trailing axes are
    kept); ``mean`` (default 0) has shape ``(..., n)``. ``rule`` is ``"product"`` (``order`` nodes
    per axis) or ``"sobol"`` (``points`` nodes, a power of two).
    """
    cov = jnp.asarray(cov)
    n, dtype = cov.shape[-1], jnp.result_type(cov, float)
    if rule == "product":
        grid, weights = product_rule(n, order, dtype)
    elif rule == "sobol":
        grid, weights = sobol_rule(n, points, dtype)
    else:
        raise ValueError(f"rule must be one of {', '.join(_RULES)}, got {rule!r}")
    x = jnp.einsum("...ij,Nj->...Ni", psd_cholesky(cov.astype(dtype)), grid)
    if mean is not None:
        x = x + jnp.asarray(mean, dtype)[..., None, :]
    return jnp.moveaxis(f(x), cov.ndim - 2, -1) @ weights


def gaussian_expectation_2d(f, cov, order: int = 32, mean=(0.0, 0.0)):
    r"""``E[f(x1, x2)]`` for ``(x1, x2) ~ N(mean, cov)``: :func:`gaussian_expectation_nd` with the
    product rule, for an ``f`` of two arrays of shape ``(order, order)`` that returns an array with
    those two leading axes.
    """
    cov = jnp.asarray(cov)

    def on_grid(x):
        values = f(x[..., 0].reshape(order, order), x[..., 1].reshape(order, order))
        return values.reshape((order * order,) + values.shape[2:])

    return gaussian_expectation_nd(on_grid, cov, order, jnp.asarray(mean, jnp.result_type(cov, float)))


@functools.lru_cache(maxsize=None)
def _legendre01(order: int) -> tuple[np.ndarray, np.ndarray]:
    # Gauss-Legendre on [0, 1] after w = s^3 (10 - 15 s + 6 s^2), whose derivative 30 s^2 (1 - s)^2
    # flattens the logarithmic endpoint singularities of the normal quantile.
    x, w = np.polynomial.legendre.leggauss(order)
    s = 0.5 * (x + 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2), 0.5 * w * 30 * s**2 * (1 - s) ** 2


def orthant_probability(mean, cov, order: int = 24):
    r"""``P(x_i > 0 for all i)``, ``x ~ N(mean, cov)`` in ``n`` dimensions, ``cov`` positive definite.

    Genz's separation of variables on a product Gauss-Legendre rule of ``order`` nodes per axis
    over ``[0, 1]^{n-1}`` (see the module docstring). One point: ``mean`` ``(n,)``, ``cov``
    ``(n, n)``; ``jax.vmap`` it over points. Differentiable in both.
    """
    mean, cov = jnp.asarray(mean), jnp.asarray(cov)
    n = mean.shape[-1]
    dtype = jnp.result_type(mean, cov, float)
    L = jnp.linalg.cholesky(cov.astype(dtype))
    tiny = jnp.finfo(dtype).tiny
    if n > 1:
        x, w = _legendre01(int(order))
        grid = jnp.stack(jnp.meshgrid(*([jnp.asarray(x, dtype)] * (n - 1)), indexing="ij"), -1)
        grid = grid.reshape(-1, n - 1)
        weights = jnp.prod(
            jnp.stack(jnp.meshgrid(*([jnp.asarray(w, dtype)] * (n - 1)), indexing="ij"), -1), -1
        ).reshape(-1)
    else:
        grid, weights = jnp.zeros((1, 0), dtype), jnp.ones((1,), dtype)
    z = []
    product = jnp.ones(grid.shape[0], dtype)
    for i in range(n):
        shift = mean[i] + sum(L[i, j] * z[j] for j in range(i))
        upper = ndtr(shift / L[i, i])  # P(z_i > t_i) = Phi(-t_i)
        product = product * upper
        if i < n - 1:
            z.append(-ndtri(jnp.maximum((1.0 - grid[:, i]) * upper, tiny)))
    return jnp.sum(weights * product)


# Proximal operators with a matrix step.

_NEWTON_STEPS = 100
_BACKTRACKS = 60


def cross_entropy(y, z):
    """Softmax cross-entropy ``-y.z + logsumexp(z)`` of a label vector ``y`` (weights summing to 1)."""
    return -jnp.dot(y, z) + jax.nn.logsumexp(z)


def square_prox(y, omega, V):
    """``argmin_z (z - omega)^T V^{-1} (z - omega) / 2 + |y - z|^2 / 2 = (I + V)^{-1} (omega + V y)``."""
    eye = jnp.eye(omega.shape[-1], dtype=jnp.result_type(omega, V))
    return small_solve(eye + V, omega + V @ y)


def _newton(loss, y, omega, V):
    dtype = jnp.result_type(omega, V, float)
    eps = jnp.finfo(dtype).eps
    eye = jnp.eye(omega.shape[-1], dtype=dtype)
    grad = jax.grad(loss, argnums=1)
    hessian = jax.hessian(loss, argnums=1)
    # V is fixed through the iterations: one inverse for the objective and its slopes, which only
    # steer the line search (the residual, which decides convergence, does not use it).
    V_inv = small_inv(V)

    def objective(z, dz):
        """The objective at ``z``, its derivative along ``dz`` and that derivative's rounding scale."""
        d = z - omega
        Vd, g = V_inv @ d, grad(y, z)
        terms = jnp.abs(Vd) @ jnp.abs(dz) + jnp.abs(g) @ jnp.abs(dz)
        return 0.5 * d @ Vd + loss(y, z), (Vd + g) @ dz, terms

    # The residual's rounding floor: the terms of r, and the gradient's absolute rounding error
    # (of order eps) times the rows of V.
    V_rows = jnp.max(jnp.sum(jnp.abs(V), axis=-1))

    def residual(z):
        g = grad(y, z)
        terms = jnp.max(jnp.abs(z)) + jnp.max(jnp.abs(omega)) + jnp.max(jnp.abs(V @ g))
        return z - omega + V @ g, terms + V_rows

    def small(r, scale, factor):
        return jnp.max(jnp.abs(r)) <= factor * eps * (1.0 + scale)

    def running(carry):
        z, f, r, scale, i, stalled = carry
        return ~small(r, scale, 16.0) & (i < _NEWTON_STEPS) & ~stalled

    def step(carry):
        z, f, r, _, i, _ = carry
        dz = -small_solve(eye + V @ hessian(y, z), r)
        slope = (V_inv @ r) @ dz  # gradient of the objective . dz

        def too_long(search):
            t, f_t, slope_t, terms_t, k = search
            # Armijo's condition, with a rounding allowance on the scale of the objective's terms
            # (the cross-entropy is a difference of terms of size |z|), so that steps near the
            # optimum, whose decrease is below the precision of f, are taken.
            allowance = 64 * eps * (1.0 + jnp.abs(f) + jnp.max(jnp.abs(z)))
            armijo = f_t <= f + 1e-4 * t * slope + allowance
            # And no step far past the minimum along dz (the upper half of the strong Wolfe
            # condition): where V is large and the softmax saturated on both sides of its
            # transition, H ~ 0 and full Newton steps pass Armijo while bouncing across the
            # transition, 20 steps and more where 5 suffice.
            short = slope_t <= -0.9 * slope + 64 * eps * terms_t
            return ~(armijo & short) & (k < _BACKTRACKS)

        def halve(search):
            t, _, _, _, k = search
            return t / 2, *objective(z + t / 2 * dz, dz), k + 1

        t, f_new, _, _, _ = jax.lax.while_loop(too_long, halve, (jnp.ones((), dtype), *objective(z + dz, dz), 0))
        z_new = z + t * dz
        r_new, scale = residual(z_new)
        stalled = jnp.max(jnp.abs(t * dz)) <= eps * (1.0 + jnp.max(jnp.abs(z)))
        return z_new, f_new, r_new, scale, i + 1, stalled

    r0, scale0 = residual(omega)
    z, _, r, scale, _, _ = jax.lax.while_loop(
        running, step, (omega, objective(omega, omega)[0], r0, scale0, 0, jnp.zeros((), bool))
    )
    return jnp.where(small(r, scale, jnp.sqrt(1.0 / eps)), z, jnp.nan)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def prox_newton(loss, y, omega, V):
    r"""``argmin_z (z - omega)^T V^{-1} (z - omega) / 2 + loss(y, z)``; see the module docstring.

    ``loss(y, z)`` is a convex, twice differentiable function of ``z`` (shape ``(K,)``) given the
    label ``y`` (any pytree of floats); ``V`` is positive definite. NaN where Newton's method does not
    converge. Differentiable in ``y``, ``omega`` and ``V`` by the implicit function theorem.
    """
    omega, V = jnp.asarray(omega), jnp.asarray(V)
    return _newton(loss, y, omega, V)


@prox_newton.defjvp
def _prox_newton_jvp(loss, primals, tangents):
    y, omega, V = primals
    z = prox_newton(loss, y, omega, V)
    grad = jax.grad(loss, argnums=1)
    _, dr = jax.jvp(lambda y, omega, V: z - omega + V @ grad(y, z), primals, tangents)
    return z, -small_solve(prox_jacobian_inverse(loss, y, z, V), dr)


def prox_jacobian_inverse(loss, y, z, V):
    """``I + V H``, ``H`` the Hessian of the loss at ``z``: the inverse of ``d prox / d omega``."""
    H = jax.hessian(loss, argnums=1)(y, z)
    return jnp.eye(z.shape[-1], dtype=jnp.result_type(z, V)) + V @ H


def prox_jacobian(loss, y, z, V):
    """``d prox / d omega = (I + V H)^{-1}`` at the prox ``z`` (``H`` the Hessian of the loss at ``z``)."""
    return small_inv(prox_jacobian_inverse(loss, y, z, V))


def cross_entropy_prox(y, omega, V):
    """The proximal operator of :func:`cross_entropy` with step ``V`` (:func:`prox_newton`)."""
    return prox_newton(cross_entropy, y, omega, V)
