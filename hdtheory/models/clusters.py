r"""The sparse ``k``-cluster Gaussian mixture (subspace clustering): Bayes-optimal state evolution.

**Model** (Pesce, Loureiro, Krzakala and Zdeborova 2022, "Subspace clustering in high-dimensions:
phase transitions & statistical-to-computational gap", NeurIPS). ``n = alpha d`` points

.. math:: x_\nu = \sqrt{\lambda / s}\, (v_{c_\nu} - \bar v) + z_\nu, \qquad s = \rho d,

with ``c_nu`` uniform in ``{1..k}``, noise ``z_nu ~ N(0, I_d)``, the cluster means ``v_1..v_k``
the columns of ``V in R^{d x k}``, whose rows are i.i.d. ``(1 - rho) delta_0 + rho N(0, I_k)`` (the
means share one sparse support, of density ``rho``: the subspace), and ``v_bar`` their average
(the means are centred, so that only the cluster structure is informative). In matrix form
``X = sqrt(lam / (rho d)) U V^T + W``, rows ``u_nu = e_{c_nu} - 1/k``: the ``UV^T`` spiked model of
Lesieur, Krzakala and Zdeborova 2017 at rank ``k``, with a (centred) one-hot prior on the rows of
``U`` and a group-sparse Gauss-Bernoulli prior on the rows of ``V``, and signal-to-noise ratio
``lam / rho`` in the normalisation of :class:`~hdtheory.Spiked`.

**State evolution.** The rank-``k`` overlaps ``M_u = U_hat^T U* / n`` and ``M_v = V_hat^T V* / d``
and their conjugates ``A_u = (lam / rho) M_v``, ``A_v = (lam / rho) alpha M_u`` are, by the symmetry
of the clusters under permutation and of the Gaussian part of the prior under rotation, multiples of
the projector ``P = I - J / k`` (``J`` the all-ones matrix): ``M_u = q_u P``, ``M_v = q_v P``,
``a_u = (lam / rho) q_v``, ``a_v = (lam / rho) alpha q_u``, and (``update`` computes ``q_u`` and then
``q_v`` from it, the alternating schedule of AMP, whose iteration has no oscillating mode)

.. math::
    q_u = \frac{k P_1(a_u) - 1}{k (k - 1)}, \qquad
    P_1(a) = \mathbb{E}\, \mathrm{softmax}_1(a e_1 + \sqrt a z), \quad z \sim N(0, I_k);

    q_v = \rho \frac{a_v}{1 + a_v}\, \mathbb{E}_{R \sim \chi^2_{k+1}} \pi(a_v R), \qquad
    \pi(Q) = \Big[1 + \frac{1 - \rho}{\rho} (1 + a)^{(k-1)/2} e^{-Q/2}\Big]^{-1},

``P_1`` the mean posterior probability of a point's own cluster and ``pi`` that of a row of ``V``
being in the support, seen through ``Q = |B|^2 / (1 + a)``. ``q_u`` lies in ``[0, 1/k]``, ``q_v``
in ``[0, rho]``. The free entropy per row of ``V`` is

.. math::
    f = \psi_v(a_v) + \alpha \psi_u(a_u) - \tfrac{\lambda}{\rho} \alpha (k - 1) q_u q_v / 2,

    \psi_v(a) = \mathbb{E}_{R \sim \chi^2_{k-1}} \big[(1 - \rho) \log Z(\tfrac{a R}{1 + a})
    + \rho \log Z(a R)\big], \quad Z(Q) = 1 - \rho + \rho (1 + a)^{-(k-1)/2} e^{Q/2},

    \psi_u(a) = \mathbb{E} \log \tfrac1k \textstyle\sum_c e^{a \delta_{c1} + \sqrt a z_c}
    - a (k + 1) / (2 k).

For ``k = 2`` this is the rank-one :class:`~hdtheory.Spiked` Wishart model with a Rademacher ``u``
of second moment ``1/2`` and a Gauss-Bernoulli ``v``. Rank ``k`` with factorised priors (i.i.d.
entries) needs no model of its own: its overlaps stay diagonal and it is ``k`` rank-one models.

**Thresholds.** Linearising about the uninformed fixed point ``q = 0`` (``P_1 ~ 1/k + a (k-1)/k^2``,
``q_v ~ rho^2 a_v``) gives weak recovery at ``lam^2 alpha = k^2``: ``lam_alg = k / sqrt(alpha)``, the
algorithmic threshold of Pesce et al. For sparse means the information-theoretic threshold lies
below it, a statistical-to-computational gap that :func:`hdtheory.threshold` locates (the paper
gives ``lam_it ~ sqrt(-k rho log rho / alpha)`` as ``rho -> 0``; at ``rho`` down to ``4e-3`` the
located threshold is still a factor 2 to 3 above that leading order).

**Numerics.** With ``G_c`` i.i.d. standard Gumbel, ``softmax_1(t) = P(argmax_c (t_c + G_c) = 1)``
and ``log sum_c e^{t_c} = E max_c (t_c + G_c) - gamma`` (Euler's constant), so that with ``F`` the
distribution function of ``sqrt(a) z + G``,

.. math:: P_1(a) = \int F'(x - a) F(x)^{k-1} dx, \qquad
          \mathbb{E} \log \textstyle\sum_c e^{t_c} = \int \big(1_{x > 0} - F(x - a) F(x)^{k-1}\big) dx - \gamma,

one-dimensional integrals (Gauss-Legendre panels) for every ``k``. ``F`` is a Gauss-Hermite average
over ``z`` for ``a <= 1`` (differentiated by the heat equation down to ``a = 0``) and a panel average
over the Gumbel variable for ``a > 1``. The chi-square averages are panel rules in ``r = sqrt(R)``
with edges about the transition of ``pi``.

**Observables.** ``q_u``, ``q_v``; ``mmse_u = 1/k - q_u`` and ``mmse_v = rho - q_v`` (per direction
of the centred ``(k-1)``-dimensional subspace); ``accuracy = E Phi(z + sqrt(a_u))^{k-1}``, the
fraction of points whose most probable cluster (from the marginal posterior) is their own, up to a
relabelling of the clusters (``1/k`` at random); ``free_entropy``.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, ndtr

from .._theory import POSITIVE, Interval, integer, parameter
from ..kernels.quadrature import hermite_rule, legendre_panels, smoothed_expectation
from ._overlap import Overlaps

_EULER_GAMMA = 0.5772156649015329


def _gumbel_cdf(g):
    return jnp.exp(-jnp.exp(-jnp.maximum(g, -30.0)))


def _gumbel_pdf(g):
    g = jnp.maximum(g, -30.0)
    return jnp.exp(-g - jnp.exp(-g))


class SubspaceClustering(Overlaps):
    """The sparse ``k``-cluster Gaussian mixture, Bayes-optimal; see the module docstring."""

    snr: jax.Array = parameter(1.0, POSITIVE, "signal-to-noise ratio lam of the cluster means")
    alpha: jax.Array = parameter(1.0, POSITIVE, "sample ratio n/d")
    rho: jax.Array = parameter(
        1.0, Interval(0.0, 1.0, low_open=True), "density of the means' common support"
    )
    clusters: int = integer(2, Interval(2.0), "number of clusters k")
    order: int = eqx.field(default=32, static=True)

    @property
    def _rho(self):
        return jnp.stack(jnp.broadcast_arrays(jnp.asarray(1.0 / self.clusters), self.rho)).astype(
            self._dtype()
        )

    def conjugate(self, q) -> jax.Array:
        """``(a_u, a_v) = (lam / rho) (q_v, alpha q_u)``."""
        q = self._checked(q)
        return self.snr / self.rho * jnp.stack([q[1], self.alpha * q[0]])

    # The cluster side: F, the distribution function of sqrt(a) z + G.

    def _F(self, x, a):
        """``(F(x), F'(x))`` elementwise in ``x``."""
        small = jnp.minimum(a, 1.0)
        z, wz = hermite_rule(self.order, x.dtype)

        def by_z(f):
            average = lambda x: smoothed_expectation(lambda o, x: f(x - o), small, x, z, wz)
            return jax.vmap(average)(x.ravel()).reshape(x.shape)

        large = jnp.maximum(a, 1.0)
        g, wg = legendre_panels(jnp.linspace(-4.0, 40.0, 23, dtype=x.dtype), 16)
        wg = wg * _gumbel_pdf(g)
        u = (x[..., None] - g) / jnp.sqrt(large)
        cdf_g = jnp.sum(wg * ndtr(u), -1)
        pdf_g = jnp.sum(wg * jnp.exp(-0.5 * u**2), -1) / jnp.sqrt(2 * math.pi * large)
        use_z = a <= 1.0
        return (
            jnp.where(use_z, by_z(_gumbel_cdf), cdf_g),
            jnp.where(use_z, by_z(_gumbel_pdf), pdf_g),
        )

    def _line(self, a, dtype):
        """A Gauss-Legendre rule over the support of ``max_c (t_c + G_c)``, ``t = a e_1 + sqrt(a) z``."""
        spread = 9.0 * jnp.sqrt(a)
        lo, hi = jax.lax.stop_gradient((-spread - 6.0, a + spread + 40.0))
        x, w = legendre_panels(jnp.linspace(0.0, 1.0, 49, dtype=dtype) * (hi - lo) + lo, 8)
        return x, w, hi

    def _potts(self, a):
        """``(P_1(a), E log sum_c e^{t_c})``; see the module docstring."""
        x, w, hi = self._line(a, self._dtype())
        F, _ = self._F(x, a)
        F_shift, f_shift = self._F(x - a, a)
        others = F ** (self.clusters - 1)
        return jnp.sum(w * f_shift * others), hi - jnp.sum(w * F_shift * others) - _EULER_GAMMA

    def _psi_u(self, a):
        k = self.clusters
        return self._potts(a)[1] - math.log(k) - a * (k + 1) / (2 * k)

    # The means' side: chi-square averages of the support probability.

    def _log_weights(self, a):
        """``(log(1 - rho), log rho - (k - 1) log(1 + a) / 2)``: ``log Z = logaddexp(first, second + Q / 2)``."""
        zero = jnp.where(self.rho < 1, jnp.log(jnp.where(self.rho < 1, 1 - self.rho, 1.0)), -jnp.inf)
        return zero, jnp.log(self.rho) - 0.5 * (self.clusters - 1) * jnp.log1p(a)

    def _chi_rule(self, dof: int, a):
        """Nodes ``R`` and weights for ``E_{R ~ chi^2_dof}``: panels in ``r = sqrt(R)`` with edges about
        the transitions of ``pi(a R)`` and ``pi(a R / (1 + a))``."""
        dtype = self._dtype()
        zero, nonzero = self._log_weights(a)
        safe_a = jnp.maximum(a, jnp.finfo(dtype).tiny)
        center = jnp.maximum(2 * (zero - nonzero), 0.0) / safe_a
        offsets = jnp.array([0.0, -32.0, -8.0, -2.0, 2.0, 8.0, 32.0], dtype) / safe_a
        cuts = jnp.concatenate([center + offsets, (center + offsets) * (1 + a)])
        r_max = math.sqrt(dof) + 10.0
        edges = jnp.concatenate(
            [jnp.linspace(0.0, r_max, 25, dtype=dtype), jnp.sqrt(jnp.clip(cuts, 0.0, r_max**2))]
        )
        r, w = legendre_panels(jax.lax.stop_gradient(edges), 8)
        log_r = jnp.log(jnp.maximum(r, jnp.finfo(dtype).tiny))
        log_density = (dof - 1) * log_r - r**2 / 2 - (dof / 2 - 1) * math.log(2) - gammaln(dof / 2)
        return r**2, w * jnp.exp(log_density)

    def _log_Z(self, Q, a):
        zero, nonzero = self._log_weights(a)
        return jnp.logaddexp(zero, nonzero + Q / 2)

    def _overlap_v(self, a):
        R, w = self._chi_rule(self.clusters + 1, a)
        pi = jnp.exp(self._log_weights(a)[1] + a * R / 2 - self._log_Z(a * R, a))
        return self.rho * a / (1 + a) * jnp.sum(w * pi)

    def _psi_v(self, a):
        R, w = self._chi_rule(self.clusters - 1, a)
        zero = jnp.sum(w * self._log_Z(a * R / (1 + a), a))
        return (1 - self.rho) * zero + self.rho * jnp.sum(w * self._log_Z(a * R, a))

    # The protocol.

    def update(self, q) -> jax.Array:
        """``q_u`` from ``q_v``, then ``q_v`` from the new ``q_u`` (AMP's alternating schedule)."""
        q = self._checked(q)
        scale, k = self.snr / self.rho, self.clusters
        q_u = jnp.minimum((k * self._potts(scale * q[1])[0] - 1) / (k * (k - 1)), 1.0 / k)
        return jnp.stack([q_u, jnp.minimum(self._overlap_v(scale * self.alpha * q_u), self.rho)])

    def free_entropy(self, q) -> jax.Array:
        a_u, a_v = self.conjugate(q)
        q = self._checked(q)
        coupling = self.snr / self.rho * self.alpha * (self.clusters - 1) * q[0] * q[1] / 2
        return self._psi_v(a_v) + self.alpha * self._psi_u(a_u) - coupling

    def accuracy(self, q) -> jax.Array:
        """``E Phi(z + sqrt(a_u))^{k-1}``: the fraction of points assigned to their own cluster."""
        a_u = self.conjugate(q)[0]
        z, w = hermite_rule(self.order, a_u.dtype)
        return jnp.sum(w * ndtr(z + jnp.sqrt(a_u)) ** (self.clusters - 1))

    def observables(self, q) -> dict[str, jax.Array]:
        return {
            "q_u": q[0],
            "q_v": q[1],
            "mmse_u": 1.0 / self.clusters - q[0],
            "mmse_v": self.rho - q[1],
            "accuracy": self.accuracy(q),
            "free_entropy": self.free_entropy(q),
        }
