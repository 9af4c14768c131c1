"""Escape time of online SGD on a sequence single-index target against the learning rate and the
sequence length L (Arnaboldi et al. 2025), spherical SGD.

Target and student sum over the tokens, f = f* = sum_l He_2(z_l) / sqrt(2) (sequence information
exponent 2), no positional encoding, the overlap starting at m0 = 0.03 (a random start at
d ~ 1000). Left (not in --quick): the plateau, the overlap against time at one learning rate for
each L. Right: the escape time (the overlap reaching 1/2, an event of the integrator, one vmapped
call per L over the learning rates) times L: at small learning rates the curves meet, the escape L times faster with L
tokens (each token's drift adds up); at larger ones the eta^2 noise of SGD, which grows with L,
slows the escape and then stops it (the time is +inf beyond the largest learning rate that
escapes, smaller for longer sequences). Writes ssi_escape.png (--quick: about 10 s of CPU; the
full figure a few minutes).
Run: python examples/ssi_escape.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SQUARE = (0.0, 0.0, 1.0)


def main(quick: bool, out: str) -> None:
    lengths = (1, 2) if quick else (1, 2, 3)
    rates = jnp.logspace(-2, -0.6, 4 if quick else 8)
    fig, axes = plt.subplots(1, 1 if quick else 2, figsize=(4.5 if quick else 9, 4),
                             constrained_layout=True, squeeze=False)
    left, right = axes[0, 0], axes[0, -1]
    ts = jnp.logspace(-1, 3, 60)
    for L in lengths:
        def theory(lr):
            return hd.SequenceSingleIndex(L=L, lr=lr, m0=0.03, target=SQUARE, student=SQUARE)

        if not quick:
            curve = hd.integrate(theory(jnp.asarray(0.05)), ts[-1], saveat=ts).observables
            left.semilogx(ts, curve["overlap"], label=f"L = {L}")

        def escape(lr):
            trajectory = hd.integrate(theory(lr), 1e4, saveat=jnp.array([0.0]),
                                      event=hd.crossing("overlap", 0.5), max_steps=20_000)
            return trajectory.event_time

        times = jax.jit(jax.vmap(escape))(rates)
        right.loglog(rates, L * times, "o-", ms=3, label=f"L = {L}")
    if not quick:
        left.set_xlabel("t (samples / d)")
        left.set_ylabel("overlap m")
        left.set_title("lr = 0.05", fontsize=9)
        left.legend(fontsize=8)
    right.set_xlabel("learning rate")
    right.set_ylabel("L x escape time")
    right.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sequence lengths, four rates")
    parser.add_argument("--out", default="ssi_escape.png")
    args = parser.parse_args()
    main(args.quick, args.out)
