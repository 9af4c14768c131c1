"""``hdtheory sweep`` (configs), ``tune``, ``simulate``: outputs, exit codes, one-line errors."""

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hdtheory import cli

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*.toml"))
# The default run sweeps an ODE theory (committee_lr) and a fixed point (ridge_noise); the others
# repeat the fixed point's sweep on other models.
REPEATS = {"hinge_phase_diagram", "perceptron_bayes"}


def main(capsys, *args):
    """``hdtheory ARGS`` in this process: (exit status, stdout, stderr)."""
    status = cli.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def axis_length(spec) -> int:
    return len(spec) if isinstance(spec, list) else next(iter(spec.values()))[2]


@pytest.mark.parametrize(
    "config", [pytest.param(p, marks=pytest.mark.extended) if p.stem in REPEATS else p for p in CONFIGS],
    ids=lambda p: p.stem,
)
def test_example_config_sweeps_and_reads_back(config, tmp_path, capsys):
    import xarray as xr

    status, out, err = main(capsys, "sweep", str(config), "--out", str(tmp_path), "--json")
    assert status == 0, err
    paths = json.loads(out)
    spec = tomllib.loads(config.read_text())
    data = xr.open_dataset(paths["netcdf"])
    assert {k: data.sizes[k] for k in spec["axes"]} == {k: axis_length(v) for k, v in spec["axes"].items()}
    assert set(spec["observables"]) | {"converged", "status"} <= set(data.data_vars)
    assert bool(data["converged"].all())
    assert data.attrs["model"] == spec["model"]
    for name, value in spec.get("parameters", {}).items():  # the fixed parameters were applied
        assert data.attrs[name] == value
    if "t1" in spec:  # an ODE theory: learning curves along t, from 0 to t1
        assert data["t"].values[0] == 0 and data["t"].values[-1] == spec["t1"]
        assert data.sizes["t"] == spec.get("times", 101) and (data["t_stop"] == spec["t1"]).all()
    rows = Path(paths["csv"]).read_text().splitlines()
    points = int(np.prod([axis_length(v) for v in spec["axes"].values()])) * data.sizes.get("t", 1)
    assert len(rows) == 1 + points
    figures = [Path(p) for k, p in paths.items() if k.startswith("plot")]
    assert len(figures) == len(spec.get("plots", [])) and all(f.stat().st_size > 0 for f in figures)


GOOD = """model = "erm"
[parameters]
loss = "square"
[axes]
alpha = { linspace = [0.5, 2.0, 3] }
"""


ODE = """model = "committee"
t1 = 5.0
times = 3
[axes]
lr = [0.5, 1.0]
"""


