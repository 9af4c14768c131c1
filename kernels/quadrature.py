r"""Gauss-Hermite quadrature for Gaussian expectations.

A rule of order ``K`` integrates ``E[f(z)]``, ``z ~ N(0, 1)``, exactly for polynomials of degree
``2K - 1``. Nodes and weights are computed once per (order, dtype) on the host, at trace time, so they
enter a compiled program as constants. :func:`panel_rule` is the alternative for integrands that are
smooth only piecewise: Gauss-Legendre panels between given edges. Expectations over several
correlated variables are in :mod:`~hdtheory.kernels.multivariate`. :func:`inverse_gamma_rule` integrates over
the heavy-tailed scale of elliptical data.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=None)
def _rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    # Golub-Welsch: the nodes are the eigenvalues of the Jacobi matrix of the probabilists' Hermite
    # polynomials (off-diagonal sqrt(k)), the weights the squared first components of the
    # eigenvectors. Stable at any order, unlike the three-term recurrence in hermegauss.
    off = np.sqrt(np.arange(1, order, dtype=float))
    nodes, vectors = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    weights = vectors[0] ** 2
    nodes = 0.5 * (nodes - nodes[::-1])  # exact symmetry
    weights = 0.5 * (weights + weights[::-1])
    return nodes, weights / weights.sum()


def hermite_rule(order: int, dtype=None) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""Nodes ``z_k`` and weights ``w_k`` with ``sum_k w_k f(z_k) ~ E[f(z)]``, ``z ~ N(0, 1)``.

    The weights sum to one. ``order`` is a Python int (it fixes array shapes).
    """
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"quadrature order must be a positive integer, got {order!r}")
    nodes, weights = _rule(int(order))
    dtype = dtype or jnp.result_type(float)
    return jnp.asarray(nodes, dtype), jnp.asarray(weights, dtype)


def gaussian_expectation(f, order: int = 64, mean=0.0, var=1.0):
    r"""``E[f(x)]`` for ``x ~ N(mean, var)`` by Gauss-Hermite quadrature of the given order.

    ``f`` maps an array of nodes to an array whose leading axis runs over the nodes; trailing axes
    are kept. ``mean`` and ``var`` are scalars and may be traced (the result is differentiable in
    them).
    """
    mean, var = jnp.asarray(mean), jnp.asarray(var)
    z, w = hermite_rule(order, jnp.result_type(mean, var, float))
    values = f(mean + jnp.sqrt(var) * z)
    return jnp.tensordot(w, values, axes=(0, 0))


@functools.lru_cache(maxsize=None)
def _legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(order)


def legendre_panels(edges, order: int):
    r"""Nodes ``x`` and weights ``w`` with ``sum w f(x) ~ int f(x) dx`` from the smallest to the largest
    of ``edges``: a Gauss-Legendre rule of ``order`` nodes on each panel between consecutive edges.

    ``edges`` has shape ``(..., E)`` (any order); the result has shape ``(..., (E - 1) * order)``.
    Nodes and weights are differentiable in the edges.
    """
    x, w = _legendre(int(order))
    edges = jnp.sort(jnp.asarray(edges), axis=-1)
    x, w = jnp.asarray(x, edges.dtype), jnp.asarray(w, edges.dtype)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    flat = edges.shape[:-1] + (-1,)
    nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
    return nodes.reshape(flat), (0.5 * (hi - lo) * w).reshape(flat)


def mode_rule(head: int, stop: float, panels: int, order: int = 8) -> tuple[np.ndarray, np.ndarray]:
    r"""Mode positions ``k_j`` and multiplicities ``w_j`` with ``sum_j w_j f(k_j) ~ sum_k f(k)``, the
    sum over the modes ``k = 1, 2, ...`` of a spectrum up to ``k = stop - 1/2``.

    The first ``head`` modes are summed exactly (``w = 1``), the rest as the integral of ``f`` over
    ``[head + 1/2, stop]`` (the midpoint correction of Euler-Maclaurin: mode ``k`` stands for
    ``[k - 1/2, k + 1/2]``) by ``panels`` Gauss-Legendre panels of ``order`` nodes of equal width
    in ``log k``, exact for a power law up to the rule's order and accurate for anything smooth on
    the scale of the panels. ``head + panels * order`` nodes, NumPy float64 (static).
    """
    k_head = np.arange(1.0, head + 1)
    start = head + 0.5
    x, w = _legendre(int(order))
    width = math.log(stop / start) / panels
    t = (np.arange(panels)[:, None] + 0.5 * (x + 1)) * width
    k_tail = start * np.exp(t.ravel())
    w_tail = 0.5 * width * np.tile(w, panels) * k_tail
    return np.concatenate([k_head, k_tail]), np.concatenate([np.ones(head), w_tail])


