"""An optimised learning-rate schedule against the best constant one (committee, K = M = 2, erf).

The error at time t1 is minimised with :func:`hdtheory.tune` (BFGS, gradients through the ODE
solver's adjoint) first over the constant learning rate, then over the multipliers of a
piecewise-constant schedule of P pieces starting from it. Writes lr_schedule.png.
Run: python examples/lr_schedule.py [--quick]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402


def main(quick: bool = False, out: str = "lr_schedule.png") -> dict:
    t1, pieces = (10.0, 3) if quick else (30.0, 6)
    options = {"t1": t1, "max_steps": 4096}
    base = hd.Committee(K=2, M=2, lr=0.5, q0=0.2, r0=0.1)
    constant_result = hd.tune(base, "eg", {"lr": hd.Log(low=1e-2, high=20.0)}, **options)
    constant = constant_result.theory
    piecewise = hd.Committee(
        K=2, M=2, lr=constant.lr, q0=0.2, r0=0.1, schedule="piecewise", pieces=jnp.ones(pieces), horizon=t1
    )
    schedule_result = hd.tune(piecewise, "eg", {"pieces": hd.Log(low=1e-3, high=50.0)}, **options)
    schedule = schedule_result.theory
    ts = jnp.linspace(0.0, t1, 201)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, constrained_layout=True)
    # The piecewise theory at its start (every multiplier 1) is the best constant rate: both curves
    # are integrated by one compiled program.
    for name, theory in (("best constant", piecewise), ("optimised schedule", schedule)):
        eg = hd.integrate(theory, t1, saveat=ts).observables["eg"]
        top.semilogy(ts, eg, label=f"{name}: eg(t1) = {float(eg[-1]):.2e}")
        bottom.plot(ts, theory.lr * jax.vmap(theory.rate)(ts), label=name)
    top.set_ylabel(r"$\epsilon_g$")
    top.legend(fontsize=8)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("t = samples / d")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")
    return {"constant": constant_result, "schedule": schedule_result}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pieces and optimiser steps")
    parser.add_argument("--out", default="lr_schedule.png")
    args = parser.parse_args()
    main(args.quick, args.out)
