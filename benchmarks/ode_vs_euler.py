r"""Committee-machine ODEs: hdtheory's adaptive diffrax solve against fixed-step explicit Euler.

K = M = 4, erf, T = I, v = v* = 1, lr = 0.5, label noise 0.01, from Q0 = I and random R0 (entries
0.05 N(0, 1)), to ``t = 10^4``: a plateau, the escape near ``t ~ 300`` and the noisy asymptote.
The baseline is what public codes do: explicit Euler at a fixed step ``dt`` on the Saad-Solla /
Goldt et al. equations, with the erf integrals ``I2, I3, I4, J2`` written out here (independently of
:mod:`hdtheory.kernels.activations`), one setting at a time.

Printed:

1. the error of each method's curve ``eg(t)`` on 200 log-spaced times against a reference solve
   (hdtheory at ``rtol = 1e-12``), as the max relative error over the curve. hdtheory's ``rtol`` is
   the loosest of ``1e-4 ... 1e-10`` below ``--accuracy``; Euler's ``dt`` is halved from ``0.1``
   until it is below too. Euler's error at each ``dt`` is computed with the same Euler step compiled
   by JAX (``lax.fori_loop``; checked equal to the NumPy loop on a short run), since the NumPy loop
   needs ~10^7 steps; past ``--max-steps`` steps the step that reaches the accuracy is predicted
   from Euler's first-order convergence (the printed ``error / dt`` settles to a constant). The
   NumPy loop's time is its measured time per step (over ``--numpy-steps`` steps; a fixed-step loop
   costs the same at every step) times the steps it needs. Ratios:
   NumPy Euler / hdtheory and compiled Euler / hdtheory, hdtheory compiled and timed on a second call;
2. ``--lrs`` learning rates in ``[0.1, 1]`` in one vmapped call against as many separate compiled
   integrations (timed on 20 of them and scaled).

Run: ``python benchmarks/ode_vs_euler.py [--t1 10000] [--accuracy 1e-3] [--lrs 1000]``.
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


# -- the baseline: explicit Euler, written once for NumPy and for jax.numpy -------------------------


def _i2(xp, c11, c12, c22):
    return (2 / math.pi) * xp.arcsin(c12 / xp.sqrt((1 + c11) * (1 + c22)))


def _i3(xp, C, a, b, c):
    c11, c12, c13 = C[a, a], C[a, b], C[a, c]
    c23, c33 = C[b, c], C[c, c]
    return (2 / math.pi) * (c23 * (1 + c11) - c12 * c13) / ((1 + c11) * xp.sqrt((1 + c11) * (1 + c33) - c13**2))


def _i4(xp, C, a, b, c, d):
    c11, c12, c13, c14 = C[a, a], C[a, b], C[a, c], C[a, d]
    c22, c23, c24 = C[b, b], C[b, c], C[b, d]
    c33, c34, c44 = C[c, c], C[c, d], C[d, d]
    l4 = (1 + c11) * (1 + c22) - c12**2
    l0 = l4 * c34 - c23 * c24 * (1 + c11) - c13 * c14 * (1 + c22) + c12 * c13 * c24 + c12 * c14 * c23
    l1 = l4 * (1 + c33) - c23**2 * (1 + c11) - c13**2 * (1 + c22) + 2 * c12 * c13 * c23
    l2 = l4 * (1 + c44) - c24**2 * (1 + c11) - c14**2 * (1 + c22) + 2 * c12 * c14 * c24
    return (4 / math.pi**2) / xp.sqrt(l4) * xp.arcsin(l0 / xp.sqrt(l1 * l2))


def _j2(xp, c11, c12, c22):
    return (2 / math.pi) / xp.sqrt((1 + c11) * (1 + c22) - c12**2)


class Euler:
    """Explicit Euler on ``(Q, R)``, ``K = M``, ``v = v* = 1``, ``T = I``, with ``xp`` NumPy or jax.numpy."""

    def __init__(self, xp, K, lr, noise):
        self.xp, self.K, self.lr, self.noise = xp, K, lr, noise
        n = 2 * K
        self.c = xp.asarray(np.concatenate([np.ones(K), -np.ones(K)]))
        self.i3_index = np.meshgrid(np.arange(K), np.arange(n), np.arange(n), indexing="ij")
        self.i4_index = np.meshgrid(np.arange(K), np.arange(K), np.arange(n), np.arange(n), indexing="ij")
        self.pairs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")

    def omega(self, Q, R):
        return self.xp.block([[Q, R], [R.T, self.xp.eye(self.K)]])

    def eg(self, Q, R):
        C, (i, j) = self.omega(Q, R), self.pairs
        return 0.5 * self.c @ _i2(self.xp, C[i, i], C[i, j], C[j, j]) @ self.c

    def step(self, Q, R, dt):
        xp, K, lr, c = self.xp, self.K, self.lr, self.c
        C = self.omega(Q, R)
        drift = -lr * xp.einsum("kba,a->kb", _i3(xp, C, *self.i3_index), c)
        second = xp.einsum("klab,a,b->kl", _i4(xp, C, *self.i4_index), c, c)
        k, l = self.pairs[0][:K, :K], self.pairs[1][:K, :K]
        second = second + self.noise * _j2(xp, C[k, k], C[k, l], C[l, l])
        return Q + dt * (drift[:, :K] + drift[:, :K].T + lr**2 * second), R + dt * drift[:, K:]


def numpy_euler(euler, Q, R, dt, steps):
    """The public codes' loop: ``steps`` Euler steps in Python, eg at the end."""
    for _ in range(steps):
        Q, R = euler.step(Q, R, dt)
    return euler.eg(Q, R)


