r"""Sample weights of resampling schemes, and the channel side of two learners trained on one data set.

**Weights.** Resampling a data set is weighting its samples: learner ``a`` minimises
``sum_i p_i l(y_i, w.x_i / sqrt(d)) + (lam / 2) |w|^2`` with i.i.d. weights ``p_i`` from a law on
finitely many values (:class:`WeightLaw`): ``Poisson(1)`` for the pairs bootstrap (the counts of
``n`` draws with replacement among ``n`` samples are multinomial, Poisson(1) in the limit
``n -> infinity``), ``Bernoulli(f)`` for subsampling a fraction ``f`` of the samples, ``1`` for the
plain estimator. The weighted loss ``p l`` has the prox ``prox_{p V l}`` (step ``p V``), so that the
output function of a learner with weight ``p`` is

.. math:: f_p(y, \omega, V) = \frac{\mathrm{prox}_{p V l(y, \cdot)}(\omega) - \omega}{V},

zero at ``p = 0`` (a sample left out does not move its field). :func:`weighted_output` averages
``f_p`` and ``f_p^2`` over ``p``.

**Two learners on the same data** (Loureiro et al. 2022, "Fluctuations, bias, variance & ensemble
of learners"; Clarté et al. 2024, "Analysis of bootstrap and subsampling in high-dimensional
regularized regression"): the fields of a sample under the teacher and the two learners,
``(z, omega_a, omega_b)``, are jointly Gaussian with covariance
``[[rho, m_a, m_b], [m_a, q_a, q_ab], [m_b, q_ab, q_b]]``; their weights ``p_a, p_b`` are
independent of each other and of the data. The cross conjugate is
``qhat_ab = alpha E[f_a f_b]`` (:func:`cross_average` computes the expectation), and, since the
weights enter only through ``f``, the average over them factorises into the product of the two
learners' averaged outputs ``E_p f``. Learners on independent data sets have ``qhat_ab = 0``.

**Shared inputs, fresh label noise** (Loureiro et al. 2022's variances over the data and the noise):
two learners trained on the same inputs with labels ``y_a, y_b`` drawn independently from
``P(y | z)`` given the same teacher field have ``qhat_ab = alpha E[f_a(y_a, omega_a) f_b(y_b,
omega_b)]``, in which the labels average out separately given ``z`` (``independent_labels=True``
of :func:`cross_average`, :func:`piecewise_cross_average` and :func:`cross_conjugate`). The square
loss sees the labels through ``E[y_a y_b]`` alone (:func:`label_correlation`): ``E[(E[y | z])^2]``
instead of ``E y^2``, ``rho`` instead of ``rho + noise`` for the linear teacher. For a noiseless
teacher the two labels are one and the two cases coincide.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .channels import Sign
from .multivariate import psd_cholesky
from .quadrature import _GAUSSIAN_EDGES, hermite_rule, panel_rule


_POISSON_VALUES = 20
"""Values ``0..19`` of the Poisson(1) law: the mass beyond, ``~ e^{-1} / 20!``, is below 1e-19."""


NON_CONVEX = {
    name: "a non-convex loss, whose prox jumps at large steps (where ERM's at_stability is inf and "
    "replica symmetry breaks); the equations of several learners need a single-valued prox"
    for name in ("tukey", "cauchy")
}
"""The losses of ERM that the models of several learners refuse, with the reason."""


class WeightLaw(eqx.Module):
    """A law of sample weights ``p >= 0`` on finitely many values: ``P(p = values[k]) = probabilities[k]``."""

    values: jax.Array
    probabilities: jax.Array

    @classmethod
    def poisson(cls, dtype=None) -> "WeightLaw":
        """``Poisson(1)`` (the pairs bootstrap), truncated to ``0..19`` and renormalised (the mass
        left out is below 1e-19, under float64 rounding)."""
        dtype = dtype or jnp.result_type(float)
        k = jnp.arange(_POISSON_VALUES, dtype=dtype)
        mass = jnp.asarray([math.exp(-1.0) / math.factorial(j) for j in range(_POISSON_VALUES)], dtype)
        return cls(values=k, probabilities=mass / jnp.sum(mass))

    @classmethod
    def bernoulli(cls, fraction) -> "WeightLaw":
        """``Bernoulli(fraction)`` (subsampling): weight one with probability ``fraction``, else zero."""
        fraction = jnp.asarray(fraction, jnp.result_type(fraction, float))
        return cls(values=jnp.asarray([0.0, 1.0], fraction.dtype), probabilities=jnp.stack([1 - fraction, fraction]))

    @classmethod
    def constant(cls, dtype=None) -> "WeightLaw":
        """Every weight one (the plain estimator)."""
        dtype = dtype or jnp.result_type(float)
        return cls(values=jnp.ones(1, dtype), probabilities=jnp.ones(1, dtype))

    def mean(self, fn):
        """``E_p fn(p)``, with ``p`` on a new trailing axis of ``fn``'s output."""
        return jnp.sum(self.probabilities * fn(self.values), axis=-1)


