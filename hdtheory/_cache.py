"""JAX's persistent compilation cache in the user's cache directory.

Most of a short ``hdtheory`` command's time is XLA compiling the programs of the theory it solves;
the answer itself takes milliseconds. JAX can store every compiled program on disk and load it in a
later process instead of compiling it again (``jax_compilation_cache_dir``). The command line turns
this on by default; a library user turns it on with one call, :func:`enable_cache`.

Where. ``path``, else ``$HDTHEORY_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdtheory/jax``, else
``~/.cache/hdtheory/jax`` (the XDG base-directory convention).

Off. ``HDTHEORY_NO_CACHE=1`` or ``HDTHEORY_CACHE_DIR=""`` (set but empty) turn the cache off, for
the command line and for :func:`enable_cache` without a ``path``; so does ``hdtheory ... --no-cache``.
A ``path`` given to :func:`enable_cache` is always used.

Correctness. JAX keys an entry by a hash of the compiled program's StableHLO (so of every static
choice of the theory: a loss, a teacher, shapes and dtypes), the jax and jaxlib versions, the XLA
backend and its version, the device kinds and topology, the compile options and the ``XLA_FLAGS``.
A program is therefore never served to a different configuration, jax version or device: those
compile afresh and add entries beside the old ones. The cache is trusted code: do not point it at a
directory others can write to.

Size. The directory is bounded by ``max_size`` bytes: when the cache is enabled, the least recently
used entries (by the later of a file's access and modification times) are deleted until the rest
fits, so it exceeds the bound by at most what one process writes. (JAX's own bound,
``jax_compilation_cache_max_size``, needs the optional ``filelock`` package and a bookkeeping file per
entry, so it is not used here.)

Which programs. Only programs whose compilation took at least ``min_compile_time`` seconds are
written (JAX's ``jax_persistent_cache_min_compile_time_secs``): the many tiny programs a command
compiles cost more to store and look up than to compile.
"""

import os
from pathlib import Path

DEFAULT_MAX_SIZE = 2**30
"""The default bound on the cache directory, in bytes (1 GiB)."""

DEFAULT_MIN_COMPILE_TIME = 0.0
"""Programs that compile faster than this many seconds are not stored."""

_OFF_VALUES = ("", "0", "false", "no")


def cache_dir() -> Path | None:
    """The cache directory the environment selects, or None when the environment turns it off.

    ``$HDTHEORY_NO_CACHE`` set to anything but ``""``/``0``/``false``/``no``: off;
    ``$HDTHEORY_CACHE_DIR``: that directory (off when set but empty); else
    ``$XDG_CACHE_HOME/hdtheory/jax``, else ``~/.cache/hdtheory/jax``.
    """
    if os.environ.get("HDTHEORY_NO_CACHE", "").strip().lower() not in _OFF_VALUES:
        return None
    if "HDTHEORY_CACHE_DIR" in os.environ:
        value = os.environ["HDTHEORY_CACHE_DIR"]
        return Path(value).expanduser() if value else None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "hdtheory" / "jax"


def _prune(path: Path, max_size: int) -> None:
    """Delete the least recently used files of ``path`` until the rest takes at most ``max_size`` bytes."""
    entries = []
    with os.scandir(path) as it:
        for entry in it:
            try:
                if entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    entries.append((max(stat.st_atime, stat.st_mtime), stat.st_size, entry.path))
            except OSError:
                continue
    total = sum(size for _, size, _ in entries)
    for _, size, name in sorted(entries):
        if total <= max_size:
            break
        try:
            os.unlink(name)
        except OSError:
            continue
        total -= size


def enable_cache(path: str | os.PathLike | None = None, max_size: int = DEFAULT_MAX_SIZE,
                 min_compile_time: float = DEFAULT_MIN_COMPILE_TIME) -> Path | None:
    """Store compiled programs in ``path`` and load them from there in later processes.

    Call it before the first computation. ``path=None`` takes the directory from the environment
    (:func:`cache_dir`: ``$HDTHEORY_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdtheory/jax``, else
    ``~/.cache/hdtheory/jax``), and leaves the cache off when ``HDTHEORY_NO_CACHE=1`` or
    ``HDTHEORY_CACHE_DIR=""``; an explicit ``path`` is always used. ``max_size`` (bytes, > 0) bounds
    the directory: the least recently used entries are deleted now until the rest fits.
    ``min_compile_time`` (seconds, >= 0): faster compilations are not stored.

    Returns the directory in use, or None when the cache is off. Entries are keyed by the program,
    the jax version and the device (see the module's docstring), so a cache is safe to keep across
    upgrades and machines.
    """
    from ._theory import ParameterError

    if not (isinstance(max_size, int) and max_size > 0):
        raise ParameterError(f"max_size must be an integer number of bytes > 0, got {max_size!r}")
    if not min_compile_time >= 0:
        raise ParameterError(f"min_compile_time must be >= 0 seconds, got {min_compile_time!r}")
    directory = Path(path).expanduser() if path is not None else cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _prune(directory, max_size)
    except OSError:
        return None  # an unwritable cache directory only costs time: compile as without one

    import jax

    _switch_to(str(directory.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time))
    return directory


def disable_cache() -> None:
    """Stop reading and writing the persistent compilation cache in this process."""
    _switch_to(None)


def _switch_to(directory: str | None) -> None:
    """Point jax's cache at ``directory`` (None: no cache), dropping a cache it has already opened."""
    import jax

    if jax.config.jax_compilation_cache_dir == directory:
        return
    jax.config.update("jax_compilation_cache_dir", directory)
    # jax opens its cache at the first compilation and keeps it: a later change of directory only
    # takes effect after a reset.
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
