r"""Kernel ridge regression on a power-law spectrum: the deterministic equivalent and its rates.

**Setting** (Cui et al. 2021, "Generalization error rates in kernel regression: the crossover from
the noiseless to noisy regime", NeurIPS; the Gaussian design). Features ``psi`` with covariance
``diag(eta_k)``, ``eta_k = k^-capacity`` (``capacity > 1``), ``k = 1, 2, ...``; a linear teacher
``y = sum_k beta*_k psi_k + sqrt(noise) xi`` whose power per mode is
``beta*_k^2 eta_k = k^(-1 - 2 capacity source)`` (the source condition); ``n`` samples and

.. math:: \hat\beta = \arg\min_\beta \sum_i (y_i - \beta \cdot \psi_i)^2 / 2 + \frac{\lambda}{2} |\beta|^2 ,

``lam`` as written (a paper that averages the loss over the samples uses ``lam' = lam / n``).

**Deterministic equivalent** (Bordelon et al. 2020; Cui et al. 2021; Defilippis et al. 2024,
"Dimension-free deterministic equivalents and scaling laws for random feature regression",
NeurIPS, whose ``p -> infinity`` limit this is). The effective regularisation ``kappa`` solves

.. math:: \kappa = \lambda + \frac{\kappa}{n}\, \mathrm{df}_1(\kappa), \qquad
          \mathrm{df}_j(\kappa) = \sum_k \Big(\frac{n \eta_k}{\kappa + n \eta_k}\Big)^j ,

and the excess test error ``E (f(x) - beta*.psi)^2`` is ``bias + variance`` with

.. math:: \mathrm{bias} = \frac{\sum_k \beta^{*2}_k \eta_k\, \kappa^2 / (\kappa + n\eta_k)^2}{1 - \mathrm{df}_2 / n},
          \qquad \mathrm{variance} = \mathrm{noise}\, \frac{\mathrm{df}_2 / n}{1 - \mathrm{df}_2 / n}.

**Random features** (Defilippis, Loureiro, Misiakiewicz 2024, Sec. 3; ``features = p`` finite).
The ridge estimator on ``p`` random features ``z = F psi' / sqrt(p)`` of the kernel, ``psi'_k =
sqrt(eta_k) psi_k`` and ``F`` a ``p x P`` matrix of i.i.d. standard Gaussians (the kernel is
``E_F z.z' = psi'.psi'``), ``a = argmin sum_i (y_i - a.z_i)^2 / 2 + (lam / 2) |a|^2``. Two effective
regularisations: ``kappa_1 = n nu_1`` of the ridge on the features, ``kappa = n nu_2`` of the
kernel, with ``df_j = df_j(kappa)``:

.. math:: \kappa_1 = \lambda + \frac{\kappa_1}{n} \mathrm{df}_1, \qquad
          \kappa_1 = \kappa \Big(1 - \frac{\mathrm{df}_1}{p}\Big)
          \quad\Longleftrightarrow\quad
          \kappa \Big(1 - \frac{\mathrm{df}_1}{n}\Big)\Big(1 - \frac{\mathrm{df}_1}{p}\Big) = \lambda ,

the root with ``df_1 < min(n, p)``, and, with ``x_k = n eta_k / (kappa + n eta_k)``,

.. math:: \Upsilon = \frac{\mathrm{df}_1^2}{n p} + \Big(1 - \frac{\mathrm{df}_1}{p}\Big)^2 \frac{\mathrm{df}_2 / n}{1 - \mathrm{df}_2 / p},
          \qquad \mathrm{variance} = \mathrm{noise}\, \frac{\Upsilon}{1 - \Upsilon},

.. math:: \mathrm{bias} = \frac{1}{1 - \Upsilon} \Big[\sum_k \beta^{*2}_k \eta_k (1 - x_k)^2
          + \frac{\mathrm{df}_1 - \mathrm{df}_2}{p - \mathrm{df}_2} \sum_k \beta^{*2}_k \eta_k\, x_k (1 - x_k)\Big].

This is the form of the deterministic equivalent of Defilippis et al. (two effective
regularisations ``nu = kappa / n``, their ``Upsilon`` and ``chi``), derived by two levels of
deterministic equivalence for Gaussian ``psi`` and ``F``: the feature covariance ``F diag(eta) F^T / p``
is a sample covariance of ``p`` draws, whose resolvent at ``nu_1`` is that of ``diag(eta)`` at ``nu_2``
(the first level), and the ridge on ``n`` samples of those features the second; it is checked against
simulations of exactly this model. ``features = inf``
(the default) is the kernel limit: ``kappa_1 = kappa``, ``Upsilon = df_2 / n``, the equations above.
At ``lam -> 0`` the test error diverges at ``p = n`` (double descent: ``lam = 0, p = n`` itself is reported DIVERGED); at ``n -> infinity`` the bias
tends to the random-feature approximation error ``sum_k beta*_k^2 eta_k kappa / (kappa + n eta_k)``
with ``df_1 = p``.

The kernel limit is the ridge :class:`~hdtheory.models.gcm.GCM` on the same spectrum
(``kappa = lam (1 + V)``), solved as one scalar equation (so are finite ``features``; the update is
infinite where ``df_1 >= p``, which keeps Newton's steps off the spurious root with
``df_1 > max(n, p)``). ``modes=None`` sums the infinite spectrum: the first ``head`` modes exactly,
the rest as an integral over ``log k`` (Gauss-Legendre panels up to ``k = head e^50``, the
Euler-Maclaurin midpoint correction ``k -> k + 1/2`` included) plus the closed-form leading terms
beyond; ``modes=P`` truncates the spectrum to its first ``P`` modes (a finite kernel, as simulated).

**Rates** (Cui et al. 2021, Sec. 3 and Fig. 1; ``lam' = lam / n = n^-ell`` in their averaged-loss
normalisation, ``r = min(source, 1)``): the excess error decays as ``n^-e`` with
``e = 2 ell r`` for ``ell < capacity`` and ``2 capacity r`` for ``ell >= capacity`` without noise;
with noise ``e = 2 ell r`` below the crossover line ``ell < capacity / (1 + 2 capacity r)``,
``1 - ell / capacity`` between it and ``capacity``, ``0`` beyond; with the optimal ``lam``,
``2 capacity r`` (noiseless) and ``2 capacity r / (1 + 2 capacity r)`` (noisy).
:func:`published_rate` gives these; :func:`fitted_rate` fits them from the theory's curve.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..kernels import rates
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError
from .._theory import is_concrete, parameter

_LOG_RANGE = 50.0  # the integral over log k runs up to head * e^50


class KRR(FixedPointTheory):
    """Kernel ridge regression on a power-law spectrum (Cui et al. 2021); see the module docstring."""

    capacity: jax.Array = parameter(2.0, Interval(1.0, low_open=True), "eigenvalue decay eta_k = k^-capacity")
    source: jax.Array = parameter(0.5, POSITIVE, "teacher power beta_k^2 eta_k = k^(-1 - 2 capacity source)")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label noise variance")
    lam: jax.Array = parameter(0.0, NONNEGATIVE, "ridge penalty (lam/2)|beta|^2 on the summed loss")
    n: jax.Array = parameter(1000.0, POSITIVE, "number of samples")
    features: jax.Array = parameter(
        np.inf, Interval(0.0, low_open=True, infinite=True), "number of random features p (inf: the kernel limit)"
    )
    modes: int | None = eqx.field(default=None, static=True)
    head: int = eqx.field(default=1000, static=True)
    panels: int = eqx.field(default=50, static=True)

    def __check_init__(self):
        if self.modes is not None and (not isinstance(self.modes, int) or self.modes < 1):
            raise ParameterError(f"parameter 'modes' must be None or an integer >= 1, got {self.modes!r}")
        if self.modes is not None and all(map(is_concrete, (self.lam, self.n, self.features))):
            if np.any((np.asarray(self.lam) == 0) & (np.minimum(self.n, self.features) >= self.modes)):
                raise ParameterError(
                    "parameter 'lam' must be > 0 when min(n, features) >= modes: a finite kernel with as "
                    "many samples and features as modes has kappa -> 0 at lam = 0 (the least-squares fit)"
                )

    def _rule(self):
        """Mode positions ``k`` and multiplicities: the sum over modes as ``sum_j w_j f(k_j)``."""
        dtype = jnp.result_type(self.capacity, self.n, float)
        if self.modes is not None:
            k = jnp.arange(1, self.modes + 1, dtype=dtype)
            return k, jnp.ones_like(k)
        k, w = kernels.mode_rule(self.head, (self.head + 0.5) * np.exp(_LOG_RANGE), self.panels)
        return jnp.asarray(k, dtype), jnp.asarray(w, dtype)

    def _spectrum(self):
        k, w = self._rule()
        eta = k ** -self.capacity
        power = k ** (-1.0 - 2.0 * self.capacity * self.source)
        return eta, power, w

    def _tail(self, kappa):
        """Leading terms of ``(df1, bias sum)`` beyond the last node, where ``n eta << kappa``."""
        if self.modes is not None:
            return 0.0, 0.0
        k_max = (self.head + 0.5) * np.exp(_LOG_RANGE)
        a, s = self.capacity, 2.0 * self.capacity * self.source
        return self.n / kappa * k_max ** (1 - a) / (a - 1), k_max ** (-s) / s

    def degrees_of_freedom(self, kappa):
        """``(df1, df2)`` at ``kappa``."""
        eta, _, w = self._spectrum()
        x = self.n * eta / (kappa + self.n * eta)
        return jnp.sum(w * x) + self._tail(kappa)[0], jnp.sum(w * x**2)

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # The second term bounds df1 <= n sum_k eta_k / kappa below features / 2 (zero in the kernel limit).
        eta, _, w = self._spectrum()
        trace = jnp.sum(w * eta) + self._tail(self.n)[0]
        return self.lam + self.n ** (1 - self.capacity) + 2 * self.n * trace * self._inverse_features()

    def unconstrain(self, kappa):
        return jnp.log(kappa)

    def constrain(self, u):
        return jnp.exp(u)

    def _inverse_features(self):
        """``1 / features``: zero in the kernel limit. The equations are written in it, so that no
        derivative meets ``inf / inf`` (a derivative of ``df1^2 / (n p)`` in ``n`` at ``p = inf``)."""
        return 1.0 / self.features

    def update(self, kappa):
        df1 = self.degrees_of_freedom(kappa)[0]
        r = self._inverse_features()
        kept = (1 - df1 / self.n) * (1 - df1 * r)
        step = jnp.where(df1 * r < 1, self.lam + kappa * (1 - kept), jnp.inf)
        # At lam = 0 and p = n (the interpolation peak) the test error is infinite: no fixed point
        # to report, so the solve says DIVERGED.
        return jnp.where((self.lam == 0) & (self.features == self.n), jnp.nan, step)

    def observables(self, kappa) -> dict[str, jax.Array]:
        eta, power, w = self._spectrum()
        df1, df2 = self.degrees_of_freedom(kappa)
        n, r = self.n, self._inverse_features()
        x = n * eta / (kappa + n * eta)
        upsilon = df1**2 / n * r + (1 - df1 * r) ** 2 * (df2 / n) / (1 - df2 * r)
        shrink = 1.0 / (1.0 - upsilon)
        feature_bias = (df1 - df2) * r / (1 - df2 * r) * jnp.sum(w * power * x * (1 - x))
        bias = (jnp.sum(w * power * (1 - x) ** 2) + self._tail(kappa)[1] + feature_bias) * shrink
        variance = self.noise * upsilon * shrink
        return {
            "kappa": kappa,
            "kappa_features": kappa * (1 - df1 * r),
            "df1": df1,
            "df2": df2,
            "bias": bias,
            "variance": variance,
            "test_error": bias + variance,
            "test_error_total": bias + variance + self.noise,
        }


def published_rate(capacity: float, source: float, ell: float | None = None, noisy: bool = False) -> float:
    """The decay exponent of the excess error of Cui et al. 2021 (module docstring).

    ``ell``: the regularisation decays as ``lam / n = n^-ell``; ``None`` for the optimal ``lam``.
    """
    r = min(source, 1.0)
    if ell is None:
        return 2 * capacity * r / (1 + 2 * capacity * r) if noisy else 2 * capacity * r
    if not noisy:
        return 2 * min(ell, capacity) * r
    if ell < capacity / (1 + 2 * capacity * r):
        return 2 * ell * r
    return max(1 - ell / capacity, 0.0)


fitted_rate = rates.fitted_rate
"""The least-squares slope of ``-log(excess_error)`` against ``log n`` (last axis)."""