def weighted_output(loss, law: WeightLaw, y, omega, V):
    r"""``(E_p f_p, E_p f_p^2, E_p p l(y, z_p))`` at labels ``y`` and fields ``omega`` (broadcast
    together), ``V`` a scalar: the output function, its square and the weighted training loss.

    ``z_p = prox_{p V l(y, .)}(omega)`` and ``f_p = (z_p - omega) / V``, zero at ``p = 0``.
    """
    y, omega = jnp.broadcast_arrays(y, omega)
    y, omega = y[..., None], omega[..., None]
    p = law.values
    held = p > 0
    z = loss.prox(y, omega, jnp.where(held, p, 1.0) * V)
    f = jnp.where(held, (z - omega) / V, 0.0)
    weighted_loss = jnp.where(held, p * loss(y, z), 0.0)
    return tuple(jnp.sum(law.probabilities * values, -1) for values in (f, f**2, weighted_loss))


def _teacher_nodes(channel, rho, order: int, panel_order: int, dtype):
    """``(z, y, w_z, w_y)``: the teacher's field ``z`` and its weights ``w_z`` (``(T,)``), the labels
    ``y`` and their conditional weights ``w_y`` (``(T, L)``, summing to one over ``L``) of
    :func:`cross_average`'s outer rule."""
    tiny = jnp.finfo(dtype).tiny
    if channel.classification:
        edges = jnp.zeros(1, dtype)
        if not isinstance(channel, Sign):  # the sign teacher's P(y | z) is a step: no width to resolve
            width = 8 * channel.transition_width(jnp.asarray(tiny, dtype)) / jnp.sqrt(rho)
            edges = jnp.stack([-width, jnp.zeros_like(width), width])
        t, w_t = panel_rule(edges, panel_order)
        y = jnp.asarray(channel.labels, dtype)
        z = jnp.sqrt(rho) * t
        w_y = channel.partition(y, z[:, None], tiny)  # (T, 2)
        return z, jnp.broadcast_to(y, w_y.shape), w_t, w_y
    t, w_t = hermite_rule(order, dtype)
    z = jnp.sqrt(rho) * t
    y, w_y, _ = channel.label_quadrature(z, jnp.zeros((), dtype), order)  # (T, L)
    return z, y, w_t, w_y


def label_correlation(channel, rho, independent_labels=False, order: int = 24, panel_order: int = 24):
    """``E[y_a y_b]`` of two labels with the same teacher field ``z ~ N(0, rho)``: ``E y^2`` (the
    channel's closed form) for one label, ``E[(E[y | z])^2]`` on :func:`cross_average`'s outer rule
    for two labels drawn independently given ``z`` (exact for the linear and sign teachers, whose
    ``E[y | z]`` is a line or a step at 0). ``independent_labels`` may be traced."""
    dtype = jnp.result_type(rho, float)
    _, y, w_z, w_y = _teacher_nodes(channel, rho, order, panel_order, dtype)
    fresh = jnp.sum(w_z * jnp.sum(w_y * y, axis=-1) ** 2)
    return jnp.where(independent_labels, fresh, channel.label_moments(rho)[0])


def _label_pairs(w_y, independent_labels):
    """``(T, L, L)``: the weight of the labels ``(y_a, y_b) = (y_l, y_k)`` at each teacher node,
    ``w_y[l] w_y[k]`` for labels drawn independently, ``w_y[l]`` on the diagonal for one label."""
    eye = jnp.eye(w_y.shape[-1], dtype=w_y.dtype)
    return w_y[..., :, None] * jnp.where(independent_labels, w_y[..., None, :], eye)


