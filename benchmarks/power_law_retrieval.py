r"""Phase retrieval on power-law data: hdtheory's one-ODE-over-all-modes solve against explicit Euler.

``PowerLawRetrieval(modes=P, decay=a, lr=1)`` from ``w = 1e-2 g``: the escape, the convergence of
the summary statistics and the spectral tail, to ``t1``, by default the end of the power-law regime
(the time at which the last mode is learned, ``8 lr lambda_P t1 = 1``). The baseline is what a
public code does: explicit Euler at a fixed step on the same per-mode equations
``dw_k/dt = -lr lambda_k (2 (3A - B) w_k - 4 C theta_k)``, written out here in NumPy.

Printed: the error of each method's curve ``eg(t)`` on 60 log-spaced times in ``[1, t1]`` against a
reference solve (hdtheory at ``rtol = 1e-11``), as the max relative error; hdtheory's ``rtol`` is
the loosest of ``1e-4 ... 1e-10`` below ``--accuracy`` (timed on a second call); Euler's ``dt`` is
halved from ``0.2`` until its error is below too, its errors measured with the same Euler step
compiled by JAX (checked equal to the NumPy loop on a short run); past ``--max-steps`` steps the
step that reaches the accuracy is predicted from Euler's first-order convergence. The NumPy loop's
time is its measured time per step (over ``--numpy-steps`` steps) times the steps it needs.

Run: ``python benchmarks/power_law_retrieval.py [--modes 1000] [--decay 1.5] [--t1 T] [--accuracy 1e-3]``.
"""

import argparse
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hdtheory as hd  # noqa: E402


def euler_step(xp, w, lam, theta, lr, dt):
    """One explicit Euler step of the per-mode equations (``xp`` NumPy or jax.numpy)."""
    A, B, C = xp.sum(lam * w * w), xp.sum(lam * theta * theta), xp.sum(lam * theta * w)
    return w - dt * lr * lam * (2 * (3 * A - B) * w - 4 * C * theta)


def error_of(xp, w, lam, theta):
    A, B, C = xp.sum(lam * w * w), xp.sum(lam * theta * theta), xp.sum(lam * theta * w)
    return 3 * A**2 - 2 * A * B - 4 * C**2 + 3 * B**2


def compiled_euler(w0, lam, theta, lr, dt, times):
    counts = np.diff(np.round(np.asarray(times) / dt).astype(np.int64), prepend=0)

    def advance(w, count):
        w = jax.lax.fori_loop(0, count, lambda _, v: euler_step(jnp, v, lam, theta, lr, dt), w)
        return w, error_of(jnp, w, lam, theta)

    return jax.lax.scan(advance, jnp.asarray(w0), jnp.asarray(counts))[1]


def main(modes, decay, t1, accuracy, numpy_steps, max_steps):
    theory = hd.PowerLawRetrieval(modes=modes, decay=decay, lr=1.0, sigma0=1e-2)
    lam, theta = (np.asarray(x) for x in theory.spectrum())
    if t1 is None:
        t1 = 1 / (8 * theory.lr * lam[-1])
    w0 = np.asarray(theory.init())
    times = np.minimum(np.logspace(0, math.log10(t1), 60), t1)
    ts = jnp.asarray(times)
    budget = int(40 * t1) + 10_000
    print(f"P = {modes}, a = {decay}, t1 = {t1:.3g}")
    reference = np.asarray(
        hd.integrate(theory, t1, saveat=ts, rtol=1e-11, max_steps=budget).observables["eg"]
    )
    error = lambda curve: float(np.max(np.abs(np.asarray(curve) - reference) / reference))

    run = eqx.filter_jit(
        lambda th, rtol: hd.integrate(th, t1, saveat=ts, rtol=rtol, max_steps=budget)
    )
    for rtol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10):
        run(theory, rtol).observables["eg"].block_until_ready()
        start = time.perf_counter()
        trajectory = run(theory, rtol)
        curve = trajectory.observables["eg"].block_until_ready()
        ours = time.perf_counter() - start
        if error(curve) < accuracy:
            break
    print(f"hdtheory: rtol {rtol:g}, error {error(curve):.2e}, {int(trajectory.steps)} steps, "
          f"{ours:.2f} s")

    check_times = np.array([0.5, 1.0, 2.0])
    check = np.asarray(jax.jit(lambda: compiled_euler(w0, lam, theta, 1.0, 0.05, check_times))())
    by_numpy = []
    for t in check_times:
        w = w0.copy()
        for _ in range(round(t / 0.05)):
            w = euler_step(np, w, lam, theta, 1.0, 0.05)
        by_numpy.append(error_of(np, w, lam, theta))
    print(f"compiled Euler against the NumPy loop (t <= 2): max difference "
          f"{np.max(np.abs(check - by_numpy)):.1e}")

    w = w0.copy()
    start = time.perf_counter()
    for _ in range(numpy_steps):
        w = euler_step(np, w, lam, theta, 1.0, 1e-3)
    per_step = (time.perf_counter() - start) / numpy_steps

    dt = 0.2
    while True:
        euler_run = jax.jit(lambda: compiled_euler(w0, lam, theta, 1.0, dt, times))
        euler_run().block_until_ready()
        start = time.perf_counter()
        curve = euler_run().block_until_ready()
        compiled = time.perf_counter() - start
        steps = round(t1 / dt)
        print(f"Euler: dt {dt:g}, error {error(curve):.2e} (error / dt {error(curve) / dt:.3f}), "
              f"compiled {compiled:.2f} s, NumPy {steps * per_step:.0f} s "
              f"({steps} steps x {per_step * 1e6:.0f} us)")
        if error(curve) < accuracy or 2 * steps > max_steps:
            break
        dt /= 2
    if not error(curve) < accuracy:
        shrink = error(curve) / accuracy
        dt, steps, compiled = dt / shrink, round(steps * shrink), compiled * shrink
        print(f"Euler, predicted by first-order convergence: dt {dt:.2g}, compiled {compiled:.1f} s, "
              f"NumPy {steps * per_step:.0f} s ({steps} steps)")
    print(f"ratio at equal accuracy (< {accuracy:g}): NumPy Euler / hdtheory = "
          f"{steps * per_step / ours:.1f} x, compiled Euler / hdtheory = {compiled / ours:.1f} x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=1000)
    parser.add_argument("--decay", type=float, default=1.5)
    parser.add_argument("--t1", type=float, default=None,
                        help="final time; by default the end of the power-law regime")
    parser.add_argument("--accuracy", type=float, default=1e-3)
    parser.add_argument("--numpy-steps", type=int, default=20000)
    parser.add_argument("--max-steps", type=int, default=4 * 10**6)
    args = parser.parse_args()
    main(args.modes, args.decay, args.t1, args.accuracy, args.numpy_steps, args.max_steps)
