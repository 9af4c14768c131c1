r"""LoRA fine-tuning of a pre-trained single-index model by online SGD (rank one).

**Setting** (Nwemadji, Loureiro & Barbier 2026, "When pre-training hurts LoRA fine-tuning: a
dynamical analysis via single-index models"). Inputs ``x ~ N(0, I_d)``, target
``y = f*(nu) + sqrt(noise) zeta`` with ``nu = w*.x / sqrt(d)``, ``|w*|^2 = d``. The pre-trained
weight is frozen, ``w0 = mu w* + tau xi`` with ``xi`` orthogonal to ``w*``, ``|xi|^2 = d``:
``mu`` is its alignment with the new task and ``tau`` its component elsewhere (the paper's two
initialisations are ``w0 = mu w*``, ``tau = 0``, and ``w0 = mu w* + (1 - mu) xi``). The fine-tuned
weight is ``w = w0 + a v`` with a rank-one adapter: a direction ``v`` on the sphere ``|v|^2 = d``
and a scale ``a``; the student is ``y_hat = f(lambda)``, ``lambda = w.x / sqrt(d)``, square loss
``(y_hat - y)^2 / 2``; link and activation are Hermite series as in
:mod:`~hdtheory.dynamics.single_index`. Mini-batch SGD on ``(a, v)`` with ``b = batch`` fresh
samples per step, ``g_i = Delta_i f'(lambda_i)``, ``rho_i = v.x_i / sqrt(d)``:

.. math::
    v \leftarrow \sqrt{d}\,\frac{v'}{|v'|},\quad v' = v - \frac{\mathrm{lr}(t)}{b} \sum_i a\, g_i \frac{x_i}{\sqrt d},
    \qquad a \leftarrow a - \frac{r\, \mathrm{lr}(t)}{b d} \sum_i g_i \rho_i,

``r = scale_lr``, both from the same gradient. The ``1 / d`` of the scale's step is the scaling of a
second-layer weight in the committee machines (Saad & Solla 1995): it moves ``a`` by ``O(1)`` per
``d`` samples, on the time scale of the overlaps; in the paper's normalisation
(``|v| = 1``, field ``x.v``, same learning rate ``lr / d`` for ``U`` and ``V``) this is
``scale_lr = 1``. ``scale_lr = 0`` freezes the scale: with ``mu = tau = 0`` and ``a0 = 1`` this is
spherical online SGD on ``v`` itself, :class:`~hdtheory.dynamics.SingleIndex`.

**ODEs** (``d -> infinity`` at fixed ``b``; derived here and checked against finite-``d``
simulation). Summary statistics ``m = v.w*/d``, ``n = v.xi/d`` and ``a``. The fields
``(nu, chi = xi.x/sqrt(d), rho)`` are standard Gaussians with ``E[nu chi] = 0``, ``E[rho nu] = m``,
``E[rho chi] = n``, and ``lambda = mu nu + tau chi + a rho``, so ``(lambda, nu)`` is Gaussian with
``E[lambda nu] = M = mu + a m`` and ``Var(lambda | nu) = (tau + a n)^2 + a^2 (1 - m^2 - n^2)``.
Gaussian integration by parts (Stein's lemma) reduces every moment to two expectations over that
pair, ``A = E[d g / d lambda] = E[f'(lambda)^2 + Delta f''(lambda)]`` and
``B = E[d g / d nu] = -E[f*'(nu) f'(lambda)]``:
``E[g nu] = M A + B``, ``E[g chi] = (tau + a n) A``, ``E[g rho] = (mu m + tau n + a) A + m B``.
With ``eta = lr(t) / b`` and ``C = E[(Delta^2 + noise) f'(lambda)^2]``,

.. math::
    \frac{dm}{dt} = -\eta a (E[g\nu] - m E[g\rho]) - \frac{\eta^2 a^2}{2} m C, \qquad
    \frac{dn}{dt} = -\eta a (E[g\chi] - n E[g\rho]) - \frac{\eta^2 a^2}{2} n C, \qquad
    \frac{da}{dt} = -r \eta E[g\rho].

The adapter moves ``v`` only through ``a``: from the paper's start ``a0 ~ 0`` (``U = d^-2``) the
scale must first grow through ``E[g rho]``, which at an uninformed ``v`` (``m, n ~ d^-1/2``) is
itself of order ``m``. With ``w0 = mu w*`` and ``f = f*``, the pre-trained error ``Delta`` at
``a = 0`` shrinks as ``mu -> 1``, and with it every drift: strong pre-training lengthens the search
phase (the paper's "pre-training hurts"). Expectations are a product Gauss-Hermite rule over
``nu`` and two independent Gaussians carrying ``lambda - M nu = (tau + a n) xi_1 +
a sqrt(1 - m^2 - n^2) xi_2`` (:func:`~hdtheory.dynamics.single_index.expect_pair`), exact for
these polynomial integrands at the default ``order`` (``2 (p + 1)`` nodes per axis, ``p`` the
largest degree). The coefficients are linear in ``tau`` and ``a``, so values and derivatives are
exact also at the paper's degenerate start ``tau = 0``, ``a = 0`` (``lambda`` proportional to
``nu``), where a square root of ``Var(lambda | nu)`` would have an infinite derivative; only
``m^2 + n^2 = 1`` (``v`` in the plane of ``w*`` and ``xi``) has such a root, whose derivative
there is taken as zero.

**Observables.** ``eg = E[(f(lambda) - f*(nu))^2] / 2`` (no label noise), ``m``, ``n``, ``a``,
the fine-tuned weight's ``m_w = w.w*/d = mu + a m``, ``q = |w|^2/d``, its cosine with the target
``overlap = m_w / sqrt(q)``, and ``iterations = t / b``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import NONNEGATIVE, Interval, ParameterError, integer, parameter
from ..kernels import hermite_series
from ._schedule import Scheduled
from .single_index import check_coefficients, expect_pair, guarded_sqrt


class LoRAState(eqx.Module):
    """``m = v.w*/d``, ``n = v.xi/d`` (the adapter's direction) and the adapter's scale ``a``."""

    m: jax.Array
    n: jax.Array
    a: jax.Array


def hermite_derivative(coefficients) -> jax.Array:
    """The Hermite coefficients of the derivative: ``(He_k / sqrt(k!))' = sqrt(k) He_{k-1} /
    sqrt((k-1)!)``."""
    c = jnp.atleast_1d(coefficients)
    if c.shape[-1] == 1:
        return jnp.zeros_like(c)
    return jnp.sqrt(jnp.arange(1, c.shape[-1], dtype=c.dtype)) * c[..., 1:]


class LoRA(Scheduled):
    """Rank-one LoRA fine-tuning of a pre-trained single-index model; see the module docstring."""

    target: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f*")
    student: jax.Array = parameter((0.0, 0.0, 0.0, 1.0), Interval(), "Hermite coefficients of f")
    mu: jax.Array = parameter(0.5, Interval(), "pre-trained weight's overlap w0.w*/d")
    tau: jax.Array = parameter(0.0, NONNEGATIVE, "pre-trained weight's component off w*: w0 = mu w* + tau xi")
    scale_lr: jax.Array = parameter(1.0, NONNEGATIVE, "step of the scale a over lr / d (1: the paper's equal rates)")
    batch: int = integer(1, Interval(1), "mini-batch size b (samples per step)")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label-noise variance")
    m0: jax.Array = parameter(0.01, Interval(-1.0, 1.0), "initial adapter overlap v.w*/d")
    n0: jax.Array = parameter(0.0, Interval(-1.0, 1.0), "initial adapter overlap v.xi/d")
    a0: jax.Array = parameter(0.0, Interval(), "initial adapter scale a (w = w0 + a v)")
    order: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_coefficients(self, ("target", "student"))
        concrete = not any(isinstance(x, jax.core.Tracer) for x in (self.m0, self.n0))
        if concrete and np.any(np.asarray(self.m0) ** 2 + np.asarray(self.n0) ** 2 > 1):
            raise ParameterError("parameters 'm0', 'n0' must satisfy m0^2 + n0^2 <= 1 (overlaps of a unit direction)")

    @property
    def exact_order(self) -> int:
        """``2 (p + 1)``: nodes per axis exact for every moment of degree-``p`` link and activation."""
        return 2 * max(jnp.atleast_1d(c).shape[-1] for c in (self.target, self.student))

    def _pair(self, state: LoRAState):
        """``M = E[lambda nu]`` and the coefficients of ``lambda - M nu`` on two independent standard
        Gaussians, ``tau + a n`` and ``a sqrt(1 - m^2 - n^2)``."""
        m_w = self.mu + state.a * state.m
        rest = guarded_sqrt(1 - state.m**2 - state.n**2)
        return m_w, (self.tau + state.a * state.n, state.a * rest)

    def _expect(self, fn, state):
        m_w, spread = self._pair(state)
        return expect_pair(fn, m_w, spread, self.order or self.exact_order)

    def init(self) -> LoRAState:
        dtype = jnp.result_type(self.lr, self.m0, self.n0, self.a0, float)
        return LoRAState(*(jnp.asarray(x, dtype) for x in (self.m0, self.n0, self.a0)))

    def vector_field(self, t, state: LoRAState) -> LoRAState:
        eta = self.lr * self.rate(t) / self.batch
        f1, f2 = hermite_derivative(self.student), hermite_derivative(hermite_derivative(self.student))
        target_slope = hermite_derivative(self.target)

        def moments(lam, nu):
            delta = hermite_series(self.student, lam) - hermite_series(self.target, nu)
            slope = hermite_series(f1, lam)
            return jnp.stack([
                slope**2 + delta * hermite_series(f2, lam),
                -hermite_series(target_slope, nu) * slope,
                (delta**2 + self.noise) * slope**2,
            ], -1)

        A, B, C = self._expect(moments, state)
        m, n, a = state.m, state.n, state.a
        m_w = self.mu + a * m
        g_nu = m_w * A + B
        g_chi = (self.tau + a * n) * A
        g_rho = (self.mu * m + self.tau * n + a) * A + m * B
        ito = 0.5 * (eta * a) ** 2 * C
        return LoRAState(
            m=-eta * a * (g_nu - m * g_rho) - ito * m,
            n=-eta * a * (g_chi - n * g_rho) - ito * n,
            a=-self.scale_lr * eta * g_rho,
        )

    def observables(self, t, state: LoRAState) -> dict[str, jax.Array]:
        error = lambda lam, nu: (hermite_series(self.student, lam) - hermite_series(self.target, nu)) ** 2
        m_w, spread = self._pair(state)
        q = m_w**2 + spread[0] ** 2 + spread[1] ** 2
        return {
            "eg": 0.5 * self._expect(error, state),
            "m": state.m,
            "n": state.n,
            "a": state.a,
            "m_w": m_w,
            "q": q,
            "overlap": m_w / jnp.sqrt(q),
            "iterations": t / self.batch,
        }
