r"""Deep random features: a linear readout of a deep network with frozen random Gaussian weights.

**Setting** (Schröder, Cui, Dmitriev and Loureiro 2023, "Deterministic equivalent and error
universality of deep random features learning", ICML; Schröder et al. 2024, "Asymptotics of
learning with deep structured (random) features", ICML). Inputs ``x ~ N(0, I_d)``, ``h_0 = x``;
``L`` hidden layers

.. math:: h_l = \sigma_l(W_l h_{l-1} / \sqrt{d_{l-1}}),\qquad l = 1..L,

of widths ``d_l = round(gamma_l d)`` (``d_0 = d``), with weights ``W_l`` of i.i.d. ``N(0, 1)``
entries drawn once, from a seed, at a finite ``d``; a teacher ``z = w*.x / sqrt(d)`` with
``|w*|^2 / d = rho`` and any channel of :mod:`hdtheory.kernels.channels`; a student ``w.h_L /
sqrt(d_L)`` trained by ERM on ``n = alpha d`` samples (any loss of :mod:`hdtheory.kernels.losses`,
penalty ``(lam / 2) |w|^2``; the conventions of :mod:`hdtheory.models.erm`).

**Deterministic equivalent given the weights.** By the layer-wise Gaussian equivalence (Schröder et
al. 2023, the linearised population covariances of their conjectured error universality; Schröder
et al. 2024, the closed-form feature covariance of Gaussian rainbow networks, in the form with the
preactivation variance averaged over the units of a layer), the features are equivalent to
Gaussian ones with the covariances, conditioned on the weights,

.. math::
    A_l = W_l \Omega_{l-1} W_l^T / d_{l-1},\quad r_l = \mathrm{tr} A_l / d_l,\quad
    \Omega_l = \kappa_{1,l}^2 A_l + \kappa_{*,l}^2 I_{d_l},\quad
    \Phi_l = \kappa_{1,l} \Phi_{l-1} W_l^T / \sqrt{d_{l-1}},

from ``Omega_0 = Phi_0 = I_d``: ``A_l`` is the covariance of the preactivations of layer ``l``,
``r_l`` their variance averaged over the units, and the Hermite coefficients of
:func:`~hdtheory.models.gcm.gaussian_equivalence` are taken at that variance,
``kappa_1 = E[u sigma(u)] / r``, ``kappa_*^2 = E sigma(u)^2 - r kappa_1^2`` for ``u ~ N(0, r_l)``.
``Omega_L = E[h_L h_L^T]`` and ``Phi_L = E[x h_L^T]``. The activations are odd (``kappa_0 = 0`` at
every variance): the features have mean zero at every layer, so no mean term enters the recursion
(a non-zero ``kappa_0`` would shift the next layer's preactivations unit by unit).

The model is then the :class:`~hdtheory.models.gcm.GCM` of ``(Omega_L, Phi_L)`` with the teacher
averaged over its isotropic law (``E theta theta^T = rho I``, as for
:func:`~hdtheory.models.gcm.random_features`): with ``(omega_j, e_j)`` the eigenpairs of ``Omega_L``,
``theta2_j = d_L rho |Phi_L e_j|^2 / d``, and the model's ratio ``n / d_L = alpha d / d_L``.
Everything is a JAX program (the weights are ``jax.random`` draws; one ``d_L x d_L`` eigendecomposition
per build); the fixed point is differentiable in ``alpha``, ``rho``, ``lam`` and ``noise``.

**Normalisation.** Schröder et al. write the widths ``k_l`` and the sample ratio per input dimension,
as here; their covariances are ours. At depth one the recursion is
:func:`~hdtheory.models.gcm.random_features` with the empirical spectrum of ``F F^T / d`` in place of
its Marchenko-Pastur limit and ``kappa`` at ``r_1 = |F|^2 / (p d)`` instead of 1 (both differ by
``O(1 / sqrt(d))``).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError
from .._theory import check_in, choice, integer, is_concrete, parameter
from .gcm import GCM, RF_ACTIVATIONS, EquivalentGCM, gaussian_equivalence

DEEP_ACTIVATIONS = {name: RF_ACTIVATIONS[name] for name in ("erf", "tanh", "sign", "linear")}
"""The odd activations of the deep model (no mean at any layer)."""


def layer_activations(activation, layers: int) -> tuple[str, ...]:
    """One activation name per layer, from one name or a sequence of ``layers`` names (checked)."""
    names = (activation,) * layers if isinstance(activation, str) else tuple(activation)
    if len(names) != layers or not all(isinstance(a, str) and a in DEEP_ACTIVATIONS for a in names):
        raise ParameterError(
            f"parameter 'activation' must be one of {', '.join(DEEP_ACTIVATIONS)} (odd activations), "
            f"or a sequence of {layers} of them, got {activation!r}"
        )
    return names


def layer_widths(gammas, d: int) -> tuple[int, ...]:
    """``(d, d_1, ..., d_L)`` with ``d_l = max(round(gamma_l d), 1)``; checks ``gammas`` and ``d``."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ParameterError(f"parameter 'd' must be an integer >= 1, got {d!r}")
    if not all(map(is_concrete, gammas if isinstance(gammas, (tuple, list)) else (gammas,))):
        raise ParameterError("parameter 'gammas' must be concrete numbers: they fix the widths of the layers")
    check_in("gammas", gammas, POSITIVE)
    gammas = np.ravel(np.asarray(gammas, float))
    if gammas.size == 0:
        raise ParameterError("parameter 'gammas' must hold one width ratio d_l / d > 0 per layer, got none")
    return (int(d),) + tuple(max(round(float(g) * d), 1) for g in gammas)


