"""The command line: list, eval; errors on stderr with exit status 2 (the demo: tests/test_demo.py)."""

import json
import subprocess
import sys
import tempfile

import pytest

from hdtheory import cli


def run(*args):
    # From a neutral folder, so that the installed package is imported, not the source tree.
    return subprocess.run([sys.executable, "-m", "hdtheory.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=tempfile.gettempdir())


def test_list_names_every_parameter_with_range():
    result = run("list", "--json")
    assert result.returncode == 0
    table = {row["name"]: row for row in json.loads(result.stdout)["erm"]}
    assert set(table) >= {"alpha", "lam", "rho", "noise", "delta", "loss", "teacher"}
    assert table["alpha"]["allowed"] == "(0, inf)"
    assert "logistic" in table["loss"]["allowed"]


def test_eval_json_reproduces_published_value():
    result = run("eval", "erm", "loss=logistic", "teacher=sign", "alpha=2", "lam=0.01", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {"test_error", "train_loss", "m", "q", "V", "converged", "iterations"} <= set(record)
    assert record["converged"] is True
    assert record["test_error"] == pytest.approx(0.174781, abs=1e-5)  # see tests/test_erm.py


# test_eval_json_reproduces_published_value checks the eval command; tests/test_adversarial_linf.py the model.
@pytest.mark.extended
def test_eval_adversarial_linf():
    """An l-infinity attack from the command line: converged, with the attacked norm and the robust
    error above the clean one (the values themselves: tests/test_adversarial_linf.py)."""
    result = run("eval", "adversarial", "attack=linf", "penalty=l1", "eps=0.1", "eps_test=0.1", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["converged"] is True
    assert 0 < record["P"] <= record["norm"] and record["robust_error"] > record["test_error"]


@pytest.mark.parametrize(
    "args, name",
    [
        (["eval", "erm", "alpha=-1"], "alpha"),
        (["eval", "erm", "lam=-0.5"], "lam"),
        (["eval", "erm", "loss=cauchy"], "loss"),
        (["eval", "erm", "teacher=sign", "noise=0.7"], "noise"),
        (["eval", "erm", "bogus=1"], "bogus"),
        (["eval", "erm", "alpha=two"], "alpha"),
        (["eval", "nomodel"], "nomodel"),
        (["eval", "adversarial", "attack=l3"], "attack"),
    ],
)
def test_bad_input_exits_2_naming_the_parameter(args, name, capsys):
    # In this process (the checks run before jax computes anything); a separate process below.
    status = cli.main(args)
    captured = capsys.readouterr()
    assert status == 2
    assert name in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_bad_input_exits_2_from_a_separate_process():
    result = run("eval", "erm", "alpha=-1")
    assert result.returncode == 2
    assert "alpha" in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_help_everywhere():
    for args in (["--help"], ["eval", "--help"], ["list", "--help"], ["demo", "--help"]):
        assert run(*args).returncode == 0
