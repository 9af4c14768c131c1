"""The staircase, learned direction by direction: the overlaps M_ii of Bayes-optimal AMP against alpha.

The multi-index model ``y = z1 + z1 z2 + ... + z1 z2 ... zk + sqrt(noise) eps`` (``link="staircase"``;
Troiani, Dandi, Defilippis, Zdeborova, Loureiro and Krzakala 2025, "Fundamental computational limits
of weak learnability in high-dimensional multi-index models"). Every field is in their trivial
subspace: ``E[z_i | y] != 0`` (``z1`` through the linear term; ``z2``, ``z3`` because the label's
spread grows with them: ``E[z_i y^2] = 2``), so no direction waits for a threshold ``alpha_c``: each
leaves zero at ``alpha = 0``, as ``M_ii = alpha T_ii + O(alpha^2)`` with ``T = E_y E[z|y] E[z|y]^T``
(one step of AMP from ``M = 0``; ``T`` is ``Mhat(0) / alpha``). The hierarchy is in the slopes,
``T_11 > T_22 > T_33``: the deeper a field sits in the staircase, the more samples it takes; the
figure marks, for each direction, the one-step law (dashed) and the alpha where it is half learned,
``M_ii = 1/2`` (dotted).

Each curve is one compiled solve from the uninformed start, mapped over alpha. The full run is ``k = 2``
(``z1 + z1 z2``) over ``alpha`` from 0.02 to 5 on the model's default rule, the panels cut at the
link's lines (every point converges; about three CPU minutes); ``--quick`` is the same ``k = 2`` on
the product Hermite rule of 4 nodes per axis up to ``alpha = 0.5``, where the overlaps stay below
1/4 and that rule is accurate (its error estimate is below 5e-3; at ``alpha = 1``, overlaps 0.44
and 0.29, it is not). A third step, ``k = 3``, is ``overlaps(3, alphas, rule)``, but its solves with
their Jacobians hold gigabytes and took more than half an hour of CPU: it is for an accelerator.
Writes staircase.png.
Run: python examples/staircase.py [--quick]
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

NOISE = 0.1
QUICK = {"k": 2, "alphas": np.geomspace(0.02, 0.5, 5), "rule": {"order": 4, "panel_order": 0}}
FULL = {"k": 2, "alphas": np.geomspace(0.02, 5.0, 8), "rule": {}}


def overlaps(k: int, alphas, rule: dict) -> dict[str, np.ndarray]:
    """The diagonal overlaps ``M_ii`` ``(alphas, k)``, whether each solve converged, the one-step
    slopes ``T_ii`` and the alphas where ``M_ii`` crosses 1/2 (``nan`` where it does not on the grid)."""

    def point(alpha):
        theory = hd.MultiIndex(link="staircase", k=k, noise=NOISE, alpha=alpha, **rule)
        solution = hd.solve(theory)
        return jnp.diagonal(solution.state), solution.converged

    # One alpha at a time: a solve with its Jacobian holds much memory at k = 3.
    diagonal, converged = jax.jit(lambda a: jax.lax.map(point, a))(jnp.asarray(alphas))
    one = hd.MultiIndex(link="staircase", k=k, noise=NOISE, alpha=1.0, **rule)
    slopes = jnp.diagonal(jax.jit(lambda t: t.conjugate(jnp.zeros((k, k))))(one))
    diagonal, log_alpha = np.asarray(diagonal), np.log(np.asarray(alphas))
    half = []
    for i in range(k):  # m_i grows with alpha: the first crossing of 1/2, interpolated in log alpha
        above = np.flatnonzero(diagonal[:, i] >= 0.5)
        j = above[0] if above.size else 0
        if j == 0:
            half.append(np.nan)
            continue
        s = (0.5 - diagonal[j - 1, i]) / (diagonal[j, i] - diagonal[j - 1, i])
        half.append(float(np.exp(log_alpha[j - 1] + s * (log_alpha[j] - log_alpha[j - 1]))))
    return {"m": diagonal, "converged": np.asarray(converged), "slopes": np.asarray(slopes), "half": np.asarray(half)}


def main(quick: bool, out: str) -> dict[str, np.ndarray]:
    setting = QUICK if quick else FULL
    k, alphas = setting["k"], setting["alphas"]
    result = overlaps(k, alphas, setting["rule"])
    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    fine = np.geomspace(alphas[0], alphas[-1], 100)
    for i in range(k):
        m, ok = result["m"][:, i], result["converged"]
        line = ax.plot(alphas[ok], m[ok], "o-", ms=3, label=f"$M_{{{i + 1}{i + 1}}}$")[0]
        colour = line.get_color()
        ax.plot(alphas[~ok], m[~ok], "o", ms=4, mfc="none", color=colour)
        ax.plot(fine, np.minimum(fine * result["slopes"][i], 1.0), "--", lw=0.8, color=colour)
        if np.isfinite(result["half"][i]):
            ax.axvline(result["half"][i], ls=":", lw=0.8, color=colour)
        print(f"direction {i + 1}: T_ii = {result['slopes'][i]:.4f}, M_ii = 1/2 at alpha = {result['half'][i]:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1.2)
    ax.set_xlabel(r"$\alpha = n/d$")
    ax.set_ylabel(r"overlap $M_{ii}$")
    terms = " + ".join("".join(f"z_{j + 1}" for j in range(i + 1)) for i in range(k))
    ax.set_title(f"staircase $y = {terms}$ + noise ({NOISE:g}); dashed: $\\alpha T_{{ii}}$", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=150)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k = 2, 5 values of alpha up to 0.5")
    parser.add_argument("--out", default="staircase.png")
    args = parser.parse_args()
    main(args.quick, args.out)
