r"""Finite-``d`` simulations of ERM classification of a Gaussian mixture (:class:`~hdtheory.Mixture`).

**Setting** (that of :mod:`hdtheory.models.mixture`). The ``d`` coordinates form ``d / p`` slices of
``p`` (``p`` the size of the covariance matrices or mean profiles, ``D`` for a spectrum, 1 for
identity covariances; ``d`` is rounded down to a multiple of ``p``), coordinate ``j`` of slice ``i``
at index ``i p + j``. Given profiles ``m``, the means are ``sqrt(snr) m_k`` on every slice; otherwise,
on coordinate ``j`` of the slices, ``sqrt(d / p) O_j G^{1/2}`` with ``O_j`` a random ``d / p x K``
matrix with orthonormal columns, so that each of the ``p`` coordinates carries ``G / p`` of
``mu^T mu / d = G`` exactly; ``n = round(alpha d)`` clusters drawn with probabilities ``rho``;
inputs ``x_i = mu_{c_i} / sqrt(d) + Sigma_{c_i}^{1/2} z_i``, ``Sigma_c`` acting on each slice as the
cluster's covariance matrix (``diag(s_c)`` for a spectrum); labels the clusters, or uniform over the classes with ``labels="random"``, or with
``labels="teacher"`` the teacher's (``theta = means a + g``, ``g ~ N(0, I_d)``, on the same means;
labels from ``nu = theta.x / sqrt(d)`` by the sign, probit or linear channel). Solvers, each on the objective
``sum_i l(c_i, W x_i / sqrt(d) + b) + (lam / 2) |W|_F^2`` (``b = 0`` unless ``intercept=1``; the
intercept is never penalised):

- ``cross-entropy``: scikit-learn's ``LogisticRegression`` (multinomial, L-BFGS, no intercept) on
  the features ``x / sqrt(d)`` with ``C = 1 / lam``, whose objective ``|W|^2 / 2 + C sum_i l`` is ours
  divided by ``lam``. For ``K = 2`` scikit-learn fits the binary logistic model instead: the
  softmax minimiser is ``W = (w / 2, -w / 2)`` with ``w`` the binary fit at ``C = 2 / lam``.
- ``logistic`` (``K = 2``, labels ``+1`` for cluster 1 and ``-1`` for cluster 2): the binary fit with
  ``C = 1 / lam``.
- ``square``: ridge regression on one-hot targets in closed form (a Cholesky solve); with teacher
  labels, on the labels themselves (+-1, or real for the linear teacher).

The L-BFGS fits stop at a gradient of 1e-10 (``tol``) or raise.

**Observables**, per seed, named as in ``Mixture.observables``: ``m_k_c = w_k.mu_c / d``,
``q_k_l = w_k.w_l / d``, ``norm``; ``test_error``, the exact population error of the fitted ``W``
(the scores of a fresh point of cluster ``c`` are ``N(W mu_c / d + b, W Sigma_c W^T / d)``; chance
for random labels; the orthant
probabilities of :func:`hdtheory.kernels.orthant_probability` at order 48); ``train_loss``, the
average training loss (penalty excluded); ``b_k`` with an intercept (centred for the
cross-entropy). With teacher labels, from the fitted ``w`` and the drawn ``theta`` on each
cluster's fields (means ``(w.mu_c / d + b, theta.mu_c / d)``, covariance from ``w``, ``theta`` and
``Sigma_c``): ``test_error``, the population 0-1 error against ``sign(nu)`` (a bivariate normal
probability), or ``test_mse`` and ``test_mse_excess`` for the linear teacher; ``mt_c = w Sigma_c
theta / d``, ``mt = w.theta / d``, ``m_1_c``, ``q_1_1``. One diagnostic (not with teacher labels): ``test_error_empirical`` on
``max(n, 10000)`` fresh points. ``V`` is not measured.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..models.mixture import Mixture
from .._theory import ParameterError
from . import SimulationResult, check_size, simulate


@simulate.register
def simulate_mixture(theory: Mixture, *, d: int = 1000, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.Mixture`; see the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    integers = np.asarray(jax.random.randint(key, (seeds,), 0, 2**31 - 1))
    p = theory._covariances().shape[-1]
    if d < p:
        raise ParameterError(f"parameter 'd' must be at least p = {p} (the covariance's size), got {d}")
    d = p * (d // p)
    n = max(round(float(theory.alpha) * d), 1)
    rho, G = np.asarray(theory._rho(), float), np.asarray(theory._G(), float)
    samples = [_one_seed(theory, np.random.default_rng(int(s)), n, d, rho, G) for s in integers]
    return SimulationResult.from_samples(samples, d=d, n=n)


def _draw(rng, n, d, rho, means, roots, classes):
    """``n`` points: inputs (``n x d``), clusters and labels (the cluster, or uniform over
    ``classes`` for random labels). ``roots`` (``K x p x p``): the clusters' covariance roots on a
    slice."""
    clusters = rng.choice(len(rho), size=n, p=rho)
    p = roots.shape[-1]
    Z = rng.normal(size=(n, d // p, p))
    for c, root in enumerate(roots):
        Z[clusters == c] = Z[clusters == c] @ root.T
    X = means[:, clusters].T / np.sqrt(d) + Z.reshape(n, d)
    labels = clusters if classes is None else rng.integers(classes, size=n)
    return X, clusters, labels


def _root(S):
    """The symmetric square root of positive semi-definite matrices."""
    evals, evecs = np.linalg.eigh(S)
    return (evecs * np.sqrt(np.maximum(evals, 0))[..., None, :]) @ np.swapaxes(evecs, -1, -2)


def _one_seed(theory: Mixture, rng, n: int, d: int, rho, G) -> dict:
    K = theory.K
    S = np.asarray(theory._covariances(), float)
    p = S.shape[-1]
    S = np.broadcast_to(S, (K, p, p))
    slices = d // p
    if theory.means.size:  # the profiles on every slice
        means = np.sqrt(float(theory.snr)) * np.tile(np.asarray(theory.means, float), slices).T
    else:  # on each coordinate of the slices, its share G / p of the Gram
        means = np.zeros((slices, p, K))
        for j in range(p):
            O, _ = np.linalg.qr(rng.normal(size=(slices, K)))
            means[:, j] = np.sqrt(slices) * O @ _root(G)
        means = means.reshape(d, K)
    roots = _root(S)
    if theory.labels == "teacher":
        return _teacher_seed(theory, rng, n, d, rho, means, S, roots)
    classes = None if theory.labels == "clusters" else (2 if theory.loss == "logistic" else K)
    X, _, labels = _draw(rng, n, d, rho, means, roots, classes)
    W, b = fit_scores(theory.loss, theory.scores.K, float(theory.lam), bool(theory.intercept), X / np.sqrt(d), labels)
    scores = X @ W.T / np.sqrt(d) + b
    X_test, _, labels_test = _draw(rng, max(n, 10_000), d, rho, means, roots, classes)
    scores_test = X_test @ W.T / np.sqrt(d) + b
    M, Q = W @ means / d, W @ W.T / d
    W_slices = W.reshape(len(W), slices, p)
    Q_clusters = np.einsum("pij,cjk,qik->cpq", W_slices, S, W_slices) / d  # W Sigma_c W^T / d
    out = {"train_loss": mean_loss(theory.loss, theory.scores.K, scores, labels), "norm": np.sqrt(np.trace(Q))}
    if theory.labels == "random":
        out["test_error"] = 1.0 - 1.0 / classes
    elif theory.loss == "logistic":
        margin = np.array([1.0, -1.0]) * (M[0] + b[0]) / np.sqrt(Q_clusters[:, 0, 0])
        out["test_error"] = float(np.sum(rho * _normal_cdf(-margin)))
    else:
        out["test_error"] = float(_population_error(*(jnp.asarray(a) for a in (M + b[:, None], Q_clusters, rho))))
    predicted = np.where(scores_test[:, 0] >= 0, 0, 1) if theory.loss == "logistic" else np.argmax(scores_test, axis=1)
    out["test_error_empirical"] = float(np.mean(predicted != labels_test))
    rows = M.shape[0]
    out |= {f"m_{k + 1}_{c + 1}": M[k, c] for k in range(rows) for c in range(K)}
    out |= {f"q_{k + 1}_{l + 1}": Q[k, l] for k in range(rows) for l in range(k, rows)}
    if theory.intercept:
        out |= {f"b_{k + 1}": b[k] for k in range(rows)}
    return out


def _teacher_labels(theory: Mixture, rng, X, theta, d):
    """The teacher's labels of the rows of ``X``: ``nu = theta.x / sqrt(d)``, then the channel."""
    nu = X @ theta / np.sqrt(d)
    noise = float(theory.noise)
    if theory.teacher == "linear":
        return nu + np.sqrt(noise) * rng.normal(size=nu.shape)
    if theory.teacher == "probit":
        return np.where(nu + np.sqrt(noise) * rng.normal(size=nu.shape) >= 0, 1.0, -1.0)
    y = np.where(nu >= 0, 1.0, -1.0)
    return np.where(rng.random(size=nu.shape) < noise, -y, y)


