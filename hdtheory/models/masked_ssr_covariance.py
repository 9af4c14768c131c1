r"""Masked self-supervised regression on a covariance given as a matrix: heterogeneous variances and
correlations, where ``diag(R)`` is not a multiple of the identity.

**Setting.** That of :mod:`hdtheory.models.masked_ssr` (Wortsman Zurich, Gerace, Loureiro & Lu 2026,
"A random matrix theory of masked self-supervised regression", arXiv 2601.23208; one coordinate
masked at a time). Only the paper's abstract and public summaries (chatpaper.com, koineu.com) were
at hand: they give the setting and its claims (a BBP transition of the SSR matrix, regimes where it
beats PCA), not the equations; those below are derived here, and the regime shown, a spike along
low-variance coordinates, is ours. The data are ``x ~ N(0, Sigma)`` for a given ``d x d``
positive-definite ``Sigma`` (``covariance``; variances ``v`` times a correlation ``C`` is
``diag(v)^(1/2) C diag(v)^(1/2)``), ``n = alpha d`` samples, ``lam_avg = lam / alpha``, the SSR
matrix ``A = I - diag(R)^-1 R``, ``R = (Sigma_hat + lam_avg)^-1``. The theory is the deterministic
equivalent evaluated on this ``Sigma`` (its traces at this ``d``).

**Errors per coordinate.** With ``kappa`` solving ``lam_avg = kappa (1 - Tr[Sigma G] / n)``,
``G = (Sigma + kappa)^-1``, and ``gamma = Tr[(Sigma G)^2] / n``, the quadratic forms of ``R``
concentrate, ``lam_avg e^T R e ~ kappa e^T G e`` and ``lam_avg^2 e^T R Sigma R e ~ kappa^2 e^T G
Sigma G e / (1 - gamma)``, so coordinate ``k``'s masked prediction has

.. math:: E_k = \frac{(G \Sigma G)_{kk}}{(1 - \gamma)\, G_{kk}^2}, \qquad
          E^{train}_k = \Big(\frac{\lambda_{avg}}{\kappa}\Big)^2 E_k

(the second from ``R Sigma_hat R = R - lam_avg R^2``, ``R^2 = -dR / dlam_avg`` and ``dkappa /
dlam_avg = 1 / (1 - gamma)``: ``E^train_k`` has the numerator ``(G Sigma G)_kk / (1 - gamma)``
exactly as ``E_k``, per coordinate). ``test_error`` and ``train_error`` average them over ``k``;
``population_error`` is ``E_k`` at ``alpha -> infinity`` (``kappa = lam_avg``, ``gamma = 0``),
``conditional_variance`` the average of ``Var(x_k | x_-k) = 1 / (Sigma^-1)_kk``. A circulant
``Sigma`` gives :class:`~hdtheory.models.masked_ssr.MaskedSSR`'s numbers (its diagonals are
averages over its spectrum). Traces by Cholesky solves, not eigenvectors, so that derivatives in
``Sigma`` exist where its eigenvalues are degenerate.

**Spike.** ``Sigma + theta v v^T`` (``spike = theta``, ``direction = v``, normalised to ``|v| = 1``;
the ones vector when not given, ``MaskedSSR``'s spike). Traces move by ``O(1 / d)``: the errors
are those of ``Sigma``.

**Spectrum of the SSR matrix.** ``diag(R)`` concentrates, ``R_kk ~ (kappa / lam_avg) G_kk``, so
with ``D = diag(G)`` (deterministic) ``A``'s eigenvalues are ``a = 1 - (lam_avg / kappa) / m`` over
the eigenvalues ``m`` of the symmetric

.. math:: M = D^{1/2} (\hat\Sigma + \lambda_{avg}) D^{1/2} = \hat C + B,
          \qquad \hat C = D^{1/2} \hat\Sigma D^{1/2},\ B = \lambda_{avg} D,

a sample covariance of population ``C = D^{1/2} \Sigma D^{1/2}`` plus a deterministic matrix, and
``A``'s right eigenvectors are ``D^{-1/2} w`` over ``M``'s. Its resolvent has the deterministic
equivalent (leave-one-out: Silverstein & Bai 1995; Couillet & Liao 2022, "Random Matrix Methods for
Machine Learning", ch. 2)

.. math:: (M - z)^{-1} \simeq \bar Q(z) = \Big(\frac{C}{1 + \delta} + B - z\Big)^{-1},
          \qquad \delta = \frac1n \mathrm{Tr}[C \bar Q(z)].

Above the bulk, ``delta in (-1, 0)``; for given ``t = 1 + delta``, ``z(t)`` solves
``t - 1 = Tr[C (C / t + B - z)^-1] / n`` above ``C / t + B``'s top eigenvalue, and the bulk ends at
``min_t z(t)`` (isotropic ``C``, ``B = 0``: ``(1 + alpha^-1/2)^2``). With ``C = C_0 + theta u u^T``,
``u = D^{1/2} v``, the outlier sits at the root above the edge of

.. math:: h(z) = 1 + \frac{\theta}{t(z)}\, u^T \bar Q_0(z)\, u,

``Q_0`` the resolvent without the spike, which exists when ``theta`` exceeds ``critical_spike =
-t_* / u^T Q_0(z_*) u`` at the edge ``(t_*, z_*)``. The squared cosine of ``A``'s right top
eigenvector with ``v`` is ``(v^T D^{-1/2} w)^2 / |D^{-1/2} w|^2``, both residues of quadratic forms
of ``Q`` at the outlier: ``(a^T w)^2 = (theta / t) (a^T Q_0 u)^2 / h'`` and, for a matrix ``F``,
``w^T F w = [(theta / t) u^T Q_0 F Q_0 u + Tr[F Q_0 C_0 Q_0] (t + (theta / t) u^T Q_0 C_0 Q_0 u)
/ (n t^2 (1 - Gamma))] / h'`` with ``Gamma = Tr[(C_0 Q_0)^2] / (n t^2)``, the second term the
spike's ``O(1 / n)`` shift of ``delta`` (``h'`` the total derivative in ``z``, through ``t(z)``).
**PCA** on the same samples is the case ``D = I``, ``B = 0``: ``pca_critical_spike``,
``pca_overlap``. For homogeneous ``diag(G)`` both thresholds agree; where the variances differ,
``C`` equalises them (``C_kk = Sigma_kk G_kk < 1``) and weights the spike by ``D^{1/2}``.

**Numerics.** ``kappa``'s equation needs only ``Sigma``'s eigenvalues: :func:`hdtheory.solve`
iterates :meth:`MaskedSSRCovariance.equivalent`, which computes them once, so that no matrix
decomposition runs inside its loop; the per-coordinate errors take three Cholesky factorisations at
the fixed point. The edge is where ``dz / dt = (1 - Gamma) / (Tr[C Q^2] / n)`` vanishes,
``Gamma = 1``; the edge and the outlier are found by Newton's method in ``t`` on eigendecompositions
of ``C / t + B`` (``O(d^3)`` each, a few tens per solve, one at a time; PCA's, ``Sigma / t``, all
from ``Sigma``'s one), then polished by one Newton step in ``(t, z)`` on dense inverses, which
carries the implicit derivatives (eigenvector derivatives do not exist at degenerate eigenvalues).
``h'`` cancels in the overlap. No decomposition is batched: jaxlib's CPU LAPACK kernels run a batch
on XLA's thread pool and wait for it from a thread of that pool, and as many such waits at once as
the pool has threads never end (a deadlock on a two-core machine).

**Observables.** ``kappa``, ``gamma``, ``test_error``, ``train_error``, ``test_errors``,
``train_errors`` (per coordinate), ``population_error``, ``conditional_variance``; ``edge``,
``outlier``, ``critical_spike``, ``overlap`` of ``A``; ``pca_edge``, ``pca_outlier``,
``pca_critical_spike``, ``pca_overlap`` of the sample covariance.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, is_concrete, parameter
from .krr import _SpectralRidge


class MaskedSSRCovariance(_SpectralRidge):
    """Masked self-supervised ridge regression on a given covariance; see the module docstring."""

    covariance: jax.Array = parameter((), Interval(), "the d x d positive-definite covariance Sigma")
    alpha: jax.Array = parameter(2.0, POSITIVE, "samples per dimension n / d")
    lam: jax.Array = parameter(0.1, POSITIVE, "ridge penalty (lam/2)|w|^2, w = sqrt(d) a, summed loss")
    spike: jax.Array = parameter(0.0, NONNEGATIVE, "spike theta: Sigma + theta v v^T, |v| = 1")
    direction: jax.Array = parameter((), Interval(), "the spike's direction v, d entries (none: ones)")
    spectra: bool = eqx.field(default=True, static=True)
    """Whether the observables hold the SSR matrix's and PCA's spectral tops (eigendecompositions of
    ``d x d`` matrices at each step of their root finding); ``False``: the errors only, at the cost
    of three Cholesky factorisations."""

    def __check_init__(self):
        sigma = self.covariance
        if not is_concrete(sigma):
            return
        shape = np.shape(sigma)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            raise ParameterError(f"parameter 'covariance' must be a d x d matrix with d >= 2, got shape {shape}")
        s = np.asarray(sigma, float)
        scale = np.abs(s).max()
        if np.any(np.abs(s - s.T) > 1e-12 * scale) or np.linalg.eigvalsh(s)[0] <= 1e-12 * scale:
            raise ParameterError("parameter 'covariance' must be symmetric positive definite")
        if self.direction.size and is_concrete(self.direction):
            v = np.asarray(self.direction, float)
            if v.shape != (shape[0],) or not np.any(v != 0):
                raise ParameterError(
                    f"parameter 'direction' must be a nonzero vector of d = {shape[0]} entries, got shape {v.shape}"
                )

    # The ridge of krr's equations in its own units (dimension 1): n = alpha, no label noise, no
    # random features; kappa there is alpha kappa here.
    @property
    def n(self):
        return self.alpha

    @property
    def noise(self):
        return 0.0

    @property
    def features(self):
        return jnp.inf

    @property
    def d(self) -> int:
        return self.covariance.shape[0]

    def equivalent(self) -> "_Eigenvalues":
        """The map on ``Sigma``'s eigenvalues, computed once per solve (module docstring)."""
        return _Eigenvalues(self, jnp.linalg.eigvalsh(self.covariance))

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # kappa <= lam + trace (df1 <= n trace / kappa).
        return self.lam + self.alpha * jnp.trace(self.covariance) / self.d

    def _unit_direction(self):
        v = jnp.ones(self.d) if self.direction.size == 0 else self.direction
        return v / jnp.linalg.norm(v)

    def _resolvent(self, k):
        """``(G, Sigma G)`` at the averaged ``k``, ``G = (Sigma + k)^-1`` by Cholesky."""
        eye = jnp.eye(self.d, dtype=jnp.result_type(self.covariance, k, float))
        factor = jax.scipy.linalg.cho_factor(self.covariance + k * eye)
        G = jax.scipy.linalg.cho_solve(factor, eye)
        return G, self.covariance @ G

    def _spectrum(self):
        return _uniform(jnp.linalg.eigvalsh(self.covariance))

    def _tail(self, kappa):
        return 0.0, 0.0

    def _per_coordinate(self, k):
        """``((G Sigma G)_kk / G_kk^2, G_kk, Tr[(Sigma G)^2] / d)`` over the coordinates."""
        G, SG = self._resolvent(k)
        g = jnp.diag(G)
        return jnp.sum(G * SG, axis=0) / g**2, g, jnp.sum(SG * SG.T) / self.d

    def observables(self, kappa) -> dict[str, jax.Array]:
        k = kappa / self.alpha
        lam_avg = self.lam / self.alpha
        ratio, g, df2 = self._per_coordinate(k)
        gamma = df2 / self.n
        test = ratio / (1 - gamma)
        train = (lam_avg / k) ** 2 * test
        eye = jnp.eye(self.d, dtype=test.dtype)
        precision = jnp.diag(jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(self.covariance), eye))
        spectra = self._spectra(k, g) if self.spectra else {}
        return spectra | {
            "kappa": k,
            "gamma": gamma,
            "test_error": jnp.mean(test),
            "train_error": jnp.mean(train),
            "test_errors": test,
            "train_errors": train,
            "population_error": jnp.mean(self._per_coordinate(lam_avg)[0]),
            "conditional_variance": jnp.mean(1 / precision),
        }

    def _spectra(self, k, g):
        """The SSR matrix's and the sample covariance's tops (module docstring), ``g = diag(G)``."""
        lam_avg, n = self.lam / self.alpha, self.alpha * self.d
        v = self._unit_direction()
        root = jnp.sqrt(g)
        C0 = root[:, None] * self.covariance * root[None, :]
        B = lam_avg * jnp.diag(g)
        C0_, B_ = jax.lax.stop_gradient((C0, B))

        def ssr_basis(t):
            k, U = jnp.linalg.eigh(C0_ / t + B_)
            return k, U, U.T @ C0_ @ U

        edge, outlier, critical, overlap = spiked_outlier(
            C0, B, root * v, self.spike, n, v / root, jnp.diag(1 / g), ssr_basis
        )
        # PCA's K = Sigma / t: Sigma's eigenbasis for every t, computed once.
        s, U = jax.lax.stop_gradient(jnp.linalg.eigh(self.covariance))
        eye = jnp.eye(self.d, dtype=C0.dtype)
        pca = spiked_outlier(self.covariance, 0 * eye, v, self.spike, n, v, eye, lambda t: (s / t, U, jnp.diag(s)))
        scale = lam_avg / k
        return {
            "edge": 1 - scale / edge,
            "outlier": 1 - scale / outlier,
            "critical_spike": critical,
            "overlap": overlap,
            "pca_edge": pca[0],
            "pca_outlier": pca[1],
            "pca_critical_spike": pca[2],
            "pca_overlap": pca[3],
        }


