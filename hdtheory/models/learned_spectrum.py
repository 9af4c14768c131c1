r"""The spectrum of a two-layer network's features after one gradient step on a single-index target.

**Setting** (the one-step feature learning of Ba et al. 2022, "High-dimensional asymptotics of
feature learning: how one gradient step improves the representation", and of Dandi et al. 2023, "How
two-layer neural networks learn, one (giant) step at a time"; the spectrum as in Dandi et al. 2024,
"A random matrix theory perspective on the spectrum of learned features and asymptotic generalization
capabilities"). Inputs ``x ~ N(0, I_d)``; a network ``f(x) = sum_i a_i sigma(w_i.x) / sqrt(p)`` of
``p = gamma d`` units, first-layer rows ``w_i`` uniform on the unit sphere, second layer ``a_i = +-1``;
a single-index target ``y = g(beta.x) + sqrt(noise) xi`` with ``|beta| = 1``. One gradient step of
size ``eta`` on the first layer, on a fresh batch of ``n0 = alpha0 d`` samples, with the correlation
loss ``-(1/n0) sum_mu y_mu f(x_mu)`` (the part of the square loss that carries the target; the
network's output at initialisation is left out):

.. math:: w_i \leftarrow w_i + \frac{\eta\, a_i}{\sqrt{p}} \frac{1}{n_0}\sum_\mu y_\mu\,
          \sigma'(w_i.x_\mu)\, x_\mu .

The learned features ``F = sigma(W X)`` (``p x n``) of ``n = alpha d`` fresh inputs, and their
empirical covariance ``K = F F^T / n``, whose eigenvalues this model describes: the density of the
bulk at a spectral point ``x`` and the top eigenvalue (the outlier the step creates, or the bulk's
edge). Activations odd (features of mean zero) and differentiable: ``erf``, ``tanh``, ``linear``.

**The step is a rank-one spike** (as in Ba et al. 2022 for the gradient at initialisation; the
constants here are derived for this setting and checked against simulation): with ``mu_1 = E sigma'(u)``, ``mu_*^2 = E sigma(u)^2 - mu_1^2`` (``u ~ N(0, 1)``,
:func:`~hdtheory.models.gcm.gaussian_equivalence`), ``W_1 = W_0 + (eta mu_1 / sqrt(p)) a h^T`` up to
a matrix of operator norm ``O(eta / sqrt(p))``, with ``h = X_0^T y / n_0``, ``|h|^2 -> c_1^2 +
E[y^2] / alpha0`` (``c_1 = E[g(z) z]``). The spike's operator norm is

.. math:: \theta = \eta\, \mu_1 \sqrt{c_1^2 + E[y^2] / \alpha_0} .

For ``eta = O(1)`` (the step exponent 0: every row moves by ``O(1 / sqrt(p))``), expanding
``sigma`` about ``W_0 x`` and splitting ``x`` along ``v = h / |h|`` (``z = X^T v``, independent of
the rest of ``X``), ``F / sqrt(n) = A + b z^T / sqrt(n) + o(1)`` in operator norm, with ``A`` the
unspiked random features of the other ``d - 1`` directions and ``b = mu_1 (W_0 v + theta a /
|a|)``, both ``b`` and ``z`` independent of ``A`` and isotropic, ``|b|^2 -> s^2 = mu_1^2 (gamma +
theta^2)``. (At ``eta = 0`` the same split holds with ``s^2 = mu_1^2 gamma``, which creates no outlier:
checked in the tests.)

**Bulk** (Pennington and Worah 2017; Péché 2019, Benigni and Péché 2021: the bulk of ``K`` is that
of its Gaussian equivalent, the sample covariance of ``n`` samples of covariance ``Sigma = mu_1^2
W_0 W_0^T + mu_*^2 I_p``). Its population law ``H`` is the image of the Marchenko-Pastur law of ratio
``gamma`` under ``s -> mu_1^2 s + mu_*^2``. With ``c = p / n = gamma / alpha`` the companion Stieltjes
transform ``m_(z) = c m(z) - (1 - c) / z`` of ``F^T F / n`` is the fixed point (Silverstein 1995)

.. math:: \underline m = \Big(-z + c\, T(\underline m)\Big)^{-1},\qquad
    T(\underline m) = \int \frac{t\, dH(t)}{1 + t \underline m}
    = \frac{1}{\underline m}\Big(1 - \frac{1}{\underline m}\, m_H(-1/\underline m)\Big),

``m_H(w) = m_MP((w - mu_*^2) / mu_1^2) / mu_1^2``, where ``m_MP(w) = (1 - gamma - w + sqrt(w - a)
sqrt(w - b)) / (2 gamma w)`` (principal roots, ``[a, b] = [(1 -+ sqrt(gamma))^2]``) is the
Marchenko-Pastur transform in closed form. The state is ``m_`` at ``z = x + i eps`` (its real part and
the logarithm of its imaginary part, so no solver step leaves the upper half-plane); the density of
``K`` is ``Im m / pi`` with ``m = (m_ + (1 - c) / z) / c``.

**Edge and outlier** (Silverstein and Choi 1995; Benaych-Georges and Nadakuditi 2012 for the rank-one
perturbation of a rectangular matrix). Right of the bulk ``m_`` is real in ``(-1 / t_max, 0)``
(``t_max = mu_1^2 b + mu_*^2``) and ``x(m_) = -1/m_ + c T(m_)`` is its explicit inverse; the edge is
``x`` at the root of ``x'(m_) = 0``. An eigenvalue ``x* > edge`` of ``K`` leaves the bulk where

.. math:: s^2\, x\, m(x)\, \underline m(x) = 1,

which has a root right of the edge if and only if ``s^2 x m m_ > 1`` at the edge. ``outlier`` is the
top eigenvalue: that root, or the edge. Both are scalar roots (``hdtheory.kernels.roots``) of explicit
functions of ``m_``, differentiable by the implicit function theorem.

**Normalisation.** ``gamma = p / d``, ``alpha = n / d`` (the samples of ``K``), ``alpha0 = n0 / d``
(the batch of the step); ``eta`` multiplies the gradient of the correlation loss of the network
``f = sum_i a_i sigma(w_i.x) / sqrt(p)`` as written above (papers differ in where the ``sqrt(p)``
sits: convert through the rows' displacement ``eta mu_1 |h| / sqrt(p)``). The step sizes for
which the rows move by ``O(1)`` (``eta ~ sqrt(p)`` here, the "giant" step of Dandi et al. 2023, 2024
and Cui et al. 2024) are outside this model: there the bulk moves too (its spectrum there is
:class:`~hdtheory.models.giant_spectrum.GiantSpectrum`, ridge's test error
:class:`~hdtheory.models.giant_step.GiantStep`).

:func:`one_step_ridge` gives the test error of ERM on the learned features (same regime).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError, check_in, choice
from .._theory import integer, parameter
from .gcm import GCM, RF_ACTIVATIONS, EquivalentGCM, gaussian_equivalence

STEP_ACTIVATIONS = {name: RF_ACTIVATIONS[name] for name in ("erf", "tanh", "linear")}
"""Odd, differentiable activations: the features have mean zero and the step a gradient."""

REFUSED = {
    "relu": "its features have a mean (an outlier of order p), not covered",
    "sign": "it has no gradient to take a step with",
}


def marchenko_pastur_stieltjes(w, ratio):
    """``int dMP(s) / (s - w)`` for the Marchenko-Pastur law of ``ratio`` (mean one), at complex or
    real ``w`` off its support, in closed form (the branch that decays as ``-1 / w``)."""
    a, b = (1 - jnp.sqrt(ratio)) ** 2, (1 + jnp.sqrt(ratio)) ** 2
    q, root = 1 - ratio - w, jnp.sqrt(w - a) * jnp.sqrt(w - b)
    # The two roots multiply to 1 / (ratio w): the form without cancellation (large w, small ratio).
    return jnp.where(jnp.abs(q + root) >= jnp.abs(q - root), (q + root) / (2 * ratio * w), 2 / (q - root))


def one_step_weights(key, d: int, p: int, n0: int, eta, activation: str = "erf", target: str = "tanh", noise=0.0):
    """``(W_1, beta)``: the first layer after the step of the module docstring, at dimension ``d``
    (``p`` units, a batch of ``n0``), the rows of ``W_0`` uniform on the sphere, ``a_i = +-1``;
    ``sigma'`` by automatic differentiation. Differentiable in ``eta`` and ``noise``."""
    dtype = jnp.result_type(eta, float)
    keys = jax.random.split(key, 5)
    sigma, link = RF_ACTIVATIONS[activation], RF_ACTIVATIONS[target]
    W = jax.random.normal(keys[0], (p, d), dtype)
    W = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    a = jax.random.rademacher(keys[1], (p,), dtype)
    beta = jax.random.normal(keys[2], (d,), dtype)
    beta = beta / jnp.linalg.norm(beta)
    X0 = jax.random.normal(keys[3], (n0, d), dtype)
    y = link(X0 @ beta) + jnp.sqrt(noise) * jax.random.normal(keys[4], (n0,), dtype)
    slope = jax.vmap(jax.vmap(jax.grad(sigma)))(W @ X0.T)  # (p, n0)
    return W + eta / jnp.sqrt(p) * a[:, None] * ((slope * y) @ X0) / n0, beta


