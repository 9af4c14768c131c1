"""The spectrum of a two-layer network's features after one gradient step, over a histogram.

erf features (p = d, n = 2d) after a step of size eta = 6 on a tanh single-index target: the
density of the bulk (`learned-spectrum`, one vmapped solve over the grid) and the outlier the step
creates, drawn over the eigenvalues of `F F^T / n` of a network stepped at finite d (the bulk is that of the
features at initialisation; the outlier leaves it above `critical_eta`). Writes
learned_spectrum.png. Run: python examples/learned_spectrum.py [--quick]
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


def main(quick: bool, out: str) -> None:
    eta, d = 6.0, 200 if quick else 1000
    xs = 3.0 * jnp.linspace(0.0, 1.0, 200 if quick else 1000) ** 2

    density = jax.jit(jax.vmap(lambda x: hd.solve(hd.LearnedSpectrum(x=x, eta=eta)).observables["density"]))(xs)
    theory = hd.LearnedSpectrum(eta=eta)
    outlier, critical = (float(v) for v in jax.jit(lambda t: (t.top_eigenvalue()[0], t.critical_eta()))(theory))
    values = np.asarray(feature_eigenvalues(hd.LearnedSpectrum(eta=eta), d=d))

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.hist(values, bins=np.linspace(0.0, 1.05 * values[-2], 30 if quick else 80), density=True, alpha=0.4, label=f"eigenvalues of $FF^T/n$, d = {d}")
    ax.plot(xs, density, "k", lw=1.2, label="bulk density (theory)")
    ax.axvline(outlier, color="C3", ls="--", label=f"outlier (theory), eta = {eta:g} > eta_c = {critical:.2f}")
    ax.plot(values[-1], 0.02, "v", color="C3", ms=8, label="top eigenvalue (simulation)")
    ax.set_xlim(0, max(outlier, values[-1]) * 1.1)
    ax.set_ylim(0, 2.5)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title("erf features after one gradient step (p = d, n = 2d)")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}; outlier {outlier:.3f} (theory), {values[-1]:.3f} (d = {d})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grid and smaller d")
    parser.add_argument("--out", default="learned_spectrum.png")
    args = parser.parse_args()
    main(args.quick, args.out)
