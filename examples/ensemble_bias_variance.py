"""Bias, variances and ensembles of random-features ridge regression against p / n.

Ridge regression on erf random features (n = d samples, label noise 0.2, lam = 1e-3) with learners
that share the data and differ by their features (``hdtheory.RandomFeatureEnsemble``; Loureiro et
al. 2022, "Fluctuations, bias, variance & ensemble of learners"; d'Ascoli et al. 2020, "Double
trouble in double descent"). Left: the excess test error of one learner split into the bias and the
variances from the training inputs, the features and the label noise: the last two make the
double-descent peak at p = n. Right: the error of one learner, of the average of three and of
infinitely many; the infinite ensemble has no peak and is flat beyond p = n. One compiled program
over all values of p / n; simulations (three learners, ``hdtheory.simulate``) drawn on the right.
Writes ensemble_bias_variance.png.
Run: python examples/ensemble_bias_variance.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SETTING = dict(alpha=1.0, lam=1e-3, noise=0.2, M=3.0)
PARTS = ("bias", "variance_data", "variance_features", "variance_noise")
CURVES = {"test_error": "one learner", "ensemble_error": "3 learners", "ensemble_error_inf": "infinitely many"}


def main(points: int, d: int, seeds: int, out: str) -> None:
    ratios = jnp.logspace(-1, 1, points)  # p / n = gamma / alpha

    def observables(gamma):
        solution = hd.solve(hd.RandomFeatureEnsemble(gamma=gamma, **SETTING))
        return solution.observables, solution.converged

    obs, converged = jax.jit(jax.vmap(observables))(ratios * SETTING["alpha"])
    x = ratios[converged]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for key in PARTS:
        left.loglog(x, obs[key][converged], label=key.replace("_", " "))
    left.loglog(x, obs["test_error"][converged], "k--", lw=0.8, label="test error (their sum)")
    sim_ratios = (0.5,) if points < 20 else (0.3, 0.7, 1.5, 3.0)
    sims = [hd.simulate.simulate(hd.RandomFeatureEnsemble(gamma=r * SETTING["alpha"], **SETTING),
                                 d=d, seeds=seeds, learners=3) for r in sim_ratios]
    for key, label in CURVES.items():
        color = right.loglog(x, obs[key][converged], label=label)[0].get_color()
        right.errorbar(sim_ratios, [s.mean[key] for s in sims], [s.sem[key] for s in sims], fmt="o", ms=3,
                       color=color)
    for ax in (left, right):
        ax.axvline(1.0, color="gray", lw=0.5, ls="--")
        ax.set_xlabel("p / n")
        ax.legend(fontsize=7)
    left.set_ylabel("excess test error and its parts")
    right.set_ylabel("excess test error")
    right.set_title(f"lam = {SETTING['lam']:g}; points: simulations at d = {d}", fontsize=9)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 values of p / n, simulations at one, d = 80")
    parser.add_argument("--out", default="ensemble_bias_variance.png")
    args = parser.parse_args()
    main(8, 80, 2, args.out) if args.quick else main(80, 300, 8, args.out)
