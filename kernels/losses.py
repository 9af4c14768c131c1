r"""Losses ``l(y, z)`` of a label ``y`` and a pre-activation ``z``, with their proximal operators.

The proximal operator with step ``V > 0`` is

.. math:: \mathrm{prox}_{V l(y, \cdot)}(\omega) = \arg\min_z \; \frac{(z - \omega)^2}{2V} + l(y, z),

the unique root of ``z - omega + V dl/dz(y, z) = 0`` for a convex loss. It is in closed form for the
square, absolute, hinge and Huber losses; for the logistic loss it is a monotone Newton solve whose derivative
comes from the implicit function theorem (a ``custom_jvp``), never from the iterations.

``prox_derivatives`` returns the operator with its derivatives in the input ``omega`` and the step
``V``; every method is differentiable to any order in ``y``, ``omega``, ``V`` and the loss's fields.

Conventions (``CONVENTIONS.md``): square ``(y - z)^2 / 2``; logistic ``log(1 + exp(-y z))``; hinge
``max(0, 1 - y z)``; Huber on the residual ``r = y - z`` with threshold ``delta``: ``r^2 / 2`` for
``|r| <= delta`` and ``delta |r| - delta^2 / 2`` beyond.

**Non-convex losses of the residual** (:class:`Tukey`, :class:`Cauchy`; robust regression):
``l(y, z) = rho(r)``, ``r = y - z``, ``rho`` even, with a scale ``c``. The prox objective in the new
residual ``s = y - z`` is ``h(s) = (r - s)^2 / (2 V) + rho(s)`` with ``r = y - omega``; its stationary
points are the roots of ``g(s) = s + V rho'(s) - r``. For large steps ``V`` (``V > 5/4`` for
Tukey, ``V > 8`` for Cauchy, since ``rho''`` reaches ``-0.8`` and ``-1/8``, whatever ``c``) ``g`` is not
monotone and ``h`` has two local minima over a range of ``r``: the proximal operator is then
multi-valued, and the replica-symmetric fixed point takes the **global** minimiser. It is found
without a search over starts: for ``r >= 0`` (``rho`` is even) the minimiser lies in ``[0, r]``,
``g`` increases on ``[0, a_1]``, decreases on ``[a_1, a_2]`` and increases beyond ``a_2``, with the
turning points ``a_1 <= a_2`` (roots of ``1 + V rho''(s) = 0``) in closed form; a minimum of ``h`` is a
root of ``g`` on an increasing stretch, so the two candidates are the roots on ``[0, min(a_1, r)]``
and ``[min(a_2, r), r]`` (bisection, each the stretch's end if ``g`` has no root there), and the prox
is the candidate of least ``h`` (vectorised: every input computes both). The global minimiser jumps
at ``r = +- r_J`` (:meth:`RobustLoss.jump`: both minima of ``h`` equal, Maxwell's rule, found by
bisection over ``r`` between the spinodals ``g(a_2)`` and ``g(a_1)``), where ``h``'s two minima cross.
Derivatives of the prox and of ``r_J`` are implicit (``custom_jvp``): ``ds = -dg / (1 + V rho''(s))``
at fixed ``s``, and for ``r_J`` the envelope theorem on the difference of the two minima.
"""

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from .quadrature import panel_rule


