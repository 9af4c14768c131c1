r"""Masked self-supervised regression: every coordinate predicted by ridge regression on the others.

**Setting** (Wortsman Zurich, Gerace, Loureiro & Lu 2026, "A random matrix theory of masked
self-supervised regression": the setting of its abstract and of its published summaries; the
equations below are ours, derived for that setting, not read from the paper's text, which was not at
hand). ``n`` samples ``x_i ~ N(0, Sigma)`` in dimension ``d``, **alpha = n / d**. Masking coordinate
``k`` and predicting it linearly from the ``d - 1`` others, by ridge regression,

.. math:: \hat a_k = \arg\min_{a:\, a_k = 0} \sum_i \frac{(x_{ik} - a \cdot x_i)^2}{2}
          + \frac{\lambda}{2}\, d\, |a|^2 ,

(the penalty ``(lam / 2) |w|^2`` on ``w = sqrt(d) a``, the conventions' local field ``w.x / sqrt(d)``;
in the averaged loss ``(1/n) sum_i (x_ik - a.x_i)^2 + lam_avg |a|^2`` of the paper's summaries,
``lam_avg = lam / alpha``). The ``d`` masking patterns give the rows of the joint predictor, the SSR
matrix ``A`` (zero diagonal). With ``Sigma_hat = X^T X / n`` and ``R = (Sigma_hat + lam_avg)^-1``,
block inversion gives it in closed form,

.. math:: A = I - \mathrm{diag}(R)^{-1} R ,

and the test error, the mean squared error of the masked prediction of a fresh sample per coordinate,
is ``E_test = Tr[(I - A) Sigma (I - A)^T] / d = (1/d) sum_k (R Sigma R)_kk / R_kk^2``; the training
error is the same with ``Sigma_hat`` for ``Sigma``.

**Random masks** (``mask = r``, ours: the summaries' setting is ``r = 0``, one coordinate masked at
a time). Each other coordinate is hidden too, independently with probability ``r`` (``q = 1 - r``),
and coordinate ``k`` is predicted as ``sum_j A_kj m_j x_j`` from the visible ones (``m_j`` the
masks), the loss averaged over the masks. For unit variances the averaged loss is a ridge with
``q^2 Sigma_hat + q (1 - q) diag(Sigma_hat) + lam_avg``, and ``diag(Sigma_hat) -> I``: ``q A`` is the
SSR matrix above at the ridge

.. math:: \mu = \frac{\lambda_{avg}}{q^2} + \frac{r}{q},

and the error of the masked prediction, averaged over the masks, adds the hidden coordinates'
variance, ``(r / q) |b|^2`` with ``b`` the row of ``q A`` (its norm in ``Sigma_hat`` for the training
error, the same in the limit). Below, ``lam_avg`` stands for ``mu`` where ``r > 0``.

**Deterministic equivalent.** With the effective regularisation ``kappa`` of the ridge resolvent,

.. math:: \lambda_{avg} = \kappa \Big(1 - \frac{1}{\alpha} \Big\langle \frac{s}{s + \kappa} \Big\rangle\Big),
          \qquad \gamma = \frac{1}{\alpha} \Big\langle \frac{s^2}{(s + \kappa)^2} \Big\rangle

(``<.>`` the average over the eigenvalues ``s`` of ``Sigma``), the resolvent's quadratic forms
concentrate: ``lam_avg e^T R e ~ kappa e^T G e`` and ``lam_avg^2 e^T R Sigma R e ~ kappa^2 e^T G Sigma
G e / (1 - gamma)`` with ``G = (Sigma + kappa)^-1`` (the ridge's bias formula; Bach 2024, Atanasov et
al. 2024). So coordinate ``k`` contributes ``(G Sigma G)_kk / ((1 - gamma) G_kk^2)``, the population
ridge's error at the penalty ``kappa`` inflated by ``1 / (1 - gamma)``. For a covariance whose
diagonals of functions are constant (circulant, or rotation invariant) ``G_kk = <1 / (s + kappa)>``,
``(G Sigma G)_kk = <s / (s + kappa)^2>``, and

.. math:: E_{test} = \frac{\langle s / (s + \kappa)^2 \rangle}{(1 - \gamma) \langle 1 / (s + \kappa)\rangle^2},
          \qquad E_{train} = \Big(\frac{\lambda_{avg}}{\kappa}\Big)^2 E_{test} ,

the second the ridge's training error (the relation behind generalised cross-validation). With
masks both gain ``(r / q) |b|^2``, ``|b|^2 = (R^2)_kk / R_kk^2 - 1``, where ``R_kk ~ (kappa / mu)
<1 / (s + kappa)>`` and ``(R^2)_kk = -d R_kk / d mu`` with ``d kappa / d mu = 1 / (1 - gamma)``. ``kappa``
is the ridge deterministic equivalent of :mod:`hdtheory.models.krr` (the same code, with its summed
loss: its ``n eta_k`` is ``alpha s`` here, its ``kappa`` is ``alpha kappa``, its ``lam`` is
``alpha mu``, :meth:`MaskedSSR.penalty`).

**Covariance.** The circulant covariance with the spectral density of the AR(1) process,
``s(w) = (1 - c^2) / (1 - 2 c cos w + c^2)`` (``c = corr``; unit variances, correlation ``c^|i - j|``
up to the wrap-around), averaged over ``w`` in ``(0, pi)`` by Gauss-Legendre panels graded
geometrically toward ``w = 0``, where ``s`` peaks over a width ``1 - c`` (``panels``; within 1e-9
of a rule of 8 times as many panels from corr = 0 to 0.999 and alpha = 0.01 to 10^6, 1e-12 up to
corr = 0.95). ``corr = 0`` is isotropic data.

**Spectrum of the SSR matrix and its BBP transition** (the paper's headline: the joint predictor's
outlier). The diagonal of ``R`` concentrates on ``kappa <1 / (s + kappa)> / lam_avg``, so
``A = I - R / R_kk`` up to ``O(d^-1/2)`` per entry: its eigenvalues are ``a(nu) = 1 - (1 / R_kk) /
(nu + lam_avg)`` over the eigenvalues ``nu`` of ``Sigma_hat`` (divided by ``q`` with masks),
increasing in ``nu``, and its top eigenvector is the sample covariance's. With a spike
``Sigma + theta 1 1^T / d`` (along the constant direction, an eigenvector of the circulant: its
eigenvalue ``s(0) = (1 + c) / (1 - c)`` becomes ``ell = s(0) + theta``; the diagonals of functions
of ``Sigma`` move by ``O(1 / d)``, so the errors do not), the sample covariance's spectral point of
a population eigenvalue ``t`` above the bulk is

.. math:: x(t) = t \Big(1 + \frac1\alpha \Big\langle \frac{s}{t - s} \Big\rangle\Big),
          \qquad x'(t) = 1 - \frac1\alpha \Big\langle \frac{s^2}{(t - s)^2} \Big\rangle

(Silverstein & Choi 1995; Baik & Silverstein 2006): the bulk's top ``nu_+ = x(t_*)`` at
``x'(t_*) = 0``, an outlier at ``x(ell)`` when ``ell > t_*``, the squared cosine of the top
eigenvector with the spike ``ell x'(ell) / x(ell)`` (isotropic data: ``nu_+ = (1 + 1/sqrt(alpha))^2``,
``critical_spike = 1 / sqrt(alpha)``, ``x = (1 + theta)(1 + 1 / (alpha theta))``, cosine
``(1 - 1 / (alpha theta^2)) / (1 + 1 / (alpha theta))``). Observables: ``edge = a(nu_+)``,
``outlier = a(x(ell))`` (``edge`` below the transition), ``critical_spike = t_* - s(0)`` and
``overlap`` (0 below). For these homogeneous covariances the transition is PCA's on the same
samples; heterogeneous covariances, where ``diag(R)`` is not a multiple of the identity and the
SSR matrix can detect a spike that PCA misses, are
:class:`~hdtheory.models.masked_ssr_covariance.MaskedSSRCovariance`.

**Reductions.** At ``alpha -> infinity`` (``kappa -> mu``, ``gamma -> 0``) the population
ridge (masked, where ``r > 0``): ``population_error``; at ``lam -> 0`` with ``alpha > 1`` and no
masks, ``kappa -> 0`` and ``gamma -> 1 / alpha``: ``E_test = alpha / (alpha - 1) Var(x_k | x_-k)``,
the least-squares inflation ``n / (n - p)`` of the conditional variance ``1 / <1 / s> = (1 - c^2) / (1 + c^2)``
(observable ``conditional_variance``, the best any masked predictor does). Isotropic data has
``E_test = 1 / (1 - gamma)`` with ``kappa`` the positive root of
``kappa^2 + (1 - 1/alpha - lam_avg) kappa - lam_avg = 0``: the ridge can only lose against predicting 0.

**Observables.** ``test_error``, ``train_error``, ``population_error``, ``conditional_variance``,
``kappa`` (averaged convention), ``gamma``; ``edge``, ``outlier``, ``critical_spike``, ``overlap``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, check_integer, parameter
from .krr import _SpectralRidge


class MaskedSSR(_SpectralRidge):
    """Masked self-supervised ridge regression (Wortsman Zurich et al. 2026); see the module docstring."""

    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per dimension n / d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, w = sqrt(d) a, summed loss")
    corr: jax.Array = parameter(0.5, Interval(0.0, 1.0, high_open=True), "AR(1) correlation c^|i-j|")
    spike: jax.Array = parameter(0.0, NONNEGATIVE, "spike theta: Sigma + theta 1 1^T / d")
    mask: jax.Array = parameter(
        0.0, Interval(0.0, 1.0, high_open=True), "mask ratio: each other coordinate hidden with this probability"
    )
    panels: int = eqx.field(default=40, static=True)
    """Gauss-Legendre panels (8 nodes each) on ``(0, pi)`` for the averages over the spectrum."""

    def __check_init__(self):
        check_integer("panels", self.panels, Interval(4.0))

    # The ridge of krr's equations in its own units (dimension 1): n = alpha, no label noise, no
    # random features.
    @property
    def n(self):
        return self.alpha

    @property
    def noise(self):
        return 0.0

    @property
    def features(self):
        return jnp.inf

    def _spectrum(self):
        # Gauss-Legendre panels in w, graded geometrically toward w = 0, where s peaks over a width
        # 1 - c and the edge's integrand <s^2 / (t - s)^2> over (1 - c) psi^(1/4) (psi = 1 / alpha);
        # s is smooth elsewhere (a trigonometric rational function with poles off the axis).
        dtype = jnp.result_type(self.corr, self.alpha, float)
        c = self.corr
        inner = (1 - c) * jnp.minimum(1.0, 1.0 / self.alpha) ** 0.25 / 8
        grade = jnp.linspace(1.0, 0.0, self.panels, dtype=dtype)
        edges = jnp.concatenate([jnp.zeros(1, dtype), jnp.pi * (inner / jnp.pi) ** grade])
        w, weight = kernels.quadrature.legendre_panels(edges, 8)
        s = (1 - c**2) / (1 - 2 * c * jnp.cos(w) + c**2)
        return s, jnp.zeros_like(s), weight / jnp.pi

    def _tail(self, kappa):
        return 0.0, 0.0

    def ridge(self):
        """``mu``, the ridge (averaged convention) that the masked objective amounts to:
        ``lam_avg / q^2 + mask / q``, ``q = 1 - mask``."""
        q = 1 - self.mask
        return self.lam / self.alpha / q**2 + self.mask / q

    def penalty(self):
        return self.alpha * self.ridge()

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # kappa <= lam + trace (df1 <= n trace / kappa); the trace of a unit-variance Sigma is 1.
        return self.penalty() + 1.0

    def _norm(self, k, slope):
        """``|b|^2 = (R^2)_kk / R_kk^2 - 1`` (the fitted row's squared norm) at the effective ridge
        ``k`` with ``dk / dmu = slope``: ``R_kk ~ (k / mu) <1/(s+k)>`` and ``(R^2)_kk = -d R_kk / dmu``."""
        s, _, w = self._spectrum()
        mu = self.ridge()
        m1, m2 = jnp.sum(w / (s + k)), jnp.sum(w / (s + k) ** 2)
        square = (k / mu**2 - slope / mu) * m1 + k / mu * m2 * slope
        return square / (k / mu * m1) ** 2 - 1

    def _ratio(self, kappa):
        """``<s / (s + kappa)^2> / <1 / (s + kappa)>^2``: the population ridge's error at ``kappa``."""
        s, _, w = self._spectrum()
        return jnp.sum(w * s / (s + kappa) ** 2) / jnp.sum(w / (s + kappa)) ** 2

    def _sample_edge(self, t):
        """``x(t) = t (1 + <s / (t - s)> / alpha)``: the sample covariance's spectral point of the
        population eigenvalue ``t`` (above the bulk), and ``x'(t)``."""
        s, _, w = self._spectrum()
        x = t * (1 + jnp.sum(w * s / (t - s)) / self.alpha)
        return x, 1 - jnp.sum(w * s**2 / (t - s) ** 2) / self.alpha

    def _spectrum_of_A(self, k):
        """``(edge, outlier, critical_spike, overlap)`` of the SSR matrix (module docstring)."""
        s, _, w = self._spectrum()
        top = (1 + self.corr) / (1 - self.corr)  # s(0), the eigenvalue the spike raises
        reach = top + jnp.sqrt(jnp.sum(w * s**2) / self.alpha) * 1.01 + 1e-12
        t_edge, _ = kernels.roots.scalar_root(
            lambda t: self._sample_edge(t)[1], jnp.stack([top, reach]), 200, 1e-13
        )
        level = top + self.spike
        above = level > t_edge
        ell = jnp.where(above, level, t_edge + 1.0)  # the outlier's branch, evaluated where it exists
        x_out, slope = self._sample_edge(ell)
        mu, q = self.ridge(), 1 - self.mask
        scale = mu / (k * jnp.sum(w / (s + k)))  # 1 / R_kk
        edge = (1 - scale / (self._sample_edge(t_edge)[0] + mu)) / q
        return (
            edge,
            jnp.where(above, (1 - scale / (x_out + mu)) / q, edge),
            t_edge - top,
            jnp.where(above, ell * slope / x_out, 0.0),
        )

    def observables(self, kappa) -> dict[str, jax.Array]:
        s, _, w = self._spectrum()
        k = kappa / self.alpha  # the averaged convention
        gamma = self.degrees_of_freedom(kappa)[1] / self.n
        mu, hidden = self.ridge(), self.mask / (1 - self.mask)
        ridge_test = self._ratio(k) / (1 - gamma)
        norm = self._norm(k, 1 / (1 - gamma))
        edge, outlier, critical, overlap = self._spectrum_of_A(k)
        return {
            "kappa": k,
            "gamma": gamma,
            "test_error": ridge_test + hidden * norm,
            "train_error": (mu / k) ** 2 * ridge_test + hidden * norm,
            "population_error": self._ratio(mu) + hidden * self._norm(mu, 1.0),
            "conditional_variance": 1.0 / jnp.sum(w / s),
            "edge": edge,
            "outlier": outlier,
            "critical_spike": critical,
            "overlap": overlap,
        }
