"""The spectrum of a two-layer network's features after one giant gradient step, over a histogram.

tanh features and a tanh single-index target (p = d, n = 2d, a batch of n0 = d) after one step of
size eta = eta~ sqrt(p), eta~ = 2, which moves every row by O(1) and with them the bulk: the density
of the moved bulk (`giant-spectrum`, one vmapped solve over the grid), its right edge, and the bulk
of the features at initialisation (eta~ = 0), drawn over the eigenvalues of `F F^T / n` of a network
stepped at finite d (`hdtheory.simulate.learned_spectrum.feature_eigenvalues`); the features' mean
makes an outlier of order p, drawn in the right panel against its limit p E[mu_0^2]. The quick mode
takes 24 Hermite nodes instead of 64. Writes giant_spectrum.png.
Run: python examples/giant_spectrum.py [--quick]
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
from hdtheory.simulate.learned_spectrum import feature_eigenvalues  # noqa: E402

SETTING = dict(gamma=1.0, alpha=2.0, alpha0=1.0, activation="tanh", target="tanh", eps=0.01)


def main(quick: bool, out: str) -> None:
    eta, d, order = 2.0, *((200, 24) if quick else (1000, 64))
    xs = jnp.linspace(0.0, 2.2, 60 if quick else 400)

    def bulk(x, eta):
        solution = hd.solve(hd.GiantSpectrum(x=x, eta=eta, order=order, **SETTING))
        obs = solution.observables
        return jnp.where(solution.converged, obs["density"], jnp.nan), obs["edge"], obs["outlier_per_unit"]

    curves = jax.jit(jax.vmap(jax.vmap(bulk, (0, None)), (None, 0)))(xs, jnp.asarray([eta, 0.0]))
    (density, initial), (edge, _), (per_unit, _) = (np.asarray(c) for c in curves)
    theory = hd.GiantSpectrum(eta=eta, **SETTING)
    values = np.asarray(feature_eigenvalues(theory, d=d))
    p = values.size

    fig, (ax, right) = plt.subplots(1, 2, figsize=(8, 4), width_ratios=(3, 1), constrained_layout=True)
    ax.hist(values[:-1], bins=np.linspace(0.0, float(xs[-1]), 30 if quick else 80), density=True, alpha=0.4,
            label=f"eigenvalues of $FF^T/n$ (top one left out), d = {d}")
    ax.plot(xs, density, "k", lw=1.2, label=f"moved bulk (theory), eta~ = {eta:g}")
    ax.plot(xs, initial, "C0--", lw=1.0, label="bulk at initialisation (eta~ = 0)")
    ax.axvline(edge[0], color="C2", ls=":", label=f"right edge (theory) {edge[0]:.3f}")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    right.axvline(p * per_unit[0], color="C3", ls="--", label="p E[mu_0^2] (theory)")
    right.plot(values[-1], 0.5, "v", color="C3", ms=9, label="top eigenvalue")
    right.set_xlim(0.8 * min(values[-1], p * per_unit[0]), 1.2 * max(values[-1], p * per_unit[0]))
    right.set_yticks([])
    right.set_xlabel("eigenvalue")
    right.set_title("the mean's outlier", fontsize=9)
    right.legend(fontsize=7)
    fig.suptitle("tanh features after one giant step (p = d, n = 2d, n0 = d)")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}; edge {edge[0]:.3f} (theory), second eigenvalue {values[-2]:.3f}; outlier "
          f"{p * per_unit[0]:.2f} (theory), {values[-1]:.2f} (d = {d})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grid and smaller d")
    parser.add_argument("--out", default="giant_spectrum.png")
    args = parser.parse_args()
    main(args.quick, args.out)
