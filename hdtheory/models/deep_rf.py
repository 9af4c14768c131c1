r"""Deep random features: a linear readout of a deep network with frozen random Gaussian weights.

**Setting** (Schröder, Cui, Dmitriev and Loureiro 2023, "Deterministic equivalent and error
universality of deep random features learning", ICML; Schröder et al. 2024, "Asymptotics of
learning with deep structured (random) features", ICML). Inputs ``x ~ N(0, I_d)``, ``h_0 = x``;
``L = depth`` hidden layers

.. math:: h_l = \sigma_l(W_l h_{l-1} / \sqrt{d_{l-1}}),\qquad l = 1..L,

of widths ``d_l = round(gamma_l d)`` (``d_0 = d``; ``widths = (gamma_1, ..., gamma_L)``, or one
ratio for every layer) and activations ``sigma_l`` (one for every layer, or one per layer: erf,
tanh, sign, linear, relu); weights ``W_l = Z_l C_l^{1/2}`` drawn once, from a seed, at a finite
``d``: ``Z_l`` of i.i.d. ``N(0, 1)`` entries, so that the rows of ``W_l`` are ``N(0, C_l)`` (the
structured weights of Schröder et al. 2024; ``C_l = I``, i.i.d. weights, those of Schröder et al.
2023). ``C_l`` is a power law, eigenvalues ``k^-a_l / mean_j(j^-a_l)``, ``k = 1..d_{l-1}`` (mean 1:
``tr C_l = d_{l-1}``, as for i.i.d. entries; ``a_l = weight_exponent``), in a Haar-random basis drawn
from the seed, or any spectrum or matrix given to :func:`deep_random_features`. A teacher ``z =
w*.x / sqrt(d)`` with ``|w*|^2 / d = rho`` and any channel of :mod:`hdtheory.kernels.channels`; a
student ``w.h_L / sqrt(d_L)`` trained by ERM on ``n = alpha d`` samples (any loss of
:mod:`hdtheory.kernels.losses`, penalty ``(lam / 2) |w|^2``; the conventions of
:mod:`hdtheory.models.erm`).

**Deterministic equivalent given the weights.** By the layer-wise Gaussian equivalence (Schröder et
al. 2023, the linearised population covariances of their conjectured error universality; Schröder
et al. 2024, the closed-form feature covariance of Gaussian rainbow networks), the features of layer
``l`` are equivalent to Gaussian ones of mean ``m_l`` and covariance ``Omega_l``, conditioned on the
weights: with ``mu_l = W_l m_{l-1} / sqrt(d_{l-1})`` and ``A_l = W_l Omega_{l-1} W_l^T / d_{l-1}``
the mean and covariance of the preactivations ``u`` of layer ``l``, and for each unit ``i`` the
coefficients of :func:`unit_coefficients` at ``u_i ~ N(mu_i, A_ii)``, ``m_{l,i} = E sigma(u_i)``,
``kappa_{1,i} = E[(u_i - mu_i) sigma(u_i)] / A_ii``, ``kappa_{*,i}^2 = Var sigma(u_i) - A_ii
kappa_{1,i}^2``,

.. math::
    \Omega_l = K_{1,l} A_l K_{1,l} + \mathrm{diag}(\kappa_{*,l}^2),\qquad
    \Phi_l = \Phi_{l-1} W_l^T K_{1,l} / \sqrt{d_{l-1}},\qquad K_{1,l} = \mathrm{diag}(\kappa_{1,l}),

from ``m_0 = 0`` and ``Omega_0 = Phi_0 = I_d``: ``Omega_L = Cov(h_L)`` and ``Phi_L = E[x h_L^T]``.
The papers take the coefficients at the preactivation variance of the layer, the same for every
unit in their limit, and a mean-free input to each layer. Taking them unit by unit, at each unit's
own mean and variance, is derived here: it keeps ``diag(Omega_l)`` exact given Gaussian
preactivations, agrees with the papers' form when the variances concentrate (i.i.d. weights), and
covers two cases where they do not: power-law ``C_l``, whose largest eigenvalue grows with ``d`` (at
``d = 100``, ``a = 1`` the units' variances spread by 30% to 40%), and activations with a mean
(ReLU), whose ``m_{l-1} != 0`` shifts the next layer's preactivations by ``mu_i = w_i.m_{l-1} /
sqrt(d_{l-1})``, of order one and different for every unit. Odd activations keep ``m_l = 0``. Left
out, as in the papers: the higher Hermite terms of the off-diagonal covariances (``O(A_ij^3)`` for odd
activations; for ReLU the second one, ``O(A_ij^2)``, adds up to a rank-one term along the mean).

The model is then the :class:`~hdtheory.models.gcm.GCM` of ``(Omega_L, Phi_L)`` with the teacher
averaged over its isotropic law (``E theta theta^T = rho I``, as for
:func:`~hdtheory.models.gcm.random_features`): with ``(omega_j, e_j)`` the eigenpairs of ``Omega_L``,
``theta2_j = d_L rho |Phi_L e_j|^2 / d``, and the model's ratio ``n / d_L = alpha d / d_L``.

**The features' mean** (derived here). With ReLU the features have a mean, ``h_L = m_L + c``, ``c``
centred of covariance ``Omega_L`` and ``|m_L|^2 = p mu^2`` (``p = d_L``, ``mu`` of order one; odd
activations throughout give ``m_L = 0``). With ``u = m_L / |m_L|`` and ``w = a u + w_perp``,
``w_perp . u = 0``, the student's field and penalty are

.. math::
    \frac{w \cdot h_L}{\sqrt p} = b + \frac{a\, u \cdot c}{\sqrt p} + \frac{w_\perp \cdot c}{\sqrt p},
    \qquad b = a \mu, \qquad \frac{\lambda}{2} |w|^2 = \frac{\lambda}{2}\Big(\frac{b^2}{\mu^2} + |w_\perp|^2\Big).

(i) ``b`` is one scalar whose penalty is of order one against a loss summed over ``n = O(p)``
samples: its stationarity, ``sum_i d_b l_i + lam b / mu^2 = 0``, reads ``E f(y, omega + b, V) = O(1 /
n)`` in the channel's average (``f`` the output function of :mod:`hdtheory.models.erm`), an
unpenalised intercept in the limit. (ii) The cross term ``a u.c / sqrt(p)`` between the mean's
direction and the centred features has variance ``b^2 u^T Omega_L u / (mu^2 p) = O(1 / p)`` while
``Omega_L``'s norm is of order one (i.i.d. weights). (iii) ``w_perp`` is the GCM of ``Omega_L`` and
``t`` restricted to the hyperplane orthogonal to ``u``, a change of rank two that moves every
average over modes by ``O(1 / p)``, unless the teacher projects on ``u`` at order one: for the
isotropic teacher ``E (u.t)^2 = rho |Phi_L u|^2 / d = O(1 / d)``, one mode's share, and the
teacher's field ``z``, centred, does not correlate with the constant ``b``. The limit is therefore
this GCM with the fields ``omega + b`` and ``b`` fixed by ``E f(y, omega + b, V) = 0``. (iv) Every
teacher of the GCM (sign, probit, logistic, random labels, linear) leaves the law of ``(z, y)``
invariant under ``(z, y) -> (-z, -y)``, every loss is even in ``(y, x) -> (-y, -x)`` (a function
of the margin ``y x`` or of the residual ``y - x``), and the Gaussian fields are centred: ``(z,
omega, y, b) -> (-z, -omega, -y, -b)`` maps the training problem onto itself, so that ``b = 0``
solves the intercept's equation (and is the minimiser, the objective being convex in ``b`` for a
convex loss). The intercept vanishes: the GCM without the mean is the model of the uncentred
features for every loss, and ReLU is accepted with all of them. Checked against simulations of the
uncentred features (``tests/test_deep_rf_mean.py``): their test error equals that of the same fits
on the features centred by ``m_L``, seed by seed, within the paired standard error, the fitted
intercept (the mean of the test field, ``w.m_L / sqrt(p)`` up to sampling) is zero within its
standard error, and both agree with the theory. An asymmetric channel would make ``b`` nonzero; none
is among the GCM's teachers. Everything is a
JAX program (the weights are ``jax.random`` draws; one ``d_L x d_L`` eigendecomposition per build); the
fixed point is differentiable in ``alpha``, ``rho``, ``lam`` and ``noise``.

**Normalisation.** Schröder et al. write the widths ``k_l`` and the sample ratio per input dimension,
as here; their covariances are ours. At depth one the recursion is
:func:`~hdtheory.models.gcm.random_features` with the empirical ``F F^T / d`` in place of its
Marchenko-Pastur limit and each unit's ``kappa`` at its ``|F_i|^2 / d`` instead of 1 (both differ by
``O(1 / sqrt(d))``).

**Infinite width** (:class:`DeepRandomFeaturesLimit`, no seed; odd activations; i.i.d. weights here,
power-law ones below). As
``d -> inf`` at fixed ratios every unit's preactivation variance is the layer's, ``r_1 = 1``,
``r_{l+1} = c_l r_l + s_l`` with ``c_l = kappa_{1,l}^2`` and ``s_l = kappa_{*,l}^2`` at ``r_l``
(:func:`layer_coefficients`), and the recursion is ``Omega_l = c_l W_l Omega_{l-1} W_l^T / d_{l-1} +
s_l I``, ``Lin_l = Phi_l^T Phi_l = c_l W_l Lin_{l-1} W_l^T / d_{l-1}`` (``Omega_0 = Lin_0 = I``), the
setting of Schröder et al. 2023. With a ridge penalty the equations of
:class:`~hdtheory.models.gcm.GCM` read the spectrum only through ``<omega / D>``, ``<theta2 / D>``
and ``<omega (mhat^2 theta2 + qhat omega) / D^2>``, ``D = lam + Vhat omega = Vhat (omega - z)`` at
``z = -lam / Vhat < 0``: through the traces

.. math::
    g(z) = \frac{1}{d_L} \mathrm{tr}\,(\Omega_L - z)^{-1},\qquad
    h(z) = \frac{1}{d} \mathrm{tr}\,[\mathrm{Lin}_L (\Omega_L - z)^{-1}]

and their derivatives: ``V = (1 + z g) / Vhat``, ``m = mhat rho h / Vhat``, ``q = [mhat^2 rho (h +
z h') + qhat (1 + 2 z g + z^2 g')] / Vhat^2`` (``<theta2 f(omega)> = rho tr[Lin_L f(Omega_L)] /
d``), with ``1 + z g = e`` and ``1 + 2 z g + z^2 g' = e + z e'``, where ``e = tr[Omega_L (Omega_L -
z)^{-1}] / d_L``, in ``(0, 1)``, is carried by the chain as a sum of positive terms (below): ``1 + z
g`` cancels to ``O(1 / |z|)`` where ``|z|`` is large against the spectrum (``lam`` large), and ``1 +
2 z g + z^2 g'`` to ``O(1 / z^2)``, which at ``lam = 10^3`` lost the 1e-10 of the solver's tolerance
(``e + z e'`` loses a factor ``|z|``, not ``z^2``). Their deterministic equivalents are derived here,
layer by layer from the top, by one subordination per layer. For ``X = W A W^T / m`` (``W`` of
i.i.d. ``N(0, 1)`` entries, ``p x m``,
``r = p / m``) and ``A``, ``B`` independent of ``W``, the Silverstein equation and the identity
``Y (Y^T Y - x)^{-1} Y^T = I + x (Y Y^T - x)^{-1}`` give, at ``x`` below the spectrum,

.. math::
    \frac{1}{p} \mathrm{tr}\,(X - x)^{-1} = -\frac{1}{r \zeta},\qquad
    \frac{1}{m} \mathrm{tr}\,[W B W^\top (X - x)^{-1}] = \mathrm{tr}\,[B (A - \zeta)^{-1}],\qquad
    \zeta\, g_A(\zeta) = r - 1 - x / \zeta,

``g_A(zeta) = tr (A - zeta)^{-1} / m``: the trace of layer ``l`` at ``z_l`` is that of layer ``l - 1``
at ``zeta_{l-1}``, with ``x = (z_l - s_l) / c_l``. From the bottom, ``h_L(z) = 1 / (1 - zeta_0)``
(``Lin_0 = Omega_0 = I``), and the chain is explicit in ``zeta_0``: ``g_0 = 1 / (1 - zeta_0)`` and,
for ``l = 1..L`` with ``r_l = gamma_l / gamma_{l-1}`` (``gamma_0 = 1``),

.. math::
    \zeta_l = s_l + c_l\, \zeta_{l-1} (r_l - 1 - \zeta_{l-1} g_{l-1}),\qquad
    g_l = -\frac{1}{c_l r_l \zeta_{l-1}},

with ``zeta_L = z``: one scalar unknown, ``zeta_0``, the root of ``zeta_L(zeta_0) = z`` below the
spectrum (:func:`subordination`: on the branch where every layer's map ``zeta_{l-1} -> zeta_l``
increases; off it the chain may cross ``z`` again), and ``g = g_L``. With ``e_l = 1 + zeta_l g_l``
the chain gives ``e_l = s_l g_l + e_{l-1} / r_l`` (``e_0 = 1 / (1 - zeta_0)``), without
cancellation. At depth one this is the Marchenko-Pastur law of
:func:`~hdtheory.models.gcm.random_features`. Every trace is a JAX function of ``(z, gamma_l, c_l,
s_l)`` with the implicit derivative, so that the fixed point is differentiable in the widths too; the
ratio of the model is ``n / d_L = alpha / gamma_L``, and ``lam > 0`` (the traces are taken below the
spectrum). The seeded model (each unit's coefficients at its own variance, one draw of the
weights) tends to it: ridge's test error at ``d = 1000``, averaged over three seeds, is within
``1e-4`` of the limit's (``tests/test_deep_random_features_limit.py``).

**Structured weights at infinite width** (derived here). ``W_l = Z_l C_l^{1/2}`` with ``C_l`` the power
law of exponent ``a_l`` in ``[0, 1)``, whose normalised spectrum tends to the law of ``(1 - a) u^-a``,
``u ~ U(0, 1)`` (:func:`inverse_power_law_rule`; for ``a >= 1`` the mass of ``tr C`` concentrates on a
vanishing fraction of the eigenvalues and there is no limit law: refused). Then ``A_l = Z M Z^T / m``
with ``M = C^{1/2} Omega_{l-1} C^{1/2}`` and ``Lin`` likewise with ``C^{1/2} Lin_{l-1} C^{1/2}``. The
law of ``(Omega_{l-1}, Lin_{l-1})`` is invariant under a common rotation (``Omega_0 = I``, and every
later layer is sandwiched by a Gaussian ``Z``), so that ``C_l`` is asymptotically free from them
whatever its basis. (i) *The preactivation variances concentrate*: unit ``i``'s is ``A_ii = z_i^T M
z_i / m``, of mean ``tr(C Omega) / m -> tr Omega / m`` (freeness, ``tr C / m = 1``), the i.i.d.
weights' ``r_l``, and of relative spread ``sqrt(2 tr M^2) / tr M``: ``O(m^{a - 1})`` for ``a > 1/2``,
``O(sqrt(log m / m))`` at ``1/2``, ``O(m^{-1/2})`` below (at the first layer ``sqrt(2 tr C^2) / m``: 6% at ``m = 1000``, 2% at ``10^4``
for ``a = 0.5``; 18% and 12% for ``a = 0.9``). So the layers' ``(c_l, s_l)`` are those of
:func:`layer_coefficients`, and the seeded model's unit-by-unit coefficients tend to them, slowly
as ``a -> 1``. (ii) *Subordination*: Silverstein's equation of the i.i.d. chain holds with ``A =
M``, and with ``t = -zeta``, ``B = C^{-1}`` (bounded: its eigenvalues ``b = u^a / (1 - a)``), the
identity ``C^{1/2} (M - zeta)^{-1} C^{1/2} = (Omega_{l-1} + t B)^{-1}`` turns both traces into the
resolvent at zero of a sum of free matrices, whose subordination (Biane 1998) reads
``(Omega + t B)^{-1} ~ (Omega - w)^{-1}`` in ``Omega``'s basis and ``~ (t B + y)^{-1}`` in ``B``'s,
with ``w - y = -1 / G``, ``G`` their common normalised trace. Hence ``tr[C^{1/2} Lin C^{1/2} (M -
zeta)^{-1}] = tr[Lin_{l-1} (Omega_{l-1} - w)^{-1}]``: the trace ``h`` of layer ``l - 1`` at ``w``, and
``G = g_{l-1}(w)``; then ``y = (1 + w g_{l-1}) / g_{l-1}``, ``t`` is the root of ``E 1 / (t b + y) =
g_{l-1}`` and ``tr (M - zeta)^{-1} / m = tr[B (Omega + t B)^{-1}] / m = E b / (t b + y)``. The chain
from the bottom becomes

.. math::
    w_l = s_l - c_l\, t_l \big(r_l - 1 + t_l\, \mathbb E\,\tfrac{b}{t_l b + y_l}\big),\qquad
    g_l = \frac{1}{c_l r_l t_l},\qquad \mathbb E\,\frac{1}{t_l b + y_l} = g_{l-1},\qquad
    y_l = \frac{1 + w_{l-1} g_{l-1}}{g_{l-1}},

from ``(w_0, g_0) = (zeta_0, 1 / (1 - zeta_0))``, with ``w_L = z`` and still ``h = 1 / (1 - zeta_0)``:
for ``b = 1`` (``a = 0``) ``t_l = -w_{l-1}`` and it is the i.i.d. chain. At the root ``t E[b / (t b +
y)] = 1 - y g_{l-1} = 1 - e_{l-1}``, so that ``w_l = s_l - c_l t_l (r_l - e_{l-1})``, ``y_l = e_{l-1} /
g_{l-1}`` and ``e_l = s_l g_l + e_{l-1} / r_l`` as for i.i.d. weights. Each layer adds one inner scalar
root, ``t_l``: that of ``1 / E[1 / (t b + y)] = 1 / g_{l-1}``, whose left side is increasing and concave
in ``t`` (a harmonic mean of affine functions), so that Newton's method from Jensen's lower bound
``t = (1 - e_{l-1}) / (g_{l-1} E b)`` climbs to it monotonically (at most 4 steps over ``alpha`` from
``10^-3`` to ``10^3``, ``lam`` from ``10^-6`` to ``10^3``, widths from 0.01 to 100 and ``a`` up to 0.99;
the root itself at ``a = 0``); the expectations over ``b`` are a Gauss-Legendre rule, so that
everything is differentiable in the exponents ``a_l`` too. Checked
(``tests/test_deep_random_features_limit.py``) against eigenvalues drawn at ``d = 1000`` in a Haar
basis: with the finite ``C``'s own eigenvalues in the chain, to ``O(1 / d)``; with the limit law, to
the finite-size bias of the normalised power law, ``O(d^{a - 1})`` (its normalisation ``mean_j
j^-a = m^-a / (1 - a) + zeta(a) / m + ...``): 0.8% at ``d = 1000``, 0.55% at ``2000`` for ``a =
(0.5, 0.3)``; and against the seeded model with ``weight_exponent = 0.5``: its ridge test error at
``d = 1000`` (three seeds) lies ``3.9e-3`` below the limit, ``2.6e-3`` at ``d = 2000``.
"""

