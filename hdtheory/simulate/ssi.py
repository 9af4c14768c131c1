r"""Finite-``d`` online SGD on a sequence single-index target (:class:`~hdtheory.dynamics.SequenceSingleIndex`).

**Setting** (that of :mod:`hdtheory.dynamics.ssi`). Teacher ``w*`` uniform on the sphere
``|w*|^2 = d``, the positional direction ``p`` uniform on the sphere ``|p|^2 = d`` orthogonal to
``w*``; the student starts at exactly the theory's overlaps,
``w = m0 w* + e0 p + sqrt(q0 - m0^2 - e0^2) u`` with ``u`` uniform on the sphere orthogonal to both
(``q0 = 1`` on the sphere). Each step draws ``b = batch`` sequences of ``L`` tokens
``x_l ~ N(0, I_d)``, their labels ``f*(X w* / sqrt(d)) + sqrt(noise) zeta``, feeds the student the
encoded tokens ``x_l + c_l p / sqrt(d)`` and takes
``w <- w - (lr(t) / b) sum_i sum_l G_il (x_il + c_l p / sqrt(d)) / sqrt(d)`` (``G = d loss / dz``),
then ``w <- sqrt(d) w / |w|`` on the sphere; time advances by ``b / d`` per step (``lax.scan`` over
steps, ``vmap`` over seeds).

**Observables**, per seed, at each requested time: ``m``, ``e``, ``q``, ``overlap``, ``positional``
measured on ``w``, ``eg`` the exact population error at those overlaps (``theory.observables``);
``t`` holds the times. ``mean`` and ``sem`` are arrays over the times.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._compilation import LONG_RUN
from ..dynamics.ssi import SequenceOverlaps, SequenceSingleIndex
from . import SimulationResult, online_steps, simulate


def _sphere(v, d):
    return v * jnp.sqrt(d) / jnp.linalg.norm(v)


def _run(theory: SequenceSingleIndex, key, d: int, bounds):
    init_key, run_key = jax.random.split(key)
    directions = jax.random.normal(init_key, (3, d))
    w_star = _sphere(directions[0], d)
    p = _sphere(directions[1] - (directions[1] @ w_star) * w_star / d, d)
    u = directions[2] - (directions[2] @ w_star) * w_star / d - (directions[2] @ p) * p / d
    u = _sphere(u, d)
    state = theory.init()
    w = state.m * w_star + state.e * p + jnp.sqrt(state.q - state.m**2 - state.e**2) * u
    sqrt_d = jnp.sqrt(d)
    c = theory.encoding(w.dtype)
    b = theory.batch

    def step(s, w):
        x_key, noise_key = jax.random.split(jax.random.fold_in(run_key, s))
        x = jax.random.normal(x_key, (b, theory.L, d), w.dtype)
        y = jax.vmap(theory.f_star)(x @ w_star / sqrt_d)
        y = y + jnp.sqrt(theory.noise) * jax.random.normal(noise_key, y.shape, w.dtype)
        encoded = x + c[:, None] * p[None, :] / sqrt_d
        z = encoded @ w / sqrt_d
        eta = theory.lr * theory.rate(s * b / d) / b
        w = w - eta * jnp.einsum("il,ild->d", jax.vmap(theory.loss_gradient)(z, y), encoded) / sqrt_d
        if theory.geometry == "spherical":
            w = _sphere(w, d)
        return w

    def segment(w, bound):
        w = jax.lax.fori_loop(bound[0], bound[1], step, w)
        return w, (w @ w_star / d, w @ p / d, w @ w / d)

    _, (m, e, q) = jax.lax.scan(segment, w, bounds)
    return m, e, q


def simulate_ssi(
    theory: SequenceSingleIndex, *, d: int = 1000, seeds: int = 4, key=None, times=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.SequenceSingleIndex`.

    Args:
        times: the times (samples / d) at which to measure, ``[0, 1, 10]`` by default; each is
            rounded to a whole number of steps of ``batch`` sequences.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=theory.batch / d)
    run = jax.jit(jax.vmap(lambda k: _run(theory, k, d, bounds)), compiler_options=LONG_RUN)
    m, e, q = run(jax.random.split(key, seeds))
    t = bounds[:, 1] * theory.batch / d
    measure = lambda tt, mm, ee, qq: theory.observables(tt, SequenceOverlaps(m=mm, e=ee, q=qq))
    observables = jax.jit(jax.vmap(jax.vmap(measure), in_axes=(None, 0, 0, 0)))(jnp.asarray(t), m, e, q)
    observables["t"] = np.broadcast_to(t, (seeds, len(t)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]) * theory.batch)


simulate.register(SequenceSingleIndex)(simulate_ssi)
