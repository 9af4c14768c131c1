r"""Finite-``d`` simulations of the bootstrap and subsampling of ERM (:class:`~hdtheory.models.resample.Resample`).

**Setting** (that of :mod:`hdtheory.simulate.erm`, whose data, teacher and fitter this reuses).
Per seed: a teacher, one data set of ``n = round(alpha d)`` samples, the full-data estimator, and
``learners`` resampled learners on the same data, each the weighted ERM of
:mod:`hdtheory.models.resample` with weights drawn by the actual procedure, not its limit: for
``bootstrap`` the counts of ``n`` draws with replacement (multinomial, Poisson(1) as ``n -> inf``),
for ``subsample`` the indicator of ``round(fraction n)`` samples drawn without replacement
(Bernoulli(fraction) as ``n -> inf``), for ``full`` ones.

**Observables**, per seed, under the theory's names: ``m``, ``q``, ``test_error``,
``test_error_total`` averaged over the learners; ``full_m``, ``full_q``, ``full_test_error``;
``q_ab``, the mean of ``w_k.w_l / d`` over pairs ``k != l``; ``true_variance = full_q - full_m^2 /
rho`` (``rho = |w*|^2 / d``: the squared norm of the estimator's part orthogonal to the teacher per
coordinate, the variance over data sets up to ``O(1 / d)``); ``resample_variance = q - q_ab``, the
unbiased sample variance of the learners per coordinate; ``variance_ratio``; for ``subsample`` the
rescaled variance and its ratio as in the theory; ``ensemble_q`` and ``ensemble_error`` of the
average of the ``learners`` learners, to compare with the theory at ``M = learners``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.resample import Resample
from . import SimulationResult, bucket, check_size, simulate
from .erm import _check_fit, _draw_like, _fit, _newton, _ridge, _teacher


@simulate.register
def simulate_resample(
    theory: Resample, *, d: int = 400, seeds: int = 4, learners: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.resample.Resample`; see the
    module docstring. ``learners >= 2`` resampled learners per data set.

    Raises:
        RuntimeError: Newton's method did not converge (logistic loss).
    """
    erm = theory.full
    _check_fit(erm, d, seeds)
    check_size(learners - 1, 1)  # at least two learners
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        teacher_key, train_key, weight_key = jax.random.split(seed_key, 3)
        w_star = _teacher(erm, teacher_key, d)
        X, y, weight = _draw_like(erm, train_key, w_star, n)
        w_full = _fit(erm, X, y, weight)
        W = _fits(erm, X, y, weight * _weights(theory, weight_key, n, bucket(n), learners))
        samples.append(_observables(theory, w_full, W, w_star))
    return SimulationResult.from_samples(samples, d=d, n=n)


def _weights(theory: Resample, key, n: int, rows: int, learners: int) -> jax.Array:
    """The sample weights of ``learners`` resamplings of ``n`` samples, in ``rows`` entries: ``(learners, rows)``."""
    keys = jax.random.split(key, learners)
    if theory.scheme == "bootstrap":
        return jax.vmap(lambda k: jnp.zeros(rows).at[jax.random.randint(k, (n,), 0, n)].add(1.0))(keys)
    if theory.scheme == "subsample":
        kept = max(round(float(theory.fraction) * n), 1)
        return jax.vmap(lambda k: jnp.zeros(rows).at[jax.random.permutation(k, n)[:kept]].set(1.0))(keys)
    return jnp.ones((learners, rows))


def _fits(erm, X, y, weights) -> jax.Array:
    """The fits with each row of ``weights``: ridge, and Newton's method for the smooth losses
    (logistic, Huber), in one compiled loop; the others one by one."""
    if erm.loss == "square" and erm.penalty == "ridge":
        return _ridge_fits(X, y, weights, erm.lam)
    if erm.loss in ("logistic", "huber") and erm.penalty == "ridge":
        W, converged = _newton_fits(erm.loss_fn, X, y, weights, erm.lam)
        if not bool(jnp.all(converged)):
            raise RuntimeError(f"Newton's method did not converge for {erm}")
        return W
    return jnp.stack([_fit(erm, X, y, w) for w in weights])


@eqx.filter_jit
def _newton_fits(loss, X, y, weights, lam):
    return jax.lax.map(lambda weight: _newton(loss, X, y, weight, lam), weights)


@jax.jit
def _ridge_fits(X, y, weights, lam):
    return jax.lax.map(lambda weight: _ridge(X, y, weight, lam), weights)


@eqx.filter_jit
def _observables(theory: Resample, w_full, W, w_star) -> dict[str, jax.Array]:
    d, K = w_star.shape[0], W.shape[0]
    channel = theory.full.channel
    rho = w_star @ w_star / d
    ms, gram = W @ w_star / d, W @ W.T / d
    qs = jnp.diagonal(gram)
    errors = jax.vmap(lambda m, q: jnp.stack(channel.test_errors(m, q, rho)))(ms, qs)
    q_ab = (jnp.sum(gram) - jnp.sum(qs)) / (K * (K - 1))
    full_m, full_q = w_star @ w_full / d, w_full @ w_full / d
    true_variance = full_q - full_m**2 / rho
    resample_variance = jnp.mean(qs) - q_ab
    ensemble_q = jnp.sum(gram) / K**2
    out = {
        "m": jnp.mean(ms),
        "q": jnp.mean(qs),
        "test_error": jnp.mean(errors[:, 0]),
        "test_error_total": jnp.mean(errors[:, 1]),
        "full_m": full_m,
        "full_q": full_q,
        "full_test_error": channel.test_errors(full_m, full_q, rho)[0],
        "q_ab": q_ab,
        "true_variance": true_variance,
        "resample_variance": resample_variance,
        "variance_ratio": resample_variance / true_variance,
        "ensemble_q": ensemble_q,
        "ensemble_error": channel.test_errors(jnp.mean(ms), ensemble_q, rho)[0],
    }
    if theory.scheme == "subsample":
        f = theory.fraction
        rescaled = f / (1 - f) * resample_variance
        out |= {"resample_variance_rescaled": rescaled, "rescaled_ratio": rescaled / true_variance}
    return out