def _conditional_factor(rho, m_a, q_a, m_b, q_b, q_ab, dtype):
    """The Cholesky factor of the students' fields' covariance given the teacher's."""
    cov = jnp.stack(
        [jnp.stack([q_a - m_a**2 / rho, q_ab - m_a * m_b / rho]), jnp.stack([q_ab - m_a * m_b / rho, q_b - m_b**2 / rho])]
    )
    return psd_cholesky(cov.astype(dtype))


def cross_average(
    channel, f_a, f_b, rho, m_a, q_a, m_b, q_b, q_ab, order: int = 24, panel_order: int = 12,
    independent_labels: bool = False,
):
    r"""``E[f_a(y_a, omega_a) f_b(y_b, omega_b)]`` over ``(z, omega_a, omega_b)`` jointly Gaussian with
    covariance ``[[rho, m_a, m_b], [m_a, q_a, q_ab], [m_b, q_ab, q_b]]`` and labels from ``P(y | z)``:
    one label ``y_a = y_b`` (the same data), or, with ``independent_labels`` (a bool, or a traced
    boolean scalar: one program for both), two drawn independently given ``z`` (the same inputs with
    fresh label noise): the sum over the label nodes ``sum_lk W_lk f_a(y_l) f_b(y_k)`` with
    ``W = diag(w_y)`` or ``w_y w_y^T``.

    ``f_a`` and ``f_b`` map broadcastable arrays ``(y, omega)`` to an array (a learner's output
    function, averaged over its weights). The teacher's field is integrated first, ``z = sqrt(rho) t``:
    for the classification channels, whose ``P(y | z)`` jumps or turns at ``z = 0``, by Gauss-Legendre
    panels in ``t`` (``panel_order`` nodes each) with edges at 0 and, but for the sign teacher's
    step, at ``+-8`` times the channel's width; for the others by a Gauss-Hermite rule and the channel's label quadrature. Given ``z`` the
    two students' fields are Gaussian about ``(m_a, m_b) z / rho`` with covariance
    ``[[q_a - m_a^2 / rho, q_ab - m_a m_b / rho], [., q_b - m_b^2 / rho]]``, integrated by a product
    Gauss-Hermite rule of ``order`` nodes per axis through its Cholesky factor (a singular one, two
    identical learners, included). Differentiable in every argument.
    """
    dtype = jnp.result_type(rho, m_a, q_a, m_b, q_b, q_ab, float)
    z, y, w_z, w_y = _teacher_nodes(channel, rho, order, panel_order, dtype)
    L = _conditional_factor(rho, m_a, q_a, m_b, q_b, q_ab, dtype)
    g, w_g = hermite_rule(order, dtype)
    z = z[:, None, None, None]
    omega_a = m_a / rho * z + L[0, 0] * g[:, None]  # (T, 1, G, 1)
    omega_b = m_b / rho * z + L[1, 0] * g[:, None] + L[1, 1] * g  # (T, 1, G, H)
    y = y[:, :, None, None]
    values_a = jnp.broadcast_to(f_a(y, omega_a), y.shape[:2] + omega_b.shape[2:])  # (T, L, G, H)
    both = jnp.einsum("tlgh,tlk,tkgh->tgh", values_a, _label_pairs(w_y, independent_labels), f_b(y, omega_b))
    return jnp.sum(w_z[:, None, None] * w_g[:, None] * w_g * both)


_KINK_ORDER = 8
"""Gauss-Legendre nodes per panel between the kinks of :func:`_piecewise_average`: there the
integrand is a line times a smooth closed form, converged to ~1e-14 at six nodes."""


_BEND_OFFSETS = (0.0, 1.0, -1.0, 4.0, -4.0)
"""Edges about each kink of the inner learner projected on the outer field, in units of the width
over which the inner average smooths it."""


def _ramp(a, s):
    """``E (a + s N)_+``, ``N ~ N(0, 1)``: ``a Phi(a / s) + s phi(a / s)``, ``max(a, 0)`` at ``s = 0``."""
    positive = s > 0
    s_safe = jnp.where(positive, s, 1.0)
    t = a / s_safe
    value = a * jax.scipy.special.ndtr(t) + s_safe * jnp.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)
    return jnp.where(positive, value, jnp.maximum(a, 0.0))