import functools
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError
from .._theory import check_in, check_integer, choice, integer, is_concrete, parameter
from .erm import ERM, Overlaps
from .gcm import GCM, RF_ACTIVATIONS, EquivalentGCM, gaussian_equivalence

ODD_ACTIVATIONS = ("erf", "tanh", "sign", "linear")
"""The odd activations: features of mean zero at every layer."""

DEEP_ACTIVATIONS = {name: RF_ACTIVATIONS[name] for name in ODD_ACTIVATIONS + ("relu",)}
"""The activations of the deep model (ReLU: with a mean, followed unit by unit; module docstring)."""


def layer_activations(activation, layers: int) -> tuple[str, ...]:
    """One activation name per layer, from one name or a sequence of ``layers`` names (checked)."""
    names = (activation,) * layers if isinstance(activation, str) else tuple(activation)
    for name in names:
        if not isinstance(name, str) or name not in DEEP_ACTIVATIONS:
            raise ParameterError(f"parameter 'activation' must be one of {', '.join(DEEP_ACTIVATIONS)}, "
                                 f"or a sequence of {layers} of them, got {activation!r}")
    if len(names) != layers:
        raise ParameterError(f"parameter 'activation' must be one name or one per layer ({layers}), "
                             f"got {len(names)}: {', '.join(names)}")
    return names


