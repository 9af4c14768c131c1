r"""Kernel ridge regression with the data-adaptive kernel of a layer after one giant step.

**Setting.** The function-space view of feature learning of Lobo, Loureiro, Tran-Thanh and Liu 2026
("How does feature learning reshape the function space?", arXiv:2605.17718): after a large gradient
step the first layer's weights follow a target-dependent spiked law, and the network's infinite-width
kernel becomes data-adaptive. The paper's text was not at hand: this model is built for the setting of
its abstract, on the stepped layer of :class:`~hdtheory.models.giant_step.GiantStep` (same ``eta~``,
``alpha0``, ``noise``, activation and target; odd activations), and every equation below is derived
here.

**The kernel.** Rows ``w = sqrt(c) bar w + r v`` with ``bar w ~ N(0, I_d / d)`` and ``(r, c, v)`` the
spike, bulk variance and spike direction of the giant step (``v`` at cosine ``gamma_beta`` with the
target's ``beta``; for odd ``sigma`` the signs ``a_i`` drop out). With ``t = x.x'/d``, ``n = |x|^2/d``,
``n' = |x'|^2/d``, ``kappa = v.x``, ``kappa' = v.x'``,

.. math:: K(x, x') = E_w\, \sigma(w.x)\, \sigma(w.x') = E\, \sigma(\sqrt c\, g + r\kappa)\,
          \sigma(\sqrt c\, g' + r\kappa'),\qquad (g, g') \sim N\Big(0, \begin{pmatrix} n & t \\
          t & n' \end{pmatrix}\Big)

(:meth:`AdaptiveKernel.kernel`; ``eta~ = 0`` is the isotropic kernel of random features at infinite
width). By Mehler's formula, with ``m_k(kappa) = E sigma^{(k)}(sqrt(c) z + r kappa)`` (``mu_0 = m_0``,
``mu_1 = m_1`` of the giant step), at ``n = n' = 1``:
``K = sum_k (c t)^k / k! m_k(kappa) m_k(kappa')``.

**Its eigen-structure** (the operator ``f -> E_x' K(., x') f(x')`` on ``L^2(N(0, I_d))``, ``d ->
infinity``; :meth:`AdaptiveKernel.spectrum`). With ``x_perp`` the part of ``x`` orthogonal to ``v``,
``t = kappa kappa' / d + x_perp.x'_perp / d``; averaging ``t^2`` gives ``1/d``, and the norm enters
through ``dm_0/dn = (c / 2) m_2``:

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
  diagonal less its low-order part).

The top eigenfunction is the mean feature ``E_w sigma(w.x)``: for isotropic rows a function of
``|x|`` alone (the radial top mode of a non-odd activation; zero for an odd one), after the step a
function of ``v.x`` too. For an odd activation every term above is odd in ``kappa``: the coupling of
the radial mode with the even harmonic ``He_2(v.x)`` that the even part of a non-odd activation
brings (the abstract's) is absent here; non-odd activations are not covered by the giant step.

**Kernel ridge regression** (``n = alpha d`` samples of ``y = g(beta.x) + sqrt(noise) xi``, predictor
``f = K(., X)(K + lam I)^{-1} y``; the normalisation of the giant step's ridge, ``lam`` not divided by
``n``). In the proportional regime the kernel matrix is that of the features ``mu_0(kappa)`` (free:
its weight is fitted at no cost), ``F_1, F_2`` (each of strength ``1/d``), ``sqrt(c) mu_1(kappa)
x_perp / sqrt(d)`` and the ridge ``lambda_kappa = lam + mu_2^2(kappa)`` per sample: a weighted ridge
regression, solved here by its deterministic equivalent. With ``a = sqrt(c) mu_1``, ``D = lambda_kappa
+ a^2 V``, ``h = E[y | kappa]``, ``h_1 = E[t y | kappa]`` (``t = zeta.x``, ``zeta`` orthogonal to
``v`` in the plane of ``beta``), ``E`` over ``kappa ~ N(0, 1)``:

.. math:: V = 1 / \big(1 + \alpha E[a^2 / D]\big)

(the fixed point), then the mean prediction ``cbar = m mu_0 + theta F_1 + beta_2 F_2`` (with
``F_1, F_2`` as above, ``cbar`` given ``kappa``) from the linear equations

.. math:: E\Big[\frac{\mu_0 (h - \bar c)}{D}\Big] = 0,\quad
    \theta = \alpha E\Big[\frac{F_1 (h - \bar c)}{D}\Big],\quad
    \beta_2 = \alpha E\Big[\frac{F_2 (h - \bar c)}{D}\Big],

the weight on the target's direction in the bulk ``psi = V alpha E[a h_1 / D]``, and the bulk's
variance ``q_0 = V^2 alpha E[a^2 e_0 / D^2] / (1 - V^2 alpha E[a^4 / D^2])``, where ``e =
E[y^2|kappa] + cbar^2 - 2 cbar h + a^2 (psi^2 + q_0) - 2 a psi h_1 = e_0 + a^2 q_0``. The test error
``E(y - f(x))^2`` is ``E_kappa e(kappa)`` (``test_error_total``; ``test_error`` without the noise).
At ``eta~ = 0`` this is ridge with the effective ridge ``lam + mu_2^2`` on linear features, that is
kernel ridge (and random features at infinite width) on the isotropic kernel.

**Checks.** Against `giant-step` at large width (``gamma`` = 160 and 640, extrapolated in
``1/gamma``): 0.050709 against 0.050687 (erf, ``eta~ = 1``, ``alpha = 2``, ``lam = 0.1``), the
difference the ``F_2`` feature, which the giant step's equivalent does not have (without it this model
gives 0.050710); at ``eta~ = 0``, `random-features` so extrapolated, 0.086189 against 0.086190. The
eigen-structure against a kernel matrix at ``d = 60`` and kernel ridge at ``d = 200``: see the tests.

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

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, choice, integer, parameter
from .gcm import gaussian_equivalence
from .giant_step import TARGETS, TARGETS_REFUSED, GiantStep
from .learned_spectrum import REFUSED, STEP_ACTIVATIONS


class AdaptiveKernel(FixedPointTheory):
    """Kernel ridge with the infinite-width kernel of a layer after one giant step; see the module
    docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "training samples per dimension n/d")
    eta: jax.Array = parameter(1.0, NONNEGATIVE, "normalised step eta~ = eta / sqrt(p) of the first layer")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge of the kernel regression (K + lam I), not divided by n")
    alpha0: jax.Array = parameter(2.0, POSITIVE, "samples of the step's batch per dimension n0/d")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    activation: str = choice("tanh", STEP_ACTIVATIONS, "activation sigma of the stepped layer", REFUSED)
    target: str = choice("tanh", TARGETS, "link g of the single-index target y = g(beta.x)", TARGETS_REFUSED)
    order: int = integer(64, Interval(8), "Gauss-Hermite nodes in kappa and in each conditional expectation")
    quadrature_tol: float = eqx.field(default=1e-3, static=True)
    """Largest ``quadrature_error`` of a converged solve."""

    def step(self) -> GiantStep:
        """The stepped layer's law (``spiked_features`` gives ``(r, c, gamma_beta)``)."""
        return GiantStep(eta=self.eta, alpha0=self.alpha0, noise=self.noise, activation=self.activation,
                         target=self.target, order=self.order)

    def kernel(self, overlap, norm1, norm2, kappa1, kappa2, order: int = 32):
        """``K(x, x')`` from ``t = x.x'/d``, ``|x|^2/d``, ``|x'|^2/d``, ``v.x``, ``v.x'`` (arrays that
        broadcast together): a Hermite rule of ``order`` nodes in ``g``, and in ``g'`` given ``g`` the
        closed form ``E erf(mean + s z) = erf(mean / sqrt(1 + 2 s^2))`` (erf; the mean itself for
        the linear activation) or a second rule (tanh)."""
        r, c, _ = self.step().spiked_features()
        sigma = STEP_ACTIVATIONS[self.activation]
        z, w = kernels.hermite_rule(order, jnp.result_type(overlap, float))
        shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in (overlap, norm1, norm2, kappa1, kappa2)))
        overlap, norm1, norm2, kappa1, kappa2 = (jnp.broadcast_to(a, shape) for a in (overlap, norm1, norm2, kappa1, kappa2))
        slope = jnp.sqrt(c) * overlap / jnp.sqrt(norm1)
        spread = jnp.sqrt(c * jnp.maximum(norm2 - overlap**2 / norm1, 0.0))

        def inner(mean):
            if self.activation == "erf":
                return jax.scipy.special.erf(mean / jnp.sqrt(1 + 2 * spread**2))
            if self.activation == "linear":
                return mean
            return sigma(mean[..., None] + spread[..., None] * z) @ w

        def node(total, zw):
            z1, w1 = zw
            outer = sigma(jnp.sqrt(c * norm1) * z1 + r * kappa1)
            return total + w1 * outer * inner(slope * z1 + r * kappa2), None

        total, _ = jax.lax.scan(node, jnp.zeros(shape, z.dtype), (z, w))
        return total

    # -- the conditional pieces -------------------------------------------------------------------

    def _pieces(self, order: int | None = None):
        """The rule in kappa and ``(mu_0, a, F_1, F_2, lambda_kappa, h, h_1, E[y^2|kappa])`` on the
        Hermite rule of ``order`` nodes (``self.order`` by default)."""
        kappa, w, mu0, mu1, mu2, h, h1, y2 = self.step().conditional(order)
        r, c, _ = self.step().spiked_features()
        sigma = STEP_ACTIVATIONS[self.activation]
        s = sigma(r * kappa[:, None] + jnp.sqrt(c) * kappa[None, :])
        m2 = s @ (w * (kappa**2 - 1)) / c  # E sigma''(sqrt(c) z + r kappa), by Stein twice
        a = jnp.sqrt(c) * mu1
        return kappa, w, mu0, a, a * kappa, c / jnp.sqrt(2.0) * m2, self.lam + mu2**2, h, h1, y2

    def spectrum(self):
        """The kernel operator's eigenvalues (module docstring): ``top`` (``E mu_0^2``), ``linear``
        and ``isotropic_linear`` (``d`` times the linear bulk's eigenvalue, after and without the
        step), ``target_block`` (``d`` times the two eigenvalues of the ``1/d`` target block) and
        ``radial_mixing`` (``sqrt(d) tan phi``, the top mode's angle with the radial mode)."""
        kappa, w, mu0, a, F1, F2, *_ = self._pieces()
        norm0 = jnp.sum(w * mu0**2)
        safe = jnp.where(self.eta > 0, norm0, 1.0)  # without a step mu_0 = 0 (up to rounding)
        F = jnp.stack([F1, F2])
        F = F - jnp.sum(w * F * mu0, axis=1, keepdims=True) * mu0 / safe
        _, mu1, _ = gaussian_equivalence(self.activation, dtype=w.dtype)
        return {
            "top": norm0,
            "linear": jnp.sum(w * a**2),
            "isotropic_linear": mu1**2,
            "target_block": jnp.linalg.eigvalsh((F * w) @ F.T)[::-1],
            "radial_mixing": jnp.where(self.eta > 0, jnp.sqrt(jnp.sum(w * F2**2) / safe), 0.0),
        }

    # -- the fixed point --------------------------------------------------------------------------

    def init(self, kind: str = "uninformed"):
        del kind
        return {"V": jnp.ones((), jnp.result_type(self.alpha, self.eta, self.lam, self.alpha0, float))}

    def unconstrain(self, state):
        return {"V": jnp.log(state["V"])}

    def constrain(self, coordinates):
        return {"V": jnp.exp(coordinates["V"])}

    def update(self, state):
        _, w, _, a, _, _, lam_k, *_ = self._pieces()
        return {"V": 1 / (1 + self.alpha * jnp.sum(w * a**2 / (lam_k + a**2 * state["V"])))}

    def accurate(self, state, observables):
        """``quadrature_error <= quadrature_tol``: the test error on the rule of half the nodes, at
        the same ``V``, within ``quadrature_tol`` (relative) of the full rule's."""
        return observables["quadrature_error"] <= self.quadrature_tol

    def _prediction(self, V, order: int | None = None):
        """The test error and the weights of the prediction at ``V`` on the rule of ``order`` nodes."""
        _, w, mu0, a, F1, F2, lam_k, h, h1, y2 = self._pieces(order)
        D = lam_k + a**2 * V

        def mean(f):
            return jnp.sum(w * f)

        # rows: the free weight's normal equation (m = 0 without a step: mu_0 = 0), theta, beta_2
        features = jnp.stack([mu0, F1, F2])
        gram = jnp.einsum("ik,jk,k->ij", features, features, w / D)
        scale = jnp.stack([1.0, self.alpha, self.alpha])
        free = jnp.asarray([1.0, 0.0, 0.0], gram.dtype)
        matrix = jnp.eye(3, dtype=gram.dtype) + scale[:, None] * gram - jnp.diag(free)
        rhs = scale * ((features * h) @ (w / D))
        stepped = self.eta > 0
        matrix = matrix.at[0].set(jnp.where(stepped, matrix[0], free))
        rhs = rhs.at[0].set(jnp.where(stepped, rhs[0], 0.0))
        m, theta, beta2 = jnp.linalg.solve(matrix, rhs)
        cbar = m * mu0 + theta * F1 + beta2 * F2
        psi = V * self.alpha * mean(a * h1 / D)
        e0 = y2 + cbar**2 - 2 * cbar * h + a**2 * psi**2 - 2 * a * psi * h1
        q0 = V**2 * self.alpha * mean(a**2 * e0 / D**2) / (1 - V**2 * self.alpha * mean(a**4 / D**2))
        return mean(e0 + a**2 * q0), {"m": m, "theta": theta, "beta2": beta2, "psi": psi, "q0": q0}

    def observables(self, state):
        total, weights = self._prediction(state["V"])
        coarse, _ = self._prediction(state["V"], self.order // 2)
        return {"test_error_total": total, "test_error": total - self.noise,
                "quadrature_error": jnp.abs(coarse - total) / total, "V": state["V"], **weights}


__all__ = ["AdaptiveKernel"]
