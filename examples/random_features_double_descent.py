"""Random-features double descent: test error against p / n, ridge and logistic, several lam.

Features erf(F x / sqrt(d)) with Gaussian F, n = d samples (alpha = n / d = 1), p = gamma d
features; ridge on a linear teacher with noise 0.1 and logistic regression on a sign teacher. Each
curve is one vmapped solve of the Gaussian covariate model (hdtheory.RandomFeatures); points with
error bars are simulations at finite d (three standard errors are within the tests' tolerance).
The ridge curve at small lam peaks at the interpolation threshold p = n. Writes
random_features_double_descent.png. Run: python examples/random_features_double_descent.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SETTINGS = {"square": ("linear", 0.1), "logistic": ("sign", 0.0)}
LAMS = (1e-4, 1e-2, 1e-1)


def main(quick: bool, out: str) -> None:
    points, d, seeds = (16, 100, 2) if quick else (120, 300, 3)
    gammas = jnp.logspace(-1, 1, points)
    # Each simulated gamma is a new shape, so a new compilation: the quick run simulates one point
    # of one penalty.
    sim_gammas = (2.0,) if quick else (0.2, 0.5, 1.0, 2.0, 5.0)
    sim_lams = LAMS[1:2] if quick else LAMS
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, (loss, (teacher, noise)) in zip(axes, SETTINGS.items()):

        def theory(gamma, lam, loss=loss, teacher=teacher, noise=noise):
            return hd.RandomFeatures(alpha=1.0, gamma=gamma, lam=lam, loss=loss, teacher=teacher, noise=noise)

        curve = jax.jit(jax.vmap(jax.vmap(lambda g, l: hd.solve(theory(g, l)), (0, None)), (None, 0)))
        sol = curve(gammas, jnp.array(LAMS))
        for i, lam in enumerate(LAMS):
            line, = ax.loglog(gammas, sol.observables["test_error"][i], label=f"lam = {lam:g}")
            if lam not in sim_lams or (lam == 1e-4 and loss == "logistic"):
                continue  # near-separable data: the simulation's optimiser needs many more steps
            sims = [hd.simulate.simulate(theory(g, lam), d=d, seeds=seeds) for g in sim_gammas]
            ax.errorbar(sim_gammas, [s.mean["test_error"] for s in sims],
                        yerr=[s.sem["test_error"] for s in sims], fmt="o", color=line.get_color(), ms=4)
        print(f"{loss}: converged {int(sol.converged.sum())}/{sol.converged.size}")
        ax.axvline(1.0, color="gray", lw=0.5)
        ax.set_xlabel(r"$p/n$")
        ax.set_title(f"{loss} loss, {teacher} teacher")
    axes[0].set_ylabel("test error")
    axes[0].legend()
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, one simulation per loss, d = 100, two seeds")
    parser.add_argument("--out", default="random_features_double_descent.png")
    args = parser.parse_args()
    main(args.quick, args.out)
