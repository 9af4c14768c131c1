"""The persistent compilation cache: a later process loads the programs an earlier one compiled, a
changed configuration compiles its own, and the cache can be moved and turned off.

The commands run in subprocesses, as a user runs them, each with its own cache directory
(``HDTHEORY_CACHE_DIR``; the suite's ``HDTHEORY_NO_CACHE=1`` removed). jax logs every compilation
(``JAX_LOG_COMPILES=1``), every cache hit and, with ``JAX_EXPLAIN_CACHE_MISSES=1``, every miss.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import pytest

import hdtheory as hd
from hdtheory import _cache

LOGISTIC = ["eval", "erm", "loss=logistic", "teacher=sign", "alpha=2", "lam=0.1", "--json"]
HINGE = ["eval", "erm", "loss=hinge", "teacher=sign", "alpha=2", "lam=0.1", "--json"]


def run(args, **env):
    """``hdtheory ARGS`` in a new process: (its JSON answer, its stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HDTHEORY_", "XDG_CACHE"))}
    environ |= {"JAX_LOG_COMPILES": "1", "JAX_EXPLAIN_CACHE_MISSES": "1"} | env
    # Run outside the checkout, so that the installed package (with hdtheory.kernels) is imported.
    done = subprocess.run([sys.executable, "-m", "hdtheory.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=900, cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def entries(path):
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_a_second_process_loads_the_programs_and_a_changed_configuration_compiles_its_own(tmp_path):
    cache = tmp_path / "cache"
    first, _ = run(LOGISTIC, HDTHEORY_CACHE_DIR=str(cache))
    written = entries(cache)
    assert any(name.startswith("jit_solve-") for name in written), written

    # Every program of the second run comes from the cache: none is compiled again.
    second, log = run(LOGISTIC, HDTHEORY_CACHE_DIR=str(cache))
    compiled = log.count("Compiling ")
    assert compiled > 0 and log.count("Persistent compilation cache hit") == compiled, log
    assert "Persistent compilation cache hit for 'jit_solve'" in log
    assert "PERSISTENT COMPILATION CACHE MISS" not in log, log
    assert entries(cache) == written
    assert second == first
    assert first["converged"] and first["status"] == "converged"

    # The hinge loss is another program: it misses, is compiled and stored beside the logistic one,
    # and its answer is the one a process without any cache computes.
    hinge, log = run(HINGE, HDTHEORY_CACHE_DIR=str(cache))
    assert "PERSISTENT COMPILATION CACHE MISS for 'jit_solve'" in log, log
    solve_entries = [name for name in entries(cache) if name.startswith("jit_solve-")]
    assert len(solve_entries) == 2, solve_entries
    uncached, _ = run(HINGE, HDTHEORY_NO_CACHE="1", HDTHEORY_CACHE_DIR=str(tmp_path / "unused"))
    assert not (tmp_path / "unused").exists()
    assert hinge == uncached
    assert hinge["converged"]
    assert abs(hinge["test_error"] - first["test_error"]) > 1e-3


def test_an_ode_theory_is_cached_too(tmp_path):
    """The integration's program holds no host callback (equinox's runtime checks), which would
    keep it out of the cache: a second process compiles nothing."""
    args = ["eval", "committee", "K=1", "M=1", "t=1", "--json"]
    first, _ = run(args, HDTHEORY_CACHE_DIR=str(tmp_path))
    assert any(name.startswith("jit__solve-") for name in entries(tmp_path)), entries(tmp_path)
    second, log = run(args, HDTHEORY_CACHE_DIR=str(tmp_path))
    assert "Persistent compilation cache hit for 'jit__solve'" in log, log
    assert "PERSISTENT COMPILATION CACHE MISS" not in log, log
    assert second == first


def test_the_flag_turns_the_cache_off(tmp_path):
    run(["eval", "krr", "--no-cache", "--json"], HDTHEORY_CACHE_DIR=str(tmp_path / "cache"),
        XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "xdg").exists()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "{home}/.cache/hdtheory/jax"),
        ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/hdtheory/jax"),
        ({"XDG_CACHE_HOME": "relative"}, "{home}/.cache/hdtheory/jax"),  # XDG: relative paths are ignored
        ({"XDG_CACHE_HOME": "{tmp}/xdg", "HDTHEORY_CACHE_DIR": "{tmp}/mine"}, "{tmp}/mine"),
        ({"HDTHEORY_CACHE_DIR": ""}, None),
        ({"HDTHEORY_NO_CACHE": "1", "HDTHEORY_CACHE_DIR": "{tmp}/mine"}, None),
        ({"HDTHEORY_NO_CACHE": "0"}, "{home}/.cache/hdtheory/jax"),
    ],
)
def test_the_environment_moves_the_cache_or_turns_it_off(env, expected, tmp_path, monkeypatch):
    for name in ("HDTHEORY_NO_CACHE", "HDTHEORY_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fill = {"tmp": str(tmp_path), "home": str(tmp_path / "home")}
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**fill))
    found = _cache.cache_dir()
    assert (None if found is None else str(found)) == (None if expected is None else expected.format(**fill))
    if expected is None:
        assert hd.enable_cache() is None


def test_the_directory_is_bounded_by_dropping_the_least_recently_used_entries(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    now = time.time()
    for age, name in enumerate(["newest", "newer", "older", "oldest"]):
        path = cache / name
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 100 * age, now - 100 * age))
    try:
        assert hd.enable_cache(cache, max_size=2500) == cache
        assert jax.config.jax_compilation_cache_dir == str(cache.resolve())
    finally:
        hd.disable_cache()
    assert entries(cache) == ["newer", "newest"]
    assert jax.config.jax_compilation_cache_dir is None


@pytest.mark.parametrize("options", [{"max_size": 0}, {"max_size": 1.5}, {"min_compile_time": -1.0}])
def test_bad_bounds_are_parameter_errors(options, tmp_path):
    with pytest.raises(hd.ParameterError, match=next(iter(options))):
        hd.enable_cache(tmp_path, **options)
    assert not any(tmp_path.iterdir())


def test_import_loads_no_solver_dependency_until_a_name_is_used():
    code = ("import sys, hdtheory as hd\n"
            "heavy = ('jax', 'diffrax', 'optax', 'optimistix', 'scipy', 'xarray', 'matplotlib', 'sklearn')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "hd.ERM; print(sorted(m for m in heavy if m in sys.modules))\n"
            "hd.simulate.simulate; import hdtheory.plot; print(hd.plot.heatmap.__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    before, after, plot = done.stdout.splitlines()
    assert before == "[]"
    assert after == "['jax']"  # a model needs jax (and equinox), not the ODE solver or the optimisers
    assert plot == "heatmap"
