"""Kernel ridge regression: the crossover of the excess-error rate from the noiseless to the noisy regime.

Power-law spectrum eta_k = k^-2 (capacity 2), source 0.3, regularisation lam / n = n^-ell with
ell = 1.5, above the crossover line ell = capacity / (1 + 2 capacity source) of Cui et al. 2021: at
small n the excess error decays with the noiseless exponent 2 ell source, at large n with the noisy
one 1 - ell / capacity, the later the smaller the noise. Each curve is one vmapped solve of the
deterministic equivalent (hdtheory.KRR, the infinite spectrum); dashed lines are the published
slopes (hdtheory.models.krr.published_rate); the bottom panel is the local slope. Writes
krr_crossover.png. Run: python examples/krr_crossover.py [--quick]
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
from hdtheory.models.krr import published_rate  # noqa: E402

CAPACITY, SOURCE, ELL = 2.0, 0.3, 1.5
NOISES = (0.0, 1e-6, 1e-4, 1e-2)


def main(quick: bool, out: str) -> None:
    ns = jnp.logspace(1, 9, 40 if quick else 200)

    def curve(noise):
        return jax.vmap(lambda n: hd.solve(
            hd.KRR(capacity=CAPACITY, source=SOURCE, noise=noise, lam=n ** (1 - ELL), n=n)))(ns)

    sol = jax.jit(jax.vmap(curve))(jnp.array(NOISES))
    print(f"converged {int(sol.converged.sum())}/{sol.converged.size}")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 7), sharex=True, constrained_layout=True)
    log_n = np.log(np.asarray(ns))
    for noise, error in zip(NOISES, np.asarray(sol.observables["test_error"])):
        top.loglog(ns, error, label=f"noise = {noise:g}")
        bottom.semilogx(ns[1:], -np.diff(np.log(error)) / np.diff(log_n))
    for noisy, style in ((False, "--"), (True, ":")):
        rate = published_rate(CAPACITY, SOURCE, ELL, noisy)
        bottom.axhline(rate, color="gray", ls=style, label=f"{'noisy' if noisy else 'noiseless'}: {rate:.2f}")
        top.loglog(ns, 0.3 * np.asarray(ns) ** -rate, color="gray", ls=style, lw=0.8)
    top.set_ylabel("excess test error")
    top.legend()
    bottom.set_ylabel("local decay exponent")
    bottom.set_xlabel("n")
    bottom.legend()
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 values of n instead of 200")
    parser.add_argument("--out", default="krr_crossover.png")
    args = parser.parse_args()
    main(args.quick, args.out)