def deep_weights(key, widths: tuple[int, ...], dtype=None) -> list[jax.Array]:
    """The weights ``W_l`` (``d_l x d_{l-1}``, i.i.d. ``N(0, 1)``), one key split per layer."""
    keys = jax.random.split(key, len(widths) - 1)
    return [jax.random.normal(k, (widths[l + 1], widths[l]), dtype or float) for l, k in enumerate(keys)]


def deep_covariances(weights, activations: tuple[str, ...], order: int = 40):
    """``(Omega_L, Phi_L, r)``: the population covariances of the module docstring given the weights,
    and the preactivation variances ``r_l`` (shape ``(L,)``)."""
    dtype = weights[0].dtype
    Omega = Phi = jnp.eye(weights[0].shape[1], dtype=dtype)
    variances = []
    for W, activation in zip(weights, activations):  # the layers: few, of different shapes
        width = W.shape[1]
        A = W @ Omega @ W.T / width
        r = jnp.trace(A) / W.shape[0]
        _, k1, kstar = gaussian_equivalence(activation, order, dtype, variance=r)
        Omega = k1**2 * A + kstar**2 * jnp.eye(W.shape[0], dtype=dtype)
        Phi = (k1 / math.sqrt(width)) * Phi @ W.T
        variances.append(r)
    return Omega, Phi, jnp.stack(variances)


@functools.partial(jax.jit, static_argnames=("widths", "activations"))
def deep_spectrum(key, widths: tuple[int, ...], activations: tuple[str, ...]):
    """``(omega, theta2 / rho)``: the eigenvalues of ``Omega_L`` and the teacher's projections per unit
    ``rho``, for the weights drawn from ``key``. Eigenvalues below ``sqrt(eps)`` times the largest
    are set to zero, with their projections: the ratio ``theta2_j / omega_j`` of such a mode (a
    product of nearly singular linear layers) is lost to rounding, and it would count as
    unexplained by the features anyway (its error ``theta2 lam^2 / (omega D^2) -> theta2 / omega``
    as ``omega / lam -> 0``)."""
    Omega, Phi, _ = deep_covariances(deep_weights(key, widths), activations)
    omega, vectors = jnp.linalg.eigh(Omega)
    p = widths[-1]
    positive = omega > jnp.sqrt(jnp.finfo(omega.dtype).eps) * omega[-1]
    theta2 = p * jnp.sum((Phi @ vectors) ** 2, axis=0) / widths[0]
    return jnp.where(positive, omega, 0.0), jnp.where(positive, theta2, 0.0)


