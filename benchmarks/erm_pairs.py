r"""Benchmark: the ERM fixed point per point, for every loss x teacher pair, against NumPy/SciPy.

What is compared. For each pair that :class:`hdtheory.ERM` accepts (square and Huber with every
teacher; logistic and hinge with the classification teachers), the fixed point at ``lam = 0.1`` over
``--points`` values of ``alpha`` in ``[0.2, 5]``:

* hdtheory: one ``jax.vmap``-ped, ``jax.jit``-compiled :func:`hdtheory.solve` (Newton), timed after
  compilation; its time per point is the run time over the number of points.
* the baseline, one point at a time as research code does it, damped iteration
  ``x <- 0.5 T(x) + 0.5 x`` on ``(m, q, V)`` to ``1e-8``:

  - where the channel integrals have closed forms (square loss with the linear, sign and probit
    teachers; Huber with the linear teacher) it uses the **same closed forms** in NumPy/SciPy
    (``erm`` module docstring), so that the ratio measures the solver and the compiled program, not
    a quadrature;
  - otherwise the conjugates are adaptive ``scipy.integrate.quad`` integrals over ``xi`` of the
    direct formulas, the labels ``+-1`` summed, the prox in closed form (hinge, Huber) or by
    ``brentq`` (logistic), as in ``benchmarks/baseline_erm.py``; it is timed on
    ``--baseline-points`` points. The logistic teacher (its partition function is itself an
    integral) has no such baseline here.

Printed per pair: hdtheory's compile time, the time per point of both, their ratio
(baseline / hdtheory) and the largest difference of the test errors over the points both solved.
Times are printed, never asserted.

Run: ``python benchmarks/erm_pairs.py [--points 64] [--baseline-points 3]``.
"""

import argparse
import math
import os
import sys
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate, special  # noqa: E402

import hdtheory as hd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baseline_erm import prox_logistic  # noqa: E402

LAM, RHO, DELTA, TOL = 0.1, 1.0, 1.0, 1e-8
NOISE = {"linear": 0.1, "sign": 0.0, "probit": 0.1, "logistic": 0.1}
PAIRS = [(loss, teacher) for loss in ("square", "huber") for teacher in ("linear", "sign", "probit", "logistic")]
PAIRS += [(loss, teacher) for loss in ("logistic", "hinge") for teacher in ("sign", "probit", "logistic")]


# -- the baseline ---------------------------------------------------------------------------------


def closed_form_conjugates(loss, teacher, m, q, V, alpha):
    """The square loss through ``(E y^2, E z y)``; Huber with a linear teacher by truncated Gaussian
    moments of the residual (``erm`` module docstring). ``None`` for the other pairs."""
    noise = NOISE[teacher]
    if loss == "square" and teacher != "logistic":
        if teacher == "linear":
            second, cross = RHO + noise, RHO
        else:
            s0 = 0.0 if teacher == "sign" else noise
            second, cross = 1.0, RHO * math.sqrt(2 / (math.pi * (RHO + s0)))
        s2 = second - 2 * m / RHO * cross + q
        return alpha * cross / (RHO * (1 + V)), alpha * s2 / (1 + V) ** 2, alpha / (1 + V)
    if loss == "huber" and teacher == "linear":
        s = math.sqrt(RHO + noise - 2 * m + q)
        t = DELTA * (1 + V) / s
        inside, outside = special.erf(t / math.sqrt(2)), special.erfc(t / math.sqrt(2))
        density = math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
        slope = inside / (1 + V)
        return alpha * slope, alpha * (s * s * (inside - 2 * t * density) / (1 + V) ** 2 + DELTA**2 * outside), alpha * slope
    return None


def prox(loss, y, omega, V):
    if loss == "logistic":
        return prox_logistic(y, omega, V)
    if loss == "hinge":
        u = y * omega
        return omega if u >= 1 else (omega + V * y if u <= 1 - V else y)
    if loss == "huber":
        r = y - omega
        return (omega + V * y) / (1 + V) if abs(r) <= DELTA * (1 + V) else omega + V * DELTA * math.copysign(1, r)
    return (omega + V * y) / (1 + V)


