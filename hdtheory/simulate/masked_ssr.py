r"""Masked self-supervised ridge regression at finite ``d``
(:class:`~hdtheory.models.masked_ssr.MaskedSSR`).

**Instance.** The circulant covariance of the model's docstring at dimension ``d``: eigenvalues
``s(2 pi j / d)``, ``j = 0..d-1``, on the Fourier basis, so that every diagonal entry of a function of
``Sigma`` is the average over its spectrum exactly; ``n = round(alpha d)`` samples ``x = Sigma^(1/2) z``
(drawn through the FFT). With the mask ratio ``r = 1 - q``, the masked objective averaged over the
masks is a ridge with the normal matrix ``M = q^2 Sigma_hat + q (1 - q) diag(Sigma_hat) + lam_avg``
(``Sigma_hat = X^T X / n``, ``lam_avg = lam / alpha``, the exact diagonal, where the theory takes
its limit 1); with ``R = M^-1`` the SSR matrix is ``A = (I - diag(R)^-1 R) / q`` (every coordinate's
regression on the others at once; ``q = 1``: ``R = (Sigma_hat + lam_avg)^-1``).

**Measured.** ``test_error``, the masked prediction's error averaged over the masks and exact over
the test distribution (no test samples), ``(Tr[B Sigma B^T] + q (1 - q) sum_kj A_kj^2 Sigma_jj) / d``
with ``B = I - q A``, and ``train_error``, the same with ``Sigma_hat``. Both fluctuate by ``O(1 / d)`` around
their mean (an average of ``d`` weakly dependent coordinates); the mean differs from the theory by
``O(1 / d)``. ``outlier`` and ``edge``: the largest and second largest eigenvalues of ``A`` (the
outlier and the bulk's top when the spike is above ``critical_spike``); ``overlap``: the squared cosine
between ``A``'s top right eigenvector and the spike's direction.
"""

import functools

import jax
import jax.numpy as jnp

from ..models.masked_ssr import MaskedSSR
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


@functools.partial(jax.jit, static_argnames="n")
def _errors(key, Sigma, s, lam_avg, q, n):
    d = s.shape[0]
    Z = jax.random.normal(key, (n, d), s.dtype)
    X = jnp.real(jnp.fft.ifft(jnp.fft.fft(Z, axis=1) * jnp.sqrt(s), axis=1))  # rows ~ N(0, Sigma)
    S = X.T @ X / n
    # The masked objective's normal equations: q^2 S + q (1 - q) diag(S) + lam_avg, whose inverse R
    # gives every row at once, A = (I - diag(R)^-1 R) / q.
    R = jnp.linalg.inv(q**2 * S + q * (1 - q) * jnp.diag(jnp.diag(S)) + lam_avg * jnp.eye(d, dtype=s.dtype))
    B = R / jnp.diag(R)[:, None]  # I - q A
    A2 = (B - jnp.eye(d, dtype=s.dtype)) ** 2 / q**2  # A's entries squared
    hidden = q * (1 - q)
    test = (jnp.trace(B @ Sigma @ B.T) + hidden * jnp.sum(A2 @ jnp.diag(Sigma))) / d
    train = (jnp.trace(B @ S @ B.T) + hidden * jnp.sum(A2 @ jnp.diag(S))) / d
    # A's eigenvalues are (1 - those of D^-1/2 R D^-1/2) / q (D = diag R), its right eigenvectors D^-1/2 u.
    root = jnp.sqrt(jnp.diag(R))
    values, vectors = jnp.linalg.eigh(R / root[:, None] / root[None, :])
    top = vectors[:, 0] / root
    overlap = jnp.sum(top) ** 2 / (d * jnp.sum(top**2))
    return test, train, (1 - values[0]) / q, (1 - values[1]) / q, overlap


@simulate.register
def simulate_masked_ssr(theory: MaskedSSR, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.masked_ssr.MaskedSSR`; see
    the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    Sigma, s = circulant_covariance(theory, d)
    lam_avg = jnp.asarray(theory.lam / theory.alpha, s.dtype)
    q = jnp.asarray(1 - theory.mask, s.dtype)
    run = jax.vmap(lambda k: _errors(k, Sigma, s, lam_avg, q, n))
    test, train, outlier, edge, overlap = run(jax.random.split(key, seeds))
    measured = {"test_error": test, "train_error": train, "outlier": outlier, "edge": edge, "overlap": overlap}
    return SimulationResult.from_stacked(measured, d=d, n=n)
