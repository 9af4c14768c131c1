"""Programs whose run, not their compilation, is a test's cost: compiled with LLVM's optimisations.

The suite compiles with them off (tests/conftest.py: ``faster_compilation(optimise_backend=False)``),
a quarter less compilation for runs up to twice as slow. A test whose program runs for seconds
(a reference integrand at thousands of points, hundreds of iterations of a map, solves that creep
to a fixed point near a threshold) compiles that program with them on: about twice the compilation
of a program that takes a second or two to compile, and half the run.
"""

import jax

from hdtheory._compilation import LONG_RUN


def optimised(fun, **kwargs):
    """``jax.jit(fun, **kwargs)``, compiled with LLVM's optimisations (as the simulations are)."""
    return jax.jit(fun, compiler_options=LONG_RUN, **kwargs)
