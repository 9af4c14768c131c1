r"""Activations and their Gaussian integrals, the building blocks of the committee-machine ODEs.

For jointly Gaussian ``(x_1, ..., x_n)`` with zero mean and covariance ``C`` (an array
``(..., n, n)``; leading axes are batch axes), an :class:`Activation` ``g`` provides

.. math::
    I_2(C) = E[g(x_1) g(x_2)],\quad
    J_2(C) = E[g'(x_1) g'(x_2)],\quad
    I_3(C) = E[g'(x_1)\, x_2\, g(x_3)],\quad
    I_4(C) = E[g'(x_1) g'(x_2) g(x_3) g(x_4)],

the integrals of Saad & Solla 1995 (Phys. Rev. E 52, 4225, appendix) and Goldt et al. 2019
("Dynamics of stochastic gradient descent for two-layer neural networks in the teacher-student
setup", NeurIPS, appendix). Closed forms:

- :class:`Erf`, ``g(x) = erf(x / sqrt(2))``: all four (Saad & Solla 1995; Goldt et al. 2019), with
  ``Lambda_4 = (1 + C11)(1 + C22) - C12^2``,

  .. math::
      I_2 = \tfrac{2}{\pi} \arcsin \tfrac{C_{12}}{\sqrt{(1 + C_{11})(1 + C_{22})}},\quad
      J_2 = \tfrac{2}{\pi} \Lambda_4^{-1/2},\quad
      I_3 = \tfrac{2}{\pi} \tfrac{C_{23}(1 + C_{11}) - C_{12} C_{13}}
            {(1 + C_{11}) \sqrt{(1 + C_{11})(1 + C_{33}) - C_{13}^2}},\quad
      I_4 = \tfrac{4}{\pi^2} \Lambda_4^{-1/2} \arcsin \tfrac{\Lambda_0}{\sqrt{\Lambda_1 \Lambda_2}},

  ``Lambda_0 = Lambda_4 C34 - C23 C24 (1 + C11) - C13 C14 (1 + C22) + C12 C13 C24 + C12 C14 C23``,
  ``Lambda_1 = Lambda_4 (1 + C33) - C23^2 (1 + C11) - C13^2 (1 + C22) + 2 C12 C13 C23`` and
  ``Lambda_2`` the same with 3 -> 4. ``Erf(scale=s)`` is ``erf(s x)`` (``s = 1 / sqrt 2`` the
  default; ``s = 1`` the ``erf(x)`` of Nwemadji et al. 2026, ``"erf-z"``): with
  ``k = sqrt(2) s``, ``erf(s x) = g(k x)``, so its integrals are the above on ``k^2 C``, ``J_2``
  and ``I_4`` times ``k^2`` (one factor ``k`` per derivative; ``I_3``'s is taken up by ``x_2``).
- :class:`ReLU`: ``I_2`` (the arc-cosine kernel, Cho & Saul 2009), ``J_2 = (pi - theta) / (2 pi)``
  with ``cos theta`` the correlation, and ``I_3`` through Stein's lemma,
  ``I_3 = C21 E[delta(x_1) g(x_3)] + C23 E[g'(x_1) g'(x_3)]``; ``I_4`` (which contains a four-variate
  orthant probability, not elementary) by quadrature.
- :class:`Linear`: ``I_2 = C12``, ``J_2 = 1``, ``I_3 = C23``, ``I_4 = C34``.
- :class:`Numerical`: any activation, every integral by quadrature.
- :class:`Hermite`: a polynomial given by its coefficients in the orthonormal Hermite basis,
  ``g(x) = sum_k c_k He_k(x) / sqrt(k!)`` (:func:`hermite_series`), every integral by a product rule
  of the least order that is exact for its degree.

:class:`CommitteeMoments` assembles them into the moments of a square-loss gradient that every
online-SGD theory of two-layer networks needs (the committee machines, LoRA adapters).

Teacher and student may differ (a single-index target of another link than the student's
activation): ``i2(C, other)``, ``i3(C, other)`` and ``i4(C, third, fourth)`` put the activations
``other``, ``third``, ``fourth`` on the arguments that are not differentiated,
``E[g(x_1) h(x_2)]``, ``E[g'(x_1) x_2 h(x_3)]``, ``E[g'(x_1) g'(x_2) h_3(x_3) h_4(x_4)]``; the closed
forms hold for ``g`` itself there, and for erf against a linear or ReLU link in ``I_2`` and ``I_3``
(Stein's lemma: ``relu(x) = (x + |x|) / 2``, and ``|x|`` has no such moment with the odd ``erf``); any
other pair is integrated by quadrature (the base class's rules).

Quadrature is a product Gauss-Hermite rule of ``order`` nodes per axis on ``x = L z``, ``L`` a
Cholesky factor of ``C`` that tolerates the singular covariances met in the ODEs (the same local
field twice, as in ``Q_kk``). The rule is exact for polynomials of degree ``2 order - 1`` in each
axis; kinks (ReLU) converge algebraically.
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .multivariate import _sqrt0, gaussian_expectation_nd, product_rule, psd_cholesky


@jax.custom_jvp
def _arccos(x):
    """``arccos`` of ``x`` clipped to ``[-1, 1]``, with a finite derivative at the ends."""
    return jnp.arccos(jnp.clip(x, -1.0, 1.0))


@_arccos.defjvp
def _arccos_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    eps = jnp.finfo(jnp.result_type(x, float)).eps
    slope = -1.0 / jnp.sqrt(jnp.maximum(1.0 - x**2, eps))
    return _arccos(x), slope * dx


class Activation(eqx.Module):
    """An activation with the Gaussian integrals ``I_2, J_2, I_3, I_4``; see the module docstring.

    The base class computes every integral by quadrature; subclasses override them with closed
    forms. ``order`` is the number of quadrature nodes per axis for 2 and 3 variables; 4 variables
    use ``order4``.
    """

    order: int = eqx.field(default=48, static=True)
    order4: int = eqx.field(default=14, static=True)
    closed_form_i4: ClassVar[bool] = False

    def __call__(self, x):
        raise NotImplementedError

    def derivative(self, x):
        return jnp.vectorize(jax.grad(self.__call__))(x)

    def i2(self, cov, other=None):
        h = self if other is None else other
        return gaussian_expectation_nd(lambda x: self(x[..., 0]) * h(x[..., 1]), cov, self.order)

    def j2(self, cov):
        d = self.derivative
        return gaussian_expectation_nd(lambda x: d(x[..., 0]) * d(x[..., 1]), cov, self.order)

    def i3(self, cov, other=None):
        h = self if other is None else other

        def f(x):
            return self.derivative(x[..., 0]) * x[..., 1] * h(x[..., 2])

        return gaussian_expectation_nd(f, cov, max(self.order // 2, 8))

    def i4(self, cov, third=None, fourth=None):
        h3, h4 = (self if h is None else h for h in (third, fourth))

        def f(x):
            d = self.derivative
            return d(x[..., 0]) * d(x[..., 1]) * h3(x[..., 2]) * h4(x[..., 3])

        return gaussian_expectation_nd(f, cov, self.order4)

    def same(self, other) -> bool:
        """Whether ``other`` (``None``: ``self``) is this activation, so that closed forms hold."""
        return other is None or other is self or type(other) is type(self)


class Numerical(Activation):
    """Any activation ``fn`` (a jax-traceable function of an array), every integral by quadrature."""

    fn: object = eqx.field(default=jnp.tanh, static=True)

    def __call__(self, x):
        return self.fn(x)


class Erf(Activation):
    """``g(x) = erf(scale x)`` (by default ``erf(x / sqrt(2))``), all integrals in closed form: those
    of ``erf(x / sqrt 2)`` on ``k^2 C``, ``k = sqrt(2) scale``."""

    scale: float = eqx.field(default=1 / math.sqrt(2), static=True)
    closed_form_i4: ClassVar[bool] = True

    def __call__(self, x):
        return jax.scipy.special.erf(self.scale * x)

    def derivative(self, x):
        return (2 / math.sqrt(math.pi)) * self.scale * jnp.exp(-((self.scale * x) ** 2))

    def same(self, other) -> bool:
        return super().same(other) and (other is None or other.scale == self.scale)

    @staticmethod
    def _link_factor(other):
        """``E[g(x_1) h(x_2)] = f E[g(x_1) x_2]`` and ``E[g'(x_1) x_2 h(x_3)] = f E[g'(x_1) x_2 x_3]``
        for an odd ``g``: ``f = 1`` for the linear ``h``, ``1 / 2`` for ReLU (``relu(x) = (x + |x|) / 2``,
        and ``|x|``'s moments with ``g`` or ``g' x`` vanish by the symmetry ``x -> -x``); ``None`` else."""
        if isinstance(other, Linear):
            return 1.0
        return 0.5 if isinstance(other, ReLU) else None

    def _slope_moments(self, variance):
        """``E[g'(x)]`` and ``E[g^(3)(x)]`` for ``x ~ N(0, variance)``: ``2 s / sqrt(pi) (1 + 2 s^2 v)^(-1/2)``
        and ``-4 s^3 / sqrt(pi) (1 + 2 s^2 v)^(-3/2)``."""
        spread = 1 + 2 * self.scale**2 * variance
        first = 2 * self.scale / math.sqrt(math.pi) / jnp.sqrt(spread)
        return first, -2 * self.scale**2 * first / spread

    @property
    def _k2(self) -> float:
        """``k^2 = 2 scale^2``: the variance factor from ``erf(x / sqrt 2)`` to ``erf(scale x)``."""
        return 2 * self.scale**2

    def i2(self, c, other=None):
        factor = self._link_factor(other)
        if factor is not None:  # E[g(x_1) x_2] = C12 E[g'(x_1)] (Stein's lemma)
            return factor * c[..., 0, 1] * self._slope_moments(c[..., 0, 0])[0]
        if not self.same(other):
            return super().i2(c, other)
        c = self._k2 * c
        return (2 / math.pi) * jnp.arcsin(
            c[..., 0, 1] / jnp.sqrt((1 + c[..., 0, 0]) * (1 + c[..., 1, 1]))
        )

    def j2(self, c):
        c = self._k2 * c
        lam4 = (1 + c[..., 0, 0]) * (1 + c[..., 1, 1]) - c[..., 0, 1] ** 2
        return self._k2 * (2 / math.pi) / jnp.sqrt(lam4)

    def i3(self, c, other=None):
        factor = self._link_factor(other)
        if factor is not None:  # E[g'(x_1) x_2 x_3] = C23 E[g'] + C12 C13 E[g^(3)] (Stein's lemma twice)
            first, third = self._slope_moments(c[..., 0, 0])
            return factor * (c[..., 1, 2] * first + c[..., 0, 1] * c[..., 0, 2] * third)
        if not self.same(other):
            return super().i3(c, other)
        c = self._k2 * c
        c11, c12, c13 = c[..., 0, 0], c[..., 0, 1], c[..., 0, 2]
        c23, c33 = c[..., 1, 2], c[..., 2, 2]
        lam3 = (1 + c11) * (1 + c33) - c13**2
        return (2 / math.pi) * (c23 * (1 + c11) - c12 * c13) / ((1 + c11) * jnp.sqrt(lam3))

    def i4(self, c, third=None, fourth=None):
        if not (self.same(third) and self.same(fourth)):
            return super().i4(c, third, fourth)
        c = self._k2 * c
        c11, c12, c13, c14 = (c[..., 0, j] for j in range(4))
        c22, c23, c24 = (c[..., 1, j] for j in range(1, 4))
        c33, c34, c44 = c[..., 2, 2], c[..., 2, 3], c[..., 3, 3]
        lam4 = (1 + c11) * (1 + c22) - c12**2
        lam0 = (
            lam4 * c34 - c23 * c24 * (1 + c11) - c13 * c14 * (1 + c22)
            + c12 * c13 * c24 + c12 * c14 * c23
        )
        lam1 = lam4 * (1 + c33) - c23**2 * (1 + c11) - c13**2 * (1 + c22) + 2 * c12 * c13 * c23
        lam2 = lam4 * (1 + c44) - c24**2 * (1 + c11) - c14**2 * (1 + c22) + 2 * c12 * c14 * c24
        ratio = jnp.clip(lam0 / jnp.sqrt(lam1 * lam2), -1.0, 1.0)
        return self._k2 * (4 / math.pi**2) / jnp.sqrt(lam4) * jnp.arcsin(ratio)


class ReLU(Activation):
    """``g(x) = max(x, 0)``: ``I_2, J_2, I_3`` in closed form, ``I_4`` by quadrature."""

    def __call__(self, x):
        return jnp.maximum(x, 0.0)

    def derivative(self, x):
        return (x > 0).astype(jnp.result_type(x, float))

    @staticmethod
    def _correlation(c, i, j):
        """The correlation of ``x_i`` and ``x_j``; within rounding of +-1 (the same field twice) it is
        +-1, where ``arccos``, whose slope is infinite there, would turn the rounding into a jump."""
        rho = c[..., i, j] / jnp.sqrt(c[..., i, i] * c[..., j, j])
        eps = jnp.finfo(jnp.result_type(rho, float)).eps
        return jnp.where(jnp.abs(rho) > 1 - 64 * eps, jnp.sign(rho), rho)

    def i2(self, c, other=None):
        if isinstance(other, Erf):  # E[relu(x_1) g(x_2)], in closed form from g's side
            return other.i2(c[..., ::-1, ::-1], self)
        if not self.same(other):
            return super().i2(c, other)
        rho = jnp.clip(self._correlation(c, 0, 1), -1.0, 1.0)
        theta = _arccos(rho)
        kernel = _sqrt0(1 - rho**2) + (math.pi - theta) * rho
        return jnp.sqrt(c[..., 0, 0] * c[..., 1, 1]) * kernel / (2 * math.pi)

    def j2(self, c):
        return (math.pi - _arccos(self._correlation(c, 0, 1))) / (2 * math.pi)

    def i3(self, c, other=None):
        if not self.same(other):
            return super().i3(c, other)
        c11, c12, c13, c23, c33 = c[..., 0, 0], c[..., 0, 1], c[..., 0, 2], c[..., 1, 2], c[..., 2, 2]
        # E[delta(x1) relu(x3)] = density of x1 at 0 times E[relu(x3) | x1 = 0]; a conditional
        # variance within rounding of zero (x3 = x1, the same field twice) is zero, not a random
        # rounding error whose square root would jump between evaluations.
        residual = c33 - c13**2 / c11
        eps = jnp.finfo(jnp.result_type(residual, float)).eps
        conditional = _sqrt0(jnp.where(residual > 64 * eps * c33, residual, 0.0))
        delta_term = conditional / (2 * math.pi * jnp.sqrt(c11))
        step_term = (math.pi - _arccos(self._correlation(c, 0, 2))) / (2 * math.pi)
        return c12 * delta_term + c23 * step_term


class Linear(Activation):
    """``g(x) = x``."""

    closed_form_i4: ClassVar[bool] = True

    def __call__(self, x):
        return x

    def derivative(self, x):
        return jnp.ones_like(x)

    def i2(self, c, other=None):
        if isinstance(other, Erf):  # E[x_1 g(x_2)], in closed form from g's side
            return other.i2(c[..., ::-1, ::-1], self)
        if not self.same(other):
            return super().i2(c, other)
        return c[..., 0, 1]

    def j2(self, c):
        return jnp.ones_like(c[..., 0, 1])

    def i3(self, c, other=None):
        if not self.same(other):
            return super().i3(c, other)
        return c[..., 1, 2]

    def i4(self, c, third=None, fourth=None):
        if not (self.same(third) and self.same(fourth)):
            return super().i4(c, third, fourth)
        return c[..., 2, 3]


def hermite_series(coefficients, z):
    """``sum_k c_k He_k(z) / sqrt(k!)`` (probabilists' Hermite polynomials, orthonormal), by the
    orthonormal recurrence ``p_k = (z p_{k-1} - sqrt(k - 1) p_{k-2}) / sqrt(k)``."""
    coefficients = jnp.atleast_1d(coefficients)
    previous, current = jnp.zeros_like(z), jnp.ones_like(z)
    total = coefficients[0] * current
    for k in range(1, coefficients.shape[0]):
        previous, current = current, (z * current - math.sqrt(k - 1) * previous) / math.sqrt(k)
        total = total + coefficients[k] * current
    return total


class Hermite(Activation):
    """``g(x) = sum_k c_k He_k(x) / sqrt(k!)`` (``c = coefficients``): a polynomial of degree
    ``len(c) - 1``, every integral exact (to rounding) by a product Gauss-Hermite rule.

    ``g'`` is the series of ``c'_k = sqrt(k + 1) c_{k+1}`` (``He_k' = k He_{k-1}``). On ``x = L z``
    an integrand of total degree ``D`` has degree at most ``D`` in each ``z_i``, so
    ``(D + 2) // 2`` nodes per axis are exact: ``D = deg g + deg h`` for ``I_2``, ``I_3``,
    ``2 (deg g - 1)`` for ``J_2``, ``2 (deg g - 1) + deg h_3 + deg h_4`` for ``I_4`` (``order`` and
    ``order4`` are not used). The product rule over 4 fields has ``((D + 2) // 2)^4`` nodes: this
    is meant for low degrees (the hard single-index targets, ``He_2``, ``He_3``, ``He_4``). With
    another activation on the undifferentiated fields the base class's rules apply.
    """

    coefficients: jax.Array = eqx.field(default=(0.0, 0.0, 1.0), converter=jnp.asarray)
    closed_form_i4: ClassVar[bool] = True  # exact by quadrature: the I_4 sum, not the joint rule

    @property
    def degree(self) -> int:
        return jnp.atleast_1d(self.coefficients).shape[-1] - 1

    def __call__(self, x):
        return hermite_series(self.coefficients, x)

    def derivative(self, x):
        c = jnp.atleast_1d(self.coefficients)
        if c.shape[-1] == 1:
            return jnp.zeros_like(x)
        return hermite_series(c[1:] * jnp.sqrt(jnp.arange(1, c.shape[-1], dtype=c.dtype)), x)

    @staticmethod
    def _order(total_degree: int) -> int:
        return max(1, (total_degree + 2) // 2)

    def i2(self, cov, other=None):
        if not self.same(other):
            return super().i2(cov, other)
        h = self if other is None else other
        order = self._order(self.degree + h.degree)
        return gaussian_expectation_nd(lambda x: self(x[..., 0]) * h(x[..., 1]), cov, order)

    def j2(self, cov):
        d = self.derivative
        order = self._order(2 * self.degree - 2)
        return gaussian_expectation_nd(lambda x: d(x[..., 0]) * d(x[..., 1]), cov, order)

    def i3(self, cov, other=None):
        if not self.same(other):
            return super().i3(cov, other)
        h = self if other is None else other

        def f(x):
            return self.derivative(x[..., 0]) * x[..., 1] * h(x[..., 2])

        return gaussian_expectation_nd(f, cov, self._order(self.degree + h.degree))

    def i4(self, cov, third=None, fourth=None):
        if not (self.same(third) and self.same(fourth)):
            return super().i4(cov, third, fourth)
        h3, h4 = (self if h is None else h for h in (third, fourth))
        d = self.derivative

        def f(x):
            return d(x[..., 0]) * d(x[..., 1]) * h3(x[..., 2]) * h4(x[..., 3])

        order = self._order(2 * self.degree - 2 + h3.degree + h4.degree)
        return gaussian_expectation_nd(f, cov, order)


def _grid(*axes):
    """All index tuples of the product of ``axes``, stacked on a last axis."""
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), -1)


def _submatrices(omega, index):
    """``omega[index_i, index_j]`` for the last axis of ``index``: shape ``index.shape + (p,)``."""
    return omega[index[..., :, None], index[..., None, :]]


class CommitteeMoments(eqx.Module):
    r"""The Gaussian moments of the square-loss gradient of a committee machine, from ``I_2, J_2,
    I_3, I_4``.

    The fields ``u`` are jointly Gaussian with covariance ``omega`` (``n x n``, ``n >= K + M``): the
    first ``K`` are the student's (activation ``g``), the next ``M`` the teacher's (``g_star``), any
    further ones are other linear functions of the input (the directions a low-rank adapter moves
    along). With readout weights ``c`` on the first ``K + M`` fields (``c = (a, -b)``) the error of
    the output is ``Delta = sum_alpha c_alpha h_alpha(u_alpha)`` (``h = g`` on students, ``g*`` on
    teachers), and

    .. math::
        E[\Delta\, g'(u_k)\, u_j] = \sum_\alpha c_\alpha I_3(u_k, u_j, u_\alpha),\quad
        E[\Delta\, g(u_k)] = \sum_\alpha c_\alpha I_2(u_k, u_\alpha),\quad
        E[\Delta^2 g'(u_k) g'(u_l)] = \sum_{\alpha\beta} c_\alpha c_\beta I_4(u_k, u_l, u_\alpha, u_\beta),

    ``E[g'(u_k) g'(u_l)] = J_2`` and ``E[Delta^2] = sum_ab c_a c_b I_2(u_a, u_b)``. Where ``g`` has no
    closed-form ``I_4``, or ``g*`` is another activation, the last moment is one product Gauss-Hermite rule over the ``K + M`` fields
    (``min(joint_order, joint_nodes^(1/(K+M)))`` nodes per axis), which vanishes exactly, node by
    node, where the student reproduces the teacher.
    """

    g: Activation
    g_star: Activation
    K: int = eqx.field(static=True)
    M: int = eqx.field(static=True)
    joint_order: int = eqx.field(default=24, static=True)
    joint_nodes: int = eqx.field(default=2**20, static=True)

    def by_field(self, integral, omega, *axes):
        """``integral(C, h)`` on the submatrices of ``omega`` over ``axes + (fields,)``, the last
        field carrying the activation ``h`` of its side: ``g`` for students, ``g*`` for teachers."""
        students, teachers = jnp.arange(self.K), jnp.arange(self.K, self.K + self.M)
        parts = [
            integral(_submatrices(omega, _grid(*axes, side)), h)
            for side, h in ((students, self.g), (teachers, self.g_star))
        ]
        return jnp.concatenate(parts, -1)

    def drift(self, omega, c, fields):
        """``E[Delta g'(u_k) u_j]`` for the students ``k`` and the fields ``j`` (indices into
        ``omega``): ``(K, len(fields))``."""
        i3 = self.by_field(self.g.i3, omega, jnp.arange(self.K), fields)
        return jnp.einsum("kja,a->kj", i3, c)

    def output(self, omega, c):
        """``E[Delta g(u_k)]`` for the students ``k`` (``(K,)``)."""
        return self.by_field(self.g.i2, omega, jnp.arange(self.K)) @ c

    def slopes(self, omega):
        """``J_2 = E[g'(u_k) g'(u_l)]`` (``(K, K)``)."""
        students = jnp.arange(self.K)
        return self.g.j2(_submatrices(omega, _grid(students, students)))

    def squared_error(self, omega, c):
        """``E[Delta^2 g'(u_k) g'(u_l)]`` (``(K, K)``): the sum of ``I_4``'s where ``g`` has them in
        closed form (``g* = g``), otherwise one product rule over the ``K + M`` fields (``x = L z``)."""
        K, n = self.K, self.K + self.M
        g = self.g
        if g.closed_form_i4 and g.same(self.g_star):
            students = jnp.arange(K)
            sides = ((jnp.arange(K), g), (jnp.arange(K, n), self.g_star))
            i4 = jnp.concatenate([
                jnp.concatenate([
                    g.i4(_submatrices(omega, _grid(students, students, a, b)), h_a, h_b)
                    for b, h_b in sides
                ], -1)
                for a, h_a in sides
            ], -2)
            return jnp.einsum("klab,a,b->kl", i4, c, c)
        order = max(3, min(self.joint_order, int(self.joint_nodes ** (1 / n))))
        z, w = product_rule(n, order, omega.dtype)
        x = z @ psd_cholesky(omega[:n, :n]).T
        error = g(x[:, :K]) @ c[:K] + self.g_star(x[:, K:]) @ c[K:]
        slopes = g.derivative(x[:, :K])
        return jnp.einsum("N,N,Nk,Nl->kl", w, error**2, slopes, slopes)

    def error_terms(self, omega, c):
        """``c_a c_b I_2(u_a, u_b) / 2``: the ``(K + M)^2`` terms whose sum is ``E[Delta^2] / 2``."""
        students, teachers = jnp.arange(self.K), jnp.arange(self.K, self.K + self.M)
        i2 = jnp.concatenate([
            self.by_field(self.g.i2, omega, students),
            self.by_field(self.g_star.i2, omega, teachers),
        ], 0)
        return 0.5 * c[:, None] * i2 * c[None, :]

    def rounding(self, omega, c):
        """The rounding level of :meth:`error`: ``(K + M)^2 eps sum_ab |c_a c_b I_2| / 2``.

        The error is a sum of terms of order one that cancel as the student learns the teacher, so
        it is known only to this absolute accuracy."""
        terms = self.error_terms(omega, c)
        return terms.size * jnp.finfo(terms.dtype).eps * jnp.sum(jnp.abs(terms))

    def error(self, omega, c):
        """``E[Delta^2] / 2``, a sum within :meth:`rounding` of zero or below it reported as ``0``; a
        value further below zero is kept (``omega`` then is no covariance)."""
        total = jnp.sum(self.error_terms(omega, c))
        return jnp.where(total > -self.rounding(omega, c), jnp.maximum(total, 0.0), total)


def _sigmoid(x):
    return jax.nn.sigmoid(x)


ACTIVATIONS = {
    "erf": Erf,
    "erf-z": lambda: Erf(scale=1.0),
    "relu": ReLU,
    "linear": Linear,
    "tanh": lambda: Numerical(fn=jnp.tanh),
    "sigmoid": lambda: Numerical(fn=_sigmoid),
    "hermite": Hermite,
}
"""Activations by name (``erf``: ``erf(z / sqrt 2)``; ``erf-z``: ``erf(z)``); ``erf``, ``erf-z``,
``relu`` and ``linear`` have closed forms, the others quadrature
(``hermite``: the polynomial of its coefficients, exact; a committee machine takes them as ``student``)."""
