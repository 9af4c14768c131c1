r"""Priors of a signal's entries and their scalar Bayes denoisers.

A prior ``P0`` on a scalar ``x`` enters Bayes-optimal inference through its partition function

.. math:: Z_0(B, A) = \int dP_0(x)\, e^{B x - A x^2 / 2},

the normaliser of the posterior of ``x`` observed through the scalar Gaussian channel
``B = A x* + sqrt(A) z`` (signal-to-noise ratio ``A``). The posterior mean and variance are
``mean = d_B log Z_0`` and ``variance = d_B mean``. Every prior here has second moment
``E x^2 = rho``:

- :class:`Gaussian`: ``N(0, rho)``;
- :class:`Rademacher`: ``+-sqrt(rho)`` with probability 1/2 each;
- :class:`GaussBernoulli`: ``0`` with probability ``1 - rho``, ``N(0, 1)`` with probability ``rho``
  (``rho`` is both the density of non-zeros and the second moment, as in Barbier et al. 2019);
- :class:`Discrete`: atoms ``values`` with ``probabilities``, ``rho = sum_k p_k v_k^2`` (a derived
  field, not a parameter);
- :class:`SparseRademacher`: ``0`` with probability ``1 - rho``, ``+-1`` with probability ``rho / 2``
  each (``rho`` the density and the second moment, as for :class:`GaussBernoulli`), a
  :class:`Discrete` prior.

``overlap(r)`` and ``free_entropy(r)`` are the overlap ``E x* mean`` and ``E log Z_0`` of the
scalar channel of SNR ``r``, the prior's side of every Bayes-optimal state evolution;
``null_average(f, r)`` averages over the same channel without a signal (``B = sqrt(r) z``), the
prior's side of a Gibbs measure that has no teacher (Gardner's volume).
``support(order)`` gives nodes and weights with ``sum_k w_k g(x_k) ~ E_{P0} g(x)`` (exact for the
Rademacher prior, Gauss-Hermite for the Gaussian part of the others), used to average over the
planted signal.

**Quadrature.** The posterior mean of a discrete or sparse prior switches over a width that shrinks
with the SNR (``tanh(r x* + sqrt(r) z)`` over ``1 / sqrt(r)`` in ``z``), where a Gauss-Hermite rule
converges only algebraically (the Rademacher overlap is ``5e-6`` off at ``r = 10`` with 64 nodes).
Those averages are Gauss-Legendre panels (:func:`~hdtheory.kernels.quadrature.transition_rule`,
``max(order // 4, 8)`` nodes a panel) with edges at the Gaussian's scales ``0, +-1.5, +-3.5, +-6`` and at the
transition ``c`` and ``c +- {1, 4, 16} w`` (``w`` its width): for :class:`Rademacher` per sign of
``x*``, at ``B = 0``; for :class:`Discrete` per atom ``x*``, at each ``B`` where the posterior weights
of two atoms are equal (every pair: an atom of small weight may never dominate); for :class:`GaussBernoulli`, whose average over the Gaussian part of ``x*`` is
reduced to one dimension (``B = r x* + sqrt(r) z`` is ``N(0, r (1 + r))`` with
``E[x* | B] = B / (1 + r)``), at the ``|B|`` where the posterior odds of a non-zero entry are even.
The :class:`Gaussian` prior's posterior mean is linear, and Gauss-Hermite is exact for it.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from .quadrature import hermite_rule, smoothed_expectation, transition_rule


class Prior(eqx.Module):
    """A prior ``P0`` with second moment ``rho``; see the module docstring."""

    rho: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)

    @abc.abstractmethod
    def log_partition(self, B, A):
        """``log Z_0(B, A)``, computed stably."""

    @abc.abstractmethod
    def mean(self, B, A):
        """The posterior mean ``d_B log Z_0(B, A)``."""

    @abc.abstractmethod
    def variance(self, B, A):
        """The posterior variance ``d_B mean(B, A)``."""

    @abc.abstractmethod
    def support(self, order: int, dtype=None):
        """``(x, w)``: nodes and weights of a quadrature of ``E_{P0}``."""

    @abc.abstractmethod
    def sample(self, key, shape, dtype=None):
        """Independent draws from ``P0``."""

    def gaussian_mixture(self) -> tuple[tuple, tuple]:
        """``(weights, variances)`` of the prior as a centred Gaussian mixture
        ``sum_k weights_k N(0, variances_k)`` (a variance 0 is a point mass at 0), where it is one;
        the penalties' weight averages (:mod:`~hdtheory.kernels.penalties`) are closed forms for these."""
        raise NotImplementedError(f"{type(self).__name__} is not a centred Gaussian mixture")

    def _rule(self, x, r, order: int):
        """Nodes and weights, shape ``(len(x), n)``, of ``E_z`` at each support point ``x``."""
        z, w = hermite_rule(order, x.dtype)
        return jnp.broadcast_to(z, x.shape + z.shape), jnp.broadcast_to(w, x.shape + w.shape)

    def _average(self, f, r, order: int, support=None):
        """``E f(prior, x*, r x* + sqrt(r) z, r)`` over ``x* ~ P0`` (or the nodes and weights
        ``support``) and ``z ~ N(0, 1)``, differentiable at ``r = 0``."""
        x, wx = self.support(order, jnp.result_type(r, float)) if support is None else support
        z, wz = self._rule(x, r, order)

        def g(b, args):  # the support's weights in args: differentiated (in a discrete prior's probabilities)
            prior, r, x, wx = args
            return wx[:, None] * f(prior, x[:, None], r * x[:, None] + b, r)

        return smoothed_expectation(g, r, (self, r, x, wx), z, wz)

    def overlap(self, r, order: int = 64):
        """``E x* mean(B, r)``, ``B = r x* + sqrt(r) z``: the overlap of the scalar channel of SNR
        ``r`` (``rho`` minus its MMSE)."""
        return self._average(lambda prior, x, B, r: x * prior.mean(B, r), r, order)

    def free_entropy(self, r, order: int = 64):
        """``psi(r) = E log Z_0(r x* + sqrt(r) z, r)``."""
        return self._average(lambda prior, x, B, r: prior.log_partition(B, r), r, order)

    def null_average(self, f, r, order: int = 64):
        """``E f(prior, B, r)`` over ``B = sqrt(r) z``, ``z ~ N(0, 1)``: the scalar channel of SNR ``r``
        that carries no signal (``x* = 0``), on the rule the prior uses about ``x* = 0``.

        The replica-symmetric Gibbs measure of a problem without a planted signal (Gardner's volume
        of the perceptron, :class:`~hdtheory.Gardner`) sees the prior through this channel: two of
        its samples overlap by ``E mean(B, r)^2``, and its entropy holds ``E log Z_0(B, r)``.
        Differentiable in ``r`` at ``r = 0`` (the heat equation)."""
        dtype = jnp.result_type(r, float)
        support = (jnp.zeros((1,), dtype), jnp.ones((1,), dtype))
        return self._average(lambda prior, x, B, r: f(prior, B, r), r, order, support)


