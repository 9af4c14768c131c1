r"""Online SGD on a single-index target, link and activation given by their Hermite coefficients.

**Setting.** Inputs ``x ~ N(0, I_d)``, target ``y = f*(nu) + sqrt(noise) zeta`` with
``nu = w*.x / sqrt(d)``, ``|w*|^2 = d``, student ``y_hat = f(lambda)``, ``lambda = w.x / sqrt(d)``,
square loss ``(y_hat - y)^2 / 2``. Link and activation are given by their coefficients in the
orthonormal Hermite basis, ``f*(z) = sum_k target[k] He_k(z) / sqrt(k!)`` and
``f(z) = sum_k student[k] He_k(z) / sqrt(k!)``; the **information exponent** of the target is the
smallest ``k >= 1`` with ``target[k] != 0`` (Ben Arous, Gheissari & Jagannath 2021). Mini-batch SGD
with ``b = batch`` fresh samples per step (Arnaboldi et al. 2024, "Online learning and information
exponents: on the importance of batch size, and time/complexity tradeoffs"):
``w <- w - (lr(t) / b) sum_i Delta_i f'(lambda_i) x_i / sqrt(d)``, followed, when
``geometry="spherical"``, by the projection back onto ``|w|^2 = d``. Time ``t`` counts samples over
``d`` (so a step advances it by ``b / d``; ``iterations`` reports ``t / b``, the number of steps over
``d``).

**ODEs** (``d -> infinity`` at fixed ``b``), with ``m = w.w* / d``, ``q = |w|^2 / d``,
``eta = lr(t) / b`` and ``E`` over ``(lambda, nu)`` Gaussian with covariance ``[[q, m], [m, 1]]``:

.. math::
    \frac{dm}{dt} = -\eta E[\Delta f'(\lambda) \nu], \qquad
    \frac{dq}{dt} = -2\eta E[\Delta f'(\lambda) \lambda] + \eta^2 E[\Delta^2 f'(\lambda)^2]

(unconstrained), and on the sphere (``q = 1``)

.. math::
    \frac{dm}{dt} = -\eta E[\Delta f'(\lambda) (\nu - m \lambda)] - \frac{\eta^2}{2} m\, E[\Delta^2 f'(\lambda)^2],

with ``Delta = f(lambda) - f*(nu)`` and ``E[Delta^2 f'^2]`` including the label noise. At fixed ``b``
the limit depends on ``lr / b`` only: a larger batch buys fewer iterations, not fewer samples. For a
target of information exponent ``k`` and ``f = f*``, the escape from ``m0 ~ d^(-1/2)`` on the sphere
follows ``dm/dt ~ eta k target[k]^2 m^(k-1)``: a time ``~ d^((k-2)/2) / eta`` for ``k >= 3``,
``log d`` for ``k = 2``, provided ``eta << m0^(k-2)`` (otherwise the ``eta^2`` term wins and the
overlap decays). Expectations are a 2-D Gauss-Hermite rule of ``order`` nodes per axis, exact for
polynomials of degree ``2 order - 1`` in each variable; the integrands are polynomials of degree up
to ``4p - 2`` (``p`` the largest degree of link and activation), so the default order is
``2 (p + 1)`` and a smaller one is refused. The weights are the Christoffel function of the
orthonormal Hermite polynomials at the nodes, accurate to rounding relative to each weight, so that
the far nodes, where a high-degree polynomial is huge and the weight tiny, are summed correctly.
Link and activation of up to :data:`MAX_COEFFICIENTS` coefficients (degree 63) are accepted
(checked in float64 against the exact moments from ``E[He_j He_k] = k! delta_jk``).

**Observables.** ``m``, ``q``, ``eg = E[(f(lambda) - f*(nu))^2] / 2`` (no label noise), the cosine
``overlap = m / sqrt(q)`` and ``iterations = t / b``.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import hermite_series
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, choice, integer, parameter
from ._schedule import Scheduled


class Overlaps(eqx.Module):
    """``m = w.w* / d`` and ``q = |w|^2 / d``."""

    m: jax.Array
    q: jax.Array


MAX_COEFFICIENTS = 64
"""The longest Hermite expansion of link or activation that :class:`SingleIndex` accepts."""


def check_coefficients(theory, names) -> None:
    """A :class:`~hdtheory.ParameterError` for a Hermite series among the fields ``names`` of
    ``theory`` longer than :data:`MAX_COEFFICIENTS`, or for a quadrature ``theory.order`` below
    ``theory.exact_order`` (the order exact for the degrees of target and student)."""
    for name in names:
        length = jnp.atleast_1d(getattr(theory, name)).shape[-1]
        if length > MAX_COEFFICIENTS:
            raise ParameterError(
                f"parameter {name!r} must have at most {MAX_COEFFICIENTS} Hermite coefficients "
                f"(degree {MAX_COEFFICIENTS - 1}), got {length}"
            )
    order = theory.order
    if order is not None and (
        isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < theory.exact_order
    ):
        raise ParameterError(
            f"parameter 'order' must be an integer >= {theory.exact_order} (exact for the degree of "
            f"target and student), got {order!r}"
        )


@functools.lru_cache(maxsize=None)
def _rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights (``E[f(z)]``, ``z ~ N(0, 1)``) with relatively accurate weights.

    The nodes are the eigenvalues of the Jacobi matrix (Golub-Welsch); the weights
    ``1 / sum_{k < order} p_k(z_i)^2`` (``p_k = He_k / sqrt(k!)``, by the stable orthonormal
    recurrence), normalised to sum to one. Golub-Welsch weights (squared eigenvector components)
    are accurate only to rounding relative to the largest weight, which ruins the far nodes of a
    rule for a high-degree polynomial.
    """
    off = np.sqrt(np.arange(1, order, dtype=float))
    nodes = np.linalg.eigvalsh(np.diag(off, 1) + np.diag(off, -1))
    nodes = 0.5 * (nodes - nodes[::-1])  # exact symmetry
    previous, current = np.zeros_like(nodes), np.ones_like(nodes)
    total = current**2
    for k in range(1, order):
        previous, current = current, (nodes * current - math.sqrt(k - 1) * previous) / math.sqrt(k)
        total += current**2
    weights = 1 / total
    return nodes, weights / weights.sum()


