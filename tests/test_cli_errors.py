"""The command line never shows a traceback; output folders are safe; results do not depend on import
order.

Every bad input is one line on stderr, ``hdtheory: error: ...`` naming the parameter, key or path,
with exit status 2 (the cases of a hostile pass over the command line). Most run through
``cli.main`` in this process (the same code path as the executable, after argument parsing); a few
run the real executable.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest


def test_constants_do_not_depend_on_when_float64_is_enabled():
    # Importing hdtheory before enabling float64 (what the command line did) must give the same
    # numbers as enabling it first: no constant may be computed in float32 at import time.
    script = textwrap.dedent("""
        import json, sys
        import jax
        if sys.argv[1] == "first":
            jax.config.update("jax_enable_x64", True)
        import hdtheory as hd
        jax.config.update("jax_enable_x64", True)
        solution = hd.solve(hd.ERM(loss="logistic", teacher="sign", alpha=2.0, lam=0.01))
        print(json.dumps({k: float(v) for k, v in solution.observables.items()}))
    """)

    def run(order):
        result = subprocess.run([sys.executable, "-c", script, order], capture_output=True, text=True,
                                timeout=600, cwd=tempfile.gettempdir())
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    first, after = run("first"), run("after")
    assert first.keys() == after.keys()
    for name in first:
        assert after[name] == pytest.approx(first[name], rel=1e-14, abs=1e-300), name


# -- bad input: one line naming it, exit status 2 ------------------------------------------------------


def main(capsys, *args):
    """``hdtheory ARGS`` in this process: (exit status, stdout, stderr); argparse's exits included."""
    from hdtheory import cli

    try:
        status = cli.main(list(args))
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line(status, out, err, name, expected=2):
    assert status == expected and out == "", (status, out, err)
    assert err.count("\n") == 1 and err.startswith("hdtheory") and name in err, err
    assert "Traceback" not in err


TUNE = ["tune", "erm", "--over", "lam:log", "--objective", "test_error"]
BAD_ARGUMENTS = [
    (["eval", "nomodel"], "nomodel"),
    (["eval", "erm", "bogus=1"], "bogus"),
    (["eval", "erm", "loss=cauchy"], "loss"),
    (["eval", "erm", "alpha"], "alpha"),
    (["eval", "erm", "--precision", "float16"], "--precision"),
    (["eval", "erm", "--bogus"], "--bogus"),
    (["list", "extra"], "extra"),
    (["tune", "erm", "--over", "lam:cube", "--objective", "test_error"], "lam:cube"),
    (["tune", "erm", "--objective", "test_error"], "--over"),
    (["eval", "erm", "alpha=two"], "'alpha'"),
    (["eval", "erm", "alpha="], "'alpha'"),
    (["eval", "erm", "alpha=nan"], "'alpha'"),
    (["eval", "erm", "alpha=inf"], "'alpha'"),
    (["eval", "erm", "lam=-inf"], "'lam'"),
    (["eval", "erm", "alpha=1,2"], "'alpha'"),
    (["eval", "committee", "pieces=1,nan"], "'pieces'"),
    ([*TUNE, "--max-iterations", "0"], "--max-iterations"),
    ([*TUNE, "--max-iterations", "many"], "--max-iterations"),
    (["eval", "committee", "t=5,1"], "'t'"),
    (["eval", "committee", "t=1,1"], "'t'"),
    (["eval", "committee", "t=inf"], "'t'"),
    (["simulate", "committee", "t=5,1"], "'t'"),
    (["simulate", "erm", "d=0"], "'d'"),
    # Sizes whose memory exceeds any machine's: refused by an estimate, before anything is allocated.
    (["eval", "committee", "K=100000"], "'K'"),
    (["eval", "committee", "M=100000"], "'M'"),
    (["tune", "committee", "K=100000", "--over", "lr:log", "--objective", "eg"], "'K'"),
    (["simulate", "erm", "d=10000000"], "'d'"),
    (["simulate", "committee", "K=100000", "d=100"], "'K'"),
    # krr's simulation needs a finite spectrum: d sets its number of modes, checked like the others.
    (["simulate", "krr"], "'lam'"),
    (["demo", "--out", ""], "--out"),
    (["sweep", "no-such-config.toml"], "no-such-config.toml"),
]


def test_bad_arguments_are_one_line_naming_them(capsys):
    for args, name in BAD_ARGUMENTS:
        assert_one_line(*main(capsys, *args), name)


def test_list_json_is_strict(capsys):
    status, out, err = main(capsys, "list", "--json")
    assert status == 0, err

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    table = json.loads(out, parse_constant=refuse)
    features = {row["name"]: row for row in table["krr"]}["features"]
    assert features["default"] == "inf"  # as it is typed: features=inf


