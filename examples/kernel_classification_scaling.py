"""Kernel classification: the misclassification error against n, max-margin SVM and ridge classification.

Power-law features (capacity 2, source 0.25 and 0.75, 10^6 modes) and labels sign(z), the setting of
Cui, Loureiro, Krzakala and Zdeborova 2023, "Error scaling laws for kernel classification under
source and capacity conditions". Three estimators: the max-margin SVM (hinge loss, lam / n = n^-3,
the lam -> 0+ limit), ridge classification with lam tuned at each n, and the SVM with lam tuned on
labels flipped with probability 0.1 (its excess error over the Bayes error, up to the factor
1 - 2 noise). The max-margin curves are one `hd.sweep` over (alpha, lam) pairs, the tuned ones one
vmapped `hd.tune` per loss over both sources; grey lines are the published slopes
(hdtheory.models.gcm.classification_rate), the bottom panel the local slope. Writes kernel_classification_scaling.png.
Run: python examples/kernel_classification_scaling.py [--quick]
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
from hdtheory.models.gcm import classification_rate, power_law  # noqa: E402
from hdtheory.models.krr import fitted_rate  # noqa: E402

CAPACITY, SOURCES, MODES, HEAD, FLIPS = 2.0, (0.25, 0.75), 10**6, 1000, 0.1


def model(source, n, lam, loss, noise=0.0):
    return power_law(CAPACITY, source, modes=MODES, n=n, lam=lam, noise=noise, loss=loss, teacher="sign", head=HEAD)


def max_margin(source, ns):
    data = hd.sweep(model(source, 1.0, 1.0, "hinge"), {"alpha": ns / MODES, "lam": ns**-2.0},
                    product=False, progress=False)
    assert bool(data["converged"].all()), "a max-margin point did not converge"
    return data["test_error"].values


def tuned(ns, loss, noise):
    """The tuned curves of every source, one program: shape (sources, n)."""
    def curve(source):
        start = ns ** (1 - CAPACITY / (1 + 2 * CAPACITY * source))
        return jax.vmap(lambda n, lam: hd.tune(model(source, n, lam, loss, noise), "test_error", {"lam": "log"}))(ns, start)

    result = jax.jit(jax.vmap(curve))(jnp.asarray(SOURCES))
    assert bool(jnp.all(result.converged)), f"tuning {loss} did not converge"
    return np.asarray(result.objective)


def main(quick: bool, out: str) -> None:
    ns = np.logspace(1, 4, 5 if quick else 25)
    ridge, noisy_svm = tuned(jnp.asarray(ns), "square", 0.0), tuned(jnp.asarray(ns), "hinge", FLIPS)
    fig, axes = plt.subplots(2, len(SOURCES), figsize=(10, 7), sharex=True, constrained_layout=True)
    for column, source in enumerate(SOURCES):
        curves = {
            ("max-margin SVM", "hinge", False): max_margin(source, ns),
            ("ridge classification", "square", False): ridge[column],
            (f"SVM, {FLIPS:g} flips", "hinge", True): noisy_svm[column],
        }
        top, bottom = axes[:, column]
        for (label, loss, noisy), error in curves.items():
            rate = classification_rate(CAPACITY, source, loss, noisy)
            fit = float(fitted_rate(ns[ns >= 100], error[ns >= 100]))
            print(f"source {source}: {label}: fitted {fit:.3f}, published {rate:.3f}")
            (line,) = top.loglog(ns, error, label=f"{label} ({rate:.3f})")
            top.loglog(ns, error[-1] * (ns / ns[-1]) ** -rate, color="gray", ls="--", lw=0.8)
            bottom.semilogx(np.sqrt(ns[1:] * ns[:-1]), -np.diff(np.log(error)) / np.diff(np.log(ns)), color=line.get_color())
            bottom.axhline(rate, color=line.get_color(), ls=":", lw=0.8)
        top.set_title(f"capacity {CAPACITY:g}, source {source:g}")
        top.set_ylabel("excess misclassification error")
        top.legend(fontsize=8)
        bottom.set_ylabel("local decay exponent")
        bottom.set_xlabel("n")
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 values of n instead of 25")
    parser.add_argument("--out", default="kernel_classification_scaling.png")
    args = parser.parse_args()
    main(args.quick, args.out)
