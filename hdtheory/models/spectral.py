r"""Spectral methods for single-index models: the top eigenvector of a preprocessed covariance.

**Setting.** A signal ``w* in R^d`` with ``|w*|^2 / d = rho``; ``n = alpha d`` inputs ``x_i ~ N(0, I_d)``;
labels ``y_i ~ P_out(y | z_i)`` of the fields ``z_i = w*.x_i / sqrt(d)`` through the channels of
:class:`~hdtheory.BayesGLM` (:mod:`hdtheory.kernels.channels`: ``abs`` (real phase retrieval),
``linear``, ``relu``, ``sign``, ``probit``, ``logistic``, with the same ``noise``). The estimator is
the top eigenvector ``v`` of

.. math:: D = \frac{1}{n} \sum_{i=1}^n T(y_i)\, x_i x_i^T

for a preprocessing ``T``; the observable is its squared cosine with the signal,
``overlap = (v.w*)^2 / |w*|^2``. This is the normalisation of Lu and Li 2020 (Inf. Inference 9, 507,
"Phase transitions of spectral initialization for high-dimensional non-convex estimation") and of
Mondelli and Montanari 2018 (Found. Comput. Math. 19, 703, "Fundamental limits of weak recovery with
applications to phase retrieval"): their ``m / n`` (measurements over dimension) is our ``alpha``
and their ``G`` our ``z / sqrt(rho)``.

**The asymptotic spectrum** (Lu and Li's theorem as stated in Mondelli and Montanari's Lemma 2). With
``G ~ N(0, 1)``, ``Y ~ P_out(y | sqrt(rho) G)``, ``Z = T(Y)`` and ``tau = ess sup Z > 0``, for
``lambda > tau``

.. math::
    \psi(\lambda) = \lambda \Big(\frac{1}{\alpha} + \mathbb{E}\frac{Z}{\lambda - Z}\Big), \qquad
    \phi(\lambda) = \lambda\, \mathbb{E}\frac{Z G^2}{\lambda - Z},

``psi`` is convex; ``bar lambda`` is its minimiser on ``[tau, inf)``, the root of
``psi'(lambda) = 1/alpha - E[Z^2 / (lambda - Z)^2]`` (``tau`` if there is none). The bulk of the
spectrum of ``D`` ends at ``psi(bar lambda)``. ``psi(lambda) = phi(lambda)`` reads

.. math:: \mathbb{E}\frac{Z\, (g(Y) - 1)}{\lambda - Z} = \frac{1}{\alpha}, \qquad g(y) = \mathbb{E}[G^2 \mid Y = y];

where it has a root ``lambda* > bar lambda`` an eigenvalue ``psi(lambda*)`` leaves the bulk and

.. math:: \text{overlap} = \frac{\psi'(\lambda^*)}{\psi'(\lambda^*) - \phi'(\lambda^*)}, \qquad
          -\phi'(\lambda) = \mathbb{E}\frac{Z^2 G^2}{(\lambda - Z)^2};

otherwise the top eigenvalue is the bulk edge and the overlap is 0. All expectations are sums over
the channel's label rule at ``omega = 0``, ``V = rho`` (``label_quadrature``, ``label_order`` nodes
per panel): weights ``Z_out(y, 0, rho)``, the law of ``Y``. The conditional moment comes from the
channel's partition function, ``g(y) = 1 + rho (d^2_omega log Z_out + (d_omega log Z_out)^2)`` at
``omega = 0``, ``V = rho`` (both derivatives of ``E_{z ~ N(omega, V)} P(y | z)``).

**Threshold** ``alpha_spec``: the smallest ``alpha`` with a spike. Along ``lambda``, the ratio at
which ``bar lambda = lambda`` is ``1 / E[Z^2 / (lambda - Z)^2]``; a spike needs
``k(lambda) = E[Z (g - 1) / (lambda - Z)] - E[Z^2 / (lambda - Z)^2] > 0`` at ``bar lambda``, so that
``alpha_spec = 1 / E[Z^2 / (lambda_c - Z)^2]`` at the root ``lambda_c`` of ``k``; where ``k > 0``
down to ``tau`` the spike appears while ``bar lambda = tau``, at
``alpha_spec = 1 / E[Z (g - 1) / (tau - Z)]``. It is ``inf`` where ``E[Z (g - 1)] <= 0`` or where
``g = 1`` identically (labels carry no information about ``|z|``: ``sign``, ``probit``,
``logistic``, for which ``D`` is the sample covariance up to rounding, and a linear estimator is
the one that works).

**Preprocessings** (``preprocessing``):

- ``optimal``: ``T(y) = 1 - 1 / g(y)``, the preprocessing that maximises the overlap at every
  ``alpha`` (Luo, Alghamdi and Lu 2019, IEEE Trans. Signal Process. 67, 2863, "Optimal spectral
  initialization for signal recovery with applications to phase retrieval", their ``T*``). Its
  threshold is Mondelli and Montanari's weak-recovery threshold

  .. math:: \alpha_{spec} = \Big(\mathbb{E}\big[(g(Y) - 1)^2\big]\Big)^{-1}

  (their ``delta_u``; ``1/2`` for noiseless real phase retrieval, ``(1 + noise)^2 / 2`` for the
  linear channel at ``rho = 1``), the threshold of Bayes-optimal AMP where ``E[G | Y] = 0`` (the
  even channels, ``abs``): :class:`~hdtheory.BayesGLM`'s weak recovery. For a channel with
  ``E[G | Y] != 0`` (``linear``, ``relu``) AMP's overlap grows from ``alpha = 0``, and
  ``alpha_spec`` is the spectral method's own threshold. The same number is the ``k = 1`` case of
  :class:`~hdtheory.MultiIndex`'s ``alpha_c``, ``1 / lambda_max`` of ``M -> E_y G M G``: Defilippis,
  Dandi, Mergny, Krzakala and Loureiro 2025 ("Optimal spectral transitions in high-dimensional
  multi-index models") build the multi-index spectral methods that reach it from the linearisation of
  GAMP about ``M = 0``, so that ``MultiIndex(...).weak_recovery()`` is their optimal spectral
  threshold; the overlaps of their ``k``-dimensional estimators, for the links whose preprocessing
  decomposes along fixed directions, are :mod:`hdtheory.models.multi_index_spectral`'s.
- ``trimmed``: ``T(y) = min(y^2, cap)``, the plain ``y^2`` weighting with its large values capped.
  Without a cap (the plain PCA of the squared labels) ``T`` is unbounded for every regression
  channel, outside the theorem's assumptions: the top eigenvector of ``D`` localises on the largest
  label and the overlap vanishes at any fixed ``alpha`` as ``d -> inf``.
- ``custom``: ``T(y) = preprocessing_fn(y, g(y))``, a Python function of the labels and of ``g``
  (for example ``(g - 1) / (g + c)``, the form of Mondelli and Montanari's preprocessing), with ``sup``, its supremum
  over the labels, for the regression channels (the theorem needs ``T`` bounded above and
  ``sup > 0``). A ``sup`` below ``T``'s values on the label rule is refused: a
  :class:`~hdtheory.ParameterError` when the model is built with concrete values, a point that is not
  converged inside a trace. One above the true supremum cuts the equations' domain short of it and
  gives wrong numbers that nothing here can detect: ``sup`` must be the supremum itself.

``tau`` is the supremum of ``T`` over the labels' support: ``1`` (``optimal``), ``cap``
(``trimmed``) and ``sup`` (``custom``) for the regression channels, whose labels are unbounded, and
the largest value over the two labels of the classification channels.

**State and solver.** The state is ``u = (log(bar lambda - tau), log(lambda* - tau))``. ``update``
solves the two scalar equations afresh by Newton's method safeguarded by bisection
(:func:`hdtheory.kernels.roots.scalar_root`, in ``log(lambda - tau)`` on ``tau + [1e-12, 1e8] s``,
``s`` the scale of ``Z``; ``64 eps`` rather than ``1e-12`` in float32), so that the map does not depend on the state and :func:`hdtheory.solve`
reaches its fixed point in one step; derivatives follow from the implicit function theorem on each
equation. Without a spike ``lambda* = bar lambda``. A root that Newton's method does not find (``|F|``
above a millionth of its terms' scale after ``steps`` iterations; the threshold's root included)
makes the map NaN, so that the point is reported as not converged rather than answered wrongly.

**Observables.** ``overlap`` (squared cosine), ``eigenvalue`` (the top eigenvalue of ``D``),
``bulk_edge``, ``alpha_spec``, ``lambda_bar``, ``lambda_star``.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, ParameterError, check_in, choice, is_concrete, parameter
from ..kernels.roots import scalar_root
from .bayes import NOISE_RANGES

PREPROCESSINGS = {
    "optimal": "T(y) = 1 - 1 / E[G^2 | y] (Luo, Alghamdi and Lu 2019)",
    "trimmed": "T(y) = min(y^2, cap)",
    "custom": "T(y) = preprocessing_fn(y, E[G^2 | y]), bounded above by sup",
}

# The bracket of log(lambda - tau), relative to the scale of Z.
_LOW, _HIGH = 1e-12, 1e8


class Spectral(FixedPointTheory):
    """The top eigenvector of ``(1/n) sum_i T(y_i) x_i x_i^T`` in a single-index model; see the
    module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "sample ratio n/d")
    rho: jax.Array = parameter(1.0, POSITIVE, "signal norm |w*|^2/d")
    noise: jax.Array = parameter(
        0.0, NONNEGATIVE, "label noise: variance (linear, probit, relu, abs) or flip probability (sign)"
    )
    cap: jax.Array = parameter(4.0, POSITIVE, "the trimmed preprocessing's cap: T(y) = min(y^2, cap)")
    sup: jax.Array = parameter(
        1.0, POSITIVE, "preprocessing=custom: the supremum of T over the labels (regression channels)"
    )
    channel: str = choice("abs", kernels.GLM_CHANNELS, "output channel P(y|z)")
    preprocessing: str = choice("optimal", PREPROCESSINGS, "the preprocessing T of the labels")
    preprocessing_fn: Callable | None = eqx.field(default=None, static=True)
    label_order: int = eqx.field(default=12, static=True)
    steps: int = eqx.field(default=80, static=True)

    def __check_init__(self):
        if self.channel in NOISE_RANGES:
            check_in("noise", self.noise, NOISE_RANGES[self.channel], f" for channel={self.channel}")
        if (self.preprocessing == "custom") != (self.preprocessing_fn is not None):
            raise ParameterError("parameter 'preprocessing_fn' must be given exactly when preprocessing='custom'")
        if not isinstance(self.label_order, int) or self.label_order < 4:
            raise ParameterError(f"parameter 'label_order' must be an integer >= 4, got {self.label_order!r}")
        if self.preprocessing == "custom" and all(map(is_concrete, (self.sup, self.noise, self.rho))):
            _, Z, _, tau = self._labels()
            if not self._below_sup(Z, tau):
                raise ParameterError(
                    f"parameter 'sup' must be at least the supremum of preprocessing_fn over the labels: "
                    f"T reaches {float(jnp.max(Z)):.6g} on the label rule, above sup = {float(tau):.6g}"
                )

    @property
    def channel_fn(self) -> kernels.Channel:
        return kernels.GLM_CHANNELS[self.channel](self.noise)

    def _dtype(self):
        return jnp.result_type(self.alpha, self.rho, self.noise, self.cap, float)

    # The preprocessing, shared with the simulation.

    def second_moment(self, y) -> jax.Array:
        """``g(y) = E[G^2 | Y = y]``, ``G = z / sqrt(rho)``, from the channel's partition function."""
        y = jnp.asarray(y, self._dtype())
        V = jnp.asarray(self.rho, y.dtype)
        channel = self.channel_fn
        omega = jnp.zeros_like(y)
        g1, g2 = jax.jvp(lambda o: channel.dlog_partition(y, o, V), (omega,), (jnp.ones_like(omega),))
        return 1 + V * (g2 + g1**2)

    def transform(self, y) -> jax.Array:
        """The preprocessing ``T(y)``."""
        if self.preprocessing == "optimal":
            return 1 - 1 / self.second_moment(y)
        if self.preprocessing == "custom":
            return self.preprocessing_fn(y, self.second_moment(y))
        y = jnp.asarray(y, self._dtype())
        return jnp.minimum(y**2, self.cap)

    def _labels(self):
        """``(w, Z, g, tau)``: the label rule's weights, ``T`` and ``g`` at its nodes, ``sup T``."""
        dtype = self._dtype()
        V = jnp.asarray(self.rho, dtype)
        y, w, _ = self.channel_fn.label_quadrature(jnp.zeros((), dtype), V, self.label_order)
        # Nodes of zero weight (empty panels) may sit where T is infinite (y = 0 for phase retrieval).
        live = w > 0
        Z = jnp.where(live, self.transform(jnp.where(live, y, 1.0)), 0.0)
        g = jnp.where(live, self.second_moment(jnp.where(live, y, 1.0)), 1.0)
        if self.channel_fn.classification:
            tau = jnp.max(Z)
        else:
            sups = {"optimal": 1.0, "trimmed": self.cap, "custom": self.sup}
            tau = jnp.asarray(sups[self.preprocessing], dtype)
        return w, Z, g, tau

    @staticmethod
    def _below_sup(Z, tau) -> jax.Array:
        """Whether ``T`` stays at or below ``tau`` on the label rule's nodes. A ``sup`` below ``T``'s values
        puts labels' ``lambda - Z`` negative in every equation: the numbers would be wrong."""
        return jnp.max(Z) <= tau + 1e-12 * jnp.maximum(1.0, jnp.abs(tau))

    def _equations(self):
        """The functions of ``u = log(lambda - tau)`` and the bracket of ``u``."""
        w, Z, g, tau = self._labels()
        E = lambda f: jnp.sum(w * f)
        scale = jnp.maximum(jnp.abs(tau), E(jnp.abs(Z)))
        scale = jnp.where(scale > 1e-30, scale, 1.0)  # Z = 0: no spectrum to scale
        lam = lambda u: tau + jnp.exp(u)
        r = lambda u: Z / (lam(u) - Z)
        eq = {
            "edge": lambda u: E(r(u) ** 2) - 1 / self.alpha,  # -psi'
            "spike": lambda u: E(r(u) * (g - 1)) - 1 / self.alpha,  # (psi - phi) / lambda, negated
            "psi": lambda u: lam(u) * (1 / self.alpha + E(r(u))),
            "dphi": lambda u: E(r(u) ** 2 * g),  # -phi'
            "k": lambda u: E(r(u) * (g - 1)) - E(r(u) ** 2),
            "lam": lam,
            "r2": lambda u: E(r(u) ** 2),
            "rg": lambda u: E(r(u) * (g - 1)),
            # At lambda = tau itself, where no node sits at tau (no atom of Z there).
            "rg_tau": E(jnp.where(tau > Z, Z / jnp.where(tau > Z, tau - Z, 1.0), 0.0) * (g - 1)),
        }
        # The low end a few dozen roundings above tau, so that lambda - Z stays positive.
        low = max(_LOW, 64 * float(jnp.finfo(Z.dtype).eps))
        bracket = jnp.log(scale * low), jnp.log(scale * _HIGH)
        informative = (E((g - 1) ** 2) > 1e-20) & (E(Z * (g - 1)) > 0)
        return eq, bracket, informative

    def _root(self, F, lo, hi, scale=None):
        """The root of ``F`` in ``[lo, hi]`` and whether Newton's method found it: ``|F|`` there
        within a millionth (float64; a hundredth in float32) of the scale of its terms (``1 / alpha``
        unless given)."""
        float64 = self._dtype() == jnp.float64
        scale = (lambda u: 1 / self.alpha) if scale is None else scale
        # Newton's method on F relative to that scale, which may be far from one (a weak signal's
        # threshold, at alpha ~ 1e9, has terms ~ 1e-9): the same root, and a tolerance that means the same.
        relative = lambda u: F(u) / scale(u)
        root, residual = scalar_root(relative, jnp.stack([lo, hi]), self.steps, 1e-13 if float64 else 1e-6)
        return root, residual <= (1e-6 if float64 else 1e-2)

    # The protocol.

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        return jnp.zeros(2, self._dtype())

    def update(self, state) -> jax.Array:
        """The two roots, or NaN where a root that is needed was not found (the threshold's
        included): the solve then reports the point as not converged."""
        del state
        eq, (lo, hi), _ = self._equations()
        bulk = eq["edge"](lo) > 0  # psi decreases at tau: its minimum is inside
        root, found_bar = self._root(eq["edge"], lo, hi)
        u_bar = jnp.where(bulk, root, lo)
        spike = eq["spike"](u_bar) > 0
        root, found_star = self._root(eq["spike"], jax.lax.stop_gradient(u_bar), hi)
        u_star = jnp.where(spike, root, u_bar)
        found = (found_bar | ~bulk) & (found_star | ~spike) & self._threshold()[1]
        return jnp.where(found, jnp.stack([u_bar, u_star]), jnp.nan)

    def threshold(self) -> jax.Array:
        """``alpha_spec``, the smallest ``alpha`` at which the top eigenvector correlates with the signal;
        see the module docstring."""
        return self._threshold()[0]

    def _threshold(self):
        """``alpha_spec`` and whether its root, where one is needed, was found."""
        eq, (lo, hi), informative = self._equations()
        at_tau = eq["k"](lo) >= 0
        u_c, found = self._root(eq["k"], lo, hi, eq["r2"])
        value = jnp.where(at_tau, 1 / eq["rg_tau"], 1 / eq["r2"](u_c))
        _, Z, _, tau = self._labels()
        return jnp.where(informative, value, jnp.inf), (found | at_tau | ~informative) & self._below_sup(Z, tau)

    def observables(self, state) -> dict[str, jax.Array]:
        eq, _, informative = self._equations()
        u_bar, u_star = state[0], state[1]
        spike = informative & (eq["spike"](u_bar) > 0)
        slope = 1 / self.alpha - eq["r2"](u_star)  # psi'(lambda*)
        overlap = slope / (slope + eq["dphi"](u_star))
        return {
            "overlap": jnp.where(spike, overlap, 0.0),
            "eigenvalue": eq["psi"](u_star),
            "bulk_edge": eq["psi"](u_bar),
            "alpha_spec": self.threshold(),
            "lambda_bar": eq["lam"](u_bar),
            "lambda_star": eq["lam"](u_star),
        }


class LabelLaw(Spectral):
    """:class:`Spectral` on a given law of labels: weights, ``Z = T(Y)``, ``g = E[G^2 | Y]`` at its nodes
    and ``tau = sup T``. ``g`` may be ``G^2`` at the nodes of a joint rule of ``(G, Y)``: the equations
    use it only inside expectations of ``G^2`` times functions of ``Z``."""

    weights: jax.Array | None = None
    Z: jax.Array | None = None
    g: jax.Array | None = None
    tau: jax.Array | None = None

    def _dtype(self):
        return jnp.result_type(self.alpha, self.Z, float)

    def _labels(self):
        return self.weights, self.Z, self.g, self.tau