def layer_widths(widths, d: int, depth: int | None = None) -> tuple[int, ...]:
    """``(d, d_1, ..., d_L)`` with ``d_l = max(round(gamma_l d), 1)`` for the width ratios ``gamma_l =
    widths``: one per layer, or one for each of ``depth`` layers. Checks ``widths``, ``depth`` and ``d``."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ParameterError(f"parameter 'd' must be an integer >= 1, got {d!r}")
    if depth is not None:
        check_integer("depth", depth, Interval(1))
    if not all(map(is_concrete, widths if isinstance(widths, (tuple, list)) else (widths,))):
        raise ParameterError("parameter 'widths' must be concrete numbers: they fix the widths of the layers")
    check_in("widths", widths, POSITIVE)
    ratios = np.ravel(np.asarray(widths, float))
    if ratios.size == 0:
        raise ParameterError("parameter 'widths' must hold one width ratio d_l / d > 0 per layer, got none")
    if depth is not None and ratios.size == 1:
        ratios = np.repeat(ratios, depth)
    if depth is not None and ratios.size != depth:
        raise ParameterError(f"parameters 'depth' and 'widths' disagree: depth {depth}, {ratios.size} widths "
                             "(give one width per layer, or one width for every layer)")
    return (int(d),) + tuple(max(round(float(g) * d), 1) for g in ratios)


def layer_exponents(exponent, layers: int) -> tuple[float, ...]:
    """The power-law exponents ``a_l`` of the weights' row covariances, one per layer, from one number
    or ``layers`` numbers (checked: concrete, ``>= 0``)."""
    if not all(map(is_concrete, exponent if isinstance(exponent, (tuple, list)) else (exponent,))):
        raise ParameterError("parameter 'weight_exponent' must be concrete numbers: they fix the weights")
    check_in("weight_exponent", exponent, NONNEGATIVE)
    exponents = np.ravel(np.asarray(exponent, float))
    if exponents.size == 1:
        exponents = np.repeat(exponents, layers)
    if exponents.size != layers:
        raise ParameterError(f"parameter 'weight_exponent' must be one number or one per layer ({layers}), "
                             f"got {exponents.size}")
    return tuple(float(a) for a in exponents)


def power_law_spectrum(exponent: float, size: int, dtype=None) -> jax.Array:
    """The eigenvalues ``k^-a / mean_j(j^-a)``, ``k = 1..size``, of a row covariance ``C``: mean 1, so
    that a row's expected squared norm ``tr C`` is that of i.i.d. ``N(0, 1)`` entries."""
    s = jnp.arange(1, size + 1, dtype=dtype or float) ** -exponent
    return s / jnp.mean(s)


