r"""Variational inference at finite dimension (:class:`~hdtheory.dynamics.VariationalMixture`).

**Setting** (that of :mod:`hdtheory.dynamics.vi`) in ``d`` dimensions: the target's mean ``mu``
and the variational means ``m_1, m_2`` are vectors of ``R^d`` that realise the theory's initial
overlaps exactly (their Gram matrix, in a random orthonormal frame). Each step of gradient descent
draws ``samples`` fresh ``z ~ N(0, I_d)`` per component, forms ``x = m_k + sqrt(Delta) z`` and
differentiates (``jax.grad``, through the sample: the reparameterisation trick) the Monte Carlo
estimate of the tempered reverse KL,

.. math:: \hat F = \sum_k \sigma_k \frac{1}{S} \sum_s \big[\log q(x_{ks}) - \beta(t) \log p(x_{ks})\big],

with ``log q`` and ``log p`` the ``d``-dimensional mixture log-densities (constants dropped), then
``m <- m - lr dt grad_m``, ``a <- a - lr_weights dt grad_a``; time advances by ``dt``
(``lax.scan`` over the recorded segments, ``vmap`` over seeds). The mean of the step is the
theory's field; the Monte Carlo noise moves the overlaps by ``O(sqrt(dt / samples))`` per unit
time (and, at ``beta < 1``, adds ``O(d dt / samples)`` to the squared norms), Euler's step
``O(dt)``. Nothing here uses the theory's reduction: the check is of the summary-statistics
equations against the flow of the means themselves.

**Observables**, per seed, at each requested time: the theory's observables at the simulated
overlaps (``kl`` is the theory's Gaussian expectation at those overlaps), and ``t``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._batch import map_instances
from .._compilation import LONG_RUN
from ..dynamics.vi import VariationalMixture, VIState
from . import SimulationResult, online_steps, simulate


def _frame(theory: VariationalMixture, key, d: int, dtype):
    """``mu`` and the means ``m`` (2, d) with the theory's initial overlaps, in a random frame."""
    state = theory.init()
    gram = jnp.zeros((3, 3), dtype).at[1:, 1:].set(state.Q).at[0, 0].set(theory.mu2)
    gram = gram.at[0, 1:].set(state.M).at[1:, 0].set(state.M)
    values, vectors = jnp.linalg.eigh(gram)
    rows = vectors * jnp.sqrt(jnp.maximum(values, 0.0))  # rows @ rows.T = gram
    frame, _ = jnp.linalg.qr(jax.random.normal(key, (d, 3), dtype))
    vectors = rows @ frame.T
    return vectors[0], vectors[1:], state.a


def _objective(theory: VariationalMixture, params, mu, z, beta):
    m, a = params
    sigma = jnp.stack([jax.nn.sigmoid(a), jax.nn.sigmoid(-a)])
    x = m[:, None, :] + jnp.sqrt(theory.delta) * z  # (2, S, d)

    def log_mixture(log_weights, means):
        distances = jnp.sum((x[:, :, None, :] - means) ** 2, -1)  # (2, S, 2)
        return jax.nn.logsumexp(log_weights - distances / (2 * theory.delta), axis=-1)

    log_q = log_mixture(jax.nn.log_sigmoid(jnp.stack([a, -a])), m)
    log_rho = jnp.stack([jnp.log(theory.rho), jnp.log1p(-theory.rho)])
    log_p = log_mixture(log_rho, jnp.stack([mu, -mu]))
    return sigma @ jnp.mean(log_q - beta * log_p, axis=1)


def _run(theory: VariationalMixture, key, bounds, d: int, samples: int, dt: float):
    dtype = jnp.result_type(theory.mu2, float)
    frame_key, key = jax.random.split(key)
    mu, m, a = _frame(theory, frame_key, d, dtype)
    gradient = jax.grad(lambda p, z, beta: _objective(theory, p, mu, z, beta))

    def step(s, params):
        z = jax.random.normal(jax.random.fold_in(key, s), (2, samples, d), dtype)
        g_m, g_a = gradient(params, z, theory.beta(s * dt))
        return params[0] - theory.lr * dt * g_m, params[1] - theory.lr_weights * dt * g_a

    def segment(params, bound):
        params = jax.lax.fori_loop(bound[0], bound[1], step, params)
        m, a = params
        return params, (m @ m.T, m @ mu, a)

    _, (Q, M, a) = jax.lax.scan(segment, (m, a), bounds)
    return Q, M, a


@eqx.filter_jit
def _observables(theory: VariationalMixture, t, Q, M, a):
    """The observables at the simulated states ``(seeds, times, ...)``: one compiled program, not one
    per operation of ``theory.observables``."""
    return jax.vmap(jax.vmap(lambda t, Q, M, a: theory.observables(t, VIState(Q, M, a))))(t, Q, M, a)


def simulate_vi(
    theory: VariationalMixture, *, d: int = 256, seeds: int = 4, key=None, times=None,
    dt: float = 0.01, samples: int = 64,
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.VariationalMixture`.

    Args:
        times: the times at which to measure, ``[0, 1, 10]`` by default; each is rounded to a whole
            number of steps ``dt``.
        dt: the step of gradient descent (in the flow's time).
        samples: Monte Carlo samples per component and step.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=dt)
    if not (isinstance(samples, (int, np.integer)) and samples >= 1) or not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"samples must be an integer >= 1 and dt > 0, got {samples!r} and {dt!r}")
    one = lambda k: _run(theory, k, bounds, d, samples, dt)  # noqa: E731
    run = jax.jit(lambda keys: map_instances(one, keys), compiler_options=LONG_RUN)
    Q, M, a = run(jax.random.split(key, seeds))
    t = jnp.asarray(bounds[:, 1] * dt, Q.dtype)
    observables = _observables(theory, jnp.broadcast_to(t, a.shape), Q, M, a)
    observables["t"] = np.broadcast_to(np.asarray(t), a.shape)
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]))


simulate.register(VariationalMixture)(simulate_vi)
