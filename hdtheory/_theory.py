"""The protocol every theory follows, and its parameters with their allowed ranges.

A theory is an :class:`equinox.Module` whose fields are its parameters. Numeric parameters are
declared with :func:`parameter` (a default, an allowed :class:`Interval`, a one-line description);
choices among named kernels with :func:`choice`. Both are checked when the theory is built with
concrete values, so bad input fails with a :class:`ParameterError` naming the parameter and its range
before anything is traced or compiled; inside ``jit`` / ``vmap`` (traced values) nothing is checked.
"""

import abc
import dataclasses
import functools
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.flatten_util
from jax.experimental import checkify
import jax.numpy as jnp
import numpy as np


class ParameterError(ValueError):
    """A parameter outside its allowed range, or an unknown choice."""


@dataclasses.dataclass(frozen=True)
class Interval:
    """An interval of the real line, open or closed at each end.

    An infinite end is open (``(0, inf)`` holds every positive number, not ``inf``) unless
    ``infinite`` is set: then an infinite bound belongs to the interval, printed closed
    (``(0, inf]``), for a parameter whose infinite value is a limit the theory computes (the
    number of random features of the kernel limit). NaN belongs to no interval.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    infinite: bool = False

    def contains(self, value) -> np.ndarray:
        value = np.asarray(value, dtype=float)
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above & below & (np.isfinite(value) | self.infinite)

    def __str__(self) -> str:
        left = "(" if self.low_open or (math.isinf(self.low) and not self.infinite) else "["
        right = ")" if self.high_open or (math.isinf(self.high) and not self.infinite) else "]"
        return f"{left}{_fmt(self.low)}, {_fmt(self.high)}{right}"


def _fmt(x: float) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(x, f"{x:g}")


POSITIVE = Interval(0.0, low_open=True)
NONNEGATIVE = Interval(0.0)


def _as_array(value):
    """``jnp.asarray(value)``, or ``value`` itself where it is not numeric (rejected by the check,
    which knows the parameter's name)."""
    if isinstance(value, (str, bytes)):
        return value
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError):
        return value


def parameter(default: float, domain: Interval, doc: str, vector: bool = False):
    """A numeric field: converted to a JAX array, checked against ``domain`` when concrete. ``vector``:
    a number or a list of them (a comma-separated list on the command line), whatever the default."""
    metadata = {"domain": domain, "doc": doc, "vector": vector}
    return eqx.field(default=default, converter=_as_array, metadata=metadata)


def integer(default: int | None, domain: Interval, doc: str):
    """A static integer field (it fixes array shapes, such as a number of hidden units); a default
    of None makes it optional (None: the model infers the value, as its doc says)."""
    return eqx.field(
        default=default, static=True, metadata={"domain": domain, "doc": doc, "integer": True}
    )


def choice(default: str, options, doc: str, refused=None, sequence: bool = False):
    """A static field naming one of ``options`` (a mapping from names to kernels); ``refused`` maps
    names a user may expect but the model declines to the reason, given in the error. ``sequence``:
    one name or a tuple of names (comma-separated on the command line), each one checked."""
    metadata = {"options": options, "doc": doc, "refused": refused or {}, "sequence": sequence}
    return eqx.field(default=default, static=True, metadata=metadata, converter=_names if sequence else None)


def _names(value):
    """A comma-separated string or a list of names as a tuple of names; one name as it is."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",")) if "," in value else value
    return tuple(value) if isinstance(value, list) else value


def is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def check_in(name: str, value, domain: Interval, why: str = "") -> None:
    """Raise :class:`ParameterError` unless every element of a concrete ``value`` is in ``domain``."""
    if not is_concrete(value):
        return
    if not _real(value):
        raise ParameterError(
            f"parameter {name!r} must be a real number or an array of them, in {domain}{why}, got {value!r}"
        )
    ok = domain.contains(value)
    if not np.all(ok):
        bad = np.asarray(value, dtype=float)[~ok] if np.ndim(value) else value
        shown = float(np.ravel(bad)[0] if np.ndim(bad) else bad)
        what = " (not a number)" if math.isnan(shown) else ""
        raise ParameterError(
            f"parameter {name!r} must lie in {domain}{why}, got {shown:g}{what}"
        )


def check_integer(name: str, value, domain: Interval) -> None:
    """Raise :class:`ParameterError` unless ``value`` is an integer (not a boolean) in ``domain``:
    the check of :func:`integer` fields, and of static integers a model checks itself (quadrature
    orders that are not command-line parameters)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"parameter {name!r} must be an integer in {domain}, got {value!r}")
    check_in(name, value, domain)