def _teacher_seed(theory: Mixture, rng, n, d, rho, means, S, roots) -> dict:
    """One seed with teacher labels: ``theta = means a + g``, ``g ~ N(0, I_d)``; the logistic fit on
    the labels +-1, or ridge regression on the labels (square loss) in closed form."""
    a = np.asarray(theory._teacher_alignment(), float)
    theta = means @ a + rng.normal(size=d)
    X, _, _ = _draw(rng, n, d, rho, means, roots, None)
    y = _teacher_labels(theory, rng, X, theta, d)
    F, lam, intercept = X / np.sqrt(d), float(theory.lam), bool(theory.intercept)
    if theory.loss == "logistic":
        W, b = fit_scores("logistic", 2, lam, intercept, F, np.where(y > 0, 0, 1))
    else:
        F_mean, y_mean = (F.mean(0), y.mean()) if intercept else (np.zeros(d), 0.0)
        w = np.linalg.solve((F - F_mean).T @ (F - F_mean) + lam * np.eye(d), (F - F_mean).T @ (y - y_mean))
        W, b = w[None, :], np.array([y_mean - w @ F_mean])
    w, scores = W[0], F @ W[0] + b[0]
    slices, p = d // len(S[0]), len(S[0])
    w_s, t_s = w.reshape(slices, p), theta.reshape(slices, p)
    # Per cluster, the fields' Gaussian law: means (M_c + b, tau_c), covariance [[Q_c, m_c], [m_c, kappa_c]].
    Q = np.einsum("ij,cjk,ik->c", w_s, S, w_s) / d
    mt = np.einsum("ij,cjk,ik->c", w_s, S, t_s) / d
    kappa = np.einsum("ij,cjk,ik->c", t_s, S, t_s) / d
    Mb, tau = w @ means / d + b[0], theta @ means / d
    if theory.loss == "logistic":
        train_loss = float(np.mean(np.logaddexp(0.0, -y * scores)))
    else:
        train_loss = float(np.mean(0.5 * (y - scores) ** 2))
    out = {"train_loss": train_loss, "norm": np.sqrt(w @ w / d), "q_1_1": w @ w / d, "mt": w @ theta / d}
    if theory.teacher == "linear":
        excess = float(np.sum(rho * ((tau - Mb) ** 2 + kappa - 2 * mt + Q)))
        out |= {"test_mse_excess": excess, "test_mse": excess + float(theory.noise)}
    else:
        from scipy.stats import multivariate_normal

        excess = 0.0
        for c in range(len(rho)):  # P(sign(omega) != sign(nu)) = 1 - P(both > 0) - P(both < 0)
            cov = np.array([[Q[c], mt[c]], [mt[c], kappa[c]]])
            both = sum(multivariate_normal(mean=s * np.array([Mb[c], tau[c]]), cov=cov).cdf(np.zeros(2))
                       for s in (-1.0, 1.0))
            excess += rho[c] * (1.0 - both)
        out["test_error"] = excess
    out |= {f"m_1_{c + 1}": w @ means[:, c] / d for c in range(len(rho))}
    out |= {f"mt_{c + 1}": mt[c] for c in range(len(rho))}
    if intercept:
        out["b_1"] = b[0]
    return out


