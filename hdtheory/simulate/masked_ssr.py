r"""Masked self-supervised ridge regression at finite ``d``
(:class:`~hdtheory.models.masked_ssr.MaskedSSR`).

**Instance.** The circulant covariance of the model's docstring at dimension ``d``: eigenvalues
``s(2 pi j / d)``, ``j = 0..d-1``, on the Fourier basis, so that every diagonal entry of a function of
``Sigma`` is the average over its spectrum exactly; ``n = round(alpha d)`` samples ``x = Sigma^(1/2) z``
(``Sigma^(1/2)``, circulant too). For
:class:`~hdtheory.models.masked_ssr_covariance.MaskedSSRCovariance`, its covariance plus its spike,
``x = L z`` with ``L`` the Cholesky factor, no masks. With the mask ratio ``r = 1 - q``, the masked
objective averaged over the masks is a ridge with the normal matrix ``M = q^2 Sigma_hat + q (1 - q) diag(Sigma_hat) + lam_avg``
(``Sigma_hat = X^T X / n``, ``lam_avg = lam / alpha``, the exact diagonal, where the theory takes
its limit 1); with ``R = M^-1`` the SSR matrix is ``A = (I - diag(R)^-1 R) / q`` (every coordinate's
regression on the others at once; ``q = 1``: ``R = (Sigma_hat + lam_avg)^-1``).

**Measured.** ``test_error``, the masked prediction's error averaged over the masks and exact over
the test distribution (no test samples), ``(Tr[B Sigma B^T] + q (1 - q) sum_kj A_kj^2 Sigma_jj) / d``
with ``B = I - q A``, and ``train_error``, the same with ``Sigma_hat``. Both fluctuate by ``O(1 / d)`` around
their mean (an average of ``d`` weakly dependent coordinates); the mean differs from the theory by
``O(1 / d)``; ``test_errors`` and ``train_errors``: the same per coordinate (each ``O(d^-1/2)``
from its limit). ``outlier`` and ``edge``: the largest and second largest eigenvalues of ``A`` (the
outlier and the bulk's top when the spike is above ``critical_spike``); ``overlap``: the squared cosine
between ``A``'s top right eigenvector and the spike's direction. ``pca_outlier``, ``pca_overlap``
(covariance model, with ``pca_edge``): the same for the sample covariance.
"""

import functools

import jax
import jax.numpy as jnp

from .._batch import map_instances
from ..models.masked_ssr import MaskedSSR
from ..models.masked_ssr_covariance import MaskedSSRCovariance
from . import SimulationResult, check_size, simulate


def circulant_covariance(theory: MaskedSSR, d: int) -> tuple[jax.Array, jax.Array]:
    """``(Sigma, s)``: the ``d x d`` circulant covariance and its eigenvalues ``s(2 pi j / d)``, the
    first (the constant direction's) raised by the spike."""
    c = jnp.asarray(theory.corr, float)
    s = (1 - c**2) / (1 - 2 * c * jnp.cos(2 * jnp.pi * jnp.arange(d) / d) + c**2)
    s = s.at[0].add(theory.spike)
    column = jnp.real(jnp.fft.ifft(s))
    index = jnp.arange(d)
    return column[(index[:, None] - index[None, :]) % d], s


