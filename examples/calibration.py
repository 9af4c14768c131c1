"""Calibration of logistic regression against the sample ratio, with simulation points.

Logistic regression on a logistic teacher (temperature ``noise``): the expected calibration error
and the calibration gap (mean confidence minus accuracy) of the nearly unregularised classifier
(``lam = 1e-4``), of the classifier whose ``lam`` minimises the test negative log-likelihood (found
by :func:`hdtheory.tune` at every alpha in one vmapped call), and of the unregularised one after
temperature scaling (at the temperature that minimises the same objective, the observable
``optimal_temperature``). Finite-size simulations (``hdtheory.simulate``) of the unregularised
classifier are drawn on top. Clarté, Loureiro, Krzakala, Zdeborová 2022, "Theoretical
characterization of uncertainty in high-dimensional linear classification".

Run ``python examples/calibration.py`` (a few minutes on a CPU, mostly compilation) or with ``--quick``.
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hdtheory as hd

NOISE, LAM = 0.5, 1e-4


def curves(alphas):
    base = hd.ERM(lam=LAM, teacher="logistic", noise=NOISE)

    def at(alpha):
        theory = eqx.tree_at(lambda t: t.alpha, base, alpha)
        solution = hd.solve(theory)
        plain = solution.observables
        # Started at lam = 1, inside [1e-3, 1e2], which holds the optimum (0.3 to 0.4 here), rather
        # than at lam = 1e-4, far from it.
        start = eqx.tree_at(lambda t: t.lam, theory, 1.0)
        regularised = hd.tune(start, "test_nll", {"lam": hd.Log(low=1e-3, high=1e2)}).solution.observables
        # The temperature enters the calibration only, not the fixed point: temperature scaling is the
        # same state's observables at the temperature that minimises the test NLL.
        scaled_theory = eqx.tree_at(lambda t: t.temperature, theory, plain["optimal_temperature"])
        scaled = scaled_theory.observables(solution.state)
        return {name: obs for name, obs in (("lam=1e-4", plain), ("optimal lam", regularised), ("T-scaled", scaled))}

    return jax.jit(jax.vmap(at))(jnp.asarray(alphas))


def main(quick: bool = False, out: str | None = None) -> dict:
    jax.config.update("jax_enable_x64", True)
    alphas = np.linspace(0.5, 4.0, 8 if quick else 30)
    theory = curves(alphas)
    sim_alphas = alphas[-1:] if quick else alphas[::6]
    d, seeds = (300, 2) if quick else (800, 4)
    sims = [
        hd.simulate.simulate(hd.ERM(alpha=a, lam=LAM, teacher="logistic", noise=NOISE), d=d, seeds=seeds)
        for a in sim_alphas
    ]
    if out:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for label, obs in theory.items():
            gap = obs["confidence"] - (1 - obs["test_error_total"])
            axes[0].plot(alphas, obs["ece"], label=label)
            axes[1].plot(alphas, gap, label=label)
        sim_ece = [s.mean["ece"] for s in sims]
        sim_gap = [s.mean["confidence"] - 1 + s.mean["test_error_total"] for s in sims]
        axes[0].errorbar(sim_alphas, sim_ece, [s.sem["ece"] for s in sims], fmt="o", ms=3, label=f"simulation d={d}")
        axes[1].plot(sim_alphas, sim_gap, "o", ms=3, label=f"simulation d={d}")
        axes[0].set_ylabel("expected calibration error")
        axes[1].set_ylabel("confidence - accuracy")
        for ax in axes:
            ax.set_xlabel("alpha = n / d")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out)
    return {"alphas": alphas, "theory": theory, "simulations": dict(zip(sim_alphas, sims))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and a smaller d")
    parser.add_argument("--out", default="calibration.png", help="figure path (PNG or PDF)")
    args = parser.parse_args()
    main(args.quick, args.out)
