r"""Bayes-optimal inference of a signal seen through a Gaussian random field: replica-symmetric theory.

**Setting** (the inverse problem of Bereyhi, Loureiro, Krzakala, Müller and Schulz-Baldes 2022,
"Bayesian inference with nonlinear generative models: comments on secure learning",
arXiv:2201.09986, IEEE Trans. Inf. Theory 2023; only the paper's abstract was at hand: the equations
below are derived here, in this project's conventions). A signal ``x* in R^N`` with i.i.d. entries from
a prior ``P0`` of second moment ``rho`` (:mod:`hdtheory.kernels.priors`, as for
:class:`~hdtheory.BayesGLM`), and ``M = alpha N`` outputs

.. math:: y_\mu = \Phi_\mu(x^*) + \sqrt{\Delta}\, \xi_\mu, \qquad
          \mathbb E\, \Phi_\mu(x) \Phi_\nu(x') = \delta_{\mu\nu}\, C(x \cdot x' / N),

``Delta = noise``, ``xi ~ N(0, 1)``, ``Phi`` a centred Gaussian random field with independent outputs
and covariance function ``C(q) = sum_k c_k q^k`` (``coefficients = (c_0, c_1, ...)``). Non-negative
coefficients are exactly the functions of ``x.x'/N`` that are covariances in every dimension
(Schoenberg 1942); such a field is ``Phi_mu(x) = sum_k sqrt(c_k) <G_mu^(k), x^{(x) k}> / N^{k/2}``
with i.i.d. ``N(0, 1)`` tensors ``G_mu^(k)``. ``C(q) = q`` is the linear model ``y = a.x / sqrt(N) +
noise``, :class:`~hdtheory.BayesGLM` with ``channel="linear"``; ``c_1 = 0`` ("strictly nonlinear")
leaves no linear part. The statistician knows ``P0``, ``C``, ``Delta`` and the realisation of ``Phi``,
and computes the posterior.

**Replica symmetry and the Nishimori identities.** Replicas ``x^a`` of the posterior and the signal
``x^0 = x*`` see, output by output, the jointly Gaussian fields ``Phi_mu(x^a)`` of covariance
``C(Q_ab)``, ``Q_ab = x^a.x^b / N``. At the Bayes-optimal replica-symmetric point ``Q_aa = rho`` and
``Q_ab = q`` (``a != b``, the signal included), and these fields are those of a Gaussian linear model
whose local field has variance ``C(rho)`` and overlap ``C(q)``: each output contributes the linear
channel's ``Psi_out`` at the error ``C(rho) - C(q)``,

.. math:: \Psi_{out}(q) = -\tfrac12 \log\big(2\pi (\Delta + C(\rho) - C(q))\big) - \tfrac12,

while the prior's side is unchanged. The free entropy ``lim E log Z / N``, with
``Z = int dP0(x) prod_mu N(y_mu; Phi_mu(x), Delta)``, is ``sup_q inf_qhat`` of

.. math:: f(q, \hat q) = \psi_{P_0}(\hat q) - \frac{\hat q q}{2} + \alpha\, \Psi_{out}(q),
          \qquad \psi_{P_0}(r) = \mathbb E \log Z_0(r x^* + \sqrt r z, r),

and its stationary points are (the decoupled scalar channel of SNR ``qhat``)

.. math:: \hat q = \frac{\alpha\, C'(q)}{\Delta + C(\rho) - C(q)}, \qquad
          q = \mathbb E\, x^* f_a(\hat q x^* + \sqrt{\hat q} z, \hat q).

``update`` composes the two; it is monotone (``C'`` grows and ``C`` too, the coefficients being
non-negative). For ``C(q) = q`` these are the equations of :class:`~hdtheory.BayesGLM` with the
linear channel, term for term. The mutual information per input entry (nats) is
``I(x*; y | Phi) / N = -f - alpha (1 + log(2 pi Delta)) / 2`` (``E log P(y | x*)`` is that of the
noise alone):

.. math:: \frac IN = -\psi_{P_0}(\hat q) + \frac{\hat q q}2
          + \frac\alpha2 \log\frac{\Delta + C(\rho) - C(q)}{\Delta}.

**All or nothing.** With ``c_1 = 0`` and a zero-mean prior, ``q = 0`` is a fixed point (``qhat = 0``)
where ``I / N = (alpha / 2) log(1 + (C(rho) - c_0) / Delta)``, the capacity of the Gaussian channel
per output; perfect recovery ``q -> rho`` (``qhat -> inf`` for a discrete prior) has ``I / N = H(P0)``,
the prior's entropy. Where no fixed point lies between, the information-theoretic transition
(:func:`~hdtheory.threshold`, ``kind="information-theoretic"``, of the branches from ``q = 0`` and
from ``q = rho``) is where the two are equal,
``alpha_c = 2 H(P0) / log(1 + (C(rho) - c_0) / Delta)``: the limit of ``C(q) = q^p`` as
``p -> inf`` (``C(q) -> 0`` for ``q < rho = 1``), which the located threshold approaches from below
as ``p`` grows (Rademacher prior, ``noise = 0.5``: ``alpha_c - alpha_IT = 4e-3, 2e-5, 6e-10`` at
``p = 4, 8, 16``). Linearised about ``q = 0`` (zero-mean prior, ``c_1 = 0``), ``update`` has the slope

.. math:: \frac{2 \alpha c_2 \rho^2}{\Delta + C(\rho) - c_0},

so that ``q = 0`` is stable below ``alpha_WR = (Delta + C(rho) - c_0) / (2 c_2 rho^2)``
(``kind="weak-recovery"``, through :meth:`RandomField.linear_stability`) and for every ``alpha``
when ``c_1 = c_2 = 0``: there the algorithm (AMP, the iteration from the uninformed start) never
leaves ``q = 0`` (``kind="algorithmic"`` finds no fold). The transition is all or nothing only
where the information-theoretic threshold comes before ``alpha_WR``: for ``C(q) = q^2``, ``rho = 1``,
at ``noise = 0.01`` (0.300 against 0.505), not at ``noise = 0.5``, where ``q`` grows continuously from
``alpha_WR = 0.75``. With ``c_1 > 0``, ``q = 0`` is no fixed point.

**Signs.** For an even ``C`` (only even powers) and a symmetric prior, ``x*`` and ``-x*`` give the same
outputs, the posterior mean is zero, and ``q`` is the overlap of the posterior's state about
``+-x*`` with the signal, up to the sign (that of a symmetry-broken posterior mean, as in phase
retrieval); ``mmse`` is then the error of that estimator, and ``mmse_matrix = rho^2 - q^2`` the
minimum error per entry of ``x* x*^T``, which the symmetry does not affect.

**Observables.** ``q``, ``m`` (equal to ``q``), ``mmse = rho - q``, ``mmse_matrix = rho^2 - q^2``,
``qhat``, ``mutual_information`` (per input entry, nats) and ``free_entropy``.

**Coordinates** are those of :class:`~hdtheory.models._overlap.Overlaps`: ``log(rho - q)``; the
prior's averages are those of :class:`~hdtheory.BayesGLM` (quadrature of ``order`` nodes,
differentiable at ``qhat = 0``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, check_integer, choice, is_concrete, parameter
from . import _prior
from ._overlap import Overlaps


class RandomField(Overlaps):
    """Bayes-optimal inference through a Gaussian random field of covariance C(x.x'/N) (module docstring)."""

    alpha: jax.Array = parameter(1.0, POSITIVE, "load M/N: outputs per entry of the signal")
    noise: jax.Array = parameter(0.1, POSITIVE, "variance of the Gaussian noise on each output")
    coefficients: jax.Array = parameter(
        (0.0, 0.0, 1.0), NONNEGATIVE, "c_0, c_1, ...: the covariance function C(q) = sum_k c_k q^k", vector=True
    )
    rho: jax.Array = parameter(
        1.0, POSITIVE, "prior second moment |x*|^2/N (density of non-zeros for the sparse priors; unused for discrete)"
    )
    prior: str = choice("rademacher", _prior.PRIORS, "prior of the signal's entries")
    values: jax.Array = _prior.values_field()
    probabilities: jax.Array = _prior.probabilities_field()
    order: int = eqx.field(default=64, static=True)

    def __check_init__(self):
        _prior.check(self.prior, self.rho, self.values, self.probabilities)
        check_integer("order", self.order, Interval(8))
        c = self.coefficients
        if is_concrete(c) and (np.ndim(c) != 1 or np.size(c) < 2 or not np.any(np.asarray(c)[1:] > 0)):
            raise ParameterError(
                "parameter 'coefficients' must be c_0, c_1, ... >= 0 with some c_k > 0 for k >= 1 "
                f"(a constant C carries no information on x), got {np.asarray(c)}"
            )

    @property
    def prior_fn(self):
        return _prior.build(self.prior, self.rho, self.values, self.probabilities)

    @property
    def _rho(self):
        return self.prior_fn.rho

    def covariance(self, q) -> jax.Array:
        """``C(q) = sum_k c_k q^k``."""
        return jnp.polyval(self.coefficients[::-1], q)

    def _slope(self, q) -> jax.Array:
        """``C'(q) = sum_k k c_k q^(k-1)``."""
        c = self.coefficients
        return jnp.polyval((jnp.arange(1, c.size) * c[1:])[::-1], q)

    def _error(self, q) -> jax.Array:
        """``Delta + C(rho) - C(q)``, the variance of an output given the replica-symmetric state."""
        return self.noise + self.covariance(self._rho) - self.covariance(q)

    def conjugate(self, q) -> jax.Array:
        """``qhat = alpha C'(q) / (Delta + C(rho) - C(q))``."""
        q = self._checked(q)
        return self.alpha * self._slope(q) / self._error(q)

    def update(self, q) -> jax.Array:
        prior = self.prior_fn
        return jnp.minimum(prior.overlap(self.conjugate(q), self.order), prior.rho)

    def linear_stability(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(radius, state, direction)`` for :func:`~hdtheory.threshold`'s ``kind="weak-recovery"``:
        the slope of ``update`` at ``q = 0`` (``2 alpha c_2 rho^2 / (Delta + C(rho) - c_0)`` for a
        zero-mean prior and ``c_1 = 0``), ``q = 0`` and the direction ``1``; the radius is ``inf``
        where ``q = 0`` is no fixed point (``c_1 > 0``, or a prior of non-zero mean)."""
        zero = jnp.zeros_like(self.init("uninformed"))
        moved = self.update(zero) / self._rho
        radius = jax.jacfwd(self.update)(zero)
        return jnp.where(moved > 1e-8, jnp.inf, radius), zero, jnp.ones_like(zero)

    def free_entropy(self, q) -> jax.Array:
        """``f(q, qhat(q))``; see the module docstring."""
        r = self.conjugate(q)
        q = self._checked(q)
        out = -0.5 * jnp.log(2 * jnp.pi * self._error(q)) - 0.5
        return self.prior_fn.free_entropy(r, self.order) - r * q / 2 + self.alpha * out

    def mutual_information(self, q) -> jax.Array:
        """``I(x*; y | Phi) / N = -f - alpha (1 + log(2 pi Delta)) / 2``, in nats."""
        return -self.free_entropy(q) - self.alpha * (1 + jnp.log(2 * jnp.pi * self.noise)) / 2

    def observables(self, q) -> dict[str, jax.Array]:
        rho = self._rho
        return {
            "q": q,
            "m": q,
            "mmse": rho - q,
            "mmse_matrix": rho**2 - q**2,
            "qhat": self.conjugate(q),
            "mutual_information": self.mutual_information(q),
            "free_entropy": self.free_entropy(q),
        }
