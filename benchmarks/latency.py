"""Time to first answer of each ``hdtheory`` command, cold and warm, against ``python -c "import jax"``.

Each command runs in a fresh process, as a user runs it: ``eval`` of every fixed-point model with its
defaults, ``eval`` of an ODE theory, ``tune erm --over lam:log``, ``sweep`` of the smallest example
configuration, ``simulate erm`` at a small d, plus ``import hdtheory`` and ``hdtheory --help``.
*Cold* runs start from an empty persistent compilation cache (a fresh ``HDTHEORY_CACHE_DIR``), *warm*
runs repeat the command on the cache the cold run filled. The floor, ``python -c "import jax"``, is
measured right before every command in the same run, and every time is printed against it, as the
difference (seconds above the floor) and the ratio: the machine's load moves both alike. Each cell
gives the wall-clock time and, after the slash, the CPU time (user + system) of the process and its
threads: on a machine shared with other jobs the wall-clock time grows with the load, the CPU time
much less (on an idle machine XLA's threads can make the CPU time exceed the wall-clock time).

    python benchmarks/latency.py [--repeats 1] [--only eval] [--no-cache]
    python benchmarks/latency.py --pythonpath DIR   # another checkout of hdtheory (e.g. a release)

``--no-cache`` sets ``HDTHEORY_NO_CACHE=1``: every run is cold (the command line before the cache),
and the warm columns are left out. With ``--repeats N`` each time is the minimum of N runs (the
floor too). ``--only REGEX`` keeps the commands whose label it matches.
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, arguments of `python -m hdtheory.cli`); None: `python -c "import hdtheory"`.
FIXED_POINT = ("erm", "bayes-glm", "spiked", "random-features", "krr", "subspace-clustering")
COMMANDS = [("import hdtheory", None), ("hdtheory --help", ["--help"])]
COMMANDS += [(f"eval {name}", ["eval", name, "--json"]) for name in FIXED_POINT]
COMMANDS += [
    ("eval erm loss=logistic teacher=sign alpha=2 lam=0.1",
     ["eval", "erm", "loss=logistic", "teacher=sign", "alpha=2", "lam=0.1", "--json"]),
    ("eval committee t=10", ["eval", "committee", "t=10", "--json"]),
    ("tune erm loss=logistic --over lam:log",
     ["tune", "erm", "loss=logistic", "teacher=sign", "alpha=2", "--over", "lam:log",
      "--objective", "test_error", "--json"]),
    ("sweep ridge_noise.toml", ["sweep", str(ROOT / "examples" / "configs" / "ridge_noise.toml"),
                                "--out", "{out}", "--overwrite", "--json"]),
    ("simulate erm d=200 seeds=2", ["simulate", "erm", "d=200", "seeds=2", "--json"]),
]


def run(argv: list[str], env: dict) -> tuple[float, float]:
    """Wall-clock and CPU seconds of a process running ``argv``, from its start to its exit (status 0).

    The process starts in a scratch folder: ``python -m`` puts its working directory first on the
    path, which must not shadow ``--pythonpath``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(argv, env, repeats: int) -> tuple[float, float]:
    runs = [run(argv, env) for _ in range(repeats)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def cells(time: tuple[float, float], floor: tuple[float, float]) -> str:
    """``time`` against ``floor``: the differences and the ratios, wall-clock / CPU."""
    (w, c), (fw, fc) = time, floor
    return f"{w - fw:+.2f} / {c - fc:+.2f} | {w / fw:.2f} / {c / fc:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1, help="minimum over this many runs (default 1)")
    p.add_argument("--only", default="", help="only the commands whose label matches this regex")
    p.add_argument("--no-cache", action="store_true", help="HDTHEORY_NO_CACHE=1: every run cold")
    p.add_argument("--pythonpath", default=None, help="import hdtheory from this folder instead")
    args = p.parse_args()

    python = sys.executable
    base_env = dict(os.environ)
    base_env.pop("HDTHEORY_NO_CACHE", None)
    base_env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if args.pythonpath:
        base_env["PYTHONPATH"] = args.pythonpath
    if args.no_cache:
        base_env["HDTHEORY_NO_CACHE"] = "1"
    floor_argv = [python, "-c", "import jax"]

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"cache {'off' if args.no_cache else 'on'}, repeats {args.repeats}")
    print("Each cell: wall-clock / CPU time.")
    print("| command | floor (s) | cold - floor (s) | cold / floor | warm - floor (s) | warm / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, cli in COMMANDS:
        if not re.search(args.only, label):
            continue
        scratch = Path(tempfile.mkdtemp(prefix="hdtheory-latency-"))
        try:
            env = base_env | {"HDTHEORY_CACHE_DIR": str(scratch / "cache")}
            if cli is None:
                argv = [python, "-c", "import hdtheory"]
            else:
                argv = [python, "-m", "hdtheory.cli"] + [a.replace("{out}", str(scratch / "out")) for a in cli]
            floor = best(floor_argv, env, args.repeats)
            colds = []
            for _ in range(args.repeats):
                shutil.rmtree(scratch / "cache", ignore_errors=True)
                colds.append(run(argv, env))
            cold = min(w for w, _ in colds), min(c for _, c in colds)
            warm = None if args.no_cache else best(argv, env, args.repeats)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"| `{label}` | {floor[0]:.2f} / {floor[1]:.2f} | {cells(cold, floor)} | "
              f"{'(no cache) | ' if warm is None else cells(warm, floor)} |", flush=True)


if __name__ == "__main__":
    main()
