r"""Losses ``l(y, z)`` of a label ``y`` and a pre-activation ``z``, with their proximal operators.

The proximal operator with step ``V > 0`` is

.. math:: \mathrm{prox}_{V l(y, \cdot)}(\omega) = \arg\min_z \; \frac{(z - \omega)^2}{2V} + l(y, z),

the unique root of ``z - omega + V dl/dz(y, z) = 0`` for a convex loss. It is in closed form for the
square, hinge and Huber losses; for the logistic loss it is a safeguarded Newton solve whose derivative
comes from the implicit function theorem (a ``custom_jvp``), never from the iterations.

``prox_derivatives`` returns the operator with its derivatives in the input ``omega`` and the step
``V``; every method is differentiable to any order in ``y``, ``omega``, ``V`` and the loss's fields.

Conventions (``CONVENTIONS.md``): square ``(y - z)^2 / 2``; logistic ``log(1 + exp(-y z))``; hinge
``max(0, 1 - y z)``; Huber on the residual ``r = y - z`` with threshold ``delta``: ``r^2 / 2`` for
``|r| <= delta`` and ``delta |r| - delta^2 / 2`` beyond.
"""

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp


class Loss(eqx.Module):
    """A convex loss with its proximal operator."""

    @abc.abstractmethod
    def __call__(self, y, z):
        """The loss ``l(y, z)``, elementwise."""

    @abc.abstractmethod
    def prox(self, y, omega, V):
        """``argmin_z (z - omega)^2 / (2 V) + l(y, z)``, elementwise."""

    def prox_derivatives(self, y, omega, V):
        """``(prox, d prox / d omega, d prox / d V)``, elementwise.

        One primal evaluation; the two derivatives are forward-mode tangents batched together.
        """
        omega, V = jnp.broadcast_arrays(omega, V)
        one, zero = jnp.ones_like(omega), jnp.zeros_like(omega)
        tangents = (jnp.stack([one, zero]), jnp.stack([zero, one]))
        z, dz = jax.vmap(
            lambda t_omega, t_V: jax.jvp(lambda o, v: self.prox(y, o, v), (omega, V), (t_omega, t_V)),
            out_axes=(None, 0),
        )(*tangents)
        return z, dz[0], dz[1]


class Square(Loss):
    r"""``l(y, z) = (y - z)^2 / 2``; ``prox = (omega + V y) / (1 + V)``."""

    def __call__(self, y, z):
        return 0.5 * (y - z) ** 2

    def prox(self, y, omega, V):
        return (omega + V * y) / (1 + V)


class Hinge(Loss):
    r"""``l(y, z) = max(0, 1 - y z)`` for ``y = +-1``.

    With ``u = y omega``: ``prox = omega`` if ``u >= 1``; ``omega + V y`` if ``u <= 1 - V``; else
    ``y`` (the margin is met exactly).
    """

    def __call__(self, y, z):
        return jnp.maximum(0.0, 1.0 - y * z)

    def prox(self, y, omega, V):
        u = y * omega
        return jnp.where(u >= 1.0, omega, jnp.where(u <= 1.0 - V, omega + V * y, y + 0.0 * omega))


class Huber(Loss):
    r"""Huber loss on ``r = y - z`` with threshold ``delta``.

    ``prox = (omega + V y) / (1 + V)`` if ``|y - omega| <= delta (1 + V)``, else
    ``omega + V delta sign(y - omega)``.
    """

    delta: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)

    def __call__(self, y, z):
        r = jnp.abs(y - z)
        return jnp.where(r <= self.delta, 0.5 * r**2, self.delta * r - 0.5 * self.delta**2)

    def prox(self, y, omega, V):
        r = y - omega
        inner = (omega + V * y) / (1 + V)
        outer = omega + V * self.delta * jnp.sign(r)
        return jnp.where(jnp.abs(r) <= self.delta * (1 + V), inner, outer)


class Logistic(Loss):
    r"""``l(y, z) = log(1 + exp(-y z))``; prox by safeguarded Newton, implicit derivative.

    The root of ``z - omega - V y sigmoid(-y z) = 0`` lies between ``omega`` and ``omega + V y``.
    """

    def __call__(self, y, z):
        return jnp.logaddexp(0.0, -y * z)

    def prox(self, y, omega, V):
        y, omega, V = jnp.broadcast_arrays(y, omega, V)
        return _logistic_prox(y, omega, V)


def _logistic_residual(z, y, omega, V):
    return z - omega - V * y * jax.nn.sigmoid(-y * z)


_NEWTON_STEPS = 100


@jax.custom_jvp
def _logistic_prox(y, omega, V):
    # Newton's method safeguarded by bisection on a shrinking bracket (the rule of "rtsafe"):
    # bisect whenever the Newton point leaves the bracket or would not halve the previous step.
    dtype = jnp.result_type(omega)
    tol = 4 * jnp.finfo(dtype).eps
    lo = jnp.minimum(omega, omega + V * y)
    hi = jnp.maximum(omega, omega + V * y)

    def step(carry):
        z, lo, hi, dz_old, _, i = carry
        s = jax.nn.sigmoid(y * z)
        f = z - omega - V * y * (1 - s)
        fprime = 1 + V * s * (1 - s)
        lo = jnp.where(f < 0, z, lo)
        hi = jnp.where(f > 0, z, hi)
        newton = z - f / fprime
        use_newton = (newton > lo) & (newton < hi) & (2 * jnp.abs(f) <= jnp.abs(dz_old * fprime))
        z_new = jnp.where(use_newton, newton, 0.5 * (lo + hi))
        dz = z_new - z
        err = jnp.max(jnp.abs(dz) / (1 + jnp.abs(z)))
        return z_new, lo, hi, dz, err, i + 1

    def cond(carry):
        *_, err, i = carry
        return (err > tol) & (i < _NEWTON_STEPS)

    z0 = omega + V * y * jax.nn.sigmoid(-y * omega)
    init = (z0, lo, hi, hi - lo, jnp.asarray(jnp.inf, dtype), 0)
    z, *_ = jax.lax.while_loop(cond, step, init)
    return z


@_logistic_prox.defjvp
def _logistic_prox_jvp(primals, tangents):
    y, omega, V = primals
    z = _logistic_prox(y, omega, V)
    # Implicit function theorem on F(z; y, omega, V) = 0: dz = -(dF/dtheta . dtheta) / (dF/dz).
    _, dF = jax.jvp(functools.partial(_logistic_residual, z), primals, tangents)
    s = jax.nn.sigmoid(y * z)
    return z, -dF / (1 + V * s * (1 - s))


LOSSES: dict[str, type[Loss]] = {
    "square": Square,
    "logistic": Logistic,
    "hinge": Hinge,
    "huber": Huber,
}
