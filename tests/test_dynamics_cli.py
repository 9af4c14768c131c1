"""The command line with ODE theories: eval to one time or a curve, list, bad input."""

import json
import math
import subprocess
import sys
import tempfile

import pytest

from hdtheory import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "hdtheory.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=tempfile.gettempdir())


def test_eval_committee_curve_matches_the_exact_linear_solution():
    # K = M = 1, linear: eg(t) = eg0 exp(-(2 lr - lr^2) t) with eg0 = (q0 - 2 R0 + 1) / 2.
    result = run("eval", "committee", "K=1", "M=1", "activation=linear", "lr=0.5", "q0=0.5",
                 "r0=0", "t=1,4", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["t"] == [1.0, 4.0] and record["success"] is True
    for t, eg in zip(record["t"], record["eg"]):
        assert eg == pytest.approx(0.75 * math.exp(-0.75 * t), rel=1e-6)


# The default run checks `hdtheory eval committee` against an exact solution (above).
@pytest.mark.extended
def test_eval_committee_at_one_time_and_single_index():
    result = run("eval", "committee", "K=2", "M=2", "lr=0.5", "t=10", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert len(record["Q"]) == 2 and record["status"] == "completed" and record["eg"] > 0
    result = run("eval", "single-index", "lr=0.01", "m0=0.3", "t=5", "--json")
    assert result.returncode == 0, result.stderr
    assert 0.3 < json.loads(result.stdout)["m"] <= 1


def test_list_shows_ode_theories():
    table = json.loads(run("list", "--json").stdout)
    assert {"K", "M", "lr", "activation"} <= {row["name"] for row in table["committee"]}
    assert "batch" in {row["name"] for row in table["single-index"]}


@pytest.mark.parametrize(
    "args, name",
    [(["K=0"], "K"), (["K=2.5"], "K"), (["lr=-1"], "lr"), (["activation=cosh"], "activation"),
     (["t=-1"], "t"), (["t=soon"], "t")],
)
def test_bad_input_exits_2(args, name, capsys):
    # In this process (a separate one: tests/test_cli.py).
    status = cli.main(["eval", "committee", *args])
    captured = capsys.readouterr()
    assert status == 2
    assert name in captured.err and captured.err.count("\n") == 1
