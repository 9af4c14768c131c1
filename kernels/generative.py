r"""Generative priors: a signal ``v = phi(W z / sqrt(k))`` seen through a Gaussian channel, and stacks
of such layers.

The signal ``v in R^d`` is the output of a random one-layer network: ``z in R^k`` with i.i.d.
``N(0, 1)`` entries, ``W`` a ``d x k`` matrix of i.i.d. ``N(0, 1)`` entries, fixed and known, the
pre-activations ``h = W z / sqrt(k)`` (each ``N(0, 1)``) and an elementwise activation ``phi``
(Aubin, Loureiro, Maillard, Krzakala and Zdeborova 2019, "The spiked matrix model with generative
priors", NeurIPS; ``beta = d / k`` here is their ``alpha = p / k``).

A Bayes-optimal algorithm sees ``v`` through the scalar Gaussian channel ``B = A v + sqrt(A) xi`` of
SNR ``A`` (as a separable prior is seen, :mod:`hdtheory.kernels.priors`) and, through the network,
each ``h`` as ``N(omega, V)``. The two-sided factor of ``v`` is

.. math:: Z(B, A, \omega, V) = \mathbb{E}_{h \sim N(\omega, V)}\, e^{B \phi(h) - A \phi(h)^2 / 2},

whose ``d_B log Z`` is the posterior mean of ``v`` and ``d_omega log Z`` the output function ``g`` of
the network's generalised linear model (multi-layer AMP, Manoel, Krzakala, Mezard and Zdeborova
2017). In closed form (``s = sqrt(V)``):

- ``linear``, ``phi(h) = h``: ``log Z = -log(1 + A V) / 2 + (B^2 V + 2 B omega - A omega^2) / (2 (1 + A V))``;
- ``sign``: ``log Z = -A / 2 + log(Phi(omega / s) e^B + Phi(-omega / s) e^-B)``;
- ``relu``, ``phi(h) = max(h, 0)``: ``Z = Phi(-omega / s) + Z_linear Phi(m / sigma)`` with the tilted
  mean ``m = (omega + B V) / (1 + A V)`` and variance ``sigma^2 = V / (1 + A V)``.

With ``B = y A`` these are the teacher channels ``y = phi(h) + N(0, 1 / A)`` of
:mod:`hdtheory.kernels.channels` times ``sqrt(2 pi / A) e^{A y^2 / 2}``; the form in ``B`` is finite
and smooth down to ``A = 0``, where the channel's noise is infinite.

**State evolution** of the layer, for the latent overlap ``q`` (``E z*.<z> / k``, ``V = 1 - q``,
``omega = sqrt(q) xi``, ``h* ~ N(omega, V)``, ``v* = phi(h*)``, ``B = A v* + sqrt(A) eta``):

.. math::
    q_v = \mathbb{E}\, v^* \partial_B \log Z, \qquad
    \hat q = \beta\, \mathbb{E} (\partial_\omega \log Z)^2, \qquad
    q' = \frac{\hat q}{1 + \hat q}, \qquad
    \psi = \frac{1}{\beta} \Big(\psi_z(\hat q) - \frac{q \hat q}{2}\Big) + \mathbb{E} \log Z,

``psi_z(r) = r / 2 - log(1 + r) / 2`` the Gaussian latent's free entropy; ``psi`` is the free
entropy per entry of ``v`` of the observation at SNR ``A``, stationary in ``q`` at ``q' = q``, with
``d psi / dA = q_v / 2`` (the I-MMSE relation of a scalar prior, so that the layer enters a state
evolution where a separable prior's ``overlap`` and ``free_entropy`` do). The quadratures average the
MMSE ``rho - q_v = E v* (v* - d_B log Z)`` rather than ``q_v``, so that it vanishes at perfect recovery
with the rule's error in ``E v*^2`` cancelled.

For ``linear`` everything is Gaussian: ``q_v = q + A V^2 / (1 + A V)``, ``qhat = beta A / (1 + A V)``,
``E log Z = A / 2 - log(1 + A V) / 2``; ``v`` is then ``N(0, W W^T / k)``, a Gaussian prior whose
covariance has the Marchenko-Pastur spectrum of ratio ``beta``. For ``sign`` and ``relu`` the averages
are quadratures: ``xi`` on Gauss-Legendre panels cut at the Gaussian's scales ``0, +-1.5, +-3.5, +-6``
and at ``+-{1, 4, 16} sqrt(V / q)`` (the transition of ``Phi(omega / sqrt(V))``); ``v*`` given
``omega`` by the activation's ``law``: two atoms for ``sign`` (weights ``Phi(+-omega / s)``), for
``relu`` an atom at 0 and Gauss-Legendre panels on ``h* > 0`` (the kink is an edge that moves with
``omega``, differentiated, so that derivatives in ``omega`` carry its boundary term); ``eta`` on
Gauss-Legendre panels (``order`` nodes a panel) cut at ``0, +-2.5, +-5`` and at ``c + {0, +-1, +-4} w``
about the activation's ``transition`` ``c`` of width ``w``, where the posterior mean switches (for
``sign``, ``tanh(B + c)`` over a width 1 in ``B``, ``1 / sqrt(A)`` in ``eta``: Gauss-Hermite converges
only algebraically there, as for the Rademacher prior). The fields are ``sqrt(q + eps) xi`` and ``sqrt(A + eps) eta`` with
``eps = 1e-12`` (``1e-6`` in float32): the averages move by ``O(eps)``, and their derivatives stay
finite at ``q = 0`` and ``A = 0``, where those of ``sqrt(q)`` and ``sqrt(A)`` are not (the rules'
nodes are symmetric, so that the ``1 / sqrt(eps)`` cancels to rounding).

**Smooth activations** (:class:`Smooth`: ``erf``, ``tanh``, or any smooth odd increasing bounded
``phi`` given with its inverse; derived here). The factor has no closed form: it is a Gauss-Legendre
rule in ``h`` (``order`` nodes a panel) on ``omega + sqrt(V) {0, +-1.5, +-3.5, +-6, +-9, +-12}`` and
where the likelihood ``e^{-A (phi(h) - B / A)^2 / 2}`` peaks, ``phi^-1(B / A + {0, +-1, +-2.5, +-5, +-9}
/ sqrt(A))`` kept in that window (its width ``1 / (sqrt(A) phi')`` at strong SNR), accumulated in
logs; its derivatives are those of the rule (fixed nodes), ``d_B log Z = <phi>`` and ``d_omega log Z
= <h - omega> / V``. The state-evolution averages would nest four rules (``xi``, ``h*``, ``eta``, and
``h`` inside the factor). With a noiseless layer they are averages over the observation ``(omega,
B)`` alone, whose law is the factor itself (the Nishimori form):
``p(B | omega) = int dh* N(h*; omega, V) N(B; A phi(h*), A) = N(B; 0, A) Z(B, A, omega, V)``, so that,
with ``B = sqrt(A) u``,

.. math:: \mathbb{E} f(B, \omega) = \mathbb{E}_\xi \int du\, N(u)\, Z(\sqrt{A} u, A, \omega, V)\, f,
          \qquad \rho - q_v = \mathbb{E}\, \mathrm{Var}(\phi \mid B, \omega),

(``E v* <phi> = E <phi>^2``), ``qhat / beta = E (d_omega log Z)^2`` and ``E log Z``: a 2-D outer rule
with one rule in ``h`` at each node giving ``Z``, the posterior variance (summed about the posterior
mean: no cancellation near perfect recovery), ``<h>`` and ``log Z`` together. ``xi`` is on the
Gaussian's panels (``panel_order`` nodes a panel), ``u`` on panels at the images
``sqrt(A) phi(omega + sqrt(V) {0, +-1.5, +-3.5, +-6, +-10})`` of the Gaussian's scales, extended by
``1.5, 3.5, 5.5, 9`` beyond the outer ones and by ``+-1.5, +-3.5`` about the central one (the law
of ``u`` is that push-forward smoothed by a unit Gaussian), and the outer nodes are mapped
(``jax.lax.map``) so that memory stays at one ``xi`` node's ``u x h`` grid. At the default orders,
64 ``xi`` x 160 ``u`` x 190 ``h`` nodes: a spiked Wigner solve with an erf layer takes a few seconds
and a peak of about 0.5 GB (0.2 GB of it JAX's own) on a CPU; its averages agree with doubled orders to
1e-9 at moderate SNR, to 2e-7 relative near perfect recovery (``A = 300``, ``q = 0.99``: the rule in ``xi``).
Noisy layers transform these averages as any layer's.

``mean`` ``E phi(h)`` and ``slope`` ``E phi'(h)`` (``h ~ N(0, 1)``) fix the weak-recovery threshold
of a zero-mean activation: near ``q = q_v = 0``, ``q_v ~ rho^2 A + slope^2 q`` and
``qhat ~ beta slope^2 A``.

**Composition** (multi-layer AMP, Manoel et al. 2017; Aubin, Loureiro, Baker, Krzakala and Zdeborova
2019, "Exact asymptotics for phase retrieval and compressed sensing with random generative priors",
arXiv:1912.02008). The input of a layer may itself be a layer's output: ``u_0 = z ~ N(0, I_{k_0})``,
``u_l = phi_l(W_l u_{l-1} / sqrt(k_{l-1}))`` of dimension ``k_l = beta_l k_{l-1}``, the signal
``v = u_L``. Layer ``l``'s pre-activations are ``N(0, rho_{l-1})``, ``rho_{l-1} = E u_{l-1}^2``
(``second_moment``: ``rho_{l-1}``, 1 and ``rho_{l-1} / 2`` for ``linear``, ``sign``, ``relu``;
``(2 / pi) arcsin(2 rho_{l-1} / (1 + 2 rho_{l-1}))`` for ``erf``), so its
factor is taken at ``omega = sqrt(q_{l-1}) xi``, ``V = rho_{l-1} - q_{l-1}``, and the layer below is seen
at the SNR ``A_{l-1} = qhat_{l-1} = beta_l E (d_omega log Z_l)^2`` that this layer sends it, as the
Gaussian latent is. The state is the overlaps ``(q_0, ..., q_{L-1})`` of the inputs (``q_0 = q_z``),
each updated from the current state (the recursion of :meth:`Generative.update`), and

.. math:: \psi_l(A, q_0..q_{l-1}) = \frac{1}{\beta_l}\Big(\psi_{l-1}(\hat q_{l-1}, q_0..q_{l-2})
          - \frac{q_{l-1} \hat q_{l-1}}{2}\Big) + \mathbb{E} \log Z_l, \qquad \psi_0 = \psi_z,

per entry of ``u_l``: stationary in every ``q_l`` at the fixed point (``d E log Z_l / d q_{l-1} =
E (d_omega log Z_l)^2 / 2``, and ``d psi_{l-1} / dA = q_{l-1} / 2``), with ``d psi_L / dA = q_v / 2``.
:func:`compose` builds a stack from the activations' names.

**Noisy layers.** A layer may add Gaussian noise to its output, ``u_l = phi_l(h) + sqrt(Delta_l) eps``
(``noise`` ``Delta``, default 0). Integrating ``u`` out of ``N(u; phi, Delta) e^{B u - A u^2 / 2}``
(derived here) gives the noiseless factor at transformed arguments, ``s = 1 + A Delta``:

.. math:: \log Z_\Delta(B, A, \omega, V) = -\frac{\log s}{2} + \frac{B^2 \Delta}{2 s}
          + \log Z\Big(\frac{B}{s}, \frac{A}{s}, \omega, V\Big),

for every activation, and ``rho = E phi^2 + Delta``. Seeing ``u`` at SNR ``A`` is seeing ``phi`` at
``A' = A / s`` (``B / s = A' phi + sqrt(A') eta'``), so that the averages are the noiseless layer's at
``A'`` (derived here): ``qhat(A) = qhat_0(A')``, the MMSE of ``u``
``Delta / s + mmse_phi(A') / s^2``, and ``E log Z_Delta = E log Z(A') - log(s) / 2 + Delta A (1 + A rho) / (2 s)``
(from ``E B^2 = A^2 rho + A``); ``d psi / dA = q_v / 2`` and the stationarity in the state hold as for
noiseless layers. Multi-layer AMP takes its steps on ``log Z_Delta`` (:meth:`Generative.log_partition`).

**Latent prior.** The latent ``z`` may have any separable prior of :mod:`hdtheory.kernels.priors`
(i.i.d. entries of second moment ``rho_0``) in place of ``N(0, 1)``: the first layer's pre-activations
are then ``N(0, rho_0)`` (``h = W z / sqrt(k)`` is Gaussian as ``k -> inf`` whatever the entries' law,
given ``rho_0``), ``q' = `` the prior's ``overlap(qhat)`` and ``psi_z`` its ``free_entropy(qhat)``
(the scalar channel of SNR ``qhat``, which the latent sees through the first layer's messages, as a
GLM's weights are seen); multi-layer AMP denoises ``z`` with the prior's posterior mean and variance.
With ``N(0, 1)`` these are ``qhat / (1 + qhat)`` and ``qhat / 2 - log(1 + qhat) / 2``.
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

from .priors import Gaussian, Prior
from .quadrature import hermite_rule, legendre_panels, panel_rule

_GAUSSIAN_EDGES = (-6.0, -3.5, -1.5, 0.0, 1.5, 3.5, 6.0)
_BOUND = 10.0
_SMOOTHING = {64: 1e-12, 32: 1e-6}
_TRANSITION = (0.0, 1.0, -1.0, 4.0, -4.0)
_NOISE_EDGES = (0.0, 2.5, -2.5, 5.0, -5.0)
_WINDOW = 12.0
_PRIOR_EDGES = (0.0, 1.5, -1.5, 3.5, -3.5, 6.0, -6.0, 9.0, -9.0, _WINDOW, -_WINDOW)
_LIKELIHOOD_EDGES = (0.0, 1.0, -1.0, 2.5, -2.5, 5.0, -5.0, 9.0, -9.0)
_IMAGE_EDGES = (-10.0, -6.0, -3.5, -1.5, 0.0, 1.5, 3.5, 6.0, 10.0)
_SPREAD_EDGES = (1.5, 3.5, 5.5, 9.0)


def _linear_log_partition(B, A, omega, V):
    return -0.5 * jnp.log1p(A * V) + (B**2 * V + 2 * B * omega - A * omega**2) / (2 * (1 + A * V))


class Activation(eqx.Module):
    """The activation ``phi`` of a generative prior and its two-sided factor; see the module docstring."""

    rho: eqx.AbstractClassVar[float]
    mean: eqx.AbstractClassVar[float]
    slope: eqx.AbstractClassVar[float]

    @abc.abstractmethod
    def phi(self, h):
        """The activation."""

    @abc.abstractmethod
    def second_moment(self, variance):
        """``E phi(h)^2`` for ``h ~ N(0, variance)``."""

    @abc.abstractmethod
    def log_partition(self, B, A, omega, V):
        """``log Z(B, A, omega, V)``, in closed form."""

    def transition(self, A, omega, V):
        """``(center, width)``: where in ``B`` the posterior mean ``d_B log Z`` switches, and over which
        width; the panels of the noise ``eta`` are cut there. None (``inf``) by default."""
        del A, V
        return 0.0 * omega, jnp.inf + 0.0 * omega

    @abc.abstractmethod
    def law(self, omega, V, order: int):
        """``(v, w)``: nodes and weights of the law of ``phi(h)``, ``h ~ N(omega, V)``, differentiable
        in ``omega`` and ``V``."""


class Linear(Activation):
    """``phi(h) = h``."""

    rho = 1.0
    mean = 0.0
    slope = 1.0

    def phi(self, h):
        return h

    def second_moment(self, variance):
        return variance

    def log_partition(self, B, A, omega, V):
        return _linear_log_partition(B, A, omega, V)

    def law(self, omega, V, order: int):
        zeta, w = hermite_rule(order, jnp.result_type(omega, V))
        return omega + jnp.sqrt(V) * zeta, w


class Sign(Activation):
    """``phi(h) = sign(h)``."""

    rho = 1.0
    mean = 0.0
    slope = math.sqrt(2 / math.pi)

    def phi(self, h):
        return jnp.where(h >= 0, 1.0, -1.0).astype(jnp.result_type(h))

    def second_moment(self, variance):
        del variance
        return 1.0

    def log_partition(self, B, A, omega, V):
        s = jnp.sqrt(V)
        return -0.5 * A + jnp.logaddexp(B + log_ndtr(omega / s), -B + log_ndtr(-omega / s))

    def transition(self, A, omega, V):
        """``d_B log Z = tanh(B + c)``, ``c = (log Phi(a) - log Phi(-a)) / 2``, ``a = omega / sqrt(V)``."""
        a = omega / jnp.sqrt(V)
        return -0.5 * (log_ndtr(a) - log_ndtr(-a)), 1.0 + 0.0 * a

    def law(self, omega, V, order: int):
        up = ndtr(omega / jnp.sqrt(V))
        return jnp.stack([-1.0 + 0 * up, 1.0 + 0 * up]), jnp.stack([1 - up, up])


class ReLU(Activation):
    """``phi(h) = max(h, 0)``: second moment 1/2, mean ``1 / sqrt(2 pi)``."""

    rho = 0.5
    mean = 1 / math.sqrt(2 * math.pi)
    slope = 0.5

    def phi(self, h):
        return jnp.maximum(h, 0.0)

    def second_moment(self, variance):
        return variance / 2

    def log_partition(self, B, A, omega, V):
        s = jnp.sqrt(V)
        tilted = (omega + B * V) / jnp.sqrt(V * (1 + A * V))  # m / sigma
        on = _linear_log_partition(B, A, omega, V) + log_ndtr(tilted)
        return jnp.logaddexp(log_ndtr(-omega / s), on)

    def transition(self, A, omega, V):
        """Where the tilted mean crosses the kink, ``m = 0``: ``B = -omega / V``, over ``sqrt((1 + A V) / V)``."""
        return -omega / V, jnp.sqrt((1 + A * V) / V)

    def law(self, omega, V, order: int):
        """An atom at 0 of weight ``Phi(-omega / s)``, and ``h > 0`` on panels from the kink
        ``zeta = -omega / s`` (an edge that moves with ``omega``: derivatives carry its boundary term)
        over the Gaussian's scales."""
        s = jnp.sqrt(V)
        cut = jnp.clip(-omega / s, -_BOUND, _BOUND)
        edges = jnp.concatenate([cut[None], jnp.maximum(jnp.asarray(_GAUSSIAN_EDGES + (_BOUND,), cut.dtype), cut)])
        zeta, w = legendre_panels(edges, order)
        w = w * jnp.exp(-0.5 * zeta**2) / math.sqrt(2 * math.pi)
        return jnp.concatenate([jnp.zeros(1, zeta.dtype), omega + s * zeta]), jnp.concatenate([ndtr(cut)[None], w])