@pytest.mark.parametrize(
    "text, key",
    [
        (GOOD.replace('"erm"', '"gcmx"'), "model"),
        (GOOD.replace('model = "erm"', ""), "model"),
        (GOOD.replace('loss = "square"', "bogus = 1"), "parameters.bogus"),
        (GOOD.replace('loss = "square"', 'loss = "cauchyx"'), "parameters.loss"),
        (GOOD.replace('loss = "square"', "lam = -1.0"), "parameters.lam"),
        (GOOD.replace("0.5, 2.0, 3", "-1.0, 2.0, 3"), "axes.alpha"),
        # A flip probability above 1/2 for the sign teacher (a check across parameters):
        (GOOD.replace("alpha = { linspace = [0.5, 2.0, 3] }", "noise = { logspace = [-2, 0, 3] }"), "axes.noise"),
        (GOOD.replace("alpha = { linspace = [0.5, 2.0, 3] }", "lam = [0.1, -0.1]"), "axes.lam"),
        (GOOD.replace("alpha = { linspace = [0.5, 2.0, 3] }", 'loss = ["square"]'), "axes.loss"),
        (GOOD.replace("alpha = { linspace = [0.5, 2.0, 3] }", "betax = [1.0]"), "axes.betax"),
        (GOOD.replace("[0.5, 2.0, 3]", "[0.5, 2.0]"), "axes.alpha.linspace"),
        (GOOD.replace('model = "erm"', 'model = "erm"\nobservables = ["nope"]'), "observables"),
        (GOOD.replace('model = "erm"', 'model = "erm"\ncolour = "red"'), "colour"),
        (GOOD + '[[plots]]\nkind = "heatmap"\nvariable = "test_error"\nx = "alpha"\ny = "lam"\n', "plots[0].y"),
        (GOOD + '[[plots]]\nkind = "pie"\n', "plots[0].kind"),
        (GOOD.replace('loss = "square"', "lam 0.1"), "lam 0.1"),  # malformed: the line is quoted
        (GOOD.replace("[axes]", "[axes"), "[axes"),
        (GOOD.replace('model = "erm"', 'model = "erm"\nt1 = 5.0'), "t1"),
        (ODE.replace("t1 = 5.0", ""), "t1"),
        (ODE.replace("t1 = 5.0", "t1 = -5.0"), "t1"),
        (ODE.replace("times = 3", "times = [0.0, 6.0]"), "times"),
        (ODE.replace("times = 3", "times = 1"), "times"),
        (ODE + '[[plots]]\nkind = "curves"\nvariable = "eg"\nx = "time"\n', "plots[0].x"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(text, key, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    status, out, err = main(capsys, "sweep", str(config), "--out", str(tmp_path / "out"))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and key in err and "bad.toml" in err, err
    assert not (tmp_path / "out").exists()


def test_tune_finds_the_ridge_optimum_and_reports_the_boundary(capsys):
    # Ridge on a linear teacher: the optimal penalty is lam* = noise / rho (in this normalisation).
    args = ["tune", "erm", "loss=square", "teacher=linear", "alpha=2", "rho=1", "--over", "lam:log:1e-6:100",
            "--objective", "test_error", "--json"]
    status, out, err = main(capsys, *args, "noise=0.5")
    assert status == 0, err
    record = json.loads(out)
    assert record["limit_value"] is None  # an interior optimum: no limit beyond a bound
    assert record["params"]["lam"] == pytest.approx(0.5, rel=1e-5)
    assert record["at_boundary"] == {"lam": 0} and record["converged"] is True
    assert record["value"] == pytest.approx(record["observables"]["test_error"], rel=1e-12)
    # Without label noise the error falls as lam -> 0: the optimum is the low bound, with the limit.
    status, out, err = main(capsys, *args, "noise=0")
    record = json.loads(out)
    assert status == 0 and record["at_boundary"] == {"lam": -1}
    assert record["params"]["lam"] == pytest.approx(1e-6)
    assert 0 <= record["limit_value"] <= record["value"]
    status, out, err = main(capsys, "tune", "erm", "--over", "lam:log", "--objective", "nope")
    assert status == 2 and "nope" in err and err.count("\n") == 1


def test_simulate_json_agrees_with_the_published_value(capsys):
    # Logistic regression, noiseless sign teacher, alpha = 2, lam = 0.01: test error 0.174781
    # (Aubin et al. 2020; tests/test_erm.py). d = 200 over 2 seeds: within the finite-size error.
    status, out, err = main(capsys, "simulate", "erm", "alpha=2", "lam=0.01", "d=200", "seeds=2", "--json")
    assert status == 0, err
    record = json.loads(out)
    assert (record["d"], record["n"], record["seeds"]) == (200, 400, 2)
    gap = abs(record["mean"]["test_error"] - 0.174781)
    assert gap < 4 * record["sem"]["test_error"] + 0.03
    for args, name in ((["d=0"], "'d'"), (["seeds=x"], "'seeds'"), (["bogus=1"], "bogus")):
        status, out, err = main(capsys, "simulate", "erm", *args)
        assert status == 2 and name in err and err.count("\n") == 1


def test_simulate_spiked_wishart(capsys):
    # AMP on the n x d spiked Wishart matrix: n = alpha d, the observables of both factors.
    args = ("simulate", "spiked", "ensemble=wishart", "alpha=2", "d=100", "seeds=2", "--json")
    status, out, err = main(capsys, *args)
    assert status == 0, err
    record = json.loads(out)
    assert (record["d"], record["n"], record["seeds"]) == (100, 200, 2)
    assert set(record["mean"]) == {"q_u", "q_v", "mmse_u", "mmse_v", "mmse_matrix"}


def test_help_for_every_command(capsys):
    for command in ("list", "eval", "sweep", "tune", "simulate", "demo"):
        with pytest.raises(SystemExit) as exit:
            cli.main([command, "--help"])
        assert exit.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_installed_command_float32_on_the_cpu():
    # The executable itself: --precision and --device, and a bad config's exit status and message.
    command = str(Path(sys.executable).parent / "hdtheory")
    args = ["eval", "erm", "alpha=2", "lam=0.01", "--json"]

    def run(*extra):
        return subprocess.run([command, *extra], capture_output=True, text=True, timeout=600,
                              cwd=tempfile.gettempdir())

    result = run(*args, "--precision", "float32", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["test_error"] == pytest.approx(0.174781, abs=1e-4)
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as bad:
        bad.write('model = "erm"\n[axes]\nalpha = [1.0, -2.0]\n')
    result = run("sweep", bad.name)
    Path(bad.name).unlink()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "axes.alpha" in result.stderr