class Loss(eqx.Module):
    """A loss with its proximal operator (the global minimiser for a non-convex one)."""

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

    def clip_output(self, y, V):
        """``(k, lo, hi)`` for a loss whose output function is a clipped line,
        ``f = (prox_{V l(y, .)}(omega) - omega) / V = clip((y - omega) / k, lo, hi)`` (hinge, Huber,
        absolute: piecewise linear, kinked at :meth:`breakpoints`), so that its Gaussian averages
        are truncated Gaussian moments; ``None`` for the others."""
        del y, V
        return None

    def gaussian_residual_averages(self, s2, V):
        """``(E f'(r), E f(r)^2, E l(y, prox))`` over a Gaussian residual ``r = y - omega ~ N(0, s2)``,
        in closed form, for a loss of the residual alone, whose ``f = (prox - omega) / V`` is a
        function of ``r``; ``None`` for the others. With a linear teacher (``y = z + noise``,
        Gaussian) these are the channel integrals of ERM in closed form."""
        del s2, V
        return None

    def gaussian_residual_replicon(self, s2, V):
        """``E f'(r)^2`` over ``r ~ N(0, s2)`` for a loss of the residual alone (the output side of
        the replicon, ``f' = d f / d r``), in closed form or on panels; ``None`` for the others."""
        del s2, V
        return None

    def prox_jumps(self, V):
        """Whether the prox is discontinuous in ``omega`` at this step (never for a convex loss)."""
        return jnp.zeros(jnp.shape(V), bool)

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

    def gaussian_residual_replicon(self, s2, V):
        """``f = r / (1 + V)``: ``E f'^2 = 1 / (1 + V)^2``."""
        return 1 / (1 + V) ** 2 + 0.0 * s2


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
        # The margin's kink at omega = y does not move with the step: one edge for every step.
        return (y * (1.0 - V), y)

    def clip_output(self, y, V):
        """``f = y clip((1 - y omega) / V, 0, 1) = clip((y - omega) / V, min(0, y), max(0, y))``."""
        return V + 0.0 * y, jnp.minimum(y, 0.0) + 0.0 * V, jnp.maximum(y, 0.0) + 0.0 * V


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

    def clip_output(self, y, V):
        """``f = clip((y - omega) / (1 + V), -delta, delta)``."""
        zero = 0.0 * (y + V)
        return 1 + V + zero, -self.delta + zero, self.delta + zero

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

    def gaussian_residual_replicon(self, s2, V):
        """``E f'^2 = P(|r| <= delta (1 + V)) / (1 + V)^2``."""
        inside = jax.scipy.special.erf(self.delta * (1 + V) / jnp.sqrt(2 * s2))
        return inside / (1 + V) ** 2


class Absolute(Loss):
    r"""The absolute loss ``|y - z|`` (least absolute deviations); ``prox = y`` if ``|y - omega| <= V``,
    else ``omega + V sign(y - omega)``: ``f = clip(r / V, -1, 1)`` with ``r = y - omega``."""

    def __call__(self, y, z):
        return jnp.abs(y - z)

    def prox(self, y, omega, V):
        r = y - omega
        return jnp.where(jnp.abs(r) <= V, y + 0.0 * omega, omega + V * jnp.sign(r))

    def breakpoints(self, y, V):
        return (y - V, y + V)

    def clip_output(self, y, V):
        """``f = clip((y - omega) / V, -1, 1)``."""
        zero = 0.0 * (y + V)
        return V + zero, zero - 1.0, zero + 1.0

    def gaussian_residual_averages(self, s2, V):
        r"""With ``t = V / s``, ``P = erf(t / sqrt 2)``: ``E f' = P / V``, ``E f^2 = (P - 2 t phi(t)) / t^2
        + 1 - P``, ``E l = E (|r| - V)_+ = 2 s phi(t) - V (1 - P)``."""
        s = jnp.sqrt(s2)
        t = V / s
        inside = jax.scipy.special.erf(t / jnp.sqrt(2.0))
        outside = jax.scipy.special.erfc(t / jnp.sqrt(2.0))
        density = jnp.exp(-0.5 * t**2) / jnp.sqrt(2 * jnp.pi)
        return inside / V, (inside - 2 * t * density) / t**2 + outside, 2 * s * density - V * outside

    def gaussian_residual_replicon(self, s2, V):
        """``E f'^2 = P(|r| <= V) / V^2``."""
        return jax.scipy.special.erf(V / jnp.sqrt(2 * s2)) / V**2


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