def random_basis(key, size: int, dtype=None) -> jax.Array:
    """A Haar-distributed orthogonal ``size x size`` matrix: ``Q`` of the QR factorisation of a
    standard Gaussian matrix, its columns' signs those of ``R``'s diagonal (Mezzadri 2007)."""
    Q, R = jnp.linalg.qr(jax.random.normal(key, (size, size), dtype or float))
    return Q * jnp.where(jnp.diagonal(R) < 0, -1.0, 1.0)


def check_covariances(covariances, widths: tuple[int, ...]) -> tuple:
    """The weights' row covariances, one entry per layer (checked): ``None`` (``C_l = I``), the
    ``d_{l-1}`` eigenvalues of ``C_l`` (positive; the basis is drawn at random), or the symmetric
    positive semi-definite ``d_{l-1} x d_{l-1}`` matrix ``C_l``."""
    layers = len(widths) - 1
    if covariances is None:
        return (None,) * layers
    covariances = tuple(covariances)
    if len(covariances) != layers:
        raise ParameterError(f"parameter 'weight_covariances' must hold one entry per layer ({layers}), "
                             f"got {len(covariances)}")
    checked = []
    for l, C in enumerate(covariances):
        size = widths[l]
        if C is not None:
            C = jnp.asarray(C, jnp.result_type(float))
            if is_concrete(C):
                ok = C.shape == (size,) and bool(jnp.all(C > 0) & jnp.all(jnp.isfinite(C)))
                if C.ndim == 2:
                    scale = float(jnp.max(jnp.abs(C))) if C.size else 0.0
                    ok = (C.shape == (size, size) and bool(jnp.all(jnp.isfinite(C)))
                          and float(jnp.max(jnp.abs(C - C.T))) <= 1e-10 * scale
                          and float(jnp.linalg.eigvalsh(C)[0]) >= -1e-10 * scale)
                if not ok:
                    raise ParameterError(
                        f"parameter 'weight_covariances' of layer {l + 1} must be None, {size} positive "
                        f"eigenvalues or a symmetric positive semi-definite {size} x {size} matrix, "
                        f"got an array of shape {C.shape}")
        checked.append(C)
    return tuple(checked)


def deep_weights(key, widths: tuple[int, ...], covariances=None, dtype=None) -> list[jax.Array]:
    """The weights ``W_l = Z_l C_l^{1/2}`` (``d_l x d_{l-1}``, ``Z_l`` i.i.d. ``N(0, 1)``), one key
    split per layer; ``covariances`` as :func:`check_covariances` takes them (``None``: ``C_l = I``,
    ``W_l = Z_l``). Eigenvalues are placed in the basis :func:`random_basis` draws from
    ``fold_in(key_l, 1)``; a matrix's square root is that of its eigendecomposition."""
    keys = jax.random.split(key, len(widths) - 1)
    covariances = (None,) * len(keys) if covariances is None else covariances
    weights = []
    for l, (k, C) in enumerate(zip(keys, covariances)):  # the layers: few, of different shapes
        Z = jax.random.normal(k, (widths[l + 1], widths[l]), dtype or float)
        if C is not None and C.ndim == 1:
            O = random_basis(jax.random.fold_in(k, 1), widths[l], Z.dtype)
            Z = Z @ (O * jnp.sqrt(C)) @ O.T
        elif C is not None:
            s, V = jnp.linalg.eigh(C)
            Z = Z @ (V * jnp.sqrt(jnp.maximum(s, 0.0))) @ V.T
        weights.append(Z)
    return weights


def exponent_covariances(exponents: tuple[float, ...], widths: tuple[int, ...], dtype=None) -> tuple:
    """The row covariances of :func:`power_law_spectrum` with ``exponents`` (``None`` where ``a_l = 0``:
    i.i.d. weights, the same draw)."""
    return tuple(None if a == 0 else power_law_spectrum(a, widths[l], dtype) for l, a in enumerate(exponents))


def unit_coefficients(activation: str, mean, variance, order: int = 40):
    r"""``(m, kappa_1, kappa_star)``, unit by unit, of ``sigma(u)`` for ``u ~ N(mean, variance)``
    (arrays of one shape): ``m = E sigma(u)``, ``kappa_1 = E[(u - mean) sigma(u)] / variance``
    (``= E sigma'(u)``), ``kappa_star^2 = Var sigma(u) - variance kappa_1^2``, so that ``sigma(u)``
    and ``m + kappa_1 (u - mean) + kappa_star xi`` have the same mean, variance and covariance with
    ``u``. A Gauss-Legendre panel rule (:func:`hdtheory.kernels.panel_rule`) with an edge at the
    kink ``u = 0`` of ReLU and sign integrates them exactly; differentiable in ``mean`` and
    ``variance``. At ``mean = 0`` these are :func:`~hdtheory.models.gcm.gaussian_equivalence`."""
    scale = jnp.sqrt(variance)
    z, w = kernels.panel_rule((-mean / scale)[..., None], order)
    f = RF_ACTIVATIONS[activation](mean[..., None] + scale[..., None] * z)
    m = jnp.sum(w * f, axis=-1)
    k1 = jnp.sum(w * z * f, axis=-1) / scale
    return m, k1, jnp.sqrt(jnp.maximum(jnp.sum(w * f**2, axis=-1) - m**2 - variance * k1**2, 0.0))


