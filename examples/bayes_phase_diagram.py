"""Phase diagram of the teacher-student binary perceptron (Rademacher prior, sign channel).

The Bayes-optimal generalisation error (the branch of largest free entropy), the error of AMP from
its uninformed start (the branch followed upward in alpha), the information-theoretic and
algorithmic thresholds located by root finding, and GAMP at finite d on top. Barbier, Krzakala,
Macris, Miolane and Zdeborova 2019, PNAS, Fig. 2. Writes bayes_phase_diagram.png.
Run: python examples/bayes_phase_diagram.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(quick: bool = False, out: str = "bayes_phase_diagram.png") -> dict:
    order, panels = 32, 8  # the thresholds to 1e-6 (to their third digit at 24 / 6 already)
    theory = hd.BayesGLM(prior="rademacher", channel="sign", order=order, panel_order=panels)
    alphas = np.linspace(0.3, 2.0, 8 if quick else 24)
    branches = hd.continuation(theory, "alpha", alphas, damped_steps=500)
    it = hd.threshold(theory, "alpha", "information-theoretic", (1.1, 1.4), num=4, damped_steps=500)
    alg = hd.threshold(theory, "alpha", "algorithmic", (1.3, 1.6), num=4, damped_steps=500)
    print(f"alpha_IT = {float(it.value):.4f}, alpha_alg = {float(alg.value):.4f}")

    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    ax.plot(alphas, branches["stable_gen_error"], label="Bayes-optimal")
    ax.plot(alphas, branches["gen_error"].sel(branch="up"), "--", label="AMP")
    for value, name in ((it.value, r"$\alpha_{IT}$"), (alg.value, r"$\alpha_{alg}$")):
        ax.axvline(float(value), color="gray", lw=0.7)
        ax.text(float(value), 0.95, name, ha="right", va="top", rotation=90, transform=ax.get_xaxis_transform())
    d, gamp_alphas = (300, alphas[-1:]) if quick else (2000, alphas[::2])
    gamp = []
    for i, alpha in enumerate(gamp_alphas):
        instance = hd.BayesGLM(alpha=float(alpha), prior="rademacher", channel="sign")
        sim = hd.simulate.simulate(instance, d=d, seeds=2, steps=50)
        gamp.append(sim)
        label = "GAMP" if i == 0 else None
        ax.errorbar(alpha, sim.mean["gen_error"], yerr=sim.sem["gen_error"], fmt="o", color="k", ms=3, label=label)
    ax.set_xlabel(r"$\alpha = n/d$")
    ax.set_ylabel("generalisation error")
    ax.legend()
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")
    return {"alpha_it": it, "alpha_alg": alg, "branches": branches, "gamp": dict(zip(gamp_alphas, gamp))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and a smaller d")
    parser.add_argument("--out", default="bayes_phase_diagram.png")
    args = parser.parse_args()
    main(args.quick, args.out)