class RobustLoss(Loss):
    r"""A non-convex loss ``rho(r)`` of the residual ``r = y - z``, even, of scale ``c``: its prox is
    the global minimiser of a prox objective that may have two local minima (module docstring)."""

    c: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)

    @abc.abstractmethod
    def rho(self, s):
        """``rho(s)``, elementwise."""

    @abc.abstractmethod
    def drho(self, s):
        """``rho'(s)``, elementwise."""

    @abc.abstractmethod
    def turning_points(self, V):
        """``(a_1, a_2)``, ``0 <= a_1 <= a_2``: where ``g(s) = s + V rho'(s) - r`` turns on ``s >= 0``
        (``a_1 = a_2 = 0`` where ``g`` increases everywhere)."""

    def __call__(self, y, z):
        return self.rho(y - z)

    def prox(self, y, omega, V):
        return y - _robust_residual(self, y - omega, V)

    def objective(self, s, r, V):
        """The prox objective ``h(s) = (r - s)^2 / (2 V) + rho(s)`` in the new residual ``s``."""
        return 0.5 * (r - s) ** 2 / V + self.rho(s)

    def prox_jumps(self, V):
        a1, a2 = self.turning_points(V)
        return a2 > a1

    def jump(self, V):
        """``r_J >= 0``: the global minimiser of the prox objective jumps at ``r = +- r_J`` (0 where
        it does not jump), differentiable in ``V`` and the loss's fields."""
        return _robust_jump(self, V)

    def breakpoints(self, y, V):
        r = self.jump(V)
        return (y - r, y + r)

    def _residual_rule(self, s2, V, order: int = 24):
        """Panels in ``u = r / sqrt(s2)`` cut at 0, at the jumps, at ``c`` and ``4 c`` and at the turning
        points' images ``g(a_k)`` (where the prox bends): ``(r, weights)``."""
        s = jnp.sqrt(s2)
        a1, a2 = self.turning_points(V)
        cuts = jnp.stack(jnp.broadcast_arrays(self.jump(V), self.c, 4 * self.c, *(a + V * self.drho(a) for a in (a1, a2)), s))
        edges = jnp.concatenate([jnp.zeros(1, s.dtype), cuts / s, -cuts / s])
        u, w = panel_rule(edges, order)
        return s * u, w

    def gaussian_residual_averages(self, s2, V):
        """On panels (``_residual_rule``), ``E f'`` by Stein's lemma as ``E[r f] / s2`` (so that the
        jumps of ``f`` count): ``(E r f / s2, E f^2, E rho(s*))``, ``f = (r - s*(r)) / V``."""
        r, w = self._residual_rule(s2, V)
        s = _robust_residual(self, r, V)
        f = (r - s) / V
        return jnp.sum(w * r * f) / s2, jnp.sum(w * f**2), jnp.sum(w * self.rho(s))

    def gaussian_residual_replicon(self, s2, V):
        """``E f'^2`` off the jumps, ``f' = (1 - ds*/dr) / V``, on panels."""
        r, w = self._residual_rule(s2, V)
        ds = jax.jvp(lambda x: _robust_residual(self, x, V), (r,), (jnp.ones_like(r),))[1]
        return jnp.sum(w * ((1 - ds) / V) ** 2)


def _bisect_increasing(fn, lo, hi, steps: int):
    """The root of ``fn`` increasing on ``[lo, hi]`` (elementwise), the nearer end if there is none."""

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = fn(mid) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return 0.5 * (lo + hi)


def _bisection_steps(dtype) -> int:
    return 2 * jnp.finfo(dtype).nmant + 8


def _robust_candidates(loss, r, V):
    """``(s_low, s_high)`` for ``r >= 0``: the roots of ``g`` on ``[0, min(a_1, r)]`` and
    ``[min(a_2, r), r]``."""
    a1, a2 = loss.turning_points(V)
    g = lambda s: s + V * loss.drho(s) - r
    steps = _bisection_steps(jnp.result_type(r))
    zero = jnp.zeros_like(r)
    low = _bisect_increasing(g, zero, jnp.minimum(a1, r), steps)
    high = _bisect_increasing(g, jnp.minimum(a2, r), r, steps)
    return low, high


def _robust_residual(loss, r, V):
    """The global minimiser ``s*(r)`` of the prox objective (module docstring); the fields' tangents
    pass through the loss's leaves."""
    leaves, treedef = jax.tree.flatten(loss)
    return _robust_residual_leaves(treedef, *jnp.broadcast_arrays(r, V), *leaves)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _robust_residual_leaves(treedef, r, V, *leaves):
    # The candidate of least h on the side of r (rho is even).
    loss = jax.tree.unflatten(treedef, leaves)
    a = jnp.abs(r)
    low, high = _robust_candidates(loss, a, V)
    best = jnp.where(loss.objective(high, a, V) < loss.objective(low, a, V), high, low)
    return jnp.sign(r) * best


@_robust_residual_leaves.defjvp
def _robust_residual_jvp(treedef, primals, tangents):
    # Implicit function theorem on g(s; r, V, fields) = s + V rho'(s) - r = 0 at fixed s.
    s = _robust_residual_leaves(treedef, *primals)

    def g(r, V, *leaves):
        return V * jax.tree.unflatten(treedef, leaves).drho(s) - r

    _, dg = jax.jvp(g, tuple(primals), tuple(tangents))
    loss = jax.tree.unflatten(treedef, primals[2:])
    curvature = 1 + primals[1] * jax.jvp(loss.drho, (s,), (jnp.ones_like(s),))[1]
    return s, -dg / curvature


def _jump_gap(loss, r, V, low, high):
    """``h(low) - h(high)`` at fixed candidates: increasing in ``r`` (slope ``(high - low) / V``)."""
    return loss.objective(low, r, V) - loss.objective(high, r, V)