def deep_covariances(weights, activations: tuple[str, ...], order: int = 40):
    """``(Omega_L, Phi_L, m_L)``: the population covariances of the module docstring given the weights,
    and the features' mean ``m_L = E h_L``."""
    dtype = weights[0].dtype
    Omega = Phi = jnp.eye(weights[0].shape[1], dtype=dtype)
    mean = jnp.zeros(weights[0].shape[1], dtype)
    for W, activation in zip(weights, activations):  # the layers: few, of different shapes
        root = math.sqrt(W.shape[1])
        A = W @ Omega @ W.T / W.shape[1]
        mean, k1, kstar = unit_coefficients(activation, W @ mean / root, jnp.diagonal(A), order)
        Omega = k1[:, None] * A * k1 + jnp.diag(kstar**2)
        Phi = Phi @ W.T * (k1 / root)
    return Omega, Phi, mean


@functools.partial(jax.jit, static_argnames=("widths", "activations"))
def deep_spectrum(key, widths: tuple[int, ...], activations: tuple[str, ...], covariances=None):
    """``(omega, theta2 / rho)``: the eigenvalues of ``Omega_L`` and the teacher's projections per unit
    ``rho``, for the weights drawn from ``key`` (rows of covariances ``covariances``, as
    :func:`deep_weights` takes them). Eigenvalues below ``sqrt(eps)`` times the largest
    are set to zero, with their projections: the ratio ``theta2_j / omega_j`` of such a mode (a
    product of nearly singular linear layers) is lost to rounding, and it would count as
    unexplained by the features anyway (its error ``theta2 lam^2 / (omega D^2) -> theta2 / omega``
    as ``omega / lam -> 0``)."""
    Omega, Phi, _ = deep_covariances(deep_weights(key, widths, covariances), activations)
    omega, vectors = jnp.linalg.eigh(Omega)
    p = widths[-1]
    positive = omega > jnp.sqrt(jnp.finfo(omega.dtype).eps) * omega[-1]
    theta2 = p * jnp.sum((Phi @ vectors) ** 2, axis=0) / widths[0]
    return jnp.where(positive, omega, 0.0), jnp.where(positive, theta2, 0.0)


@functools.lru_cache(maxsize=16)
def _seeded_spectrum(seed: int, widths: tuple[int, ...], activations: tuple[str, ...], exponents, dtype):
    """:func:`deep_spectrum` of ``PRNGKey(seed)`` and the power-law covariances of ``exponents``,
    computed once and kept as constants (also when first asked for inside a traced program, so that
    a solve does not redo the eigendecomposition at every iteration)."""
    with jax.ensure_compile_time_eval():
        covariances = exponent_covariances(exponents, widths)
        omega, theta2 = deep_spectrum(jax.random.PRNGKey(seed), widths, activations, covariances)
        return jnp.asarray(omega, dtype), jnp.asarray(theta2, dtype)


def deep_random_features(
    activation="erf", widths=(1.0, 1.0), alpha=2.0, *, depth: int | None = None, d: int = 300,
    seed: int = 0, key=None, rho=1.0, weight_exponent=0.0, weight_covariances=None, **kwargs,
) -> GCM:
    r"""Deep random features with weights drawn at dimension ``d``, as a :class:`GCM`.

    ``activation``: one name of :data:`DEEP_ACTIVATIONS` for every layer, or one per layer;
    ``widths``: the width ratios ``d_l / d`` (concrete: they fix the shapes), one per layer or, with
    ``depth``, one for every layer; ``alpha = n / d``. The weights' rows have the covariance
    ``C_l``: the power law :func:`power_law_spectrum` of ``weight_exponent`` (one number, or one per
    layer; 0: i.i.d. weights) in a random basis, or ``weight_covariances`` (one entry per layer, as
    :func:`check_covariances` takes them). The weights are drawn from ``key``, or ``PRNGKey(seed)``
    (then, with ``weight_exponent``, computed once per process and cached). ``kwargs`` go to
    :class:`GCM` (``lam``, ``loss``, ``teacher``, ``noise``...). See the module docstring.
    """
    widths = layer_widths(widths, d, depth)
    layers = len(widths) - 1
    activations = layer_activations(activation, layers)
    exponents = layer_exponents(weight_exponent, layers)
    check_in("alpha", alpha, POSITIVE)
    check_in("rho", rho, POSITIVE)
    if weight_covariances is not None and any(exponents):
        raise ParameterError("parameters 'weight_exponent' and 'weight_covariances' exclude each other: give one")
    covariances = check_covariances(weight_covariances, widths)
    if key is None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ParameterError(f"parameter 'seed' must be an integer >= 0, got {seed!r}")
    if key is None and weight_covariances is None:
        omega, theta2 = _seeded_spectrum(int(seed), widths, activations, exponents, jnp.result_type(float))
    else:
        key = jax.random.PRNGKey(seed) if key is None else key
        covariances = exponent_covariances(exponents, widths) if weight_covariances is None else covariances
        omega, theta2 = deep_spectrum(key, widths, activations, covariances)
    alpha = jnp.asarray(alpha, jnp.result_type(alpha, float))
    return GCM(omega=omega, theta2=rho * theta2, rho=rho, alpha=alpha * d / widths[-1], **kwargs)


def _ratios(value):
    """Numbers as a tuple of floats (a static field: they fix the shapes or the weights); one
    number as a 1-tuple."""
    try:
        return tuple(float(g) for g in np.ravel(np.asarray(value, float)))
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return value  # rejected, naming the parameter, by the checks


