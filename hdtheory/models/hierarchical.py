r"""Hierarchical multi-index model: directions learned one after another, and the scaling law of the
error against the sample ratio, from a decoupled state evolution of Bayes-optimal AMP.

**Setting** (the hierarchical multi-index model of Defilippis, Krzakala, Loureiro and Maillard 2026,
"Optimal scaling laws in learning hierarchical multi-index models", and their noise-sensitivity paper,
arXiv:2603.17896). ``n = alpha d`` inputs ``x ~ N(0, I_d)``, ``p`` teacher directions ``w_k*`` with
i.i.d. ``N(0, 1)`` entries (fields ``z_k = w_k*.x / sqrt(d)``, independent ``N(0, 1)``), and labels

.. math:: y = \sum_{k=1}^p a_k \sigma(z_k) + \sqrt{\Delta}\, \xi, \qquad
          a_k^2 = \frac{k^{-2\gamma}}{\sum_{j=1}^p j^{-2\gamma}}, \quad \gamma > 1/2,

so that ``sum_k a_k^2 = 1`` (the papers' ``a_k = k^-gamma``, unnormalised, is this with the label and
``Delta`` scaled by ``sum_j j^-2gamma``, which tends to ``zeta(2 gamma)`` as ``p -> inf``). ``sigma``
(``link``): ``he2`` ``z^2 - 1``, ``abs`` ``|z|``, ``he4`` ``z^4 - 6 z^2 + 3``, or ``custom``, a Python
function ``link_fn`` of an array of fields, elementwise (checked when the model is built, on three points:
it must trace with JAX and return one finite value per field); ``Delta`` (``noise``) is a variance, ``> 0``. The statistician
knows ``sigma``, the ``a_k`` and ``Delta``, and the prior ``N(0, 1)`` of the weights.

**Decoupled state evolution** (derived here, the papers' large-``p`` picture: each direction sees the
others as noise). Direction ``k`` has overlap ``m_k = E[w_hat_k . w_k*] / d``; its estimate of the field
is ``omega_k = sqrt(m_k) xi``, with posterior variance ``V_k = 1 - m_k``. Given the others' estimates,
the label is ``a_k sigma(z_k)`` plus their known parts ``a_j E[sigma(z_j) | omega_j, V_j]`` (subtracted),
plus their residuals ``a_j (sigma(z_j) - E[sigma(z_j) | omega_j, V_j])`` and the noise. The residuals
are independent with variance ``a_j^2 Var[sigma(z_j) | omega_j, V_j]``; over many directions (the
central limit theorem, as ``p -> inf`` where no ``a_j^2`` dominates their sum) their sum is Gaussian
of variance ``sum_{j != k} a_j^2 v_j``, ``v_j = E_omega Var[sigma(z_j) | omega_j, V_j]``. Direction ``k``
then sees the single-index channel ``y_k = sigma(z_k) + sqrt(s_k) xi`` (the label divided by ``a_k``:
the channel's updates do not change under a rescaling of the label) with

.. math:: s_k = \frac{\Delta + \sum_{j \neq k} a_j^2 v_j}{a_k^2}, \qquad
          \hat m_k = \alpha\, \hat G(m_k; s_k), \qquad m_k = \frac{\hat m_k}{1 + \hat m_k},

``G_hat(m; s) = E g_out^2`` the conjugate of the Bayes-optimal single-index state evolution at unit
``alpha`` for ``sigma`` with noise variance ``s`` (:meth:`~hdtheory.MultiIndex.conjugate` at ``k = 1``
with the ``custom`` link, its rules, and
:meth:`~hdtheory.MultiIndex.gen_errors` for ``v``), and the last equation the Gaussian prior's
denoiser. The map is one vectorised update over the ``p`` directions (``vmap``); they interact only
through ``sum_j a_j^2 v_j``. At ``p = 1`` it is :class:`~hdtheory.MultiIndex` at ``k = 1`` with
``noise = Delta`` exactly. The first directions (``a_1^2`` a finite part of the sum) are where the
Gaussian picture of the residual is an approximation; the scaling laws come from the many weak
directions, where it holds.

**Sequential learning.** For the even links (``E[sigma(z) z] = 0``: the three named ones) ``m_k = 0``
is a fixed point, unstable for ``alpha`` above the direction's AMP threshold

.. math:: \alpha_k = 1 / \lambda(s_k), \qquad \lambda(s) = \mathbb{E}_y\, \mathbb{E}[z^2 - 1 \mid y]^2

at ``m = 0`` (the slope of ``G_hat(m; s_k)`` there, :meth:`~hdtheory.MultiIndex.weak_recovery`'s
``1 / alpha_c`` at ``k = 1``, without its cutoff at ``1e-10``), evaluated at the state's
``s_k``: the unlearned directions hold ``s_k`` up, so that the directions are learned one after another.
The noise sensitivity exponent ``beta*`` of ``sigma`` (the smallest ``b`` with
``E[sigma^b (z^2 - 1)] != 0``; 1 for ``z^2 - 1`` and ``|z|``, 2 for ``He4``) sets
``lambda(s) ~ s^-beta*`` at large ``s``, so that where ``Delta`` dominates the residual variance
``alpha_k ~ (Delta k^(2 gamma))^beta*`` (the law stated for this model in the noise-sensitivity
paper, read from a public summary of it; ``tests/test_hierarchical.py`` fits the exponent over
``k = 10..100``), and the excess error, the unlearned tail ``sum_{k > k*} a_k^2 Var sigma ~ k*^(1 - 2 gamma)``
with ``k* ~ alpha^(1 / (2 gamma beta*))`` (the learned directions add ``~ Delta / alpha`` each), follows
``alpha^(-(1 - 1/(2 gamma)) / beta*)``, the AMP scaling law of the same summary (measured, not in the
suite: for ``z^2 - 1`` at ``gamma = 1.5``, ``Delta = 1``, ``p = 64`` the exponent fitted over
``alpha = 10..3000`` is -0.692 against -0.667, -0.726 over the first decade and -0.674 over the last;
plain iteration, ``Damped(0.0)``, converges there in at most 720 steps, Newton's method creeps near
the thresholds; for ``He4`` at ``gamma = 1.5``, ``Delta = 1e5``, ``p = 64``, ``alpha = 1e7..1e12``,
-0.325 against -0.333, three of the six points stopped at 4000 steps with residuals 1e-9 to 9e-8). With ``Delta -> 0`` the
unlearned tail, ``~ k^(1 - 2 gamma)``, is the noise instead, and the same map gives
``alpha_k ~ k^beta*``.

**Accuracy.** The channel is :class:`~hdtheory.MultiIndex`'s ``custom`` link at ``k = 1``: the posterior of
the field given a label on Gauss-Legendre panels at the label's preimages under ``sigma``
(:mod:`~hdtheory.kernels.preimages`; within 1e-8 of SciPy's ``quad`` at noises 0.1 to 1, where the former
Gauss-Hermite rule, which needed the likelihood's width ``sqrt(s) / |sigma'(z)|`` above its nodes' spacing,
was percents off at ``s`` of order one), and a label rule that reaches the tails of a polynomial ``sigma``.
Every solve checks the posterior rule against twice its order (``quadrature_error``, below), so that
where it is off, ``G_hat`` or a threshold ``alpha_k`` by more than 5e-3, the solve ends ``INACCURATE``. ``alpha_k`` is the slope of the map at ``m = 0``, exact on any symmetric rule in ``omega``.

**Start.** ``init("uninformed")``: every ``m_k = 1e-6`` (``1e-3`` in float32), the small symmetric
breaking overlap with which the papers run AMP's state evolution (a start at ``m = 0`` stays there for
the even links); :func:`~hdtheory.solve` follows the iteration's flow from it (``monotone``). The solver
works on ``log(1 - m_k)``; ``m_k < 0`` (a step past the trivial point) is read as ``0``. Derivatives of
the channel in ``m`` are taken at ``max(m, 1e-9)`` (at ``m = 0`` the ``sqrt(m)`` of the quadrature
nodes has none; the map is smooth in ``m`` there), the value continued linearly from there.

**Observables.** ``m`` (``p`` overlaps, direction ``k`` at index ``k - 1``, along the axis
``direction`` of a :func:`~hdtheory.sweep`); ``alpha_k``, the thresholds above; ``channel_noise``, the
``s_k`` (both along ``direction`` too); ``learned``, the number of directions with ``alpha > alpha_k``;
``gen_error``, the excess risk of the Bayes-optimal prediction
``sum_k a_k E[sigma(z_k) | omega_k, V_k]``, ``sum_k a_k^2 v_k``, and ``gen_error_total`` with ``Delta``
(no 1/2); ``quadrature_error``, the largest over the directions of the channel's estimated error of
``G_hat`` (``multi-index``'s): beyond ``multi-index``'s ``quadrature_tol`` a solve ends ``INACCURATE``, not
converged (a channel whose noise is small for its rule's order).
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._theory import POSITIVE, FixedPointTheory, Interval, ParameterError, check_function, check_integer, choice, integer, parameter
from ._overlap import UNINFORMED
from .multi_index import MultiIndex


def _he2(z):
    return z**2 - 1


def _he4(z):
    return z**4 - 6 * z**2 + 3


LINKS = {"he2": "z^2 - 1", "abs": "|z|", "he4": "z^4 - 6 z^2 + 3 (He4)", "custom": "the Python function link_fn"}
"""The links ``sigma`` by name."""
_FUNCTIONS = {"he2": _he2, "abs": jnp.abs, "he4": _he4}
_TINY = 1e-9
"""The channel's derivatives in ``m`` are taken at ``max(m, _TINY)``; see the module docstring."""
_TRIVIAL = 1e-10
"""``G_hat(0; s)`` above this: the direction is learned at any ``alpha`` (zero up to rounding otherwise)."""


