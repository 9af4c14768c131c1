r"""The spectrum of a two-layer network's features after one giant gradient step: the bulk that moves.

**Setting.** The network, target and step of :mod:`hdtheory.models.giant_step` (inputs ``x ~ N(0,
I_d)``, ``p = gamma d`` rows uniform on the sphere, ``a_i = +-1``, one step on the correlation loss
over ``n0 = alpha0 d`` samples) with the normalised step ``eta~ = eta / sqrt(p)`` fixed, so that
every row moves by ``O(1)`` (the giant step of Dandi et al. 2023; its spectrum is the object of Dandi
et al. 2024, "A random matrix theory perspective on the spectrum of learned features and asymptotic
generalization capabilities"). Then ``n = alpha d`` fresh inputs, ``F = sigma(W_1 X)`` and ``K = F
F^T / n``, the matrix of :class:`~hdtheory.LearnedSpectrum`, whose bulk this model describes.

**The moved weights** (derived here). The stepped rows are ``w_i = b_i + r a_i v`` with the spike
``r``, ``v`` of :class:`~hdtheory.GiantStep` and the bulk ``B = sqrt(c) bar W``,

.. math:: b_i = w_i^{(0)} + \frac{\tilde\eta\, a_i}{n_0} \sum_\mu y_\mu\,
    \big(\sigma'(w_i^{(0)}.x_\mu) - \mu_1\big)\, x_\mu .

Replacing ``sigma' - mu_1`` (no linear part) by independent noise of variance ``v_1 = Var
sigma'(u)`` (Gaussian equivalence), the rows of ``B`` are, given the batch, independent Gaussian
vectors of covariance ``(I + kappa_s G) / d`` with ``kappa_s = eta~^2 v_1 / alpha0`` and ``G =
X_0^T diag(y^2) X_0 / n_0`` (``d x d``, the batch's weighted sample covariance). So ``B B^T`` is a
sample covariance of ``d`` weighted columns, weights ``s = 1 + kappa_s lambda``, ``lambda`` in the
spectrum of ``G``. Cui et al. 2024 (and ``giant-step``) take ``kappa_s = 0``: ``B B^T`` then has the
Marchenko-Pastur law of ratio ``gamma``. Its Stieltjes transform ``m_L(zeta) = int dL(l) / (l -
zeta)`` is, with ``t = int dLaw(lambda) / (1 + gamma m_L s)`` (Silverstein 1995, twice),

.. math:: m_L = \frac{1}{-\zeta + t\,(1 + \kappa_s E_y)},\qquad
    t = \frac{1}{1 + \gamma m_L (1 + \kappa_s E_y)},\qquad
    E_y = E\Big[\frac{y^2}{1 + \gamma \kappa_s m_L t\, y^2 / \alpha_0}\Big],

``E`` over the label ``y = g(z) + sqrt(noise) xi``. At ``kappa_s = 0``, ``t = 1 / (1 + gamma m_L)``
and ``m_L`` is the Marchenko-Pastur transform.

**The features' bulk** (derived here from the conditional Gaussian equivalence of Cui et al. 2024,
as in :class:`~hdtheory.GiantStep`). Given ``kappa = v.x`` a feature vector is ``mu_0(kappa) a +
mu_1(kappa) B x + mu_2(kappa) xi``. The mean ``mu_0 a`` is an outlier of ``K`` of order ``p``
(``outlier_per_unit``: ``E mu_0^2 = lim lambda_max / p``); the rest is a sample covariance whose
samples have the covariances ``Sigma(kappa) = mu_1(kappa)^2 B B^T + mu_2(kappa)^2 I``, which commute.
Its deterministic equivalent (Couillet and Liao 2022, Ch. 2, samples of independent covariances) is
``(-z + A_1 B B^T + A_2)^{-1}`` with ``A_a = E_kappa[mu_a^2 / (1 + delta(kappa))]``, ``delta(kappa)
= mu_1^2 D_1 + mu_2^2 D_2`` and, with ``c = p / n = gamma / alpha`` and ``zeta = (z - A_2) / A_1``,

.. math:: D_2 = \frac{c}{A_1}\, m_L(\zeta),\qquad D_1 = \frac{c}{A_1}\,\big(1 + \zeta\, m_L(\zeta)\big).

The Stieltjes transform of ``K``'s bulk is ``m = D_2 / c`` and its density ``Im m(x + i eps) / pi``.
The state is ``(D_1, D_2, t, E_y)`` at ``z = x + i eps``, one fixed point, with ``m_L(zeta) = 1 / (t
(1 + kappa_s E_y) - zeta)`` eliminated (so that ``1 + zeta m_L = t (1 + kappa_s E_y) m_L`` has no
cancellation); ``Im D_1, Im D_2 > 0`` and ``Im t < 0`` are kept by the solver's coordinates, and
its start is the damped map continued from ``eps = 1`` down (``init``). At ``eta~ = 0`` it is the
bulk of :class:`~hdtheory.LearnedSpectrum` at ``eta = 0``.

**Edge** (derived here). Right of the bulk, at real ``z = x``, the fixed point is real and has an
explicit inverse along one parameter, ``q = m_L t < 0``:

.. math:: E_y = E\Big[\frac{y^2}{1 + \gamma \kappa_s q\, y^2 / \alpha_0}\Big],\quad
    t = 1 - \gamma q (1 + \kappa_s E_y),\quad m_L = q / t,\quad \tau = t (1 + \kappa_s E_y),\quad
    \zeta = \tau - 1 / m_L ;

then ``D_1 = tau D_2`` and ``D_2`` is the root of ``D_2 A_1(D_2) = c m_L`` (``A_a`` at ``delta =
D_2 (mu_1^2 tau + mu_2^2)``, increasing in ``D_2`` on ``(-1 / max(mu_1^2 tau + mu_2^2), 0)``), and
``x(q) = A_1 zeta + A_2``. As ``q -> 0`` the point ``x -> infinity``; the edge, where the density
vanishes, is the minimum of ``x`` along the branch: the root of ``x'(q) = 0``, found (Newton's
method safeguarded by bisection, ``hdtheory.kernels.roots``) in ``u`` in ``(0, 1)``, ``q = -u / (1 -
u + b u)``, which covers ``q`` from 0 to ``E_y``'s pole ``-1 / b``, ``b = gamma kappa_s max y^2 /
alpha0``. The root is accepted (``edge_converged``, and the solve's ``converged`` with it) where
both roots met their tolerance and ``zeta`` is still on the physical branch (decreasing in ``u``);
``x`` was seen to have one minimum over the whole range of ``u`` in the cases checked.
Its derivative is ``x``'s at fixed ``q`` (``x'(q) = 0`` there). With an unbounded label (label noise
or a linear target) and a bulk that moves (``kappa_s > 0``) the weights ``y^2`` of ``G`` have
unbounded support, and so have the laws of ``G`` (Silverstein and Choi 1995: no real point right
of it), of ``B B^T`` and of the features' bulk: ``edge`` is then ``inf``. At ``eta~ = 0`` the edge
is that of :class:`~hdtheory.LearnedSpectrum` (its Marchenko-Pastur closed form).

**Checks** (``tests/test_giant_spectrum.py``; tanh features and target, ``gamma = 1``, ``alpha =
2``, ``alpha0 = 1``, ``eta~ = 2``, where ``kappa_s = 0.39``). Against the eigenvalues of ``K`` of
networks stepped at finite ``d`` (the top one left out), both smoothed by the Cauchy kernel of width
``eps = 0.02``: Kolmogorov distance between the distribution functions 0.004 at ``d = 300`` and 0.006
at ``d = 600`` (two networks each); the same equations with ``kappa_s = 0`` (the bulk of the initial
law) 0.031 and 0.023 (erf features, an erf target, label noise 0.1, ``gamma = 0.5``, ``alpha =
1.5``, ``alpha0 = 0.5``, ``kappa_s = 1.16``: 0.0095 at ``d = 400`` and 0.0077 at ``d = 800``,
against 0.114 and 0.106). ``lambda_max / p`` of four networks at ``d = 1000``: 0.239 against ``E mu_0^2
= 0.2399`` (a spread of 5 to 8 % between networks that does not shrink from ``d = 250`` to 1000).
The edge, 1.6328 (1.4026 for the bulk of the initial law), against the second eigenvalue of ``K``:
1.569 +- 0.016, 1.622 +- 0.008 and 1.614 +- 0.013 at ``d = 250``, 500, 1000 (16, 8 and 4 networks);
with erf features and target and no label noise (``gamma = 0.5``, ``alpha = 1.5``, ``alpha0 =
0.5``, ``eta~ = 2``) 1.4880 (0.8893 for the initial law) against 1.388, 1.423 and 1.445 (+- 0.03),
which approach it from below about as ``d^{-0.6}``, slower than the Tracy-Widom scale ``d^{-2/3}``.
At ``eta~ = 0`` it is ``learned-spectrum``'s edge to 2e-7; from 48 to 96 Hermite nodes it moves by
3e-7.

**Normalisation** as :class:`~hdtheory.GiantStep`: ``eta`` is ``eta~``; ``gamma = p / d``,
``alpha = n / d``, ``alpha0 = n0 / d``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, choice, integer, parameter
from .giant_step import TARGETS, TARGETS_REFUSED, GiantStep
from .learned_spectrum import REFUSED, STEP_ACTIVATIONS

PARTS = ("d1", "d2", "t", "e")
CONTINUATION = 200
"""Iterations of the map that make the start (``init``)."""

SIGNS = {"d1_im": 1, "d2_im": 1, "t_im": -1}
"""The signs of the imaginary parts that are fixed (``z`` in the upper half-plane)."""


class GiantSpectrum(FixedPointTheory):
    """The bulk of the features' covariance after one step of size ``eta~ sqrt(p)``; see the module
    docstring."""

    x: jax.Array = parameter(1.0, Interval(), "spectral point at which the density is evaluated")
    eps: jax.Array = parameter(1e-3, POSITIVE, "imaginary part of the spectral point (smoothing)")
    gamma: jax.Array = parameter(1.0, POSITIVE, "hidden units per input dimension p/d")
    alpha: jax.Array = parameter(2.0, POSITIVE, "samples of the feature covariance per dimension n/d")
    eta: jax.Array = parameter(1.0, NONNEGATIVE, "normalised step eta~ = eta / sqrt(p) (rows move by O(1))")
    alpha0: jax.Array = parameter(2.0, POSITIVE, "samples of the step's batch per dimension n0/d")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    activation: str = choice("tanh", STEP_ACTIVATIONS, "activation sigma of the hidden layer", REFUSED)
    target: str = choice("tanh", TARGETS, "link g of the single-index target y = g(beta.x)", TARGETS_REFUSED)
    order: int = integer(64, Interval(8), "Gauss-Hermite nodes in kappa and in the label")

    def _dtype(self):
        return jnp.result_type(self.x, self.gamma, self.alpha, self.eta, self.alpha0, float)

    def step(self) -> GiantStep:
        """The :class:`~hdtheory.GiantStep` of the same network: its spike and conditional features."""
        return GiantStep(alpha=self.alpha, eta=self.eta, gamma=self.gamma, alpha0=self.alpha0, noise=self.noise,
                         activation=self.activation, target=self.target, order=self.order)

    def _labels(self):
        """``(y^2, weights, kappa_s)``: the label's square on a two-dimensional Hermite rule, and the
        bulk's spread ``kappa_s = (c - 1) / E[y^2]``."""
        z, w = kernels.hermite_rule(self.order, self._dtype())
        # The noise's square root with a finite derivative at 0 (forward mode meets it with a zero
        # tangent there, and sqrt's infinite slope times 0 is NaN).
        noisy = self.noise > 0
        sd = jnp.where(noisy, jnp.sqrt(jnp.where(noisy, self.noise, 1.0)), 0.0)
        y = TARGETS[self.target](z)[:, None] + sd * z[None, :]
        y2, weights = jnp.ravel(y**2), jnp.ravel(w[:, None] * w[None, :])
        _, c, _ = self.step().spiked_features()
        return y2, weights, (c - 1) / jnp.sum(weights * y2)

    def init(self, kind: str = "uninformed"):
        """The map, damped by 1/2, iterated along ``z = x + i eps_k``, ``eps_k`` from 1 down to ``eps``
        (a continuation from far off the axis to the point: Newton's start)."""
        del kind
        one = jnp.ones((), self._dtype())
        state = {"d1_re": 0 * one, "d1_im": one, "d2_re": 0 * one, "d2_im": one, "t_re": one, "t_im": -0.5 * one,
                 "e_re": one, "e_im": 0 * one}
        eps = jnp.exp(jnp.linspace(0.0, 1.0, CONTINUATION) * jnp.log(jnp.minimum(self.eps, 1.0)))

        def step(state, eps):
            new = eqx.tree_at(lambda t: t.eps, self, eps).update(state)
            return jax.tree.map(lambda a, b: (a + b) / 2, state, new), None

        return jax.lax.scan(step, state, eps)[0]

    def unconstrain(self, state):
        return {k: jnp.log(SIGNS[k] * v) if k in SIGNS else v for k, v in state.items()}

    def constrain(self, coordinates):
        return {k: SIGNS[k] * jnp.exp(v) if k in SIGNS else v for k, v in coordinates.items()}

    def _resolvent(self, state):
        """``(m, new)``: the features' Stieltjes transform ``m = m_L(zeta) / A_1`` and the map's new
        ``(D_1, D_2, t, E_y)``, with ``m_L`` eliminated (``m_L = 1 / (t (1 + kappa_s E_y) - zeta)``)."""
        d1, d2, t, e = (state[f"{k}_re"] + 1j * state[f"{k}_im"] for k in PARTS)
        z = self.x + 1j * self.eps
        _, weights, _, mu1, mu2, *_ = self.step().conditional()
        delta = mu1**2 * d1 + mu2**2 * d2
        a1, a2 = jnp.sum(weights * mu1**2 / (1 + delta)), jnp.sum(weights * mu2**2 / (1 + delta))
        zeta = (z - a2) / a1
        y2, w, ks = self._labels()
        tau = t * (1 + ks * e)
        ml = 1 / (tau - zeta)
        c = self.gamma / self.alpha
        new = {"d1": c * tau * ml / a1, "d2": c * ml / a1, "t": 1 / (1 + self.gamma * ml * (1 + ks * e)),
               "e": jnp.sum(w * y2 / (1 + self.gamma * ks * ml * t * y2 / self.alpha0))}
        return ml / a1, new

    # -- the right edge ---------------------------------------------------------------------------

    def _subordinate(self, u, labels):
        """``(m_L, tau, zeta)`` on the real branch at ``u`` in ``(0, 1)``: ``q = m_L t = -u / (1 - u +
        b u)``, ``b = gamma kappa_s max y^2 / alpha0`` (``E_y``'s pole); ``labels`` from ``_labels``."""
        y2, w, ks = labels
        b = self.gamma * ks * jnp.max(y2) / self.alpha0
        q = -u / (1 - u + b * u)
        e = jnp.sum(w * y2 / (1 + self.gamma * ks * q * y2 / self.alpha0))
        t = 1 - self.gamma * q * (1 + ks * e)
        ml, tau = q / t, t * (1 + ks * e)
        return ml, tau, tau - 1 / ml

    def _branch(self, u, labels, rule):
        """``(x, residual)``: the spectral point at ``u`` on the real branch and the residual of its
        ``D_2``; ``rule = (weights, mu_1, mu_2)`` in ``kappa``."""
        weights, mu1, mu2 = rule
        ml, tau, zeta = self._subordinate(u, labels)
        spread = mu1**2 * tau + mu2**2
        top = jnp.max(spread)
        args = (ml, spread, top, weights * mu1**2, self.gamma / self.alpha)

        def excess(v, ml, spread, top, mass, c):  # D_2 A_1(D_2) - c m_L at D_2 = -v / top, increasing in D_2
            d2 = -v / top
            return d2 * jnp.sum(mass / (1 + d2 * spread)) - c * ml

        # The search sees no derivatives (it would carry them through every step); one Newton step
        # with them gives the root's, by the implicit function theorem.
        fixed = jax.lax.stop_gradient(args)
        bracket = jnp.asarray([0.0, 1 - 1e-12], u.dtype)
        v, residual = kernels.roots.scalar_root(lambda v: excess(v, *fixed), bracket, 200, 1e-14)
        v = v - excess(v, *args) / jax.grad(excess)(v, *fixed)
        a1, a2 = (jnp.sum(weights * mu**2 / (1 - v / top * spread)) for mu in (mu1, mu2))
        return a1 * zeta + a2, residual

    def edge(self):
        """``(edge, converged)``: the right end of the bulk's support (module docstring, "Edge")."""
        labels = self._labels()
        _, weights, _, mu1, mu2, *_ = self.step().conditional()
        rule = (weights, mu1, mu2)
        fixed, fixed_labels, fixed_rule = jax.lax.stop_gradient((self, labels, rule))

        def slope(u):
            return jax.grad(lambda u: fixed._branch(u, fixed_labels, fixed_rule)[0])(u)

        bracket = jnp.asarray([1e-9, 1 - 1e-12], self._dtype())
        u, residual = jax.lax.stop_gradient(kernels.roots.scalar_root(slope, bracket, 200, 1e-13))
        # The derivative of the minimum is that of x at fixed u (x'(u) = 0 there).
        x, inner = self._branch(u, labels, rule)
        physical = jax.grad(lambda u: fixed._subordinate(u, fixed_labels)[2])(u) < 0
        converged = physical & (residual <= 1e-8 * (1 + jnp.abs(x))) & (inner <= 1e-10) & jnp.isfinite(x)
        unbounded = (self.eta > 0) & ((self.noise > 0) | (self.target == "linear")) & (self.activation != "linear")
        return jnp.where(unbounded, jnp.inf, x), unbounded | converged

    def update(self, state):
        _, new = self._resolvent(state)
        return {f"{k}_{part}": f(new[k]) for k in PARTS for part, f in (("re", jnp.real), ("im", jnp.imag))}

    def accurate(self, state, observables):
        """Whether the edge's roots converged on the physical branch (``edge``)."""
        return observables["edge_converged"] > 0

    def observables(self, state):
        m, _ = self._resolvent(state)
        _, weights, mu0, *_ = self.step().conditional()
        r, c, _ = self.step().spiked_features()
        _, _, ks = self._labels()
        edge, converged = self.edge()
        return {
            "density": jnp.imag(m) / jnp.pi,
            "stieltjes_real": jnp.real(m),
            "stieltjes_imag": jnp.imag(m),
            "edge": edge,
            "edge_converged": converged.astype(edge.dtype),
            "outlier_per_unit": jnp.sum(weights * mu0**2),
            "spike": r,
            "bulk_variance": c,
            "bulk_spread": ks,
        }


__all__ = ["GiantSpectrum"]