class DeepRandomFeatures(EquivalentGCM):
    """Deep random features: a readout of L frozen random layers (Schröder et al. 2023, 2024)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per input dimension n/d")
    widths: tuple = eqx.field(
        default=(1.0, 1.0), static=True, converter=_ratios,
        metadata={"domain": POSITIVE, "doc": "width ratios d_l/d: one per layer, or one for every layer of depth"},
    )
    depth: int | None = integer(None, Interval(1), "number of layers L (default: the number of widths)")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    activation: str | tuple = choice(
        "erf", DEEP_ACTIVATIONS, "activation: one for every layer, or one per layer",
        sequence=True,
    )
    weight_exponent: float | tuple = eqx.field(
        default=0.0, static=True, converter=_ratios,
        metadata={"domain": NONNEGATIVE, "vector": True,
                  "doc": "power law k^-a of the weights' row covariance (0: i.i.d.); one or one per layer"},
    )
    loss: str = choice("logistic", kernels.LOSSES, "training loss")
    teacher: str = choice("sign", kernels.CHANNELS, "teacher channel")
    d: int = integer(300, Interval(1), "input dimension at which the weights are drawn")
    seed: int = integer(0, Interval(0), "seed of the weights, PRNGKey(seed)")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (teacher=linear, no closed form)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (labels +-1)")

    def __check_init__(self):
        widths = layer_widths(self.widths, self.d, self.depth)
        layer_activations(self.activation, len(widths) - 1)
        layer_exponents(self.weight_exponent, len(widths) - 1)
        if is_concrete(self.alpha):
            self.gcm  # runs the checks of the model's own parameters (the loss, lam = 0...)

    def weights(self) -> list[jax.Array]:
        """The weights ``W_l`` drawn at ``d`` from ``PRNGKey(seed)``, those of the theory."""
        widths = layer_widths(self.widths, self.d, self.depth)
        covariances = exponent_covariances(layer_exponents(self.weight_exponent, len(widths) - 1), widths)
        return deep_weights(jax.random.PRNGKey(self.seed), widths, covariances)

    @property
    def gcm(self) -> GCM:
        """The equivalent :class:`GCM` (the spectrum of ``Omega_L`` at the seeded weights)."""
        return deep_random_features(
            self.activation, self.widths, self.alpha, depth=self.depth, d=self.d, seed=self.seed,
            rho=self.rho, weight_exponent=self.weight_exponent, lam=self.lam, noise=self.noise,
            delta=self.delta, loss=self.loss, teacher=self.teacher, order=self.order,
            panel_order=self.panel_order,
        )


# The infinite-width limit: i.i.d. weights, odd activations, and a chain of subordinations.

EXPONENTS = Interval(0.0, 1.0, high_open=True)
"""The power laws of the weights' row covariances that have an infinite-width limit."""

LIMIT_ACTIVATIONS = {name: RF_ACTIVATIONS[name] for name in ODD_ACTIVATIONS}
"""The activations of the infinite-width limit: odd, so that every layer's features are centred."""


def layer_coefficients(activations: tuple[str, ...], dtype=None):
    r"""``(c, s)``: ``c_l = kappa_{1,l}^2`` and ``s_l = kappa_{*,l}^2`` of each layer at its preactivation
    variance ``r_l``, the limit of every unit's ``A_ii`` for i.i.d. weights: ``r_1 = 1``, ``r_{l+1} =
    tr Omega_l / d_l = c_l r_l + s_l`` (:func:`~hdtheory.models.gcm.gaussian_equivalence` at ``r_l``)."""
    r, c, s = jnp.ones((), dtype or float), [], []
    for activation in activations:  # the layers: few, each its own activation
        _, k1, kstar = gaussian_equivalence(activation, dtype=r.dtype, variance=r)
        c.append(k1**2)
        s.append(kstar**2)
        r = r * k1**2 + kstar**2
    return jnp.stack(c), jnp.stack(s)


_LAW_EDGES = (0.0, 0.02, 0.1, 0.3, 0.6, 0.85, 0.95, 0.985, 0.996, 0.999, 1.0)
"""Panels in ``v = u^{1/4}`` for :func:`inverse_power_law_rule`, graded towards both ends."""


def inverse_power_law_rule(exponents, order: int = 12):
    r"""``(b, p)``, shape ``(L, order)``: a rule ``sum_k p_k f(b_k) ~ E f(b)`` for the law of the
    eigenvalues ``b = 1 / lambda`` of ``C_l^{-1}``, ``C_l`` the power law of exponent ``a_l`` in
    ``[0, 1)`` at infinite width: the normalised spectrum ``k^-a / mean_j(j^-a)`` tends to the law of
    ``lambda = (1 - a) u^-a``, ``u ~ U(0, 1)`` (its ``k``-th eigenvalue is ``(1 - a) (k / m)^-a`` up to
    ``O(m^{a - 1})``), so ``b = u^a / (1 - a)`` in ``[0, 1 / (1 - a)]`` (``E 1 / b = 1``). Gauss-Legendre
    panels of ``order`` nodes in ``v``, ``u = v^4`` (the integrand ``4 v^3 f(v^{4 a} / (1 - a))`` is
    smooth to third order at ``v = 0`` for every ``a``), graded towards ``v = 1``, where ``1 / (t b +
    y)`` nears its pole at the lower end of ``t``, and towards ``v = 0``. At ``a = 0`` every node is
    ``b = 1`` (``C = I``). Differentiable in ``a``."""
    a = jnp.asarray(exponents)[:, None]
    v, w = kernels.legendre_panels(jnp.asarray(_LAW_EDGES, a.dtype), order)
    return v ** (4 * a) / (1 - a), jnp.broadcast_to(4 * v**3 * w, (a.shape[0], v.shape[0]))


class Chain(NamedTuple):
    """The chain of :func:`subordination_chain` from one ``zeta_0``: each field one value per layer."""

    w: jax.Array
    """``w_l``, the point of layer ``l``'s trace (``w_L = z``)."""
    g: jax.Array
    """``g_l = tr (Omega_l - w_l)^{-1} / d_l``."""
    e: jax.Array
    """``e_l = 1 + w_l g_l = tr[Omega_l (Omega_l - w_l)^{-1}] / d_l``, in ``(0, 1)``."""
    residual: jax.Array
    """``|E[1 / (t_l b + y_l)] / g_{l-1} - 1|``, the relative residual of the inner root."""


def _climb(evaluate, t, tol, steps):
    """Newton's method from ``t`` on an increasing concave ``f`` (``evaluate(t) -> (f, f')``) with
    ``f(t) <= 0``: the tangent lies above ``f``, so that every step lands left of the root and the
    iterates increase to it monotonically, without a bracket. Stops at ``f >= -tol``, or where a step
    no longer advances (the rounding of ``f``), or after ``steps`` steps."""

    def running(carry):
        t, f, slope, advanced, i = carry
        return (f < -tol) & advanced & (i < steps)

    def body(carry):
        t, f, slope, _, i = carry
        new = t - f / slope
        advanced = new > t
        f_new, slope_new = evaluate(new)
        keep = advanced & jnp.isfinite(f_new)
        t, f, slope = (jnp.where(keep, x_new, x) for x_new, x in ((new, t), (f_new, f), (slope_new, slope)))
        return t, f, slope, keep, i + 1

    return jax.lax.while_loop(running, body, (t, *evaluate(t), jnp.asarray(True), 0))[0]


