r"""The replica fixed point of softmax cross-entropy on a ``K``-cluster Gaussian mixture in plain NumPy,
one point at a time: the baseline of ``benchmarks/mixture_grid.py``.

The same equations as :mod:`hdtheory.models.mixture` (isotropic covariance, orthogonal means of
squared norm ``snr d``, balanced clusters, no intercept), written as a researcher would: the state
``(M, Q, V)`` in the ``K - 1`` coordinates orthogonal to ``1``, a product Gauss-Hermite rule
(``numpy.polynomial.hermite_e``) over the fields, the proximal operator of every node and cluster by
Newton's method vectorised over the nodes (with step halving where the objective does not
decrease), and the damped iteration ``x <- (1 - eta) x + eta T(x)`` until the relative change is
below ``tol``.
"""

import numpy as np
from scipy.special import logsumexp, ndtr


def _basis(K):
    q, _ = np.linalg.qr(np.concatenate([np.ones((K, 1)), np.eye(K)[:, : K - 1]], axis=1))
    return q[:, 1:]


def _rule(P, order):
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    grid = np.stack(np.meshgrid(*([x] * P), indexing="ij"), -1).reshape(-1, P)
    weights = np.prod(np.stack(np.meshgrid(*([w] * P), indexing="ij"), -1).reshape(-1, P), -1)
    return grid, weights


def _prox(onehot, omega, V, S, steps=100):
    """``argmin_u (u - omega)^T V^{-1} (u - omega) / 2 + CE(c, S u)`` for every row of ``omega``."""
    Vinv = np.linalg.inv(V)
    u = omega.copy()

    def objective(u):
        z = u @ S.T
        d = u - omega
        return 0.5 * np.einsum("np,pq,nq->n", d, Vinv, d) + logsumexp(z, axis=1) - z @ onehot

    value = objective(u)
    for _ in range(steps):
        z = u @ S.T
        p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
        grad = (u - omega) @ Vinv + (p - onehot) @ S
        H = np.einsum("kp,nk,kq->npq", S, p, S) - np.einsum("nk,kp,nl,lq->npq", p, S, p, S)
        step = np.linalg.solve(Vinv[None] + H, grad[..., None])[..., 0]
        t = np.ones(len(u))
        for _ in range(30):
            trial = u - t[:, None] * step
            new = objective(trial)
            bad = new > value + 1e-12 * np.abs(value)
            if not bad.any():
                break
            t = np.where(bad, 0.5 * t, t)
        u, value = trial, new
        if np.max(np.abs(grad)) < 1e-13 * (1 + np.max(np.abs(u))):
            break
    z = u @ S.T
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    H = np.einsum("kp,nk,kq->npq", S, p, S) - np.einsum("nk,kp,nl,lq->npq", p, S, p, S)
    return u, H, logsumexp(z, axis=1) - z @ onehot


def solve(alpha, lam, snr=1.0, K=3, order=24, tol=1e-8, eta=0.5, max_iterations=5000):
    """``(test_error, iterations)`` of the fixed point at one ``(alpha, lam)``."""
    S = _basis(K)
    P = K - 1
    rho = np.full(K, 1.0 / K)
    G = snr * np.eye(K)
    xi, w = _rule(P, order)
    M, Q, V = 0.1 * S.T @ G, np.eye(P), np.eye(P)
    for iteration in range(1, max_iterations + 1):
        L = np.linalg.cholesky(Q)
        Mhat, Qhat, Vhat = np.zeros((P, K)), np.zeros((P, P)), np.zeros((P, P))
        for c in range(K):
            omega = M[:, c] + xi @ L.T
            h, H, _ = _prox(np.eye(K)[c], omega, V, S)
            f = (h - omega) @ np.linalg.inv(V)
            A = np.linalg.solve(np.eye(P)[None] + H @ V, H)
            Mhat[:, c] = alpha * rho[c] * w @ f
            Qhat += alpha * rho[c] * np.einsum("n,np,nq->pq", w, f, f)
            Vhat += alpha * rho[c] * np.einsum("n,npq->pq", w, A)
        V_new = np.linalg.inv(lam * np.eye(P) + Vhat)
        M_new, Q_new = V_new @ Mhat @ G, V_new @ (Qhat + Mhat @ G @ Mhat.T) @ V_new
        change = max(np.max(np.abs(a - b) / (1 + np.abs(b))) for a, b in ((M_new, M), (Q_new, Q), (V_new, V)))
        M, Q, V = (1 - eta) * M + eta * M_new, (1 - eta) * Q + eta * Q_new, (1 - eta) * V + eta * V_new
        if change < tol:
            break
    return _test_error(M, Q, S, rho), iteration


def _test_error(M, Q, S, rho):
    """``1 - sum_c rho_c P(z_c > z_k for all k)`` for ``z ~ N(S M_c, S Q S^T)``: for ``K = 3`` the
    bivariate normal orthant by Owen's formula through ``scipy.stats.multivariate_normal``."""
    from scipy.stats import multivariate_normal

    K = len(rho)
    right = 0.0
    for c in range(K):
        D = np.delete(np.eye(K)[c] - np.eye(K), c, axis=0)
        mean, cov = D @ S @ M[:, c], D @ S @ Q @ S.T @ D.T
        if K == 2:
            right += rho[c] * ndtr(mean[0] / np.sqrt(cov[0, 0]))
        else:
            right += rho[c] * multivariate_normal(mean=-mean, cov=cov).cdf(np.zeros(K - 1))
    return 1.0 - right
