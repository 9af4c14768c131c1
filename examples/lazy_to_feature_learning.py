"""From lazy to feature learning: ridge's test error after one gradient step of size eta = p^a.

erf features (p = d, n = 2d fresh samples for the readout, lam = 0.1) after one step on a batch of
n0 = 2d samples of a tanh single-index target, against the step exponent a from the lazy a = 0 to the
giant a = 1/2. Two models: `one-step-ridge` (the step eta = O(1), a rank-one spike on the features;
weights drawn at d = 300) and `giant-step` (eta = eta~ sqrt(p), rows moving by O(1), here
eta~ = p^(a - 1/2); one vmapped solve). Each holds at its end: at a < 1/2 and finite p the step's
spike is not yet large against the penalty, which `giant-step` (the limit p -> infinity at fixed
eta~, where it is) takes it to be, so that it stays at its eta~ -> 0+ value; at a = 1/2 the bulk moves,
which `one-step-ridge` leaves out. Points: ridge on networks stepped at d = 300. `random-features`
(no step) is the dotted line. Writes lazy_to_feature_learning.png.
Run: python examples/lazy_to_feature_learning.py [--quick]
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
from hdtheory.models.giant_step import normalised_step  # noqa: E402
from hdtheory.simulate import simulate  # noqa: E402

SETTING = {"activation": "erf", "target": "tanh", "alpha": 2.0, "alpha0": 2.0, "lam": 0.1}


def main(quick: bool, out: str) -> None:
    d = 200 if quick else 300
    exponents = jnp.linspace(0.0, 0.5, 11 if quick else 26)

    @jax.jit
    @jax.vmap
    def giant(eta):
        return hd.solve(hd.GiantStep(eta=eta, **SETTING)).observables["test_error_total"]

    @jax.jit
    @jax.vmap
    def lazy(eta):
        return hd.solve(hd.OneStepRidge(eta=eta, d=d, **SETTING)).observables["test_error_total"]

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.plot(exponents, giant(normalised_step(exponents, d)), "C0-", label=f"giant-step (eta~ = p^(a - 1/2)), p = {d}")
    ax.plot(exponents, lazy(float(d) ** exponents), "C1-", label=f"one-step-ridge (eta = O(1)), d = {d}")
    ax.axhline(float(giant(jnp.zeros(1))[0]), color="k", ls=":", lw=1, label="random features (no step)")

    shown = exponents[::5]
    sims = [simulate(hd.GiantStep(eta=float(normalised_step(a, d)), **SETTING), d=d, seeds=2 if quick else 4) for a in shown]
    ax.errorbar(shown, [s.mean["test_error_total"] for s in sims], [s.sem["test_error_total"] for s in sims],
                fmt="ko", ms=4, label=f"ridge on networks stepped at d = {d}")
    ax.set_xlabel("step exponent a (eta = p^a)")
    ax.set_ylabel("test error E(y - f)^2")
    ax.set_title("one gradient step: from lazy (a = 0) to giant (a = 1/2)")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}; error at a = 0, 1/2 (d = {d}): {np.asarray([s.mean['test_error_total'] for s in sims])[[0, -1]]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grid and fewer seeds")
    parser.add_argument("--out", default="lazy_to_feature_learning.png")
    args = parser.parse_args()
    main(args.quick, args.out)
