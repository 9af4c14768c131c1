import os

# Several test processes share one accelerator: none may take most of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's time is compilation: XLA's earlier CPU fusion emitters and LLVM's lowest optimisation
# level compile the programs sooner, with the same results (hdtheory._compilation). Set before jax
# starts its backend; subprocesses inherit them.
from hdtheory import faster_compilation  # noqa: E402

faster_compilation(optimise_backend=False)
# The command line's persistent compilation cache stays off for the suite (a cache shared by the test
# processes made it slower): the commands the tests run, in this process or in subprocesses, compile
# afresh. tests/test_cache.py turns it on in its own subprocesses.
os.environ.setdefault("HDTHEORY_NO_CACHE", "1")
# The simulations' fits (SciPy's L-BFGS-B at d of a few hundred) call BLAS on small vectors: on a
# busy machine OpenBLAS's threads only wait for each other (a fit 20 times slower). One thread for
# the BLAS libraries loaded from here on, and below for those already loaded (NumPy's, by a plugin).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gc  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(1, user_api="blas")
# jax has read JAX_LOG_COMPILES (a diagnostic): the log shows for this process's programs, while the
# commands run in subprocesses keep their stderr to their own messages, whose form tests check.
os.environ.pop("JAX_LOG_COMPILES", None)

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop every compiled program when a test file ends. Each one holds a few memory mappings of
    its machine code; a test process that runs many files compiles tens of thousands of programs,
    and at the kernel's limit on mappings (``vm.max_map_count``, 65530 by default) XLA's compiler
    segfaults. The files rarely share programs, so nothing is compiled twice that was not anyway."""
    yield
    jax.clear_caches()
    gc.collect()


# The test processes take whole files from a queue in collection order: the longest files go first,
# so that the last file to finish is a short one.
_LONGEST_FIRST = ("test_multi_index.py", "test_dynamics_committee.py", "test_tune.py", "test_bayes.py",
                  "test_erm.py", "test_steady_threshold.py", "test_fuzz.py", "test_sweep.py", "test_demo.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