def modes_up_to(d, head: int, panels: int, order: int = 8) -> tuple[jax.Array, jax.Array]:
    r"""Mode positions ``k_j`` and multiplicities ``w_j`` with ``sum_j w_j f(k_j) ~ sum_{k=1}^{d} f(k)``
    for a ``d`` that may be traced (differentiable in it): :func:`mode_rule` with ``stop = d + 1/2``.

    The modes ``k <= min(d, head)`` are summed exactly, the rest as the integral of ``f`` over
    ``[head + 1/2, d + 1/2]`` (empty for ``d <= head``) on ``panels`` Gauss-Legendre panels of equal
    width in ``log k`` (:func:`legendre_panels`). ``head + panels * order`` nodes whatever ``d``, so
    that one compiled program serves every ``d``.
    """
    d = jnp.asarray(d)
    dtype = jnp.result_type(d, float)
    k_head = jnp.arange(1, head + 1, dtype=dtype)
    start = math.log(head + 0.5)
    stop = jnp.maximum(jnp.log(d + 0.5), start)
    edges = start + (stop - start) * jnp.linspace(0.0, 1.0, panels + 1, dtype=dtype)
    t, w = legendre_panels(edges, order)
    k_tail = jnp.exp(t)
    return jnp.concatenate([k_head, k_tail]), jnp.concatenate([(k_head <= d).astype(dtype), w * k_tail])


def panel_rule(edges, order: int, bound: float = 10.0):
    r"""Nodes ``z`` and weights ``w`` with ``sum w f(z) ~ E[f(z)]``, ``z ~ N(0, 1)``, by panels.

    The line is cut at ``edges`` (any order, clipped to ``[-bound, bound]``; the mass beyond is below
    1e-23) and each panel gets a Gauss-Legendre rule of ``order`` nodes applied to ``f`` times the
    normal density (:func:`legendre_panels`). For an ``f`` that is smooth between the edges but not
    across them (a kink, or a transition much narrower than the Gaussian), this converges
    exponentially where a Gauss-Hermite rule converges slowly. Nodes and weights are differentiable
    in the edges. ``edges`` has shape ``(..., E)``; the result has shape ``(..., (E + 1) * order)``.
    """
    edges = jnp.asarray(edges)
    limits = jnp.broadcast_to(jnp.asarray([-bound, bound], edges.dtype), edges.shape[:-1] + (2,))
    z, w = legendre_panels(jnp.concatenate([limits, jnp.clip(edges, -bound, bound)], axis=-1), order)
    return z, w * jnp.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


_GAUSSIAN_EDGES = (0.0, 1.5, -1.5, 3.5, -3.5, 6.0, -6.0)
_TRANSITION_OFFSETS = (0.0, 1.0, -1.0, 4.0, -4.0, 16.0, -16.0)


def transition_rule(center, width, order: int, dtype=None):
    """A panel rule for ``E f(xi)``, ``xi ~ N(0, 1)``, with ``f`` switching about each of ``center``
    (shape ``(..., C)``) over ``width`` (same shape); the leading axes are kept.

    The edges are the Gaussian's scales ``0, +-1.5, +-3.5, +-6`` and ``c + {0, +-1, +-4, +-16} w``
    for each centre ``c`` and width ``w`` (an infinite centre or width is moved out of the way),
    ``order`` Gauss-Legendre nodes a panel (:func:`panel_rule`). Not differentiated (an expectation
    does not depend on its rule)."""
    dtype = dtype or jnp.result_type(center, width, float)
    center = jnp.nan_to_num(jnp.asarray(center, dtype), posinf=1e3, neginf=-1e3)
    width = jnp.minimum(jnp.nan_to_num(jnp.asarray(width, dtype), posinf=1e3), 1e3)
    offsets = jnp.asarray(_TRANSITION_OFFSETS, dtype)
    cuts = (center[..., None] + width[..., None] * offsets).reshape(center.shape[:-1] + (-1,))
    fixed = jnp.broadcast_to(jnp.asarray(_GAUSSIAN_EDGES, dtype), center.shape[:-1] + (len(_GAUSSIAN_EDGES),))
    edges = jax.lax.stop_gradient(jnp.concatenate([fixed, cuts], axis=-1))
    return panel_rule(edges, order)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def smoothed_expectation(f, var, args, nodes, weights):
    r"""``E[f(sqrt(var) xi, args)]``, ``xi ~ N(0, 1)``, differentiable in ``var`` down to ``var = 0``.

    ``nodes`` and ``weights`` are a rule for ``E`` over ``xi`` (:func:`hermite_rule`,
    :func:`panel_rule`); they are not differentiated (the expectation does not depend on the rule).
    ``f(omega, args)`` acts elementwise on an array of ``omega``. Differentiating through
    ``sqrt(var)`` would give ``inf * 0`` at ``var = 0``; the derivative is instead the heat equation
    (Stein's lemma twice): ``d/dvar E f(sqrt(var) xi) = E f''(sqrt(var) xi) / 2``, itself computed by
    this function, so that derivatives of every order stay finite. The derivative in ``args`` is
    that of ``f``.

    The value depends on ``var`` even where ``f`` does not on ``omega`` (``f`` linear or constant in
    it, as the derivatives of a Gaussian prior's posterior mean are): under ``vmap`` over ``var`` it
    is then batched as its tangent ``E f'' / 2 dvar`` is, which jax requires of a ``custom_jvp``
    whose batched rule is called later, when a ``jit``-compiled ``vmap`` is differentiated
    (jax-ml/jax#16374).
    """
    omega = jnp.sqrt(var) * nodes
    return jnp.sum(weights * f(omega, args)) + 0.0 * var