def _above_bulk(basis, n, t):
    """On the branch above the bulk at ``t = 1 + delta``: ``z(t)``, and in the eigenbasis of
    ``K = C0 / t + B`` (``basis(t) -> (k, U, Ch)``: its eigenvalues and vectors and ``C0`` there) the
    resolvent's eigenvalues ``r = 1 / (k - z)``, ``U``, ``Ch``, ``Gamma = Tr[(C0 Q)^2] / (n t^2)`` and
    ``dz / dt = (1 - Gamma) / (Tr[C0 Q^2] / n)``."""
    k, U, Ch = basis(t)
    c = jnp.diag(Ch)
    top = k[-1]
    # z = top + y, with t - 1 = sum_i c_i / (k_i - z) / n increasing in y > 0 from -inf to 0.
    upper = jnp.sum(c) / (n * (1 - t)) * 1.01
    y, _ = kernels.roots.scalar_root(
        lambda y: jnp.sum(c / (k - top - y)) / n - (t - 1), jnp.stack([1e-14 * upper, upper]), 200, 1e-15
    )
    z = top + y
    r = 1 / (k - z)
    gamma = r @ (Ch**2) @ r / (n * t**2)
    return z, r, U, Ch, gamma, (1 - gamma) / (jnp.sum(c * r**2) / n)