def _standard_average(f) -> float:
    """``E f(h)``, ``h ~ N(0, 1)``, on the host (400 Gauss-Legendre nodes on ``[-12, 12]``): the
    constants of an activation without a closed form."""
    x, w = np.polynomial.legendre.leggauss(400)
    return float(np.sum(12 * w * f(12 * x) * np.exp(-72 * x**2) / math.sqrt(2 * math.pi)))


class Smooth(Activation):
    """A smooth, odd, increasing activation of bounded range ``(-bound, bound)``, whose factor and
    state-evolution averages are 1-D rules in ``h`` (see the module docstring, "Smooth activations").
    A subclass gives ``phi``, its ``inverse`` on the range, ``bound``, ``rho``, ``slope`` and
    ``second_moment``. ``order``: Gauss-Legendre nodes a panel of the rule in ``h``."""

    bound: eqx.AbstractClassVar[float]
    mean = 0.0
    order: int = eqx.field(default=10, static=True)

    @abc.abstractmethod
    def inverse(self, x):
        """``phi^-1(x)`` on ``[-bound, bound]`` (infinite at the ends)."""

    def _posterior(self, B, A, omega, V):
        """``(h, log t)``: the nodes of the rule in ``h`` and the logs of their weights times
        ``N(h; omega, V) e^{B phi(h) - A phi(h)^2 / 2}``, whose sum is ``Z``."""
        dtype = jnp.result_type(B, A, omega, V, float)
        s = jnp.sqrt(V)
        window = omega + s * jnp.asarray(_PRIOR_EDGES, dtype)
        a = jnp.maximum(A, jnp.finfo(dtype).tiny)
        width = jnp.minimum(1 / jnp.sqrt(a), 1e3 * self.bound)
        x = jnp.clip(B / a + width * jnp.asarray(_LIKELIHOOD_EDGES, dtype), -self.bound, self.bound)
        peak = jnp.clip(self.inverse(x), omega - _WINDOW * s, omega + _WINDOW * s)
        h, w = legendre_panels(jax.lax.stop_gradient(jnp.concatenate([window, peak])), self.order)
        v = self.phi(h)
        log_t = jnp.log(w) - (h - omega) ** 2 / (2 * V) - 0.5 * jnp.log(2 * math.pi * V) + B * v - A * v**2 / 2
        return h, log_t

    def log_partition(self, B, A, omega, V):
        """By the rule in ``h``: panels on ``omega + sqrt(V) {0, +-1.5, +-3.5, +-6, +-9, +-12}`` and where
        the likelihood ``e^{-A (phi(h) - B / A)^2 / 2}`` peaks, ``phi^-1(B / A + {0, +-1, +-2.5, +-5, +-9}
        / sqrt(A))`` (kept in that window)."""
        return jax.nn.logsumexp(self._posterior(B, A, omega, V)[1])

    def _moments(self, B, A, omega, V):
        """``(Var(phi | B), d_omega log Z, log Z)``: the posterior variance of ``phi(h)``, ``(<h> -
        omega) / V`` and the log-factor, from one rule in ``h``."""
        h, log_t = self._posterior(B, A, omega, V)
        log_z = jax.nn.logsumexp(log_t)
        p = jnp.exp(log_t - log_z)
        v = self.phi(h)
        m = jnp.sum(p * v)
        return jnp.stack([jnp.sum(p * (v - m) ** 2), jnp.sum(p * (h - omega)) / V, log_z])

    def averages(self, A, q, V, order: int):
        """``(E Var(phi | B, omega), E (d_omega log Z)^2, E log Z)`` at the SNR ``A``, the overlap ``q``
        and ``V``: ``xi`` and ``u = B / sqrt(A)`` on Gauss-Legendre panels of ``order`` nodes, the law
        of ``u`` given ``omega`` the density ``N(u) Z(sqrt(A) u)`` (the module docstring)."""
        dtype = jnp.result_type(A, q, V, float)
        smoothing = _SMOOTHING[jnp.finfo(dtype).bits]
        xi, w_xi = panel_rule(jnp.asarray(_GAUSSIAN_EDGES, dtype), order)
        scale = jnp.sqrt(A + smoothing)
        images, offsets = jnp.asarray(_IMAGE_EDGES, dtype), jnp.asarray(_SPREAD_EDGES, dtype)

        def one(omega):
            mapped = jnp.sqrt(A) * self.phi(omega + jnp.sqrt(V) * images)
            centre = mapped[len(images) // 2]
            spread = jnp.concatenate([mapped[0] - offsets, mapped[-1] + offsets, centre + offsets[:2], centre - offsets[:2]])
            u, w_u = legendre_panels(jax.lax.stop_gradient(jnp.concatenate([mapped, spread])), order)
            var, g, log_z = jax.vmap(self._moments, (0, None, None, None), 1)(scale * u, A, omega, V)
            density = w_u * jnp.exp(log_z - u**2 / 2) / math.sqrt(2 * math.pi)
            return density @ jnp.stack([var, g**2, log_z], axis=-1)

        return w_xi @ jax.lax.map(one, jnp.sqrt(q + smoothing) * xi)

    def law(self, omega, V, order: int):
        """``phi`` at the Gaussian's panel nodes (the protocol's law; the averages above do not use it)."""
        zeta, w = panel_rule(jnp.asarray(_GAUSSIAN_EDGES, jnp.result_type(omega, V)), order)
        return self.phi(omega + jnp.sqrt(V) * zeta), w


class Erf(Smooth):
    """``phi(h) = erf(h)``: ``E erf(h)^2 = (2 / pi) arcsin(2 v / (1 + 2 v))`` for ``h ~ N(0, v)``,
    ``E erf'(h) = 2 / sqrt(3 pi)``."""

    bound = 1.0
    rho = 2 / math.pi * math.asin(2 / 3)
    slope = 2 / math.sqrt(3 * math.pi)

    def phi(self, h):
        return jax.scipy.special.erf(h)

    def inverse(self, x):
        return jax.scipy.special.erfinv(x)

    def second_moment(self, variance):
        return 2 / math.pi * jnp.arcsin(2 * variance / (1 + 2 * variance))


class Tanh(Smooth):
    """``phi(h) = tanh(h)``; ``E tanh(h)^2`` by a Gauss-Legendre panel rule (no closed form)."""

    bound = 1.0
    rho = _standard_average(lambda h: np.tanh(h) ** 2)
    slope = _standard_average(lambda h: 1 / np.cosh(h) ** 2)

    def phi(self, h):
        return jnp.tanh(h)

    def inverse(self, x):
        return jnp.arctanh(x)

    def second_moment(self, variance):
        zeta, w = panel_rule(jnp.asarray(_GAUSSIAN_EDGES, jnp.result_type(variance, float)), 16)
        return w @ jnp.tanh(jnp.sqrt(variance) * zeta) ** 2


GENERATIVE_ACTIVATIONS: dict[str, type[Activation]] = {
    "linear": Linear,
    "sign": Sign,
    "relu": ReLU,
    "erf": Erf,
    "tanh": Tanh,
}
"""The activations of :class:`Generative`."""


def _quantities(act, v, B, A, omega, V):
    """``(v* (v* - d_B log Z), (d_omega log Z)^2, log Z)``, whose averages are ``rho - q_v`` (the MMSE,
    ``q_v`` in the Nishimori form of ``E (d_B log Z)^2``), ``qhat / beta`` and ``E log Z``; stacked on a
    last axis. The MMSE is averaged, not ``q_v``: near perfect recovery it is the small difference of
    two averages, and the rule's own error in ``E v*^2`` (about 5e-11 for the default orders) would
    otherwise stay in it as a floor."""
    omega = jnp.broadcast_to(omega, B.shape)
    log_z, (d_b, d_omega) = jax.vmap(jax.value_and_grad(act.log_partition, argnums=(0, 2)), (0, None, 0, None))(
        B.ravel(), A, omega.ravel(), V
    )
    error = v * (v - d_b.reshape(B.shape))
    return jnp.stack([error, d_omega.reshape(B.shape) ** 2, log_z.reshape(B.shape)], axis=-1)


class Generative(eqx.Module):
    """A generative layer of ratio ``beta = d / k`` (its output's dimension over its input's) whose
    input is the latent (``latent``: a separable prior, the standard Gaussian if None), or the output
    of another layer (``latent``, a :class:`Generative`); see the module docstring.

    ``order``: Gauss-Legendre nodes a panel for the channel noise ``eta``; ``panel_order``: for ``xi``
    and ``h*`` (for a :class:`Smooth` activation: for ``xi`` and ``u = B / sqrt(A)``, the activation's
    own ``order`` for ``h``); ``noise``: the variance ``Delta >= 0`` of the Gaussian noise added to the output. The
    state of a stack of ``depth`` layers is the overlaps of the inputs of its layers, bottom first:
    ``(q_z, q_1, ..., q_{L-1})``."""

    activation: Activation
    beta: jax.Array = eqx.field(converter=jnp.asarray)
    order: int = eqx.field(default=8, static=True)
    panel_order: int = eqx.field(default=8, static=True)
    latent: "Generative | Prior | None" = None
    noise: jax.Array = eqx.field(default=0.0, converter=jnp.asarray)

    @property
    def _first(self) -> bool:
        """Whether this layer's input is the latent (not another layer)."""
        return not isinstance(self.latent, Generative)

    @property
    def prior(self) -> Prior:
        """The prior of the latent ``z`` under the first layer: ``N(0, 1)`` unless one is given."""
        if not self._first:
            return self.latent.prior
        return Gaussian(1.0) if self.latent is None else self.latent

    @property
    def depth(self) -> int:
        """The number of layers."""
        return 1 if self._first else 1 + self.latent.depth

    @property
    def input_rho(self):
        """``E u^2`` of the input ``u``: the latent prior's second moment, or the layer below's ``rho``."""
        return 1.0 if self.latent is None else self.latent.rho

    @property
    def rho(self):
        """``E v^2``: ``E phi(h)^2 + Delta``."""
        return self.activation.second_moment(self.input_rho) + self.noise

    def log_partition(self, B, A, omega, V):
        """``log Z_Delta(B, A, omega, V)``, the activation's factor at ``(B, A) / (1 + A Delta)``; see
        the module docstring."""
        s = 1 + A * self.noise
        return -0.5 * jnp.log1p(A * self.noise) + B**2 * self.noise / (2 * s) + self.activation.log_partition(
            B / s, A / s, omega, V
        )

    @property
    def rhos(self) -> jax.Array:
        """The second moments of the inputs of the layers, bottom first: the upper bounds of the state."""
        if self._first:
            return jnp.ones(1) * self.input_rho
        return jnp.append(self.latent.rhos, self.latent.rho)

    def _averages(self, A, q):
        """``(E v* (v* - d_B log Z), E (d_omega log Z)^2, E log Z)`` over ``xi``, ``h*`` and ``eta``;
        see the module docstring."""
        dtype = jnp.result_type(A, q, float)
        tiny = jnp.finfo(dtype).tiny
        smoothing = _SMOOTHING[jnp.finfo(dtype).bits]
        V = jnp.maximum(self.input_rho - q, jnp.finfo(dtype).eps)
        fixed = jnp.asarray(_GAUSSIAN_EDGES, dtype)
        # The transition of Phi(omega / sqrt(V)) in xi, of width sqrt(V / q), besides the Gaussian's scales.
        width = jax.lax.stop_gradient(jnp.minimum(jnp.sqrt(V / jnp.maximum(q, tiny)), 1e3))
        scales = width * jnp.array([1.0, 4.0], dtype)
        xi, w_xi = panel_rule(jnp.concatenate([fixed, scales, -scales]), self.panel_order)
        act, panel_order = self.activation, self.panel_order
        scale = jnp.sqrt(A + smoothing)

        def one(omega):
            v, w_v = act.law(omega, V, panel_order)
            center, spread = act.transition(A, omega, V)
            c, w = (center - A * v) / scale, spread / scale + 0.0 * v
            offsets = jnp.asarray(_TRANSITION, dtype)
            cuts = jnp.nan_to_num(c[:, None] + jnp.minimum(w, 1e3)[:, None] * offsets, posinf=1e3, neginf=-1e3)
            noise_edges = jnp.broadcast_to(jnp.asarray(_NOISE_EDGES, dtype), v.shape + (len(_NOISE_EDGES),))
            edges = jnp.concatenate([cuts, noise_edges], axis=-1)
            eta, w_eta = panel_rule(jax.lax.stop_gradient(edges), self.order)
            B = A * v[:, None] + scale * eta
            return jnp.einsum("i,ij,ijk->k", w_v, w_eta, _quantities(act, v[:, None], B, A, omega, V))

        return jnp.einsum("i,ik->k", w_xi, jax.vmap(one)(jnp.sqrt(q + smoothing) * xi))

    def _noiseless_averages(self, A, q):
        """``(E v* (v* - d_B log Z), qhat, E log Z)`` of the noiseless layer; closed forms for ``linear``,
        the Nishimori form over ``(xi, B)`` for a :class:`Smooth` activation."""
        if isinstance(self.activation, Linear):
            V = self.input_rho - q
            entropy = 0.5 * A * self.input_rho - 0.5 * jnp.log1p(A * V)
            return V / (1 + A * V), self.beta * A / (1 + A * V), entropy
        if isinstance(self.activation, Smooth):
            V = jnp.maximum(self.input_rho - q, jnp.finfo(jnp.result_type(A, q, float)).eps)
            error, square, entropy = self.activation.averages(A, q, V, self.panel_order)
            return error, self.beta * square, entropy
        error, square, entropy = self._averages(A, q)
        return error, self.beta * square, entropy

    def averages(self, A, q):
        """``(q_v, qhat, E log Z)`` at the SNR ``A`` on ``v`` and the overlap ``q`` of the input: those
        of the noiseless layer at ``A / (1 + A Delta)``, transformed as the module docstring says."""
        s = 1 + A * self.noise
        error, qhat, entropy = self._noiseless_averages(A / s, q)
        rho = self.rho
        entropy = entropy - 0.5 * jnp.log1p(A * self.noise) + self.noise * A * (1 + A * rho) / (2 * s)
        return rho - self.noise / s - error / s**2, qhat, entropy

    def update(self, A, q):
        """``(q_v, q')``: the overlap of ``v`` and the state (``depth`` overlaps, bottom first) after one
        step from the SNR ``A`` on ``v`` and the state ``q``, each clipped to its second moment."""
        q_v, qhat, _ = self.averages(A, q[-1])
        if self._first:
            inputs = self.prior.overlap(qhat)[None]
        else:
            top, below = self.latent.update(qhat, q[:-1])
            inputs = jnp.append(below, top)
        return jnp.minimum(q_v, self.rho), jnp.minimum(inputs, self.rhos)

    def free_entropy(self, A, q):
        """``psi(A, q)``: stationary in the state ``q`` at the fixed point, ``d psi / dA = q_v / 2``."""
        _, qhat, entropy = self.averages(A, q[-1])
        if self._first:
            below = self.prior.free_entropy(qhat)
        else:
            below = self.latent.free_entropy(qhat, q[:-1])
        return (below - q[-1] * qhat / 2) / self.beta + entropy


def compose(
    activations: str, beta, order: int = 8, panel_order: int = 8, noise=0.0, prior: Prior | None = None
) -> Generative:
    """The stack of layers named by ``activations``, comma-separated, first layer (on the latent) first,
    with ratios ``beta`` and noise variances ``noise`` (each one per layer, in the same order, or one
    for all), on the latent prior ``prior`` (a separable prior, :mod:`hdtheory.kernels.priors`; the
    standard Gaussian if None)."""
    names = activations.split(",")
    per_layer = lambda x: jnp.broadcast_to(jnp.asarray(x), (len(names),))
    layer = prior
    for name, ratio, delta in zip(names, per_layer(beta), per_layer(noise)):
        layer = Generative(GENERATIVE_ACTIVATIONS[name](), ratio, order, panel_order, layer, delta)
    return layer