def guarded_sqrt(x):
    """``sqrt(max(x, 0))`` with derivative zero (not ``inf``) where ``x <= 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def expect_pair(fn, m, spread, order: int):
    """``E[fn(lambda, nu)]`` for ``nu ~ N(0, 1)`` and ``lambda = m nu + sum_k spread[k] xi_k``
    (``xi_k ~ N(0, 1)`` independent), by the product of ``1 + len(spread)`` :func:`_rule` of
    ``order`` nodes.

    ``fn`` maps arrays of nodes (last axis a stack of outputs allowed) to values. Writing the part of
    ``lambda`` independent of ``nu`` as a sum of terms linear in the parameters, rather than as one
    square root of its variance, keeps the derivatives finite where that variance vanishes.
    """
    dtype = jnp.result_type(m, *spread, float)
    nodes, weights = _rule(order)
    axes = 1 + len(spread)
    grids = jnp.meshgrid(*([jnp.asarray(nodes, dtype)] * axes), indexing="ij")
    w = functools.reduce(jnp.multiply.outer, [jnp.asarray(weights, dtype)] * axes)
    nu = grids[0]
    lam = m * nu + sum(c * xi for c, xi in zip(spread, grids[1:]))
    return jnp.tensordot(w, fn(lam, nu), axes=(tuple(range(axes)), tuple(range(axes))))


class SingleIndex(Scheduled):
    """Online mini-batch SGD on a single-index target; see the module docstring."""

    target: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f*")
    student: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f")
    geometry: str = choice("spherical", {"spherical": 1, "unconstrained": 1}, "|w|^2 = d or free")
    batch: int = integer(1, Interval(1), "mini-batch size b (samples per step)")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    m0: jax.Array = parameter(0.01, Interval(-1.0, 1.0), "initial overlap m = w.w*/d")
    q0: jax.Array = parameter(1.0, POSITIVE, "initial norm q = |w|^2/d (unconstrained only)")
    order: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_coefficients(self, ("target", "student"))
        q0 = 1.0 if self.geometry == "spherical" else self.q0
        if not isinstance(self.m0, jax.core.Tracer) and not isinstance(q0, jax.core.Tracer):
            if np.any(np.asarray(self.m0) ** 2 > np.asarray(q0)):
                raise ParameterError("parameter 'm0' must satisfy m0^2 <= q0 (an overlap)")

    @property
    def information_exponent(self) -> int:
        """The smallest ``k >= 1`` with a non-zero Hermite coefficient of the target."""
        nonzero = np.flatnonzero(np.asarray(self.target)[1:]) + 1
        return int(nonzero[0]) if nonzero.size else 0

    @property
    def exact_order(self) -> int:
        """``2 (p + 1)``: nodes per axis exact for every moment of degree-``p`` link and activation."""
        length = max(jnp.atleast_1d(c).shape[-1] for c in (self.target, self.student))
        return 2 * length

    def _f(self, z):
        return hermite_series(self.student, z)

    def _f_prime(self, z):
        return jnp.vectorize(jax.grad(lambda u: hermite_series(self.student, u)))(z)

    def _expect(self, fn, state):
        spread = (guarded_sqrt(state.q - state.m**2),)
        return expect_pair(fn, state.m, spread, self.order or self.exact_order)

    def init(self) -> Overlaps:
        dtype = jnp.result_type(self.lr, self.m0, float)
        q = jnp.ones((), dtype) if self.geometry == "spherical" else jnp.asarray(self.q0, dtype)
        return Overlaps(m=jnp.asarray(self.m0, dtype), q=q)

    def vector_field(self, t, state: Overlaps) -> Overlaps:
        eta = self.lr * self.rate(t) / self.batch

        def moments(lam, nu):
            delta = self._f(lam) - hermite_series(self.target, nu)
            slope = self._f_prime(lam)
            return jnp.stack(
                [delta * slope * nu, delta * slope * lam, (delta**2 + self.noise) * slope**2]
            , -1)

        e_nu, e_lam, e_sq = self._expect(moments, state)
        if self.geometry == "spherical":
            dm = -eta * (e_nu - state.m * e_lam) - 0.5 * eta**2 * state.m * e_sq
            return Overlaps(m=dm, q=jnp.zeros_like(state.q))
        return Overlaps(m=-eta * e_nu, q=-2 * eta * e_lam + eta**2 * e_sq)

    def observables(self, t, state: Overlaps) -> dict[str, jax.Array]:
        error = lambda lam, nu: (self._f(lam) - hermite_series(self.target, nu)) ** 2
        return {
            "eg": 0.5 * self._expect(error, state),
            "m": state.m,
            "q": state.q,
            "overlap": state.m / jnp.sqrt(state.q),
            "iterations": t / self.batch,
        }
