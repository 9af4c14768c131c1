"""Every script in examples/ runs in its reduced mode (--quick) and writes its figure.

Compilation dominates and runs on one core: the scripts run in two Python processes side by side
(one import of jax per process), each taking the next script not yet claimed by the other (a shared
queue: the scripts' costs differ by a factor of 20, and fixed shares left one process idle for half
the run). Five examples are run, and their results checked, by the tests of what they show:
fit_theory_to_curve.py by tests/test_fit_example.py, lr_schedule.py by tests/test_tune_dynamics.py,
bayes_phase_diagram.py by tests/test_bayes.py, rf_calibration.py by tests/test_rf_calibration.py and
staircase.py by tests/test_multi_index_staircase.py.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHECKED_ELSEWHERE = {"fit_theory_to_curve.py", "lr_schedule.py", "bayes_phase_diagram.py", "rf_calibration.py",
                     "staircase.py"}
PROCESSES = 2

DRIVER = """
import json, os, runpy, sys, time
seconds = {}
for script, out in json.loads(sys.argv[1]):
    try:  # claim the script: creating its marker succeeds in one process only
        os.close(os.open(out + ".claimed", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        continue
    sys.argv = [script, "--quick", "--out", out]
    start = time.perf_counter()
    runpy.run_path(script, run_name="__main__")
    seconds[script] = round(time.perf_counter() - start, 1)
print(json.dumps(seconds))
"""


def test_every_example_runs_in_quick_mode(tmp_path):
    scripts = sorted(p for p in EXAMPLES.glob("*.py") if p.name not in CHECKED_ELSEWHERE)
    jobs = [(str(script), str(tmp_path / f"{script.stem}.png")) for script in scripts]
    runs = [subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(jobs)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
            for _ in range(PROCESSES)]
    results = [run.communicate(timeout=1200) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err[-4000:]
        print(out.splitlines()[-1])  # seconds per script, shown with -s
    for _, out in jobs:
        assert Path(out).stat().st_size > 0, out