def subordination_chain(zeta, widths, slopes, floors, laws, steps: int = 50) -> Chain:
    r"""The chain of the module docstring from ``zeta_0 = zeta``, layer by layer from ``(g_0, e_0) =
    (1 / (1 - zeta_0), 1 / (1 - zeta_0))``: ``y = e / g`` (``= (1 + w g) / g``), ``t`` the root of ``E 1 /
    (t b + y) = g`` (``b`` the eigenvalues of ``C_l^{-1}``, the rule ``laws = (b, p)`` of
    :func:`inverse_power_law_rule`), ``g <- 1 / (c_l r_l t)``, ``e <- s_l g + e / r_l`` and ``w = s_l -
    c_l t (r_l - e)``, with ``r_l = gamma_l / gamma_{l-1}``: ``g_L`` is the Stieltjes transform ``tr
    (Omega_L - z)^{-1} / d_L`` at ``z = w_L``. With ``C_l = I`` (``b = 1``) ``t = -w_{l-1}``.

    ``e`` and ``w`` follow from the chain's ``1 + w_l g_l`` and ``w_l`` with ``t E[b / (t b + y)] = 1 - y
    E[1 / (t b + y)] = 1 - e`` at the root (derived here): ``e``, a sum of positive terms, keeps its
    relative precision where ``1 + z g`` cancels (``|z|`` large against the spectrum), and so does ``y``.
    The inner root is found by :func:`_climb` on ``1 / E[1 / (t b + y)] - 1 / g``, increasing and concave
    in ``t`` (a harmonic mean of functions affine in ``t``), from ``t = (1 - e) / (g E b)``, left of
    the root by Jensen's inequality (``E 1 / (t b + y) >= 1 / (t E b + y)``) and the root itself at
    ``b = 1``: a few steps at every point, no bisection."""
    ratios = widths / jnp.concatenate([jnp.ones_like(widths[:1]), widths[:-1]])
    eps = jnp.finfo(jnp.result_type(zeta, float)).eps

    def layer(carry, coefficients):
        g, e = carry
        c, s, ratio, b, p = coefficients
        y = e / g

        def climbing(t):
            moment = jnp.sum(p / (t * b + y))
            return 1 / moment - 1 / g, jnp.sum(p * b / (t * b + y) ** 2) / moment**2

        start = jax.lax.stop_gradient((1 - e) / (g * jnp.sum(p * b)))
        t = jax.lax.stop_gradient(_climb(climbing, start, 16 * eps / jax.lax.stop_gradient(g), steps))
        # Two Newton steps differentiated in full: the step's derivative in t vanishes at the root, so
        # that they carry the root's first and second derivatives (the traces' g' and h' are slopes).
        for _ in range(2):
            f, slope = climbing(t)
            t = t - f / slope
        residual = jnp.abs(jnp.sum(p / (t * b + y)) / g - 1)
        g_next = 1 / (c * ratio * t)
        e_next = s * g_next + e / ratio
        return (g_next, e_next), Chain(w=s - c * t * (ratio - e), g=g_next, e=e_next, residual=residual)

    zeta = jnp.asarray(zeta)
    h = 1 / (1 - zeta)
    return jax.lax.scan(layer, (h, h), (slopes, floors, ratios) + tuple(laws))[1]


def subordination(z, widths, slopes, floors, laws, steps: int = 100):
    r"""``(zeta_0, residual)``: the root of ``F(zeta_0) = z`` below the spectrum, ``F`` the map
    ``zeta_0 -> w_L`` of :func:`subordination_chain`, for a real ``z`` below the spectrum of
    ``Omega_L``. There ``zeta_0(z) = 1 - 1 / h_L(z)`` with ``h_L`` the Stieltjes transform of a
    positive measure, convex (Cauchy-Schwarz: ``h h'' >= 2 h'^2``) and increasing, so that ``F`` is
    concave and increasing on the branch ``zeta_0 < zeta_0^*`` (``zeta_0^*`` the lower edge of the
    spectrum). Off the branch the chain is no trace and ``F`` may cross ``z`` again, even with ``F' >
    0`` (two layers whose maps decrease); on it every layer's map ``w_{l-1} -> w_l`` increases
    (Silverstein and Choi 1995: a real point below the spectrum of ``W A W^T / m`` is the image of a
    point of increase of its subordination's inverse), and ``0 < e_l < 1``, ``g_l > 0``. The branch
    is reached by multiplying ``zeta_0`` by 16 from ``-1 - |z|`` until every layer's ``dw_l / dzeta_0
    > 0`` (the branch's edge does not depend on ``z``); a Newton step from there, if it lies right of
    the root, lands left of it (the tangent of a concave function lies above it), and :func:`_climb`
    goes from there to the root. ``residual``: the relative ``|F - z|`` with the inner roots'
    (:class:`Chain`), ``inf`` at a point off the branch. The last step is taken with the gradient on,
    so that the root's derivative is the implicit one, ``-dF/dp / F'`` (as
    :func:`hdtheory.kernels.roots.scalar_root`)."""
    dtype = jnp.result_type(z, widths, float)
    scale = 1 + jnp.abs(jax.lax.stop_gradient(z))
    closed, consts = jax.closure_convert(lambda t: subordination_chain(t, widths, slopes, floors, laws), z)
    consts = jax.lax.stop_gradient(consts)
    target = jax.lax.stop_gradient(z)

    def linearised(t):
        return jax.jvp(lambda t: closed(t, *consts), (t,), (jnp.ones_like(t),))

    def on_branch(chain, tangent):
        return jnp.all(tangent.w > 0) & jnp.all(chain.g > 0) & jnp.all((chain.e > 0) & (chain.e < 1))

    def off_branch(carry):
        t, i = carry
        return ~on_branch(*linearised(t)) & (i < 64)

    start = jax.lax.while_loop(off_branch, lambda c: (16 * c[0], c[1] + 1), (-scale, 0))[0]
    # Right of the root, the tangent of the concave F lies above it: a Newton step lands left of the
    # root, on the branch.
    chain, tangent = linearised(start)
    start = jnp.where(chain.w[-1] > target, start - (chain.w[-1] - target) / tangent.w[-1], start)

    def climbing(t):
        chain, tangent = linearised(t)
        return chain.w[-1] - target, tangent.w[-1]

    t = jax.lax.stop_gradient(_climb(climbing, start, 64 * jnp.finfo(dtype).eps * scale, steps))
    chain, tangent = jax.lax.stop_gradient(linearised(t))
    residual = jnp.maximum(jnp.abs(chain.w[-1] - target) / scale, jnp.max(chain.residual))
    residual = jnp.where(on_branch(chain, tangent), residual, jnp.inf)
    F = subordination_chain(t, widths, slopes, floors, laws).w[-1]
    return t - (F - z) / tangent.w[-1], residual


class Traces(NamedTuple):
    """The traces of :meth:`DeepLimitGCM.traces` at a real ``z < 0``, with their derivatives in ``z``."""

    g: jax.Array
    """``tr (Omega_L - z)^{-1} / d_L``."""
    dg: jax.Array
    e: jax.Array
    """``1 + z g = tr[Omega_L (Omega_L - z)^{-1}] / d_L``, computed without the cancellation of ``1 + z
    g``."""
    de: jax.Array
    h: jax.Array
    """``tr[Phi_L^T Phi_L (Omega_L - z)^{-1}] / d``."""
    dh: jax.Array
    residual: jax.Array
    """The relative residual of :func:`subordination`, the inner roots' included."""


