r"""One gradient step of a two-layer network at finite ``d``, and the spectrum of its features
(:class:`~hdtheory.models.learned_spectrum.LearnedSpectrum`).

**Instance.** ``p = round(gamma d)`` rows ``w_i`` uniform on the unit sphere, ``a_i = +-1``, a unit
``beta``; a batch of ``n0 = round(alpha0 d)`` inputs ``x ~ N(0, I_d)`` with labels ``y = g(beta.x) +
sqrt(noise) xi``; the step of the model's docstring on the correlation loss (``sigma'`` by automatic
differentiation); then ``n = round(alpha d)`` fresh inputs, the features ``F = sigma(W_1 X)`` and
``K = F F^T / n``.

**Measured** (``jax.numpy.linalg.eigvalsh`` of ``K``): ``outlier``, the top eigenvalue, and ``edge``,
the second (the edge of the bulk from below). :func:`feature_eigenvalues` gives all the eigenvalues of
one instance, for histograms. The bulk's edge fluctuates by ``O(d^{-2/3})``, an outlier by
``O(d^{-1/2})``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.gcm import RF_ACTIVATIONS
from ..models.learned_spectrum import LearnedSpectrum
from . import SimulationResult, check_size, simulate


def _sizes(theory: LearnedSpectrum, d: int) -> tuple[int, int, int]:
    """``(p, n, n0)``."""
    return tuple(max(round(float(r) * d), 1) for r in (theory.gamma, theory.alpha, theory.alpha0))


@eqx.filter_jit
def _eigenvalues(theory: LearnedSpectrum, key, d: int, p: int, n: int, n0: int):
    dtype = jnp.result_type(theory.eta, float)
    keys = jax.random.split(key, 6)
    sigma, link = RF_ACTIVATIONS[theory.activation], RF_ACTIVATIONS[theory.target]
    W = jax.random.normal(keys[0], (p, d), dtype)
    W = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    a = jax.random.rademacher(keys[1], (p,), dtype)
    beta = jax.random.normal(keys[2], (d,), dtype)
    beta = beta / jnp.linalg.norm(beta)
    X0 = jax.random.normal(keys[3], (n0, d), dtype)
    y = link(X0 @ beta) + jnp.sqrt(theory.noise) * jax.random.normal(keys[4], (n0,), dtype)
    slope = jax.vmap(jax.vmap(jax.grad(sigma)))(W @ X0.T)  # (p, n0)
    W = W + theory.eta / jnp.sqrt(p) * a[:, None] * ((slope * y) @ X0) / n0
    F = sigma(W @ jax.random.normal(keys[5], (n, d), dtype).T)
    return jnp.linalg.eigvalsh(F @ F.T / n)


def feature_eigenvalues(theory: LearnedSpectrum, *, d: int = 500, key=None) -> jax.Array:
    """The ``p`` eigenvalues of ``K`` for one instance at dimension ``d`` (ascending)."""
    key = jax.random.PRNGKey(0) if key is None else key
    return _eigenvalues(theory, key, d, *_sizes(theory, d))


@simulate.register
def simulate_learned_spectrum(theory: LearnedSpectrum, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for
    :class:`~hdtheory.models.learned_spectrum.LearnedSpectrum`; see the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    p, n, _ = _sizes(theory, d)
    samples = [feature_eigenvalues(theory, d=d, key=k) for k in jax.random.split(key, seeds)]
    return SimulationResult.from_samples(
        [{"outlier": values[-1], "edge": values[-2]} for values in samples], d=d, n=n
    )
