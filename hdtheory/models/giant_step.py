r"""Ridge on a two-layer network's features after one giant gradient step on a single-index target.

**Setting** (Cui, Pesce, Dandi, Krzakala, Lu, Zdeborová and Loureiro 2024, "Asymptotics of feature
learning in two-layer networks after one gradient-step", ICML, arXiv:2402.04980; the giant step of
Dandi et al. 2023, "How two-layer neural networks learn, one (giant) step at a time"). The network,
target and step of :mod:`hdtheory.models.learned_spectrum`: inputs ``x ~ N(0, I_d)``, ``p = gamma d``
rows ``w_i`` uniform on the unit sphere, ``a_i = +-1``, ``y = g(beta.x) + sqrt(noise) xi``, one step
on the correlation loss over a batch of ``n0 = alpha0 d`` samples,

.. math:: w_i \leftarrow w_i + \frac{\eta\, a_i}{\sqrt{p}} \frac{1}{n_0}\sum_\mu y_\mu\,
          \sigma'(w_i.x_\mu)\, x_\mu ,\qquad \eta = \tilde\eta\, \sqrt{p},

with the **normalised step** ``eta~ = eta / sqrt(p)`` fixed as ``d -> infinity`` (the step exponent
``a = 1/2`` of ``eta ~ p^a``: every row moves by ``O(1)``). Then ridge on the readout,
``sum_mu (y_mu - w.sigma(W_1 x_mu) / sqrt(p))^2 / 2 + (lam / 2) |w|^2`` over ``n = alpha d`` fresh
samples, and its test error ``E(y - f(x))^2`` on a fresh sample.

**The stepped weights** (the spiked random features of Cui et al. 2024, their parameters ``(c, r,
gamma)``; the constants derived here for this normalisation). With ``mu_1 = E sigma'(u)``,
``v_1 = Var sigma'(u)``, ``c_1 = E[g(z) z]`` and ``E[y^2]`` (``u, z ~ N(0, 1)``),

.. math:: w_i^{(1)} = \sqrt{c}\, \bar w_i + r\, a_i\, v ,\qquad
    r = \tilde\eta\, \mu_1 \sqrt{c_1^2 + E[y^2] / \alpha_0},\qquad
    c = 1 + \tilde\eta^2\, E[y^2]\, v_1 / \alpha_0 ,

where ``v`` (unit) is the direction of ``X_0^T y``, at cosine ``gamma_beta = c_1 / sqrt(c_1^2 +
E[y^2] / alpha0)`` with ``beta``, and ``sqrt(c) bar w_i`` the rest: the initial row plus the part of
the gradient from ``sigma' - mu_1``, isotropic and of squared norm ``eta~^2 E[y^2] v_1 / alpha0``
(the rows' norms of stepped weights at ``d = 1000``, ``alpha0 = 1``, ``eta~ = 2``: 1.151 against
``c = 1.154``). Cui et al. take the bulk ``bar W`` to have the law of the initial rows (its spectrum
a Marchenko-Pastur law of ratio ``gamma``); this holds as ``eta~^2 / alpha0 -> 0`` and is the
approximation of this model beyond (Dandi et al. 2024 describe the moved bulk).

**Conditional Gaussian equivalence** (Cui et al. 2024; Dandi et al. 2023). Given ``kappa = v.x``,
the features are equivalent to

.. math:: \sigma(W_1 x) \simeq \mu_0(\kappa)\, a + \mu_1(\kappa)\, \sqrt{c}\, \bar W x
    + \mu_2(\kappa)\, \xi ,

``mu_0(kappa) = E sigma(r kappa + sqrt(c) u)``, ``mu_1(kappa) = E[sigma(r kappa + sqrt(c) u) u] /
sqrt(c)``, ``mu_2^2 = E sigma^2 - mu_0^2 - c mu_1^2`` (for odd ``sigma`` the signs ``a_i`` are a
symmetry, taken ``+1``), and the target is ``y = g(gamma_beta kappa + rho_beta t)``, ``t = zeta.x``,
``zeta`` a unit direction orthogonal to ``v``, ``rho_beta^2 = 1 - gamma_beta^2``.

**Fixed point** (the replica equations of Cui et al.'s Result 3.3 for the ridge readout as the
authors' code, SPOC-group/OneStepGD_asymptotics, solves them at finite ``d``; rederived here for this
normalisation, in the limit, with the direction ``v`` removed from the bulk exactly). Order
parameters: ``q_1 = |Pi u|^2`` and ``q_2 = |w|^2 / p`` with ``u = sqrt(c) bar W^T w / sqrt(p)`` and
``Pi`` the projection orthogonal to ``v``; ``theta = u.v``, ``psi = u.zeta``; ``V_1, V_2`` their
responses; ``m = w.a / sqrt(p)`` the readout's weight on the features' mean. Given ``kappa``, the
field ``w.phi / sqrt(p)`` has mean ``c(kappa) = mu_0 m + mu_1 kappa theta`` and variance
``mu_1^2 q_1 + mu_2^2 q_2``, its response ``V_kappa = mu_1^2 V_1 + mu_2^2 V_2``, and

.. math:: e(\kappa) = E[y^2|\kappa] + c^2 + \mu_1^2 q_1 + \mu_2^2 q_2 - 2 c\, h - 2 \mu_1 \psi\, h_1,

``h = E[y | kappa]``, ``h_1 = E[t y | kappa]``. With ``alpha' = n / p = alpha / gamma`` and
``E_kappa`` over ``kappa ~ N(0, 1)``:

.. math::
    \hat V_a = \alpha' E\Big[\frac{\mu_a^2}{1 + V_\kappa}\Big],\quad
    \hat q_a = \alpha' E\Big[\frac{\mu_a^2\, e}{(1 + V_\kappa)^2}\Big],\quad
    \hat\theta = \alpha' E\Big[\frac{\mu_1 \kappa (h - c)}{1 + V_\kappa}\Big],\quad
    \hat\psi = \alpha' E\Big[\frac{\mu_1 h_1}{1 + V_\kappa}\Big],

``m`` the least-squares weight ``E[mu_0 (h - c) / (1 + V_kappa)] = 0`` (the mean direction has
variance of order ``p``: its penalty is negligible). On the weight side, ``s`` runs over the
Marchenko-Pastur law of ratio ``gamma`` (:func:`~hdtheory.models.gcm.feature_spectrum`), ``D = c s``
the eigenvalues of ``c bar W bar W^T``, ``F = gamma D`` the projections of ``sqrt(c) bar W v`` and of
``sqrt(c) bar W zeta``, ``A = lam + hat V_1 D + hat V_2``, ``<.>`` the average over ``s``. Removing
the direction ``v`` from the bulk is a rank-one change of ``A`` (Sherman-Morrison), with
``a_0 = <F / A>`` and ``k = 1 / (1 - hat V_1 a_0)``:

.. math::
    V_1 = \Big\langle \frac{D}{A} \Big\rangle,\ V_2 = \Big\langle \frac{1}{A} \Big\rangle,\
    \theta = \hat\theta\, a_0 k,\ \psi = \hat\psi \Big\langle \frac{F}{A} \Big\rangle,\\
    q_1 = \Big\langle \frac{D N}{A^2} \Big\rangle + \hat\theta^2 k^2 \Big(\Big\langle
    \frac{F D}{A^2} \Big\rangle - a_0^2\Big),\quad
    q_2 = \Big\langle \frac{N}{A^2} \Big\rangle + \hat\theta^2 k^2 \Big\langle \frac{F}{A^2}
    \Big\rangle,

``N = hat q_1 D + hat q_2 + hat psi^2 F``. The test error is ``E_kappa e(kappa)``
(``test_error_total``; ``test_error`` without the label noise).

**Limits.** At ``eta~ = 0`` (``mu_0 = 0``, ``c = 1``) this is :class:`~hdtheory.RandomFeatures`
with ridge, the target's linear part its teacher and the rest label noise. As ``eta~ -> 0+`` it is
not: the mean direction, whose weight is free, fits the part of ``y`` linear in ``kappa`` for any
spike. Between the two regimes, ``1 << eta << sqrt(p)``, both models hold: at ``d = 2000``,
``eta = 20`` (``eta~ = 0.447``), :class:`~hdtheory.OneStepRidge` gives 0.11872 and this model
0.11881 (erf features and target, ``alpha = alpha0 = 2``, ``lam = 0.1``). :func:`normalised_step`
converts a step exponent ``a`` in ``eta = scale p^a`` to ``eta~``.

**Quadrature.** The Hermite rule in ``kappa`` (``order`` nodes) sees ``sigma(r kappa + ...)``,
which sharpens as the spike grows: with 64 nodes the test error is within 1e-8 of 128 nodes' at
``r = 0.4``, 3e-5 at ``r = 2.3``, 6e-3 at ``r = 4.5`` (tanh, ``alpha0 = 20``). ``quadrature_error``
is the relative change of the test error on the rule of half the nodes, at the same state (6e-5 at
``r = 2.3``, 4e-2 at ``r = 4.5``): a solve where it exceeds ``quadrature_tol`` ends ``INACCURATE``.

**Normalisation.** ``alpha = n / d`` (the readout's samples), ``alpha0 = n0 / d`` (the step's),
``gamma = p / d``; ``lam`` as written, not divided by ``n``; errors without a 1/2. The authors'
code scales ``c`` with an extra ``mu_1^2`` (1.056 in the case above, against the measured 1.151).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, check_in, choice
from .._theory import integer, parameter
from .gcm import RF_ACTIVATIONS, feature_spectrum, gaussian_equivalence
from .learned_spectrum import REFUSED, STEP_ACTIVATIONS

TARGETS = {name: RF_ACTIVATIONS[name] for name in ("erf", "tanh", "linear")}
"""Smooth links: the conditional expectations of the target are Hermite rules in ``t``."""

TARGETS_REFUSED = {
    "relu": "its kink moves with kappa, which the Hermite rule of the conditional target does not resolve",
    "sign": "its jump moves with kappa, which the Hermite rule of the conditional target does not resolve",
}

EXPONENTS = Interval(0.0, 0.5)


def normalised_step(exponent, p, scale=1.0):
    """``eta~ = eta / sqrt(p)`` for the step ``eta = scale p^exponent``: the model's parameter. The
    theory covers ``0 <= exponent <= 1/2`` (beyond, the rows move by more than their norm)."""
    check_in("exponent", exponent, EXPONENTS, " (eta = scale p^exponent: lazy at 0, giant at 1/2)")
    check_in("p", p, POSITIVE)
    check_in("scale", scale, NONNEGATIVE)
    return scale * jnp.asarray(p, float) ** (jnp.asarray(exponent, float) - 0.5)


def spiked_law(eta, alpha0, noise, activation: str, target: str, dtype):
    """``(r, c, gamma_beta)`` of the stepped rows (module docstring) for the activation named
    ``activation`` (of :data:`~hdtheory.models.gcm.RF_ACTIVATIONS`): ``mu_1`` and ``v_1`` of
    ``sigma'`` on a panel rule with an edge at 0 (exact for the step function of a ReLU's slope)."""
    z, w = kernels.panel_rule(jnp.zeros((1,), dtype), 40)
    slope = jax.vmap(jax.grad(RF_ACTIVATIONS[activation]))(z)
    mu1 = jnp.sum(w * slope)
    g0, c1, gstar = gaussian_equivalence(target, dtype=dtype)
    y2 = g0**2 + c1**2 + gstar**2 + noise
    scale = jnp.sqrt(c1**2 + y2 / alpha0)
    c = 1 + eta**2 * y2 * jnp.sum(w * (slope - mu1) ** 2) / alpha0
    return eta * mu1 * scale, c, c1 / scale


def target_given_kappa(cos, target: str, noise, z, w):
    """``(h, h_1, E[y^2|kappa])`` at the nodes ``z`` (weights ``w``) of ``kappa = v.x``, the spike's
    direction at cosine ``cos`` with ``beta``: ``y = g(cos kappa + sqrt(1 - cos^2) t) + noise``."""
    y = TARGETS[target](cos * z[:, None] + jnp.sqrt(jnp.maximum(1 - cos**2, 0.0)) * z[None, :])
    return y @ w, (y * z) @ w, y**2 @ w + noise


class GiantStep(FixedPointTheory):
    """Ridge on the features after one step of size ``eta~ sqrt(p)``; see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "training samples of the readout per dimension n/d")
    eta: jax.Array = parameter(1.0, NONNEGATIVE, "normalised step eta~ = eta / sqrt(p) (rows move by O(1))")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    gamma: jax.Array = parameter(1.0, POSITIVE, "hidden units per input dimension p/d")
    alpha0: jax.Array = parameter(2.0, POSITIVE, "samples of the step's batch per dimension n0/d")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    activation: str = choice("tanh", STEP_ACTIVATIONS, "activation sigma of the hidden layer", REFUSED)
    target: str = choice("tanh", TARGETS, "link g of the single-index target y = g(beta.x)", TARGETS_REFUSED)
    nodes: int = integer(64, Interval(4), "nodes of the Marchenko-Pastur spectrum's rule")
    order: int = integer(64, Interval(8), "Gauss-Hermite nodes in kappa and in each conditional expectation")
    quadrature_tol: float = eqx.field(default=1e-3, static=True)
    """Largest ``quadrature_error`` of a converged solve."""

    def _dtype(self):
        return jnp.result_type(self.alpha, self.eta, self.lam, self.gamma, self.alpha0, float)

    # -- the stepped weights and the conditional features -----------------------------------------

    def spiked_features(self):
        """``(r, c, gamma_beta)``: the spike's strength, the bulk's variance and the cosine of the
        spike's direction with ``beta`` (module docstring)."""
        return spiked_law(self.eta, self.alpha0, self.noise, self.activation, self.target, self._dtype())

    def conditional(self, order: int | None = None):
        """``(kappa, weights, mu_0, mu_1, mu_2, h, h_1, E[y^2|kappa])`` on the Hermite rule of
        ``order`` nodes (``self.order`` by default) in kappa and in each conditional expectation."""
        dtype = self._dtype()
        z, w = kernels.hermite_rule(order or self.order, dtype)
        r, c, cos = self.spiked_features()
        sigma = STEP_ACTIVATIONS[self.activation]
        s = sigma(r * z[:, None] + jnp.sqrt(c) * z[None, :])
        mu0, mu1 = s @ w, (s * z) @ w / jnp.sqrt(c)
        var = s**2 @ w - mu0**2 - c * mu1**2
        # Where the activation saturates the variance rounds to 0 or below: mu_2 = 0 there, and so
        # is its derivative (not sqrt's infinite slope at 0 times 0).
        mu2 = jnp.where(var > 0, jnp.sqrt(jnp.where(var > 0, var, 1.0)), 0.0)
        return z, w, mu0, mu1, mu2, *target_given_kappa(cos, self.target, self.noise, z, w)

    # -- the fixed point --------------------------------------------------------------------------

    def init(self, kind: str = "uninformed"):
        del kind
        one = jnp.ones((), self._dtype())
        return {"q1": one, "q2": one, "V1": one, "V2": one, "theta": 0 * one, "psi": 0 * one}

    def unconstrain(self, state):
        return {k: (jnp.log(v) if k in ("q1", "q2", "V1", "V2") else v) for k, v in state.items()}

    def constrain(self, coordinates):
        return {k: (jnp.exp(v) if k in ("q1", "q2", "V1", "V2") else v) for k, v in coordinates.items()}

    def _channel(self, state, order: int | None = None):
        """``(m, c(kappa), e(kappa), V_kappa)`` and the rule: the readout given ``kappa``."""
        kappa, w, mu0, mu1, mu2, h, h1, y2 = self.conditional(order)
        Vk = mu1**2 * state["V1"] + mu2**2 * state["V2"]
        stepped = self.eta > 0  # at eta~ = 0 the features have no mean (mu_0 = 0 up to rounding)
        norm = jnp.where(stepped, jnp.sum(w * mu0**2 / (1 + Vk)), 1.0)
        m = jnp.where(stepped, jnp.sum(w * mu0 * (h - mu1 * kappa * state["theta"]) / (1 + Vk)) / norm, 0.0)
        c = mu0 * m + mu1 * kappa * state["theta"]
        e = y2 + c**2 + mu1**2 * state["q1"] + mu2**2 * state["q2"] - 2 * c * h - 2 * mu1 * state["psi"] * h1
        return m, c, e, Vk, (kappa, w, mu1, mu2, h, h1)

    def accurate(self, state, observables):
        """``quadrature_error <= quadrature_tol``: the test error on the rule of half the nodes, at
        the same state, within ``quadrature_tol`` (relative) of the full rule's."""
        return observables["quadrature_error"] <= self.quadrature_tol

    def update(self, state):
        _, c, e, Vk, (kappa, w, mu1, mu2, h, h1) = self._channel(state)
        ratio = self.alpha / self.gamma
        Vh1, Vh2 = ratio * jnp.sum(w * mu1**2 / (1 + Vk)), ratio * jnp.sum(w * mu2**2 / (1 + Vk))
        qh1, qh2 = ratio * jnp.sum(w * mu1**2 * e / (1 + Vk) ** 2), ratio * jnp.sum(w * mu2**2 * e / (1 + Vk) ** 2)
        th = ratio * jnp.sum(w * mu1 * kappa * (h - c) / (1 + Vk))
        ph = ratio * jnp.sum(w * mu1 * h1 / (1 + Vk))
        _, bulk, _ = self.spiked_features()
        s, weights = feature_spectrum(self.gamma, "gaussian", self.nodes)
        D = bulk * s
        F = self.gamma * D

        def mean(f):
            return jnp.sum(weights * f)

        A = self.lam + Vh1 * D + Vh2
        a0 = mean(F / A)
        k = 1 / (1 - Vh1 * a0)
        N = qh1 * D + qh2 + ph**2 * F
        return {
            "q1": mean(D * N / A**2) + (th * k) ** 2 * (mean(F * D / A**2) - a0**2),
            "q2": mean(N / A**2) + (th * k) ** 2 * mean(F / A**2),
            "V1": mean(D / A),
            "V2": mean(1 / A),
            "theta": th * a0 * k,
            "psi": ph * mean(F / A),
        }

    def observables(self, state):
        m, _, e, _, (_, w, *_) = self._channel(state)
        r, c, cos = self.spiked_features()
        total = jnp.sum(w * e)
        _, _, coarse, _, (_, coarse_w, *_) = self._channel(state, self.order // 2)
        return {
            "test_error_total": total,
            "quadrature_error": jnp.abs(jnp.sum(coarse_w * coarse) - total) / total,
            "test_error": total - self.noise,
            "m": m,
            **state,
            "spike": r,
            "bulk_variance": c,
            "alignment": cos,
        }


__all__ = ["GiantStep", "normalised_step", "spiked_law", "target_given_kappa"]
