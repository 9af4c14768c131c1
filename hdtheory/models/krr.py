r"""Kernel ridge regression on a power-law spectrum, the deterministic equivalent and its rates; the
minimax linear rule over the source-condition ellipsoid; kernel ridge regression on power-law data.

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

**The worst case over the ellipsoid** (observable ``worst_case_error`` of :class:`KRR`). The bias is
linear in the teacher's power per mode, ``sum_k beta*_k^2 eta_k c_k / (1 - Upsilon)`` with
``c_k = (1 - x_k)^2 + (df1 - df2) / (p - df2) x_k (1 - x_k)``; over the source-condition ellipsoid

.. math:: \Theta_s = \Big\{\beta^* : \sum_k \beta^{*2}_k \eta_k^{1 - 2 s} \le 1\Big\}
          \qquad (s = \text{source}; \text{equivalently } f^* = \Sigma^{s} g, |g|_{L^2} \le 1)

its largest value puts the whole budget on one mode: ``worst_case_error = max_k eta_k^(2 s) c_k /
(1 - Upsilon) + variance`` (the maximum over the summation's nodes: exact over the first ``head``
modes, over the quadrature nodes beyond). The teacher of :class:`KRR` itself lies in every
``Theta_s'`` with ``s' < source``, not in ``Theta_source`` (its norm there diverges as ``log P``).

**The minimax linear rule** (:class:`LinearMinimax`; Ayme & Loureiro 2025, "Breaking the curse of
dimensionality for linear rules: optimal predictors over the ellipsoid": the setting of its abstract,
labels ``y = beta*.psi + noise``, the rules ``f(x) = sum_i l_i(x; X) y_i`` linear in the labels, and
``beta*`` in an ellipsoid; the equations below are ours, derived for that setting with Gaussian
``psi``, not read from the paper's text, which was not at hand: its abstract and its public reviews
were). The paper's central object, as its reviews describe it, is the optimal *averaged* risk: the
smallest excess error of a linear rule averaged over teachers with second moment ``H`` on the
ellipsoid, which is the ridge on the features ``H^(1/2) psi`` with the penalty ``noise`` in this
normalisation (``sigma^2 / n`` for an averaged loss), split into a noiseless and a noisy part; it
lower-bounds the minimax risk. That is the ridge deterministic equivalent below at a given prior
(the ridge :class:`~hdtheory.models.gcm.GCM` on the spectrum ``eta_k gamma_k`` with an isotropic
teacher and ``lam = noise``; :class:`KRR` where that spectrum is a power law ``k^-c``, with
``capacity = c``, ``source = (c - 1) / (2 c)``);
:class:`LinearMinimax` is its largest value over the priors of the ellipsoid, the minimax linear
risk itself. The risk of a linear rule is, for each ``beta*``, a quadratic form in ``beta*`` plus
the noise's part; its supremum over ``Theta_s`` is the supremum over priors ``beta* ~ (0, Gamma)``
with ``sum_k gamma_k eta_k^(1 - 2 s) <= 1``, and by the minimax theorem (the risk is convex in the
rule, linear in ``Gamma``) and the symmetry of the Gaussian inputs under sign flips, the minimax
linear risk is the Bayes risk of the least favourable diagonal prior ``gamma``, whose optimal rule
is the ridge with the penalty ``noise / gamma_k`` on mode ``k``.
With the ridge's deterministic equivalent for the spectrum ``eta_k gamma_k`` (effective
regularisation ``kappa``, ``kappa (1 - df1 / n) = noise``, Bayes risk ``sum_k eta_k gamma_k kappa /
(kappa + n eta_k gamma_k)``), the maximisation over ``gamma`` is a water filling (Pinsker's, for
the random design): with ``rho = capacity * source``, ``b_k = k^-rho = sqrt(eta_k^(2 s))``,

.. math:: x_k = \Big(1 - \frac{t}{b_k}\Big)_+ , \qquad
          \mathrm{df}_1 = \sum_k x_k , \qquad S = \sum_k \frac{x_k}{t\, b_k}, \qquad
          \mathrm{df}_1 + \mathrm{noise}\, S = n ,

the water level ``t`` solving the last equation (the state is ``log K``, the logarithm of the cutoff
``K = t^(-1/rho)`` where ``b_K = t``, and the map ``log K <- n log K / (df1 + noise S)``). Then
``kappa = n / S``, the least favourable prior is ``gamma_k = kappa x_k / (n eta_k (1 - x_k))``
(:meth:`LinearMinimax.prior`: only the ``cutoff ~ t^(-1/rho)`` modes with ``b_k > t`` are active; the
rule drops the others), the rule's shrinkage of mode ``k`` is ``x_k`` (:meth:`LinearMinimax.shrinkage`),
and the minimax risk is

.. math:: R^* = \frac{\kappa\, \mathrm{df}_1}{n} = \mathrm{noise}\, \frac{\mathrm{df}_1}{n - \mathrm{df}_1}
          \quad (\mathrm{noise} > 0), \qquad R^* = \frac{n}{S}\Big|_{\mathrm{df}_1 = n} \quad (\mathrm{noise} = 0),

the abstract's two terms: a variance that counts the effective dimension ``df1``, and without noise
the error of interpolating ``n`` samples of ``cutoff > n`` active modes. ``bias`` and ``variance``
split ``R^*`` as the ridge's at the least favourable prior. The rule is an equaliser: its risk is
``R^*`` for every ``beta*`` on the boundary of ``Theta_s`` supported by the active modes (the
simulation measures it on each single-mode teacher). ``R^*`` depends on the exponents only through ``rho``.
``modes=None`` sums the first ``head`` modes exactly and the active modes beyond as integrals in
closed form (``x_k`` vanishes at the cutoff, so its kink costs ``O(1 / cutoff^2)``).

**Rates.** The continuum solution (sums as integrals) gives ``cutoff = n (1 + rho) / rho`` and
``R^* = (1 + rho)(1 + 2 rho) / rho * ((1 + rho) / rho)^(-1 - 2 rho) n^(-2 rho)`` without noise, and
``R^* ~ n^(-2 rho / (1 + 2 rho))`` with noise (``cutoff ~ n^(1 / (1 + 2 rho))``):
:func:`minimax_rate`. The noisy exponent is the minimax rate of kernel regression under the source
condition (Caponnetto & De Vito 2007, "Optimal rates for the regularized least-squares algorithm",
Theorems 1 and 2, with ``b = capacity`` and ``c = 2 source``). Ridge regression, tuned, attains these
rates for ``source <= 1`` and saturates beyond (Cui et al.'s ``r = min(source, 1)``, now for its
``worst_case_error``): ``2 capacity`` without noise, ``2 capacity / (1 + 2 capacity)`` with noise, below
the minimax linear rule's ``2 capacity source`` and ``2 capacity source / (1 + 2 capacity source)``.

**Power-law data** (:class:`KRRPowerLawData`; Wortsman & Loureiro 2025, "Kernel ridge regression under
power-law data: spectrum and generalization": the setting of its abstract and of its published
summaries, Gaussian inputs with a power-law covariance and a polynomial inner-product kernel; the
kernel below and its spectrum are ours, not read from the paper's text, which was not at hand).
Here the power law is the data's, not the kernel's: ``x ~ N(0, Sigma)`` in dimension ``d``,
``Sigma = diag(sigma)``, ``sigma_j = j^-alpha / sum_i i^-alpha`` (``Tr Sigma = 1``), ``z =
Sigma^(-1/2) x``. The kernel is the Hermite (Wick-ordered) part of ``exp(x.x')`` up to the degree
``D``: ``K(x, x') = sum_beta sigma^beta phi_beta(z) phi_beta(z')`` over the multi-indices ``beta`` of
``d`` variables with ``|beta| <= D``, ``phi_beta = prod_i He_(beta_i)(z_i) / sqrt(beta_i!)`` the
orthonormal Hermite products; for ``D = 2``, with ``a = x^T Sigma x``,

.. math:: K(x, x') = 1 + x.x' + \tfrac12\big((x.x')^2 - a - a' + \mathrm{Tr}\,\Sigma^2\big),

so the kernel's eigenvalues are ``sigma^beta = prod_i sigma_i^(beta_i)``: ``C(d + D, D)`` modes, those
of degree ``m`` summing to the complete homogeneous polynomial ``h_m(sigma)``, the largest
``sigma_1^m = r0^-m`` with ``r0 = Tr Sigma / sigma_1 ~ d^(1 - alpha) / (1 - alpha)`` (``alpha <
1``), the data's effective dimension (observable ``effective_dimension``). For a dot-product kernel
``h(x.x') = sum_m h_m (x.x')^m`` the same modes carry ``h_m m! sigma^beta`` at leading order (the
degree-``m`` Wick-ordered term of ``(x.x')^m``); the exponential, ``h_m = 1 / m!``, is the kernel
here. The target has the power ``sigma^beta`` on each mode of degree ``<= target_degree`` (a
Gaussian process with the kernel's own covariance there), plus label noise ``noise``. These
eigenvalues and powers, summed over the enumerated modes, are the ``eta_k`` and
``beta*_k^2 eta_k`` of :class:`KRR`'s equations above (the same code), with ``lam`` the penalty
``(lam / 2) |f|_H^2`` on the summed loss. Observables beyond :class:`KRR`'s: ``bias_degree_m``, the
part of the bias from the target's modes of degree ``m``; ``leading_degree_m``, the excess error on
the noiseless unit-power target ``He_m(z_1) / sqrt(m!)`` along the leading covariance direction.

**The learned degree.** A mode is learned when ``n sigma^beta >> kappa`` (``kappa`` stays of order
one, set by the unlearned modes' trace): with ``n = d^kappa_n`` samples, the leading mode of degree
``m``, ``sigma_1^m ~ d^(-m (1 - alpha))``, is learned for ``m < kappa_n / (1 - alpha)``, its error
decaying as ``(kappa / (n sigma_1^m))^2 ~ d^(-2 (kappa_n - m (1 - alpha)))``. That is the paper's
learned degree ``D = floor(kappa_n / (1 - alpha))`` (:func:`learned_degree`): the sample complexity
of degree ``m`` is ``r0^m``, not the isotropic ``d^m``. The paper's excess-risk theorem is for a
target aligned with the leading directions; a target spread over all directions (``bias_degree_m``)
needs ``n ~ d`` for its degree-1 part whatever ``alpha < 1``, since ``sigma`` is not summable in the
limit.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..kernels import rates
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError
from .._theory import integer, is_concrete, parameter

_LOG_RANGE = 50.0  # the integral over log k runs up to head * e^50


class _SpectralRidge(FixedPointTheory):
    """The deterministic equivalent of ridge regression on a spectrum (module docstring), written once:
    a subclass gives the fields ``noise``, ``lam``, ``n``, ``features`` and ``_spectrum()`` (the
    eigenvalues ``eta``, the teacher's power per mode and each node's multiplicity) and
    ``_tail(kappa)`` (what the nodes leave out of ``(df1, bias sum)``)."""

    def degrees_of_freedom(self, kappa):
        """``(df1, df2)`` at ``kappa``."""
        eta, _, w = self._spectrum()
        x = self.n * eta / (kappa + self.n * eta)
        return jnp.sum(w * x) + self._tail(kappa)[0], jnp.sum(w * x**2)

    def unconstrain(self, kappa):
        return jnp.log(kappa)

    def constrain(self, u):
        return jnp.exp(u)

    def _inverse_features(self):
        """``1 / features``: zero in the kernel limit. The equations are written in it, so that no
        derivative meets ``inf / inf`` (a derivative of ``df1^2 / (n p)`` in ``n`` at ``p = inf``)."""
        return 1.0 / self.features

    def penalty(self):
        """The penalty of the equations, ``lam``; a model whose ridge is another penalty maps it here."""
        return self.lam

    def update(self, kappa):
        df1 = self.degrees_of_freedom(kappa)[0]
        r = self._inverse_features()
        kept = (1 - df1 / self.n) * (1 - df1 * r)
        lam = self.penalty()
        step = jnp.where(df1 * r < 1, lam + kappa * (1 - kept), jnp.inf)
        # At lam = 0 and p = n (the interpolation peak) the test error is infinite: no fixed point
        # to report, so the solve says DIVERGED.
        return jnp.where((lam == 0) & (self.features == self.n), jnp.nan, step)

    def _per_mode(self, kappa):
        """The bias's coefficient of the teacher's power on each node, ``c_k = (1 - x_k)^2 +
        (df1 - df2) / (p - df2) x_k (1 - x_k)``, and ``Upsilon`` (the shrinkage is ``1 / (1 - Upsilon)``)."""
        eta, _, _ = self._spectrum()
        df1, df2 = self.degrees_of_freedom(kappa)
        n, r = self.n, self._inverse_features()
        x = n * eta / (kappa + n * eta)
        upsilon = df1**2 / n * r + (1 - df1 * r) ** 2 * (df2 / n) / (1 - df2 * r)
        return (1 - x) ** 2 + (df1 - df2) * r / (1 - df2 * r) * x * (1 - x), upsilon

    def observables(self, kappa) -> dict[str, jax.Array]:
        _, power, w = self._spectrum()
        df1, df2 = self.degrees_of_freedom(kappa)
        per_mode, upsilon = self._per_mode(kappa)
        shrink = 1.0 / (1.0 - upsilon)
        bias = (jnp.sum(w * power * per_mode) + self._tail(kappa)[1]) * shrink
        variance = self.noise * upsilon * shrink
        return {
            "kappa": kappa,
            "kappa_features": kappa * (1 - df1 * self._inverse_features()),
            "df1": df1,
            "df2": df2,
            "bias": bias,
            "variance": variance,
            "test_error": bias + variance,
            "test_error_total": bias + variance + self.noise,
        }


class KRR(_SpectralRidge):
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

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # The second term bounds df1 <= n sum_k eta_k / kappa below features / 2 (zero in the kernel limit).
        eta, _, w = self._spectrum()
        trace = jnp.sum(w * eta) + self._tail(self.n)[0]
        return self.lam + self.n ** (1 - self.capacity) + 2 * self.n * trace * self._inverse_features()

    def observables(self, kappa) -> dict[str, jax.Array]:
        # The bias is linear in the teacher's power per mode; its largest coefficient over the
        # ellipsoid sum_k beta_k^2 eta_k^(1 - 2 source) <= 1 (the power k * power_k = eta_k^(2 source)
        # on one mode) is the worst case there.
        out = super().observables(kappa)
        per_mode, upsilon = self._per_mode(kappa)
        worst = jnp.max(self._spectrum()[0] ** (2 * self.source) * per_mode) / (1 - upsilon)
        return out | {"worst_case_error": worst + out["variance"]}


@functools.lru_cache(maxsize=8)
def _multisets(d: int, degree: int) -> np.ndarray:
    """Every multi-index ``beta`` of ``d`` variables with ``|beta| <= degree``, one row each: the
    indices ``i_1 <= ... <= i_m`` of its ``m = |beta|`` factors, padded with ``d`` (a set-up step,
    built once per ``(d, degree)``)."""
    rows, level = [np.full((1, degree), d)], np.zeros((1, 0), dtype=np.int64)
    for m in range(1, degree + 1):  # the degrees: a static loop of length degree
        last = level[:, -1] if m > 1 else np.zeros(1, dtype=np.int64)
        counts = d - last
        start = np.repeat(np.cumsum(counts) - counts, counts)
        new = np.arange(counts.sum()) - start + np.repeat(last, counts)
        level = np.concatenate([np.repeat(level, counts, axis=0), new[:, None]], axis=1)
        rows.append(np.pad(level, ((0, 0), (0, degree - m)), constant_values=d))
    return np.concatenate(rows).astype(np.int32)


class KRRPowerLawData(_SpectralRidge):
    r"""Kernel ridge regression on power-law data (Wortsman & Loureiro 2025); see the module docstring
    of :mod:`hdtheory.models.krr`: the data's covariance is the power law, the kernel's spectrum and the
    target's power per mode follow from it, and the equations of :class:`KRR` give the error."""

    alpha: jax.Array = parameter(0.5, NONNEGATIVE, "data covariance sigma_j = j^-alpha / sum_i i^-alpha")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label noise variance")
    lam: jax.Array = parameter(1e-3, NONNEGATIVE, "ridge penalty (lam/2)|f|_H^2 on the summed loss")
    n: jax.Array = parameter(100.0, POSITIVE, "number of samples")
    features: jax.Array = parameter(
        np.inf, Interval(0.0, low_open=True, infinite=True), "number of random features p (inf: the kernel)"
    )
    d: int = integer(100, Interval(1.0), "input dimension")
    degree: int = integer(2, Interval(0.0, 4.0), "kernel degree D: modes |beta| <= D")
    target_degree: int = integer(2, Interval(0.0, 4.0), "target power sigma^beta on |beta| <= target_degree")

    def __check_init__(self):
        if self.target_degree > self.degree:
            raise ParameterError(
                f"parameter 'target_degree' must be <= degree = {self.degree}, got {self.target_degree}"
            )
        if is_concrete(self.lam) and is_concrete(self.n):
            modes = math.comb(self.d + self.degree, self.degree)
            if np.any((np.asarray(self.lam) == 0) & (np.asarray(self.n) >= modes)):
                raise ParameterError(
                    f"parameter 'lam' must be > 0 when n >= {modes}, the kernel's number of modes"
                )

    def log_sigma(self):
        """``log sigma_j``, ``j = 1..d``: the data's covariance, normalised to ``Tr Sigma = 1``."""
        log_j = jnp.log(jnp.arange(1, self.d + 1, dtype=jnp.result_type(self.alpha, float)))
        return -self.alpha * log_j - jax.scipy.special.logsumexp(-self.alpha * log_j)

    def _degrees(self):
        """``|beta|`` of each mode (static)."""
        return np.sum(_multisets(self.d, self.degree) < self.d, axis=1)

    def _spectrum(self):
        index = _multisets(self.d, self.degree)
        log_sigma = jnp.concatenate([self.log_sigma(), jnp.zeros(1, self.alpha.dtype)])
        eta = jnp.exp(jnp.sum(log_sigma[index], axis=1))  # sigma^beta
        power = jnp.where(self._degrees() <= self.target_degree, eta, 0.0)
        return eta, power, jnp.ones_like(eta)

    def _tail(self, kappa):
        return 0.0, 0.0

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # kappa = lam + kappa df1 / n with df1 <= n trace / kappa: kappa <= lam + trace; the second term
        # keeps df1 below features / 2.
        trace = jnp.sum(self._spectrum()[0])
        return self.lam + trace + 2 * self.n * trace * self._inverse_features()

    def observables(self, kappa) -> dict[str, jax.Array]:
        per_mode, upsilon = self._per_mode(kappa)
        _, power, _ = self._spectrum()
        degrees = self._degrees()
        out = super().observables(kappa)
        for m in range(self.degree + 1):  # the degrees: static, at most 5
            out[f"bias_degree_{m}"] = jnp.sum(jnp.where(degrees == m, power * per_mode, 0.0)) / (1 - upsilon)
        # The modes m e_1 (He_m(z_1) / sqrt(m!)): the error on a unit-power target along the leading
        # direction of the data's covariance.
        index = _multisets(self.d, self.degree)
        for m in range(self.degree + 1):
            row = int(np.flatnonzero(np.all(index == [0] * m + [self.d] * (self.degree - m), axis=1))[0])
            out[f"leading_degree_{m}"] = per_mode[row] / (1 - upsilon)
        out["effective_dimension"] = jnp.exp(-self.log_sigma()[0])  # r0 = Tr Sigma / sigma_1
        return out


