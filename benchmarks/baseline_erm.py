r"""A plain NumPy/SciPy reference for the ERM replica fixed point: logistic loss, sign teacher.

This is the same saddle point as :class:`hdtheory.ERM` (``loss="logistic"``, ``teacher="sign"``,
``noise=0``), written the way it is usually written in research code today, one point at a time:

* the Gaussian integrals over ``xi ~ N(0, 1)`` are adaptive ``scipy.integrate.quad`` calls on the
  real line, one per conjugate, each integrand summing the two labels ``y = +-1`` explicitly;
* the teacher channel is ``Z0(y) = Phi(y omega0 / sqrt(V0))``, with
  ``d Z0 / d omega0 = y phi(y omega0 / sqrt(V0)) / sqrt(V0)``, ``omega0 = m / sqrt(q) xi`` and
  ``V0 = rho - m^2 / q``;
* the proximal operator is a scalar ``scipy.optimize.brentq`` root of
  ``z - omega - V y sigmoid(-y z) = 0`` on the bracket ``[omega, omega + V y]``, once per integrand
  evaluation, ``omega = sqrt(q) xi``;
* the conjugates, with ``f = (prox - omega) / V``, in the direct form of the papers,

  .. math::
      \hat m = \alpha\, \mathbb{E}_\xi \sum_y \partial_\omega Z_0\, f, \quad
      \hat q = \alpha\, \mathbb{E}_\xi \sum_y Z_0\, f^2, \quad
      \hat V = -\alpha\, \mathbb{E}_\xi \sum_y Z_0\, (\partial_\omega \mathrm{prox} - 1) / V,

  with ``d prox / d omega = 1 / (1 + V s (1 - s))``, ``s = sigmoid(y prox)``;
* the overlaps ``m = rho mhat / (lam + Vhat)``, ``q = (rho mhat^2 + qhat) / (lam + Vhat)^2``,
  ``V = 1 / (lam + Vhat)``, iterated with damping ``x <- 0.5 T(x) + 0.5 x`` on ``(m, q, V)`` from
  ``(0.1 rho, rho, 1)`` until ``max |T(x) - x| / (1 + |x|) < tol``.

Run as a script it solves a few points and, when ``hdtheory`` is importable, compares the test error
``arccos(m / sqrt(rho q)) / pi`` with :func:`hdtheory.solve`; the two agree to ~1e-8 over the
benchmark grid, small ``lam`` included.
"""

import argparse
import math
import time

import numpy as np
from scipy import integrate, optimize, special

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _gauss(xi):
    return math.exp(-0.5 * xi * xi) / _SQRT_2PI


def prox_logistic(y, omega, V):
    """``argmin_z (z - omega)^2 / (2 V) + log(1 + exp(-y z))`` by Brent's method."""
    def g(z):
        return z - omega - V * y * special.expit(-y * z)

    a, b = omega, omega + V * y
    lo, hi = (a, b) if a < b else (b, a)
    g_lo, g_hi = g(lo), g(hi)
    if g_lo * g_hi >= 0:  # the root is at an end up to rounding (|omega| huge, far in the tails)
        return lo if abs(g_lo) <= abs(g_hi) else hi
    return optimize.brentq(g, lo, hi, xtol=1e-14)


def conjugates(m, q, V, alpha, rho=1.0, epsabs=1e-11, epsrel=1e-10):
    """``(mhat, qhat, Vhat)`` at ``(m, q, V)`` by three adaptive quadratures over ``xi``."""
    sq = math.sqrt(q)
    V0 = rho - m * m / q
    if not (q > 0 and V > 0 and V0 > 0):
        return math.nan, math.nan, math.nan
    s0 = math.sqrt(V0)

    def f_and_dprox(y, xi):
        omega = sq * xi
        z = prox_logistic(y, omega, V)
        s = special.expit(y * z)
        return (z - omega) / V, 1.0 / (1.0 + V * s * (1.0 - s))

    def mhat_integrand(xi):
        u = m / sq * xi / s0
        total = 0.0
        for y in (-1.0, 1.0):
            f, _ = f_and_dprox(y, xi)
            total += y * _gauss(y * u) / s0 * f
        return total * _gauss(xi)

    def qhat_integrand(xi):
        u = m / sq * xi / s0
        total = 0.0
        for y in (-1.0, 1.0):
            f, _ = f_and_dprox(y, xi)
            total += special.ndtr(y * u) * f * f
        return total * _gauss(xi)

    def Vhat_integrand(xi):
        u = m / sq * xi / s0
        total = 0.0
        for y in (-1.0, 1.0):
            _, dprox = f_and_dprox(y, xi)
            total += special.ndtr(y * u) * (dprox - 1.0) / V
        return total * _gauss(xi)

    def E(g):
        return integrate.quad(g, -np.inf, np.inf, epsabs=epsabs, epsrel=epsrel, limit=200)[0]

    return alpha * E(mhat_integrand), alpha * E(qhat_integrand), -alpha * E(Vhat_integrand)


def update(x, alpha, lam, rho=1.0):
    """One application of the fixed-point map ``T`` to ``x = (m, q, V)``."""
    mhat, qhat, Vhat = conjugates(*x, alpha, rho)
    precision = lam + Vhat
    m = rho * mhat / precision
    q = (rho * mhat**2 + qhat) / precision**2
    return np.array([m, q, 1.0 / precision])


def solve(alpha, lam, rho=1.0, tol=1e-8, max_iter=2000, damping=0.5):
    """Damped iteration to the fixed point; returns a dict with the overlaps and diagnostics."""
    x = np.array([0.1 * rho, rho, 1.0])
    converged = False
    for it in range(1, max_iter + 1):
        tx = update(x, alpha, lam, rho)
        r = np.max(np.abs(tx - x) / (1 + np.abs(x)))
        x = (1 - damping) * tx + damping * x
        if not np.isfinite(r):
            break
        if r < tol:
            converged = True
            break
    m, q, V = x
    return {
        "m": m,
        "q": q,
        "V": V,
        "test_error": math.acos(max(-1.0, min(1.0, m / math.sqrt(rho * q)))) / math.pi,
        "iterations": it,
        "converged": converged,
        "residual": r,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", default="0.5:0.01,2:0.1,5:1,1:0.001,4:0.001",
                        help="comma-separated alpha:lam pairs")
    args = parser.parse_args(argv)
    points = [tuple(map(float, p.split(":"))) for p in args.points.split(",")]

    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import hdtheory as hd
    except ImportError:  # pragma: no cover
        hd = None

    print(f"{'alpha':>6} {'lam':>8} {'iters':>6} {'time [s]':>9} {'test_error':>20} "
          f"{'|diff| vs hdtheory':>19}")
    for alpha, lam in points:
        t0 = time.perf_counter()
        sol = solve(alpha, lam)
        dt = time.perf_counter() - t0
        diff = ""
        if hd is not None:
            ref = hd.solve(hd.ERM(alpha=alpha, lam=lam, loss="logistic", teacher="sign"), tol=1e-8)
            diff = f"{abs(sol['test_error'] - float(ref.observables['test_error'])):.2e}"
        flag = "" if sol["converged"] else " (not converged)"
        print(f"{alpha:6.3g} {lam:8.3g} {sol['iterations']:6d} {dt:9.2f} "
              f"{sol['test_error']:20.15f} {diff:>19}{flag}")


if __name__ == "__main__":
    main()
