r"""Sequential feature recovery by a spectral method: the hierarchical teacher of Wortsman-Zurich,
Tabanelli, Dandi, Krzakala and Loureiro 2026 ("Scaling laws from sequential feature recovery: a
solvable hierarchical model", arXiv:2605.14567) in the proportional regime ``n = alpha D``. (Their
equations as read from a public reading note of the paper; the text itself was not at hand.)

**Setting** (their Eqs. 2.3-2.6 with ``g`` the identity, their degree-``q`` Hermite features replaced by
Gaussian inputs ``F ~ N(0, I_D)``, the Gaussian equivalence they use for the first layer). ``p``
orthonormal directions ``A_i``, the fields ``h_i = A_i.F``, and

.. math::
    y = h^{(2)} + \sqrt{\mathrm{noise}}\,\xi, \qquad
    h^{(2)} = \frac{1}{\sqrt 2} \sum_{i=1}^p \lambda_i (h_i^2 - 1), \qquad
    \lambda_i = Z_\gamma z_i i^{-\gamma}, \quad Z_\gamma = \Big(\sum_{i \le p} i^{-2\gamma}\Big)^{-1/2},

random signs ``z_i`` (so that ``sum_i lambda_i^2 = 1`` and ``Var h2 = 1``). The layer-wise estimator of
the first layer is the eigenvectors of

.. math:: \hat C = \frac{1}{n} \sum_{\mu=1}^n y_\mu (F_\mu F_\mu^T - I_D),

``D = (1/n) sum y F F^T`` shifted by the labels' mean: the spectral method of
:mod:`hdtheory.models.spectral` with the preprocessing ``T(y) = y``.

**Decoupling.** As ``D -> inf`` at fixed ``p``, ``C_hat`` is a weighted covariance with a ``p``-dimensional
signal; ``y`` depends on each ``h_i`` through ``h_i^2`` only, so that ``E[h_i h_j | y] = 0`` for
``i != j`` and the ``p x p`` outlier equation of the multi-spike theorem (Kovacevic, Zhang and Mondelli
2025, as in :mod:`hdtheory.models.multi_index_spectral`) factorises: direction ``i`` gives an outlier
where :class:`~hdtheory.Spectral`'s scalar equation holds with ``G = h_i``,

.. math:: \mathbb{E}\frac{Z (G^2 - 1)}{\lambda - Z} = \frac{1}{\alpha}, \qquad Z = y,

above the bulk's ``bar lambda``, with the single-index squared cosine
``psi'(lambda*) / (psi'(lambda*) - phi'(lambda*))`` and no overlap with the other directions: each
direction is a :class:`~hdtheory.models.spectral.LabelLaw`. A negative ``lambda_i`` gives the mirror
image, an outlier below the bulk at the same distance with the same overlap. At finite ``D`` outliers
closer than their fluctuations mix; the decoupling is the ``D -> inf`` statement.

**The law of direction i.** ``h2 = c_i (G^2 - 1) + R`` with ``c_i = |lambda_i| / sqrt 2`` and the rest
``R`` independent of ``G``, taken Gaussian with its exact variance ``1 - lambda_i^2 + noise``: exact in
the second moments, so that the leading orders in ``1 / alpha`` below are exact, and the CLT limit of
many comparable directions; for the leading few directions the rest is a sum of a few chi-squares,
whose third moments enter at relative order ``1 / alpha^2``. (For a non-linear ``g``, the paper's
``tanh`` for example, the signal ``E[g(h2) (G^2 - 1)]`` itself depends on the law of the rest, which a
Gaussian rest gets wrong for the directions after the first: not written.)

**Unbounded labels and the cut.** ``T(y) = y`` is unbounded, outside Lu and Li's theorem: the
equations need ``lambda`` above the labels. The fields' Gaussian law is cut at ``|G|, |R| <= cut``,
``cut = sqrt(2 log(2 n))`` with ``n = alpha D`` (``dim``), about the largest ``|h|`` among ``n`` samples
(4.6 at ``n = 2e4``, 6.6 at ``1e9``), on Gauss-Legendre panels (``order`` nodes each); the labels are then
bounded by ``tau = c_i (cut^2 - 1) + sqrt(1 - lambda_i^2 + noise) cut``. The largest labels give
eigenvalues localised on single samples near ``y_max / alpha``, and the cut gives the theory the same
ones: as ``D -> inf`` at fixed ``alpha`` they grow (logarithmically), and the top of ``C_hat``'s
spectrum localises. What the cut does not move (exponentially small terms): the outliers and overlaps
of the directions whose ``lambda*`` (about ``alpha sqrt(2) |lambda_i|``) is well above ``tau``, and the
thresholds of those whose ``bar lambda`` there (about ``sqrt(alpha_i)``) is (the later ones:
``2 lambda_i^2 alpha_i`` moves by 4e-4 between cuts 5 and 6). What it sets: the bulk edge and the
thresholds of the first few directions (``alpha_i`` of order ``tau^2`` or less), where the largest
labels decide at finite ``D`` (at ``alpha = 10``, ``D = 500``, ``gamma = 1.5``: the first overlap 0.72
against 0.744 +- 0.008 measured; with the cut at 5, none); ``tau`` is an observable.

**Large alpha** (the equations expanded in ``1 / lambda``), with ``a_i = E[Z (G^2 - 1)] = sqrt(2)
|lambda_i|`` (the paper's signal ``nu_1 lambda_i`` of Eq. 2.8 in this normalisation),

.. math:: \alpha_i \to \frac{1 + \mathrm{noise}}{2 \lambda_i^2}, \qquad
          1 - \text{overlap}_i \simeq \frac{\mathbb{E}[Z^2 G^2]}{\alpha\, a_i^2}
          = \frac{1 + 4 \lambda_i^2 + \mathrm{noise}}{2 \alpha \lambda_i^2}, \qquad
          \text{outlier}_i \simeq a_i + \frac{1 + \mathrm{noise}}{\alpha a_i}:

the paper's threshold ``n_i ~ D i^{2 gamma} / Z_gamma^2`` (Eq. 2.10) and alignment
``1 - O(D k^{2 gamma} / (n Z_gamma^2))`` (Theorem 3.1), with their constants.

**MSE.** The paper's second layer regresses ``y`` on ``He2(h_hat_i)`` of the recovered fields
``h_hat_i = u_i.F`` (their Eqs. 2.11-2.14, Appendix D); with ``(u_i.A_j)^2 = overlap_i delta_ij`` and
the readout exact (its error is ``O(1/n)``, their Eq. D.4), ``E[h2 He2(h_hat_i)] / sqrt 2 = lambda_i
overlap_i`` and the error of the second-layer feature, the excess test error, is

.. math:: \mathrm{mse} = \mathbb{E}\big[(h^{(2)} - \hat h^{(2)})^2\big] = \sum_i \lambda_i^2 (1 - \text{overlap}_i^2),

their ``MSE_linear`` (Eq. D.8) with the unrecovered tail weighted by ``1 - overlap^2`` instead of cut
at ``m_n``. Their Eq. 2.15 and Theorem 3.2: ``mse ~ alpha^(-1 + 1/(2 gamma))`` for ``2 gamma > 1``,
with ``m_n = (Z_gamma^2 alpha)^(1/(2 gamma))`` directions recovered (Eq. 3.3; here
``(2 Z_gamma^2 alpha / (1 + noise))^(1/(2 gamma))`` with the constant).

**State.** ``(p, 2)``: each direction's :class:`~hdtheory.models.spectral.LabelLaw` state
``(log(bar lambda - tau), log(lambda* - tau))``; the map does not depend on it (one step).

**Observables** (per direction, ``(p,)``): ``strength`` ``|lambda_i|``, ``overlap``, ``eigenvalue``
(``|.|`` of the outlier of ``C_hat``; the bulk edge without one), ``bulk_edge``, ``alpha_spec`` (the
threshold of the law cut at this ``alpha``'s sample),
``tau``; and ``mse``, ``recovered`` (the number of directions with an outlier).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError, integer, is_concrete
from .._theory import parameter
from .spectral import LabelLaw

_PANELS = 8
"""Gauss-Legendre panels across ``[-cut, cut]`` for ``G`` (half as many for the rest ``R``)."""


def _truncated_rule(cut, panels: int, order: int, dtype):
    """Nodes and weights of ``N(0, 1)`` conditioned on ``|x| <= cut``: ``panels`` Gauss-Legendre panels of
    ``order`` nodes, differentiable in ``cut``."""
    x, w = kernels.legendre_panels(jnp.linspace(-cut, cut, panels + 1, dtype=dtype), order)
    w = w * jnp.exp(-0.5 * x**2)
    return x, w / jnp.sum(w)


def strengths(gamma, p: int, dtype=None) -> jax.Array:
    """``|lambda_i| = Z_gamma i^-gamma``, ``i = 1..p``, normalised to ``sum_i lambda_i^2 = 1``."""
    i = jnp.arange(1, p + 1, dtype=dtype or jnp.result_type(gamma, float))
    w = i ** (-gamma)
    return w / jnp.sqrt(jnp.sum(w**2))


class SequentialRecovery(FixedPointTheory):
    """The eigenvectors of ``(1/n) sum_mu y_mu (F_mu F_mu^T - I)`` for the hierarchical teacher of
    Wortsman-Zurich et al. 2026; see the module docstring."""

    alpha: jax.Array = parameter(100.0, POSITIVE, "sample ratio n/D")
    gamma: jax.Array = parameter(
        1.0, Interval(0.5, low_open=True), "power law of the second-layer weights |lambda_i| ~ i^-gamma (2 gamma > 1)"
    )
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "variance of the Gaussian label noise")
    dim: jax.Array = parameter(
        1000.0, Interval(1.0), "input dimension D: the fields' law is cut at the largest |h| of n = alpha D samples"
    )
    p: int = integer(20, Interval(1), "number of first-layer directions")
    order: int = eqx.field(default=6, static=True)
    steps: int = eqx.field(default=80, static=True)

    def __check_init__(self):
        if is_concrete(self.alpha) and is_concrete(self.dim) and np.any(np.asarray(self.alpha * self.dim) < 10):
            raise ParameterError("parameters 'alpha' and 'dim' must give n = alpha * dim >= 10 samples")
        if not isinstance(self.order, int) or self.order < 2:
            raise ParameterError(f"parameter 'order' must be an integer >= 2, got {self.order!r}")

    def _dtype(self):
        return jnp.result_type(self.alpha, self.gamma, self.noise, self.dim, float)

    def strengths(self) -> jax.Array:
        """``|lambda_i|``, ``(p,)``."""
        return strengths(self.gamma, self.p, self._dtype())

    def cut(self) -> jax.Array:
        """``sqrt(2 log(2 n))``, ``n = alpha D``: about the largest ``|h|`` of ``n`` standard Gaussians."""
        return jnp.sqrt(2 * jnp.log(2 * jnp.asarray(self.alpha * self.dim, self._dtype())))

    def law(self):
        """``(weights (N,), Z (p, N), G^2 (N,), tau (p,))``: each direction's joint rule of ``(G, y)`` and the
        supremum of its labels."""
        dtype = self._dtype()
        cut = self.cut()
        G, wG = _truncated_rule(cut, _PANELS, self.order, dtype)
        R, wR = _truncated_rule(cut, _PANELS // 2, self.order, dtype)
        lam = self.strengths()
        c = lam / math.sqrt(2)
        rest = jnp.sqrt(1 - lam**2 + self.noise)
        Z = c[:, None, None] * (G[:, None] ** 2 - 1) + rest[:, None, None] * R
        w = wG[:, None] * wR
        g = jnp.broadcast_to(G[:, None] ** 2, w.shape)
        tau = c * (cut**2 - 1) + rest * cut
        return w.ravel(), Z.reshape(self.p, -1), g.ravel(), tau

    def _laws(self):
        """The ``p`` single-direction problems as a batched :class:`LabelLaw` (leading axis ``p``)."""
        w, Z, g, tau = self.law()
        make = lambda Z, tau: LabelLaw(alpha=self.alpha, weights=w, Z=Z, g=g, tau=tau, steps=self.steps)
        return jax.vmap(make)(Z, tau)

    # The protocol.

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        return jnp.zeros((self.p, 2), self._dtype())

    def update(self, state) -> jax.Array:
        del state
        return jax.vmap(lambda law: law.update(None))(self._laws())

    def observables(self, state) -> dict[str, jax.Array]:
        laws = self._laws()
        obs = jax.vmap(lambda law, u: law.observables(u))(laws, state)
        mean = jnp.sum(laws.weights * laws.Z, axis=1)  # the labels' mean, subtracted by C_hat
        lam = self.strengths()
        overlap = obs["overlap"]
        return {
            "strength": lam,
            "overlap": overlap,
            "eigenvalue": obs["eigenvalue"] - mean,
            "bulk_edge": obs["bulk_edge"] - mean,
            "alpha_spec": obs["alpha_spec"],
            "mse": jnp.sum(lam**2 * (1 - overlap**2)),
            "recovered": jnp.sum(overlap > 0).astype(lam.dtype),
            "tau": laws.tau,
        }
