"""Clean against robust error of adversarially trained logistic regression, l2 and l-infinity attacks.

Logistic regression on a noiseless sign teacher (alpha = 2, lam = 0.01) trained against attacks of
radius eps (``hd.Adversarial``; Tanner, Vilucchio, Loureiro & Krzakala 2025, "A high dimensional
statistical model for adversarial training: geometry and trade-offs"; Vilucchio, Tsilivis, Loureiro
& Kempe 2024, "On the geometry of regularization in adversarial training"), the robust error taken
at the test-time budget eps_test = 0.3 of the same norm. Left: the clean and robust errors against
the training radius; for l2 attacks also the robust error under consistent attacks, those that keep
the teacher's label (Vilucchio, Zdeborová & Loureiro 2025), and in the full run the robust error at
the lam tuned on it at each eps (``hd.tune``, vmapped over eps). On isotropic data an l2 attack
sees only the angle between student and teacher, so that clean and robust errors move together and
training against it gains nothing; an l-infinity attack sees |w|_1, and training against it trades
clean error for robust error up to eps ~ 0.3. Right: the trade-off curves, robust against clean
error, eps along each. Points: finite-size simulations (``hdtheory.simulate``). Writes the figure
and the curves as a netCDF file beside it (``hd.sweep``'s labelled arrays, an ``attack`` dimension).
Run: python examples/adversarial_tradeoff.py [--quick]
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import hdtheory as hd  # noqa: E402

SETTING = dict(alpha=2.0, lam=0.01, eps_test=0.3, loss="logistic", teacher="sign", noise=0.0)
ATTACKS = ("l2", "linf")


def main(points: int, d: int, seeds: int, tune: bool, out: str) -> None:
    eps = np.linspace(0.0, 0.8, points)
    curves = {attack: hd.sweep(hd.Adversarial(attack=attack, **SETTING), {"eps": eps}, progress=False)
              for attack in ATTACKS}
    sim_eps = (0.4,) if points < 20 else (0.0, 0.4, 0.8)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for attack, data in curves.items():
        ok = data["converged"].values
        x, clean, robust = eps[ok], data["test_error"].values[ok], data["robust_error"].values[ok]
        color = left.plot(x, clean, "--", label=f"{attack}: clean")[0].get_color()
        left.plot(x, robust, color=color, label=f"{attack}: robust")
        right.plot(clean, robust, "o-", ms=2, color=color, label=attack)
        if attack == "l2":
            left.plot(x, data["consistent_robust_error"].values[ok], ":", color=color,
                      label="l2: robust, consistent attacks")
        if tune:
            tuned = jax.jit(jax.vmap(lambda e, attack=attack: hd.tune(
                hd.Adversarial(attack=attack, **(SETTING | dict(eps=e))), "robust_error",
                {"lam": hd.Log(low=1e-4, high=1e2)})))(jnp.asarray(eps))
            good = np.asarray(tuned.converged)
            left.plot(eps[good], np.asarray(tuned.objective)[good], "-.", lw=0.8, color=color,
                      label=f"{attack}: robust, tuned lam")
            data["lam_tuned"] = ("eps", np.where(good, np.asarray(tuned.params["lam"]), np.nan))
        if attack == "linf" and points < 20:
            continue  # the quick run simulates one l2 point
        sims = [hd.simulate.simulate(hd.Adversarial(attack=attack, **(SETTING | dict(eps=e))), d=d, seeds=seeds)
                for e in sim_eps]
        for key, marker in (("test_error", "s"), ("robust_error", "o")):
            left.errorbar(sim_eps, [s.mean[key] for s in sims], [s.sem[key] for s in sims], fmt=marker, ms=3,
                          color=color)
        right.errorbar([s.mean["test_error"] for s in sims], [s.mean["robust_error"] for s in sims],
                       [s.sem["robust_error"] for s in sims], fmt="s", ms=3, color=color)
    left.set_xlabel(r"training radius $\varepsilon$")
    left.set_ylabel(f"error (test budget {SETTING['eps_test']:g})")
    left.legend(fontsize=6)
    right.set_xlabel("clean error")
    right.set_ylabel("robust error")
    right.legend(fontsize=7)
    right.set_title(f"alpha = {SETTING['alpha']:g}, lam = {SETTING['lam']:g}; points: simulations at d = {d}",
                    fontsize=9)
    fig.savefig(out, dpi=150)
    data = xr.concat([curves[a] for a in ATTACKS], dim="attack", join="outer").assign_coords(attack=list(ATTACKS))
    data.attrs.pop("attack", None)
    nc = Path(out).with_suffix(".nc")
    data.to_netcdf(nc)
    print(f"wrote {out} and {nc}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 radii, no tuning, a simulation at one l2 radius, d = 100")
    parser.add_argument("--out", default="adversarial_tradeoff.png")
    args = parser.parse_args()
    main(4, 100, 2, False, args.out) if args.quick else main(33, 300, 3, True, args.out)
