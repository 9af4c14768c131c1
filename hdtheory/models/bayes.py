r"""Bayes-optimal inference in generalised linear models: state evolution and free entropy.

**Setting** (Barbier, Krzakala, Macris, Miolane and Zdeborova 2019, PNAS 116, 5451, "Optimal
errors and phase transitions in high-dimensional generalized linear models"). A signal
``w* in R^d`` with i.i.d. entries from a prior ``P0`` of second moment ``rho``
(:mod:`hdtheory.kernels.priors`: ``gaussian``, ``rademacher``, ``gauss-bernoulli``,
``sparse-rademacher``, or ``discrete`` with atoms ``values`` of ``probabilities``, whose second
moment ``sum_k p_k v_k^2`` replaces ``rho``); ``n = alpha d`` inputs ``x_i ~ N(0, I_d)``; labels
``y_i ~ P_out(y | z_i)`` of the fields ``z_i = w*.x_i / sqrt(d)`` (:mod:`hdtheory.kernels.channels`:
``linear``, ``sign``, ``probit``, ``relu`` and ``abs``, real phase retrieval). The statistician knows
``P0`` and ``P_out`` and computes the posterior; this is the paper's setting with its matrix
``Phi = X / sqrt(d)`` (entries of variance ``1 / n`` in their notation, ``n`` being the dimension
there), ``alpha = m / n`` in theirs.

**Order parameter.** The overlap ``q = E[w*.<w>] / d`` of the posterior mean with the signal, which
the Nishimori identity makes equal to ``|<w>|^2 / d``: the state is ``q`` in ``[0, rho]``. With
``V = rho - q``, ``omega = sqrt(q) xi``, ``xi ~ N(0, 1)``, ``Z_out(y, omega, V)`` the channel's
partition function and ``g = d_omega log Z_out``, the fixed point (the paper's eqs. (6)-(7), also the
state evolution of GAMP from ``q_0``) is

.. math::
    \hat q = \alpha\, \mathbb{E}_\xi \int dy\, Z_{out}(y, \omega, V)\, g(y, \omega, V)^2, \qquad
    q = \mathbb{E}_{x^* \sim P_0, z}\, x^* f_a(\hat q x^* + \sqrt{\hat q} z, \hat q),

``f_a = d_B log Z_0(B, A)`` the prior's posterior mean. ``update`` composes the two.

**Free entropy** (the paper's potential ``f_RS(q, r)``, eq. (5), at ``r = qhat(q)``):

.. math:: f = \psi_{P_0}(\hat q) - \hat q q / 2 + \alpha \Psi_{out}(q), \quad
          \psi_{P_0}(r) = \mathbb{E} \log Z_0(r x^* + \sqrt r z, r), \quad
          \Psi_{out}(q) = \mathbb{E}_\xi \int dy\, Z_{out} \log Z_{out};

the limit of ``E log Z / d`` is ``sup_q inf_r f_RS``: of two fixed points, the one of larger ``f``
is the Bayes-optimal one, and the mutual information per variable is ``-f`` up to a constant that
does not depend on the state. AMP (and ``update`` iterated from the uninformed state) reaches the
fixed point of largest ``q`` below its start's basin; where that is not the maximiser of ``f`` there
is a computational gap.

**Coordinates** (:class:`~hdtheory.models._overlap.Overlaps`): the solver works on ``u = log(rho - q)``,
the log of the MMSE, floored at ``log(rho eps)`` (perfect recovery, reached for discrete priors or
noiseless channels, where the conjugate ``qhat`` is large and finite); ``q = 0`` is a fixed point of
the symmetric channels below weak recovery, and ``init("uninformed")`` an infinitesimal overlap.
Gaussian averages over ``sqrt(q) xi`` and ``sqrt(qhat) z`` are differentiated by the heat equation
(:func:`~hdtheory.kernels.quadrature.smoothed_expectation`), so that derivatives are finite at
``q = 0``. The ``xi`` integral is a Gauss-Legendre panel rule with edges at ``0`` and
``+-{1, 4, 16} sqrt(V / q)`` (the width of the channel's transition in ``xi``, which shrinks to zero
at perfect recovery), capped at ``+-{1.5, 3.5, 6}`` (the Gaussian's scales, where the transition
is wide, near ``q = 0``), and so is the average of the regression channels' ``Var(phi(z) | omega, V)``
in ``gen_error``; labels of the ``relu`` and ``abs`` channels by panels cut at ``z = 0``.

**Observables.** ``q``; ``m`` (the overlap with the signal, equal to ``q``); ``mmse = rho - q``, the
minimum mean squared error per entry; ``qhat``; ``gen_error`` and ``gen_error_total``, the
Bayes-optimal generalisation error on a fresh sample (without and with the label noise): for the
classification channels the 0-1 error of the Bayes prediction ``sign(omega)``, against ``sign(z)``
and against the noisy label; for the others the mean squared error of ``E[y | data]``,
``E Var(phi(z) | omega, V)`` plus ``noise`` for the total (no 1/2); ``gibbs_error`` and
``gibbs_error_total``, the same errors of the Gibbs estimator, a sample ``w`` from the posterior,
predicting with its noiseless output ``phi(u)``, ``u = w.x / sqrt(d)``; and ``free_entropy``.

**Generative prior** (``prior="generative"``; Aubin, Loureiro, Baker, Krzakala and Zdeborova 2019,
"Exact asymptotics for phase retrieval and compressed sensing with random generative priors",
arXiv:1912.02008: compressed sensing is the ``linear`` channel, real phase retrieval ``abs``). The
signal is the output of random layers, ``w* = phi_L(W_L ... phi_1(W_1 z) ...)``, named by
``activation`` (comma-separated, first layer first) with ratios ``beta`` (``k_l / k_{l-1}``, one per
layer or one for all; ``d = k_L``), :mod:`hdtheory.kernels.generative`, on a latent ``z`` of
i.i.d. entries from the prior named ``latent`` (``gaussian`` by default; ``rho``, ``values`` and
``probabilities`` are its parameters, and the signal's second moment is the stack's), each layer's
output with Gaussian noise of variance ``layer_noise`` (one per layer or one for all). The prior's ``overlap(qhat)`` and ``psi(qhat)`` become the
stack's ``update(qhat, latents)`` and ``free_entropy(qhat, latents)``: the state is
``(q, q_z, q_h1, ..., q_h{L-1})``, all updated from the current state (as multi-layer AMP does), and

.. math:: f = \psi_{layers}(\hat q, q_z, \dots) - \hat q q / 2 + \alpha \Psi_{out}(q).

Thresholds (from the linearised state evolution about ``q = 0``, where the channel gives
``qhat ~ 2 alpha q`` for noiseless phase retrieval): weak recovery at
``alpha = 1 / (2 (1 + sum_l d / k_l))`` for linear layers (``1 / (2 (1 + beta))`` for one), and
``1 / (2 (1 + 4 beta / pi^2))`` for one sign layer; noiseless compressed sensing through linear layers
is perfect from ``alpha = k_0 / d``. Observables add ``q_z``, ``mmse_z`` and, for a stack,
``q_h{l}``, ``mmse_h{l}``.

**Gibbs error** (Gibbs learning of the perceptron, Engel and Van den Broeck 2001, "Statistical Mechanics
of Learning", ch. 2). By the Nishimori identity a posterior sample is distributed like the teacher given the
data: ``|w|^2 / d = rho`` and ``w.w* / d = q``, and given the data its field ``u`` and the teacher's
``z`` are independent draws of ``N(omega, V)``. Hence, for the classification channels, the 0-1 error
of ``sign(u)`` is ``arccos(q / rho) / pi`` (``channels.test_errors(q, rho, rho)``: a student of
overlap ``q`` and norm ``rho``; against the noisy label ``noise + (1 - 2 noise) arccos(q / rho) / pi``
for ``sign``), and for the regression channels ``E (phi(u) - phi(z))^2 = 2 E Var(phi(z) | omega, V)``,
twice the Bayes-optimal excess error (``2 (rho - q)`` for the linear channel), plus ``noise`` for the
total (no 1/2, CONVENTIONS).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, check_in, check_integer, choice, parameter
from ..kernels.quadrature import smoothed_expectation
from . import _prior
from ._overlap import Overlaps

PRIORS = {**_prior.PRIORS, "generative": kernels.Generative}
"""The priors of the signal: the separable ones, and a generative prior (a stack of layers)."""

NOISE_RANGES = {
    "linear": NONNEGATIVE,
    "sign": Interval(0.0, 0.5, high_open=True),
    "probit": NONNEGATIVE,
    "relu": POSITIVE,
    "abs": NONNEGATIVE,
    "logistic": NONNEGATIVE,
}

class BayesGLM(Overlaps):
    """Bayes-optimal generalised linear model: state evolution of GAMP; see the module docstring."""

    alpha: jax.Array = parameter(1.0, POSITIVE, "sample ratio n/d")
    rho: jax.Array = parameter(
        1.0,
        POSITIVE,
        "prior second moment |w*|^2/d (density of non-zeros for the sparse priors; unused for discrete; "
        "of the latent for prior=generative)",
    )
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit, relu, abs) or flip probability (sign)"
    )
    prior: str = choice("gaussian", PRIORS, "prior of the signal's entries")
    values: jax.Array = _prior.values_field()
    probabilities: jax.Array = _prior.probabilities_field()
    channel: str = choice("linear", kernels.GLM_CHANNELS, "output channel P(y|z)")
    activation: str = _prior.activation_field()
    beta: jax.Array = _prior.beta_field()
    layer_noise: jax.Array = _prior.layer_noise_field()
    latent: str = _prior.latent_field()
    order: int = eqx.field(default=64, static=True)
    panel_order: int = eqx.field(default=16, static=True)
    label_order: int = eqx.field(default=10, static=True)

    def __check_init__(self):
        if self.channel in NOISE_RANGES:
            check_in("noise", self.noise, NOISE_RANGES[self.channel], f" for channel={self.channel}")
        if self._generative:
            _prior.check(self.latent, self.rho, self.values, self.probabilities, field="latent")
        else:
            _prior.check(self.prior, self.rho, self.values, self.probabilities)
        _prior.check_layers(self.activation, self.beta, self.layer_noise)
        for name, low in (("order", 8), ("panel_order", 4), ("label_order", 4)):
            check_integer(name, getattr(self, name), Interval(low))

    @property
    def _generative(self) -> bool:
        return self.prior == "generative"

    @property
    def prior_fn(self) -> kernels.Prior | kernels.Generative:
        if self._generative:
            latent = _prior.build(self.latent, self.rho, self.values, self.probabilities)
            return _prior.layers(self.activation, self.beta, layer_noise=self.layer_noise, latent=latent)
        return _prior.build(self.prior, self.rho, self.values, self.probabilities)

    @property
    def channel_fn(self) -> kernels.Channel:
        return kernels.GLM_CHANNELS[self.channel](self.noise)

    @property
    def _signal_rho(self):
        """The signal's second moment: ``rho``, that of the discrete prior's atoms, or of the
        generative prior's output."""
        return self.prior_fn.rho

    @property
    def _rho(self):
        """The bounds of the state: the signal's second moment, then (generative prior) those of the
        layers' inputs."""
        if not self._generative:
            return self._signal_rho
        dtype = jnp.result_type(self.alpha, float)
        return jnp.concatenate([jnp.asarray(self._signal_rho, dtype)[None], self.prior_fn.rhos.astype(dtype)])

    def _checked(self, q):
        """``(q, V)``: the signal's overlap ``q`` moved into ``[0, rho]`` (see :class:`Overlaps`),
        ``V = rho - q`` floored."""
        q = super()._checked(q, self._signal_rho)
        return q, jnp.maximum(self._signal_rho - q, self._signal_rho * jnp.finfo(jnp.result_type(q)).eps)

    def _split(self, state):
        """``(q, latents)``: the signal's overlap and (generative prior) the layers' state, else None."""
        return (state[0], state[1:]) if self._generative else (state, None)

    def _xi_rule(self, q, V):
        """Panels for ``E_xi`` at ``omega = sqrt(q) xi``, cut at ``0`` and ``+-{1, 4, 16} sqrt(V / q)``."""
        width = jax.lax.stop_gradient(jnp.sqrt(V / jnp.maximum(q, jnp.finfo(V.dtype).tiny)))
        # The transition's width in xi, capped at the Gaussian's own scales (a wide transition, near
        # q = 0, leaves an integrand that is smooth on the scale of the Gaussian weight).
        scales = jnp.minimum(width * jnp.array([1.0, 4.0, 16.0]), jnp.array([1.5, 3.5, 6.0]))
        edges = jnp.concatenate([jnp.zeros(1, V.dtype), scales.astype(V.dtype)])
        edges = jnp.concatenate([edges, -edges[1:]])
        return kernels.panel_rule(edges, self.panel_order)

    def _channel_average(self, integrand, q):
        """``E_xi int dy Z_out(y, omega, V) integrand(y, omega, V)`` at ``omega = sqrt(q) xi``."""
        q, V = self._checked(q)
        xi, w_xi = self._xi_rule(q, V)
        label_order = self.label_order

        def f(omega, args):
            channel, V = args
            y, w, _ = channel.label_quadrature(omega, V, label_order)
            return jnp.sum(w * integrand(channel, y, omega[..., None], V), axis=-1)

        return smoothed_expectation(f, q, (self.channel_fn, V), xi, w_xi)

    def conjugate(self, q) -> jax.Array:
        """``qhat = alpha E int Z_out g^2``."""
        square = lambda ch, y, omega, V: ch.dlog_partition(y, omega, V) ** 2
        return self.alpha * self._channel_average(square, q)

    def update(self, state) -> jax.Array:
        # The overlap cannot exceed rho; the clip removes rounding at perfect recovery.
        prior = self.prior_fn
        q, latents = self._split(state)
        if latents is not None:
            q, latents = prior.update(self.conjugate(q), self._checked_latents(latents))
            return jnp.concatenate([q[None], latents])
        return jnp.minimum(prior.overlap(self.conjugate(q), self.order), prior.rho)

    def linear_stability(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(radius, state, direction)`` for :func:`~hdtheory.threshold`'s ``kind="weak-recovery"``: the
        spectral radius of ``update``'s Jacobian at the trivial fixed point ``state = 0`` (every overlap
        zero, a fixed point of the symmetric channels with a zero-mean prior), and the direction along
        which the state leaves it above one, the eigenvector of that eigenvalue (unit norm, non-negative
        sum; not differentiated). ``update`` is monotone in every overlap, so that its Jacobian there
        has non-negative entries and the radius is its largest, real, eigenvalue. ``radius`` is ``inf``
        where ``0`` is no fixed point (``update(0)`` above ``1e-8 rho``: a channel or a layer that
        informs at once, such as noiseless compressed sensing or a ``relu`` layer's non-zero mean).
        The derivatives at ``q = 0`` are finite (the heat equation, module docstring)."""
        state = jnp.zeros_like(self.init("uninformed"))
        shape = jnp.shape(state)
        flat = lambda x: jnp.reshape(self.update(jnp.reshape(x, shape)), (-1,))
        zero = jnp.reshape(state, (-1,))
        moved = jnp.max(jnp.abs(flat(zero)) / jnp.reshape(jnp.broadcast_to(self._rho, shape), (-1,)))
        jacobian = jax.jacfwd(flat)(zero)
        fixed = jax.lax.stop_gradient(jacobian)
        # The eigenvalue's derivative l^T dJ r / l^T r from its left and right eigenvectors (JAX does
        # not differentiate non-symmetric eigendecompositions): exact to first order, as the
        # refinement and the implicit derivative of the threshold need.
        (values, right), (left_values, left) = jnp.linalg.eig(fixed), jnp.linalg.eig(fixed.T)
        top = jnp.argmax(values.real)
        r, l = right[:, top].real, left[:, jnp.argmax(left_values.real)].real
        radius = values.real[top] + l @ (jacobian - fixed) @ r / (l @ r)
        direction = r
        direction = jnp.reshape(jnp.where(jnp.sum(direction) < 0, -direction, direction), shape)
        return jnp.where(moved > 1e-8, jnp.inf, radius), state, direction

    def _checked_latents(self, latents):
        return Overlaps._checked(self, latents, self._rho[1:])

    def free_entropy(self, state) -> jax.Array:
        """``f_RS(q, qhat(q))``; see the module docstring."""
        q, latents = self._split(state)
        r = self.conjugate(q)
        q, _ = self._checked(q)
        entropy = lambda ch, y, omega, V: ch.log_partition(y, omega, V)
        if latents is None:
            psi = self.prior_fn.free_entropy(r, self.order)
        else:
            psi = self.prior_fn.free_entropy(r, self._checked_latents(latents))
        return psi - r * q / 2 + self.alpha * self._channel_average(entropy, q)

    def gen_errors(self, q):
        """``(gen_error, gen_error_total)`` of the Bayes-optimal predictor; see the module docstring."""
        channel = self.channel_fn
        if channel.classification:
            return channel.test_errors(q, q, self._signal_rho)
        q, V = self._checked(q)
        z, w = self._xi_rule(q, V)  # the output's kink at z = 0 is smoothed over sqrt(V) in omega

        def f(omega, args):
            channel, V = args
            mean, second = channel.output_moments(omega, V)
            return second - mean**2

        excess = smoothed_expectation(f, q, (channel, V), z, w)
        return excess, excess + self.noise

    def gibbs_errors(self, q):
        """``(gibbs_error, gibbs_error_total)``, the errors of a posterior sample; see the module
        docstring."""
        channel = self.channel_fn
        if channel.classification:
            q, _ = self._checked(q)
            return channel.test_errors(q, self._signal_rho, self._signal_rho)
        excess, _ = self.gen_errors(q)
        return 2 * excess, 2 * excess + self.noise

    def observables(self, state) -> dict[str, jax.Array]:
        q, latents = self._split(state)
        gen_error, gen_error_total = self.gen_errors(q)
        gibbs_error, gibbs_error_total = self.gibbs_errors(q)
        latent = {} if latents is None else _prior.layer_observables(self.prior_fn, latents)
        return {
            "q": q,
            "m": q,
            "mmse": self._signal_rho - q,
            "qhat": self.conjugate(q),
            "gen_error": gen_error,
            "gen_error_total": gen_error_total,
            "gibbs_error": gibbs_error,
            "gibbs_error_total": gibbs_error_total,
            **latent,
            "free_entropy": self.free_entropy(state),
        }