def _newton_root(F, lo, hi, steps=60, tol=1e-12):
    """The root of ``F`` (``F(t) -> (value, slope, z)``) in ``[lo, hi]``, where it changes sign:
    Newton's method safeguarded by bisection, from ``hi``. Returns ``(t, z)`` there. ``F`` is
    evaluated at one point at a time (a ``vmap`` over the ends would batch its decomposition)."""
    f_hi, slope, z = F(hi)
    t, _, _, z = kernels.roots.bracketed_newton(F, lo, hi, F(lo)[0], hi, f_hi, slope, z, steps, tol)
    return jax.lax.stop_gradient(jnp.stack([t, z]))


def _dense(C0, B, n, x):
    """At ``x = (t, z)``: ``Q = (C0 / t + B - z)^-1``, ``t - 1 - Tr[C0 Q] / n`` and ``Gamma``, by a
    dense inverse (differentiable where ``C0`` or ``B`` have degenerate eigenvalues)."""
    t, z = x
    Q = jnp.linalg.inv(C0 / t + B - z * jnp.eye(C0.shape[0], dtype=C0.dtype))
    CQ = C0 @ Q
    return Q, t - 1 - jnp.trace(CQ) / n, jnp.sum(CQ * CQ.T) / (n * t**2)


def _polish(equations, x):
    """One Newton step on ``equations(x) = 0`` from its root ``x`` (found without gradients): the same
    point, with the implicit derivative ``-J^-1 dE/dp``."""
    x = jax.lax.stop_gradient(x)
    J = jax.lax.stop_gradient(jax.jacfwd(equations)(x))
    return x - jnp.linalg.solve(J, equations(x))


