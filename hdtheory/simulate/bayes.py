r"""GAMP at finite ``d`` for the Bayes-optimal generalised linear model (:class:`~hdtheory.BayesGLM`).

**Instance.** ``w*`` with i.i.d. entries from ``theory.prior_fn``; ``n = round(alpha d)`` inputs
``x_i ~ N(0, I_d)``; labels drawn by ``theory.channel_fn.sample`` from ``z_i = w*.x_i / sqrt(d)``.

**Algorithm** (generalised approximate message passing, Rangan 2011; in the form of Zdeborova and
Krzakala 2016, Adv. Phys. 65, 453, and of Barbier et al. 2019, with scalar variances). With
``F = X / sqrt(d)``, from ``w_hat = 0``, ``v = rho`` (the prior's second moment; the state
``q = 0``) and ``g = 0``, each iteration

.. math::
    V = \overline{v}, \quad \omega = F \hat w - V g, \quad g = g_{out}(y, \omega, V), \quad
    A = -\alpha\, \overline{\partial_\omega g_{out}}, \quad B = F^T g + A \hat w, \quad
    \hat w = f_a(B, A), \quad v = f_v(B, A),

(bars are averages over the entries), with the channel's ``g_out = d_omega log Z_out`` and the
prior's posterior mean and variance. State evolution predicts ``|w_hat_t - w*|^2 / d -> rho - q_t``
with ``q_0 = 0`` and ``q_{t+1} = theory.update(q_t)``: :func:`hdtheory.iterate` from the state
``0.0``.

:func:`gamp_errors` returns the squared error after every iteration; :func:`simulate` the
observables of the last iterate: ``m = w*.w_hat / d`` and ``q = |w_hat|^2 / d`` (equal at large ``d``,
by the Nishimori identity), ``mmse = |w_hat - w*|^2 / d``, and ``gen_error``, the excess test error
of the prediction from ``w_hat`` (``theory.channel_fn.test_errors(m, q, |w*|^2 / d)``; for the
classification channels it is the Bayes-optimal error when ``w_hat`` is the posterior mean).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.bayes import BayesGLM
from . import SimulationResult, _layers, bucket, check_size, simulate


def _refuse_generative(theory: BayesGLM):
    if theory.prior == "generative":
        raise NotImplementedError("GAMP with a generative prior is simulated by generative_gamp_errors")


def _draw(theory: BayesGLM, key, n: int, d: int):
    """``(X, y, w*, weight)``: ``n`` samples in :func:`~hdtheory.simulate.bucket` ``(n)`` rows, the
    rows past ``n`` zero with weight zero."""
    w_key, x_key, y_key = jax.random.split(key, 3)
    w_star = theory.prior_fn.sample(w_key, (d,))
    weight = jnp.arange(bucket(n)) < n
    X = jax.random.normal(x_key, (weight.size, d)) * weight[:, None]
    return X, theory.channel_fn.sample(y_key, X @ w_star / jnp.sqrt(d)), w_star, weight


@eqx.filter_jit
def gamp(theory: BayesGLM, X, y, steps: int, weight=None):
    """The GAMP iterates ``w_hat_t``, ``t = 0..steps`` (``w_hat_0 = 0``), stacked on axis 0, on the
    samples where ``weight`` (a boolean per row; all by default) holds."""
    rows, d = X.shape
    weight = jnp.ones(rows, bool) if weight is None else weight
    F = X / jnp.sqrt(d)
    prior, channel = theory.prior_fn, theory.channel_fn

    def dg(y, omega, V):
        return jax.jvp(lambda o: channel.dlog_partition(y, o, V), (omega,), (jnp.ones_like(omega),))[1]

    def step(carry, _):
        w, v, g = carry
        V = jnp.mean(v)
        omega = F @ w - V * g
        g = jnp.where(weight, channel.dlog_partition(y, omega, V), 0.0)
        A = -jnp.sum(jnp.where(weight, dg(y, omega, V), 0.0)) / d  # alpha times the samples' mean
        B = F.T @ g + A * w
        w, v = prior.mean(B, A), prior.variance(B, A)
        return (w, v, g), w

    w0 = jnp.zeros(d, X.dtype)
    init = (w0, jnp.full(d, prior.rho, X.dtype), jnp.zeros(rows, X.dtype))
    _, ws = jax.lax.scan(step, init, None, length=steps)
    return jnp.concatenate([w0[None], ws])


def gamp_errors(theory: BayesGLM, *, d: int = 1000, seeds: int = 4, steps: int = 20, key=None):
    """``|w_hat_t - w*|^2 / d`` for ``t = 0..steps`` over ``seeds`` instances: shape ``(seeds, steps + 1)``."""
    _refuse_generative(theory)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    errors = []
    for seed_key in jax.random.split(key, seeds):
        X, y, w_star, weight = _draw(theory, seed_key, n, d)
        ws = gamp(theory, X, y, steps, weight)
        errors.append(jnp.mean((ws - w_star) ** 2, axis=1))
    return jnp.stack(errors)


@simulate.register
def simulate_bayes_glm(
    theory: BayesGLM, *, d: int = 1000, seeds: int = 4, key=None, steps: int = 100
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.BayesGLM`: GAMP run for ``steps``
    iterations; see the module docstring."""
    check_size(d, seeds)
    _refuse_generative(theory)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    samples = []
    for seed_key in jax.random.split(key, seeds):
        X, y, w_star, weight = _draw(theory, seed_key, n, d)
        w = gamp(theory, X, y, steps, weight)[-1]
        m, q, rho = w_star @ w / d, w @ w / d, w_star @ w_star / d
        gen_error, _ = theory.channel_fn.test_errors(m, q, rho)
        samples.append({"m": m, "q": q, "mmse": jnp.mean((w - w_star) ** 2), "gen_error": gen_error})
    return SimulationResult.from_samples(samples, d=d, n=n)


