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

**Consistent attacks** (Vilucchio, Zdeborová & Loureiro 2025, "On the existence of consistent
adversarial attacks in high-dimensional linear classification", arXiv:2506.12454): an attack is
consistent if it leaves the teacher's noiseless label ``sign(z)`` unchanged. With ``v = z / sqrt(rho)``
and ``u`` standard normals of correlation ``c = m / sqrt(rho q)``, ``a = |v|`` and ``b = sign(v) u``,
the l2 attacker of budget ``t`` who must keep ``sign(v)`` minimises ``b`` over the disc of radius
``t`` cut by the teacher's half-plane ``a + delta_v >= 0``: unconstrained (``b - t``) where
``a >= t c``, else on the teacher's boundary, ``b - c a - sqrt(1 - c^2) sqrt(t^2 - a^2)``. Against
the unconstrained attack, the consistent one misses exactly the points with
``c a + sqrt(1 - c^2) sqrt(t^2 - a^2) < b <= t`` and ``a < t c``, whose probability is

.. math:: 2 \int_0^{t c_+} \phi(v)\, \Big[\Phi\Big(\frac{t - c v}{\sqrt{1 - c^2}}\Big)
    - \Phi\big(\sqrt{t^2 - v^2}\big)\Big]\, dv

(:func:`inconsistent_error`; the inner integral over ``u`` given ``v`` in closed form): the noiseless
robust error minus it is the consistent robust error. The integrand moves on the scale
``t (1 - c^2)`` below ``t c``, narrow for a student aligned with the teacher: Gauss-Legendre panels
with edges at one and eight times that scale below ``t c``.
"""

import jax.numpy as jnp
from jax.scipy.special import ndtr

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


def inconsistent_error(cosine, budget, order: int = 24):
    r"""The part of the noiseless robust error that only attacks changing the teacher's label cause:
    the probability that an l2 attack of ``budget`` (in units of ``|w|_2 / sqrt(d)``) makes the
    student disagree with ``sign(z)`` while every attack that keeps ``sign(z)`` fails (module
    docstring). ``cosine = m / sqrt(rho q)`` in ``(-1, 1)``; zero for ``cosine <= 0``.
    """
    c, t = jnp.broadcast_arrays(*(jnp.asarray(x, jnp.result_type(cosine, budget, float)) for x in (cosine, budget)))
    s2 = jnp.maximum(1 - c**2, jnp.finfo(c.dtype).tiny)
    top = t * jnp.maximum(c, 0)
    edges = [jnp.maximum(top - k * t * s2, 0) for k in _EDGES]
    v, w = legendre_panels(jnp.stack([jnp.zeros_like(top), *edges, top], axis=-1), order)
    c, t, s2 = c[..., None], t[..., None], s2[..., None]
    attacked = ndtr((t - c * v) / jnp.sqrt(s2))
    consistent = ndtr(jnp.sqrt(jnp.maximum(t**2 - v**2, 0)))
    density = jnp.exp(-0.5 * v**2) / jnp.sqrt(2 * jnp.pi)
    return 2 * jnp.sum(w * density * (attacked - consistent), axis=-1)
