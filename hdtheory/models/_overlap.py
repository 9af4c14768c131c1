r"""The state shared by the Bayes-optimal state evolutions: overlaps in ``[0, rho]``.

A Bayes-optimal theory whose state is an overlap ``q`` (or a vector of overlaps, one per factor)
with ``0 <= q <= rho``, ``rho`` the prior's second moment, derives from :class:`Overlaps` and
provides ``_rho``, the upper bound of each entry.

**Initialisations.** ``init("informed")`` is the signal, ``q = rho``; ``init("uninformed")`` is
``q = UNINFORMED * rho`` (``1e-6 rho`` in float64), an infinitesimal positive overlap, the standard start of state evolution
(AMP's random start): ``q = 0`` exactly is a fixed point of every zero-mean symmetric model, stable
below weak recovery and repelling above it, and the small overlap lets iteration leave it.
:func:`hdtheory.solve` follows that iteration's flow (the models are :attr:`monotone`), so that
Newton's method does not return to the repelling point either, and calls a point converged only if
it attracts the iteration (just past weak recovery the start's residual is already below the
tolerance).

**Coordinates.** The solver works on ``u = log(rho - q)``, the log of the MMSE, floored at
``log(rho eps)`` (``eps`` the machine epsilon): ``q = 0`` is at ``u = log rho`` (beyond it the map
is NaN, so that no solver step is accepted there); perfect recovery ``q = rho`` is the floor, which
the solver reaches exactly; and Newton's method is well behaved near perfect recovery, where
``q -> T(q)`` is steep but bounded away from ``rho``.
"""

import abc

import jax
import jax.numpy as jnp

from .._theory import FixedPointTheory

UNINFORMED = {64: 1e-6, 32: 1e-3}
"""The uninformed state ``q = UNINFORMED[bits] * rho`` in float64 and float32: well above the
solver's tolerance (1e-10, 1e-5), so that the iteration's first step from it is seen (a smaller
overlap would pass for a fixed point); see the module docstring."""


class Overlaps(FixedPointTheory):
    """Base of the Bayes-optimal theories whose state is ``q`` in ``[0, rho]``; see the module
    docstring."""

    monotone = True

    @property
    @abc.abstractmethod
    def _rho(self) -> jax.Array:
        """The upper bound of the state, entry by entry."""

    def _dtype(self):
        """The parameters' dtype; empty arrays (array parameters left unset) take no part."""
        leaves = jax.tree.leaves(self)
        return jnp.result_type(*(x for x in leaves if isinstance(x, jax.Array) and x.size), float)

    def init(self, kind: str = "uninformed") -> jax.Array:
        dtype = self._dtype()
        fraction = {"uninformed": UNINFORMED[jnp.finfo(dtype).bits], "informed": 1.0}[kind]
        return (fraction * self._rho).astype(dtype)

    def _floor(self, q):
        return self._rho * jnp.finfo(jnp.result_type(q)).eps

    def unconstrain(self, q) -> jax.Array:
        """``log(rho - q)``, the log of the MMSE, floored at ``log(rho eps)`` (perfect recovery)."""
        return jnp.log(jnp.maximum(self._rho - q, self._floor(q)))

    def constrain(self, u) -> jax.Array:
        return self._rho - jnp.exp(u)

    def _checked(self, q, rho=None):
        """``q`` within rounding of ``[0, rho]`` (``rho`` the state's bounds by default) moved into it
        (with the derivative of the identity); NaN outside."""
        rho = self._rho if rho is None else rho
        slack = 1e-8 * rho
        inside = (q >= -slack) & (q <= rho + slack)
        return jnp.where(inside, q + jax.lax.stop_gradient(jnp.clip(q, 0.0, rho) - q), jnp.nan)
