"""Sooner compilation on the CPU: :func:`faster_compilation`.

A short computation of hdtheory spends most of its time in XLA compiling the theory's program. Since
jaxlib 0.6 XLA's CPU backend emits every fusion through its MLIR "fusion emitters"; its earlier LLVM IR
emitters, still selected by the flag ``--xla_cpu_use_fusion_emitters=false``, compile these
programs in about 40% less time with the same results (a logistic ERM solve: 2.4 to 0.9 CPU s of
compilation at backend optimisation level 0; a 200-point vmapped solve at the default level: 4.2 to
2.7 s, and its run 10% faster; the test suite: 40% less CPU time; jaxlib 0.10, x86 CPU). The flag
concerns the CPU backend only.

``--xla_backend_optimization_level=0`` (``optimise_backend=False``) skips LLVM's optimisations as
well: a quarter less compilation again, for a run up to twice as slow, which is the right trade for
one setting's answer and the wrong one for a large grid.

XLA reads ``XLA_FLAGS`` when jax's backend starts, and aborts the process on a flag it does not
know: the fusion flag is added only for the jaxlib versions known to have it (0.6 to 0.10). A flag
already named in ``XLA_FLAGS`` is left as it is set there, so that a user's choice wins.
"""

import importlib.metadata
import os

_FUSION = "--xla_cpu_use_fusion_emitters=false"
_LEVEL_0 = "--xla_backend_optimization_level=0"
_KNOWN_JAXLIB = ((0, 6), (0, 10))
"""The first and last (major, minor) versions of jaxlib known to have the fusion flag."""

LONG_RUN = {"xla_backend_optimization_level": 3}
"""``jax.jit``'s ``compiler_options`` for a program that runs far longer than it compiles (a
simulation's thousands of steps): LLVM's optimisations at XLA's default level, whatever
:func:`faster_compilation` chose for the process."""


def _jaxlib_version() -> tuple[int, int] | None:
    try:
        major, minor = importlib.metadata.version("jaxlib").split(".")[:2]
        return int(major), int(minor)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def faster_compilation(optimise_backend: bool = True) -> list[str]:
    """Add XLA's flags for sooner CPU compilation to ``os.environ["XLA_FLAGS"]`` (module docstring).

    Call it before jax's first computation, as :func:`~hdtheory.enable_cache`: the flags are read when
    jax's backend starts, and have no effect after. ``optimise_backend=False`` also turns LLVM's
    optimisations off (sooner compilation, slower runs: for one setting rather than a grid). The
    command line calls it for every command. Returns the flags added (none where ``XLA_FLAGS`` names
    them already or where this jaxlib is not known to have them).
    """
    current = os.environ.get("XLA_FLAGS", "")
    wanted = [] if optimise_backend else [_LEVEL_0]
    version = _jaxlib_version()
    if version is not None and _KNOWN_JAXLIB[0] <= version <= _KNOWN_JAXLIB[1]:
        wanted.append(_FUSION)
    added = [flag for flag in wanted if flag.split("=")[0] not in current]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added
