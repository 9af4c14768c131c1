r"""Quadratic networks with weight decay at finite ``d``
(:class:`~hdtheory.models.quadratic_network.QuadraticNetwork`): nuclear-norm matrix compressed sensing
on the positive semi-definite cone (or, with a second layer of both signs, ``negative > 0``, on
symmetric matrices), solved by accelerated proximal gradient.

**Instance.** ``d``, the theory's unless another is given, and ``n = round(n)`` (the theory's ``n``
scaled by ``(d / d_theory)^2`` when ``d`` is given, so that ``n / d^2`` is kept); the teacher ``S* = O
diag(s) O^T``, ``s_i = sqrt(d) i^(-gamma)`` for ``i <= rank d``, ``O`` uniform (drawn afresh for
each seed); ``x ~ N(0, I_d)``, ``Z = x x^T - I``, ``y = <Z, S*> / sqrt(d) + sqrt(noise) xi``.

**Fit.** ``argmin_{S >= 0} sum (y - <Z, S> / sqrt(d))^2 / 2 + (lam d / 2) |S|_*`` (the theory's
objective halved; with ``negative = kappa > 0``, ``S`` any symmetric matrix and ``|S|_* = tr S_+ + tr
S_- / kappa``) by FISTA with restarts: a gradient step of ``1 / L`` (``L`` the Hessian's top eigenvalue
by power iteration), then the proximal operator, the eigenvalues' positive part moved left by ``c =
lam d / (2 L)`` (and, with both signs, their negative part moved right by ``c / kappa``); stopped
when a step moves ``S`` by less than ``tol`` relative, at most ``iterations`` steps (reported:
``steps``, and ``moved``, the last relative step).

**Measured.** ``excess_risk = 2 |S - S*|_F^2 / d`` (the exact population risk of the centred
network), ``risk_total``, ``matrix_error``, ``rank_fraction`` (eigenvalues above ``1e-8`` of the
largest in magnitude), ``rank``, ``zeros``, ``trace = tr S / d``, ``square = |S|_F^2 / d``.
"""

import jax
import numpy as np

from ..models.quadratic_network import QuadraticNetwork
from . import SimulationResult, check_size, simulate


def _fit(X, y, lam, negative, tol, iterations):
    """FISTA with restarts for the objective of the module docstring; returns ``(S, steps, moved)``."""
    n, d = X.shape

    def forward(S):
        return (np.sum((X @ S) * X, axis=1) - np.trace(S)) / np.sqrt(d)

    def adjoint(r):
        return ((X.T * r) @ X - np.sum(r) * np.eye(d)) / np.sqrt(d)

    V = np.eye(d) / np.sqrt(d)
    for _ in range(100):
        V = adjoint(forward(V))
        L = np.linalg.norm(V)
        V /= L
    L *= 1.01
    cut = lam * d / (2 * L)

    def prox(A):
        w, U = np.linalg.eigh(0.5 * (A + A.T))
        kept = np.maximum(w - cut, 0.0) + (np.minimum(w + cut / negative, 0.0) if negative > 0 else 0.0)
        return (U * kept) @ U.T

    S = np.zeros((d, d))
    P, k, moved = S, 1.0, np.inf
    for step in range(1, iterations + 1):
        new = prox(P - adjoint(forward(P) - y) / L)
        moved = np.linalg.norm(new - S) / max(np.linalg.norm(new), 1e-300)
        if np.sum((P - new) * (new - S)) > 0:  # restart when the momentum points uphill
            k = 1.0
        k_new = 0.5 * (1 + np.sqrt(1 + 4 * k**2))
        P = new + (k - 1) / k_new * (new - S)
        S, k = new, k_new
        if moved < tol:
            break
    return S, step, moved


@simulate.register
def simulate_quadratic_network(
    theory: QuadraticNetwork, *, d: int | None = None, seeds: int = 4, key=None, tol: float = 1e-7,
    iterations: int = 20_000,
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.quadratic_network.QuadraticNetwork`;
    see the module docstring."""
    d_theory = round(float(theory.d))
    d = d_theory if d is None else d
    check_size(d, seeds)
    n = max(round(float(theory.n) * (d / d_theory) ** 2), 1)
    lam, noise, gamma, rank = float(theory.lam), float(theory.noise), float(theory.gamma), float(theory.rank)
    key = jax.random.PRNGKey(0) if key is None else key
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    i = np.arange(1, d + 1, dtype=float)
    s = np.where(i <= rank * d, np.sqrt(d) * i**-gamma, 0.0)
    samples = []
    for _ in range(seeds):
        O, R = np.linalg.qr(rng.standard_normal((d, d)))
        O *= np.sign(np.diag(R))
        S_star = (O * s) @ O.T
        X = rng.standard_normal((n, d))
        y = (np.sum((X @ S_star) * X, axis=1) - np.trace(S_star)) / np.sqrt(d)
        y += np.sqrt(noise) * rng.standard_normal(n)
        S, steps, moved = _fit(X, y, lam, float(theory.negative), tol, iterations)
        eig = np.abs(np.linalg.eigvalsh(S))
        rank_fraction = np.mean(eig > 1e-8 * max(eig.max(), 1e-300))
        error = np.sum((S - S_star) ** 2) / d
        samples.append({
            "excess_risk": 2 * error, "risk_total": 2 * error + noise, "matrix_error": error,
            "rank_fraction": rank_fraction, "rank": d * rank_fraction, "zeros": 1 - rank_fraction,
            "trace": np.trace(S) / d, "square": np.sum(S**2) / d, "steps": steps, "moved": moved,
        })
    return SimulationResult.from_samples(samples, d=d, n=n)