GOOD = """model = "erm"
[parameters]
loss = "square"
teacher = "linear"
[axes]
alpha = [0.5, 2.0]
"""
CURVES = '[[plots]]\nkind = "curves"\nvariable = "test_error"\nx = "alpha"\n'
BAD_CONFIGS = [
    (GOOD.replace('teacher = "linear"', 'teacher = "linear"\nlam = [0.1, 0.2]'), "parameters.lam"),
    (GOOD.replace('teacher = "linear"', 'teacher = "linear"\nlam = inf'), "parameters.lam"),
    (GOOD.replace('teacher = "linear"', 'teacher = "linear"\nlam = nan'), "parameters.lam"),
    (GOOD + CURVES.replace('x = "alpha"', 'x = ["alpha"]'), "plots[0].x"),
    (GOOD + CURVES.replace('variable = "test_error"', "variable = 1"), "plots[0].variable"),
    (GOOD + CURVES.replace('kind = "curves"', 'kind = ["curves"]'), "plots[0].kind"),
    (GOOD + CURVES + CURVES, "plots[1].file"),  # two figures with the same default file name
    (GOOD + CURVES + 'file = "a.png"\n' + CURVES.replace("test_error", "train_loss") + 'file = "a.png"\n',
     "plots[1].file"),
    (GOOD.replace("[0.5, 2.0]", "{ linspace = [0.1, 2.0, 1000000000000] }"), "axes.alpha.linspace"),
    (GOOD.replace("alpha = [0.5, 2.0]", "alpha = { linspace = [0.1, 2.0, 10000000] }\n"
                                        "lam = { logspace = [-3, 1, 10000000] }"), "axes.alpha"),
    (GOOD.replace("[0.5, 2.0]", "[0.5, 2.0"), "malformed TOML"),  # incomplete
    (GOOD.replace("[0.5, 2.0]", "{ linspace = [0.1,"), "malformed TOML"),
    ("", "model"),
    ('model = "erm"\n', "axes"),
]


def test_bad_configs_are_one_line_naming_the_key(tmp_path, capsys):
    config, out = tmp_path / "bad.toml", tmp_path / "out"
    for text, key in BAD_CONFIGS:
        config.write_text(text)
        status, stdout, err = main(capsys, "sweep", str(config), "--out", str(out))
        assert_one_line(status, stdout, err, key)
        assert "bad.toml" in err and not out.exists()
    config.write_bytes(GOOD.encode() + b"# caf\xe9 in Latin-1\n")
    assert_one_line(*main(capsys, "sweep", str(config), "--out", str(out)), "UTF-8")
    assert not out.exists()


def test_bad_output_folders_are_refused_before_computing(tmp_path, capsys):
    config = tmp_path / "good.toml"
    config.write_text(GOOD)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("kept")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "deeper")
    bad = [str(a_file), str(a_file / "below"), "/proc/hdtheory-out", "", " ", str(full), str(dangling),
           str(tmp_path / ("x" * 300)), "/"]
    for out in bad:
        for command in (["sweep", str(config)], ["demo"]):
            assert_one_line(*main(capsys, *command, "--out", out), "--out")
    assert [p.name for p in full.iterdir()] == ["old.txt"] and a_file.read_text() == ""
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_one_line(*main(capsys, "sweep", str(config), "--out", str(locked / "out")), "--out")


# -- output safety ----------------------------------------------------------------------------------


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_sweep_output_is_all_or_nothing(tmp_path, capsys, monkeypatch):
    import hdtheory._sweep
    import hdtheory.plot

    config = tmp_path / "ridge.toml"
    config.write_text(GOOD + CURVES)
    out = tmp_path / "out"
    status, stdout, err = main(capsys, "sweep", str(config), "--out", str(out), "--json")
    assert status == 0, err
    files = ["ridge.csv", "ridge.nc", "ridge_test_error_alpha.png"]
    assert listing(out) == files and set(json.loads(stdout).values()) == {str(out / f) for f in files}
    stamp = {f: (out / f).stat().st_mtime_ns for f in files}
    (out / "notes.txt").write_text("mine")

    # A folder holding files is refused without --overwrite, whatever they are.
    assert_one_line(*main(capsys, "sweep", str(config), "--out", str(out)), "--overwrite")

    # A failure between two writes (the figure, after the data) leaves the folder as it was: no new
    # netCDF and CSV next to an old figure, no temporary files.
    def broken(*args, **kwargs):
        raise RuntimeError("the figure failed")

    monkeypatch.setattr(hdtheory.plot, "curves", broken)
    assert_one_line(*main(capsys, "sweep", str(config), "--out", str(out), "--overwrite"),
                    "the figure failed", expected=1)
    assert listing(out) == sorted([*files, "notes.txt"])
    assert {f: (out / f).stat().st_mtime_ns for f in files} == stamp
    monkeypatch.undo()

    # Ctrl-C during the computation: one line, status 130, the folder as it was; a folder that the
    # run created is removed.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hdtheory._sweep, "sweep", interrupted)
    assert_one_line(*main(capsys, "sweep", str(config), "--out", str(out), "--overwrite"),
                    "interrupted", expected=130)
    assert listing(out) == sorted([*files, "notes.txt"])
    assert_one_line(*main(capsys, "sweep", str(config), "--out", str(tmp_path / "new" / "out")),
                    "interrupted", expected=130)
    assert not (tmp_path / "new" / "out").exists()
    monkeypatch.undo()

    # --overwrite replaces the run's files and keeps the others.
    status, stdout, err = main(capsys, "sweep", str(config), "--out", str(out), "--overwrite")
    assert status == 0, err
    assert listing(out) == sorted([*files, "notes.txt"]) and (out / "notes.txt").read_text() == "mine"
    assert all((out / f).stat().st_mtime_ns > stamp[f] for f in files)