def spiked_outlier(C0, B, u, theta, n, a, F, basis):
    """The top of ``M = C0^(1/2) W C0^(1/2) + B`` spiked by ``theta u u^T`` in its population (``W``
    white Wishart of ``n`` samples; module docstring): ``(edge, outlier, critical, overlap)``, the bulk's
    edge, the outlier (``edge`` below the threshold), the threshold on ``theta`` and the top
    eigenvector ``w``'s ``(a^T w)^2 / w^T F w`` (0 below). Roots on eigenvalues (``basis(t)``: those
    of ``C0 / t + B``, :func:`_above_bulk`, without derivatives), then one Newton step on dense
    inverses, which carries the derivatives."""

    def edge_gap(t):
        z, r, U, Ch, gamma, z_t = _above_bulk(basis, n_, t)
        CR = Ch * r[None, :]
        d_t = -2 * gamma / t + 2 * jnp.trace(CR @ CR @ CR) / (n_ * t**4)
        d_z = 2 * jnp.trace(CR @ CR * r[None, :]) / (n_ * t**2)
        return gamma - 1, d_t + d_z * z_t, z

    def spike_gap(t):
        z, r, U, Ch, gamma, z_t = _above_bulk(basis, n_, t)
        rp = r * (U.T @ u_)
        q_u = jnp.sum(rp * (U.T @ u_))
        slope = theta_ * ((rp @ Ch @ rp / t**2 + jnp.sum(rp**2) * z_t) / t - q_u / t**2)
        return 1 + theta_ / t * q_u, slope, z

    n_, u_, theta_ = jax.lax.stop_gradient((n, u, theta))
    # Gamma = 0 at t = 1 (delta = 0, z = inf) and grows without bound as t -> 0.
    x_edge = _newton_root(edge_gap, jnp.asarray(1e-6), jnp.asarray(1 - 1e-9))
    t_edge = x_edge[0]

    def edge_equations(x):
        _, f, gamma = _dense(C0, B, n, x)
        return jnp.stack([f, gamma - 1])

    x_edge = _polish(edge_equations, x_edge)
    Q = _dense(C0, B, n, x_edge)[0]
    critical = -x_edge[0] / (u @ Q @ u)
    above = jax.lax.stop_gradient(theta > critical)

    # h = 1 + theta q_u / t < 0 at the edge (above the threshold), 1 at t = 1.
    x_out = _newton_root(spike_gap, jnp.where(above, t_edge, 0.5 * (1 + t_edge)), jnp.asarray(1 - 1e-12))

    def spike_equations(x):
        Q, f, _ = _dense(C0, B, n, x)
        return jnp.stack([f, 1 + theta / x[0] * (u @ Q @ u)])

    x_out = jnp.where(above, _polish(spike_equations, x_out), x_edge)
    Q, _, gamma = _dense(C0, B, n, x_out)
    t = x_out[0]
    Qu = Q @ u
    tau = theta / t  # both residues share the factor 1 / h'(z), which cancels in their ratio
    numerator = tau * (a @ Qu) ** 2
    norm = tau * Qu @ F @ Qu + jnp.sum(F * (Q @ C0 @ Q)) * (t + tau * Qu @ C0 @ Qu) / (n * t**2 * (1 - gamma))
    return x_edge[1], jnp.where(above, x_out[1], x_edge[1]), critical, jnp.where(above, numerator / norm, 0.0)


def _uniform(s):
    """``krr``'s spectrum of ``Sigma``'s eigenvalues ``s``: no teacher, the weight ``1 / d`` on each."""
    return s, jnp.zeros_like(s), jnp.full_like(s, 1 / s.size)


class _Eigenvalues(_SpectralRidge):
    """:class:`MaskedSSRCovariance`'s map on ``Sigma``'s eigenvalues (``krr``'s equations with the
    weight ``1 / d`` on each), built once per solve by :meth:`MaskedSSRCovariance.equivalent`; its
    observables are the model's."""

    theory: MaskedSSRCovariance
    eigenvalues: jax.Array

    n = property(lambda self: self.theory.alpha)
    lam = property(lambda self: self.theory.lam)
    noise = property(lambda self: self.theory.noise)
    features = property(lambda self: self.theory.features)

    def _spectrum(self):
        return _uniform(self.eigenvalues)

    def _tail(self, kappa):
        return 0.0, 0.0

    def init(self, kind: str = "uninformed") -> jax.Array:
        return self.theory.init(kind)

    def observables(self, kappa) -> dict[str, jax.Array]:
        return self.theory.observables(kappa)
