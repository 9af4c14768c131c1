r"""Diagonal linear networks with weight decay at finite ``d``
(:class:`~hdtheory.models.diagonal_network.DiagonalNetwork`): the LASSO fitted by scikit-learn.

**Instance.** ``d``, the theory's unless another is given (the command line's ``d``: the same ``n``,
``gamma``, ``lam`` and ``noise`` at that ``d``), and ``n = round(n)``;
the teacher ``u*_i = sqrt(d) i^(-gamma) g_i`` with ``g_i ~ N(0, 1)`` drawn afresh for each seed (the
theory averages over them: the risk of one teacher fluctuates by ``O(1)`` through its first few
coordinates, so that the seeds' spread, not ``d``, sets the comparison's tolerance); ``x ~ N(0,
I_d)``, ``y = u*.x / sqrt(d) + sqrt(noise) xi``. The network's minimiser, the LASSO
``argmin sum (y - u.x / sqrt(d))^2 / 2 + lam |u|_1``, is scikit-learn's ``Lasso`` on the features
``x / sqrt(d)`` with ``alpha = lam / n`` (its loss is averaged over the samples), without an
intercept, with scikit-learn's duality-gap tolerance ``tol = 1e-12``; at ``lam = 0`` (``n > d``) least
squares.

**Measured.** ``excess_risk = |u - u*|^2 / d`` (the exact population risk of the fit,
``|theta - theta*|^2``), ``risk_total`` (plus the noise), ``m = u*.u / d``, ``q = |u|^2 / d``,
``nonzero`` (the fraction of non-zero learned coordinates), ``zeros`` and ``active`` (their number).
"""

import jax
import numpy as np

from ..models.diagonal_network import DiagonalNetwork
from . import SimulationResult, check_size, simulate


@simulate.register
def simulate_diagonal_network(theory: DiagonalNetwork, *, d: int | None = None, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.diagonal_network.DiagonalNetwork`;
    see the module docstring. ``d`` is the theory's by default."""
    from sklearn.linear_model import Lasso

    d = round(float(theory.d)) if d is None else d
    check_size(d, seeds)
    n = max(round(float(theory.n)), 1)
    lam, noise, gamma = float(theory.lam), float(theory.noise), float(theory.gamma)
    key = jax.random.PRNGKey(0) if key is None else key
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    scales = np.sqrt(d) * np.arange(1, d + 1, dtype=float) ** -gamma
    samples = []
    for _ in range(seeds):
        u_star = scales * rng.standard_normal(d)
        X = rng.standard_normal((n, d)) / np.sqrt(d)
        y = X @ u_star + np.sqrt(noise) * rng.standard_normal(n)
        if lam > 0:
            u = Lasso(alpha=lam / n, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(X, y).coef_
        else:
            u = np.linalg.lstsq(X, y, rcond=None)[0]
        excess = np.sum((u - u_star) ** 2) / d
        nonzero = np.mean(u != 0)
        samples.append({
            "m": u_star @ u / d, "q": u @ u / d, "excess_risk": excess, "risk_total": excess + noise,
            "nonzero": nonzero, "zeros": 1 - nonzero, "active": d * nonzero,
        })
    return SimulationResult.from_samples(samples, d=d, n=n)
