r"""The loss landscape of a committee machine in its first-layer weights (:class:`Committee`).

The population error ``eg`` of :mod:`~hdtheory.dynamics.committee` depends on the weights only
through the overlaps, so that the zeros of ``Committee(flow="gradient")``'s vector field are its
critical points. Whether a zero is a minimum, and along how many directions it is flat, is read
off the **Hessian of eg in the weights**, which the overlaps' Jacobian (``growth_rate`` of
:func:`hdtheory.steady_state`) does not give where two ReLU students are collinear: the arc-cosine
kernel ``kappa(u, v) = E[relu(u.x) relu(v.x)] = |u||v| (sin t + (pi - t) cos t) / (2 pi)``
(``t`` the angle between ``u`` and ``v``; Cho & Saul 2009) is ``|u||v| (pi - pi t^2 / 2 + t^3 / 3 + ...)``
near ``t = 0``: twice differentiable in the weights (``t^3``), not in the overlap ``cos t`` (it has a
``(1 - cos t)^(3/2)`` term). Collinear students are where the flat directions are: a student split
into two collinear ones of norms ``s |w|`` and ``(1 - s) |w|`` computes the same function for every
``s`` (relu is positively homogeneous), and the global minima of ``K > M`` students are all of that kind.

**Weights.** :func:`weights` builds weights with the state's overlaps in ``R^n``,
``n = M + K + extra``, in coordinates where a local field is ``u.x`` with ``x ~ N(0, I_n)`` (the
``1 / sqrt(d)`` absorbed: ``Q = W W^T``, ``R = W W*^T``, ``T = W* W*^T``): the teacher ``W* = L``
(``T = L L^T``), the students ``W = [R L^-T, C, 0]`` with ``C C^T = Q - R T^-1 R^T``. In ``R^d`` the
Hessian has the same eigenvalues as in ``R^n`` once ``extra >= 1`` (every direction orthogonal to all
weights has the block of the last coordinate); only their multiplicities grow with ``d``.

**Hessian.** :func:`hessian`: ``d^2 eg / dW^2``, a ``(K n, K n)`` matrix, with ``v = 1`` fixed and
``output="sum"``. For ReLU by forward-mode differentiation of the closed-form gradient
``grad_u kappa(u, v) = ((pi - t) v + |v_perp| u / |u|) / (2 pi)`` (``v_perp`` the part of ``v``
orthogonal to ``u``, ``t = atan2(|v_perp|, v.u / |u|)``), ``grad_{w_k} eg = sum_b c_k c_b
grad kappa(w_k, u_b)`` over all ``K + M`` rows ``u_b`` (``c = (1, ..., 1, -1, ..., -1)``), which is
exact at collinear students; for the other activations by autodiff of
:meth:`Committee.generalisation_error`.

**Counting zero eigenvalues.** Two kinds of directions leave ``eg`` unchanged at second order.

- Symmetries: rotations of the space orthogonal to the teacher. With ``r`` the rank of
  ``Q - R T^-1 R^T`` (the students' span beyond the teacher's) and ``N = n - M``, their orbit has
  dimension :func:`symmetry_dimension` ``= r (r - 1) / 2 + r (N - r)``.
- Flat directions: students collinear with one another. If the ``K`` students point in ``D``
  distinct directions, moving norm between collinear students keeps the function: a flat set of
  dimension :func:`flat_dimension` ``= K - D``. At a spurious minimum (residual ``f - y != 0``) the
  other relative motions of collinear students are curved: moving ``u_1 = s w`` and
  ``u_2 = (1 - s) w`` by ``+e p`` and ``-e p`` changes ``eg`` by
  ``e^2 p^T A p / (2 s (1 - s))`` with ``A = E[(f - y) delta(w.x) x x^T]``, the residual part of the
  unsplit student's diagonal block of the Hessian (which is ``I / 2 + A``); a negative eigenvalue of
  ``A`` makes the split point a saddle (Fukumizu & Amari 2000). At a global minimum (``f = y``) they
  are flat at second order too, and the Hessian is the Gauss-Newton matrix, whose null space is
  ``n (K - M)``-dimensional (the students on teacher ``m`` may move in any way that keeps their sum).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import ParameterError
from .committee import Committee, CommitteeState


def _check(theory: Committee, extra: int):
    if not isinstance(theory, Committee):
        raise ParameterError(f"the landscape is that of a Committee, got {type(theory).__name__}")
    if theory.output != "sum" or theory.geometry != "unconstrained":
        raise ParameterError("the landscape needs output='sum' and geometry='unconstrained'")
    if not (isinstance(extra, int) and extra >= 1):
        raise ParameterError(f"parameter 'extra' must be an integer >= 1, got {extra!r}")


def _factor(matrix):
    values, vectors = jnp.linalg.eigh(0.5 * (matrix + matrix.T))
    return vectors * jnp.sqrt(jnp.clip(values, 0.0))


def weights(theory: Committee, state: CommitteeState, extra: int = 1):
    """``(W, W_star)``: students ``(K, n)`` and teacher ``(M, n)`` with the state's overlaps, ``n = M + K + extra``."""
    _check(theory, extra)
    T, _ = theory._teacher()
    L = jnp.linalg.cholesky(T)
    span = jnp.linalg.solve(L, state.R.T).T  # R L^-T
    C = _factor(state.Q - span @ span.T)
    K, M = theory.K, theory.M
    W = jnp.concatenate([span, C, jnp.zeros((K, extra), C.dtype)], axis=1)
    W_star = jnp.concatenate([L, jnp.zeros((M, K + extra), C.dtype)], axis=1)
    return W, W_star


