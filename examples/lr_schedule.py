"""An optimised learning-rate schedule against the best constant one (committee, K = M = 2, erf).

The error at time t1 is differentiated through the ODE solver's adjoint with respect to the learning
rate (constant schedule) and with respect to each piece of a piecewise-constant schedule of P pieces;
both are optimised by Adam (optax) on the logarithm of the rates, first the constant one, then the
pieces starting from it. Writes lr_schedule.png.
Run: python examples/lr_schedule.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import optax  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(quick: bool, out: str) -> None:
    t1, pieces, steps = (10.0, 3, 4) if quick else (30.0, 6, 40)
    base = hd.Committee(K=2, M=2, lr=1.0, q0=0.2, r0=0.1, schedule="piecewise",
                        pieces=jnp.ones(pieces), horizon=t1)

    def with_log_rates(log_lr, log_pieces):
        return eqx.tree_at(lambda th: (th.lr, th.pieces), base, (jnp.exp(log_lr), jnp.exp(log_pieces)))

    @jax.jit
    @jax.value_and_grad
    def final_error(params):
        trajectory = hd.integrate(with_log_rates(*params), t1, saveat=jnp.array([t1]), max_steps=4096)
        return jnp.log(trajectory.observables["eg"][-1])

    def optimise(params, trained):
        """Adam on the entries of ``params`` flagged in ``trained``; a step that makes the error
        non-finite (a learning rate past the blow-up) is not taken."""
        optimiser = optax.adam(0.05)
        state = optimiser.init(params)
        for _ in range(steps):
            value, grads = final_error(params)
            grads = jax.tree_util.tree_map(lambda g, t: g * t, grads, trained)
            updates, state = optimiser.update(grads, state, params)
            candidate = optax.apply_updates(params, updates)
            if bool(jnp.isfinite(final_error(candidate)[0])):
                params = candidate
        return params

    start = (jnp.log(0.5), jnp.zeros(pieces))
    constant = optimise(start, (1.0, 0.0))
    schedule = optimise(constant, (0.0, 1.0))
    ts = jnp.linspace(0.0, t1, 201)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, constrained_layout=True)
    for name, params in (("best constant", constant), ("optimised schedule", schedule)):
        theory = with_log_rates(*params)
        eg = hd.integrate(theory, t1, saveat=ts).observables["eg"]
        top.semilogy(ts, eg, label=f"{name}: eg(t1) = {float(eg[-1]):.2e}")
        bottom.plot(ts, theory.lr * jax.vmap(theory.rate)(ts), label=name)
    top.set_ylabel(r"$\epsilon_g$")
    top.legend(fontsize=8)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("t = samples / d")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pieces and optimiser steps")
    parser.add_argument("--out", default="lr_schedule.png")
    args = parser.parse_args()
    main(args.quick, args.out)
