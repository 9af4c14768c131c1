r"""Losses of ``K`` class scores, shared by the models with matrix order parameters
(:mod:`hdtheory.models.mixture`, :mod:`hdtheory.models.multiclass`).

A linear classifier with ``K`` classes has scores ``z in R^K`` and a loss ``l(c, z)`` of the class
``c``:

- ``cross-entropy``: ``l = -z_c + logsumexp(z)``. It does not see ``1.z``, so the minimiser of a
  ridge-penalised risk has ``1^T W = 0``: the theory works in the ``P = K - 1`` coordinates
  ``u = S^T z`` (``S`` an orthonormal basis of the complement of ``1``, :func:`complement_basis`)
  and ``z = S u``. Its proximal operator is a globalised Newton solve with an implicit derivative
  (:func:`hdtheory.kernels.prox_newton`).
- ``square``: ``l = |e_c - z|^2 / 2`` (one-hot targets), ``P = K`` coordinates, or ``K - 1`` with an
  unpenalised intercept, which fits ``1.z = 1`` (``centred``): targets ``S^T e_c``. Its prox is
  ``(I + V)^{-1} (omega + V y)``.
- ``logistic`` (``K = 2``): one score, ``y = +1`` for class 1 and ``-1`` for class 2,
  ``l = log(1 + exp(-y z))``.

:meth:`ClassScores.node` gives at a field ``omega`` (``P``) and a matrix step ``V`` (``P x P``) the
three quantities every replica channel needs: ``f = -grad l(c, h)`` at ``h = prox_{V l(c, .)}(omega)``,
``-d f / d omega = (I + H V)^{-1} H`` (``H`` the Hessian of ``l`` at ``h``) and ``l(c, h)``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..kernels.multivariate import prox_newton, psd_cholesky, small_solve


def complement_basis(K: int) -> np.ndarray:
    """An orthonormal basis ``(K, K - 1)`` of the complement of the all-ones vector."""
    q, _ = np.linalg.qr(np.concatenate([np.ones((K, 1)), np.eye(K)[:, : K - 1]], axis=1))
    return q[:, 1:]


def ranking_differences(K: int) -> np.ndarray:
    """``D`` (``K, K - 1, K``): row ``k`` of ``D[c]`` is ``e_c - e_k``, ``k != c``; class ``c`` ranks
    first when ``D[c] z > 0`` componentwise."""
    return np.stack([np.delete(np.eye(K)[c] - np.eye(K), c, axis=0) for c in range(K)])


def cholesky_coordinates(A) -> jax.Array:
    """The lower triangle of the Cholesky factor of a positive-definite ``A`` (``P x P``) with a log
    diagonal: unconstrained coordinates for a covariance."""
    rows, cols = np.tril_indices(A.shape[-1])
    L = psd_cholesky(A)
    diagonal = jnp.diagonal(L)
    return (L - jnp.diag(diagonal) + jnp.diag(jnp.log(diagonal)))[rows, cols]


def from_cholesky_coordinates(entries, P: int) -> jax.Array:
    """The inverse of :func:`cholesky_coordinates`: ``L L^T``."""
    rows, cols = np.tril_indices(P)
    L = jnp.zeros((P, P), entries.dtype).at[rows, cols].set(entries)
    diagonal = jnp.diagonal(L)
    L = L - jnp.diag(diagonal) + jnp.diag(jnp.exp(diagonal))
    return L @ L.T


def _reduced_cross_entropy(label, u):
    onehot, basis = label
    return kernels.cross_entropy(onehot, basis @ u)


def _one_hot_square(label, z):
    return 0.5 * jnp.sum((label - z) ** 2)


def _logistic(label, z):
    return jnp.logaddexp(0.0, -label * z[0])


class ClassScores(eqx.Module):
    """The label structure of a ``K``-class loss in the theory's ``P`` coordinates."""

    K: int = eqx.field(static=True)
    loss: str = eqx.field(static=True)
    centred: bool = eqx.field(static=True)
    """Whether the theory works in the ``K - 1`` coordinates orthogonal to ``1`` (the cross-entropy,
    and the square loss with an intercept)."""
    dtype: jnp.dtype = eqx.field(static=True)

    @property
    def outputs(self) -> int:
        """``P``: the number of coordinates the theory works in."""
        return self.K - 1 if self.centred else {"square": self.K, "logistic": 1}[self.loss]

    def basis(self) -> jax.Array:
        """``S`` (``K_out x P``): the scores are ``z = S u`` in the theory's coordinates ``u``."""
        if self.centred:
            return jnp.asarray(complement_basis(self.K), self.dtype)
        return jnp.eye(self.outputs, dtype=self.dtype)

    def labels(self):
        """The per-class labels, a pytree with a leading class axis, and the loss function."""
        eye = jnp.eye(self.K, dtype=self.dtype)
        if self.loss == "cross-entropy":
            return (eye, jnp.broadcast_to(self.basis(), (self.K, self.K, self.K - 1))), _reduced_cross_entropy
        if self.loss == "square":
            return eye @ self.basis(), _one_hot_square  # the targets S^T e_c
        return jnp.asarray([1.0, -1.0], self.dtype), _logistic

    def prox(self, label, omega, V):
        if self.loss == "square":
            return kernels.square_prox(label, omega, V)
        if self.loss == "logistic":
            return kernels.Logistic().prox(label, omega, V[0, 0])
        return prox_newton(_reduced_cross_entropy, label, omega, V)

    def node(self, label, omega, V):
        """``(f, (I + H V)^{-1} H, l(c, h))`` at one field ``omega`` for one class's ``label``."""
        _, loss = self.labels()
        h = self.prox(label, omega, V)
        f = -jax.grad(loss, argnums=1)(label, h)
        H = jax.hessian(loss, argnums=1)(label, h)
        return f, small_solve(jnp.eye(self.outputs, dtype=self.dtype) + H @ V, H), loss(label, h)
