"""The optimal ridge penalty of softmax regression on a Gaussian mixture, at every alpha in one call.

Three clusters (``hd.Mixture``, Loureiro et al. 2021, "Learning Gaussian mixtures with generalised
linear models: precise asymptotics in high dimensions") on an anisotropic covariance: the inputs
come in slices of two coordinates with the covariance [[2, 0.5], [0.5, 0.5]], and the means follow the
profiles (1, 0), (0, 1) and (-1, -1) on every slice, so that they sit partly along the noisy
direction. Unlike isotropic clusters, whose Bayes-optimal classifier is the Hebbian one (the limit
lam -> infinity), here the optimal penalty is finite. :func:`hdtheory.tune` finds it by BFGS on
the asymptotic test error (gradients by implicit differentiation through the fixed point), vmapped
over the alphas: one compiled program. Left: the optimal lam against alpha. Right: the test error at
the optimal lam and at two fixed ones, and finite-size simulations (``hdtheory.simulate``,
scikit-learn's multinomial logistic regression) at the optimal lam. Writes mixture_tuning.png.
On 2 CPU cores the full run takes about 13 minutes, 10 of them the tune (compiled in about 90 s, then
about 25 solves per alpha on the 576-node rule); the quick one (the tuned curve only) about a minute.
Run: python examples/mixture_tuning.py [--quick]
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

MIXTURE = dict(K=3, loss="cross-entropy", snr=1.0, covariance=[[2.0, 0.5], [0.5, 0.5]],
               means=[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])


def mixture(alpha, lam, order):
    return hd.Mixture(alpha=alpha, lam=lam, order=order, **MIXTURE)


def main(points: int, order: int, d: int, seeds: int, out: str, fixed: bool = True) -> None:
    alphas = jnp.logspace(np.log10(0.3), 1.0, points)
    tuned = jax.jit(jax.vmap(
        lambda a: hd.tune(mixture(a, 0.1, order), "test_error", {"lam": hd.Log(low=1e-4, high=1e2)})
    ))(alphas)
    lam_star = np.asarray(tuned.params["lam"])
    ok = np.asarray(tuned.converged)
    print(f"{ok.sum()} of {points} optimisations converged; lam* from {lam_star.min():.3g} to {lam_star.max():.3g}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    left.loglog(alphas, np.where(ok, lam_star, np.nan), "o-", ms=2)
    left.set_ylabel(r"optimal $\lambda$ (test error)")

    if fixed:  # a second compilation, of the plain solve
        errors = jax.jit(jax.vmap(jax.vmap(
            lambda a, lam: jnp.where((s := hd.solve(mixture(a, lam, order))).converged, s.observables["test_error"], jnp.nan),
            in_axes=(0, None)), in_axes=(None, 0)))(alphas, jnp.asarray([0.01, 1.0]))
        for lam, curve in zip((0.01, 1.0), errors):
            right.plot(alphas, curve, lw=1, label=f"lam = {lam:g}")
    line = right.plot(alphas, np.where(ok, np.asarray(tuned.objective), np.nan), "k", label="optimal lam")[0]
    picks = np.linspace(0, points - 1, 1 if points < 20 else 5).round().astype(int)
    results = [hd.simulate.simulate(mixture(float(alphas[i]), float(lam_star[i]), order), d=d, seeds=seeds)
               for i in picks]
    right.errorbar(np.asarray(alphas)[picks], [r.mean["test_error"] for r in results],
                   [r.sem["test_error"] for r in results], fmt="o", ms=3, color=line.get_color(),
                   label=f"simulation, d = {d}")
    right.set_ylabel("test error")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel(r"$\alpha = n/d$")
    fig.suptitle(f"K = 3 softmax regression, anisotropic clusters: lam* at {points} alphas in one tune call",
                 fontsize=9)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 values of alpha, a coarse rule, a simulation at one, d = 100, 2 seeds, no fixed-lam curves")
    parser.add_argument("--out", default="mixture_tuning.png")
    args = parser.parse_args()
    main(3, 8, 100, 2, args.out, fixed=False) if args.quick else main(100, 24, 600, 4, args.out)