def clip_mean(loss, law: WeightLaw, y, mean, sd, V):
    r"""``E_p E[f_p(y, omega)]`` over ``omega ~ N(mean, sd^2)`` for a loss whose output function is a
    clipped line (:meth:`Loss.clip_output`), in closed form: with ``f_p = p clip((y - omega) / k, lo,
    hi)`` at the step ``p V``, ``E clip(X, lo, hi) = lo + E(X - lo)_+ - E(X - hi)_+`` for the Gaussian
    ``X = (y - omega) / k``. ``y``, ``mean``, ``sd`` broadcast together; ``V`` a scalar."""
    y, mean, sd = (x[..., None] for x in jnp.broadcast_arrays(y, mean, sd))
    p = law.values
    held = p > 0
    k, lo, hi = loss.clip_output(y, jnp.where(held, p, 1.0) * V)
    x, s = (y - mean) / k, sd / k
    value = lo + _ramp(x - lo, s) - _ramp(x - hi, s)
    return jnp.sum(law.probabilities * jnp.where(held, p * value, 0.0), -1)


def _kinks(loss, law: WeightLaw, y, V):
    """The fields ``omega`` where a learner's weighted output function ``E_p f_p(y, .)`` has a kink:
    the loss's breakpoints at every step ``p V``, ``p > 0`` (once for one that does not move with the
    step); shape ``y.shape + (K,)``."""
    p = law.values
    step = jnp.where(p > 0, p, 1.0) * V
    points = loss.breakpoints(y[..., None], step)
    return jnp.concatenate([jnp.broadcast_to(b, y.shape + jnp.shape(b)[-1:]) for b in points], axis=-1)


def _in_units(x, scale, bound: float = 10.0):
    """``x / scale`` (edges in a standard Gaussian's units), ``bound`` where ``scale`` is zero."""
    nonzero = scale != 0
    return jnp.where(nonzero, x / jnp.where(nonzero, scale, 1.0), bound)


def _piecewise_average(loss, law_a, law_b, V_a, V_b, y_a, y_b, w, mean_a, mean_b, L, order: int):
    r"""``sum_nodes w E[bar f_a(y_a, omega_a) bar f_b(y_b, omega_b)]`` for a loss with a clipped-line
    output (:func:`piecewise_cross_average`): ``omega_a = mean_a + L_00 g``, ``omega_b = mean_b + L_10 g
    + L_11 h``; the ``h`` average in closed form (:func:`clip_mean`), the ``g`` integral on panels cut at
    the kinks of ``bar f_a``, at those of ``bar f_b`` at ``h = 0`` and ``0, +-1, +-4`` times the width
    ``L_11 / |L_10|`` about them (where the ``h`` average bends when ``L_11`` is small), and at the
    Gaussian's scales ``0, +-1.5, +-3.5, +-6``. ``y_a, y_b, w, mean_a, mean_b`` broadcast together
    (the outer nodes, each learner's label at them)."""
    y_a, y_b, w, mean_a, mean_b = jnp.broadcast_arrays(y_a, y_b, w, mean_a, mean_b)
    # bar f_b's kinks at h = 0, where its h average bends over a width L_11 / |L_10| in g.
    projected = _in_units(_kinks(loss, law_b, y_b, V_b) - mean_b[..., None], L[1, 0])
    width = _in_units(L[1, 1], jnp.abs(L[1, 0]))
    # And the Gaussian's own scales, so that no panel is too long for the density's curvature.
    gaussian = jnp.broadcast_to(jnp.asarray(_GAUSSIAN_EDGES, projected.dtype), y_a.shape + (len(_GAUSSIAN_EDGES),))
    edges = jnp.concatenate(
        [gaussian, _in_units(_kinks(loss, law_a, y_a, V_a) - mean_a[..., None], L[0, 0])]
        + [projected + c * width for c in _BEND_OFFSETS],
        axis=-1,
    )
    g, w_g = panel_rule(edges, order)  # (..., G)
    f_a = weighted_output(loss, law_a, y_a[..., None], mean_a[..., None] + L[0, 0] * g, V_a)[0]
    f_b = clip_mean(loss, law_b, y_b[..., None], mean_b[..., None] + L[1, 0] * g, L[1, 1], V_b)
    return jnp.sum(w[..., None] * w_g * f_a * f_b)