def _d_omega(f):
    def df(omega, args):
        return jax.jvp(lambda o: f(o, args), (omega,), (jnp.ones_like(omega),))[1]

    return df


@smoothed_expectation.defjvp
def _smoothed_expectation_jvp(f, primals, tangents):
    var, args, nodes, weights = primals
    dvar, dargs, _, _ = tangents
    value = smoothed_expectation(f, var, args, nodes, weights)
    d2 = _d_omega(_d_omega(f))
    along_var = 0.5 * smoothed_expectation(d2, var, args, nodes, weights)

    def along_args(omega, both):
        a, da = both
        return jax.jvp(lambda a: f(omega, a), (a,), (da,))[1]

    tangent = along_var * dvar + smoothed_expectation(along_args, var, (args, dargs), nodes, weights)
    return value, tangent


def inverse_gamma_rule(shape, scale, order: int):
    r"""Nodes ``omega_k`` and weights ``w_k`` with ``sum_k w_k f(omega_k) ~ E f(omega)``,
    ``omega ~ InvGamma(shape, scale)``: density ``scale^a omega^{-a-1} e^{-scale / omega} / Gamma(a)``,
    ``a = shape > 1``.

    The law has a power-law tail ``omega^{-a-1}``, and the expectations of the elliptical models
    carry integrands that grow up to linearly in ``omega`` (``E omega`` is finite for ``a > 1``
    only) with features of width of order one in ``x = log omega`` wherever the problem has a scale.
    The rule integrates in ``x``, whose density ``exp(-a x - scale e^{-x})`` (up to a constant) peaks
    at ``x_0 = log(scale / a)`` with width ``s = 1 / sqrt(a)``, by Gauss-Legendre panels of ``order``
    nodes (:func:`legendre_panels`): 9 panels across the peak (edges at ``x_0 + s {0, +-1, +-2, +-3, +-5}``
    and at ``t = scale / omega = a + 10 sqrt(a) + 40``, below which the mass is under 1e-20), 12
    panels of width at most 2.5 beyond it (the features of the integrand), and 8 panels from there
    to ``x_1``, where the tail of ``E omega`` left out is below 1e-17 of it,
    ``(a - 1) (x_1 - log scale) = 39 - log Gamma(a)``, capped at ``log(max float) / 4`` (177 in
    float64). For ``a`` near 1 the tail beyond the cap holds a share ``~ exp(-(a - 1) 177)`` of
    ``E omega`` (2e-8 at ``a = 1.1``, most of it as ``a -> 1``): one more node at the cap carries it,
    with the weight that makes ``E omega`` exact, so that integrands growing linearly (whose ratio to
    ``omega`` has settled by then) stay exact, and bounded ones see a weight below ``1 / e^177``.
    29 panels in all, ``29 order + 1`` nodes. At ``order = 8`` expectations of smooth
    functions of ``log omega`` are accurate to ~1e-12 (against SciPy ``quad``). Nodes and weights are differentiable in ``shape`` and ``scale``; the weights sum to one.
    """
    shape = jnp.asarray(shape, jnp.result_type(shape, scale, float))
    scale = jnp.asarray(scale, shape.dtype)
    log_scale, width = jnp.log(scale), 1 / jnp.sqrt(shape)
    peak = log_scale - jnp.log(shape)
    cap = math.log(jnp.finfo(shape.dtype).max) / 4
    low = log_scale - jnp.log(shape + 10 * jnp.sqrt(shape) + 40)
    high = jnp.minimum(log_scale + (39 - jax.scipy.special.gammaln(shape)) / (shape - 1), cap)
    bulk = peak + width * jnp.asarray([-5.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0], shape.dtype)
    start = jnp.minimum(bulk[-1], high)
    middle = jnp.minimum(start + 30.0, high)
    fractions = lambda k: jnp.linspace(0.0, 1.0, k + 1, dtype=shape.dtype)[1:]
    edges = jnp.concatenate([
        jnp.minimum(low, bulk[:1]), jnp.clip(bulk, low, high),
        start + (middle - start) * fractions(12), middle + (high - middle) * fractions(8),
    ])
    x, w = legendre_panels(edges, order)
    log_density = -shape * (x - log_scale) - jnp.exp(log_scale - x) - jax.scipy.special.gammaln(shape)
    w = w * jnp.exp(log_density)
    w, omega, top = w / jnp.sum(w), jnp.exp(x), jnp.exp(high)
    # The tail beyond the last edge, lumped there with the weight that makes E omega exact.
    lump = jnp.maximum(scale / (shape - 1) - jnp.sum(w * omega), 0.0) / top
    return jnp.append(omega, top), jnp.append(w * (1 - lump), lump)