def compiled_euler(euler, Q, R, dt, times):
    """The same steps compiled by JAX, eg at ``times`` (multiples of ``dt`` up to rounding)."""
    counts = np.diff(np.round(np.asarray(times) / dt).astype(np.int64), prepend=0)

    def advance(state, count):
        state = jax.lax.fori_loop(0, count, lambda _, s: euler.step(*s, dt), state)
        return state, euler.eg(*state)

    return jax.lax.scan(advance, (jnp.asarray(Q), jnp.asarray(R)), jnp.asarray(counts))[1]


# -- the comparison -------------------------------------------------------------------------------


def main(t1: float, accuracy: float, n_lrs: int, numpy_steps: int, max_steps: int) -> None:
    K, lr, noise = 4, 0.5, 0.01
    theory = hd.Committee(K=K, M=K, lr=lr, noise=noise, q0=1.0, r0=0.05)
    state = theory.init()
    Q0, R0 = np.asarray(state.Q), np.asarray(state.R)
    times = np.minimum(np.concatenate([[0.0], np.logspace(-1, math.log10(t1), 199)]), t1)
    ts = jnp.asarray(times)
    reference = np.asarray(hd.integrate(theory, t1, saveat=ts, rtol=1e-12, atol=1e-14).observables["eg"])
    error = lambda curve: float(np.max(np.abs(np.asarray(curve) - reference) / reference))

    run = eqx.filter_jit(lambda th, rtol: hd.integrate(th, t1, saveat=ts, rtol=rtol, atol=rtol * 1e-2).observables["eg"])
    for rtol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10):
        run(theory, rtol).block_until_ready()
        start = time.perf_counter()
        curve = run(theory, rtol).block_until_ready()
        ours = time.perf_counter() - start
        if error(curve) < accuracy:
            break
    print(f"hdtheory: rtol {rtol:g}, error {error(curve):.2e}, {ours * 1e3:.1f} ms")

    jax_euler = Euler(jnp, K, lr, noise)
    check_times = np.arange(1, 11) * 0.5
    check = np.asarray(jax.jit(lambda: compiled_euler(jax_euler, Q0, R0, 0.05, check_times))())
    np_euler = Euler(np, K, lr, noise)
    by_numpy = [numpy_euler(np_euler, Q0, R0, 0.05, round(t / 0.05)) for t in check_times]
    print(f"compiled Euler against the NumPy loop (t <= 5): max difference {np.max(np.abs(check - by_numpy)):.1e}")

    start = time.perf_counter()
    numpy_euler(np_euler, Q0, R0, 1e-3, numpy_steps)
    per_step = (time.perf_counter() - start) / numpy_steps
    dt = 0.1
    with jax.default_device(jax.devices("cpu")[0]):  # a sequential loop of tiny steps: the CPU's work
        while True:
            euler_run = jax.jit(lambda: compiled_euler(jax_euler, Q0, R0, dt, times))
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
    if error(curve) >= accuracy:
        # Euler is first order: the error / dt column settles to a constant; the step that reaches
        # the accuracy follows from the last one, and a fixed-step loop's time from its step count.
        shrink = error(curve) / accuracy
        dt, steps, compiled = dt / shrink, round(steps * shrink), compiled * shrink
        print(f"Euler, predicted by first-order convergence: dt {dt:.2g}, compiled {compiled:.1f} s, "
              f"NumPy {steps * per_step:.0f} s ({steps} steps)")
    print(f"ratio at equal accuracy (< {accuracy:g}): NumPy Euler / hdtheory = {steps * per_step / ours:.0f} x, "
          f"compiled Euler / hdtheory = {compiled / ours:.0f} x")

    lrs = jnp.linspace(0.1, 1.0, n_lrs)
    make = lambda lr: eqx.tree_at(lambda th: th.lr, theory, lr)
    batched = jax.jit(jax.vmap(lambda lr: hd.integrate(make(lr), t1, saveat=ts, rtol=rtol).observables["eg"]))
    single = jax.jit(lambda lr: hd.integrate(make(lr), t1, saveat=ts, rtol=rtol).observables["eg"])
    batched(lrs).block_until_ready()
    single(lrs[0]).block_until_ready()
    start = time.perf_counter()
    batched(lrs).block_until_ready()
    vmapped = time.perf_counter() - start
    sample = min(20, n_lrs)
    start = time.perf_counter()
    for lr in lrs[:sample]:
        single(lr).block_until_ready()
    separate = (time.perf_counter() - start) * n_lrs / sample
    print(f"{n_lrs} learning rates on {jax.devices()[0].platform}: vmapped {vmapped:.2f} s, "
          f"separate {separate:.2f} s (ratio {separate / vmapped:.1f} x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t1", type=float, default=1e4)
    parser.add_argument("--accuracy", type=float, default=1e-3)
    parser.add_argument("--lrs", type=int, default=1000)
    parser.add_argument("--numpy-steps", type=int, default=20000,
                        help="steps of the NumPy loop timed for its time per step")
    parser.add_argument("--max-steps", type=int, default=10**6,
                        help="the longest compiled Euler run; beyond it, first-order extrapolation")
    args = parser.parse_args()
    main(args.t1, args.accuracy, args.lrs, args.numpy_steps, args.max_steps)