class Gaussian(Prior):
    r"""``N(0, rho)``: ``log Z_0 = rho B^2 / (2 (1 + rho A)) - log(1 + rho A) / 2``."""

    def log_partition(self, B, A):
        return self.rho * B**2 / (2 * (1 + self.rho * A)) - 0.5 * jnp.log1p(self.rho * A)

    def mean(self, B, A):
        return self.rho * B / (1 + self.rho * A)

    def variance(self, B, A):
        return self.rho / (1 + self.rho * A) + 0.0 * B

    def support(self, order: int, dtype=None):
        t, w = hermite_rule(order, dtype)
        return jnp.sqrt(self.rho) * t, w

    def gaussian_mixture(self):
        return (1.0,), (self.rho,)

    def sample(self, key, shape, dtype=None):
        return jnp.sqrt(self.rho) * jax.random.normal(key, shape, dtype or float)


class Rademacher(Prior):
    r"""``+-sqrt(rho)``: ``log Z_0 = log cosh(sqrt(rho) B) - rho A / 2``."""

    def log_partition(self, B, A):
        u = jnp.abs(jnp.sqrt(self.rho) * B)
        return u + jnp.log1p(jnp.exp(-2 * u)) - jnp.log(2.0) - self.rho * A / 2

    def mean(self, B, A):
        s = jnp.sqrt(self.rho)
        return s * jnp.tanh(s * B) + 0.0 * A

    def variance(self, B, A):
        return self.rho / jnp.cosh(jnp.sqrt(self.rho) * B) ** 2 + 0.0 * A

    def support(self, order: int, dtype=None):
        del order
        s = jnp.sqrt(self.rho).astype(dtype or jnp.result_type(self.rho, float))
        return jnp.stack([-s, s]), jnp.full((2,), 0.5, s.dtype)

    def _rule(self, x, r, order: int):
        """Panels about ``B = r x + sqrt(r) z = 0``: ``z = -sqrt(r) x``, width ``1 / sqrt(rho r)``."""
        r = jnp.maximum(r, jnp.finfo(x.dtype).tiny)
        center = -jnp.sqrt(r) * x[:, None]
        width = jnp.broadcast_to(1 / jnp.sqrt(self.rho * r), center.shape)
        return transition_rule(center, width, max(order // 4, 8), x.dtype)

    def sample(self, key, shape, dtype=None):
        sign = jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0)
        return (jnp.sqrt(self.rho) * sign).astype(dtype or float)


class GaussBernoulli(Prior):
    r"""``(1 - rho) delta_0 + rho N(0, 1)``, ``rho`` in ``(0, 1]``.

    ``Z_0 = 1 - rho + rho exp(B^2 / (2 (1 + A))) / sqrt(1 + A)``; with ``pi`` the posterior
    probability of a non-zero entry, ``mean = pi B / (1 + A)`` and
    ``variance = pi (1 / (1 + A) + B^2 / (1 + A)^2) - mean^2``.
    """

    def _nonzero_log_weight(self, B, A):
        return jnp.log(self.rho) + B**2 / (2 * (1 + A)) - 0.5 * jnp.log1p(A)

    def log_partition(self, B, A):
        zero = jnp.where(self.rho < 1, jnp.log(jnp.where(self.rho < 1, 1 - self.rho, 1.0)), -jnp.inf)
        return jnp.logaddexp(zero, self._nonzero_log_weight(B, A))

    def _pi(self, B, A):
        return jnp.exp(self._nonzero_log_weight(B, A) - self.log_partition(B, A))

    def mean(self, B, A):
        return self._pi(B, A) * B / (1 + A)

    def variance(self, B, A):
        pi = self._pi(B, A)
        mean = pi * B / (1 + A)
        return pi * (1 / (1 + A) + B**2 / (1 + A) ** 2) - mean**2

    def support(self, order: int, dtype=None):
        t, w = hermite_rule(order, dtype)
        x = jnp.concatenate([jnp.zeros((1,), t.dtype), t])
        return x, jnp.concatenate([jnp.reshape(1 - self.rho, (1,)).astype(t.dtype), self.rho * w])

    def gaussian_mixture(self):
        return (1 - self.rho, self.rho), (0.0, 1.0)

    def _by_component(self, f, r, order: int, weights=None):
        """``(1 - rho) E f(B_0, r) + rho E f(B_1, r)``, ``B_0 ~ N(0, r)`` (``x* = 0``) and
        ``B_1 ~ N(0, r (1 + r))`` (``x* ~ N(0, 1)``), or with the ``weights`` given instead of
        ``(1 - rho, rho)`` (a component of weight 0 is left out), each by panels about the
        ``|B|`` where the posterior odds of a non-zero entry are even,
        ``B_c^2 = (1 + r) (log(1 + r) + 2 log((1 - rho) / rho))``, over its width ``(1 + r) / B_c``."""
        dtype = jnp.result_type(r, float)
        r = jnp.asarray(r, dtype)
        safe = jnp.maximum(r, jnp.finfo(dtype).tiny)
        log_odds = jnp.log(jnp.where(self.rho < 1, (1 - self.rho) / self.rho, 1.0))
        b_c = jnp.sqrt(jnp.maximum((1 + safe) * (jnp.log1p(safe) + 2 * log_odds), 0.0))
        b_c = jnp.where(self.rho < 1, b_c, 1e3)
        b_width = (1 + safe) / jnp.maximum(b_c, 1.0)
        weights = (1 - self.rho, self.rho) if weights is None else weights
        total = jnp.zeros((), dtype)
        for weight, var in zip(weights, (r, r * (1 + r))):
            if isinstance(weight, (int, float)) and weight == 0:
                continue
            scale = jnp.sqrt(jnp.maximum(var, jnp.finfo(dtype).tiny))
            center = jnp.stack([b_c, -b_c]) / scale
            xi, w = transition_rule(center, jnp.stack([b_width, b_width]) / scale, max(order // 4, 8), dtype)
            g = lambda b, args: f(args[0], b, args[1])
            total = total + weight * smoothed_expectation(g, var, (self, r), xi, w)
        return total

    def overlap(self, r, order: int = 64):
        """``rho E[B mean(B, r)] / (1 + r)``, ``B ~ N(0, r (1 + r))``: the average over ``x* = 0``
        vanishes, and over ``x* ~ N(0, 1)`` ``E[x* | B] = B / (1 + r)``."""
        f = lambda prior, B, r: B / (1 + r) * prior.mean(B, r)
        return self._by_component(f, r, order, (0, self.rho))

    def free_entropy(self, r, order: int = 64):
        return self._by_component(lambda prior, B, r: prior.log_partition(B, r), r, order)

    def null_average(self, f, r, order: int = 64):
        return self._by_component(f, r, order, (1, 0))

    def sample(self, key, shape, dtype=None):
        k1, k2 = jax.random.split(key)
        nonzero = jax.random.bernoulli(k1, self.rho, shape)
        return jnp.where(nonzero, jax.random.normal(k2, shape, dtype or float), 0.0)


def _safe_log(p):
    """``log p``, ``-inf`` at ``p = 0`` with a zero (not NaN) derivative there."""
    positive = p > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, p, 1.0)), -jnp.inf)


