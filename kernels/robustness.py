r"""The error of a linear classifier under a worst-case perturbation of its input.

A classifier ``sign(w.x / sqrt(d))`` on ``x ~ N(0, I_d)``, with ``|w|^2 / d = q`` and teacher overlap
``m = w*.x / d``, facing an attacker who moves ``x`` by ``delta`` with ``|delta|_2 <= eps``, errs
when the margin ``y w.x / sqrt(d)`` is below ``eps |w|_2 / sqrt(d) = eps sqrt(q)``: with
``u = w.x / sqrt(d q) ~ N(0, 1)``, the robust error at budget ``t = eps`` is ``P(y u < t)``. The
teacher's field given ``u`` is ``N(m u / sqrt(q), rho - m^2 / q)``, so that
``P(y = +1 | u) = Z(+1, m u / sqrt(q), rho - m^2 / q)`` with ``Z`` the channel's partition
function (:mod:`hdtheory.kernels.channels`), and by the symmetry ``P(y = -1 | u) = P(y = +1 | -u)``
of the binary channels the robust error is the clean one plus the boundary error

.. math:: P(0 \le y u < t) = 2 \int_0^t P(y = +1 \mid u)\, \phi(u)\, du ,

the probability that a correctly classified point lies within the budget of the decision boundary.
The integrand is smooth on ``[0, t]`` and moves on the scale ``s sqrt(q) / |m|`` of the teacher's
transition (``s`` the channel's :meth:`~hdtheory.kernels.Channel.transition_width`), narrow as the
student aligns with the teacher: Gauss-Legendre panels with edges at 0, at one and eight times that
width (capped at ``t``) and at ``t`` converge exponentially in the order, and are differentiable in
``t``, ``m``, ``q``.
"""

import jax.numpy as jnp

from .channels import Channel
from .quadrature import legendre_panels

_EDGES = (1.0, 8.0)
"""Multiples of the teacher's transition width (in ``u``) at which the panels have edges."""


def boundary_error(channel: Channel, m, q, rho, budget, order: int = 24):
    r"""``P(0 <= y u < budget)``: the robust error at ``budget`` minus the clean error (module docstring).

    ``channel`` is a binary (``y = +-1``) channel symmetric under ``(y, z) -> (-y, -z)``; ``m``, ``q``,
    ``rho`` the overlaps; ``budget >= 0`` the attacker's ``eps`` in units of ``|w|_2 / sqrt(d)``.
    """
    dtype = jnp.result_type(m, q, rho, budget, float)
    sqrt_q = jnp.sqrt(q)
    V0 = jnp.maximum(rho - m**2 / q, jnp.finfo(dtype).tiny)
    width = channel.transition_width(V0) * sqrt_q
    # c width / |m|, capped at the budget, written without dividing by a vanishing m.
    edges = []
    for c in _EDGES:
        inside = c * width < budget * jnp.abs(m)
        edges.append(jnp.where(inside, c * width / jnp.where(inside, jnp.abs(m), 1.0), budget))
    zero = jnp.zeros_like(budget * m)
    u, w = legendre_panels(jnp.stack(jnp.broadcast_arrays(zero, *edges, budget + zero), axis=-1), order)
    density = jnp.exp(-0.5 * u**2) / jnp.sqrt(2 * jnp.pi)
    slope = (m / sqrt_q)[..., None]
    return 2 * jnp.sum(w * density * channel.partition(1.0, slope * u, V0[..., None]), axis=-1)
