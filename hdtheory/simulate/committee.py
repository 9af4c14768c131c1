r"""Finite-``d`` online SGD of committee machines (:class:`~hdtheory.dynamics.Committee`).

**Setting** (that of :mod:`hdtheory.dynamics.committee`). Teacher weights ``W*`` (``M x d``) with
``W* W*^T / d = T`` exactly (Gram-Schmidt of Gaussian rows); student weights ``W`` (``K x d``) built
so that the initial overlaps are exactly the theory's ``Q0, R0``: ``W = R0 T^-1 W* + C U`` with
``C C^T = Q0 - R0 T^-1 R0^T`` and ``U`` orthonormal rows (norm ``sqrt(d)``) orthogonal to the
teacher's. Then one fresh sample per step, ``x ~ N(0, I_d)``, label
``y = sum_m b_m g*(w*_m.x / sqrt(d)) + sqrt(noise) zeta`` (``g* = theory.teacher_kernel``), and the
SGD step of the module docstring with the theory's learning rates and schedule at time
``t = step / d``, each ``w_k`` then put back on ``|w_k|^2 = d`` when ``geometry="spherical"``
(``lax.scan`` over the steps, ``vmap`` over the seeds). Under ``flow="gradient"`` it is still
online SGD at the theory's ``lr``, whose ``lr -> 0`` limit (with ``time="lr"``) the flow is.

**Observables**, per seed, at each requested time: ``Q, R, T, v`` measured on the weights and
``eg``, the exact population error of those weights (``theory.generalisation_error`` at the
measured overlaps: the student's and teacher's fields on a fresh input are jointly Gaussian with
covariance ``[[Q, R], [R^T, T]]``), under the names of ``Committee.observables``; ``t`` holds the
times. ``mean`` and ``sem`` are arrays over the times.

**In the overlaps** (``method="overlaps"``): the same process, exactly, at a cost per step
independent of ``d``. A step changes the overlaps only through the fields of its input,
``u = (lambda, nu)`` (jointly ``N(0, Omega)``, ``Omega = [[Q, R], [R^T, T]]``, whatever the
weights), and its squared norm ``|x|^2 = z.z + chi^2_{d - K - M}``, with ``z = L^-1 u`` the
coordinates of ``x`` in the weights' span (``Omega = L L^T``) and the chi-square of the rest, taken
at its mean ``d - K - M``. With
``c_k = eta a_k Delta g'(lambda_k)`` the step of the weights is ``-c_k x / sqrt(d)``, so that
``R <- R - c nu^T / d``, ``Q <- Q - (c lambda^T + lambda c^T) / d + c c^T |x|^2 / d^2`` and
``v <- v - eta_v Delta g(lambda) / d`` (times ``1/K`` for the mean readout), then, on the sphere,
``Q_kl / sqrt(Q_kk Q_ll)`` and ``R_km / sqrt(Q_kk)``. The overlaps are a Markov chain, and this is its
transition (for ``Omega`` of full rank, ``d > K + M``), but for the fluctuation of that chi-square:
it enters the step of ``Q`` (and, through the sphere's normalisation, of ``R``) at ``d^(-3/2)``
against the ``d^(-1)`` of the fields' terms, its mean (the SGD-noise term of the ODEs) kept, so that
the variance of the overlaps after a unit of time changes at relative order ``1/d``, below the
``d^(-1/2)`` fluctuations the chain is for (exact sampling of a chi-square each step, a rejection
loop, tripled the cost). ``K + M + 1`` random numbers a step instead of ``d + 1``: escapes at ``d``
in the thousands (``d log d`` steps) over many seeds cost what a short run on the weights does.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._batch import map_instances
from .._compilation import LONG_RUN
from .._theory import Interval, ParameterError, check_integer
from ..dynamics.committee import Committee, CommitteeState
from . import SimulationResult, online_steps, simulate


def _orthonormal_rows(key, rows: int, d: int, dtype):
    """``rows`` orthonormal vectors of ``R^d`` (as rows), uniformly random."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, rows), dtype))
    return (q * jnp.sign(jnp.diagonal(r))).T


def _initial_weights(theory: Committee, key, d: int):
    state = theory.init()
    T, _ = theory._teacher()
    dtype = state.Q.dtype
    K, M = theory.K, theory.M
    basis = _orthonormal_rows(key, K + M, d, dtype) * jnp.sqrt(d)  # rows: |.|^2 = d, orthogonal
    L_T = jnp.linalg.cholesky(T)
    teacher = L_T @ basis[:M]
    # Student rows: R0 T^-1 W* + C U, so that W W*^T / d = R0 and W W^T / d = Q0.
    project = jnp.linalg.solve(T, state.R.T).T
    residual = state.Q - project @ state.R.T
    chol = _psd_factor(residual)
    student = project @ teacher + chol @ basis[M:]
    return student, teacher, state.v


def _psd_factor(matrix):
    values, vectors = jnp.linalg.eigh(0.5 * (matrix + matrix.T))
    return vectors * jnp.sqrt(jnp.clip(values, 0.0))


