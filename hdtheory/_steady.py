r"""Steady states of ODE theories: :func:`steady_state`.

A plateau of online SGD, the asymptotic error of a run at a constant learning rate and a stationary
point of a population gradient flow are zeros of the ODE theory's vector field,
``f(t, x) = 0``. Rather than a long integration that approaches them, :func:`steady_state` finds one
with :func:`hdtheory.solve` (Newton's method with its line search and damped fallback): the ODE
theory is wrapped as the fixed-point theory :class:`Stationary` with the map ``T(x) = x + f(t, x)``,
whose fixed points are the zeros of ``f``, in the ODE theory's independent coordinates
(:meth:`~hdtheory.ODETheory.coordinates`; one triangle of a symmetric matrix). Which zero is found
depends on the start: a symmetric start finds the symmetric plateau of a committee machine, a start
near the teacher its perfect-learning point.

Stability is an observable: ``growth_rate``, the largest real part of the eigenvalues of the
Jacobian ``df/dx`` at the zero (in those coordinates), negative at an attracting steady state and
positive at a saddle such as a plateau, whose escape it sets (``1 / growth_rate`` is the escape's
time scale); ``stable`` is its sign. Derivatives of the steady state (and of its observables) with
respect to the theory's fields come from the implicit function theorem, as for every fixed point.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._fixed_point import Solution, solve
from ._theory import FixedPointTheory, ODETheory, ParameterError, is_concrete


@jax.custom_jvp
def largest_real_part(matrix: jax.Array) -> jax.Array:
    """``max Re lambda`` over the eigenvalues of a real square ``matrix``.

    Its derivative is that of the eigenvalue ``lambda_i`` attaining it,
    ``d lambda_i = u_i^H dA v_i / u_i^H v_i`` (``u_i``, ``v_i`` its left and right eigenvectors),
    linear in ``dA``, so that reverse mode needs no derivative of the eigenvectors themselves;
    a complex pair shares its real part and its derivative.
    """
    return jnp.max(jnp.real(jnp.linalg.eigvals(matrix)))


@largest_real_part.defjvp
def _largest_real_part_jvp(primals, tangents):
    (matrix,), (dmatrix,) = primals, tangents
    w, left, right = jax.lax.linalg.eig(matrix, compute_left_eigenvectors=True)
    i = jnp.argmax(jnp.real(w))
    u, v = left[:, i], right[:, i]
    dlam = (jnp.conj(u) @ dmatrix.astype(w.dtype) @ v) / (jnp.conj(u) @ v)
    return jnp.max(jnp.real(w)), jnp.real(dlam)


class Stationary(FixedPointTheory):
    """The zeros of an ODE theory's vector field as the fixed points of ``T(x) = x + f(t, x)``."""

    theory: ODETheory
    start: Any
    """The solver's start, a state of ``theory``; also the value of the entries that do not move."""
    t: jax.Array
    """The time at which the vector field is taken (it matters only under a schedule)."""

    def init(self, kind: str = "uninformed"):
        del kind
        return self.start

    def at(self, axis: str, value) -> "Stationary":
        """The same steady-state problem with the ODE theory's field ``axis`` set to ``value``."""
        return eqx.tree_at(lambda s: getattr(s.theory, axis), self, value)

    def unconstrain(self, state) -> jax.Array:
        return self.theory.coordinates(state)

    def constrain(self, u: jax.Array):
        return self.theory.from_coordinates(u, self.start)

    def field(self, state):
        return self.theory.stationary_field(self.t, state, self.start)

    def update(self, state):
        return jax.tree.map(jnp.add, state, self.field(state))

    def growth_rate(self, state) -> jax.Array:
        """The largest real part of the eigenvalues of ``df/dx`` in the theory's coordinates."""
        def flow(u):
            x = self.constrain(u)
            # The field as a change of coordinates: d(coordinates)/dx . f (coordinates may be nonlinear).
            return jax.jvp(self.theory.coordinates, (x,), (self.field(x),))[1]

        return largest_real_part(jax.jacfwd(flow)(self.unconstrain(state)))

    def observables(self, state) -> dict[str, jax.Array]:
        rate = self.growth_rate(state)
        return self.theory.observables(self.t, state) | {"growth_rate": rate, "stable": rate < 0}


def steady_state(theory: ODETheory, start=None, *, t=0.0, **solve_options) -> Solution:
    """A zero of ``theory``'s vector field, found from ``start``; see the module docstring.

    Args:
        theory: an :class:`~hdtheory.ODETheory`.
        start: a state of ``theory`` to start from; ``theory.init()`` by default.
        t: the time at which the vector field is taken (the learning rate of a schedule at ``t``).
        **solve_options: passed to :func:`hdtheory.solve` (``method``, ``tol``, ``max_steps``,
            ``max_norm``).

    Returns:
        A :class:`~hdtheory.Solution`: the steady state, its observables (the theory's at time
        ``t``, and ``growth_rate`` and ``stable``), ``converged`` and the solver's diagnostics.
        Differentiable with respect to the theory's fields; ``jit`` and ``vmap`` compose with it.
    """
    if not isinstance(theory, ODETheory):
        raise ParameterError(f"steady_state needs an ODETheory, got {type(theory).__name__}")
    if is_concrete(t) and not (np.ndim(t) == 0 and np.isfinite(t) and t >= 0):
        raise ParameterError(f"t must be a finite time >= 0, got {t!r}")
    return solve(stationary(theory, start, t), **solve_options)


def stationary(theory: ODETheory, start=None, t=0.0) -> Stationary:
    """The :class:`Stationary` problem of ``theory`` from ``start`` (``theory.init()`` by default) at ``t``."""
    start = theory.init() if start is None else start
    return Stationary(theory, start, jnp.asarray(t, jnp.result_type(*jax.tree.leaves(start))))

