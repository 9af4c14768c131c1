"""Where the population gradient flow of a two-layer ReLU network ends, against its width.

A teacher of M = 8 ReLU units (orthonormal, second layer one) and students of K = M, M + 1, M + 2
units, each flow (``Committee(flow="gradient")``) from many random starts under ``vmap``
(Huang, Loureiro & Sarao Mannelli 2026: spurious minima isolated at K = M, global minima joined by
flat directions and more attractive as K grows). Each end point is classified by its error and by
the Hessian of the error in the weights (``hdtheory.dynamics.landscape``): a spurious minimum is
polished by ``steady_state`` and must have no negative eigenvalue, and as many zero eigenvalues as
the closed-form count of its flat directions and symmetries; at a global minimum of K > M students
the Hessian has ``K - M`` eigenvalues that vanish (the shares of the split teachers: the flat set)
and ``n (K - M) - (K - M)`` more that go to zero only as the flow creeps along the kernel's
``theta^3`` directions (the Gauss-Newton null space, ``n = M + K + 1``), then a gap.
Prints the table and writes relu_landscape.png (the fraction of flows at a global minimum).
The full run, 48 flows to tau = 1000 at each width, takes a few CPU minutes: 39 of 48 at a global
minimum at K = 8 (the other 9 at one family, eg = 0.021508, no zero and no negative eigenvalue,
the smallest 0.02135), 48 of 48 at K = 9 and K = 10, where every end point inspected has K - M
eigenvalues ~1e-8 (the flat set, `flat_dimension` = K - M), the next up to n (K - M) ~1e-3, then
0.091.
Run: python examples/relu_landscape.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402
from hdtheory.dynamics import landscape  # noqa: E402
from hdtheory.dynamics.committee import CommitteeState  # noqa: E402


def theory(K, M, Q0=None, R0=None):
    return hd.Committee(K=K, M=M, activation="relu", flow="gradient", time="lr", lr=1.0, Q0=Q0, R0=R0)


def ends(K, M, starts, t1, seed):
    """The end of each flow: ``eg`` and the state, students ``w_k ~ N(0, I / (K + M))`` in the span of
    the teacher and K more directions."""
    W = jax.random.normal(jax.random.PRNGKey(seed), (starts, K, K + M)) / np.sqrt(K + M)

    def flow(W):
        run = hd.integrate(theory(K, M, W @ W.T, W[:, :M]), t1, saveat=jnp.array([t1]), rtol=1e-7,
                           atol=1e-9, max_steps=100000)
        return run.observables["eg"][-1], jax.tree.map(lambda x: x[-1], run.state)

    return jax.jit(jax.vmap(flow))(W)


def survey(K, M, starts, t1, seed):
    """The errors at the ends, the spurious minima (error, Hessian counts) and the number of flows
    not settled by ``t1`` (on their way past a saddle: a negative eigenvalue)."""
    eg, end = ends(K, M, starts, t1, seed)
    eg = np.asarray(eg)
    rows, unsettled = [], 0
    for i in np.where(eg > 1e-4)[0]:
        state = jax.tree.map(lambda x: x[i], end)
        if K == M:  # isolated: Newton converges (off the kernel's kinks)
            sol = hd.steady_state(theory(K, M), state, max_steps=20)
            state = sol.state if bool(sol.converged) else state
        field = theory(K, M).vector_field(0.0, state)
        values = np.linalg.eigvalsh(landscape.hessian(theory(K, M), state))
        if values[0] < -1e-6 or max(np.abs(field.Q).max(), np.abs(field.R).max()) > 1e-6:
            unsettled += 1
            continue
        rows.append((float(theory(K, M).generalisation_error(state)), int(np.sum(np.abs(values) < 1e-6)),
                     landscape.flat_dimension(state), landscape.symmetry_dimension(theory(K, M), state),
                     float(values[values > 1e-6].min())))
    flats = []
    for i in np.where(eg <= 1e-6)[0][:3] if K > M else []:
        state = CommitteeState(Q=end.Q[i], R=end.R[i], v=end.v[i])
        values = np.linalg.eigvalsh(landscape.hessian(theory(K, M), state))
        n = M + K + 1
        flats.append((landscape.flat_dimension(state, 1e-4), values[K - M - 1], values[K - M],
                      values[n * (K - M) - 1], values[n * (K - M)]))
    return eg, rows, unsettled, flats


def main(quick: bool, out: str) -> None:
    M, widths, starts, t1 = (2, (2, 3), 4, 200.0) if quick else (8, (8, 9, 10), 48, 1000.0)
    fractions = []
    for K in widths:
        eg, rows, unsettled, flats = survey(K, M, starts, t1, seed=K)
        fractions.append(np.mean(eg <= 1e-6))
        print(f"K = {K}, M = {M}: of {starts} flows to tau = {t1:g}, {np.sum(eg <= 1e-6)} at a global "
              f"minimum (eg < 1e-6), {len(rows)} at spurious minima, {unsettled} not settled")
        families = {}  # minima equal up to permutations: same error, counts and curvature
        for eg_, zero, flat, symmetry, smallest in rows:
            key = (round(eg_, 6), zero, flat, symmetry, round(smallest, 5))
            families[key] = families.get(key, 0) + 1
        for (eg_, zero, flat, symmetry, smallest), count in families.items():
            print(f"  {count} at eg = {eg_:.6f}: no negative and {zero} zero Hessian eigenvalues "
                  f"(flat {flat} + symmetry {symmetry} predicted), smallest positive {smallest:.5f}")
        for flat, *values in flats:
            print(f"  global: flat set dimension {flat} (K - M = {K - M}); eigenvalues "
                  f"[{values[0]:.1e}, {values[1]:.1e}] at K - M and [{values[2]:.1e}, {values[3]:.1e}] "
                  f"at n (K - M) = {(M + K + 1) * (K - M)}")
    fig, ax = plt.subplots(figsize=(4.5, 3.5), constrained_layout=True)
    ax.plot(widths, fractions, "o-")
    ax.set_xticks(widths)
    ax.set_xlabel("student width K (teacher M = 8)")
    ax.set_ylabel("fraction of flows at a global minimum")
    ax.set_ylim(0, 1.05)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a teacher of two units, two widths, four starts, a short flow")
    parser.add_argument("--out", default="relu_landscape.png")
    args = parser.parse_args()
    main(args.quick, args.out)
