r"""Finite-``d`` LoRA fine-tuning by online mini-batch SGD (:class:`~hdtheory.dynamics.LoRA`).

**Setting** (that of :mod:`hdtheory.dynamics.lora`). Teacher ``w*`` uniform on the sphere
``|w*|^2 = d``, ``xi`` uniform on the sphere orthogonal to it, frozen pre-trained weight
``w0 = mu w* + tau xi``; the adapter's direction starts at exactly the theory's overlaps,
``v = m0 w* + n0 xi + sqrt(1 - m0^2 - n0^2) u`` (``u`` uniform on the sphere orthogonal to both),
and its scale at ``a0``. Each step draws ``b = batch`` fresh samples, labels
``f*(w*.x / sqrt(d)) + sqrt(noise) zeta``, and updates, with ``g_i = Delta_i f'(lambda_i)`` at
``w = w0 + a v``, ``v <- v - (lr(t) / b) a sum_i g_i x_i / sqrt(d)`` then ``v <- sqrt(d) v / |v|``,
and ``a <- a - (scale_lr lr(t) / (b d)) sum_i g_i v.x_i / sqrt(d)`` (both from the same gradient);
time advances by ``b / d`` per step (``lax.scan`` over steps, ``vmap`` over seeds).

**Observables**, per seed, at each requested time: ``m``, ``n``, ``a`` measured on ``(v, a)``, and
the rest of ``theory.observables`` at those statistics (``eg`` the exact population error there);
``t`` holds the times.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..dynamics.lora import LoRA, LoRAState
from ..kernels import hermite_series
from . import SimulationResult, online_steps, simulate
from .single_index import teacher_batch


def _sphere_orthogonal(key, d, basis):
    """A uniform direction with ``|u|^2 = d`` orthogonal to the rows of ``basis`` (each ``|.|^2 = d``,
    mutually orthogonal)."""
    u = jax.random.normal(key, (d,))
    u = u - basis.T @ (basis @ u) / d
    return u * jnp.sqrt(d) / jnp.linalg.norm(u)


def _run(theory: LoRA, key, d: int, bounds):
    b = theory.batch
    keys = jax.random.split(key, 4)
    w_star = _sphere_orthogonal(keys[0], d, jnp.zeros((0, d)))
    xi = _sphere_orthogonal(keys[1], d, w_star[None])
    u = _sphere_orthogonal(keys[2], d, jnp.stack([w_star, xi]))
    run_key = keys[3]
    state = theory.init()
    v = state.m * w_star + state.n * xi + jnp.sqrt(1 - state.m**2 - state.n**2) * u
    w0 = theory.mu * w_star + theory.tau * xi
    slope = jax.vmap(jax.grad(lambda z: hermite_series(theory.student, z)))
    sqrt_d = jnp.sqrt(d)

    def step(s, carry):
        v, a = carry
        x, y = teacher_batch(theory, jax.random.fold_in(run_key, s), w_star, b, v.dtype)
        rho = x @ v / sqrt_d
        lam = x @ w0 / sqrt_d + a * rho
        g = (hermite_series(theory.student, lam) - y) * slope(lam)
        eta = theory.lr * theory.rate(s * b / d) / b
        v_new = v - eta * a * (g @ x) / sqrt_d
        a = a - theory.scale_lr * eta * (g @ rho) / d
        return v_new * sqrt_d / jnp.linalg.norm(v_new), a

    def segment(carry, bound):
        carry = jax.lax.fori_loop(bound[0], bound[1], step, carry)
        v, a = carry
        return carry, (v @ w_star / d, v @ xi / d, a)

    _, stats = jax.lax.scan(segment, (v, state.a), bounds)
    return stats


def simulate_lora(theory: LoRA, *, d: int = 1000, seeds: int = 4, key=None, times=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.LoRA`.

    Args:
        times: the times (samples / d) at which to measure, ``[0, 1, 10]`` by default; each is
            rounded to a whole number of steps of ``batch`` samples.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=theory.batch / d)
    m, n, a = jax.jit(jax.vmap(lambda k: _run(theory, k, d, bounds)))(jax.random.split(key, seeds))
    t = bounds[:, 1] * theory.batch / d
    observables = jax.vmap(
        jax.vmap(lambda tt, *s: theory.observables(tt, LoRAState(*s)), in_axes=(0, 0, 0, 0)),
        in_axes=(None, 0, 0, 0),
    )(jnp.asarray(t), m, n, a)
    observables["t"] = np.broadcast_to(t, (seeds, len(t)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]) * theory.batch)


simulate.register(LoRA)(simulate_lora)