def check_function(name: str, fn, fields: tuple[int, ...], value: tuple[int, ...], what: str) -> None:
    """Raise :class:`ParameterError` unless ``fn``, a user's function of an array, is callable, traces
    with JAX and, on a probe of shape ``fields`` (distinct values in ``[-1.5, 1.3]``), reads no entry
    past the array's ends and returns finite values of shape ``value``. ``jnp`` indexing clamps an
    out-of-range index (``z[..., 2]`` of two fields is ``z[..., 1]``), so the probe runs under
    :func:`jax.experimental.checkify.checkify`'s index checks, compiled on its own (also inside a
    trace) and once per function. ``what`` names the contract in the message."""
    if not callable(fn):
        raise ParameterError(f"parameter {name!r} must be a function of {what}, got {fn!r}")
    try:
        problem = _function_problem(fn, fields, value)
    except TypeError:  # an unhashable callable: not cached
        problem = _function_problem.__wrapped__(fn, fields, value)
    if problem:
        raise ParameterError(f"parameter {name!r} must be a function of {what}: {problem}")


@functools.lru_cache(maxsize=64)
def _function_problem(fn, fields: tuple[int, ...], value: tuple[int, ...]) -> str | None:
    """What :func:`check_function` finds wrong with ``fn`` on its probe, or ``None``."""
    probe = np.linspace(-1.5, 1.3, math.prod(fields)).reshape(fields)
    with jax.ensure_compile_time_eval():
        try:
            error, out = jax.jit(checkify.checkify(fn, errors=checkify.index_checks))(jnp.asarray(probe))
        except Exception as e:  # any failure of the user's function is reported
            lines = str(e).splitlines()
            return f"it fails on fields of shape {fields}: {type(e).__name__}: {lines[0] if lines else ''}"
        message = error.get()
        if message is not None:
            return f"it reads past the fields: {message.splitlines()[0].strip()}"
        if np.shape(out) != value:
            return f"on fields of shape {fields} it returns shape {np.shape(out)}, not {value}"
        if not np.all(np.isfinite(np.asarray(out, float))):
            return f"on fields of shape {fields} (values in [-1.5, 1.3]) it returns non-finite values"
    return None


def _real(value) -> bool:
    """Whether ``value`` is real numbers (a boolean, integer or floating scalar or array)."""
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except (TypeError, ValueError):
        return False


def parameters(theory_type) -> dict[str, dataclasses.Field]:
    """The declared parameters (numeric and choices) of a theory class, in field order."""
    return {
        f.name: f
        for f in dataclasses.fields(theory_type)
        if "domain" in f.metadata or "options" in f.metadata
    }


