r"""Kernel ridge regression with the data-adaptive kernel of a layer after one giant step.

**Setting.** The function-space view of feature learning of Lobo, Loureiro, Tran-Thanh and Liu 2026
("How does feature learning reshape the function space?", arXiv:2605.17718): after a large gradient
step the first layer's weights follow a target-dependent spiked law, and the network's infinite-width
kernel becomes data-adaptive. The paper's text was not at hand: this model is built for the setting of
its abstract, on the stepped layer of :class:`~hdtheory.models.giant_step.GiantStep` (same ``eta~``,
``alpha0``, ``noise`` and target; its odd activations and ReLU), and every equation below is derived
here.

**The kernel.** Rows ``w = sqrt(c) bar w + r s v`` with ``bar w ~ N(0, I_d / d)``, ``(r, c, v)`` the
spike, bulk variance and spike direction of the giant step (``v`` at cosine ``gamma_beta`` with the
target's ``beta``) and ``s = +-1`` the sign of the row's second-layer weight. With ``t = x.x'/d``,
``n = |x|^2/d``, ``n' = |x'|^2/d``, ``kappa = v.x``, ``kappa' = v.x'``,

.. math:: K(x, x') = E_w\, \sigma(w.x)\, \sigma(w.x') = E\, \sigma(\sqrt c\, g + s r\kappa)\,
          \sigma(\sqrt c\, g' + s r\kappa'),\qquad (g, g') \sim N\Big(0, \begin{pmatrix} n & t \\
          t & n' \end{pmatrix}\Big)

(:meth:`AdaptiveKernel.kernel`; ``eta~ = 0`` is the isotropic kernel of random features at infinite
width). By Mehler's formula, with ``m_k(kappa) = E sigma^{(k)}(sqrt(c) z + r kappa)`` (``mu_0 = m_0``,
``mu_1 = m_1`` of the giant step), at ``n = n' = 1``:
``K = sum_k (c t)^k / k! E_s m_k(s kappa) m_k(s kappa')``.

**Two channels.** Write ``sigma = sigma_o + sigma_e`` (odd and even parts). Under ``(g, g', s) ->
-(g, g', s)`` the cross terms ``sigma_o sigma_e`` change sign, so ``K = K[sigma_o] + K[sigma_e]``,
and in each the sign ``s`` drops out: the kernel is the sum of the kernels of the two parts, each
with the rows' sign fixed. ``m_k[sigma_o]`` is the part of ``m_k`` of parity ``(-1)^{k+1}`` in
``kappa``, ``m_k[sigma_e]`` the part of parity ``(-1)^k``; below, every function of ``kappa`` comes
as this pair, the **odd channel** (all of an odd activation's) and the **even channel** (zero for an
odd activation; for ReLU ``|u| / 2`` against the odd ``u / 2``). ``K`` is even in ``x``.

**Its eigen-structure** (the operator ``f -> E_x' K(., x') f(x')`` on ``L^2(N(0, I_d))``, ``d ->
infinity``; :meth:`AdaptiveKernel.spectrum`). With ``x_perp`` the part of ``x`` orthogonal to ``v``,
``t = kappa kappa' / d + x_perp.x'_perp / d``; averaging ``t^2`` gives ``1/d``, and the norm enters
through ``dm_0/dn = (c / 2) m_2``. Each item below holds in each channel (the two channels'
functions of ``kappa`` have opposite parities, so their modes are orthogonal and do not mix):

- a **target-aligned top mode**: eigenvalue ``lambda_0 = E mu_0(kappa)^2`` of order one (zero for
  the isotropic kernel of an odd activation, whose modes are all ``O(1/d)``: the step amplifies the
  target direction by a factor of order ``d``), eigenfunction ``mu_0(kappa)`` mixed with the radial
  mode ``R = (|x_perp|^2 - d) / sqrt(2 d)`` through ``R (c / 2) m_2(kappa) sqrt(2 / d)``, at the angle
  ``tan phi = c |m_2| / (sqrt(2 d) |mu_0|)`` (norms in ``L^2`` over ``kappa``): the radial mode
  couples to the top mode only through the curvature ``m_2``, which vanishes without the spike;
- the **linear bulk**: for each direction ``b`` orthogonal to ``v``, the eigenfunction ``(b.x)
  mu_1(kappa)`` with eigenvalue ``c E[mu_1^2] / d`` (isotropic: ``mu_1^2 / d``), ``d - 1`` times;
- a **target block** of order ``1/d``: the functions ``F_1 = sqrt(c) kappa mu_1(kappa)`` (from
  ``kappa kappa' / d`` in ``t``) and ``F_2 = (c / sqrt 2) m_2(kappa)`` (from the mean of ``t^2``,
  the target-aligned quadratic term), whose Gram matrix ``E[F_i F_j]`` orthogonal to ``mu_0``, over
  ``d``, gives two more eigenvalues;
- the rest (``t^2`` about its mean and higher powers) has eigenvalues ``O(1/d^2)``: on ``n ~ d``
  samples it acts as the ridge ``mu_2^2(kappa) = E sigma^2 - mu_0^2 - c mu_1^2`` (the kernel's
  diagonal less its low-order part), averaged over the sign: ``(mu_2^2(kappa) + mu_2^2(-kappa)) / 2``.

The top eigenfunctions are the mean feature ``E_w sigma(w.x)`` split by channel. Without a step the
odd channel's is zero and the even channel's is the constant (with the radial mode, ``m_2``
constant): the isotropic kernel's radial top mode. The step makes the even channel's top mode a
function of ``v.x`` too: ``mu_0[sigma_e](kappa)`` has the ``He_2`` coefficient ``E[mu_0 He_2(kappa)]
= r^2 E sigma_e''(sqrt(c + r^2) z)``, and its radial part ``(c / 2) m_2[sigma_e](kappa)`` varies with
``kappa`` too: the top mode couples the constant, the radial mode and ``He_2(v.x)`` (``he2`` is its
cosine with ``He_2(v.x) / sqrt 2``). In the odd channel the top mode is the target-aligned one above.
A purely even activation has ``mu_1 = 0``, no spike and no odd channel (not offered).

**Kernel ridge regression** (``n = alpha d`` samples of ``y = g(beta.x) + sqrt(noise) xi``, predictor
``f = K(., X)(K + lam I)^{-1} y``; the normalisation of the giant step's ridge, ``lam`` not divided by
``n``). In the proportional regime the kernel matrix is that of the features ``mu_0(kappa)`` (free:
its weight is fitted at no cost), ``F_1, F_2`` (each of strength ``1/d``), ``sqrt(c) mu_1(kappa)
x_perp / sqrt(d)``, each in both channels, and the ridge ``lambda_kappa = lam + mu_2^2(kappa)`` per
sample (sign-averaged): a weighted ridge regression, solved here by its deterministic equivalent.
With ``a_j = sqrt(c) mu_1`` of channel ``j`` (o, e), ``D = lambda_kappa + V_o a_o^2 + V_e a_e^2``,
``h = E[y | kappa]``, ``h_1 = E[t y | kappa]`` (``t = zeta.x``, ``zeta`` orthogonal to ``v`` in the
plane of ``beta``), ``E`` over ``kappa ~ N(0, 1)``:

.. math:: V_j = 1 / \big(1 + \alpha E[a_j^2 / D]\big)

(the fixed point: the bulk's resolvent is a 2 x 2 matrix, diagonal because ``D`` is even in ``kappa``
and ``a_o a_e`` odd), then the mean prediction ``cbar = sum_j (m_j mu_{0,j} + theta_j F_{1,j} +
beta_{2,j} F_{2,j})`` (``cbar`` given ``kappa``; a channel without a mean, ``mu_{0,j} = 0``, has no
free weight) from the linear equations, for each feature of each channel

.. math:: E\Big[\frac{\mu_0 (h - \bar c)}{D}\Big] = 0,\quad
    \theta = \alpha E\Big[\frac{F_1 (h - \bar c)}{D}\Big],\quad
    \beta_2 = \alpha E\Big[\frac{F_2 (h - \bar c)}{D}\Big],

the weights on the target's direction in the bulk ``psi_j = V_j alpha E[a_j h_1 / D]``, ``b =
sum_j a_j psi_j``, and the bulk's variances ``q_j = V_j^2 alpha E[a_j^2 e / D^2]`` (a 2 x 2 linear
system; no cross term: the targets are odd, so ``e`` is even), where ``e = E[y^2|kappa] + cbar^2 - 2
cbar h + b^2 - 2 b h_1 + sum_j a_j^2 q_j = e_0 + sum_j a_j^2 q_j``. The test error ``E(y - f(x))^2``
is ``E_kappa e(kappa)`` (``test_error_total``; ``test_error`` without the noise). For an odd
activation (``a_e = 0``) these are the one-channel equations. At ``eta~ = 0`` this is ridge with the
effective ridge ``lam + mu_2^2`` on linear features (and a free constant for a non-odd activation),
that is kernel ridge (and random features at infinite width) on the isotropic kernel.

**Checks.** Against `giant-step` at large width (``gamma`` = 160 and 640, extrapolated in
``1/gamma``): 0.050709 against 0.050687 (erf, ``eta~ = 1``, ``alpha = 2``, ``lam = 0.1``), the
difference the ``F_2`` feature, which the giant step's equivalent does not have (without it this model
gives 0.050710); at ``eta~ = 0``, `random-features` so extrapolated, 0.086189 against 0.086190. The
eigen-structure against a kernel matrix at ``d = 60`` and kernel ridge at ``d = 200``: see the tests.
ReLU: the closed forms above, a kernel matrix at ``d = 100`` (both channels' top modes, the even one's
radial and ``He_2`` content) and kernel ridge at ``d = 200`` (0.0776 +- 0.0011 against 0.0748 at
``eta~ = 1``, ``alpha = 2``; 0.0760 +- 0.0026 at ``d = 400``); without a step, `random-features`
with ReLU so extrapolated, 0.1195340 against 0.1195350.

**ReLU** (checked against these closed forms, derived here): ``sigma'`` is a step (mean 1/2,
variance 1/4), so ``r = eta~ sqrt(c_1^2 + E y^2 / alpha0) / 2``, ``c = 1 + eta~^2 E y^2 / (4
alpha0)``; the odd channel is ``u / 2``: ``mu_0 = r kappa / 2`` (top eigenvalue ``r^2 / 4``), ``a_o =
sqrt(c) / 2``, no ``m_2``; the even channel ``|u| / 2``: ``mu_0 = r kappa (Phi(q) - 1/2) + sqrt(c)
phi(q)``, ``a_e = sqrt(c) (Phi(q) - 1/2)``, ``m_2 = phi(q) / sqrt(c)``, ``q = r kappa / sqrt(c)``. The
kernel's rule for ReLU runs from the kink (Gauss-Legendre to ``BOUND``), with the inner expectation
in closed form; the conditional pieces' rule in ``u`` has an edge at the kink.

**Quadrature.** The Hermite rule in ``kappa`` (``order`` nodes) sees ``sigma(r kappa + ...)``, which
sharpens as the spike grows; ``quadrature_error`` is the relative change of the test error on the rule
of half the nodes at the same ``V`` (1e-5 at ``r = 1.6``, 2e-3 at ``r = 3.2``, erf, ``alpha0 = 2``): a
solve where it exceeds ``quadrature_tol`` ends ``INACCURATE``.

**Normalisation.** ``alpha = n / d``, ``alpha0 = n0 / d`` (the step's batch), ``eta~ = eta / sqrt(p)``
as in the giant step; errors without a 1/2.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, choice, integer, parameter
from .gcm import RF_ACTIVATIONS, gaussian_equivalence
from .giant_step import TARGETS, TARGETS_REFUSED, spiked_law, target_given_kappa
from .learned_spectrum import STEP_ACTIVATIONS

ODD = tuple(STEP_ACTIVATIONS)
"""The odd activations: their kernel has no even channel."""
ACTIVATIONS = {**STEP_ACTIVATIONS, "relu": RF_ACTIVATIONS["relu"]}
"""The stepped layer's activations: the odd ones and ReLU (odd part ``u / 2``, even part ``|u| / 2``)."""
REFUSED = {"sign": "it has no gradient to take a step with"}
BOUND = 10.0
"""The Gaussian integrals of a kinked activation stop at ``+-BOUND`` standard deviations (mass 1e-23)."""