@eqx.filter_jit
def _generative_trajectories(theory: BayesGLM, keys, n: int, k: tuple[int, ...], snr0, steps: int) -> dict:
    """The errors of every iterate of every seed: arrays ``(seeds, steps + 1)``."""
    stack, channel = theory.prior_fn, theory.channel_fn
    d = k[-1]

    def dg(y, omega, V):
        return jax.jvp(lambda o: channel.dlog_partition(y, o, V), (omega,), (jnp.ones_like(omega),))[1]

    def one(key):
        layer_key, x_key, y_key = jax.random.split(key, 3)
        w_star, z_star, hidden, Fs, start = _layers.draw(stack, layer_key, k, snr0)
        F = jax.random.normal(x_key, (n, d)) / jnp.sqrt(d)
        y = channel.sample(y_key, F @ w_star)

        def step(carry, _):
            w, v, g, layers = carry
            V = jnp.mean(v)
            omega = F @ w - V * g
            g = channel.dlog_partition(y, omega, V)
            A = -jnp.sum(dg(y, omega, V)) / d
            w, v, layers = _layers.step(stack, Fs, layers, F.T @ g + A * w, A)
            return (w, v, g, layers), _layers.errors(w_star, z_star, hidden, w, layers)

        w0 = jnp.zeros(d)
        carry = (w0, jnp.full(d, stack.rho), jnp.zeros(n), start)
        first = _layers.errors(w_star, z_star, hidden, w0, start)
        _, history = jax.lax.scan(step, carry, None, length=steps)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, history)

    return jax.vmap(one)(keys)


def generative_gamp_errors(theory: BayesGLM, *, d: int = 1000, seeds: int = 4, steps: int = 10, snr0=0.5, key=None):
    """GAMP with multi-layer AMP through a generative prior (:mod:`hdtheory.simulate._layers`): the
    errors ``mmse`` (of ``w``), ``mmse_z`` and, for a stack, ``mmse_h{l}`` after ``t = 0..steps``
    iterations, each ``(seeds, steps + 1)``, from ``w_0 = 0`` and a side observation of the latent at
    SNR ``snr0``. State evolution predicts ``hd.iterate(theory, steps, init=s_0)`` with
    ``s_0 = (0, q_z, 0, ..., 0)``, ``q_z = snr0 / (1 + snr0)`` for the Gaussian latent (the latent
    prior's ``overlap(snr0)``)."""
    check_size(d, seeds)
    if theory.prior != "generative":
        raise NotImplementedError("generative_gamp_errors is the model with prior='generative'")
    n = max(round(float(theory.alpha) * d), 1)
    k = _layers.widths(theory.prior_fn, d)
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, seeds)
    return _generative_trajectories(theory, keys, n, k, jnp.asarray(snr0, float), steps)