class Theory(eqx.Module):
    """Base of every theory: checks declared parameters at construction.

    The declared parameters are checked before a subclass's own ``__check_init__`` runs (equinox
    runs those from the most derived class up), so that its cross-parameter checks see values of
    the right kind, and a string given for a number fails naming the parameter.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__check_init__")
        if own is not None and not getattr(own, "_after_declared", False):

            @functools.wraps(own)
            def check(self):
                _check_declared(self)
                own(self)

            check._after_declared = True
            cls.__check_init__ = check

    def __check_init__(self):
        _check_declared(self)


def _check_declared(self) -> None:
    """Check every declared parameter of a theory against its choices or its domain."""
    for name, field in parameters(type(self)).items():
        value = getattr(self, name)
        if "options" in field.metadata:
            options = field.metadata["options"]
            for one in value if field.metadata.get("sequence") and isinstance(value, tuple) else (value,):
                if one in field.metadata.get("refused", {}):
                    raise ParameterError(f"parameter {name!r} must not be {one!r}: {field.metadata['refused'][one]}")
                if one not in options:
                    raise ParameterError(
                        f"parameter {name!r} must be one of {', '.join(options)}, got {one!r}"
                    )
        elif field.metadata.get("integer"):
            if value is not None or field.default is not None:
                check_integer(name, value, field.metadata["domain"])
        else:
            check_in(name, value, field.metadata["domain"])


class FixedPointTheory(Theory):
    """A theory whose result is a fixed point ``state = update(state)``.

    Subclasses provide ``init``, ``update`` (the undamped map) and ``observables``; everything else
    (:func:`hdtheory.solve`, sweeps, tuning) is generic over these three methods.
    """

    monotone: ClassVar[bool] = False
    """Whether ``update`` is monotone and its iteration from ``init("uninformed")`` is the algorithm
    whose fixed point is the result (Bayes-optimal state evolution). :func:`hdtheory.solve` then
    steers Newton's method away from repelling fixed points (``Newton(follow_flow=True)``)."""

    observable_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Names of the axes of array-valued observables (one value per direction: ``("direction",)``),
    which :func:`hdtheory.sweep` gives them, so that observables along the same axis share it; an
    observable not named here gets ``name_0``, ``name_1``, ..."""

    @abc.abstractmethod
    def init(self, kind: str = "uninformed") -> Any:
        """An initial state: ``"uninformed"`` or ``"informed"``."""

    @abc.abstractmethod
    def update(self, state) -> Any:
        """The fixed-point map, without damping."""

    @abc.abstractmethod
    def observables(self, state) -> dict[str, jax.Array]:
        """Named scalar observables at a state."""

    def unconstrain(self, state) -> Any:
        """Coordinates in which the solver works; the default is the state itself.

        A theory whose state is constrained (a variance > 0, an overlap bounded by a norm) maps it to
        unconstrained coordinates here, so that no solver step can leave the domain.
        """
        return state

    def constrain(self, coordinates) -> Any:
        """The inverse of :meth:`unconstrain`."""
        return coordinates

    def accurate(self, state, observables) -> Any:
        """Whether the theory's own estimate of its numerical error at ``state`` (a quadrature rule's,
        reported among ``observables``) is within its tolerance; where it is not, :func:`hdtheory.solve`
        reports the fixed point ``Status.INACCURATE``, not converged. True by default."""
        return True

    def equivalent(self) -> "FixedPointTheory":
        """The theory that :func:`hdtheory.solve` iterates in this one's place, built once per solve:
        ``self`` by default. A theory whose map is another theory's, built from its parameters (a
        model solved as its equivalent GCM, whose spectrum takes a matrix decomposition), returns
        that one, with the same states, observables and error estimate, so that the map evaluated
        at each iteration does not build it again."""
        return self


class ODETheory(Theory):
    """A theory whose result is the solution of ``d state / dt = vector_field(t, state)``.

    Subclasses provide ``init`` (the state at ``t = 0``), ``vector_field`` and ``observables``;
    :func:`hdtheory.integrate` is generic over these three methods; its adaptive steps shrink about
    the jumps of a piecewise-constant learning rate as its error control requires.
    """

    @abc.abstractmethod
    def init(self) -> Any:
        """The state at ``t = 0``."""

    @abc.abstractmethod
    def vector_field(self, t, state) -> Any:
        """The time derivative of the state, a pytree like the state."""

    @abc.abstractmethod
    def observables(self, t, state) -> dict[str, jax.Array]:
        """Named observables at time ``t`` (scalars or small arrays such as overlap matrices)."""

    def coordinates(self, state) -> jax.Array:
        """The state's independent entries, a flat array, for :func:`hdtheory.steady_state`.

        By default every entry; a theory whose state holds redundant entries (both triangles of a
        symmetric matrix) keeps one copy, so that the Jacobian of the vector field in these
        coordinates is not singular by construction.
        """
        return jax.flatten_util.ravel_pytree(state)[0]

    def from_coordinates(self, u: jax.Array, like) -> Any:
        """The state whose :meth:`coordinates` are ``u``, with the other entries taken from ``like``."""
        return jax.flatten_util.ravel_pytree(like)[1](u)

    def stationary_field(self, t, state, start) -> Any:
        """The field whose zeros are the steady states (:func:`hdtheory.steady_state`):
        :meth:`vector_field`, except for entries that do not move under the theory's settings (a
        layer at learning rate 0), which a theory pulls back to their value in ``start``, so that
        they are determined rather than free."""
        del start
        return self.vector_field(t, state)
