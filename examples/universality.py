"""Gaussian universality of ERM with random labels on a Gaussian mixture, and where it fails.

Random labels +-1 on the points of a K-cluster Gaussian mixture (``hd.Mixture(labels="random")``;
Gerace, Krzakala, Loureiro, Stephan, Zdeborova 2022, "Gaussian universality of perceptrons with
random labels"). Left: clouds that share one covariance (here the identity, three clusters with
means of squared norm 3 d): the logistic training loss against alpha is that of a single Gaussian
with the matched covariance (``hd.ERM(teacher="random")``, a different model), whatever the means.
Right: a narrow and a wide cloud (covariances 0.5 I and 3 I) against the Gaussian with their average
covariance 1.75 I (the mixture's second moment, up to the means' rank-2 part, which does not count as
d -> infinity): at lam = 0.1 the mixture trains to a larger loss below the interpolation threshold
alpha = 2 and to a smaller one beyond. At lam = 1e-3 both interpolate (zero loss) below alpha = 2,
where the covariance no longer matters, and differ beyond. Each curve
is one vmapped solve; finite-size simulations of the mixtures (``hdtheory.simulate``, scikit-learn)
are drawn on top. Writes universality.png.
Run: python examples/universality.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

HOMOGENEOUS = dict(K=3, loss="logistic", labels="random", snr=3.0)
CLOUDS = dict(K=2, loss="logistic", labels="random")
INHOMOGENEOUS = [[0.5], [3.0]]
MATCHED = [[1.75], [1.75]]  # per-cluster rows, all equal: the same program as INHOMOGENEOUS


def curve(make, alphas):
    """The training loss of ``make(alpha)`` over ``alphas``, one vmapped solve; NaN where a point
    did not converge."""

    def train_loss(alpha):
        solution = hd.solve(make(alpha))
        return jnp.where(solution.converged, solution.observables["train_loss"], jnp.nan)

    return jax.jit(jax.vmap(train_loss))(alphas)


@jax.jit
def clouds(alphas, lam, spectrum):
    """The two-cloud curves, one compiled program for every ``lam`` and spectrum."""
    return curve(lambda a: hd.Mixture(alpha=a, lam=lam, spectrum=spectrum, **CLOUDS), alphas)


def simulated(theories, d, seeds):
    results = [hd.simulate.simulate(theory, d=d, seeds=seeds) for theory in theories]
    return [r.mean["train_loss"] for r in results], [r.sem["train_loss"] for r in results]


def main(points: int, d: int, seeds: int, out: str, left_panel: bool = True) -> None:
    alphas = jnp.linspace(0.5, 4.0, points)
    sim_alphas = (3.0,) if points < 20 else (0.75, 1.5, 2.5, 3.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)

    if left_panel:  # two compilations of its own
        lam = 0.1
        mixture = curve(lambda a: hd.Mixture(alpha=a, lam=lam, **HOMOGENEOUS), alphas)
        gaussian = curve(lambda a: hd.ERM(alpha=a, lam=lam, loss="logistic", teacher="random"), alphas)
        left.plot(alphas, gaussian, color="k", lw=3, alpha=0.3, label="single Gaussian (erm)")
        line = left.plot(alphas, mixture, label="3 clusters, identity covariance")[0]
        means, sems = simulated([hd.Mixture(alpha=a, lam=lam, **HOMOGENEOUS) for a in sim_alphas], d, seeds)
        left.errorbar(sim_alphas, means, sems, fmt="o", ms=3, color=line.get_color())
        left.set_title(f"one covariance: universal (lam = {lam:g})", fontsize=9)

    for lam, style in ((0.1, "-"), (1e-3, "--")):
        mixture = clouds(alphas, lam, jnp.asarray(INHOMOGENEOUS))
        matched = clouds(alphas, lam, jnp.asarray(MATCHED))
        line = right.plot(alphas, mixture, style, label=f"narrow + wide cloud, lam = {lam:g}")[0]
        right.plot(alphas, matched, style, color="k", alpha=0.4, label=f"matched Gaussian, lam = {lam:g}")
        means, sems = simulated(
            [hd.Mixture(alpha=a, lam=lam, spectrum=INHOMOGENEOUS, **CLOUDS) for a in sim_alphas], d, seeds
        )
        right.errorbar(sim_alphas, means, sems, fmt="o", ms=3, color=line.get_color())
    right.set_title("covariances 0.5 I and 3 I: not universal", fontsize=9)

    for ax in (left, right) if left_panel else (right,):
        ax.axvline(2.0, color="gray", lw=0.5, ls=":")
        ax.set_xlabel(r"$\alpha = n/d$")
        ax.set_ylabel("training loss (logistic, random labels)")
        ax.legend(fontsize=7)
    fig.suptitle(f"points: simulations at d = {d}", fontsize=9)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 values of alpha, the right panel only, simulations at one, d = 100, 2 seeds")
    parser.add_argument("--out", default="universality.png")
    args = parser.parse_args()
    main(12, 100, 2, args.out, left_panel=False) if args.quick else main(60, 400, 4, args.out)
