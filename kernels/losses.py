r"""Losses ``l(y, z)`` of a label ``y`` and a pre-activation ``z``, with their proximal operators.

The proximal operator with step ``V > 0`` is

.. math:: \mathrm{prox}_{V l(y, \cdot)}(\omega) = \arg\min_z \; \frac{(z - \omega)^2}{2V} + l(y, z),

the unique root of ``z - omega + V dl/dz(y, z) = 0`` for a convex loss. It is in closed form for the
square, hinge and Huber losses; for the logistic loss it is a monotone Newton solve whose derivative
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

    def breakpoints(self, y, V) -> tuple:
        """Inputs ``omega`` where the prox has a kink or a transition of width O(1), besides 0.

        Quadratures over ``omega`` put panel edges there (and at 0, where the classification
        channels have theirs); none for a prox that is smooth on the scale of its input.
        """
        del y, V
        return ()

    def gaussian_residual_averages(self, s2, V):
        """``(E f'(r), E f(r)^2, E l(y, prox))`` over a Gaussian residual ``r = y - omega ~ N(0, s2)``,
        in closed form, for a loss of the residual alone, whose ``f = (prox - omega) / V`` is a
        function of ``r``; ``None`` for the others. With a linear teacher (``y = z + noise``,
        Gaussian) these are the channel integrals of ERM in closed form."""
        del s2, V
        return None

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

    def breakpoints(self, y, V):
        return (y * (1.0 - V), y + 0.0 * V)


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

    def breakpoints(self, y, V):
        return (y - self.delta * (1 + V), y + self.delta * (1 + V))

    def gaussian_residual_averages(self, s2, V):
        r"""Truncated Gaussian moments: ``f = clip(r / (1 + V), -delta, delta)``.

        With ``c = delta (1 + V)``, ``s = sqrt(s2)``, ``t = c / s``, ``P = P(|r| <= c) = erf(t / sqrt 2)``
        and ``phi`` the standard normal density: ``E f' = P / (1 + V)``,
        ``E f^2 = s2 (P - 2 t phi(t)) / (1 + V)^2 + delta^2 (1 - P)``; outside ``|y - prox| = |r| - V delta``
        (at least ``delta``), so that ``E l = s2 (P - 2 t phi(t)) / (2 (1 + V)^2)
        + delta (2 s phi(t) - (V + 1/2) delta (1 - P))``.
        """
        delta, s = self.delta, jnp.sqrt(s2)
        t = delta * (1 + V) / s
        inside = jax.scipy.special.erf(t / jnp.sqrt(2.0))
        outside = jax.scipy.special.erfc(t / jnp.sqrt(2.0))
        density = jnp.exp(-0.5 * t**2) / jnp.sqrt(2 * jnp.pi)
        core = s2 * (inside - 2 * t * density) / (1 + V) ** 2
        loss = 0.5 * core + delta * (2 * s * density - (V + 0.5) * delta * outside)
        return inside / (1 + V), core + delta**2 * outside, loss


class Logistic(Loss):
    r"""``l(y, z) = log(1 + exp(-y z))``; prox by Newton's method, implicit derivative.

    The prox is the root of ``z - omega - V y sigmoid(-y z) = 0``, which lies between ``omega`` and
    ``omega + V y``; Newton's method on the margin ``y z`` from a start chosen by the sign of the
    equation at zero converges monotonically (see ``_logistic_prox``).
    """

    def __call__(self, y, z):
        return jnp.logaddexp(0.0, -y * z)

    def prox(self, y, omega, V):
        y, omega, V = jnp.broadcast_arrays(y, omega, V)
        return _logistic_prox(y, omega, V)

    def breakpoints(self, y, V):
        # The prox moves from z ~ omega + V y to z ~ omega over y omega in [-V, 0], with transitions
        # of width O(1) at both ends; the one at omega = 0 is the common edge.
        return (-y * V,)


def _logistic_residual(z, y, omega, V):
    return z - omega - V * y * jax.nn.sigmoid(-y * z)


_NEWTON_STEPS = 50


@jax.custom_jvp
def _logistic_prox(y, omega, V):
    # Newton's method on the margin u = y z: g(u) = u - y omega - V sigmoid(-u) = 0. g is increasing,
    # concave for u > 0 and convex for u < 0, and the root lies in [y omega, y omega + V]. Starting
    # at the end of that range on the root's side of 0 (the sign of g(0) tells which), the iterates
    # approach the root monotonically: no safeguard is needed, and 15 steps reach rounding error for
    # V up to 1e6 in either precision. The stopping test is on g, scaled by the size of its terms.
    dtype = jnp.result_type(omega)
    eps = jnp.finfo(dtype).eps
    a = y * omega
    root_positive = a + V / 2 > 0
    u0 = jnp.where(root_positive, jnp.maximum(a, 0), jnp.minimum(a + V, 0))

    def residual(u):
        s = jax.nn.sigmoid(-u)
        return u - a - V * s, s

    def cond(carry):
        u, i = carry
        g, s = residual(u)
        return jnp.any(jnp.abs(g) > 8 * eps * (1 + jnp.abs(a) + V * s + jnp.abs(u))) & (i < _NEWTON_STEPS)

    def step(carry):
        u, i = carry
        g, s = residual(u)
        return u - g / (1 + V * s * (1 - s)), i + 1

    u, _ = jax.lax.while_loop(cond, step, (u0, 0))
    return y * u


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
