"""Escape time of online SGD on a sequence single-index target against the learning rate and the
sequence length L (Arnaboldi et al. 2025), spherical SGD.

The target sums over the tokens, f* = sum_l He_2(nu_l) / sqrt(2) (sequence information exponent 2),
no positional encoding, the overlap starting at m0 = 0.03 (a random start at d ~ 1000). The student
sums over the tokens too (solid), or, in the full figure, is tied (dashed): f = He_2(s) / sqrt(2) of
the token average s = sum_l z_l / sqrt(L). Left (not in --quick): the plateau, the overlap against
time at lr = 0.05 / L for each L. Right: the escape time (the overlap reaching 1/2, an event of the
integrator, one vmapped call per L over the learning rates) against lr L, both times lr L. The
summed student's curves meet: each token's drift adds up, so the escape is L times faster with L
tokens at small learning rates, and the eta^2 noise of SGD, of order (eta L)^2, slows it and then
stops it near lr L ~ 1 (earlier for one token; the time is +inf there, no point drawn). The tied
student sees the summed target through its mean given the teacher's token average
N = sum_l nu_l / sqrt(L), He_2(N) / sqrt(2), and the rest as label noise of variance L - 1: no drift
gained from L, its curves L times higher. Writes ssi_escape.png (--quick: about 10 s of CPU; the
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
    lengths = (1, 2) if quick else (1, 4, 16, 64)
    forms = ("sum",) if quick else ("sum", "tied")
    scaled = jnp.logspace(-2, -0.6, 4) if quick else jnp.logspace(-2, 0, 9)  # lr L
    fig, axes = plt.subplots(1, 1 if quick else 2, figsize=(4.5 if quick else 9, 4),
                             constrained_layout=True, squeeze=False)
    left, right = axes[0, 0], axes[0, -1]
    ts = jnp.logspace(-1, 4, 80)
    for k, L in enumerate(lengths):
        for form in forms:
            def theory(lr):
                return hd.SequenceSingleIndex(L=L, lr=lr, m0=0.03, target=SQUARE, student=SQUARE,
                                              student_form=form)

            style = dict(color=f"C{k}", ls="-" if form == "sum" else "--")
            label = f"L = {L}" if form == "sum" else None
            if not quick:
                curve = hd.integrate(theory(jnp.asarray(0.05 / L)), ts[-1], saveat=ts).observables
                left.semilogx(ts, curve["overlap"], label=label, **style)

            def escape(lr):
                trajectory = hd.integrate(theory(lr), 1e6, saveat=jnp.array([0.0]),
                                          event=hd.crossing("overlap", 0.5), max_steps=20_000)
                return trajectory.event_time

            times = jax.jit(jax.vmap(escape))(scaled / L)
            right.loglog(scaled, scaled * times, "o", ms=3, label=label, **style)
    if not quick:
        left.set_xlabel("t (samples / d)")
        left.set_ylabel("overlap m")
        left.set_title("lr = 0.05 / L; dashed: tied student", fontsize=9)
        left.legend(fontsize=8)
    right.set_xlabel("lr x L")
    right.set_ylabel("lr x L x escape time")
    right.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="two sequence lengths, four rates, summed students")
    parser.add_argument("--out", default="ssi_escape.png")
    args = parser.parse_args()
    main(args.quick, args.out)
