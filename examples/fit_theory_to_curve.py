"""Recover hidden parameters from a measured learning curve, by gradient descent through the theory.

A finite-size experiment (ridge regression, ``d`` inputs, a linear teacher of norm ``rho`` and label
noise of variance ``noise``) is run at several sample ratios ``alpha``; the script then forgets
``rho`` and ``noise`` and recovers them by fitting the asymptotic theory to the measured test and
training errors. The theory is an ordinary layer here: a :class:`LearningCurve` module holds an
:class:`hdtheory.ERM` whose fields are trained with optax, the gradient flowing through the fixed
point by implicit differentiation. The fit's standard errors come from the Gauss-Newton curvature of
the weighted least squares at the optimum.

Run ``python examples/fit_theory_to_curve.py`` (about a minute on a CPU) or with ``--quick``.
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import hdtheory as hd

TRUTH = {"rho": 1.5, "noise": 0.3}
LAM = 0.1
OBSERVED = ("test_error_total", "train_loss")


class LearningCurve(eqx.Module):
    """The theory's predictions of the observed curves, with ``rho`` and ``noise`` on a log scale."""

    log_rho: jax.Array
    log_noise: jax.Array
    lam: float = eqx.field(static=True, default=LAM)

    def __call__(self, alphas):
        def at(alpha):
            rho, noise = jnp.exp(self.log_rho), jnp.exp(self.log_noise)
            theory = hd.ERM(alpha=alpha, lam=self.lam, rho=rho, noise=noise, loss="square", teacher="linear")
            solution = hd.solve(theory)
            return jnp.stack([solution.observables[k] for k in OBSERVED]), solution.converged

        return jax.vmap(at)(alphas)


def measure(alphas, d, seeds, key):
    """The finite-size experiment at the true parameters: means and standard errors per alpha."""
    truth = hd.ERM(lam=LAM, loss="square", teacher="linear", **TRUTH)
    means, sems = [], []
    for alpha, k in zip(alphas, jax.random.split(key, len(alphas))):
        result = hd.simulate.simulate(eqx.tree_at(lambda t: t.alpha, truth, jnp.asarray(alpha)), d=d, seeds=seeds, key=k)
        means.append([result.mean[o] for o in OBSERVED])
        sems.append([result.sem[o] for o in OBSERVED])
    return np.array(means), np.array(sems)


def fit(alphas, means, sems, steps=200):
    """Weighted least squares of the theory against the measured curve; returns values and errors."""
    curve = LearningCurve(jnp.log(1.0), jnp.log(1.0))
    alphas, means, sems = map(jnp.asarray, (alphas, means, sems))

    def chi2(curve):
        predicted, converged = curve(alphas)
        return jnp.sum(((predicted - means) / sems) ** 2) + jnp.where(jnp.all(converged), 0.0, jnp.inf)

    optimiser = optax.lbfgs()
    state = optimiser.init(curve)
    value_and_grad = optax.value_and_grad_from_state(chi2)

    @eqx.filter_jit
    def step(curve, state):
        value, grad = value_and_grad(curve, state=state)
        updates, state = optimiser.update(grad, state, curve, value=value, grad=grad, value_fn=chi2)
        return optax.apply_updates(curve, updates), state, value

    for _ in range(steps):
        curve, state, value = step(curve, state)
        if float(optax.tree.norm(optax.tree.get(state, "grad"))) < 1e-8:
            break
    # Gauss-Newton covariance of (log rho, log noise), mapped to (rho, noise).
    jac = jax.jacfwd(lambda p: (LearningCurve(p[0], p[1])(alphas)[0] / sems).ravel())(
        jnp.stack([curve.log_rho, curve.log_noise])
    )
    covariance = jnp.linalg.inv(jac.T @ jac)
    values = jnp.exp(jnp.stack([curve.log_rho, curve.log_noise]))
    errors = values * jnp.sqrt(jnp.diag(covariance))
    return (
        {"rho": float(values[0]), "noise": float(values[1])},
        {"rho": float(errors[0]), "noise": float(errors[1])},
        float(value),
    )


def main(quick: bool = False, out: str | None = None) -> dict:
    jax.config.update("jax_enable_x64", True)
    alphas = np.linspace(0.4, 3.0, 5 if quick else 9)
    d, seeds = (200, 8) if quick else (400, 16)
    means, sems = measure(alphas, d, seeds, jax.random.PRNGKey(1))
    values, errors, chi2 = fit(alphas, means, sems)
    for name, truth in TRUTH.items():
        print(f"{name:>6}: fitted {values[name]:.4f} +- {errors[name]:.4f}   (hidden truth {truth})")
    print(f"chi^2 = {chi2:.1f} for {means.size - 2} degrees of freedom")
    if out:
        import matplotlib.pyplot as plt

        grid = np.linspace(alphas[0], alphas[-1], 100)
        fitted = LearningCurve(jnp.log(values["rho"]), jnp.log(values["noise"]))
        curve = fitted(jnp.asarray(grid))[0]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for i, name in enumerate(OBSERVED):
            ax.errorbar(alphas, means[:, i], sems[:, i], fmt="o", ms=3, label=f"{name} (d={d})")
            ax.plot(grid, curve[:, i], label=f"fitted theory: {name}")
        ax.set_xlabel("alpha = n / d")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out)
    return {"values": values, "errors": errors, "chi2": chi2, "dof": means.size - 2}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and a smaller d")
    parser.add_argument("--out", default="fit_theory_to_curve.png", help="figure path (PNG or PDF)")
    args = parser.parse_args()
    main(args.quick, args.out)
