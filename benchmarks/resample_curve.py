r"""Benchmark: a bootstrap learning curve with hdtheory against a plain NumPy/SciPy implementation.

What is compared. Both sides solve the fixed point of :class:`hdtheory.Resample` for ridge (square
loss, linear teacher, ``rho = 1``, ``noise = 0.5``, ``lam = 0.1``) under the pairs bootstrap, at 50
values of ``alpha = n / d`` in ``[0.2, 5]``: one resampled learner ``(m, q, V)``, the cross overlap
``q_ab`` of two learners on the same data, and the full-data estimator. hdtheory: one
``jax.vmap``-ped, ``jax.jit``-compiled :func:`hdtheory.solve`. Baseline, as a researcher would write
it: per point, the equations of Clarté et al. 2024 / Loureiro et al. 2022 (module docstring of
:mod:`hdtheory.models.resample`) with the Poisson(1) weights from ``scipy.stats.poisson`` (60
values), ``c_p = p / (1 + p V)``, ``Vhat = mhat = alpha E c_p``, ``qhat = alpha E c_p^2 e(q)``,
``qhat_ab = alpha (E c_p)^2 e(q_ab)``, ``e(x) = rho + noise - 2 m + x``, iterated
``x <- 0.5 T(x) + 0.5 x`` in NumPy to a relative change of ``1e-10``.

Printed: compile and run times of hdtheory, the baseline's time per point, the largest difference of
the true and resampled variances, and the ratio baseline / hdtheory (per point; and including
compilation). Times are printed, never asserted.

Run: ``python benchmarks/resample_curve.py [--points 50]``.
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import hdtheory as hd  # noqa: E402

LAM, RHO, NOISE, TOL = 0.1, 1.0, 0.5, 1e-10


def curve(alphas):
    def one(alpha):
        sol = hd.solve(hd.Resample(alpha=alpha, lam=LAM, rho=RHO, noise=NOISE, scheme="bootstrap"), tol=TOL)
        return sol.observables["true_variance"], sol.observables["resample_variance"], sol.converged

    return jax.vmap(one)(alphas)


def baseline(alpha, pmf):
    """``true_variance`` and ``resample_variance`` at ``alpha`` by damped iteration."""
    p = np.arange(len(pmf), dtype=float)

    def update(x):
        m, q, V, q_ab, m0, q0, V0 = x
        c = p / (1 + p * V)
        c1, c2 = np.sum(pmf * c), np.sum(pmf * c**2)
        hat, hat0 = alpha * c1, alpha / (1 + V0)  # Vhat = mhat (learner, full data)
        P, P0 = 1 / (LAM + hat), 1 / (LAM + hat0)
        return np.array([
            RHO * hat * P,
            (RHO * hat**2 + alpha * c2 * (RHO + NOISE - 2 * m + q)) * P**2,
            P,
            (RHO * hat**2 + alpha * c1**2 * (RHO + NOISE - 2 * m + q_ab)) * P**2,
            RHO * hat0 * P0,
            (RHO * hat0**2 + alpha * (RHO + NOISE - 2 * m0 + q0) / (1 + V0) ** 2) * P0**2,
            P0,
        ])

    x = np.array([0.1, 1.0, 1.0, 0.5, 0.1, 1.0, 1.0])
    for _ in range(100_000):
        new = update(x)
        if np.max(np.abs(new - x) / (1 + np.abs(x))) < TOL:
            break
        x = 0.5 * new + 0.5 * x
    m, q, _, q_ab, m0, q0, _ = new
    return q0 - m0**2 / RHO, q - q_ab


def main(points: int) -> None:
    alphas = jnp.linspace(0.2, 5.0, points)
    lowered = jax.jit(curve).lower(alphas)
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_time = time.perf_counter() - start
    jax.block_until_ready(compiled(alphas))  # warm
    start = time.perf_counter()
    true_variance, resample_variance, converged = jax.block_until_ready(compiled(alphas))
    run_time = time.perf_counter() - start

    pmf = stats.poisson.pmf(np.arange(60), 1.0)
    start = time.perf_counter()
    reference = np.array([baseline(float(a), pmf) for a in np.asarray(alphas)])
    base = (time.perf_counter() - start) / points
    ours = run_time / points
    gap = max(
        np.max(np.abs(reference[:, 0] - np.asarray(true_variance)) / reference[:, 0]),
        np.max(np.abs(reference[:, 1] - np.asarray(resample_variance)) / reference[:, 1]),
    )
    print(f"ridge bootstrap curve, {points} alphas: converged {int(converged.sum())}/{points}")
    print(f"  hdtheory: compile {compile_time:.2f} s, run {run_time * 1e3:.1f} ms ({ours * 1e3:.3f} ms/point)")
    print(f"  baseline: {base * 1e3:.1f} ms/point, max relative difference of the variances {gap:.1e}")
    print(f"  ratio baseline/hdtheory per point: {base / ours:.0f}x (with compilation: "
          f"{base * points / (compile_time + run_time):.2f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50, help="alpha values of the curve")
    main(parser.parse_args().points)