def _normal_cdf(x):
    from scipy.special import ndtr

    return ndtr(x)


@jax.jit
def _population_error(M, Q, rho) -> jax.Array:
    """``1 - sum_c rho_c P(argmax = c)`` for scores ``N(M_c, Q_c)`` of cluster ``c`` (one compiled
    program per ``K``, not one per operation)."""
    K = len(rho)
    right = 0.0
    for c in range(K):
        D = jnp.asarray(np.delete(np.eye(K)[c] - np.eye(K), c, axis=0))
        right += rho[c] * kernels.orthant_probability(D @ M[:, c], D @ Q[c] @ D.T, 48)
    return 1.0 - right


def mean_loss(loss: str, K: int, scores, labels) -> float:
    """The average training loss of ``scores`` (``n x K``, or ``n x 1`` for the logistic loss)."""
    if loss == "logistic":
        return float(np.mean(np.logaddexp(0.0, -np.where(labels == 0, 1.0, -1.0) * scores[:, 0])))
    if loss == "square":
        return float(np.mean(0.5 * np.sum((np.eye(K)[labels] - scores) ** 2, axis=1)))
    top = np.logaddexp.reduce(scores, axis=1)
    return float(np.mean(top - scores[np.arange(len(labels)), labels]))


def fit_scores(loss: str, K: int, lam: float, intercept: bool, features, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` minimising ``sum_i l(c_i, W f_i + b) + (lam / 2) |W|^2`` on the features ``f``
    (``b = 0`` unless ``intercept``); see the module docstring for the solvers."""
    if loss == "square":
        Y = np.eye(K)[labels]
        # An unpenalised intercept: ridge on centred features and targets.
        F_mean, Y_mean = (features.mean(0), Y.mean(0)) if intercept else (np.zeros(features.shape[1]), np.zeros(K))
        F = features - F_mean
        W = np.linalg.solve(F.T @ F + lam * np.eye(features.shape[1]), F.T @ (Y - Y_mean)).T
        return W, (Y_mean - W @ F_mean) * np.ones(K)
    from sklearn.linear_model import LogisticRegression  # optional dependency: hdtheory[simulate]

    binary = K == 2
    C = (2.0 if loss == "cross-entropy" and binary else 1.0) / lam
    # scikit-learn does not penalise the intercept.
    model = LogisticRegression(C=C, fit_intercept=intercept, tol=1e-10, max_iter=100_000)
    model.fit(features, labels)
    if model.n_iter_.max() >= 100_000:
        raise RuntimeError(f"L-BFGS did not converge ({loss}, K = {K}, lam = {lam})")
    coef = model.coef_  # the field is coef . x / sqrt(d): our W
    intercept = np.asarray(model.intercept_, float) * np.ones(len(coef))
    if not binary:
        return coef, intercept - intercept.mean()  # the softmax does not see 1.b
    # scikit-learn's binary coefficient scores classes_[1] = cluster 2; ours scores cluster 1.
    w, beta = -coef[0], -intercept[0]
    if loss == "logistic":
        return w[None, :], np.array([beta])
    return np.stack([w / 2, -w / 2]), np.array([beta / 2, -beta / 2])