def learned_degree(alpha: float, kappa: float) -> int:
    """The degree KRR learns from ``n = d^kappa`` samples of power-law data, ``floor(kappa / (1 - alpha))``
    for ``0 <= alpha < 1`` (Wortsman & Loureiro 2025; module docstring): the sample complexity of degree
    ``m`` is ``r0(Sigma)^m ~ d^(m (1 - alpha))``."""
    if not 0 <= alpha < 1:
        raise ParameterError(f"parameter 'alpha' must be in [0, 1), got {alpha!r}")
    return math.floor(kappa / (1 - alpha))


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


class LinearMinimax(FixedPointTheory):
    r"""The minimax linear rule over the source-condition ellipsoid (Ayme & Loureiro 2025).

    See the module docstring of :mod:`hdtheory.models.krr`. The state is ``log K``, the logarithm of
    the cutoff ``K = t^(-1/rho)`` at which the water level ``t`` meets ``b_k``. At large ``rho``
    (tens and beyond), where ``df1`` is a staircase in ``K``, the solve may end without converging
    (reported, about one setting in a hundred of a log-uniform draw with ``rho`` up to 10^4)."""

    capacity: jax.Array = parameter(2.0, Interval(1.0, low_open=True), "eigenvalue decay eta_k = k^-capacity")
    source: jax.Array = parameter(0.5, POSITIVE, "ellipsoid sum_k beta_k^2 eta_k^(1 - 2 source) <= 1")
    noise: jax.Array = parameter(0.0, NONNEGATIVE, "label noise variance")
    n: jax.Array = parameter(1000.0, POSITIVE, "number of samples")
    modes: int | None = eqx.field(default=None, static=True)
    head: int = eqx.field(default=1000, static=True)
    # The map's residual log(n / (df1 + noise S)) is monotone in the state: the solve also asks
    # the Newton step, the distance to the root, to meet the tolerance, which at large rho (where
    # df1 is a staircase in K, flat between the modes) the residual alone does not bound.
    monotone = True

    def __check_init__(self):
        if self.modes is not None and (not isinstance(self.modes, int) or self.modes < 1):
            raise ParameterError(f"parameter 'modes' must be None or an integer >= 1, got {self.modes!r}")
        if self.modes is not None and is_concrete(self.noise) and is_concrete(self.n):
            if np.any((np.asarray(self.noise) == 0) & (np.asarray(self.n) >= self.modes)):
                raise ParameterError(
                    "parameter 'noise' must be > 0 when n >= modes: without noise, as many samples as "
                    "modes determine the teacher (the minimax risk is 0)"
                )

    def _sums(self, level):
        """``(df1, df2, S_hat)`` at ``level = log K``, the cutoff ``K = t^(-1/rho)``: ``sum_k x_k``,
        ``sum_k x_k^2`` and ``sum_k x_k (k / K)^rho = S K^(-2 rho)`` with ``x_k = (1 - (k / K)^rho)_+``,
        ``rho = capacity source`` (logarithms throughout: ``K^rho`` overflows at large ``rho``)."""
        rho = self.capacity * self.source
        k = jnp.arange(1, (self.modes or self.head) + 1, dtype=jnp.result_type(level, float))
        ratio = jnp.exp(jnp.minimum(rho * (jnp.log(k) - level), 0.0))  # (k / K)^rho, or 1
        x = 1 - ratio
        df1, df2, s_hat = jnp.sum(x), jnp.sum(x**2), jnp.sum(x * ratio)
        if self.modes is None:
            # The active modes beyond the head, k in [head + 1/2, K], as integrals (the midpoint rule
            # of Euler-Maclaurin; x vanishes at K, so its kink costs O(1/K^2)).
            log_u = jnp.minimum(np.log(self.head + 0.5) - level, 0.0)
            cutoff = jnp.exp(level)

            def moment(p):  # int_u^1 v^p dv
                return -jnp.expm1((1 + p) * log_u) / (1 + p)

            df1 = df1 + cutoff * (moment(0.0) - moment(rho))
            df2 = df2 + cutoff * (moment(0.0) - 2 * moment(rho) + moment(2 * rho))
            s_hat = s_hat + cutoff * (moment(rho) - moment(2 * rho))
        return df1, df2, s_hat

    def init(self, kind: str = "uninformed") -> jax.Array:
        del kind
        # The continuum solution: K = n (1 + rho) / rho active modes without noise,
        # K = (n / (noise c))^(1 / (1 + 2 rho)) when the noise binds, c = rho / ((1 + rho)(1 + 2 rho));
        # no further than the root with mode 1 alone, K^rho = y, (1 - 1/y)(1 + noise y) = n, an upper
        # bound (more active modes raise df1 + noise S), which is exact when K <= 2.
        rho, noise, n = self.capacity * self.source, self.noise, self.n
        c = rho / ((1 + rho) * (1 + 2 * rho))
        # Without noise K > n (each x_k < 1), K ~ n + 1 at large rho.
        noiseless = jnp.log(jnp.maximum(n * (1 + rho) / rho, n + 1))
        continuum = jnp.minimum(noiseless, jnp.log(n / (noise * c)) / (1 + 2 * rho))
        b = n + noise - 1
        root = jnp.sqrt(b**2 + 4 * noise)
        one_mode = jnp.log(jnp.where(b > 0, (b + root) / (2 * noise), 2 / (root - b))) / rho
        return jnp.where(continuum > 0, jnp.minimum(continuum, one_mode), one_mode)  # log K > 0

    def unconstrain(self, level):
        return jnp.log(level)

    def constrain(self, u):
        return jnp.exp(u)

    def update(self, level):
        # log K <- log K n / (df1 + noise S): in the solver's coordinates log log K, a step of
        # log(n / (df1 + noise S)), the equation's relative error.
        df1, _, s_hat = self._sums(level)
        log_s = 2 * self.capacity * self.source * level + jnp.log(s_hat)
        # noise S, with S capped below overflow (K^(2 rho) at large rho), so that noise = 0 has
        # the value 0 and the derivative S in the noise.
        cap = 0.5 * np.log(np.finfo(log_s.dtype).max)
        return level * self.n / (df1 + self.noise * jnp.exp(jnp.minimum(log_s, cap)))

    def shrinkage(self, level, k):
        """The optimal rule's shrinkage ``x_k = (1 - t k^rho)_+`` of the modes ``k`` (an array), at
        the solved state ``level = log K = -log(t) / rho``."""
        log_k = jnp.log(jnp.asarray(k))
        return -jnp.expm1(self.capacity * self.source * jnp.minimum(log_k - level, 0.0))

    def prior(self, level, k):
        """The least favourable prior's variances ``gamma_k`` of the modes ``k``: the optimal rule is
        the ridge with the penalty ``noise / gamma_k`` on mode ``k`` (mode ``k`` dropped where zero)."""
        rho, log_k = self.capacity * self.source, jnp.log(jnp.asarray(k))
        scale = jnp.exp((self.capacity - rho) * log_k - rho * level)
        return self.shrinkage(level, k) * scale / self._sums(level)[2]

    def observables(self, level) -> dict[str, jax.Array]:
        df1, df2, s_hat = self._sums(level)
        rho = self.capacity * self.source
        error = df1 * jnp.exp(-2 * rho * level) / s_hat  # kappa df1 / n, kappa = n / S
        shrink = 1 / (1 - df2 / self.n)
        cutoff = jnp.exp(level)
        return {
            "threshold": jnp.exp(-rho * level),
            "cutoff": cutoff if self.modes is None else jnp.minimum(cutoff, self.modes),
            "kappa": self.n * error / df1,
            "df1": df1,
            "df2": df2,
            "bias": error * (1 - df2 / df1) * shrink,
            "variance": self.noise * df2 / self.n * shrink,
            "test_error": error,
            "test_error_total": error + self.noise,
        }


def minimax_rate(capacity: float, source: float, noisy: bool = False) -> float:
    """The decay exponent of the minimax linear risk over the ellipsoid (module docstring):
    ``2 capacity source`` without noise, ``2 capacity source / (1 + 2 capacity source)`` with."""
    e = 2 * capacity * source
    return e / (1 + e) if noisy else e
