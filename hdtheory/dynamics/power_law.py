r"""Phase retrieval on power-law data: the gradient flow of the square loss, mode by mode.

**Setting** (Braun, Loureiro, Minh & Imaizumi 2025, "Fast escape, slow convergence: learning
dynamics of phase retrieval under power-law data", arXiv:2511.18661). Inputs ``x ~ N(0, Sigma)`` in
``P = modes`` dimensions, written in the eigenbasis of ``Sigma`` (the problem is rotation
invariant), with a power-law spectrum normalised to unit trace,

.. math:: \lambda_k = k^{-a} \Big/ \sum_{j \le P} j^{-a}, \qquad k = 1, \dots, P,

(``a = decay``; ``a = 0`` is isotropic data ``N(0, I / P)``, the usual local fields
``w.x_iso / sqrt(P)``), a teacher with components ``theta_k`` proportional to ``k^(-b/2)``
(``b = teacher_decay``), normalised so that ``B = sum_k lambda_k theta_k^2 = E[nu^2] = 1``, labels
``y = nu^2`` with ``nu = theta.x``, a student ``y_hat = lambda^2`` with ``lambda = w.x``, and the
square loss ``(y_hat - y)^2 / 2``. With ``A = sum_k lambda_k w_k^2 = E[lambda^2]`` and
``C = sum_k lambda_k theta_k w_k = E[lambda nu]``, Isserlis' theorem gives the population error

.. math:: \epsilon_g = E[(\hat y - y)^2] = 3A^2 - 2AB - 4C^2 + 3B^2

(no 1/2, CONVENTIONS), and the gradient flow ``dw/dt = -lr s(t) grad(epsilon_g / 2)`` is, mode by
mode,

.. math::
    \frac{dw_k}{dt} = -\mathrm{lr}\, s(t)\, \lambda_k \big[2(3A - B)\, w_k - 4C\, \theta_k\big],

``P`` equations coupled only through the two sums ``A`` and ``C`` (so the per-mode statistics
``m_k = theta_k w_k`` and ``q_k = w_k^2`` close too; the state is ``w`` itself, one vectorised ODE
over all modes). Written through summary statistics instead, the flow is an infinite hierarchy
(the paper's abstract): ``s_j = sum_k lambda_k^j theta_k w_k`` couples to ``s_(j+1)``; per mode
it closes at once.

**Time.** ``t`` counts samples over ``d = P`` for online SGD with the per-sample step ``lr / d``,
``w <- w - (lr s(t) / d) grad_w (y_hat - y)^2 / 2``: its mean follows the flow above, its noise adds
``O(lr^2 / d)`` per unit time (:mod:`hdtheory.simulate.power_law`); equivalently, full-batch gradient
descent on the population loss with step ``lr / d``. A gradient flow in time ``tau`` on the loss
``E[(y_hat - y)^2] / c`` is this one at ``lr t = 2 tau / c``; the spectrum's and the teacher's
scales enter only through ``lambda_k theta_k^2`` and the time unit.

**Three phases** (the paper's abstract): (i) *fast escape*: from a small random start ``w = 0`` is a
saddle, and ``dw/dt = lr M w`` near it with the symmetric
``M = 2B Sigma + 4 (Sigma theta)(Sigma theta)^T``; the alignment grows as ``exp(lr mu t)``,
``mu`` the largest eigenvalue of ``M`` (:meth:`PowerLawRetrieval.escape_rate`), so that the
escape takes ``log(1 / sigma0) / (lr mu)``;
(ii) the summary statistics ``A, C`` converge to ``B``; (iii) *spectral-tail learning*: near the
teacher each mode relaxes at the rate ``4 B lr lambda_k``, so at time ``t`` the modes
``k < K(t) ~ t^(1/a)`` are learned and the error is that of the tail,
``epsilon_g ~ 4B sum_(k > K(t)) lambda_k theta_k^2 ~ t^(-(a + b - 1) / a)``: the exponent
``(a + b - 1) / a`` (``1 - 1/a`` for a flat teacher, ``b = 0``;
:attr:`PowerLawRetrieval.convergence_exponent`), for ``a + b > 1`` (a teacher of finite
``E[nu^2]`` as ``P -> infinity``), until ``t ~ P^a`` where the spectrum ends and the decay becomes
exponential. :func:`convergence_exponent` fits it from the theory's curve. This exponent and the
escape rate are derived here from the per-mode equations and checked against the integrated
flow and against online SGD, not term by term against the paper's equations and normalisation.

**Initial condition.** ``w(0) = sigma0 g`` with ``g ~ N(0, I_P)`` drawn from ``seed`` (in float32,
so that float32 and float64 start alike), plus ``m0 theta``.

**Observables** (up to the teacher's sign, which the labels do not fix). ``eg`` (computed from
sums of squares, without the cancellation of the order-one terms above:
``eg = 4B delta + 3 (A - B)^2 - 4 (C - B)^2`` with ``delta = sum_k lambda_k (w_k - theta_k)^2``,
the teacher's sign chosen as that of ``C``), ``q = A``, ``m = |C|``, the
``Sigma``-weighted cosine ``overlap = |C| / sqrt(AB)`` and ``distance = delta``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..kernels.rates import fitted_rate
from .._theory import NONNEGATIVE, Interval, ParameterError, check_integer, integer, is_concrete, parameter
from ._schedule import Scheduled


class PowerLawRetrieval(Scheduled):
    """Gradient flow of phase retrieval on power-law data, one ODE over all modes (module docstring)."""

    modes: int = integer(1000, Interval(1), "number of eigen-directions P of the input covariance")
    decay: jax.Array = parameter(2.0, NONNEGATIVE, "spectral exponent a: lambda_k ~ k^-a")
    teacher_decay: jax.Array = parameter(0.0, NONNEGATIVE, "teacher profile b: theta_k^2 ~ k^-b")
    sigma0: jax.Array = parameter(1e-3, NONNEGATIVE, "scale of the random initial weights sigma0*g")
    m0: jax.Array = parameter(0.0, Interval(), "initial component along the teacher: + m0*theta")
    seed: int = integer(0, Interval(0), "seed of the random initial weights g")

    def __check_init__(self):
        check_integer("modes", self.modes, Interval(1))
        if is_concrete(self.sigma0) and is_concrete(self.m0):
            if np.any((np.asarray(self.sigma0) == 0) & (np.asarray(self.m0) == 0)):
                raise ParameterError(
                    "parameters 'sigma0' and 'm0' must not both be 0: w = 0 is a stationary point of "
                    "the flow (a saddle), which it never leaves"
                )

    # -- the spectrum and the teacher ------------------------------------------------------------

    def spectrum(self) -> tuple[jax.Array, jax.Array]:
        """``(lambda, theta)``: the eigenvalues (unit trace) and the teacher's components (``B = 1``)."""
        dtype = jnp.result_type(self.lr, self.decay, self.teacher_decay, self.sigma0, float)
        k = jnp.arange(1, self.modes + 1, dtype=dtype)
        log_k = jnp.log(k)
        lam = jnp.exp(-self.decay * log_k)
        lam = lam / jnp.sum(lam)
        theta = jnp.exp(-0.5 * self.teacher_decay * log_k)
        return lam, theta / jnp.sqrt(jnp.sum(lam * theta**2))

    @property
    def convergence_exponent(self) -> jax.Array:
        """``(a + b - 1) / a``: the exponent of ``eg ~ t^-e`` in phase (iii) (module docstring)."""
        return (self.decay + self.teacher_decay - 1) / self.decay

    def escape_rate(self) -> jax.Array:
        """``lr mu``: the growth rate of the alignment from a small start, ``mu`` the largest
        eigenvalue of ``M = 2B Sigma + 4 v v^T``, ``v = Sigma theta`` (``s(0)`` included): the root
        of the secular equation ``4 sum_k v_k^2 / (mu - 2B lambda_k) = 1`` above ``2B lambda_1``,
        by bisection (``O(P)`` per step, no ``P x P`` matrix)."""
        lam, theta = self.spectrum()
        B = jnp.sum(lam * theta**2)
        v2 = (lam * theta) ** 2
        pole = 2 * B * jnp.max(lam)

        def bisect(_, bounds):
            low, high = bounds
            mid = 0.5 * (low + high)
            below = 4 * jnp.sum(v2 / (mid - 2 * B * lam)) < 1  # the root lies below mid
            return jnp.where(below, low, mid), jnp.where(below, mid, high)

        _, mu = jax.lax.fori_loop(0, 200, bisect, (pole, pole + 4 * jnp.sum(v2)))
        return self.lr * self.rate(jnp.zeros((), lam.dtype)) * mu

    # -- the ODE theory protocol ------------------------------------------------------------------

    def init(self) -> jax.Array:
        """``w(0) = sigma0 g + m0 theta``, ``g ~ N(0, I_P)`` from ``seed``."""
        lam, theta = self.spectrum()
        g = jax.random.normal(jax.random.PRNGKey(self.seed), (self.modes,), jnp.float32)
        return self.sigma0 * g.astype(lam.dtype) + self.m0 * theta

    def vector_field(self, t, w: jax.Array) -> jax.Array:
        lam, theta = self.spectrum()
        A = jnp.sum(lam * w**2)
        B = jnp.sum(lam * theta**2)
        C = jnp.sum(lam * theta * w)
        return -self.lr * self.rate(t) * lam * (2 * (3 * A - B) * w - 4 * C * theta)

    def observables(self, t, w: jax.Array) -> dict[str, jax.Array]:
        lam, theta = self.spectrum()
        A = jnp.sum(lam * w**2)
        B = jnp.sum(lam * theta**2)
        C = jnp.sum(lam * theta * w)
        theta = jnp.where(C < 0, -theta, theta)  # the sign of the teacher is not identifiable
        residual = w - theta
        delta = jnp.sum(lam * residual**2)
        alpha = jnp.sum(lam * residual * (w + theta))  # A - B
        gamma = jnp.sum(lam * theta * residual)  # |C| - B
        return {
            "eg": jnp.maximum(4 * B * delta + 3 * alpha**2 - 4 * gamma**2, 0.0),
            "m": jnp.abs(C),
            "q": A,
            "overlap": jnp.abs(C) / jnp.sqrt(A * B),
            "distance": delta,
        }


def convergence_exponent(ts, eg) -> jax.Array:
    """The exponent ``e`` of ``eg ~ t^-e`` fitted (least squares in log-log) over the times ``ts``
    (last axis), to compare with :attr:`PowerLawRetrieval.convergence_exponent` in phase (iii)."""
    return fitted_rate(ts, eg)