def one_step_ridge(
    activation="erf", target="tanh", gamma=1.0, alpha=2.0, eta=0.0, alpha0=2.0, noise=0.0, *, d: int = 300,
    key=None, order: int = 40, **kwargs,
) -> GCM:
    r"""ERM on the learned features ``sigma(W_1 x)`` (the readout trained on ``n = alpha d`` fresh
    samples), as the :class:`GCM` of their Gaussian equivalent given the weights drawn at ``d``.

    For ``eta = O(1)`` the rows of ``W_1`` stay of norm one to ``O(1 / p)`` and their overlaps with
    ``beta`` are ``O(1 / sqrt(p))``, so the features are equivalent to ``mu_1 W_1 x + mu_* xi``
    (Ba et al. 2022: in this regime the features express only the linear part of the target):
    ``Omega = mu_1^2 W_1 W_1^T + mu_*^2 I``, the teacher field ``z = c_1 beta.x`` (``rho = c_1^2``),
    its cross-covariance ``t = c_1 mu_1 W_1 beta``, and the rest of the target,
    ``E[y^2] - c_1^2``, label noise of a linear teacher. The GCM's ``alpha`` is ``n / p = alpha /
    gamma``; ``test_error_total`` is ``E(y - f(x))^2`` on a fresh sample, ``test_error`` its part
    against ``z``. ``kwargs`` go to :class:`GCM` (``lam``, ``loss``...); ``teacher`` is ``linear``.
    At ``eta = 0`` this is :class:`~hdtheory.RandomFeatures` with the weights drawn at ``d`` (its
    Marchenko-Pastur limit to ``O(1 / sqrt(d))``). Differentiable in ``eta`` (one ``p x p``
    eigendecomposition).
    """
    for name, value in (("gamma", gamma), ("alpha", alpha), ("alpha0", alpha0)):
        check_in(name, value, POSITIVE)
    check_in("eta", eta, NONNEGATIVE)
    check_in("noise", noise, NONNEGATIVE)
    if activation not in STEP_ACTIVATIONS:
        raise ParameterError(f"parameter 'activation' must be one of {', '.join(STEP_ACTIVATIONS)}, got {activation!r}")
    if target not in RF_ACTIVATIONS:
        raise ParameterError(f"parameter 'target' must be one of {', '.join(RF_ACTIVATIONS)}, got {target!r}")
    p, n0 = (max(round(float(r) * d), 1) for r in (gamma, alpha0))
    key = jax.random.PRNGKey(0) if key is None else key
    W, beta = one_step_weights(key, d, p, n0, eta, activation, target, noise)
    _, mu1, mustar = gaussian_equivalence(activation, order, W.dtype)
    g0, c1, gstar = gaussian_equivalence(target, order, W.dtype)
    Omega = mu1**2 * W @ W.T + mustar**2 * jnp.eye(p, dtype=W.dtype)
    omega, vectors = jnp.linalg.eigh(Omega)
    theta2 = p * (vectors.T @ (c1 * mu1 * W @ beta)) ** 2
    kwargs = {"loss": "square", **kwargs}
    return GCM(omega=omega, theta2=theta2, rho=c1**2, teacher="linear", noise=g0**2 + gstar**2 + noise,
               alpha=jnp.asarray(alpha) * d / p, **kwargs)