def _norm(u):
    """``|u|``, with derivative zero at ``u = 0`` (where it multiplies a vanishing factor below)."""
    square = jnp.sum(u**2)
    safe = jnp.where(square > 0, square, 1.0)
    return jnp.where(square > 0, jnp.sqrt(safe), 0.0)


def relu_kernel_gradient(u, v):
    """``grad_u E[relu(u.x) relu(v.x)]`` for ``x ~ N(0, I)``, exact at ``u`` parallel to ``v``."""
    size = _norm(u)
    unit = u / jnp.where(size > 0, size, 1.0)
    along = v @ unit
    perp = _norm(v - along * unit)
    angle = jnp.arctan2(perp, along)
    return ((math.pi - angle) * v + perp * unit) / (2 * math.pi)


def _relu_gradient(W, W_star, b):
    rows = jnp.concatenate([W, W_star])
    c = jnp.concatenate([jnp.ones(W.shape[0], W.dtype), -b])
    pairs = jax.vmap(jax.vmap(relu_kernel_gradient, (None, 0)), (0, None))(W, rows)  # (K, K+M, n)
    return jnp.einsum("b,kbn->kn", c, pairs)


def hessian(theory: Committee, state: CommitteeState, extra: int = 1) -> jax.Array:
    """The Hessian of ``eg`` in the students' weights of :func:`weights`, ``(K n, K n)``, ``v = 1``."""
    _check(theory, extra)
    return _hessian(theory, state, extra)


@eqx.filter_jit
def _hessian(theory: Committee, state: CommitteeState, extra: int) -> jax.Array:
    W, W_star = weights(theory, state, extra)
    _, b = theory._teacher()
    shape = W.shape
    if theory.activation == "relu":
        gradient = lambda w: _relu_gradient(w.reshape(shape), W_star, b).ravel()
        H = jax.jacfwd(gradient)(W.ravel())
    else:
        def eg(w):
            w = w.reshape(shape)
            overlaps = CommitteeState(Q=w @ w.T, R=w @ W_star.T, v=jnp.ones(shape[0], w.dtype))
            return theory.generalisation_error(overlaps)

        H = jax.hessian(eg)(W.ravel())
    return 0.5 * (H + H.T)


def symmetry_dimension(theory: Committee, state: CommitteeState, extra: int = 1, tol: float = 1e-8) -> int:
    """The dimension of the orbit of the rotations that fix the teacher, ``r (r - 1) / 2 + r (N - r)``."""
    _check(theory, extra)
    T, _ = theory._teacher()
    R, Q = np.asarray(state.R), np.asarray(state.Q)
    residual = Q - R @ np.linalg.solve(np.asarray(T), R.T)
    values = np.linalg.eigvalsh(0.5 * (residual + residual.T))
    r = int(np.sum(values > tol * max(1.0, np.max(np.abs(values)))))
    N = theory.K + extra
    return r * (r - 1) // 2 + r * (N - r)


def flat_dimension(state: CommitteeState, tol: float = 1e-6) -> int:
    """``K - D``: the students, less the number ``D`` of distinct directions they point in
    (``cos > 1 - tol`` counts as one direction; students of norm below ``tol`` are not counted)."""
    Q = np.asarray(state.Q)
    norms = np.sqrt(np.clip(np.diagonal(Q), 0.0, None))
    alive = np.where(norms > tol)[0]
    cosine = Q[np.ix_(alive, alive)] / np.outer(norms[alive], norms[alive])
    directions, seen = 0, np.zeros(len(alive), bool)
    for i in range(len(alive)):
        if not seen[i]:
            directions += 1
            seen |= cosine[i] > 1 - tol
    return len(alive) - directions
