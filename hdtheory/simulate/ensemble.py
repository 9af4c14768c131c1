r"""Finite-``d`` simulations of ensembles of random-features learners
(:class:`~hdtheory.models.ensemble.RandomFeatureEnsemble`).

**Setting.** Per seed: a teacher ``w*`` drawn isotropically with ``|w*|^2 = rho d``, ``learners`` feature
matrices ``F_k`` (``p = round(gamma d)`` rows of i.i.d. ``N(0, 1)`` entries, drawn afresh for every
seed), and three training sets of ``n = round(alpha d)`` samples: ``(X, y)``, ``(X, y')`` with the
same inputs and labels drawn afresh from the teacher's channel (fresh label noise), and ``(X', y'')``
with fresh inputs and labels (the last two with ``decompose`` only). Every learner is fitted on each of them with its real
features ``erf(F_k x / sqrt(d))`` by the fitter of :mod:`hdtheory.simulate.erm` with ``p`` as
the dimension (ridge in closed form, logistic and Huber by Newton's method, hinge by scikit-learn's
``LinearSVC``, the absolute loss by its dual). The draws come
from NumPy's generator seeded by ``key`` (a JAX key, ``PRNGKey(0)`` by default).

**Measurement.** The errors are the population ones of the fitted weights, without a test set: for
``erf`` features the second moments are known in closed form (Williams 1997), for rows ``a = F_i /
sqrt(d)``, ``b = F_j / sqrt(d)``,
``E[erf(a.x) erf(b.x)] = (2 / pi) arcsin(2 a.b / sqrt((1 + 2 |a|^2)(1 + 2 |b|^2)))`` and
``E[z erf(a.x)] = (w*.a / sqrt(d)) 2 / sqrt(pi (1 + 2 |a|^2))``, so that two fitted predictors
``f = w.v / sqrt(p)`` have the exact ``E_x[f_a f_b]`` and ``E_x[z f_a]``. Observables per seed under
the theory's names: ``m``, ``q``, ``test_error``, ``test_error_total`` (averaged over the learners on
the first training set), ``q_ab`` and ``correlation`` (averaged over the pairs), ``ensemble_q`` and
``ensemble_error`` (the average of the ``learners`` learners: compare with the theory at
``M = learners``), ``ensemble_error_inf`` (from ``q_ab``); with ``decompose`` (any loss and teacher)
the bias and variances of :mod:`hdtheory.models.ensemble` from the pairs that share the inputs, the
noise or the features (``C_XF``: the same learner on ``(X, y)`` and ``(X, y')``; ``C_X``: two
learners on those; ``C_F``: the same learner on ``(X, y)`` and ``(X', y'')``; ``C_empty``: two
learners on those).
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._theory import ParameterError
from ..models.ensemble import RandomFeatureEnsemble
from . import SimulationResult, check_size, simulate
from .erm import _fit as fit_erm


@simulate.register
def simulate_ensemble(
    theory: RandomFeatureEnsemble, *, d: int = 200, seeds: int = 4, learners: int = 3, decompose: bool = True,
    key=None,
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.ensemble.RandomFeatureEnsemble`;
    see the module docstring. ``learners >= 2``; ``decompose``: also fit on the other two training
    sets and measure the bias and variances (three times the fits)."""
    check_size(d, seeds)
    check_size(learners - 1, 1)
    if theory.activation != "erf":
        raise ParameterError(f"the simulation needs activation=erf (closed-form moments), got {theory.activation!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    n, p = max(round(float(theory.alpha) * d), 1), max(round(float(theory.gamma) * d), 1)
    samples = [_seed(theory, rng, d, n, p, learners, bool(decompose)) for _ in range(seeds)]
    return SimulationResult.from_samples(samples, d=d, n=n)


def _labels(theory, rng, z):
    noise = float(theory.noise)
    if theory.teacher == "linear":
        return z + np.sqrt(noise) * rng.standard_normal(z.shape)
    if theory.teacher == "sign":
        return np.where(rng.random(z.shape) < noise, -1.0, 1.0) * np.where(z >= 0, 1.0, -1.0)
    return np.sign(z + np.sqrt(noise) * rng.standard_normal(z.shape))  # probit


def _fit(theory, V, y):
    """The weights of the estimator on features ``V (n, p)``: ERM's fitter
    (:mod:`hdtheory.simulate.erm`) with ``p`` as the dimension, the learner's loss and ``lam``."""
    return np.asarray(fit_erm(theory.learners[0], jnp.asarray(V), jnp.asarray(y)))


def _seed(theory, rng, d, n, p, K, decomposed):
    from scipy.special import erf

    w_star = rng.standard_normal(d)
    w_star *= np.sqrt(float(theory.rho) * d) / np.linalg.norm(w_star)
    F = rng.standard_normal((K, p, d))
    X, X2 = rng.standard_normal((2, n, d))
    z, z2 = X @ w_star / np.sqrt(d), X2 @ w_star / np.sqrt(d)
    targets = [(X, _labels(theory, rng, z))]
    if decomposed:  # the other two training sets
        targets += [(X, _labels(theory, rng, z)), (X2, _labels(theory, rng, z2))]
    # W[s, k]: learner k fitted on training set s.
    W = np.array([[_fit(theory, erf(inputs @ F[k].T / np.sqrt(d)), y) for k in range(K)] for inputs, y in targets])
    rows = F.reshape(K * p, d) / np.sqrt(d)
    r = np.sum(rows**2, axis=1)
    kernel = 2 / np.pi * np.arcsin(2 * rows @ rows.T / np.sqrt(np.outer(1 + 2 * r, 1 + 2 * r)))
    t = (rows @ w_star / np.sqrt(d)) * 2 / np.sqrt(np.pi * (1 + 2 * r))
    blocks = kernel.reshape(K, p, K, p)

    def overlap(s, k, u, l):  # E_x[f_{s,k} f_{u,l}]
        return W[s, k] @ blocks[k, :, l] @ W[u, l] / p

    rho = w_star @ w_star / d
    ms = np.array([t.reshape(K, p)[k] @ W[0, k] for k in range(K)]) / np.sqrt(p)
    C = np.array([[overlap(0, k, 0, l) for l in range(K)] for k in range(K)])
    qs, pairs = np.diag(C), ~np.eye(K, dtype=bool)
    q_ab, m = np.mean(C[pairs]), np.mean(ms)
    ensemble_q = np.sum(C) / K**2
    channel = theory.learners[0].channel
    errors = np.array([np.asarray(channel.test_errors(mk, qk, rho), float) for mk, qk in zip(ms, qs)])
    out = {
        "m": m,
        "q": np.mean(qs),
        "test_error": np.mean(errors[:, 0]),
        "test_error_total": np.mean(errors[:, 1]),
        "q_ab": q_ab,
        "correlation": np.mean((C / np.sqrt(np.outer(qs, qs)))[pairs]),
        "ensemble_q": ensemble_q,
        "ensemble_error": float(channel.test_errors(m, ensemble_q, rho)[0]),
        "ensemble_error_inf": float(channel.test_errors(m, q_ab, rho)[0]),
    }
    if decomposed:

        def shared(s, u, same):  # the mean over pairs of learners with the same or with other features
            values = np.array([[overlap(s, k, u, l) for l in range(K)] for k in range(K)])
            return np.mean(np.diag(values)) if same else np.mean(values[pairs])

        c_none, c_features = shared(0, 2, False), shared(0, 2, True)
        c_data, c_data_features = shared(0, 1, False), shared(0, 1, True)
        out |= {
            "bias": rho - 2 * m + c_none,
            "variance_data": c_data - c_none,
            "variance_features": c_data_features - c_data,
            "variance_noise": np.mean(qs) - c_data_features,
            "variance_features_alone": c_features - c_none,
            "variance_features_data": c_data_features - c_data - c_features + c_none,
        }
    return out