@functools.lru_cache(maxsize=16)
def _seeded_spectrum(seed: int, widths: tuple[int, ...], activations: tuple[str, ...], dtype):
    """:func:`deep_spectrum` of ``PRNGKey(seed)``, computed once and kept as constants (also when
    first asked for inside a traced program, so that a solve does not redo the eigendecomposition
    at every iteration)."""
    with jax.ensure_compile_time_eval():
        omega, theta2 = deep_spectrum(jax.random.PRNGKey(seed), widths, activations)
        return jnp.asarray(omega, dtype), jnp.asarray(theta2, dtype)


def deep_random_features(
    activations="erf", gammas=(1.0, 1.0), alpha=2.0, *, d: int = 300, seed: int = 0, key=None, rho=1.0,
    **kwargs,
) -> GCM:
    r"""Deep random features with weights drawn at dimension ``d``, as a :class:`GCM`.

    ``activations``: one name of :data:`DEEP_ACTIVATIONS` for every layer, or one per layer;
    ``gammas``: the width ratios ``d_l / d`` (concrete: they fix the shapes); ``alpha = n / d``; the
    weights are drawn from ``key``, or ``PRNGKey(seed)`` (then computed once per process and
    cached). ``kwargs`` go to :class:`GCM` (``lam``, ``loss``, ``teacher``, ``noise``...). See the
    module docstring for the equations.
    """
    widths = layer_widths(gammas, d)
    activations = layer_activations(activations, len(widths) - 1)
    check_in("alpha", alpha, POSITIVE)
    check_in("rho", rho, POSITIVE)
    if key is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ParameterError(f"parameter 'seed' must be an integer >= 0, got {seed!r}")
        omega, theta2 = _seeded_spectrum(int(seed), widths, activations, jnp.result_type(float))
    else:
        omega, theta2 = deep_spectrum(key, widths, activations)
    alpha = jnp.asarray(alpha, jnp.result_type(alpha, float))
    return GCM(omega=omega, theta2=rho * theta2, rho=rho, alpha=alpha * d / widths[-1], **kwargs)


def _ratios(value):
    """``gammas`` as a tuple of floats (a static field: the widths fix the shapes)."""
    try:
        return tuple(float(g) for g in np.ravel(np.asarray(value, float)))
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return value  # rejected, naming the parameter, by the checks


class DeepRandomFeatures(EquivalentGCM):
    """Deep random features: a readout of L frozen random layers (Schröder et al. 2023)."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per input dimension n/d")
    gammas: tuple = eqx.field(
        default=(1.0, 1.0), static=True, converter=_ratios,
        metadata={"domain": POSITIVE, "doc": "width ratios d_l/d, one per layer (their number: the depth)"},
    )
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    rho: jax.Array = parameter(1.0, POSITIVE, "teacher prior variance |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit) or flip probability (sign)"
    )
    delta: jax.Array = parameter(1.0, POSITIVE, "Huber threshold (used by loss=huber only)")
    activation: str = choice("erf", DEEP_ACTIVATIONS, "activation of every layer (odd)")
    loss: str = choice("logistic", kernels.LOSSES, "training loss")
    teacher: str = choice("sign", kernels.CHANNELS, "teacher channel")
    d: int = integer(300, Interval(1), "input dimension at which the weights are drawn")
    seed: int = integer(0, Interval(0), "seed of the weights, PRNGKey(seed)")
    order: int = integer(96, Interval(8), "Gauss-Hermite nodes per axis (teacher=linear, no closed form)")
    panel_order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel (labels +-1)")

    def __check_init__(self):
        layer_widths(self.gammas, self.d)
        if self.activation in DEEP_ACTIVATIONS and is_concrete(self.alpha):
            self.gcm  # runs the checks of the model's own parameters (the loss, lam = 0...)

    @property
    def gcm(self) -> GCM:
        """The equivalent :class:`GCM` (the spectrum of ``Omega_L`` at the seeded weights)."""
        return deep_random_features(
            self.activation, self.gammas, self.alpha, d=self.d, seed=self.seed, rho=self.rho,
            lam=self.lam, noise=self.noise, delta=self.delta, loss=self.loss, teacher=self.teacher,
            order=self.order, panel_order=self.panel_order,
        )