def _run(theory: Committee, key, d: int, record):
    g, g_star = theory.kernel, theory.teacher_kernel
    K = theory.K
    init_key, run_key = jax.random.split(key)
    W, W_star, v = _initial_weights(theory, init_key, d)
    _, b = theory._teacher()
    b = b / theory.M if theory.output == "mean" else b
    norm = 1 / K if theory.output == "mean" else 1
    time_scale = theory.lr if theory.time == "lr" else 1.0  # theory time per sample / d
    sqrt_d = jnp.sqrt(d)

    def step(carry, s):
        W, v = carry
        x_key, noise_key = jax.random.split(jax.random.fold_in(run_key, s))
        x = jax.random.normal(x_key, (d,), W.dtype)
        nu = W_star @ x / sqrt_d
        y = b @ g_star(nu) + jnp.sqrt(theory.noise) * jax.random.normal(noise_key, (), W.dtype)
        lam = W @ x / sqrt_d
        a = v * norm
        error = a @ g(lam) - y
        eta, eta_v = theory.rates(time_scale * s / d)
        W = W - eta * jnp.outer(error * a * g.derivative(lam), x) / sqrt_d
        v = v - eta_v * norm * error * g(lam) / d
        if theory.geometry == "spherical":
            W = W * (sqrt_d / jnp.linalg.norm(W, axis=1))[:, None]
        return (W, v), None

    def segment(carry, bounds):
        start, stop = bounds
        carry = jax.lax.fori_loop(start, stop, lambda s, c: step(c, s)[0], carry)
        W, v = carry
        return carry, (W @ W.T / d, W @ W_star.T / d, v)

    _, (Q, R, v_t) = jax.lax.scan(segment, (W, v), record)
    return Q, R, v_t, W_star @ W_star.T / d


def _run_overlaps(theory: Committee, key, d: int, record):
    """The chain of the overlaps (module docstring, "In the overlaps")."""
    g, g_star = theory.kernel, theory.teacher_kernel
    K, M = theory.K, theory.M
    state = theory.init()
    T, _ = theory._teacher()
    a_norm = 1 / K if theory.output == "mean" else 1
    time_scale = theory.lr if theory.time == "lr" else 1.0
    dtype = state.Q.dtype

    def step(s, carry):
        Q, R, v = carry
        field_key, noise_key = jax.random.split(jax.random.fold_in(key, s))
        L = jnp.linalg.cholesky(jnp.block([[Q, R], [R.T, T]]))
        z = jax.random.normal(field_key, (K + M,), dtype)
        u = L @ z
        lam, nu = u[:K], u[K:]
        norm2 = z @ z + (d - K - M)  # |x|^2, the part outside the span at its mean
        a, cc = theory._weights(v)
        label_noise = jnp.sqrt(theory.noise) * jax.random.normal(noise_key, (), dtype)
        error = a @ g(lam) + cc[K:] @ g_star(nu) - label_noise
        eta, eta_v = theory.rates(time_scale * s / d)
        c = eta * a * error * g.derivative(lam)
        Q = Q - (jnp.outer(c, lam) + jnp.outer(lam, c)) / d + jnp.outer(c, c) * norm2 / d**2
        R = R - jnp.outer(c, nu) / d
        v = v - eta_v * a_norm * error * g(lam) / d
        if theory.geometry == "spherical":
            n = jnp.sqrt(jnp.diagonal(Q))
            Q, R = Q / jnp.outer(n, n), R / n[:, None]
        return Q, R, v

    def segment(carry, bounds):
        carry = jax.lax.fori_loop(bounds[0], bounds[1], step, carry)
        return carry, carry

    _, (Q, R, v) = jax.lax.scan(segment, (state.Q, state.R, state.v), record)
    return Q, R, v, T


@eqx.filter_jit
def _observables(theory: Committee, Q, R, v):
    """The observables at the simulated overlaps ``(seeds, times, ...)``: one compiled program, not
    one per operation of ``theory.observables``."""
    return jax.vmap(jax.vmap(lambda q, r, vv: theory.observables(0.0, CommitteeState(Q=q, R=r, v=vv))))(Q, R, v)


def simulate_committee(
    theory: Committee, *, d: int = 1000, seeds: int = 4, key=None, times=None, method="weights"
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.Committee`.

    Args:
        times: the times (in the theory's unit, samples / d by default) at which to measure;
            ``[0, 1, 10]`` by default. Each is rounded to a whole number of steps.
        method: ``"weights"``, SGD on the ``d``-dimensional weights, or ``"overlaps"``, the same
            process as the chain of the overlaps (module docstring; ``d > K + M``).
    """
    if method not in ("weights", "overlaps"):
        raise ParameterError(f"parameter 'method' must be one of ['weights', 'overlaps'], got {method!r}")
    if method == "overlaps":
        check_integer("d", d, Interval(theory.K + theory.M + 1))
    key = jax.random.PRNGKey(0) if key is None else key
    per_sample = float(theory.lr) if theory.time == "lr" else 1.0
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=per_sample / d)
    runner = _run if method == "weights" else _run_overlaps
    # Thousands of steps: compiled with LLVM's optimisations even in a process that turned them off
    # (faster_compilation(optimise_backend=False)), where the run took twice as long.
    run = jax.jit(lambda keys: map_instances(lambda k: runner(theory, k, d, bounds), keys), compiler_options=LONG_RUN)
    Q, R, v, T = run(jax.random.split(key, seeds))
    observables = _observables(theory, Q, R, v)
    observables["T"] = jnp.broadcast_to(T[:, None], (seeds, len(bounds)) + T.shape[1:])
    observables["t"] = np.broadcast_to(bounds[:, 1] * per_sample / d, (seeds, len(bounds)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]))


simulate.register(Committee)(simulate_committee)