def piecewise_cross_average(
    channel, loss, rho, learner_a, learner_b, q_ab, panel_order: int = 24, independent_labels: bool = False
):
    r""":func:`cross_conjugate`'s ``E[bar f_a bar f_b]`` for a loss whose output function is a clipped
    line (hinge, Huber, absolute: :meth:`Loss.clip_output`), whose kinks sit at the loss's
    breakpoints at each step ``p V`` of the weights' law.

    A label ``+-1`` (classification teachers): the teacher's field on :func:`cross_average`'s panels,
    then the two students' fields given it, at every pair of labels ``(y_a, y_b)`` weighted by
    ``P(y_a | z) P(y_b | z)`` with ``independent_labels`` (traced or not), by ``P(y_a | z)`` at
    ``y_a = y_b`` and zero elsewhere otherwise. The linear
    teacher: ``f`` is a function of the residual ``r = y - omega`` alone, and ``(r_a, r_b)`` are jointly
    Gaussian with variances ``E y^2 - 2 m E[z y] / rho + q`` and covariance ``E[y_a y_b] - (m_a + m_b)
    E[z y] / rho + q_ab`` (:func:`label_correlation`), a two-dimensional integral. Either way the last
    field's average is in closed form and the one before it on Gauss-Legendre panels
    (``_KINK_ORDER`` nodes each; the teacher's field's panels have ``panel_order``) cut at the kinks
    (:func:`_piecewise_average`), so that the result converges exponentially, not algebraically as a
    Hermite rule over a kink would.
    """
    (m_a, q_a, V_a, law_a), (m_b, q_b, V_b, law_b) = learner_a, learner_b
    dtype = jnp.result_type(rho, m_a, q_a, m_b, q_b, q_ab, float)
    if channel.classification:
        z, y, w_z, w_y = _teacher_nodes(channel, rho, 0, panel_order, dtype)
        L = _conditional_factor(rho, m_a, q_a, m_b, q_b, q_ab, dtype)
        # Outer nodes (T, 2, 2): the teacher's field and both labels (off the diagonal weightless for one label).
        z, y_a, y_b = z[:, None, None], y[:, :, None], y[:, None, :]
        w = w_z[:, None, None] * _label_pairs(w_y, independent_labels)
        return _piecewise_average(
            loss, law_a, law_b, V_a, V_b, y_a, y_b, w, m_a / rho * z, m_b / rho * z, L, _KINK_ORDER
        )
    second, cross = channel.label_moments(rho)
    # omega = -r has the law of r's negative; y = 0 puts the kinks of f(0, -r) at the residual's.
    var_a, var_b = (second - 2 * m / rho * cross + q for m, q in ((m_a, q_a), (m_b, q_b)))
    labels = label_correlation(channel, rho, independent_labels, panel_order, panel_order)
    covariance = labels - (m_a + m_b) / rho * cross + q_ab
    L = psd_cholesky(jnp.stack([jnp.stack([var_a, covariance]), jnp.stack([covariance, var_b])]).astype(dtype))
    zero = jnp.zeros(1, dtype)
    return _piecewise_average(loss, law_a, law_b, V_a, V_b, zero, zero, jnp.ones(1, dtype), zero, zero, L, _KINK_ORDER)


def cross_conjugate(
    channel, loss, rho, learner_a, learner_b, q_ab, order: int = 24, panel_order: int = 24,
    independent_labels: bool = False,
):
    r"""``E[bar f_a(y_a, omega_a) bar f_b(y_b, omega_b)]``, ``qhat_ab / alpha`` of two learners trained
    on the same inputs with independent weights (module docstring), with the same labels or, with
    ``independent_labels``, labels drawn independently given the teacher's field: by
    :func:`piecewise_cross_average` for a loss with a clipped-line output (hinge, Huber, absolute),
    else by :func:`cross_average`.

    ``learner_a`` and ``learner_b`` are ``(m, q, V, law)``: a learner's overlaps with the teacher and
    itself, its variance and its :class:`WeightLaw`; ``q_ab`` their overlap.
    """
    (m_a, q_a, V_a, law_a), (m_b, q_b, V_b, law_b) = learner_a, learner_b
    if loss.clip_output(jnp.ones(()), jnp.ones(())) is not None:
        return piecewise_cross_average(channel, loss, rho, learner_a, learner_b, q_ab, panel_order, independent_labels)

    def f_a(y, omega):
        return weighted_output(loss, law_a, y, omega, V_a)[0]

    def f_b(y, omega):
        return weighted_output(loss, law_b, y, omega, V_b)[0]

    return cross_average(
        channel, f_a, f_b, rho, m_a, q_a, m_b, q_b, q_ab, order, panel_order, independent_labels
    )
