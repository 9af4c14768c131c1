"""Every script in examples/ runs in its reduced mode (--quick) and writes its figure.

One test per script, each in its own Python process (an example may set jax's configuration).
Five examples are run, and their results checked, by the tests of what they show, in the default
run: fit_theory_to_curve.py by tests/test_fit_example.py, lr_schedule.py by
tests/test_tune_dynamics.py, bayes_phase_diagram.py by tests/test_bayes.py, rf_calibration.py by
tests/test_rf_calibration.py and staircase.py by tests/test_multi_index_staircase.py. The others
assert nothing on their numbers, and every entry point they call (solve, integrate, tune, sweep,
threshold, continuation, crossing, steady_state, the models and their helpers) is checked against
its reference by the default run: they run with ``pytest -m extended``.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHECKED_ELSEWHERE = {"fit_theory_to_curve.py", "lr_schedule.py", "bayes_phase_diagram.py", "rf_calibration.py",
                     "staircase.py"}
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if p.name not in CHECKED_ELSEWHERE)


@pytest.mark.extended
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs_in_quick_mode(script, tmp_path):
    out = tmp_path / f"{script.stem}.png"
    run = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True,
                         text=True, timeout=1200, cwd=tempfile.gettempdir())
    assert run.returncode == 0, run.stderr[-4000:]
    assert out.stat().st_size > 0, out
