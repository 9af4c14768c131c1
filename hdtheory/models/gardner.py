r"""Storage capacity of the perceptron: the replica-symmetric Gardner volume.

**Setting** (Gardner 1988, "The space of interactions in neural network models", J. Phys. A 21,
257; Gardner & Derrida 1988, "Optimal storage properties of neural network models", J. Phys. A 21,
271). ``n = alpha d`` patterns ``x_i ~ N(0, I_d)`` with labels ``y_i = +-1`` drawn at random,
independently of the patterns. The Gardner volume is the set of weights ``w`` that store every
pattern with margin ``kappa >= 0``,

.. math:: y_i\, w \cdot x_i / \sqrt{d} \;\ge\; \kappa\, |w| / \sqrt{d}, \qquad i = 1, \dots, n,

with the weights ``spherical`` (``|w|^2 = d``, the uniform measure on that sphere) or ``binary``
(``w_i = +-1``, the counting measure), so that ``|w| / sqrt(d) = 1`` in both cases. Its entropy is
``s = lim (1 / d) E log Vol``: the log of the fraction of the sphere for spherical weights
(``s <= 0``), the log of the number of solutions for binary ones (``s <= log 2``). The papers use
patterns ``+-1`` and this normalisation (their ``sum_j J_j^2 = N``); Gaussian patterns give the
same replica equations (the fields are Gaussian either way). Since the label is independent of
the pattern, ``y_i x_i`` is again ``N(0, I_d)`` and the label drops out.

**Replica-symmetric equations.** Two weights drawn from the volume overlap by ``q = w.w' / d``.
A pattern's field on a weight given the others is ``N(omega, V)``, ``omega = sqrt(q) t``,
``V = 1 - q``, ``t ~ N(0, 1)``; the pattern is stored with probability
``Z(omega, V) = P(z >= kappa) = Phi((omega - kappa) / sqrt(V))``, the partition function of the
noiseless sign channel at ``omega - kappa`` (:class:`hdtheory.kernels.Sign`), and
``g = d_omega log Z``. With the conjugate

.. math:: \hat q = \alpha\, \mathbb{E}_t\, g(\sqrt q\, t, 1 - q)^2 ,

the fixed point is ``q = P(qhat)`` with

- spherical: ``q / (1 - q)^2 = qhat``, that is ``1 - q = 2 / (1 + sqrt(1 + 4 qhat))``;
- binary: ``q = E_z tanh^2(sqrt(qhat) z)``, the Rademacher prior's scalar channel of SNR ``qhat``
  without a signal (:meth:`hdtheory.kernels.Prior.null_average`, ``B = sqrt(qhat) z``),

and the entropy (Gardner 1988 for spherical weights; Gardner & Derrida 1988 for binary ones, at no
errors, with its ``E log 2 cosh`` written as ``log 2 + E log Z_0``)

.. math::
    s_{sph} = \tfrac12 \log(1 - q) + \frac{q}{2 (1 - q)} + \alpha\, \Psi(q), \qquad
    s_{bin} = \log 2 + \mathbb{E}_z \log Z_0(\sqrt{\hat q} z, \hat q) + \frac{\hat q q}{2} + \alpha\, \Psi(q),

``Psi(q) = E_t log Z(sqrt(q) t, 1 - q)`` and ``log Z_0(B, A) = log cosh B - A / 2`` (so that the
binary input term is ``E log 2 cosh(sqrt(qhat) z) - qhat (1 - q) / 2``). Both are stationary at the
fixed point; ``update`` composes ``qhat(q)`` with ``P``. ``q = 0`` (two independent solutions,
the annealed entropy ``log 2 + alpha log Phi(-kappa)``) is no fixed point at any ``alpha > 0``.

**Capacity** (:meth:`Gardner.capacity`; ``hdtheory.threshold(theory, "alpha", "separability")``).

- spherical: as ``alpha`` grows the solutions shrink to a point, ``q -> 1``, at Gardner's
  ``alpha_c(kappa) = 1 / int_{-kappa}^inf Dt (t + kappa)^2 = 1 / E(kappa - Z)_+^2``
  (``alpha_c(0) = 2``, Cover's count), in closed form
  (:func:`hdtheory.kernels.separability.squared_hinge_moments`). The volume is convex for
  ``kappa >= 0`` and the replica-symmetric result is exact (Gardner 1988).
- binary: the same limit ``q -> 1`` of the replica-symmetric saddle point is at
  ``alpha_rs = 2 / (pi E(kappa - Z)_+^2)`` (``1 - q ~ sqrt(2 / (pi qhat))`` as ``qhat -> inf``),
  ``4 / pi`` at ``kappa = 0`` (Gardner & Derrida 1988), which is wrong: the entropy of a set of
  discrete points cannot be negative, and it vanishes earlier, at the capacity
  ``alpha_c = 0.833`` at ``kappa = 0`` (Krauth & Mézard 1989, "Storage capacity of memory
  networks with binary couplings", J. Phys. France 50, 3057: the replica-symmetric entropy is
  zero there, and the volume shrinks to isolated solutions, ``q < 1``). Both are given.
  The zero of the entropy is found along the fixed points parametrised by ``x = log qhat``:
  ``q = P(qhat)`` and ``alpha = qhat / E_t g^2`` in closed form along the curve (one fixed point
  for each ``alpha`` below ``alpha_rs``), ``s(x)`` decreasing; Newton's method safeguarded by
  bisection for ``x`` in ``[log 1e-3, log 1e8]``, differentiable in ``kappa`` by the implicit
  function theorem (:func:`hdtheory.kernels.roots.scalar_root`).

**Stability** (``replicon``). The replicon eigenvalue of the replica-symmetric saddle point,
``lambda = alpha E_t[(d_omega g)^2] E[chi^2]``, ``chi`` the variance of a weight in its scalar
channel (``1 - q`` for spherical weights, ``1 - tanh^2(sqrt(qhat) z)`` for binary ones, averaged
over ``z``): replica symmetry is locally stable (de Almeida-Thouless) while ``lambda < 1``. For
spherical weights ``lambda -> alpha_c Phi(kappa) <= 1`` as ``q -> 1`` (equal to one at
``kappa = 0``: marginal at ``alpha = 2``); for binary ones at ``kappa = 0`` it stays below one up
to the capacity (Huang, Wong & Kabashima 2013, J. Phys. A 46, 375002) and exceeds it before
``alpha_rs``.

**Quadrature.** The ``t`` integrals are Gauss-Legendre panels (:func:`hdtheory.kernels.transition_rule`,
``max(order // 4, 8)`` nodes each) with edges at the Gaussian's scales and at the pattern's
threshold ``t = kappa / sqrt(q)`` ``+- {1, 4, 16}`` times its width ``sqrt((1 - q) / q)``; the ``z``
integrals of binary weights are the Rademacher prior's panels about ``B = 0`` (width
``1 / sqrt(qhat)``). Averages over ``sqrt(q) t`` are differentiated by the heat equation
(:func:`hdtheory.kernels.quadrature.smoothed_expectation`), finite at ``q = 0``.

**Coordinates.** The solver works on ``u = log(1 - q)``; beyond the capacity ``q -> 1`` and no
fixed point exists (the solve reports ``converged = False``). The map is NaN where ``1 - q`` is
below ``sqrt(eps)`` (1.5e-8 in float64): there the iteration, still falling in ``u``, moves ``q`` by
a few roundings a step, which :func:`hdtheory.solve` takes for a fixed point to rounding. A point
within about 1e-8 (relative) of the capacity is therefore reported not converged too.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError, choice, integer, parameter
from ..kernels.quadrature import smoothed_expectation
from ..kernels.roots import scalar_root
from ..kernels.separability import squared_hinge_moments

PRIORS = {"spherical": None, "binary": kernels.Rademacher}
"""The weights' law: uniform on the sphere ``|w|^2 = d``, or ``w_i = +-1``."""

