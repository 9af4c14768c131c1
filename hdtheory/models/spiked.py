r"""Rank-one spiked matrix models: Bayes-optimal state evolution and free entropy.

**Spiked Wigner** (``ensemble="wigner"``). ``Y = sqrt(lam / d) x x^T + W`` with ``x in R^d`` i.i.d.
from a prior ``P0`` of second moment ``rho`` (:mod:`hdtheory.kernels.priors`) and ``W`` symmetric
with independent ``N(0, 1)`` entries above the diagonal. With ``q = E[x.<x>] / d`` the state
evolution of AMP and the replica fixed point (Lesieur, Krzakala and Zdeborova 2017, "Constrained
low-rank matrix estimation: phase transitions, approximate message passing and applications",
J. Stat. Mech. 073403, whose noise variance is ``Delta = 1 / lam``; Deshpande and Montanari 2014)
are

.. math:: q = \mathbb{E}\, x^* f_a(\hat q x^* + \sqrt{\hat q} z, \hat q), \qquad \hat q = \lambda q,

with the free entropy ``f = psi_{P0}(lam q) - lam q^2 / 4``. For a zero-mean prior ``q = 0`` is a
fixed point, stable for ``lam rho^2 < 1`` (weak recovery at ``lam rho^2 = 1``, the spectral
threshold for the Gaussian prior).

**Spiked Wishart** (``ensemble="wishart"``). ``Y = sqrt(lam / d) u v^T + W``, ``Y`` of size
``n x d`` with ``n = alpha d``, ``v in R^d`` from ``prior`` (second moment ``rho``), ``u in R^n``
from ``prior_u`` (second moment ``rho_u``), ``W`` i.i.d. ``N(0, 1)``; with ``prior_u`` Gaussian the
rows of ``Y`` are samples of covariance ``I + (lam / d) v v^T``. The state is ``(q_u, q_v)`` (overlaps
per entry of ``u`` and of ``v``), and (Lesieur et al. 2017, the ``UV^T`` case; ``update`` computes
``q_u`` and then ``q_v`` from the new ``q_u``, as AMP alternates)

.. math:: q_u = \mathbb{E}_{P_u} x f_a(\cdot, \lambda q_v), \quad
          q_v = \mathbb{E}_{P_0} x f_a(\cdot, \lambda \alpha q_u), \quad
          f = \psi_{P_0}(\lambda\alpha q_u) + \alpha\, \psi_{P_u}(\lambda q_v) - \lambda\alpha q_u q_v / 2,

free entropy per column ``d``; weak recovery for zero-mean priors at
``lam^2 alpha rho_u^2 rho^2 = 1`` (the BBP threshold ``lam rho = 1 / sqrt(alpha)`` for Gaussian ``u``).

**Priors** (:mod:`hdtheory.kernels.priors`): ``prior`` any of them, ``discrete`` included (atoms
``values`` of ``probabilities``, whose second moment replaces ``rho``); ``prior_u`` any of them too,
``discrete`` with its atoms ``values_u`` of ``probabilities_u`` (whose second moment replaces
``rho_u``).

**Coordinates and initialisations** (:class:`~hdtheory.models._overlap.Overlaps`): the solver works on
``log(rho - q)``, floored at ``log(rho eps)`` (perfect recovery); ``init("uninformed")`` is an
infinitesimal overlap (``1e-6 rho`` in float64), from which :func:`hdtheory.solve` follows the iteration, so that
past weak recovery it reaches the informative fixed point, not the repelling ``q = 0``.

**Generative prior** (``prior="generative"``; Aubin, Loureiro, Maillard, Krzakala and Zdeborova
2019, "The spiked matrix model with generative priors", NeurIPS, arXiv:1905.12385). The spike ``x``
(Wigner) or ``v`` (Wishart) is ``phi(W z / sqrt(k))`` with ``z in R^k`` i.i.d. ``N(0, 1)``, ``W`` a
known ``d x k`` Gaussian matrix, ``beta = d / k`` and ``activation`` ``linear``, ``sign``,
``relu``, ``erf`` or ``tanh`` (:mod:`hdtheory.kernels.generative`; second moment 1, 1, 1/2,
``(2 / pi) arcsin(2 / 3) = 0.4646`` and 0.3943). ``latent`` names the prior
of ``z``'s entries in place of ``N(0, 1)`` (any of the separable priors, with ``rho``, ``values`` and
``probabilities`` as its parameters: ``rho`` is then the latent's, not the spike's), and
``layer_noise`` adds Gaussian noise of variance ``Delta_l`` to each layer's output. The state gains the latent overlap ``q_z`` (last), and the prior's ``overlap(A)`` and
``free_entropy(A)`` at the spike's SNR ``A`` (``lam q``, or ``lam alpha q_u``) become those of the
layer, ``(q, q_z) <- layer(A, q_z)`` (both from the current state, as multi-layer AMP updates them)
and ``psi(A, q_z)``:

.. math:: f = \frac{1}{\beta}\Big(\psi_z(\hat q_z) - \frac{q_z \hat q_z}{2}\Big)
          + \mathbb{E} \log Z(B, A, \omega, V) - \frac{\lambda q^2}{4}
          \quad (\text{Wigner}; \text{Wishart as above with this } \psi),

``hat q_z = beta E (d_omega log Z)^2``. The paper's notation: its ``alpha = p / k`` is ``beta`` here, its
``beta = n / p`` is ``alpha``, its noise variance ``Delta`` is ``1 / lam``, and its spike's ``p`` is
``d``. For a zero-mean activation (``linear``, ``sign``, ``erf``, ``tanh``) ``q = q_z = 0`` is a fixed point, unstable
past ``lam (rho^2 + beta slope^4) = 1`` (Wigner; ``lam^2 alpha rho_u^2 (rho^2 + beta slope^4) = 1``
for Wishart), ``slope = E phi'(h)``: ``Delta_c = 1 + beta`` for ``linear`` and
``1 + 4 beta / pi^2`` for ``sign`` in the paper's notation (derived from the linearised state
evolution; the paper's LAMP spectral method is AMP linearised about this fixed point).
``relu`` has a non-zero mean, and no uninformative fixed point. ``activation`` may name a stack,
comma-separated, first layer first, with one ratio per layer in ``beta``
(:func:`hdtheory.kernels.generative.compose`): the state is then ``(q, q_z, q_h1, ...)`` (Wishart:
``(q_u, q_v, q_z, ...)``), the overlaps of each layer's input, and for linear layers weak recovery is
at ``lam (1 + sum_l d / k_l) = 1``.
For one noiseless linear layer on the standard Gaussian latent (Wigner), :meth:`Spiked.lamp` gives the asymptotic squared cosine, top eigenvalue
and bulk edge of the paper's LAMP spectral method (:mod:`hdtheory.models.spiked_lamp`).

**Observables**: ``q`` (``q_u``,
``q_v``), ``mmse = rho - q`` (per factor), ``mmse_matrix``, the MMSE per entry of the rank-one matrix
(``rho^2 - q^2``, or ``rho_u rho - q_u q_v``), ``gibbs_error`` (``gibbs_error_u``, ``gibbs_error_v``)
and ``gibbs_error_matrix``, the same errors of a posterior sample (below), and ``free_entropy``; with a
generative prior also ``q_z`` and ``mmse_z = 1 - q_z`` (and ``q_h{l}``, ``mmse_h{l}`` for the outputs of
the layers of a stack below the top).

**Gibbs error** (the error of a sample ``x_s`` from the posterior, not of its mean; derived here).
By the Nishimori identity a posterior sample and the spike are distributed like two independent
posterior samples, so that ``|x_s|^2 / d -> rho`` and ``x_s.x* / d -> q`` (the overlap of two samples,
``|<x>|^2 / d = q``): ``gibbs_error = E |x_s - x*|^2 / d = 2 (rho - q)``, twice the MMSE, and
``gibbs_error_matrix = E |x_s x_s^T - x* x*^T|_F^2 / d^2 = 2 (rho^2 - q^2)``, twice ``mmse_matrix``;
Wishart ``gibbs_error_u = 2 (rho_u - q_u)``, ``gibbs_error_v = 2 (rho - q_v)`` (per entry of ``u``,
``v``) and ``gibbs_error_matrix = E |u_s v_s^T - u* v*^T|_F^2 / (n d) = 2 (rho_u rho - q_u q_v)``. For
the zero-mean priors the posterior is symmetric under ``x -> -x`` (``(u, v) -> (-u, -v)``), and the
errors of the factors are those of a sample in the spike's half (as ``mmse`` is, up to the global
sign); the matrix errors need no sign. :func:`hdtheory.simulate.spiked.gibbs_samples` samples the
Wigner posterior of a discrete prior by Markov chain Monte Carlo at finite ``d``
(``tests/test_spiked_gibbs.py``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import POSITIVE, choice, is_concrete, parameter
from . import _prior
from ._overlap import Overlaps
from .spiked_lamp import lamp_asymptotics

ENSEMBLES = {"wigner": "symmetric rank one x x^T", "wishart": "rectangular rank one u v^T"}
PRIORS = {**_prior.PRIORS, "generative": kernels.Generative}
"""The priors of the spike: the separable ones, and a generative prior (a stack of layers)."""


class Spiked(Overlaps):
    """Rank-one spiked Wigner or Wishart matrix, Bayes-optimal; see the module docstring."""

    snr: jax.Array = parameter(1.0, POSITIVE, "signal-to-noise ratio lam (1 / Delta)")
    alpha: jax.Array = parameter(1.0, POSITIVE, "aspect ratio n/d (wishart only)")
    rho: jax.Array = parameter(
        1.0, POSITIVE, "second moment of the prior of x (or v), of the latent for prior=generative; unused for discrete"
    )
    rho_u: jax.Array = parameter(1.0, POSITIVE, "second moment of the prior of u (wishart only); unused for discrete")
    prior: str = choice("gaussian", PRIORS, "prior of x (or v)")
    values: jax.Array = _prior.values_field()
    probabilities: jax.Array = _prior.probabilities_field()
    prior_u: str = choice("gaussian", _prior.PRIORS, "prior of u (wishart only)")
    values_u: jax.Array = _prior.values_field("prior_u")
    probabilities_u: jax.Array = _prior.probabilities_field("prior_u")
    ensemble: str = choice("wigner", ENSEMBLES, "spiked Wigner or spiked Wishart")
    activation: str = _prior.activation_field()
    beta: jax.Array = _prior.beta_field()
    layer_noise: jax.Array = _prior.layer_noise_field()
    latent: str = _prior.latent_field()
    order: int = eqx.field(default=64, static=True)
    label_order: int = eqx.field(default=8, static=True)
    panel_order: int = eqx.field(default=8, static=True)

    def __check_init__(self):
        if self._generative:
            _prior.check(self.latent, self.rho, self.values, self.probabilities, field="latent")
        else:
            _prior.check(self.prior, self.rho, self.values, self.probabilities)
        _prior.check(self.prior_u, self.rho_u, self.values_u, self.probabilities_u, "_u")
        _prior.check_layers(self.activation, self.beta, self.layer_noise)

    @property
    def _generative(self) -> bool:
        return self.prior == "generative"

    @property
    def _rho(self):
        prior, prior_u = self._priors()
        rho = prior.rho
        rhos = (rho,) if self.ensemble == "wigner" else (prior_u.rho, rho)
        if len(rhos) == 1 and not self._generative:
            return rho
        dtype = jnp.result_type(self.snr, float)
        head = jnp.stack(jnp.broadcast_arrays(*rhos)).astype(dtype)
        return jnp.concatenate([head, prior.rhos.astype(dtype)]) if self._generative else head

    def _priors(self):
        if self._generative:
            latent = _prior.build(self.latent, self.rho, self.values, self.probabilities)
            prior = _prior.layers(
                self.activation, self.beta, self.label_order, self.panel_order, self.layer_noise, latent
            )
        else:
            prior = _prior.build(self.prior, self.rho, self.values, self.probabilities)
        return prior, _prior.build(self.prior_u, self.rho_u, self.values_u, self.probabilities_u)

    def conjugate(self, q) -> jax.Array:
        """``qhat``: ``lam q`` (Wigner), ``(lam q_v, lam alpha q_u)`` (Wishart)."""
        q = self._checked(q)
        if self.ensemble == "wigner":
            return self.snr * q
        return self.snr * jnp.stack([q[1], self.alpha * q[0]])

    def update(self, q) -> jax.Array:
        """Wigner: ``q`` from ``lam q``. Wishart: ``q_u`` from ``q_v``, then ``q_v`` from the new
        ``q_u`` (AMP's alternating schedule, whose iteration has no oscillating mode)."""
        prior, prior_u = self._priors()
        if self._generative:
            return self._update_generative(prior, prior_u, q)
        if self.ensemble == "wigner":
            return jnp.minimum(prior.overlap(self.conjugate(q), self.order), prior.rho)
        q_u = jnp.minimum(prior_u.overlap(self.conjugate(q)[0], self.order), prior_u.rho)
        q_v = prior.overlap(self.snr * self.alpha * q_u, self.order)
        return jnp.stack([q_u, jnp.minimum(q_v, prior.rho)])

    def _update_generative(self, layer, prior_u, q):
        """Wigner ``(q, q_z, ...)``: all from ``A = lam q`` and the layers' state; Wishart
        ``(q_u, q_v, q_z, ...)``: ``q_u`` from ``q_v``, then ``q_v`` and the layers' state from
        ``A = lam alpha q_u`` (the new one) and the layers' state."""
        q = self._checked(q)
        if self.ensemble == "wigner":
            A, head = self.snr * q[0], ()
        else:
            q_u = jnp.minimum(prior_u.overlap(self.snr * q[1], self.order), prior_u.rho)
            A, head = self.snr * self.alpha * q_u, (q_u,)
        q_v, latents = layer.update(A, q[len(head) + 1 :])
        return jnp.concatenate([jnp.stack([*head, q_v]), latents])

    def free_entropy(self, q) -> jax.Array:
        prior, prior_u = self._priors()
        if self._generative:
            q = self._checked(q)
            if self.ensemble == "wigner":
                return prior.free_entropy(self.snr * q[0], q[1:]) - self.snr * q[0] ** 2 / 4
            return (
                prior.free_entropy(self.snr * self.alpha * q[0], q[2:])
                + self.alpha * prior_u.free_entropy(self.snr * q[1], self.order)
                - self.snr * self.alpha * q[0] * q[1] / 2
            )
        r = self.conjugate(q)
        q = self._checked(q)
        if self.ensemble == "wigner":
            return prior.free_entropy(r, self.order) - self.snr * q**2 / 4
        return (
            prior.free_entropy(r[1], self.order)
            + self.alpha * prior_u.free_entropy(r[0], self.order)
            - self.snr * self.alpha * q[0] * q[1] / 2
        )

    def lamp(self) -> dict[str, jax.Array]:
        """LAMP's asymptotic ``overlap`` (the squared cosine of its estimate with the spike), top
        ``eigenvalue``, ``bulk_edge``, ``converged`` and ``residual`` for the Wigner model with a generative
        prior of one linear layer, from the Stieltjes transform of its matrix
        (:func:`hdtheory.models.spiked_lamp.lamp_asymptotics` at the paper's ``alpha = beta``,
        ``Delta = 1 / snr``); differentiable in ``snr`` and ``beta``."""
        other = [not is_concrete(x) or np.any(np.asarray(x) != v) for x, v in ((self.layer_noise, 0), (self.rho, 1))]
        other.append(self.latent != "gaussian")
        if not (self._generative and self.ensemble == "wigner" and self.activation == "linear") or any(other):
            raise NotImplementedError(
                "Spiked.lamp needs prior='generative', ensemble='wigner' and one linear layer, activation='linear', "
                "noiseless (layer_noise=0) on the standard Gaussian latent (latent='gaussian', rho=1)"
            )
        return lamp_asymptotics(jnp.reshape(self.beta, ()), 1 / self.snr)

    def observables(self, q) -> dict[str, jax.Array]:
        f = self.free_entropy(q)
        prior, prior_u = self._priors()
        rho = prior.rho
        head = 1 if self.ensemble == "wigner" else 2
        latent = _prior.layer_observables(prior, q[head:]) if self._generative else {}
        if self.ensemble == "wigner":
            x = q[0] if self._generative else q
            errors = {"mmse": rho - x, "mmse_matrix": rho**2 - x**2}
            return {"q": x, **errors, **_gibbs(errors), **latent, "free_entropy": f}
        errors = {"mmse_u": prior_u.rho - q[0], "mmse_v": rho - q[1], "mmse_matrix": prior_u.rho * rho - q[0] * q[1]}
        return {"q_u": q[0], "q_v": q[1], **errors, **_gibbs(errors), **latent, "free_entropy": f}


def _gibbs(errors: dict) -> dict:
    """The errors of a posterior sample, twice the MMSEs (``mmse`` to ``gibbs_error``, ``mmse_u`` to
    ``gibbs_error_u``, ``mmse_matrix`` to ``gibbs_error_matrix``); see the module docstring."""
    return {"gibbs_error" + name[4:]: 2 * value for name, value in errors.items()}
