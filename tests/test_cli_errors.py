"""The command line never shows a traceback; output folders are safe; results do not depend on import
order.

Every bad input is one line on stderr, ``hdtheory: error: ...`` naming the parameter, key or path,
with exit status 2 (the cases of a hostile pass over the command line). Most run through
``cli.main`` in this process (the same code path as the executable, after argument parsing); a few
run the real executable.
"""

import json
import subprocess
import sys
import tempfile
import textwrap

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
