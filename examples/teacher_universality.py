"""When is a single Gaussian enough? A teacher's labels on Gaussian-mixture inputs.

Pesce, Krzakala, Loureiro and Stephan 2023, "Are Gaussian data all you need? Extents and limits of
universality in high-dimensional generalized linear estimation". Two balanced clusters with opposite
means (``|mu|^2 / d = snr = 2``) and identity covariances, labelled by a single-index teacher
``theta = c mu + g`` that does not see the cluster (``hd.Mixture(labels="teacher")``). The matched
Gaussian has the mixture's mean and covariance, ``I + mu mu^T / d``: a Gaussian covariate model
(``hd.GCM``) with a bulk of unit modes and one spike mode ``1 + snr`` that carries the teacher's
weight along the means (written as a mode of weight ``1e-10``, exact to that order).

Left, logistic regression on a sign teacher: with a teacher orthogonal to the means (``c = 0``) the
mixture's test error is the Gaussian's (the means carry no label information, and the curves lie
on one another); with a teacher aligned with the means (``c = 1``) it is not. Right, ridge
regression on a linear teacher: universal even for the aligned teacher (Pesce et al.'s strong
universality of the square loss). Each curve is one vmapped solve; finite-size simulations of the
mixtures (``hdtheory.simulate``: scikit-learn's logistic regression, ridge in closed form) are drawn
on top. Writes teacher_universality.png.
Run: python examples/teacher_universality.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SNR, LAM, SPIKE = 2.0, 0.1, 1e-10
TASKS = {
    "logistic": dict(loss="logistic", teacher="sign", error="test_error", label="test error (sign teacher)"),
    "square": dict(loss="square", teacher="linear", noise=0.1, error="test_mse_excess", label="excess test mse"),
}


def mixture(alpha, c, task):
    options = {k: v for k, v in TASKS[task].items() if k not in ("error", "label")}
    return hd.Mixture(K=2, alpha=alpha, lam=LAM, snr=SNR, gram=[[1.0, -1.0], [-1.0, 1.0]], labels="teacher",
                      teacher_means=jnp.stack([c, jnp.zeros_like(c)]), **options)


def matched(alpha, c, task):
    """The Gaussian with the mixture's first two moments, theta's component along the means in the
    spike mode: ``theta2`` per unit weight ``c^2 (1 + snr)^2 snr``, ``rho = 1 + c^2 snr (1 + snr)``."""
    options = {k: v for k, v in TASKS[task].items() if k not in ("error", "label")}
    spike = c**2 * (1 + SNR) ** 2 * SNR / SPIKE
    return hd.GCM(alpha=alpha, lam=LAM, omega=jnp.stack([jnp.ones_like(c), 1 + SNR + 0 * c]),
                  theta2=jnp.stack([jnp.ones_like(c), spike]), weights=[1 - SPIKE, SPIKE],
                  rho=1 + c**2 * SNR * (1 + SNR), **options)


def curves(task, alphas, cs):
    """The mixture's and the matched Gaussian's errors over ``alphas`` (rows: ``cs``); NaN where a
    point did not converge."""
    error = TASKS[task]["error"]
    gaussian_error = "test_error"

    def one(make, name, alpha, c):
        solution = hd.solve(make(alpha, c, task))
        return jnp.where(solution.converged, solution.observables[name], jnp.nan)

    grid = jax.vmap(jax.vmap(one, in_axes=(None, None, 0, None)), in_axes=(None, None, None, 0))
    return (jax.jit(lambda a, c: grid(mixture, error, a, c))(alphas, cs),
            jax.jit(lambda a, c: grid(matched, gaussian_error, a, c))(alphas, cs))


def main(points: int, d: int, seeds: int, out: str, tasks=tuple(TASKS)) -> None:
    alphas = jnp.linspace(0.3, 4.0, points)
    sim_alphas = (3.0,) if points < 20 else (0.5, 1.5, 2.5, 3.5)
    cs = jnp.asarray([0.0, 1.0])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for ax, task in zip(axes, TASKS):
        if task not in tasks:  # each task is two compilations
            continue
        ours, gaussian = curves(task, alphas, cs)
        for i, c in enumerate(cs):
            line = ax.plot(alphas, ours[i], label=f"mixture, c = {float(c):g}")[0]
            ax.plot(alphas, gaussian[i], "--", color="k", alpha=0.5, lw=1,
                    label="matched Gaussian" if i == 0 else None)
            results = [hd.simulate.simulate(mixture(a, c, task), d=d, seeds=seeds) for a in sim_alphas]
            name = TASKS[task]["error"]
            ax.errorbar(sim_alphas, [r.mean[name] for r in results], [r.sem[name] for r in results],
                        fmt="o", ms=3, color=line.get_color())
        ax.set_xlabel(r"$\alpha = n/d$")
        ax.set_ylabel(TASKS[task]["label"])
        ax.legend(fontsize=7)
    axes[0].set_title("logistic regression: universal only for c = 0", fontsize=9)
    axes[1].set_title("ridge regression: universal for every c", fontsize=9)
    fig.suptitle(rf"teacher $\theta = c\,\mu + g$, lam = {LAM:g}; points: simulations at d = {d}", fontsize=9)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 values of alpha, ridge only, simulations at one, d = 200, 2 seeds")
    parser.add_argument("--out", default="teacher_universality.png")
    args = parser.parse_args()
    main(8, 200, 2, args.out, tasks=("square",)) if args.quick else main(40, 600, 4, args.out)
