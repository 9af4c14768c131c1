r"""Quadratic networks with weight decay on a power-law teacher: nuclear-norm matrix compressed sensing,
its state evolution beyond the proportional regime, and its scaling laws.

**Setting** (Defilippis, Xu, Girardin, Erba, Troiani, Zdeborová, Loureiro, Krzakala 2025, "Scaling
laws and spectra of shallow neural networks in the feature learning regime", ICLR 2026,
arXiv:2509.24882; the equations below are this package's, derived for the paper's setting as a public
reading note of it states that setting, not read from its text, which was not at hand). ``n`` samples
``x ~ N(0, I_d)``; the network ``f(x) = sum_j (w_j . x)^2 / sqrt(p d)`` is, through
``S = W^T W / sqrt(p)`` (symmetric, positive semi-definite), ``f_S(x) = x^T S x / sqrt(d)``; its output
centred (the trace direction, estimated to ``O(1/n)`` by any bias, left out),
``f_S(x) = <Z, S> / sqrt(d)`` with ``Z = x x^T - I``. Weight decay on ``W`` is a nuclear norm on ``S``,
and the trained network is

.. math:: \hat S = \arg\min_{S \succeq 0} \sum_{\mu=1}^n (y_\mu - f_S(x_\mu))^2 + \lambda\, d\, |S|_* ,

(the weight decay ``lam (d / sqrt(p)) |W|_F^2``). The teacher is a network of the same kind, ``S* = O
diag(s) O^T`` with ``O`` uniform and ``s_i = sqrt(d) i^(-gamma)`` for ``i <= rank d`` (0 beyond), and
``y = f_{S*}(x) + sqrt(noise) xi``. The excess risk is
``R = E_x (f_S(x) - f_{S*}(x))^2 = 2 |S - S*|_F^2 / d``, ``2 rho`` for the zero network, ``rho =
sum_i i^(-2 gamma)``. This normalisation is the one in which the reading note's statements hold as
quoted: the learned bulk is the teacher's noisy spectrum moved left by ``lam d^2 / (4 n)`` (at
``n >> d^2``), and the phase boundaries of Result 1 and Corollary 1 (``lam ~ sqrt(n_eff / d)``,
``n_eff / d^(gamma + 1/2)``, ``n_eff ~ d^(2 gamma)``, ``n_eff = n / d``) are the diagonal network's
(:mod:`~hdtheory.models.diagonal_network`) with ``n -> n_eff``.

**Both signs** (``negative > 0``; derived here). A second layer of both signs, ``f(x) = sum_j a_j (w_j
. x)^2 / sqrt(p d)`` with fixed ``a_j = 1`` or ``-kappa`` (``kappa = negative``; enough units of
each), spans every symmetric ``S = S_+ - S_-`` (``S_+ = W_+^T W_+ / sqrt(p)``, ``S_- = kappa W_-^T
W_- / sqrt(p)``), and the least weight decay of a factorisation is ``sqrt(p) (tr S_+ + tr S_- /
kappa)``: the objective above without ``S >= 0`` and with the negative eigenvalues' trace weighted
by ``1 / kappa``. ``kappa = 1`` (``a_j = +-1``) is the nuclear norm on symmetric matrices, whose
proximal operator is the two-sided threshold ``sign(s) (|s| - t)_+``; ``kappa = 0`` is the positive
network.

**Equations.** In orthonormal coordinates of symmetric matrices (``D = d (d + 1) / 2``), ``<Z, S>`` is
``a . theta`` with ``a ~ N(0, 2 I_D)`` to second order; the state evolution of AMP for the
generalised LASSO (Bayati & Montanari 2012, with the non-separable denoiser of Berthier, Montanari &
Nguyen 2020), used at any ``n / d^2`` (the paper's "non-asymptotic state evolution"), is then

.. math:: \delta^2 = \frac{d^2}{4 n} (\Delta + R), \qquad
          R = \frac{2}{d} \mathbb E |\eta_t(S^* + \delta W) - S^*|_F^2, \qquad
          t \Big(1 - \frac{\mathrm{div}\,\eta_t}{n}\Big) = \frac{\lambda d^2}{4 n},

with ``W`` a GOE matrix (spectrum ``[-2, 2]``) and ``eta_t`` the positive part of the eigenvalues
moved left by ``t`` (the proximal operator of ``t |.|_*`` on the positive semi-definite cone; with
both signs, the negative eigenvalues below ``-t / kappa`` moved right by ``t / kappa`` too): the
learned matrix is the teacher's, Wigner-perturbed with the effective noise ``delta`` and
soft-thresholded at ``t`` (the note's ``lam epsilon``), its spectrum the teacher's free-convolved with
a semicircle of radius ``2 delta``, moved left by ``t`` (both tails towards zero, with both signs),
with a mass ``1 - rank_fraction`` at zero (the note's Result 2, eq. (16)). The averages over that
spectrum, the divergence and the error are :func:`hdtheory.kernels.free.thresholded_spectrum`
(contour integrals of the subordinated Stieltjes
transform; Stein's identity for the error), with the teacher's ``d`` eigenvalues as atoms of weight
``1 / d``. The state is ``(E, log t)``, ``E = noise + R``, and the map ``E <- noise + R``, ``t <- lam
d^2 / (4 n) + t div / n`` (whose fixed point is the threshold's equation), solved by Newton's method;
``lam > 0`` (as ``lam -> 0`` the fixed point tends to the minimal-trace interpolator where ``div(0)
> n`` and to positive semi-definite least squares where ``div(0) < n``; ``lam = 1e-9`` meets the latter
within 1e-8 relative in the tests).

**The interpolation peak of both signs** (derived here). With ``a_j = +-1`` ``div(0) = D`` (the
identity's), and at ``n = D``, where least squares interpolates, the fixed point has no limit as
``lam -> 0``: for ``t << delta`` the deficit is ``D - div = t K``, ``K = d^2 int sign(x) h(x) mu(dx) + 2
d rho_mu(0)``, and the two equations reduce to ``delta^2 t K = noise d^2 / 8`` and ``t^2 K = lam d^2 /
4``. As ``delta`` grows the spectrum is the noise's semicircle, ``K = 2 d (2 d + 1) / (3 pi delta)``, so
``delta t = a = 3 pi noise d / (16 (2 d + 1))``, ``t^2 / delta = b = 3 pi lam d / (8 (2 d + 1))``,
``t = (a b)^(1/3)`` and

.. math:: R \simeq \frac{2 (d + 1)}{d} a^{4/3} b^{-2/3} \propto \Delta^{4/3} \lambda^{-2/3},

the ``Theta(lam^(-2/3))`` peak that the reading note quotes from Result 1. On the positive cone
``div(0) < D`` and the peak (near ``n = D / 2``) stays finite as ``lam -> 0``.

**Accuracy.** Stein's identity subtracts the noise's exact ``delta^2 (d + 1) / d`` per dimension, while
the averages over ``mu`` take its large-d law, whose second moment is ``sum pi s^2 + delta^2``: the
error is uncertain by terms of order ``delta^2 / d`` (at ``eta = 0`` it is low by exactly that), which
is ``(noise + R) / (4 n_eff)`` and does not shrink with ``d`` at fixed ``n_eff``. ``finite_size_error
= 2 delta^2 / (d R)`` estimates it relative to ``R`` (floored at ``sqrt(eps) rho``); a solve where it exceeds ``finite_size_tol``
(0.25) ends ``INACCURATE`` (at ``n_eff = 0.5``, noise 10, the risk came out negative, -3.3 to -3.8
for d = 100 to 1600). The simulations of the tests have it at 0.030 to 0.048, and the theory is low by 3.4 to 7.3%
there (about that much).

**Scale.** The first ``head`` teacher eigenvalues are atoms, the rest Gauss-Legendre panels in ``log
i`` (:func:`hdtheory.kernels.modes_up_to`), as the diagonal network's; ``d <= head`` is exact.

**Observables.** ``excess_risk`` ``R``, ``risk_total = R + noise``, ``matrix_error = |S - S*|_F^2 / d
= R / 2``; ``rank_fraction``, the fraction of non-zero learned eigenvalues, ``rank`` their number,
``zeros = 1 - rank_fraction``; the learned spectrum's ``trace = tr S / d`` and ``square = |S|_F^2 /
d``; ``effective_noise`` ``delta``, ``threshold`` ``t``; ``above_noise``, the number of teacher
eigenvalues above ``delta`` (those that leave the bulk as outliers), ``min(rank d, (sqrt(d) /
delta)^(1 / gamma))``; ``divergence`` over ``n``; ``finite_size_error`` (Accuracy).

**Rates** (the paper's Result 1, eq. (11), and Corollary 1, eq. (14), as the reading note quotes them;
``n_eff = n / d``): tuned ``lam``, ``R = Theta(n_eff^(-1 + 1/(2 gamma)))`` for ``1 << n_eff <<
d^(2 gamma)``, ``Theta(d / n_eff)`` beyond; ``Theta(lam^2 d^2 / n_eff^2)`` where every eigenvalue is
kept (``sqrt(n_eff / d) << lam << n_eff / d^(gamma + 1/2)``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, FixedPointTheory, Interval, ParameterError, integer, is_concrete, parameter
from ..kernels import free

_ROOT_STEPS = 100
"""The threshold's root in ``log t``: at most this many safeguarded Newton steps."""