def limit_traces(z, widths, slopes, floors, laws) -> Traces:
    r""":class:`Traces` of :meth:`DeepLimitGCM.traces` for the laws ``(b, p)`` of the eigenvalues of the
    ``C_l^{-1}`` (:func:`inverse_power_law_rule`, or any discrete laws)."""
    zeta, residual = subordination(z, widths, slopes, floors, laws)
    chain, tangent = jax.jvp(
        lambda t: subordination_chain(t, widths, slopes, floors, laws), (zeta,), (jnp.ones_like(zeta),)
    )
    slope, h = tangent.w[-1], 1 / (1 - zeta)
    ok = residual <= 64e3 * jnp.finfo(residual.dtype).eps
    traces = (chain.g[-1], tangent.g[-1] / slope, chain.e[-1], tangent.e[-1] / slope, h, h**2 / slope)
    return Traces(*(jnp.where(ok, x, jnp.nan) for x in traces), residual=residual)


class DeepLimitGCM(ERM):
    r"""ERM with a ridge penalty on the features of infinite-width deep random features: the
    equations of :class:`~hdtheory.models.gcm.GCM` with its spectral sums the deterministic
    equivalents of :func:`subordination` (module docstring). ``alpha = n / d_L``."""

    widths: jax.Array = eqx.field(default=(1.0,), converter=jnp.asarray)
    """The width ratios ``gamma_l = d_l / d``, shape ``(L,)``."""
    slopes: jax.Array = eqx.field(default=(1.0,), converter=jnp.asarray)
    """``c_l = kappa_{1,l}^2``, shape ``(L,)``."""
    floors: jax.Array = eqx.field(default=(0.0,), converter=jnp.asarray)
    """``s_l = kappa_{*,l}^2``, shape ``(L,)``."""
    exponents: jax.Array = eqx.field(default=(0.0,), converter=jnp.asarray)
    """The power laws ``a_l`` in ``[0, 1)`` of the weights' row covariances, shape ``(L,)`` (0: i.i.d.)."""

    def __check_init__(self):
        if self.penalty != "ridge" or self.prior != "gaussian":
            raise ParameterError("parameters 'penalty' and 'prior' must be ridge and gaussian for DeepLimitGCM")
        check_in("lam", self.lam, POSITIVE, " (the spectral sums are taken below the spectrum, at -lam / Vhat)")

    def traces(self, z) -> Traces:
        r""":class:`Traces` at a real ``z < 0``: ``g = tr (Omega_L - z)^{-1} / d_L``, ``e = 1 + z g``, ``h =
        tr[Phi_L^T Phi_L (Omega_L - z)^{-1}] / d``, their derivatives in ``z``, and the relative residual
        of :func:`subordination` (``nan`` in the traces where it exceeds ``10^3`` times its tolerance:
        no quiet wrong number)."""
        return limit_traces(z, self.widths, self.slopes, self.floors, inverse_power_law_rule(self.exponents))

    def update(self, state: Overlaps) -> Overlaps:
        # 1 + z g = e and 1 + 2 z g + z^2 g' = e + z e' from the chain's e, which does not cancel at
        # large |z| (module docstring).
        mhat, qhat, Vhat = self.conjugates(state)
        z = -self.lam / Vhat
        traces = self.traces(z)
        return Overlaps(
            m=mhat * self.rho * traces.h / Vhat,
            q=(mhat**2 * self.rho * (traces.h + z * traces.dh) + qhat * (traces.e + z * traces.de)) / Vhat**2,
            V=traces.e / Vhat,
        )

    def observables(self, state: Overlaps) -> dict[str, jax.Array]:
        """Those of :class:`~hdtheory.ERM` but its weight side's (``weight_error``, ``sparsity_hat``)."""
        observables = super().observables(state)
        del observables["weight_error"], observables["sparsity_hat"]
        return observables


def deep_random_features_limit(
    activation="erf", widths=(1.0, 1.0), alpha=2.0, *, rho=1.0, weight_exponent=0.0, **kwargs
) -> DeepLimitGCM:
    r"""Deep random features at infinite width (odd activations), as a :class:`DeepLimitGCM`:
    ``widths`` the ratios ``gamma_l = d_l / d`` (an array: differentiable), ``alpha = n / d``,
    ``weight_exponent`` the power laws ``a_l`` in ``[0, 1)`` of the weights' row covariances (one, or
    one per layer; 0: i.i.d.; differentiable); ``kwargs`` go to :class:`DeepLimitGCM` (``lam > 0``,
    ``loss``, ``teacher``, ``noise``...). See the module docstring."""
    widths = jnp.asarray(widths)
    widths = widths.astype(jnp.result_type(widths, float))
    if widths.ndim != 1 or widths.shape[0] == 0:
        raise ParameterError(f"parameter 'widths' must hold one width ratio d_l / d > 0 per layer, got shape {widths.shape}")
    check_in("widths", widths, POSITIVE)
    check_in("alpha", alpha, POSITIVE)
    check_in("rho", rho, POSITIVE)
    activations = layer_activations(activation, widths.shape[0])
    if not set(activations) <= set(ODD_ACTIVATIONS):
        raise ParameterError(f"parameter 'activation' must be among {', '.join(ODD_ACTIVATIONS)} at infinite width, "
                             f"got {', '.join(activations)}")
    check_in("weight_exponent", weight_exponent, EXPONENTS,
             " (a >= 1: the normalised power law k^-a has no limit as the width grows)")
    exponents = jnp.asarray(weight_exponent, widths.dtype)
    if exponents.ndim > 1 or exponents.size not in (1, widths.shape[0]):
        raise ParameterError(f"parameter 'weight_exponent' must be one number or one per layer "
                             f"({widths.shape[0]}), got shape {exponents.shape}")
    exponents = jnp.broadcast_to(exponents, widths.shape)
    slopes, floors = layer_coefficients(activations, widths.dtype)
    return DeepLimitGCM(widths=widths, slopes=slopes, floors=floors, exponents=exponents, rho=rho,
                        alpha=alpha / widths[-1], **kwargs)


class DeepRandomFeaturesLimit(EquivalentGCM):
    """Deep random features at infinite width: i.i.d. or power-law weights, no seed (Schröder et al.
    2023, 2024)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per input dimension n/d")
    widths: jax.Array = parameter((1.0, 1.0), POSITIVE, "width ratios d_l/d, one per layer", vector=True)
    weight_exponent: jax.Array = parameter(
        0.0, EXPONENTS, "power law k^-a of the weights' row covariance (0: i.i.d.); one or one per layer",
        vector=True,
    )
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    activation: str | tuple = choice(
        "erf", LIMIT_ACTIVATIONS, "activation: one for every layer, or one per layer", sequence=True
    )
    loss: str = choice("square", kernels.LOSSES, "training loss")
    teacher: str = choice("linear", kernels.CHANNELS, "teacher channel")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (teacher=linear, no closed form)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (labels +-1)")

    def __check_init__(self):
        if all(map(is_concrete, (self.alpha, self.widths, self.weight_exponent))):
            self.gcm  # runs the checks of the widths, the activations and the model's own parameters

    @property
    def gcm(self) -> DeepLimitGCM:
        """The equivalent :class:`DeepLimitGCM`."""
        return deep_random_features_limit(
            self.activation, self.widths, self.alpha, rho=self.rho, weight_exponent=self.weight_exponent,
            lam=self.lam, noise=self.noise, delta=self.delta, loss=self.loss, teacher=self.teacher, order=self.order,
            panel_order=self.panel_order,
        )