class _OnField(NamedTuple):
    """``sigma`` of a scalar field as a link of ``k = 1`` fields (``(..., 1)`` to ``(...)``)."""

    fn: Callable

    def __call__(self, z):
        return self.fn(z[..., 0])


class _Channel(NamedTuple):
    """The single-index channel's static configuration: the link and the quadrature orders."""

    link: _OnField
    order: int
    label_order: int
    inner_order: int

    def at(self, noise) -> MultiIndex:
        """:class:`~hdtheory.MultiIndex` at ``k = 1``, ``alpha = 1``, for the noise variance ``noise``."""
        return MultiIndex(
            alpha=jnp.ones((), noise.dtype), noise=noise, link="custom", k=1, link_fn=self.link,
            order=self.order, label_order=self.label_order, inner_order=self.inner_order,
        )


def _smooth_at_zero(values):
    """``values(channel, x)``, ``x = (m, ...)``, differentiated at ``max(m, _TINY)`` and continued
    linearly below it (see the module docstring)."""
    f = jax.custom_jvp(values, nondiff_argnums=(0,))

    @f.defjvp
    def _(channel, primals, tangents):
        (x,), (dx,) = primals, tangents
        shifted = x.at[0].set(jnp.maximum(x[0], _TINY))
        J, value = jax.jacfwd(lambda x: (values(channel, x),) * 2, has_aux=True)(shifted)
        return value + J[..., 0] * (x[0] - shifted[0]), J @ dx

    return f


