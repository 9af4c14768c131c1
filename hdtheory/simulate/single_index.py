r"""Finite-``d`` online mini-batch SGD on a single-index target (:class:`~hdtheory.dynamics.SingleIndex`).

**Setting** (that of :mod:`hdtheory.dynamics.single_index`). Teacher ``w*`` uniform on the sphere
``|w*|^2 = d``; the student starts at exactly the theory's overlaps,
``w = m0 w* + sqrt(q0 - m0^2) u`` with ``u`` uniform on the sphere orthogonal to ``w*``
(``q0 = 1`` on the sphere). Each step draws ``b = batch`` fresh samples ``x ~ N(0, I_d)``, labels
``f*(w*.x / sqrt(d)) + sqrt(noise) zeta``, and takes
``w <- w - (lr(t) / b) sum_i Delta_i f'(lambda_i) x_i / sqrt(d)``, then ``w <- sqrt(d) w / |w|``
on the sphere; time advances by ``b / d`` per step (``lax.scan`` over steps, ``vmap`` over seeds).

**Observables**, per seed, at each requested time: ``m``, ``q``, ``overlap`` measured on ``w``,
``eg`` the exact population error at those overlaps (``theory.observables``), ``iterations``;
``t`` holds the times. ``mean`` and ``sem`` are arrays over the times.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._compilation import LONG_RUN
from ..dynamics.single_index import Overlaps, SingleIndex, hermite_series
from . import SimulationResult, online_steps, simulate


def teacher_batch(theory, key, w_star, b: int, dtype, readout=None, link=None):
    """``b`` fresh samples ``x ~ N(0, I_d)`` and their labels ``f*(w*.x / sqrt(d)) + sqrt(noise) zeta``
    (``f* = link``, by default the Hermite series ``theory.target``), for the online-SGD simulations
    of single-index targets; ``w_star`` of shape ``(d, M)`` with ``readout`` ``b_m``: the committee
    ``sum_m b_m f*(nu_m)``."""
    x_key, noise_key = jax.random.split(key)
    x = jax.random.normal(x_key, (b, w_star.shape[0]), dtype)
    nu = x @ w_star / jnp.sqrt(w_star.shape[0])
    clean = hermite_series(theory.target, nu) if link is None else link(nu)
    if readout is not None:
        clean = clean @ readout
    return x, clean + jnp.sqrt(theory.noise) * jax.random.normal(noise_key, (b,), dtype)


def _run(theory: SingleIndex, key, d: int, bounds):
    b = theory.batch
    init_key, run_key = jax.random.split(key)
    directions = jax.random.normal(init_key, (2, d))
    w_star = directions[0] * jnp.sqrt(d) / jnp.linalg.norm(directions[0])
    u = directions[1] - (directions[1] @ w_star) * w_star / d
    u = u * jnp.sqrt(d) / jnp.linalg.norm(u)
    state = theory.init()
    w = state.m * w_star + jnp.sqrt(state.q - state.m**2) * u
    slope = jax.vmap(jax.grad(lambda z: hermite_series(theory.student, z)))
    sqrt_d = jnp.sqrt(d)

    def step(s, w):
        x, y = teacher_batch(theory, jax.random.fold_in(run_key, s), w_star, b, w.dtype)
        lam = x @ w / sqrt_d
        error = hermite_series(theory.student, lam) - y
        eta = theory.lr * theory.rate(s * b / d)
        w = w - (eta / b) * (error * slope(lam)) @ x / sqrt_d
        if theory.geometry == "spherical":
            w = w * sqrt_d / jnp.linalg.norm(w)
        return w

    def segment(w, bound):
        w = jax.lax.fori_loop(bound[0], bound[1], step, w)
        return w, (w @ w_star / d, w @ w / d)

    _, (m, q) = jax.lax.scan(segment, w, bounds)
    return m, q


@eqx.filter_jit
def _observables(theory: SingleIndex, t, m, q):
    """The observables at the simulated overlaps ``(seeds, times)``: one compiled program, not one
    per operation of ``theory.observables``."""
    at = jax.vmap(lambda tt, mm, qq: theory.observables(tt, Overlaps(m=mm, q=qq)))
    return jax.vmap(at, in_axes=(None, 0, 0))(t, m, q)


def simulate_single_index(
    theory: SingleIndex, *, d: int = 1000, seeds: int = 4, key=None, times=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.SingleIndex`.

    Args:
        times: the times (samples / d) at which to measure, ``[0, 1, 10]`` by default; each is
            rounded to a whole number of steps of ``batch`` samples.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=theory.batch / d)
    run = jax.jit(jax.vmap(lambda k: _run(theory, k, d, bounds)), compiler_options=LONG_RUN)
    m, q = run(jax.random.split(key, seeds))
    t = bounds[:, 1] * theory.batch / d
    observables = _observables(theory, jnp.asarray(t), m, q)
    observables["t"] = np.broadcast_to(t, (seeds, len(t)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]) * theory.batch)


simulate.register(SingleIndex)(simulate_single_index)
