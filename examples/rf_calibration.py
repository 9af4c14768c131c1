"""Calibration of logistic regression on random features against p / n: the peak and its removal.

Features erf(F x / sqrt(d)) with Gaussian F, n = d samples (alpha = n / d = 1), p = gamma d features,
labels from a probit teacher (noise 0.1). Against p / n: the expected calibration error and the test
error of the classifier at small lam (1e-3 and 1e-2), with lam tuned by hd.tune on the test error
and on the test negative log-likelihood (one vmapped call over p / n), and the error-optimal one
after temperature scaling (its optimal_temperature). At small lam the ECE peaks at the interpolation
threshold (where the training set becomes separable in the features); the NLL-tuned lam and
temperature scaling remove the peak, while the error-optimal lam leaves a bump in the ECE past it
(Clarté, Loureiro, Krzakala, Zdeborová 2022, "On double-descent in uncertainty quantification in
overparametrized models"). Right: the calibration curves at the peak and far past it. Points with
error bars: simulations (scikit-learn) at lam = 1e-2. Writes rf_calibration.png.
Run: python examples/rf_calibration.py [--quick]
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

import hdtheory as hd  # noqa: E402

NOISE, LAMS = 0.1, (1e-3, 1e-2)
LAM_RANGE = hd.Log(low=1e-5, high=1e2)
CURVES = (*(f"lam = {lam:g}" for lam in LAMS), "error-optimal lam", "error-optimal lam, T-scaled", "NLL-optimal lam")


def theory(gamma, lam, nodes):
    return hd.RandomFeatures(alpha=1.0, gamma=gamma, lam=lam, teacher="probit", noise=NOISE, nodes=nodes)


def curves(ratios, nodes):
    """Solutions against p / n (= gamma at alpha = 1), and whether each tune converged: one compiled
    program."""

    def at(gamma):
        out = {f"lam = {lam:g}": hd.solve(theory(gamma, lam, nodes)) for lam in LAMS}
        start = theory(gamma, 1.0, nodes)  # inside the range that holds both optima
        best = hd.tune(start, "test_error", {"lam": LAM_RANGE})
        nll = hd.tune(start, "test_nll", {"lam": LAM_RANGE})
        out["error-optimal lam"], out["NLL-optimal lam"] = best.solution, nll.solution
        # The temperature enters the calibration only, not the fixed point: same state, new observables.
        scaled = eqx.tree_at(lambda t: t.temperature, best.theory, best.solution.observables["optimal_temperature"])
        out["error-optimal lam, T-scaled"] = eqx.tree_at(
            lambda s: s.observables, best.solution, scaled.observables(best.solution.state)
        )
        return out, {"error-optimal lam": best.converged, "NLL-optimal lam": nll.converged}

    return jax.jit(jax.vmap(at))(jnp.asarray(ratios))


def main(quick: bool, out: str) -> dict:
    nodes, d, seeds = (16, 200, 2) if quick else (64, 400, 3)
    # Quick: ten ratios, denser below p / n = 1 where the peak is.
    ratios = np.asarray([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 2.0, 5.0]) if quick else np.logspace(-1, 1, 40)
    sols, tuned = curves(ratios, nodes)
    for label in CURVES:
        sol = sols[label]
        print(f"{label}: converged {int(sol.converged.sum())}/{sol.converged.size}")
    for label, converged in tuned.items():
        print(f"{label}: tune converged {int(converged.sum())}/{converged.size}")
    sim_ratios = (0.45,) if quick else (0.2, 0.45, 1.0, 3.0)
    sims = [hd.simulate.simulate(theory(g, LAMS[1], 64), d=d, seeds=seeds) for g in sim_ratios]

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    colors = {}
    for label in CURVES:  # a dict out of vmap has sorted keys: plot in the order of CURVES
        style = "--" if "T-scaled" in label else "-"
        axes[0].semilogx(ratios, sols[label].observables["ece"], style, label=label)
        colors[label] = axes[0].get_lines()[-1].get_color()
        axes[1].semilogx(ratios, sols[label].observables["test_error"], style, color=colors[label], label=label)
    color = colors[f"lam = {LAMS[1]:g}"]
    for ax, key in zip(axes[:2], ("ece", "test_error")):
        ax.errorbar(sim_ratios, [s.mean[key] for s in sims], [s.sem[key] for s in sims], fmt="o", ms=4,
                    color=color, label=f"simulation, lam = {LAMS[1]:g}, d = {d}")
        ax.set_xlabel("p / n")
    axes[0].set_ylabel("expected calibration error")
    axes[1].set_ylabel("test error")
    axes[0].legend(fontsize=7)

    confidence = jnp.linspace(0.501, 0.995, 100)
    peak = int(np.argmax(sols[f"lam = {LAMS[0]:g}"].observables["ece"]))
    for i, dash in ((peak, "-"), (len(ratios) - 1, ":")):
        for label in (f"lam = {LAMS[0]:g}", "NLL-optimal lam"):
            sol = sols[label]
            state = jax.tree.map(lambda x: x[i], sol.state)
            # Given the state, the curve depends on the teacher and the temperature only, not on lam.
            curve = theory(ratios[i], LAMS[0], nodes).calibration_curve(state, confidence)
            axes[2].plot(confidence, curve, dash, color=colors[label], label=f"{label}, p/n = {ratios[i]:.2g}")
    axes[2].plot([0.5, 1], [0.5, 1], color="gray", lw=0.5)
    axes[2].set_xlabel("confidence")
    axes[2].set_ylabel("P(prediction right | confidence)")
    axes[2].legend(fontsize=7)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")
    return {"ratios": ratios, "theory": sols, "tuned": tuned, "simulations": dict(zip(sim_ratios, sims))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ten points, 16 nodes, d = 200, two seeds")
    parser.add_argument("--out", default="rf_calibration.png")
    args = parser.parse_args()
    main(args.quick, args.out)