_LOG_QHAT = (math.log(1e-3), math.log(1e8))
"""The bracket of ``log qhat`` in which the binary capacity is sought: the entropy is near
``log 2`` at its low end and negative at its high end (``1 - q ~ 8e-5``) for every ``kappa >= 0``."""


class Capacity(eqx.Module):
    """The storage capacity of :class:`Gardner` (every field gains the batch axes of a vmap)."""

    alpha: jax.Array
    """The capacity: Gardner's closed form (spherical), the zero of the replica-symmetric entropy
    (binary, Krauth and Mézard); NaN where the root was not found."""
    alpha_rs: jax.Array
    """The limit ``q -> 1`` of the replica-symmetric saddle point: ``1 / E(kappa - Z)_+^2``
    (spherical, equal to ``alpha``) or ``2 / (pi E(kappa - Z)_+^2)`` (binary, ``4 / pi`` at
    ``kappa = 0``: not the capacity)."""
    q: jax.Array
    """The overlap of two solutions at the capacity: 1 (spherical), below 1 (binary)."""
    converged: jax.Array
    """Whether the root was found (always true for spherical weights)."""
    residual: jax.Array
    """``|s|`` at the root (0 for spherical weights)."""


class Gardner(FixedPointTheory):
    """The replica-symmetric Gardner volume of the perceptron; see the module docstring."""

    alpha: jax.Array = parameter(1.0, POSITIVE, "patterns per dimension n/d")
    kappa: jax.Array = parameter(0.0, NONNEGATIVE, "margin: y w.x/sqrt(d) >= kappa |w|/sqrt(d)")
    prior: str = choice("spherical", PRIORS, "weights: spherical (|w|^2 = d) or binary (w_i = +-1)")
    order: int = integer(64, Interval(8.0), "quadrature order (max(order // 4, 8) Gauss-Legendre nodes a panel)")

    def _dtype(self):
        return jnp.result_type(self.alpha, self.kappa, float)

    def init(self, kind: str = "uninformed") -> jax.Array:
        """``q = 0`` (independent solutions) or ``q = 1 - 1e-6`` (nearly one solution)."""
        if kind not in ("uninformed", "informed"):
            raise ParameterError(f"init must be 'uninformed' or 'informed', got {kind!r}")
        return jnp.asarray(0.0 if kind == "uninformed" else 1 - 1e-6, self._dtype())

    def unconstrain(self, q) -> jax.Array:
        return jnp.log1p(-q)

    def constrain(self, u) -> jax.Array:
        return -jnp.expm1(u)

    @property
    def _weights(self) -> kernels.Prior:
        return kernels.Rademacher(jnp.ones((), self._dtype()))

    def _pattern_average(self, f, q):
        """``E_t f(channel, sqrt(q) t - kappa, 1 - q)``: the average over one pattern's field."""
        V = 1 - q
        fixed = jax.lax.stop_gradient(q)
        center = self.kappa / jnp.sqrt(fixed)
        width = jnp.sqrt((1 - fixed) / fixed)
        t, w = kernels.transition_rule(center[None], width[None], max(self.order // 4, 8), self._dtype())

        def h(omega, args):
            channel, kappa, V = args
            return f(channel, omega - kappa, V)

        channel = kernels.Sign(jnp.zeros((), self._dtype()))
        return smoothed_expectation(h, q, (channel, self.kappa, V), t, w)

    def _squared_slope(self, q) -> jax.Array:
        """``E_t g^2``."""
        return self._pattern_average(lambda ch, omega, V: ch.dlog_partition(1.0, omega, V) ** 2, q)

    def conjugate(self, q) -> jax.Array:
        """``qhat = alpha E_t g^2``."""
        return self.alpha * self._squared_slope(q)

    def _overlap(self, qhat) -> jax.Array:
        """``P(qhat)``, the overlap of two weights in their scalar channel of SNR ``qhat``."""
        if self.prior == "spherical":
            return 1 - 2 / (1 + jnp.sqrt(1 + 4 * qhat))
        return self._weights.null_average(lambda prior, B, r: prior.mean(B, r) ** 2, qhat, self.order)

    def update(self, q) -> jax.Array:
        collapsed = 1 - q < jnp.sqrt(jnp.finfo(jnp.result_type(q)).eps)  # the volume is a point
        return jnp.where(collapsed, jnp.nan, self._overlap(self.conjugate(q)))

    def _entropy(self, q, qhat) -> jax.Array:
        """The entropy at ``(q, qhat)`` (stationary in both at the fixed point)."""
        patterns = self.alpha * self._pattern_average(lambda ch, omega, V: ch.log_partition(1.0, omega, V), q)
        if self.prior == "spherical":
            return 0.5 * jnp.log1p(-q) + q / (2 * (1 - q)) + patterns
        log_z = self._weights.null_average(lambda prior, B, r: prior.log_partition(B, r), qhat, self.order)
        return math.log(2) + log_z + qhat * q / 2 + patterns

    def free_entropy(self, q) -> jax.Array:
        """The entropy ``s(q, qhat(q))``; see the module docstring."""
        return self._entropy(q, self.conjugate(q))

    def replicon(self, q) -> jax.Array:
        """``alpha E_t[(d_omega g)^2] E[chi^2]``: replica symmetry is stable below one."""

        def slope(ch, omega, V):
            dg = jax.jvp(lambda o: ch.dlog_partition(1.0, o, V), (omega,), (jnp.ones_like(omega),))[1]
            return dg**2

        patterns = self.alpha * self._pattern_average(slope, q)
        if self.prior == "spherical":
            return patterns * (1 - q) ** 2
        chi = self._weights.null_average(lambda prior, B, r: prior.variance(B, r) ** 2, self.conjugate(q), self.order)
        return patterns * chi

    def observables(self, q) -> dict[str, jax.Array]:
        return {
            "q": q,
            "qhat": self.conjugate(q),
            "entropy": self.free_entropy(q),
            "replicon": self.replicon(q),
        }

    def _along(self, x):
        """``(alpha, q, s)`` at the fixed point whose conjugate is ``qhat = e^x`` (binary weights)."""
        qhat = jnp.exp(x)
        q = self._overlap(qhat)
        alpha = qhat / self._squared_slope(q)
        return alpha, q, eqx.tree_at(lambda t: t.alpha, self, alpha)._entropy(q, qhat)

    def capacity(self, steps: int = 50, tol: float | None = None) -> Capacity:
        """The storage capacity at this ``kappa`` (``alpha`` itself is not used); see the module
        docstring. ``steps`` bounds the root finding and ``tol`` (on the entropy) is 1e-10 in
        float64, 1e-5 in float32 by default. Differentiable in ``kappa``; vmappable."""
        dtype = self._dtype()
        tol = (1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5) if tol is None else tol
        moment = squared_hinge_moments(jnp.asarray(self.kappa, dtype))[0]
        if self.prior == "spherical":
            one = jnp.ones((), dtype)
            return Capacity(alpha=1 / moment, alpha_rs=1 / moment, q=one, converged=one > 0, residual=0 * one)

        # The root with the parameters held fixed (no derivative traced through the iterations), then
        # one Newton step with them live: its derivative is the implicit one, and alpha and q follow
        # x to first order along the curve.
        fixed = jax.lax.stop_gradient(self)
        x, residual = scalar_root(lambda x: fixed._along(x)[2], jnp.asarray(_LOG_QHAT, dtype), steps, tol)
        _, (d_alpha, d_q, d_s) = jax.jvp(fixed._along, (x,), (jnp.ones_like(x),))
        alpha, q, s = self._along(x)
        step = -s / d_s
        alpha, q = alpha + d_alpha * step, q + d_q * step
        found = residual <= math.sqrt(tol)
        return Capacity(
            alpha=jnp.where(found, alpha, jnp.nan),
            alpha_rs=2 / (math.pi * moment),
            q=jnp.where(found, q, jnp.nan),
            converged=found,
            residual=residual,
        )

    def separability_threshold(self, axis: str, steps: int = 50, tol: float | None = None):
        """``(alpha_c, found, residual)`` for ``hdtheory.threshold(theory, "alpha", "separability")``:
        random labels are stored with margin ``kappa`` below ``alpha_c`` (:meth:`capacity`)."""
        if axis != "alpha":
            raise ParameterError(f"parameter 'axis' must be alpha for a separability threshold, got {axis!r}")
        result = self.capacity(steps, tol)
        return result.alpha, result.converged, result.residual