@_smooth_at_zero
def _conjugate(channel: _Channel, x):
    """``G_hat(m; s)`` at ``x = (m, s)``."""
    return channel.at(x[1]).conjugate(jnp.reshape(x[0], (1, 1)))[0, 0]


@_smooth_at_zero
def _variance(channel: _Channel, x):
    """``v(m) = E_omega Var[sigma(z) | omega, 1 - m]`` at ``x = (m,)`` (it does not depend on the noise)."""
    return channel.at(jnp.ones((), x.dtype)).gen_errors(jnp.reshape(x[0], (1, 1)))[0]


class HierarchicalMultiIndex(FixedPointTheory):
    """Hierarchical multi-index model: decoupled state evolution over ``p`` directions; see the module
    docstring."""

    alpha: jax.Array = parameter(1.0, POSITIVE, "sample ratio n/d")
    noise: jax.Array = parameter(1.0, POSITIVE, "label noise variance Delta")
    gamma: jax.Array = parameter(1.0, Interval(0.5, low_open=True), "decay of the strengths a_k ~ k^-gamma")
    p: int = integer(100, Interval(1.0), "number of directions p")
    link: str = choice("he2", LINKS, "link sigma of each direction's field")
    link_fn: Callable | None = eqx.field(default=None, static=True)
    order: int = eqx.field(default=0, static=True)
    """Gauss-Hermite nodes in ``omega`` (and the teacher's field) of the single-index channel; 0: 48."""
    label_order: int = eqx.field(default=0, static=True)
    """Gauss-Legendre nodes per panel of the channel's label rule; 0: 8."""
    inner_order: int = eqx.field(default=0, static=True)
    """Gauss-Legendre nodes per panel of the channel's posterior (panels at the label's preimages); 0: 8."""

    monotone = True
    observable_dims = {"m": ("direction",), "alpha_k": ("direction",), "channel_noise": ("direction",)}

    def __check_init__(self):
        if (self.link == "custom") != (self.link_fn is not None):
            raise ParameterError("parameter 'link_fn' must be given exactly when link='custom'")
        if self.link == "custom":
            check_function("link_fn", self.link_fn, (3,), (3,), "the fields, elementwise (an array to one of its shape)")
        for name in ("order", "label_order", "inner_order"):
            check_integer(name, getattr(self, name), Interval(0.0))
            if getattr(self, name) == 1:
                raise ParameterError(f"parameter {name!r} must be 0 (the default) or an integer >= 2, got 1")

    @property
    def _channel(self) -> _Channel:
        fn = self.link_fn if self.link == "custom" else _FUNCTIONS[self.link]
        return _Channel(_OnField(fn), self.order, self.label_order, self.inner_order)

    def _dtype(self):
        return jnp.result_type(self.alpha, self.noise, self.gamma, float)

    def strengths(self) -> jax.Array:
        """``a_k^2``, ``k = 1..p``, normalised to sum to one."""
        k = jnp.arange(1, self.p + 1, dtype=self._dtype())
        a2 = k ** (-2 * self.gamma)
        return a2 / jnp.sum(a2)

    def channel_noise(self, m) -> jax.Array:
        """``s_k = (Delta + sum_{j != k} a_j^2 v_j) / a_k^2``."""
        channel, a2 = self._channel, self.strengths()
        v = jax.vmap(lambda m: _variance(channel, m[None]))(_nonnegative(m))
        return (self.noise + jnp.sum(a2 * v) - a2 * v) / a2

    # The protocol.

    def init(self, kind: str = "uninformed") -> jax.Array:
        dtype = self._dtype()
        small = UNINFORMED[jnp.finfo(dtype).bits]
        return jnp.full(self.p, {"uninformed": small, "informed": 1.0 - small}[kind], dtype)

    def unconstrain(self, m) -> jax.Array:
        return jnp.log1p(-m)

    def constrain(self, u) -> jax.Array:
        return -jnp.expm1(u)

    def update(self, m) -> jax.Array:
        """``m_k = mhat_k / (1 + mhat_k)``, ``mhat_k = alpha G_hat(m_k; s_k)``."""
        channel = self._channel
        s = self.channel_noise(m)
        mhat = self.alpha * jax.vmap(lambda m, s: _conjugate(channel, jnp.stack([m, s])))(_nonnegative(m), s)
        return mhat / (1 + mhat)

    def thresholds(self, m) -> jax.Array:
        """``alpha_k = 1 / lambda(s_k)`` at the state's ``s_k``: ``lambda`` the slope of ``G_hat(m; s_k)``
        at ``m = 0``, the linearisation of the map about the trivial point with ``s_k`` held (``inf``
        where it is zero; ``0`` where ``G_hat(0; s_k) > 0``, a direction learned at any ``alpha``)."""
        channel = self._channel

        def one(s):
            G = lambda m: _conjugate(channel, jnp.stack([m, s]))
            value, slope = jax.jvp(G, (jnp.zeros_like(s),), (jnp.ones_like(s),))
            flat = slope <= 0
            return jnp.where(value > _TRIVIAL, 0.0, jnp.where(flat, jnp.inf, 1 / jnp.where(flat, 1.0, slope)))

        return jax.vmap(one)(self.channel_noise(m))

    def gen_errors(self, m) -> tuple[jax.Array, jax.Array]:
        """``(sum_k a_k^2 v_k, the same plus Delta)``."""
        channel = self._channel
        v = jax.vmap(lambda m: _variance(channel, m[None]))(_nonnegative(m))
        excess = jnp.sum(self.strengths() * v)
        return excess, excess + self.noise

    def quadrature_error(self, m) -> jax.Array:
        """The largest over the directions of the channel's estimated relative error of ``G_hat`` at
        ``(m_k, s_k)`` (:meth:`~hdtheory.MultiIndex.quadrature_error`: its Hermite rule in ``omega`` at two orders, its
        posterior rule against twice its order, for ``G_hat`` and the slope at ``m = 0``),
        large where a channel's noise is small."""
        channel = self._channel
        one = lambda m, s: channel.at(s).quadrature_error(jnp.reshape(m, (1, 1)))
        return jnp.max(jax.vmap(one)(_nonnegative(m), self.channel_noise(m)))

    def accurate(self, m, observables) -> jax.Array:
        """``quadrature_error`` within ``multi-index``'s ``quadrature_tol``: beyond it a solve reports
        ``INACCURATE``, not converged."""
        return observables["quadrature_error"] <= MultiIndex.__dataclass_fields__["quadrature_tol"].default

    def observables(self, m) -> dict[str, jax.Array]:
        alpha_k = self.thresholds(m)
        gen_error, gen_error_total = self.gen_errors(m)
        return {
            "m": _nonnegative(m),
            "alpha_k": alpha_k,
            "channel_noise": self.channel_noise(m),
            "learned": jnp.sum(self.alpha > alpha_k).astype(m.dtype),
            "gen_error": gen_error,
            "gen_error_total": gen_error_total,
            "quadrature_error": self.quadrature_error(m),
        }


def _nonnegative(m):
    """``m``, with a step past the trivial point (``m < 0``) read as ``0`` (slope one at ``0``)."""
    return jnp.where(m >= 0, m, 0.0)