class Discrete(Prior):
    r"""Atoms ``v_k`` (``values``) with probabilities ``p_k`` (``probabilities``, summing to one; zeros
    allowed); ``rho = sum_k p_k v_k^2``.

    With the log-weights ``l_k = log p_k + B v_k - A v_k^2 / 2``, ``log Z_0 = logsumexp_k l_k`` and the
    posterior is the softmax ``pi_k = exp(l_k - log Z_0)``: ``mean = sum_k pi_k v_k``,
    ``variance = sum_k pi_k (v_k - mean)^2`` (accurate relative to itself where the posterior is nearly
certain), in closed form. Two atoms ``+-s`` of weight 1/2 give the
    :class:`Rademacher` denoiser ``s tanh(s B)``. The caller checks the atoms (distinct, probabilities
    summing to one); here they are taken as given.
    """

    values: jax.Array
    probabilities: jax.Array

    def __init__(self, values, probabilities):
        self.values = jnp.asarray(values)
        self.probabilities = jnp.asarray(probabilities)
        self.rho = jnp.sum(self.probabilities * self.values**2, axis=-1)

    def _posterior(self, B, A):
        """``(log Z_0, pi)``: the log-partition and the softmax over the atoms (last axis)."""
        B, A = jnp.asarray(B)[..., None], jnp.asarray(A)[..., None]
        logits = _safe_log(self.probabilities) + B * self.values - A * self.values**2 / 2
        log_z = jax.nn.logsumexp(logits, axis=-1)
        return log_z, jnp.exp(logits - log_z[..., None])

    def log_partition(self, B, A):
        return self._posterior(B, A)[0]

    def mean(self, B, A):
        return jnp.sum(self._posterior(B, A)[1] * self.values, axis=-1)

    def variance(self, B, A):
        pi = self._posterior(B, A)[1]
        mean = jnp.sum(pi * self.values, axis=-1, keepdims=True)
        return jnp.sum(pi * (self.values - mean) ** 2, axis=-1)

    def support(self, order: int, dtype=None):
        del order
        dtype = dtype or jnp.result_type(self.values, float)
        return self.values.astype(dtype), self.probabilities.astype(dtype)

    def _rule(self, x, r, order: int):
        """Panels about each ``B_ij = r (v_i + v_j) / 2 + log(p_j / p_i) / (v_i - v_j)`` (the ``B``
        where atoms ``i`` and ``j`` weigh the same) in ``z = (B - r x) / sqrt(r)``, over the width
        ``1 / (sqrt(r) |v_i - v_j|)``. An atom of probability zero puts its edges out of the way."""
        r = jnp.maximum(r, jnp.finfo(x.dtype).tiny)
        i, j = jnp.triu_indices(self.values.shape[-1], k=1)
        v, log_p = self.values.astype(x.dtype), _safe_log(self.probabilities).astype(x.dtype)
        gap = v[i] - v[j]
        crossing = r * (v[i] + v[j]) / 2 + (log_p[j] - log_p[i]) / gap
        center = (crossing - r * x[:, None]) / jnp.sqrt(r)
        width = jnp.broadcast_to(1 / (jnp.sqrt(r) * jnp.abs(gap)), center.shape)
        return transition_rule(center, width, max(order // 4, 8), x.dtype)

    def sample(self, key, shape, dtype=None):
        atom = jax.random.categorical(key, _safe_log(self.probabilities), shape=shape)
        return self.values[atom].astype(dtype or float)


class SparseRademacher(Discrete):
    r"""``0`` with probability ``1 - rho``, ``+-1`` with probability ``rho / 2`` each, ``rho`` in
    ``(0, 1]``: the :class:`Discrete` prior on ``(-1, 0, 1)``, whose second moment is ``rho``."""

    def __init__(self, rho=1.0):
        rho = jnp.asarray(rho)
        super().__init__(
            jnp.asarray([-1.0, 0.0, 1.0], jnp.result_type(rho, float)),
            jnp.stack([rho / 2, 1 - rho, rho / 2]),
        )


PRIORS: dict[str, type[Prior]] = {
    "gaussian": Gaussian,
    "rademacher": Rademacher,
    "gauss-bernoulli": GaussBernoulli,
    "sparse-rademacher": SparseRademacher,
}
"""The priors by name whose one parameter is their second moment ``rho``
(:class:`Discrete` takes its atoms instead)."""