def test_unexpected_failure_is_one_line_and_debug_shows_it(capsys, monkeypatch):
    import hdtheory.cli

    def broken(args):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(hdtheory.cli, "_cmd_list", broken)  # the parser names it when main builds it
    assert_one_line(*main(capsys, "list"), "ZeroDivisionError: deep inside", expected=1)
    monkeypatch.setenv("HDTHEORY_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        hdtheory.cli.main(["list"])


# -- the executable itself ---------------------------------------------------------------------------


def hdtheory(*args, **kwargs):
    command = os.path.join(os.path.dirname(sys.executable), "hdtheory")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=600,
                          cwd=tempfile.gettempdir(), **kwargs)


def test_executable_bad_input_and_strict_json():
    result = hdtheory("eval", "erm", "alpha=1,2")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "'alpha'" in result.stderr
    result = hdtheory("tune", "erm", "--over", "lam:log", "--objective", "test_error", "--max-iterations", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--max-iterations" in result.stderr


def test_executable_ctrl_c_is_one_line_and_leaves_nothing(tmp_path):
    config = tmp_path / "ridge.toml"
    config.write_text(GOOD.replace("[0.5, 2.0]", "{ linspace = [0.5, 2.0, 64] }"))
    out = tmp_path / "out"
    command = os.path.join(os.path.dirname(sys.executable), "hdtheory")
    process = subprocess.Popen([command, "sweep", str(config), "--out", str(out), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The hidden folder that the files are written into exists from the start of the computation.
    for _ in range(6000):
        if out.exists() and any(p.name.startswith(".hdtheory-partial") for p in out.iterdir()):
            break
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 130, stderr
    assert stdout == "" and stderr == "hdtheory: interrupted\n"
    assert not out.exists()


def test_an_interrupt_that_a_callback_swallows_still_stops_the_write(capsys, monkeypatch, tmp_path):
    # Python drops a KeyboardInterrupt raised inside a garbage-collector callback (jax installs one):
    # the computation then runs to its end. The interrupt must still cancel the files and exit 130.
    from hdtheory import _config

    real_run = _config.run

    def run_swallowing_an_interrupt(*args, **kwargs):
        # What the command's SIGINT handler leaves when its KeyboardInterrupt is dropped: the flag.
        # (A real signal here could land inside jax's own callbacks in this test process.)
        _config.INTERRUPTED.set()
        return real_run(*args, **kwargs)

    monkeypatch.setattr(_config, "run", run_swallowing_an_interrupt)
    config = tmp_path / "ridge.toml"
    config.write_text(GOOD)
    out = tmp_path / "out"
    status, stdout, stderr = main(capsys, "sweep", str(config), "--out", str(out), "--json")
    assert (status, stdout, stderr) == (130, "", "hdtheory: interrupted\n")
    assert not out.exists()
    assert not _config.INTERRUPTED.is_set()  # nothing carries over to the next call


def test_simulate_krr_takes_its_modes_from_d(capsys):
    # krr's theory sums an infinite spectrum; its simulation is a finite kernel of d modes, compared
    # here with the theory of the same finite kernel (KRR(modes=d)), within the finite-size error.
    import hdtheory as hd

    status, out, err = main(capsys, "simulate", "krr", "lam=0.1", "n=200", "noise=0.1", "d=300",
                            "seeds=4", "--json")
    assert status == 0, err
    record = json.loads(out)
    assert (record["d"], record["n"], record["seeds"]) == (300, 200, 4)
    theory = hd.solve(hd.KRR(lam=0.1, n=200.0, noise=0.1, modes=300)).observables["test_error"]
    gap = abs(record["mean"]["test_error"] - float(theory))
    assert gap < 4 * record["sem"]["test_error"] + 0.1 * float(theory), (record["mean"], float(theory))
