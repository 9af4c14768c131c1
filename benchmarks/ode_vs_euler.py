r"""Committee-machine ODEs: hdtheory's adaptive diffrax solve against plain NumPy explicit Euler.

K = M = 4, erf, T = I, v = v* = 1, lr = 0.5, from Q0 = I and random R0 (entries 0.2 N(0, 1)), to
``t = 10^4``.
The NumPy baseline is what public codes do: explicit Euler at a fixed step ``dt`` on the
Saad-Solla / Goldt et al. equations, with the erf integrals ``I2, I3, I4`` written out in NumPy
(independently of :mod:`hdtheory.kernels.activations`), one setting at a time.

Printed:

1. the error of each method's curve ``eg(t)`` on 200 log-spaced times against a reference solve
   (hdtheory at ``rtol = 1e-12``); the Euler step is halved from ``dt = 0.1`` until its error is
   below ``--accuracy`` (relative, max over the curve); hdtheory's ``rtol`` is the loosest of
   ``1e-4 ... 1e-10`` that reaches the same accuracy; then the ratio of their wall times
   (hdtheory compiled, timed on a second call);
2. 1000 learning rates in ``[0.1, 1]`` in one vmapped call against 1000 separate (compiled)
   integrations, timed on 20 of them and scaled.

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


# -- the NumPy baseline ---------------------------------------------------------------------------


def _i2(c11, c12, c22):
    return (2 / math.pi) * np.arcsin(c12 / np.sqrt((1 + c11) * (1 + c22)))


def _i3(C, a, b, c):
    c11, c12, c13 = C[a, a], C[a, b], C[a, c]
    c23, c33 = C[b, c], C[c, c]
    return (2 / math.pi) * (c23 * (1 + c11) - c12 * c13) / ((1 + c11) * np.sqrt((1 + c11) * (1 + c33) - c13**2))


def _i4(C, a, b, c, d):
    c11, c12, c13, c14 = C[a, a], C[a, b], C[a, c], C[a, d]
    c22, c23, c24 = C[b, b], C[b, c], C[b, d]
    c33, c34, c44 = C[c, c], C[c, d], C[d, d]
    l4 = (1 + c11) * (1 + c22) - c12**2
    l0 = l4 * c34 - c23 * c24 * (1 + c11) - c13 * c14 * (1 + c22) + c12 * c13 * c24 + c12 * c14 * c23
    l1 = l4 * (1 + c33) - c23**2 * (1 + c11) - c13**2 * (1 + c22) + 2 * c12 * c13 * c23
    l2 = l4 * (1 + c44) - c24**2 * (1 + c11) - c14**2 * (1 + c22) + 2 * c12 * c14 * c24
    return (4 / math.pi**2) / np.sqrt(l4) * np.arcsin(l0 / np.sqrt(l1 * l2))


def euler(Q, R, lr, t1, dt, times):
    """Explicit Euler on (Q, R), K = M, v = v* = 1, T = I; eg at ``times``."""
    K = Q.shape[0]
    n = 2 * K
    c = np.concatenate([np.ones(K), -np.ones(K)])
    k_, b_, a_ = np.meshgrid(np.arange(K), np.arange(n), np.arange(n), indexing="ij")
    k4, l4, a4, b4 = np.meshgrid(np.arange(K), np.arange(K), np.arange(n), np.arange(n), indexing="ij")
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")

    def eg(C):
        return 0.5 * c @ _i2(C[ii, ii], C[ii, jj], C[jj, jj]) @ c

    out, j = [], 0
    steps = int(round(t1 / dt))
    for s in range(steps + 1):
        t = s * dt
        C = np.block([[Q, R], [R.T, np.eye(K)]])
        while j < len(times) and times[j] <= t + 1e-9 * dt:
            out.append(eg(C))
            j += 1
        if s == steps:
            break
        drift = -lr * np.einsum("kba,a->kb", _i3(C, k_, b_, a_), c)
        second = np.einsum("klab,a,b->kl", _i4(C, k4, l4, a4, b4), c, c)
        Q = Q + dt * (drift[:, :K] + drift[:, :K].T + lr**2 * second)
        R = R + dt * drift[:, K:]
    return np.array(out)


# -- the comparison -------------------------------------------------------------------------------


def main(t1: float, accuracy: float, n_lrs: int) -> None:
    K = 4
    # Initial overlaps large enough that the escape from the plateau is well conditioned: with tiny
    # ones the escape time is set by solver errors of the size of the asymmetry left on the plateau.
    theory = hd.Committee(K=K, M=K, lr=0.5, q0=1.0, r0=0.2)
    state = theory.init()
    times = np.minimum(np.concatenate([[0.0], np.logspace(-1, math.log10(t1), 199)]), t1)
    ts = jnp.asarray(times)
    reference = np.asarray(hd.integrate(theory, t1, saveat=ts, rtol=1e-12, atol=1e-14).observables["eg"])
    error = lambda curve: float(np.max(np.abs(curve - reference) / reference))

    run = eqx.filter_jit(lambda th, rtol: hd.integrate(th, t1, saveat=ts, rtol=rtol, atol=rtol * 1e-2).observables["eg"])
    for rtol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10):
        run(theory, rtol).block_until_ready()
        start = time.perf_counter()
        curve = np.asarray(run(theory, rtol).block_until_ready())
        ours = time.perf_counter() - start
        if error(curve) < accuracy:
            break
    print(f"hdtheory: rtol {rtol:g}, error {error(curve):.2e}, {ours * 1e3:.1f} ms")

    Q0, R0 = np.asarray(state.Q), np.asarray(state.R)
    dt = 0.1
    while True:
        start = time.perf_counter()
        curve = euler(Q0, R0, 0.5, t1, dt, times)
        theirs = time.perf_counter() - start
        print(f"NumPy Euler: dt {dt:g}, error {error(curve):.2e}, {theirs:.1f} s")
        if error(curve) < accuracy or dt < 1e-3:
            break
        dt /= 2
    print(f"ratio at equal accuracy (< {accuracy:g}): Euler / hdtheory = {theirs / ours:.0f} x")

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
    print(f"{n_lrs} learning rates: vmapped {vmapped:.2f} s, separate {separate:.2f} s "
          f"(ratio {separate / vmapped:.1f} x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t1", type=float, default=1e4)
    parser.add_argument("--accuracy", type=float, default=1e-3)
    parser.add_argument("--lrs", type=int, default=1000)
    args = parser.parse_args()
    main(args.t1, args.accuracy, args.lrs)
