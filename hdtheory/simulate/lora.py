r"""Finite-``d`` LoRA fine-tuning by online mini-batch SGD (:class:`~hdtheory.dynamics.LoRA`).

**Setting** (that of :mod:`hdtheory.dynamics.lora`). The frozen directions ``B = [W*; Xi]`` and a
complement ``O`` of ``r`` more are the rows of a uniformly random orthogonal frame scaled to
``|.|^2 = d``; the frozen weights are ``W0 = P B``, ``P = [mu, tau]``, and the adapter starts at
exactly the theory's overlaps, ``V = S0 B + L O`` with ``L L^T = Q0 - S0 S0^T``, and ``U = U0``. Each
step draws ``b = batch`` fresh samples, labels ``sum_m b f*(w*_m.x / sqrt(d)) + sqrt(noise) zeta``
(``f``, ``f*`` the theory's ``kernel`` and ``teacher_kernel``), and updates, with
``g_i = Delta_i c f'(lambda_i)`` at ``W = W0 + U V`` and ``rho_i = V x_i / sqrt(d)``,
``V <- V - (lr(t) / b) sum_i U^T g_i x_i^T / sqrt(d)`` then every row back to ``|v_j|^2 = d``, and
``U <- U - (scale_lr lr(t) / (b d)) sum_i g_i rho_i^T`` (both from the same gradient); time advances
by ``b / d`` per step (``lax.scan`` over steps, ``vmap`` over seeds).

**Observables**, per seed, at each requested time: ``m``, ``n``, ``Q``, ``U`` measured on
``(V, U)``, and the rest of ``theory.observables`` at those statistics (``eg`` the exact population
error there); ``t`` holds the times.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._batch import map_instances
from .._compilation import LONG_RUN
from ..dynamics.lora import LoRA, LoRAState
from ..kernels.multivariate import psd_cholesky
from . import SimulationResult, online_steps, simulate
from .single_index import teacher_batch


def _run(theory: LoRA, key, d: int, bounds):
    b, M = theory.batch, theory.teachers
    frame_key, run_key = jax.random.split(key)
    state = theory.init()
    r, nb = state.S.shape
    frame, _ = jnp.linalg.qr(jax.random.normal(frame_key, (d, nb + r), state.S.dtype))
    frame = frame.T * jnp.sqrt(d)
    B, O = frame[:nb], frame[nb:]
    V = state.S @ B + psd_cholesky(state.Q - state.S @ state.S.T) @ O
    W0 = theory.pretrained() @ B
    c, readout = theory.readouts()
    f = theory.kernel
    teacher_readout = jnp.full((M,), readout, V.dtype)
    sqrt_d = jnp.sqrt(d)

    def step(s, carry):
        V, U = carry
        x, y = teacher_batch(
            theory, jax.random.fold_in(run_key, s), B[:M].T, b, V.dtype, teacher_readout, theory.teacher_kernel
        )
        rho = x @ V.T / sqrt_d
        lam = x @ W0.T / sqrt_d + rho @ U.T
        g = (c * jnp.sum(f(lam), -1) - y)[:, None] * c * f.derivative(lam)  # (b, p)
        eta = theory.lr * theory.rate(s * b / d) / b
        V_new = V - eta * (g @ U).T @ x / sqrt_d
        U = U - theory.scale_lr * eta * g.T @ rho / d
        return V_new * sqrt_d / jnp.linalg.norm(V_new, axis=1, keepdims=True), U

    def segment(carry, bound):
        carry = jax.lax.fori_loop(bound[0], bound[1], step, carry)
        V, U = carry
        return carry, (V @ B.T / d, V @ V.T / d, U)

    _, stats = jax.lax.scan(segment, (V, state.U), bounds)
    return stats


@eqx.filter_jit
def _observables(theory: LoRA, t, S, Q, U):
    """The observables at the simulated overlaps ``(seeds, times, ...)``: one compiled program, not
    one per operation of ``theory.observables``."""
    at = jax.vmap(lambda tt, *s: theory.observables(tt, LoRAState(*s)))
    return jax.vmap(at, in_axes=(None, 0, 0, 0))(t, S, Q, U)


def simulate_lora(theory: LoRA, *, d: int = 1000, seeds: int = 4, key=None, times=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.LoRA`.

    Args:
        times: the times (samples / d) at which to measure, ``[0, 1, 10]`` by default; each is
            rounded to a whole number of steps of ``batch`` samples.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=theory.batch / d)
    run = jax.jit(lambda keys: map_instances(lambda k: _run(theory, k, d, bounds), keys), compiler_options=LONG_RUN)
    S, Q, U = run(jax.random.split(key, seeds))
    t = bounds[:, 1] * theory.batch / d
    observables = _observables(theory, jnp.asarray(t), S, Q, U)
    observables["t"] = np.broadcast_to(t, (seeds, len(t)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]) * theory.batch)


simulate.register(LoRA)(simulate_lora)