class LearnedSpectrum(FixedPointTheory):
    """The spectrum of the learned features after one gradient step; see the module docstring."""

    x: jax.Array = parameter(1.0, Interval(), "spectral point at which the density is evaluated")
    eps: jax.Array = parameter(1e-6, POSITIVE, "imaginary part of the spectral point (smoothing)")
    gamma: jax.Array = parameter(1.0, POSITIVE, "hidden units per input dimension p/d")
    alpha: jax.Array = parameter(2.0, POSITIVE, "samples of the feature covariance per dimension n/d")
    eta: jax.Array = parameter(0.0, NONNEGATIVE, "step size of the one gradient step (eta = O(1))")
    alpha0: jax.Array = parameter(2.0, POSITIVE, "samples of the step's batch per dimension n0/d")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    activation: str = choice("erf", STEP_ACTIVATIONS, "activation sigma of the hidden layer", REFUSED)
    target: str = choice("tanh", RF_ACTIVATIONS, "link g of the single-index target y = g(beta.x)")
    order: int = integer(40, Interval(4), "Gauss-Legendre nodes per panel of the Hermite coefficients")

    # -- the coefficients ------------------------------------------------------------------------

    def _dtype(self):
        return jnp.result_type(self.x, self.gamma, self.alpha, self.eta, float)

    def coefficients(self):
        """``(mu_1, mu_*^2, s^2, theta, theta / eta)``: the activation's Hermite coefficients, the
        strength of the rank-one part, the spike's operator norm and its rate per unit step."""
        dtype = self._dtype()
        _, mu1, mustar = gaussian_equivalence(self.activation, self.order, dtype)
        g0, c1, gstar = gaussian_equivalence(self.target, self.order, dtype)
        y2 = g0**2 + c1**2 + gstar**2 + self.noise
        rate = mu1 * jnp.sqrt(c1**2 + y2 / self.alpha0)
        theta = self.eta * rate
        return mu1, mustar**2, mu1**2 * (self.gamma + theta**2), theta, rate

    def _T(self, mc, mu1, mustar2):
        """``T(m_) = int t dH(t) / (1 + t m_)``."""
        w = -1 / mc
        m_h = marchenko_pastur_stieltjes((w - mustar2) / mu1**2, self.gamma) / mu1**2
        return (1 - m_h / mc) / mc

    def inverse(self, mc):
        """``x(m_) = -1 / m_ + c T(m_)``, real ``m_`` right of the bulk."""
        mu1, mustar2, *_ = self.coefficients()
        return -1 / mc + self.gamma / self.alpha * self._T(mc, mu1, mustar2)

    # -- the fixed point -------------------------------------------------------------------------

    def init(self, kind: str = "uninformed"):
        del kind
        one = jnp.ones((), self._dtype())
        return {"re": -0.5 * one, "im": 0.5 * one}

    def update(self, state):
        mu1, mustar2, *_ = self.coefficients()
        z = self.x + 1j * self.eps
        mc = state["re"] + 1j * state["im"]
        new = 1 / (-z + self.gamma / self.alpha * self._T(mc, mu1, mustar2))
        return {"re": jnp.real(new), "im": jnp.imag(new)}

    def unconstrain(self, state):
        return {"re": state["re"], "im": jnp.log(state["im"])}

    def constrain(self, coordinates):
        return {"re": coordinates["re"], "im": jnp.exp(coordinates["im"])}

    def edge(self):
        """``(edge, m_ at the edge)``: the right edge of the bulk."""
        mu1, mustar2, *_ = self.coefficients()
        t_max = mu1**2 * (1 + jnp.sqrt(self.gamma)) ** 2 + mustar2

        def slope(u):  # x'(m_) at m_ = -u / t_max, u in (0, 1)
            return jax.grad(self.inverse)(-u / t_max)

        dtype = self._dtype()
        bracket = jnp.asarray([1e-6, 1 - 1e-12], dtype)
        u, _ = kernels.roots.scalar_root(slope, bracket, 200, 1e-13)
        mc = -u / t_max
        return self.inverse(mc), mc

    def critical_eta(self):
        """The step size above which an outlier leaves the bulk: ``s^2 x m m_ = 1`` at the edge,
        ``s_c^2 = mu_1^2 (gamma + theta_c^2)``, ``eta_c = theta_c / (theta / eta)``; zero where the
        threshold is below the unspiked ``s^2 = mu_1^2 gamma`` (it never is: the features at
        initialisation have no outlier)."""
        mu1, *_, rate = self.coefficients()
        c = self.gamma / self.alpha
        edge, mc = self.edge()
        m = (mc + (1 - c) / edge) / c
        theta_c2 = 1 / (edge * m * mc * mu1**2) - self.gamma
        return jnp.sqrt(jnp.where(theta_c2 > 0, theta_c2, 0.0)) / rate

    def top_eigenvalue(self):
        """``(outlier, has_outlier)``: the top eigenvalue of ``K`` (the outlier, or the edge)."""
        _, _, s2, *_ = self.coefficients()
        c = self.gamma / self.alpha
        edge, mc_edge = self.edge()

        def excess(mc):
            x = self.inverse(mc)
            m = (mc + (1 - c) / x) / c
            return s2 * x * m * mc - 1

        has = excess(mc_edge) > 0
        bracket = jnp.stack([mc_edge, jnp.zeros_like(mc_edge) - 1e-9 * jnp.abs(mc_edge)])
        root, _ = kernels.roots.scalar_root(excess, bracket, 200, 1e-13)
        return jnp.where(has, self.inverse(jnp.where(has, root, mc_edge)), edge), has

    def observables(self, state):
        c = self.gamma / self.alpha
        z = self.x + 1j * self.eps
        mc = state["re"] + 1j * state["im"]
        m = (mc + (1 - c) / z) / c
        edge, _ = self.edge()
        outlier, has = self.top_eigenvalue()
        _, _, s2, theta, _ = self.coefficients()
        return {
            "density": jnp.imag(m) / jnp.pi,
            "stieltjes_real": jnp.real(m),
            "stieltjes_imag": jnp.imag(m),
            "edge": edge,
            "outlier": outlier,
            "has_outlier": has.astype(edge.dtype),
            "theta": theta,
            "critical_eta": self.critical_eta(),
            "spike": s2,
        }


