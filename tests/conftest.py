import os

# Several test processes share one accelerator: none may take most of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's time is compilation: LLVM's lowest optimisation level compiles the CPU programs
# sooner, and without fast-math the results are the same. Subprocesses inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
