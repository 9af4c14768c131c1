r"""Kernel ridge regression with the data-adaptive kernel at finite ``d``
(:class:`~hdtheory.models.adaptive_kernel.AdaptiveKernel`).

**Instance.** A unit ``beta``, the spike direction ``v = gamma_beta beta + sqrt(1 - gamma_beta^2)
zeta'`` (``zeta'`` a random unit vector orthogonal to ``beta``), ``n = round(alpha d)`` training and
``test`` test inputs ``x ~ N(0, I_d)`` with labels ``y = g(beta.x) + sqrt(noise) xi``. The kernel is
the model's exact infinite-width kernel, averaged over the sign of the rows' spike
(:meth:`~hdtheory.models.adaptive_kernel.AdaptiveKernel.kernel`,
a product rule) on the pairs; the predictor ``f = K(., X) (K + lam I)^{-1} y``.

**Measured.** ``test_error_total`` (against the test labels) and ``test_error`` (against
``g(beta.x)``), one value per seed; :func:`kernel_matrix` gives the kernel matrix of inputs.
"""

import functools

import jax
import jax.numpy as jnp

from ..models.adaptive_kernel import AdaptiveKernel
from ..models.giant_step import TARGETS
from . import SimulationResult, check_size, simulate


def kernel_matrix(theory: AdaptiveKernel, X1, X2, v, order: int = 32):
    """``K(x_i, x'_j)`` for the rows of ``X1`` and ``X2`` (dimension ``d``) and the spike
    direction ``v``."""
    d = X1.shape[1]
    n1, n2 = jnp.sum(X1**2, axis=1) / d, jnp.sum(X2**2, axis=1) / d
    k1, k2 = X1 @ v, X2 @ v
    return theory.kernel(X1 @ X2.T / d, n1[:, None], n2[None, :], k1[:, None], k2[None, :], order)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _instance(theory: AdaptiveKernel, key, d: int, n: int, test: int, order: int):
    keys = jax.random.split(key, 4)
    _, _, cosine = theory.spiked_features()
    beta = jax.random.normal(keys[0], (d,))
    beta = beta / jnp.linalg.norm(beta)
    other = jax.random.normal(keys[1], (d,))
    other = other - (other @ beta) * beta
    v = cosine * beta + jnp.sqrt(1 - cosine**2) * other / jnp.linalg.norm(other)
    X = jax.random.normal(keys[2], (n + test, d))
    clean = TARGETS[theory.target](X @ beta)
    y = clean + jnp.sqrt(theory.noise) * jax.random.normal(keys[3], (n + test,))
    K = kernel_matrix(theory, X, X[:n], v, order)
    f = K[n:] @ jnp.linalg.solve(K[:n] + theory.lam * jnp.eye(n), y[:n])
    return jnp.mean((y[n:] - f) ** 2), jnp.mean((clean[n:] - f) ** 2)



@simulate.register
def simulate_adaptive_kernel(theory: AdaptiveKernel, *, d: int = 200, seeds: int = 4, test: int = 2000,
                             order: int = 32, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for
    :class:`~hdtheory.models.adaptive_kernel.AdaptiveKernel`; see the module docstring (``order``:
    the nodes of the kernel's rule)."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = []
    for k in jax.random.split(key, seeds):
        total, excess = _instance(theory, k, d, n, test, order)
        samples.append({"test_error_total": total, "test_error": excess})
    return SimulationResult.from_samples(samples, d=d, n=n)