class TotalError(eqx.Module):
    """The state: ``E = noise + R``, the fit's total error on a fresh sample (the effective noise is
    ``delta^2 = d^2 E / (4 n)``), and ``log t``, the threshold's logarithm."""

    error: jax.Array
    log_threshold: jax.Array


class QuadraticNetwork(FixedPointTheory):
    """A quadratic network with weight decay (nuclear-norm matrix compressed sensing on the positive
    semi-definite cone, or on symmetric matrices) on a power-law teacher; see the module docstring."""

    n: jax.Array = parameter(1e4, Interval(1.0), "number of samples n (n_eff = n / d)")
    d: jax.Array = parameter(100.0, Interval(2.0), "input dimension d")
    gamma: jax.Array = parameter(1.0, Interval(0.0, low_open=True), "teacher's power law: s_i = sqrt(d) i^(-gamma)")
    lam: jax.Array = parameter(1.0, POSITIVE, "weight decay: lam d |S|_*, S = W^T W / sqrt(p)")
    noise: jax.Array = parameter(0.5, NONNEGATIVE, "label noise variance Delta")
    rank: jax.Array = parameter(1.0, Interval(0.0, 1.0, low_open=True), "teacher's rank over d")
    head: int = integer(128, Interval(1), "teacher eigenvalues taken exactly; beyond, panels in log i")
    panels: int = integer(16, Interval(1), "Gauss-Legendre panels (8 nodes) in log i beyond head")
    negative: jax.Array = parameter(0.0, NONNEGATIVE, "second layer a_j = 1 or -negative: 0 is S >= 0, 1 is a_j = +-1")
    finite_size_tol: float = eqx.field(default=0.25, static=True)
    """The largest ``finite_size_error`` of a converged solve."""

    def __check_init__(self):
        if is_concrete(self.rank) and is_concrete(self.d):
            if np.any(np.asarray(self.rank) * np.asarray(self.d) < 1):
                raise ParameterError("parameter 'rank' must be >= 1 / d for quadratic-network: the teacher has rank >= 1")

    def spectrum(self) -> tuple[jax.Array, jax.Array]:
        """The teacher's eigenvalues ``s_i = sqrt(d) i^(-gamma)`` (``i <= rank d``) and ``0`` as atoms
        with their weights (multiplicities over ``d``)."""
        k, multiplicity = kernels.modes_up_to(self.rank * self.d, self.head, self.panels)
        atoms = jnp.sqrt(self.d) * k ** (-self.gamma)
        weights = multiplicity / self.d
        return jnp.append(atoms, 0.0), jnp.append(weights, jnp.maximum(1 - jnp.sum(weights), 0.0))

    def teacher_power(self) -> jax.Array:
        """``rho = |S*|_F^2 / d``; the zero network's excess risk is ``2 rho``."""
        atoms, weights = self.spectrum()
        return jnp.sum(weights * atoms**2)

    def init(self, kind: str = "uninformed") -> TotalError:
        """The zero network's ``E = 2 rho + noise`` (uninformed), or a perfect one's, ``noise``, kept
        above ``rho / 1000`` (informed); the threshold at the edge of the noise's semicircle beyond the
        shift, ``t = lam d^2 / (4 n) + 2 delta``, where few eigenvalues pass."""
        rho = self.teacher_power()
        error = jnp.maximum(self.noise, 1e-3 * rho) if kind == "informed" else 2 * rho + self.noise
        delta = jnp.sqrt(self.d**2 * error / (4 * self.n))
        return TotalError(error, jnp.log(self.lam * self.d**2 / (4 * self.n) + 2 * delta))

    def unconstrain(self, state: TotalError) -> jax.Array:
        return jnp.stack([state.error, state.log_threshold])

    def constrain(self, u: jax.Array) -> TotalError:
        return TotalError(u[0], u[1])

    def denoised(self, state: TotalError):
        """``(delta, t, thresholded spectrum)`` at the state (module docstring): the negative
        eigenvalues thresholded at ``t / negative`` (none kept at ``negative = 0``)."""
        atoms, weights = self.spectrum()
        delta = jnp.sqrt(self.d**2 * state.error / (4 * self.n))
        t = jnp.exp(state.log_threshold)
        positive = self.negative > 0
        lower = jnp.where(positive, t / jnp.where(positive, self.negative, 1.0), jnp.inf)
        return delta, t, free.thresholded_spectrum(t, atoms, weights, delta, self.d, lower)

    def update(self, state: TotalError) -> TotalError:
        """``E <- noise + 2 |eta_t(S* + delta W) - S*|_F^2 / d`` and ``t <- lam d^2 / (4 n) + t div / n``,
        whose fixed point is the module docstring's ``t (1 - div / n) = lam d^2 / (4 n)`` (in ``log t``,
        where ``t = 0`` is no fixed point)."""
        _, t, spectrum = self.denoised(state)
        error = self.noise + 2 * spectrum.error
        threshold = self.lam * self.d**2 / (4 * self.n) + t * spectrum.divergence / self.n
        error = jnp.where(state.error > 0, error, jnp.nan)  # NaN outside: the solver steps back
        return TotalError(error, jnp.log(threshold))

    def observables(self, state: TotalError) -> dict[str, jax.Array]:
        delta, t, spectrum = self.denoised(state)
        excess = 2 * spectrum.error
        floor = jnp.sqrt(jnp.finfo(excess.dtype).eps) * self.teacher_power()
        return {
            "excess_risk": excess,
            "risk_total": excess + self.noise,
            "matrix_error": spectrum.error,
            "rank_fraction": spectrum.rank,
            "rank": self.d * spectrum.rank,
            "zeros": 1 - spectrum.rank,
            "trace": spectrum.trace,
            "square": spectrum.square,
            "effective_noise": delta,
            "threshold": t,
            "above_noise": jnp.minimum(self.rank * self.d, (jnp.sqrt(self.d) / delta) ** (1 / self.gamma)),
            "divergence": spectrum.divergence / self.n,
            # The large-d law's second moment misses the noise's diagonal share, delta^2 / d of the
            # error per dimension, which Stein's identity counts exactly (module docstring, Accuracy);
            # relative to the risk, or to rounding's scale where that is zero (perfect recovery).
            "finite_size_error": 2 * delta**2 / (self.d * jnp.maximum(excess, floor)),
        }

    def accurate(self, state, observables):
        """``finite_size_error <= finite_size_tol``: the error's omitted ``O(delta^2 / d)`` terms
        within ``finite_size_tol`` of the excess risk."""
        return observables["finite_size_error"] <= self.finite_size_tol
