"""Training loss of ERM on random labels against alpha: the perceptron's capacity at alpha = 2.

Labels +-1 independent of Gaussian inputs (``teacher="random"``; Gerace, Krzakala, Loureiro, Stephan,
Zdeborova 2022, "Gaussian universality of perceptrons with random labels"). The nearly unregularised
hinge and logistic losses fit every label (zero training loss, a diverging norm) up to Cover's
capacity alpha = 2 and not beyond; least squares fits them up to alpha = 1, its training loss
(1 - 1/alpha)/2 after. Each curve is one vmapped solve; finite-size simulations
(``hdtheory.simulate``, scikit-learn) are drawn on top. Writes random_labels.png.
Run: python examples/random_labels.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

LAM = 1e-3


def main(points: int, d: int, seeds: int, out: str, losses=("hinge", "logistic", "square")) -> None:
    alphas = jnp.linspace(0.5, 4.0, points)
    sim_alphas = (3.0,) if points < 20 else (0.75, 1.5, 2.5, 3.5)
    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    for loss in losses:  # each loss a compilation

        def train_loss(alpha, loss=loss):
            solution = hd.solve(hd.ERM(alpha=alpha, lam=LAM, loss=loss, teacher="random"))
            return solution.observables["train_loss"], solution.converged

        values, converged = jax.jit(jax.vmap(train_loss))(alphas)
        line = ax.plot(alphas[converged], values[converged], label=f"{loss}, lam={LAM:g}")[0]
        sims = [hd.simulate.simulate(hd.ERM(alpha=a, lam=LAM, loss=loss, teacher="random"), d=d, seeds=seeds)
                for a in sim_alphas]
        ax.errorbar(sim_alphas, [s.mean["train_loss"] for s in sims], [s.sem["train_loss"] for s in sims],
                    fmt="o", ms=3, color=line.get_color())
    ax.axvline(2.0, color="gray", lw=0.5, ls="--")
    ax.set_xlabel(r"$\alpha = n/d$")
    ax.set_ylabel("training loss")
    ax.set_title(f"random labels; points: simulations at d = {d}", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 values of alpha, the hinge loss, a simulation at one, d = 100")
    parser.add_argument("--out", default="random_labels.png")
    args = parser.parse_args()
    main(8, 100, 2, args.out, losses=("hinge",)) if args.quick else main(80, 400, 4, args.out)