@functools.partial(jax.jit, static_argnames=("n", "pca"))
def _errors(key, Sigma, root, direction, lam_avg, q, n, pca):
    """One instance: ``n`` samples ``root z`` (``root root^T = Sigma``); the per-coordinate test and
    training errors, ``A``'s two top eigenvalues and its top right eigenvector's squared cosine with
    ``direction``; with ``pca``, the same two of the sample covariance."""
    d = Sigma.shape[0]
    Z = jax.random.normal(key, (n, d), Sigma.dtype)
    X = Z @ root.T  # rows ~ N(0, Sigma)
    S = X.T @ X / n
    # The masked objective's normal equations: q^2 S + q (1 - q) diag(S) + lam_avg, whose inverse R
    # gives every row at once, A = (I - diag(R)^-1 R) / q.
    R = jnp.linalg.inv(q**2 * S + q * (1 - q) * jnp.diag(jnp.diag(S)) + lam_avg * jnp.eye(d, dtype=Sigma.dtype))
    B = R / jnp.diag(R)[:, None]  # I - q A
    A2 = (B - jnp.eye(d, dtype=Sigma.dtype)) ** 2 / q**2  # A's entries squared
    hidden = q * (1 - q)
    test = jnp.sum((B @ Sigma) * B, axis=1) + hidden * A2 @ jnp.diag(Sigma)
    train = jnp.sum((B @ S) * B, axis=1) + hidden * A2 @ jnp.diag(S)
    # A's eigenvalues are (1 - those of D^-1/2 R D^-1/2) / q (D = diag R), its right eigenvectors D^-1/2 u.
    root_R = jnp.sqrt(jnp.diag(R))
    values, vectors = jnp.linalg.eigh(R / root_R[:, None] / root_R[None, :])
    top = vectors[:, 0] / root_R
    overlap = jnp.dot(top, direction) ** 2 / (jnp.sum(direction**2) * jnp.sum(top**2))
    measured = {"test_errors": test, "train_errors": train, "outlier": (1 - values[0]) / q,
                "edge": (1 - values[1]) / q, "overlap": overlap}
    if pca:
        values, vectors = jnp.linalg.eigh(S)
        measured |= {"pca_outlier": values[-1], "pca_edge": values[-2],
                     "pca_overlap": jnp.dot(vectors[:, -1], direction) ** 2 / jnp.sum(direction**2)}
    return measured


@functools.partial(jax.jit, static_argnames=("n", "seeds", "pca"))
def measure(key, Sigma, root, direction, lam_avg, q, n, seeds, pca=False) -> dict:
    """The observables of ``seeds`` instances (:func:`_errors`), stacked over the seeds, with the
    per-coordinate errors' averages ``test_error`` and ``train_error``. The instances are mapped by
    :func:`~hdtheory._batch.map_instances`: a ``vmap`` would batch the inverse and PCA's independent
    ``eigh``, which can deadlock XLA's CPU thread pool."""
    one = functools.partial(_errors, Sigma=Sigma, root=root, direction=direction, lam_avg=lam_avg, q=q, n=n, pca=pca)
    measured = map_instances(one, jax.random.split(key, seeds))
    return measured | {"test_error": measured["test_errors"].mean(1), "train_error": measured["train_errors"].mean(1)}


@simulate.register
def simulate_masked_ssr(theory: MaskedSSR, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.masked_ssr.MaskedSSR`; see
    the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    Sigma, s = circulant_covariance(theory, d)
    # The circulant square root, Sigma's own: F^* diag(sqrt s) F.
    column = jnp.real(jnp.fft.ifft(jnp.sqrt(s)))
    index = jnp.arange(d)
    root = column[(index[:, None] - index[None, :]) % d]
    lam_avg = jnp.asarray(theory.lam / theory.alpha, s.dtype)
    q = jnp.asarray(1 - theory.mask, s.dtype)
    measured = measure(key, Sigma, root, jnp.ones(d, s.dtype), lam_avg, q, n, seeds)
    return SimulationResult.from_stacked(measured, d=d, n=n)


@simulate.register
def simulate_masked_ssr_covariance(
    theory: MaskedSSRCovariance, *, d: int | None = None, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for
    :class:`~hdtheory.models.masked_ssr_covariance.MaskedSSRCovariance`: samples of the given
    covariance plus its spike, ``Sigma + theta v v^T`` (``d`` is the covariance's; another is refused)."""
    size = theory.covariance.shape[0]
    if d is not None and d != size:
        raise ValueError(f"d must be the covariance's dimension {size}, got {d}")
    check_size(size, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * size), 1)
    v = theory._unit_direction()
    Sigma = theory.covariance + theory.spike * jnp.outer(v, v)
    root = jnp.linalg.cholesky(Sigma)
    lam_avg = jnp.asarray(theory.lam / theory.alpha, Sigma.dtype)
    measured = measure(key, Sigma, root, v, lam_avg, jnp.ones((), Sigma.dtype), n, seeds, pca=True)
    return SimulationResult.from_stacked(measured, d=size, n=n)
