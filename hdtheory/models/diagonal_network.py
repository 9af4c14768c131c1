r"""Diagonal linear networks with weight decay on a power-law teacher: the LASSO's state evolution
beyond the proportional regime, and its scaling laws.

**Setting** (Defilippis, Xu, Girardin, Erba, Troiani, Zdeborová, Loureiro, Krzakala 2025, "Scaling
laws and spectra of shallow neural networks in the feature learning regime", ICLR 2026,
arXiv:2509.24882; the equations below are this package's, written for the paper's setting as its
published summaries state it, not read from its text, which was not at hand). ``n`` samples
``x ~ N(0, I_d)``, the network ``f(x) = sum_i a_i w_i x_i / sqrt(d)`` trained on the square loss with
the weight decay ``(lam / 2)(|a|^2 + |w|^2)``. Its minimum over the factors of ``u_i = a_i w_i`` is
``lam |u_i|``, so the trained network is the LASSO in ``u``,

.. math:: \hat u = \arg\min_u \sum_{\mu=1}^n \frac{(y_\mu - u \cdot x_\mu / \sqrt d)^2}{2} + \lambda |u|_1 ,

this package's ERM (:class:`~hdtheory.ERM`, ``penalty="l1"``, ``alpha = n / d``) with ``lam`` as
written. The teacher is a network of the same kind, ``u*_i ~ N(0, d i^(-2 gamma))`` independently
(``gamma > 1/2``), ``y = u*.x / sqrt(d) + sqrt(noise) xi``. In the paper's effective parameters
``theta = u / sqrt(d)`` the network is ``f(x) = theta.x``, the teacher ``theta*_i ~ N(0, i^(-2 gamma))``,
the objective ``sum (y - theta.x)^2 / 2 + lam sqrt(d) |theta|_1`` (a LASSO written with ``lam_theta``
in ``theta`` has ``lam = lam_theta / sqrt(d)`` here), and the excess risk

.. math:: R = \mathbb E_x (f^*(x) - f(x))^2 = |\theta - \theta^*|^2 = |u - u^*|^2 / d = \rho - 2 m + q .

This normalisation is the one in which the phase boundaries of the paper's Result 1 and Corollary 1
hold as quoted (``lam ~ sqrt(n / d)``, ``n / d^(gamma + 1/2)``, ``n ~ d^(2 gamma)``, ``lam^2 d^2 / n^2``);
``n_eff = n`` for the diagonal network.

**Equations.** The state evolution of the LASSO (Bayati & Montanari 2012) with the teacher's
coordinates as a Gaussian scale mixture of ``d`` components, weight ``1 / d`` each, variances
``v_i = d i^(-2 gamma)``, used at any ``n / d`` (the paper's "non-asymptotic state evolution"): with
``rho = sum_i v_i / d = sum_i i^(-2 gamma)`` and the square loss's conjugates
``mhat = Vhat = alpha / (1 + V)``, ``qhat = alpha (rho + noise - 2 m + q) / (1 + V)^2``,

.. math:: m = \frac{\hat m}{d \hat V} \sum_i v_i\, P_i,\quad
          q = \frac{1}{d \hat V^2} \sum_i \mathbb E_i\, \mathrm{soft}(b_i, \lambda)^2,\quad
          V = \frac{1}{d \hat V} \sum_i P_i,\qquad b_i \sim \mathcal N(0, \hat m^2 v_i + \hat q),

``P_i = P(|b_i| > lam)``, each term in closed form (:meth:`hdtheory.kernels.Penalty.weight_averages`).
Equivalently the learned coordinates are the teacher's, noisy and soft-thresholded:
``theta_hat_i = soft(theta*_i + delta xi_i, tau)`` with the effective noise ``delta = sqrt(qhat) /
(mhat sqrt(d))`` and threshold ``tau = lam / (mhat sqrt(d))`` (the form of the paper's Result 2: the
learned spectrum is the target's, noisy and soft-thresholded).

**Solved as one equation.** The square loss's conjugates see the state only through
``E = rho + noise - 2 m + q`` and ``V``, and ``V = P / Vhat`` with ``P = sum_i P_i / d`` gives
``mhat = Vhat = alpha - P``. So, with ``delta_u^2 = qhat / mhat^2 = E / alpha`` (``u`` units) the
state, the threshold ``tau_u = lam / mhat`` is the root of ``tau_u (alpha - P(tau_u)) = lam``, where
``P(tau_u) = sum_i P(|u*_i + delta_u xi| > tau_u) / d``: ``tau_u (alpha - P)`` passes ``lam`` once
(negative while ``P > alpha``, increasing beyond), found in ``log tau_u`` by safeguarded Newton steps
(:func:`hdtheory.kernels.roots.scalar_root`), and ``mhat = lam / tau_u`` (which keeps its precision
where ``P -> alpha``, ``lam -> 0`` below ``n = d``). The map is then ``delta_u^2 <- (noise + rho - 2
m + q) / alpha``, the state evolution of AMP for the LASSO; its fixed points are ERM's. The state is
the total error ``E = alpha delta_u^2``, of order ``noise + R``, so that the solver's tolerance (1e-10
absolute in ``E``) is relative in the risk wherever there is noise. Newton's method on it, in ``E``
itself (NaN below zero, so that the solver steps back), converges from the zero estimator's ``E = rho
+ noise`` at ``n = 10`` to ``10^8``, ``d = 10^2`` to ``10^6``, ``lam = 0`` (``n > d``) and ``10^-8`` to
``10^4``, with or without noise, where ERM's three overlaps, whose ``V`` spans ``1 / lam``, do not (in
``log E`` the map is flat, ``E -> E / alpha``, far above a noiseless fixed point).

**The sum over coordinates** runs over the first ``head`` exactly and over the rest by Gauss-Legendre
panels in ``log i`` (:func:`hdtheory.kernels.modes_up_to`: ``head + panels * 8`` terms whatever
``d``, so that ``d = 10^16`` costs what ``d = 10^3`` does, and ``d`` is differentiable); at
``d = 10^6`` the weight averages are within 1e-8 of the sum over every coordinate (4e-9 at
``gamma = 0.75``, the midpoint rule's error at ``i ~ head``); the risk at ``d = 10^16`` is within
2e-12 of the same with four times the panels, at ``d = 10^48`` within 2e-7 (raise ``panels`` there).

**Observables.** ``excess_risk`` ``R`` (above) and ``risk_total = R + noise``; ``nonzero``, the fraction
of non-zero learned coordinates, and ``zeros = 1 - nonzero`` (the learned weights' spectrum: a mass
at zero, the rest the soft-thresholded teacher); ``active = d nonzero``, their number;
``effective_noise`` ``delta`` and ``threshold`` ``tau`` in ``theta`` units; ``above_noise``, the number
of teacher coordinates whose standard deviation ``i^(-gamma)`` exceeds ``delta``, ``min(d,
delta^(-1 / gamma))``; and ERM's ``m, q, V, mhat, qhat, Vhat`` (``u`` units).

**Rates** (the paper's Result 1, eq. (11), and Corollary 1, eq. (14), as its summaries quote them;
``Delta = noise > 0``). With ``lam`` tuned, ``R = Theta(n^(-1 + 1/(2 gamma)))`` for
``1 << n << d^(2 gamma)`` and ``Theta(d / n)`` beyond; at small ``lam``, ``Theta(d / n)`` for ``n >> d``
and ``Theta(lam^(-2/3))`` at ``n ~ d``; at large ``lam``, ``Theta(lam^2 d^2 / n^2)`` where every
coordinate is kept (``sqrt(n / d) << lam << n / d^(gamma + 1/2)``) and ``Theta((lam d^(1/2) /
n)^(2 - 1/gamma))`` above.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, FixedPointTheory, Interval, ParameterError, integer, is_concrete, parameter
from .erm import ERM

_ROOT_STEPS = 100
"""The threshold's root in ``log tau``: at most this many safeguarded Newton steps, to 64 machine
epsilons of ``tau (alpha - P) / lam`` (1.4e-14 in float64)."""


class TotalError(eqx.Module):
    """The state: ``E = noise + rho - 2 m + q``, the fit's total error on a fresh sample; the effective
    noise on each coordinate has the variance ``delta_u^2 = E / alpha`` in ``u`` units."""

    error: jax.Array


class ListedPrior(ERM):
    """ERM whose teacher's components are the Gaussian scale mixture ``sum_k pi_k N(0, v_k)`` given as
    two arrays ``prior_weights`` (summing to one) and ``prior_variances``, of any length; ``rho`` must
    be ``sum_k pi_k v_k``. The weight averages of an elastic net are sums over the components
    (:meth:`hdtheory.kernels.Penalty.weight_averages`, each term elementwise), taken over the arrays
    at once."""

    prior_weights: jax.Array = eqx.field(default=(1.0,), converter=jnp.asarray)
    prior_variances: jax.Array = eqx.field(default=(1.0,), converter=jnp.asarray)

    def weight_averages(self, mhat, qhat, Vhat, penalty=None) -> kernels.WeightAverages:
        penalty = self.penalty_fn if penalty is None else penalty
        terms = penalty.weight_averages(mhat, qhat, Vhat, [self.prior_weights], [self.prior_variances])
        return jax.tree.map(lambda x: jnp.sum(x, axis=-1), terms)


class DiagonalNetwork(FixedPointTheory):
    """A diagonal linear network with weight decay (the LASSO) on a power-law teacher; see the
    module docstring."""

    n: jax.Array = parameter(1000.0, Interval(1.0), "number of samples n (n_eff = n)")
    d: jax.Array = parameter(1000.0, Interval(1.0), "input dimension d, the teacher's number of coordinates")
    gamma: jax.Array = parameter(
        1.0, Interval(0.5, low_open=True), "teacher's power law: theta*_i ~ N(0, i^(-2 gamma))"
    )
    lam: jax.Array = parameter(1.0, NONNEGATIVE, "weight decay: lam |u|_1, u = a w = sqrt(d) theta")
    noise: jax.Array = parameter(0.5, NONNEGATIVE, "label noise variance Delta")
    head: int = integer(512, Interval(1), "teacher coordinates summed exactly; beyond, panels in log i")
    panels: int = integer(40, Interval(1), "Gauss-Legendre panels (8 nodes) in log i beyond head")

    def __check_init__(self):
        if is_concrete(self.lam) and is_concrete(self.n) and is_concrete(self.d):
            if np.any((np.asarray(self.lam) == 0) & (np.asarray(self.n) <= np.asarray(self.d))):
                raise ParameterError(
                    "parameter 'lam' must be > 0 for diagonal-network when n <= d: the minimiser is not unique"
                )

    @property
    def erm(self) -> ListedPrior:
        """The LASSO's ERM at ``alpha = n / d`` with the teacher's list of variances (module docstring)."""
        k, multiplicity = kernels.modes_up_to(self.d, self.head, self.panels)
        weights, variances = multiplicity / self.d, self.d * k ** (-2 * self.gamma)
        return ListedPrior(
            alpha=self.n / self.d, lam=self.lam, rho=jnp.sum(weights * variances), noise=self.noise,
            loss="square", teacher="linear", penalty="l1", prior_weights=weights, prior_variances=variances,
        )

    def init(self, kind: str = "uninformed") -> TotalError:
        """The zero estimator's ``E = rho + noise`` (uninformed), or a perfect one's, ``noise``, kept
        above ``rho / 1000`` (informed)."""
        erm = self.erm
        if kind == "informed":
            return TotalError(jnp.maximum(self.noise, 1e-3 * erm.rho))
        return TotalError(erm.rho + self.noise)

    def unconstrain(self, state: TotalError) -> jax.Array:
        return state.error[None]

    def constrain(self, u: jax.Array) -> TotalError:
        return TotalError(u[0])

    def threshold_at(self, erm: ListedPrior, delta2) -> jax.Array:
        """``tau``: the root of ``tau (alpha - P(|u* + delta xi| > tau)) = lam`` (module docstring) at
        ``delta^2`` (``u`` units), in ``log tau`` between ``lam / alpha`` (below the root) and
        ``2 lam / alpha + 10 sqrt(d + delta^2)`` (above it: no coordinate passes); 0 at ``lam = 0``.
        ``tau (alpha - P)`` increases through ``lam`` once, so the root is unique."""
        alpha, lam = erm.alpha, self.lam
        positive = lam > 0
        lam = jnp.where(positive, lam, 1.0)

        def excess(log_tau):
            tau = jnp.exp(log_tau)
            nonzero = erm.weight_averages(1.0, delta2, 1.0, kernels.L1(tau)).nonzero
            return tau * (alpha - nonzero) / lam - 1

        bracket = (jnp.log(lam / alpha), jnp.log(2 * lam / alpha + 10 * jnp.sqrt(self.d + delta2)))
        tol = 64 * jnp.finfo(jnp.result_type(delta2, lam, float)).eps
        log_tau, _ = kernels.roots.scalar_root(excess, bracket, _ROOT_STEPS, tol, ends=True)
        return jnp.where(positive, jnp.exp(log_tau), 0.0)

    def weights_at(self, erm: ListedPrior, state: TotalError):
        """``(mhat, weight averages)`` at ``delta^2 = E / alpha``: the threshold ``tau``
        (:meth:`threshold_at`) and the weight side at ``mhat = Vhat = alpha - P(w_hat != 0)``,
        ``qhat = delta^2 mhat^2`` (module docstring)."""
        delta2 = state.error / erm.alpha
        tau = self.threshold_at(erm, delta2)
        # lam / tau, equal to alpha - P at the root, keeps its precision where P -> alpha (lam -> 0, n < d).
        precision = jnp.where(self.lam > 0, self.lam / jnp.where(self.lam > 0, tau, 1.0), erm.alpha - 1)
        return precision, erm.weight_averages(precision, delta2 * precision**2, precision)

    def update(self, state: TotalError) -> TotalError:
        """``E <- noise + rho - 2 m + q`` at the weight side of :meth:`weights_at`."""
        erm = self.erm
        _, weights = self.weights_at(erm, state)
        error = self.noise + erm.rho - 2 * weights.m + weights.q
        return TotalError(jnp.where(state.error > 0, error, jnp.nan))  # NaN outside: the solver steps back

    def observables(self, state: TotalError) -> dict[str, jax.Array]:
        erm = self.erm
        mhat, weights = self.weights_at(erm, state)
        scale = mhat * jnp.sqrt(self.d)
        delta = jnp.sqrt(state.error / (erm.alpha * self.d))
        excess = erm.rho - 2 * weights.m + weights.q
        return {
            "m": weights.m,
            "q": weights.q,
            "V": weights.V,
            "mhat": mhat,
            "qhat": state.error / erm.alpha * mhat**2,
            "Vhat": mhat,
            "excess_risk": excess,
            "risk_total": excess + self.noise,
            "nonzero": weights.nonzero,
            "zeros": 1 - weights.nonzero,
            "active": self.d * weights.nonzero,
            "effective_noise": delta,
            "threshold": self.lam / scale,
            "above_noise": jnp.minimum(self.d, delta ** (-1 / self.gamma)),
        }
