"""The positional-semantic phase diagram of single-layer attention trained by SGD (Arnaboldi et al.
2025): the attention matrix softmax(z z^T) of L = 2 tokens with the opposite-paired encoding, the
target (1 - omega) softmax(nu nu^T) + omega softmax(a^2 c c^T), over (a, omega).

Each point is classified by `positional_semantic`: which pure point has the lower error, positional
(e, m) = (1, 0) or semantic (0, 1), and along which overlap SGD leaves the start (the larger growth
rate at (0, 0)); the four colours are the four combinations (the paper's diagram also marks where
several minima coexist, not computed here). One vmapped, compiled call per row of omega. Writes
ssi_attention_phase.png (--quick: a 6 x 6 grid, a few seconds of CPU; the full 24 x 24 grid about
a minute).
Run: python examples/ssi_attention_phase.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

import hdtheory as hd  # noqa: E402
from hdtheory.dynamics.ssi import positional_semantic  # noqa: E402

LABELS = ["semantic minimum, semantic start", "semantic minimum, positional start",
          "positional minimum, semantic start", "positional minimum, positional start"]


def main(quick: bool, out: str) -> None:
    n = 6 if quick else 24
    strengths, omegas = np.linspace(0.7, 1.0, n), np.linspace(0.4, 1.0, n)
    base = hd.SequenceSingleIndex(L=2, lr=0.05, student_form="attention-matrix",
                                  target_form="attention-matrix", positions=(1.0, -1.0),
                                  points=2**14)

    @jax.jit
    def row(omega):
        def one(a):
            phase = positional_semantic(eqx.tree_at(lambda t: (t.strength, t.omega), base, (a, omega)))
            positional_minimum = phase["eg_positional"] < phase["eg_semantic"]
            return 2 * positional_minimum + (phase["growth_e"] > phase["growth_m"])

        return jax.vmap(one)(jnp.asarray(strengths))

    region = np.stack([np.asarray(row(jnp.asarray(w))) for w in omegas])
    colours = ["#339966", "#ff5050", "#cc9900", "#3333ff"]
    fig, ax = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
    ax.pcolormesh(strengths, omegas, region, cmap=ListedColormap(colours), vmin=-0.5, vmax=3.5,
                  shading="nearest")
    for k, label in enumerate(LABELS):
        if np.any(region == k):
            ax.plot([], [], "s", color=colours[k], label=label)
    ax.legend(loc="lower left", fontsize=7)
    ax.set_xlabel("a (positional strength)")
    ax.set_ylabel("omega (positional weight)")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="ssi_attention_phase.png")
    args = parser.parse_args()
    main(args.quick, args.out)