def _relu_mean(mean, spread):
    """``E relu(mean + spread z)``, ``z ~ N(0, 1)``, in closed form (``spread = 0``: ``relu(mean)``)."""
    spread = jnp.maximum(spread, 1e-150)
    return mean * jax.scipy.stats.norm.cdf(mean / spread) + spread * jax.scipy.stats.norm.pdf(mean / spread)


class AdaptiveKernel(FixedPointTheory):
    """Kernel ridge with the infinite-width kernel of a layer after one giant step; see the module
    docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "training samples per dimension n/d")
    eta: jax.Array = parameter(1.0, NONNEGATIVE, "normalised step eta~ = eta / sqrt(p) of the first layer")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge of the kernel regression (K + lam I), not divided by n")
    alpha0: jax.Array = parameter(2.0, POSITIVE, "samples of the step's batch per dimension n0/d")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    activation: str = choice("tanh", ACTIVATIONS, "activation sigma of the stepped layer", REFUSED)
    target: str = choice("tanh", TARGETS, "link g of the single-index target y = g(beta.x)", TARGETS_REFUSED)
    order: int = integer(64, Interval(8), "Gauss-Hermite nodes in kappa and in each conditional expectation")
    quadrature_tol: float = eqx.field(default=1e-3, static=True)
    """Largest ``quadrature_error`` of a converged solve."""

    def _dtype(self):
        return jnp.result_type(self.alpha, self.eta, self.lam, self.alpha0, float)

    def spiked_features(self):
        """``(r, c, gamma_beta)``: the spike, the bulk's variance and the spike direction's cosine
        with ``beta``, those of :class:`~hdtheory.models.giant_step.GiantStep`."""
        return spiked_law(self.eta, self.alpha0, self.noise, self.activation, self.target, self._dtype())

    def kernel(self, overlap, norm1, norm2, kappa1, kappa2, order: int = 32):
        """``K(x, x')`` from ``t = x.x'/d``, ``|x|^2/d``, ``|x'|^2/d``, ``v.x``, ``v.x'`` (arrays that
        broadcast together), averaged over the spike's sign ``s``: a rule of ``order`` nodes in
        ``g`` (Hermite; for ReLU Gauss-Legendre from its kink to ``BOUND``), and in ``g'`` given ``g``
        a closed form (erf: ``E erf(mean + s z) = erf(mean / sqrt(1 + 2 s^2))``; ReLU; linear) or
        a second Hermite rule (tanh)."""
        r, c, _ = self.spiked_features()
        sigma = ACTIVATIONS[self.activation]
        dtype = jnp.result_type(overlap, float)
        z, w = kernels.hermite_rule(order, dtype)
        shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in (overlap, norm1, norm2, kappa1, kappa2)))
        overlap, norm1, norm2, kappa1, kappa2 = (jnp.broadcast_to(a, shape) for a in (overlap, norm1, norm2, kappa1, kappa2))
        slope = jnp.sqrt(c) * overlap / jnp.sqrt(norm1)
        spread = jnp.sqrt(c * jnp.maximum(norm2 - overlap**2 / norm1, 0.0))
        scale = jnp.sqrt(c * norm1)

        def inner(mean):
            if self.activation == "erf":
                return jax.scipy.special.erf(mean / jnp.sqrt(1 + 2 * spread**2))
            if self.activation == "linear":
                return mean
            if self.activation == "relu":
                return _relu_mean(mean, spread)
            return sigma(mean[..., None] + spread[..., None] * z) @ w

        def one_sign(sign):
            if self.activation == "relu":  # the outer relu vanishes below its kink
                start = jnp.clip(-sign * r * kappa1 / scale, -BOUND, BOUND)
                x, u = (jnp.asarray(a, dtype) for a in np.polynomial.legendre.leggauss(order))
                nodes = start[..., None] + (BOUND - start[..., None]) * (x + 1) / 2
                weights = (BOUND - start[..., None]) / 2 * u * jax.scipy.stats.norm.pdf(nodes)
                xs = (jnp.moveaxis(nodes, -1, 0), jnp.moveaxis(weights, -1, 0))
            else:
                xs = (z, w)

            def node(total, zw):
                z1, w1 = zw
                outer = sigma(scale * z1 + sign * r * kappa1)
                return total + w1 * outer * inner(slope * z1 + sign * r * kappa2), None

            return jax.lax.scan(node, jnp.zeros(shape, dtype), xs)[0]

        if self.activation in ODD:  # the sign is a symmetry
            return one_sign(1.0)
        return (one_sign(1.0) + one_sign(-1.0)) / 2

    # -- the conditional pieces -------------------------------------------------------------------

    def _pieces(self, order: int | None = None):
        """The rule in kappa, the channels' ``(mu_0, a, F_1, F_2)`` (each of shape ``(2, order)``: the
        odd part's, then the even part's), ``lambda_kappa``, ``h``, ``h_1`` and ``E[y^2|kappa]`` on
        the Hermite rule of ``order`` nodes (``self.order`` by default; its nodes are symmetric, so
        that reversing an array evaluates it at ``-kappa``)."""
        kappa, w = kernels.hermite_rule(order or self.order, self._dtype())
        r, c, cos = self.spiked_features()
        if self.activation == "relu":  # the rule in u gets an edge at the kink
            u, wu = kernels.panel_rule(-r * kappa[:, None] / jnp.sqrt(c), (order or self.order) // 2)
        else:
            u, wu = kappa[None, :], w[None, :]
        s = ACTIVATIONS[self.activation](r * kappa[:, None] + jnp.sqrt(c) * u)
        m0, s2 = jnp.sum(wu * s, axis=1), jnp.sum(wu * s**2, axis=1)
        mu1 = jnp.sum(wu * s * u, axis=1) / jnp.sqrt(c)
        m2 = jnp.sum(wu * s * (u**2 - 1), axis=1) / c  # E sigma''(sqrt(c) u + r kappa), by Stein twice

        def channels(f, parity):
            """``f``'s part from the activation's odd part (parity ``parity`` in kappa), then the rest."""
            odd = (f + parity * f[::-1]) / 2
            return jnp.stack([odd, f - odd])

        a = jnp.sqrt(c) * mu1
        pieces = (channels(m0, -1), channels(a, 1), channels(a * kappa, -1), channels(c / jnp.sqrt(2.0) * m2, -1))
        rest = jnp.maximum(s2 - m0**2 - a**2, 0.0)  # mu_2^2, then its average over the spike's sign
        return kappa, w, *pieces, self.lam + (rest + rest[::-1]) / 2, *target_given_kappa(cos, self.target, self.noise, kappa, w)

    def spectrum(self):
        """The kernel operator's eigenvalues (module docstring), each a pair (odd channel, even
        channel): ``top`` (``E mu_0^2``), ``linear`` (``d`` times the linear bulk's eigenvalue),
        ``radial_mixing`` (``sqrt(d) tan phi``, the top mode's angle with the radial mode);
        ``isotropic_linear`` (``mu_1^2`` without the step), ``target_block`` (``d`` times the four
        eigenvalues of the ``1/d`` target block, descending) and ``he2`` (the even top mode's
        cosine with ``He_2(v.x) / sqrt 2``) and ``rest`` (``E mu_2^2``, what the rest adds to each
        eigenvalue of ``K / n`` at ``n`` samples, times ``n``)."""
        kappa, w, mu0, a, F1, F2, lam_k, *_ = self._pieces()
        norm0 = jnp.sum(w * mu0**2, axis=1)
        present = norm0 > 1e-28  # the odd channel without a step, the even one of an odd activation
        safe = jnp.where(present, norm0, 1.0)
        F = jnp.concatenate([F1, F2])
        F = F - jnp.einsum("jk,ik,k->ij", mu0, F, w) @ (mu0 / safe[:, None])
        _, mu1, _ = gaussian_equivalence(self.activation, dtype=w.dtype)
        return {
            "top": norm0,
            "linear": jnp.sum(w * a**2, axis=1),
            "isotropic_linear": mu1**2,
            "target_block": jnp.linalg.eigvalsh((F * w) @ F.T)[::-1],
            "radial_mixing": jnp.where(present, jnp.sqrt(jnp.sum(w * F2**2, axis=1) / safe), 0.0),
            "he2": jnp.where(present[1], jnp.sum(w * mu0[1] * (kappa**2 - 1)) / jnp.sqrt(2 * safe[1]), 0.0),
            "rest": jnp.sum(w * lam_k) - self.lam,
        }

    # -- the fixed point --------------------------------------------------------------------------

    def init(self, kind: str = "uninformed"):
        del kind
        return {"V": jnp.ones((2,), self._dtype())}

    def unconstrain(self, state):
        return {"V": jnp.log(state["V"])}

    def constrain(self, coordinates):
        return {"V": jnp.exp(coordinates["V"])}

    def update(self, state):
        _, w, _, a, _, _, lam_k, *_ = self._pieces()
        D = lam_k + state["V"] @ a**2
        return {"V": 1 / (1 + self.alpha * ((a**2 / D) @ w))}

    def accurate(self, state, observables):
        """``quadrature_error <= quadrature_tol``: the test error on the rule of half the nodes, at
        the same ``V``, within ``quadrature_tol`` (relative) of the full rule's."""
        return observables["quadrature_error"] <= self.quadrature_tol

    def _prediction(self, V, order: int | None = None):
        """The test error and the weights of the prediction at ``V`` on the rule of ``order`` nodes."""
        _, w, mu0, a, F1, F2, lam_k, h, h1, y2 = self._pieces(order)
        D = lam_k + V @ a**2

        # rows: the free weights' normal equations (a channel without a mean has none), theta, beta_2
        features = jnp.concatenate([mu0, F1, F2])
        gram = jnp.einsum("ik,jk,k->ij", features, features, w / D)
        free = jnp.asarray([1.0, 1.0, 0.0, 0.0, 0.0, 0.0], gram.dtype)
        scale = jnp.where(free > 0, 1.0, self.alpha)
        matrix = jnp.eye(6, dtype=gram.dtype) + scale[:, None] * gram - jnp.diag(free)
        rhs = scale * ((features * h) @ (w / D))
        present = jnp.stack([self.eta > 0, self.activation not in ODD])
        matrix = matrix.at[:2].set(jnp.where(present[:, None], matrix[:2], jnp.eye(2, 6, dtype=gram.dtype)))
        rhs = rhs.at[:2].set(jnp.where(present, rhs[:2], 0.0))
        weights = jnp.linalg.solve(matrix, rhs)
        cbar = weights @ features
        psi = V * self.alpha * ((a * h1 / D) @ w)
        bulk = psi @ a
        e0 = y2 + cbar**2 - 2 * cbar * h + bulk**2 - 2 * bulk * h1
        # the bulk's variances q_j = V_j^2 alpha E[a_j^2 (e_0 + sum_k a_k^2 q_k) / D^2]
        response = V[:, None] ** 2 * self.alpha * jnp.einsum("jk,ik,k->ji", a**2, a**2, w / D**2)
        q0 = jnp.linalg.solve(jnp.eye(2, dtype=gram.dtype) - response, V**2 * self.alpha * ((a**2 * e0 / D**2) @ w))
        names = ("m", "m_even", "theta", "theta_even", "beta2", "beta2_even")
        return jnp.sum(w * (e0 + q0 @ a**2)), {**dict(zip(names, weights)), "psi": psi, "q0": q0}

    def observables(self, state):
        total, weights = self._prediction(state["V"])
        coarse, _ = self._prediction(state["V"], self.order // 2)
        return {"test_error_total": total, "test_error": total - self.noise,
                "quadrature_error": jnp.abs(coarse - total) / total, "V": state["V"], **weights}


__all__ = ["AdaptiveKernel"]