def _ratio(value):
    """A concrete ratio as a float (a static field: it fixes a shape)."""
    try:
        return float(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return value  # rejected, naming the parameter, by the checks


def _shape_ratio(default: float, doc: str):
    return eqx.field(default=default, static=True, converter=_ratio, metadata={"domain": POSITIVE, "doc": doc})


class OneStepRidge(EquivalentGCM):
    """ERM on the features of a network after one gradient step: :func:`one_step_ridge` as a model."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "training samples of the readout per dimension n/d")
    eta: jax.Array = parameter(0.0, NONNEGATIVE, "step size of the one gradient step (eta = O(1))")
    lam: jax.Array = parameter(0.1, NONNEGATIVE, "ridge penalty (lam/2)|w|^2, not divided by n")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the label noise of the target")
    gamma: float = _shape_ratio(1.0, "hidden units per input dimension p/d")
    alpha0: float = _shape_ratio(2.0, "samples of the step's batch per dimension n0/d")
    activation: str = choice("erf", STEP_ACTIVATIONS, "activation sigma of the hidden layer", REFUSED)
    target: str = choice("tanh", RF_ACTIVATIONS, "link g of the single-index target y = g(beta.x)")
    loss: str = choice("square", kernels.LOSSES, "loss of the readout")
    d: int = integer(300, Interval(1), "input dimension at which the weights are drawn")
    seed: int = integer(0, Interval(0), "seed of the weights, PRNGKey(seed)")

    @property
    def gcm(self) -> GCM:
        """The equivalent :class:`GCM` (weights drawn from ``PRNGKey(seed)`` at ``d``)."""
        return one_step_ridge(
            self.activation, self.target, self.gamma, self.alpha, self.eta, self.alpha0, self.noise, d=self.d,
            key=jax.random.PRNGKey(self.seed), lam=self.lam, loss=self.loss,
        )


__all__ = ["OneStepRidge", "LearnedSpectrum", "marchenko_pastur_stieltjes", "one_step_ridge", "one_step_weights"]
