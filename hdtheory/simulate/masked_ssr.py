r"""Masked self-supervised ridge regression at finite ``d``
(:class:`~hdtheory.models.masked_ssr.MaskedSSR`).

**Instance.** The circulant covariance of the model's docstring at dimension ``d``: eigenvalues
``s(2 pi j / d)``, ``j = 0..d-1``, on the Fourier basis, so that every diagonal entry of a function of
``Sigma`` is the average over its spectrum exactly; ``n = round(alpha d)`` samples ``x = Sigma^(1/2) z``
(drawn through the FFT); ``R = (X^T X / n + (lam / alpha) I)^-1`` and the SSR matrix
``A = I - diag(R)^-1 R`` (every coordinate's ridge regression on the others at once).

**Measured.** ``test_error = Tr[(I - A) Sigma (I - A)^T] / d``, exact over the test distribution (no
test samples), and ``train_error = |X (I - A)^T|_F^2 / (n d)``. Both fluctuate by ``O(1 / d)`` around
their mean (an average of ``d`` weakly dependent coordinates); the mean differs from the theory by
``O(1 / d)``.
"""

import functools

import jax
import jax.numpy as jnp

from ..models.masked_ssr import MaskedSSR
from . import SimulationResult, check_size, simulate


def circulant_covariance(theory: MaskedSSR, d: int) -> tuple[jax.Array, jax.Array]:
    """``(Sigma, s)``: the ``d x d`` circulant covariance and its eigenvalues ``s(2 pi j / d)``."""
    c = jnp.asarray(theory.corr, float)
    s = (1 - c**2) / (1 - 2 * c * jnp.cos(2 * jnp.pi * jnp.arange(d) / d) + c**2)
    column = jnp.real(jnp.fft.ifft(s))
    index = jnp.arange(d)
    return column[(index[:, None] - index[None, :]) % d], s


@functools.partial(jax.jit, static_argnames="n")
def _errors(key, Sigma, s, lam_avg, n):
    d = s.shape[0]
    Z = jax.random.normal(key, (n, d), s.dtype)
    X = jnp.real(jnp.fft.ifft(jnp.fft.fft(Z, axis=1) * jnp.sqrt(s), axis=1))  # rows ~ N(0, Sigma)
    S = X.T @ X / n
    R = jnp.linalg.inv(S + lam_avg * jnp.eye(d, dtype=s.dtype))
    B = R / jnp.diag(R)[:, None]  # I - A
    return jnp.trace(B @ Sigma @ B.T) / d, jnp.trace(B @ S @ B.T) / d


@simulate.register
def simulate_masked_ssr(theory: MaskedSSR, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.masked_ssr.MaskedSSR`; see
    the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    Sigma, s = circulant_covariance(theory, d)
    lam_avg = jnp.asarray(theory.lam / theory.alpha, s.dtype)
    run = jax.vmap(lambda k: _errors(k, Sigma, s, lam_avg, n))
    test, train = run(jax.random.split(key, seeds))
    return SimulationResult.from_stacked({"test_error": test, "train_error": train}, d=d, n=n)