def _robust_jump(loss, V):
    """:meth:`RobustLoss.jump`; the fields' tangents through the loss's pytree."""
    leaves, treedef = jax.tree.flatten(loss)
    return _robust_jump_leaves(treedef, V, *leaves)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _robust_jump_leaves(treedef, V, *leaves):
    loss = jax.tree.unflatten(treedef, leaves)
    a1, a2 = loss.turning_points(V)
    jumps = a2 > a1
    g = lambda s: s + V * loss.drho(s)
    steps = _bisection_steps(jnp.result_type(V))

    def gap(r):
        return _jump_gap(loss, r, V, *_robust_candidates(loss, r, V))

    # Between the spinodals g(a_2) < g(a_1) both minima exist and the gap increases.
    r = _bisect_increasing(gap, g(a2), g(a1), steps)
    return jnp.where(jumps, r, 0.0)


@_robust_jump_leaves.defjvp
def _robust_jump_jvp(treedef, primals, tangents):
    # Envelope theorem: d gap = d_params gap at fixed candidates; r_J moves by -d gap / d_r gap.
    V, *leaves = primals
    r = _robust_jump_leaves(treedef, V, *leaves)
    loss = jax.tree.unflatten(treedef, leaves)
    low, high = _robust_candidates(loss, r, V)
    low, high = jax.lax.stop_gradient((low, high))

    def gap(V_, *leaves_):
        return _jump_gap(jax.tree.unflatten(treedef, leaves_), r, V_, low, high)

    _, dgap = jax.jvp(gap, tuple(primals), tuple(tangents))
    slope = (high - low) / V
    jumps = high > low
    return r, jnp.where(jumps, -dgap / jnp.where(jumps, slope, 1.0), 0.0)


class Tukey(RobustLoss):
    r"""Tukey's biweight of scale ``c``: ``rho(r) = (c^2 / 6) (1 - (1 - r^2 / c^2)^3)`` for ``|r| <= c``,
    ``c^2 / 6`` beyond; ``rho' = r (1 - u)^2``, ``rho'' = (1 - u) (1 - 5 u)`` with ``u = r^2 / c^2``.

    ``1 + V rho'' = 0`` at ``u = (3 V +- sqrt(V (4 V - 5))) / (5 V)``: two turning points for ``V > 5/4``.
    """

    def rho(self, s):
        u = jnp.minimum((s / self.c) ** 2, 1.0)
        return self.c**2 / 6 * (1 - (1 - u) ** 3)

    def drho(self, s):
        u = jnp.minimum((s / self.c) ** 2, 1.0)
        return s * (1 - u) ** 2

    def turning_points(self, V):
        disc = V * (4 * V - 5)
        turns = disc > 0
        root = jnp.sqrt(jnp.where(turns, disc, 1.0))  # 1, not 0: a finite derivative where unused
        u1, u2 = ((3 * V + sign * root) / (5 * V) for sign in (-1.0, 1.0))
        return tuple(jnp.where(turns, self.c * jnp.sqrt(jnp.where(turns, u, 1.0)), 0.0) for u in (u1, u2))


class Cauchy(RobustLoss):
    r"""The Cauchy (Lorentzian) loss of scale ``c``: ``rho(r) = (c^2 / 2) log(1 + r^2 / c^2)``;
    ``rho' = r / (1 + u)``, ``rho'' = (1 - u) / (1 + u)^2`` with ``u = r^2 / c^2``.

    ``1 + V rho'' = 0`` at ``u = (V - 2 +- sqrt(V (V - 8))) / 2``: two turning points for ``V > 8``.
    """

    def rho(self, s):
        return 0.5 * self.c**2 * jnp.log1p((s / self.c) ** 2)

    def drho(self, s):
        return s / (1 + (s / self.c) ** 2)

    def turning_points(self, V):
        disc = V * (V - 8)
        turns = disc > 0
        root = jnp.sqrt(jnp.where(turns, disc, 1.0))  # 1, not 0: a finite derivative where unused
        u1, u2 = ((V - 2 + sign * root) / 2 for sign in (-1.0, 1.0))
        return tuple(jnp.where(turns, self.c * jnp.sqrt(jnp.where(turns, u, 1.0)), 0.0) for u in (u1, u2))


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
"""The convex losses, offered by every supervised model."""

ROBUST_LOSSES: dict[str, type[Loss]] = {"absolute": Absolute, "tukey": Tukey, "cauchy": Cauchy}
"""The losses of robust regression, offered by ``ERM`` with a regression teacher: the absolute loss
and the non-convex losses of the residual."""
