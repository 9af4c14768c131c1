"""The CPU compilation flags of hdtheory._compilation: which are added when, and that they change
no result."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import _compilation

FUSION = "--xla_cpu_use_fusion_emitters=false"
LEVEL_0 = "--xla_backend_optimization_level=0"


@pytest.mark.parametrize(
    ("version", "given", "optimise", "added"),
    [
        ((0, 10), "", False, [LEVEL_0, FUSION]),
        ((0, 6), "", True, [FUSION]),
        ((0, 5), "", False, [LEVEL_0]),  # before the flag existed: XLA would abort on it
        ((0, 11), "", True, []),  # not known to have it
        (None, "", True, []),  # jaxlib's version unknown
        ((0, 10), "--xla_cpu_use_fusion_emitters=true", True, []),  # the user's choice wins
        ((0, 10), "--xla_backend_optimization_level=2 --foo=1", False, [FUSION]),
    ],
)
def test_flags_added(monkeypatch, version, given, optimise, added):
    monkeypatch.setattr(_compilation, "_jaxlib_version", lambda: version)
    monkeypatch.setenv("XLA_FLAGS", given)
    assert _compilation.faster_compilation(optimise_backend=optimise) == added
    assert os.environ["XLA_FLAGS"].split() == given.split() + added


def test_jaxlib_version_is_read():
    version = _compilation._jaxlib_version()
    assert version is not None and version >= (0, 4)


_PROGRAM = """
import json, jax
jax.config.update("jax_enable_x64", True)
import hdtheory as hd
obs = hd.solve(hd.ERM(loss="logistic", teacher="sign", alpha=2.0, lam=0.1)).observables
print(json.dumps({k: float(v) for k, v in obs.items() if v.ndim == 0}))
"""


def test_the_results_are_those_of_the_default_emitters():
    """A logistic ERM solve compiled as the suite compiles it (hdtheory's flags, set by conftest) and
    with XLA's default fusion emitters, in a subprocess: the same observables to rounding."""
    if _compilation._KNOWN_JAXLIB[0] <= _compilation._jaxlib_version() <= _compilation._KNOWN_JAXLIB[1]:
        assert FUSION in os.environ["XLA_FLAGS"]  # this process compiles with the earlier emitters
    flags = os.environ.get("XLA_FLAGS", "").replace(FUSION, "") + " --xla_cpu_use_fusion_emitters=true"
    env = os.environ | {"XLA_FLAGS": flags.strip()}
    out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, cwd="/tmp", capture_output=True,
                         text=True, timeout=300, check=True)
    reference = json.loads(out.stdout)
    obs = hd.solve(hd.ERM(loss="logistic", teacher="sign", alpha=jnp.asarray(2.0), lam=0.1)).observables
    assert len(reference) > 5
    for name, value in reference.items():
        np.testing.assert_allclose(float(obs[name]), value, rtol=1e-12, atol=1e-14, err_msg=name)
