"""The pairs bootstrap's estimate of an estimator's variance against the true variance, over alpha.

Ridge regression (linear teacher, label noise 0.5) and logistic regression (sign teacher, 10% label
flips), both with lam = 0.01, on isotropic Gaussian data (``hdtheory.Resample``; Clarté et al. 2024,
"Analysis of bootstrap and subsampling in high-dimensional regularized regression"). Left: the
variance of the full-data estimator over data sets (``true_variance``) and over bootstrap
resamplings of one data set (``resample_variance``), per coordinate; right: their ratio, one where
the bootstrap is right. It is far from one at alpha of order one (an overestimate near the
interpolation threshold of ridge, an underestimate below it) and tends to one as alpha grows.
Each curve is one compiled program; finite-size simulations (``hdtheory.simulate``, learners on
bootstrap resamplings of each data set) are drawn on top. Writes bootstrap_variance.png.
Run: python examples/bootstrap_variance.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

LAM = 1e-2
SETTINGS = {
    "ridge": dict(loss="square", teacher="linear", noise=0.5),
    "logistic": dict(loss="logistic", teacher="sign", noise=0.1),
}


def main(points: int, d: int, seeds: int, out: str, cross_order: int = 24) -> None:
    alphas = jnp.logspace(-0.5, 1.5, points)
    sim_alphas = (3.0,) if points < 20 else (0.5, 1.5, 3.0, 10.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for name, setting in SETTINGS.items():

        def variances(alpha, setting=setting):
            # cross_order 16 (the quick run) moves the logistic variances by ~1e-5 relative, 4x sooner.
            theory = hd.Resample(alpha=alpha, lam=LAM, scheme="bootstrap", cross_order=cross_order, **setting)
            solution = hd.solve(theory)
            obs = solution.observables
            return obs["true_variance"], obs["resample_variance"], solution.converged

        # One compiled program per curve; lax.map rather than vmap: the two-learner integral holds a
        # large grid of proximal operators, and a batch of them runs slower than one after another.
        true, boot, converged = jax.jit(lambda a: jax.lax.map(variances, a))(alphas)
        a = alphas[converged]
        line = left.loglog(a, true[converged], label=f"{name}: true")[0]
        color = line.get_color()
        left.loglog(a, boot[converged], "--", color=color, label=f"{name}: bootstrap")
        right.semilogx(a, boot[converged] / true[converged], color=color, label=name)
        sims = [hd.simulate.simulate(hd.Resample(alpha=s, lam=LAM, scheme="bootstrap", **setting),
                                     d=d, seeds=seeds, learners=3) for s in sim_alphas]
        for key, marker in (("true_variance", "o"), ("resample_variance", "s")):
            left.errorbar(sim_alphas, [s.mean[key] for s in sims], [s.sem[key] for s in sims],
                          fmt=marker, ms=3, color=color)
        right.errorbar(sim_alphas, [s.mean["variance_ratio"] for s in sims],
                       [s.sem["variance_ratio"] for s in sims], fmt="o", ms=3, color=color)
    right.axhline(1.0, color="gray", lw=0.5, ls="--")
    for ax in (left, right):
        ax.set_xlabel(r"$\alpha = n/d$")
    left.set_ylabel("variance per coordinate")
    right.set_ylabel("bootstrap / true variance")
    left.set_title(f"lam = {LAM:g}; points: simulations at d = {d}", fontsize=9)
    left.legend(fontsize=7)
    right.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 values of alpha, 16 nodes per axis in the two-learner integral, simulations at one, d = 100")
    parser.add_argument("--out", default="bootstrap_variance.png")
    args = parser.parse_args()
    main(5, 100, 2, args.out, cross_order=16) if args.quick else main(60, 400, 4, args.out)
