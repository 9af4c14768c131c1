r"""GAMP at finite ``d`` for the Bayes-optimal multi-index model (:class:`~hdtheory.MultiIndex`).

**Instance.** ``W* in R^{d x k}`` with i.i.d. ``N(0, 1)`` entries (row ``i`` the teacher's weights on
input coordinate ``i``); ``n = round(alpha d)`` inputs ``x_mu ~ N(0, I_d)``; labels
``theory.sample_labels`` of the fields ``z_mu = W*^T x_mu / sqrt(d)``.

**Algorithm** (GAMP with ``k x k`` variances: the committee machine's AMP of Aubin et al. 2018,
NeurIPS, with the Gaussian prior ``N(0, I_k)`` per row). With ``F = X / sqrt(d)``, from
``W_hat = 0``, ``C = I`` and ``g = 0``, each iteration

.. math::
    V = C, \quad \omega_\mu = (F \hat W)_\mu - V g_\mu, \quad
    g_\mu = V^{-1} (\mathbb E[z \mid y_\mu, \omega_\mu, V] - \omega_\mu), \quad
    A = \frac1d \sum_\mu \big(V^{-1} - V^{-1} \mathrm{Cov}[z \mid y_\mu, \omega_\mu, V] V^{-1}\big),

.. math:: B = F^T g + \hat W A, \quad \hat W = B (I + A)^{-1}, \quad C = (I + A)^{-1},

the posterior moments from :meth:`~hdtheory.MultiIndex.posterior` (the theory's own channel
quadrature). State evolution predicts ``W_hat^T W* / d -> M_t``, ``M_0 = 0``,
``M_{t+1} = theory.update(M_t)``. A start at zero stays at zero along a field whose posterior mean
vanishes while its ``omega`` does (every field where the trivial subspace is empty; ``z2`` of
``z1 + z2^2``, whose posterior is even in ``z2``), exactly, at any ``d``: that column of ``g`` stays
zero. So :func:`simulate` also starts from an overlap ``init = M_0``
(``0 <= M_0 <= I``): ``W_hat_0 = W* M_0 + Z (M_0 - M_0^2)^{1/2}``, ``Z`` with i.i.d. ``N(0, 1)``
entries independent of the data, and ``C = I - M_0``, so that ``W_hat_0^T W* / d`` and
``W_hat_0^T W_hat_0 / d`` are ``M_0`` up to ``O(d^{-1/2})`` (the Nishimori identity of the state
evolution's ``M_0``), and ``omega = F W_hat_0`` (``g = 0``: no Onsager term at the first step, the
start being independent of ``X``).

:func:`simulate` returns the observables of the last iterate, or with ``iterates=True`` of every
iterate ``t = 0..steps`` (arrays along ``t``, to compare with ``M_t``): ``m_i`` and ``M_i_j``, the
entries of ``W_hat^T W* / d``, and ``mmse_i = |W_hat_i - W*_i|^2 / d`` per direction, ``mmse`` their
mean (``1 - M_ii`` and ``1 - tr M / k`` in the state evolution, by the Nishimori identity).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import ParameterError
from ..kernels.multivariate import psd_cholesky, small_inv
from ..models.multi_index import MultiIndex
from . import SimulationResult, bucket, check_size, simulate


def _draw(theory: MultiIndex, key, n: int, d: int):
    """``(X, y, W*, weight)``: ``n`` samples in :func:`~hdtheory.simulate.bucket` ``(n)`` rows, the
    rows past ``n`` zero with weight zero."""
    w_key, x_key, y_key = jax.random.split(key, 3)
    W_star = jax.random.normal(w_key, (d, theory.k))
    weight = jnp.arange(bucket(n)) < n
    X = jax.random.normal(x_key, (weight.size, d)) * weight[:, None]
    return X, theory.sample_labels(y_key, X @ W_star / jnp.sqrt(d)), W_star, weight


@eqx.filter_jit
def gamp(theory: MultiIndex, X, y, steps: int, weight=None, W0=None, C0=None):
    """The GAMP iterates ``W_hat_t``, ``t = 0..steps`` (``W_hat_0 = W0``, by default 0, with the
    variance ``C0``, by default ``I``), stacked on axis 0, on the samples where ``weight`` (a boolean
    per row; all by default) holds."""
    rows, d = X.shape
    k = theory.k
    weight = jnp.ones(rows, bool) if weight is None else weight
    F = X / jnp.sqrt(d)
    eye = jnp.eye(k, dtype=X.dtype)
    W0 = jnp.zeros((d, k), X.dtype) if W0 is None else W0
    C0 = eye if C0 is None else C0

    def step(carry, _):
        W, C, g = carry
        V_inv = small_inv(C)
        omega = F @ W - g @ C
        _, mean, second = jax.vmap(lambda y, o: theory.posterior(y, o, C))(y, omega)
        covariance = second - mean[:, :, None] * mean[:, None, :]
        g = jnp.where(weight[:, None], (mean - omega) @ V_inv, 0.0)
        dg = V_inv - V_inv @ covariance @ V_inv  # minus d g / d omega, per sample
        A = jnp.einsum("n,nij->ij", weight.astype(X.dtype), dg) / d
        A = 0.5 * (A + A.T)
        C = small_inv(eye + A)
        W = (F.T @ g + W @ A) @ C
        return (W, C, g), W

    _, Ws = jax.lax.scan(step, (W0, C0, jnp.zeros((rows, k), X.dtype)), None, length=steps)
    return jnp.concatenate([W0[None], Ws])


@simulate.register
def simulate_multi_index(
    theory: MultiIndex,
    *,
    d: int = 1000,
    seeds: int = 4,
    key=None,
    steps: int = 30,
    iterates: bool = False,
    init=None,
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.MultiIndex`: GAMP run for ``steps``
    iterations from ``W_hat = 0`` or (``init``, a ``k x k`` overlap ``0 <= M_0 <= I``) from ``M_0``, the
    observables of the last iterate or (``iterates``) of each; see the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    k = theory.k
    if init is not None:
        init = np.asarray(init, float)
        if init.shape != (k, k) or not np.allclose(init, init.T) or np.any(np.abs(np.linalg.eigvalsh(init) - 0.5) > 0.5):
            raise ParameterError(f"parameter 'init' must be None or a symmetric k={k} x {k} overlap with eigenvalues in [0, 1], got {init!r}")
        init = jnp.asarray(init)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        X, y, W_star, weight = _draw(theory, seed_key, n, d)
        if init is None:
            Ws = gamp(theory, X, y, steps, weight)
        else:
            Z = jax.random.normal(jax.random.fold_in(seed_key, 1), (d, k))
            W0 = W_star @ init + Z @ psd_cholesky(init - init @ init).T
            Ws = gamp(theory, X, y, steps, weight, W0, jnp.eye(k) - init)
        Ws = Ws if iterates else Ws[-1]
        M = jnp.einsum("...ai,aj->...ij", Ws, W_star) / d
        errors = jnp.mean((Ws - W_star) ** 2, axis=-2)
        sample = {f"m_{i + 1}": M[..., i, i] for i in range(k)}
        sample |= {f"M_{i + 1}_{j + 1}": 0.5 * (M[..., i, j] + M[..., j, i]) for i in range(k) for j in range(i + 1, k)}
        sample |= {f"mmse_{i + 1}": errors[..., i] for i in range(k)}
        sample["mmse"] = jnp.mean(errors, axis=-1)
        samples.append(sample)
    return SimulationResult.from_samples(samples, d=d, n=n)