def quad_conjugates(loss, teacher, m, q, V, alpha):
    """Adaptive quadrature over ``xi`` of the direct formulas, labels ``+-1`` (sign, probit)."""
    sq, V0 = math.sqrt(q), RHO - m * m / q
    s0 = math.sqrt(V0 + (NOISE[teacher] if teacher == "probit" else 0.0))
    h = 1e-7

    def terms(xi):
        out = np.zeros(3)
        omega, u = sq * xi, m / sq * xi / s0
        for y in (-1.0, 1.0):
            z = prox(loss, y, omega, V)
            f = (z - omega) / V
            dprox = (prox(loss, y, omega + h, V) - prox(loss, y, omega - h, V)) / (2 * h)
            out += (y * math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi) / s0 * f,
                    special.ndtr(y * u) * f * f, -special.ndtr(y * u) * (dprox - 1) / V)
        return out * math.exp(-0.5 * xi * xi) / math.sqrt(2 * math.pi)

    return tuple(alpha * integrate.quad(lambda xi: terms(xi)[k], -np.inf, np.inf, epsabs=1e-11, epsrel=1e-10,
                                        limit=200)[0] for k in range(3))


def baseline_solve(loss, teacher, alpha):
    conjugates = closed_form_conjugates if closed_form_conjugates(loss, teacher, 0.1, 1.0, 1.0, 1.0) else quad_conjugates
    x = np.array([0.1 * RHO, RHO if teacher == "linear" else 1.0, 1.0])
    for _ in range(5000):
        mhat, qhat, Vhat = conjugates(loss, teacher, *x, alpha)
        precision = LAM + Vhat
        tx = np.array([RHO * mhat / precision, (RHO * mhat**2 + qhat) / precision**2, 1 / precision])
        done = np.max(np.abs(tx - x) / (1 + np.abs(x))) < TOL
        x = 0.5 * tx + 0.5 * x
        if done:
            break
    m, q, _ = x
    if teacher == "linear":
        return RHO - 2 * m + q
    return math.acos(max(-1.0, min(1.0, m / math.sqrt(RHO * q)))) / math.pi


# -- hdtheory -------------------------------------------------------------------------------------


def hdtheory_solve(loss, teacher, alphas):
    run = jax.jit(jax.vmap(lambda a: hd.solve(hd.ERM(alpha=a, lam=LAM, rho=RHO, noise=NOISE[teacher], delta=DELTA,
                                                     loss=loss, teacher=teacher))))
    start = time.perf_counter()
    compiled = run.lower(alphas).compile()
    compile_time = time.perf_counter() - start
    compiled(alphas).converged.block_until_ready()
    start = time.perf_counter()
    sol = compiled(alphas)
    sol.converged.block_until_ready()
    return sol, compile_time, time.perf_counter() - start


def main(argv=None):
    warnings.simplefilter("ignore", integrate.IntegrationWarning)  # quad's rounding notes near 1e-11
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--baseline-points", type=int, default=3, help="points the quadrature baseline solves")
    args = parser.parse_args(argv)
    alphas = jnp.linspace(0.2, 5.0, args.points)
    print(f"{'loss':>9} {'teacher':>9} {'baseline':>10} {'compile s':>9} {'ours/pt':>10} {'base/pt':>10} "
          f"{'ratio':>9} {'max |diff|':>10}")
    for loss, teacher in PAIRS:
        sol, compile_time, run_time = hdtheory_solve(loss, teacher, alphas)
        ours = run_time / args.points
        closed = closed_form_conjugates(loss, teacher, 0.1, 1.0, 1.0, 1.0) is not None
        kind = "closed" if closed else ("quad" if teacher != "logistic" else "-")
        if kind == "-":
            print(f"{loss:>9} {teacher:>9} {kind:>10} {compile_time:9.2f} {ours:10.2e} {'':>10} {'':>9} {'':>10}")
            continue
        index = np.arange(args.points) if closed else np.linspace(0, args.points - 1, args.baseline_points).astype(int)
        start = time.perf_counter()
        reference = np.array([baseline_solve(loss, teacher, float(alphas[i])) for i in index])
        theirs = (time.perf_counter() - start) / len(index)
        error = np.asarray(sol.observables["test_error"])[index]
        diff = np.max(np.abs(error - reference))
        print(f"{loss:>9} {teacher:>9} {kind:>10} {compile_time:9.2f} {ours:10.2e} {theirs:10.2e} "
              f"{theirs / ours:9.1f} {diff:10.1e}")


if __name__ == "__main__":
    main()
