r"""One gradient step of a two-layer network at finite ``d``, and the spectrum of its features
(:class:`~hdtheory.models.learned_spectrum.LearnedSpectrum`; after the step ``eta = eta~ sqrt(p)``,
:class:`~hdtheory.models.giant_spectrum.GiantSpectrum`), and ridge on the stepped features
(:func:`one_step_ridge_errors`; :class:`~hdtheory.models.giant_step.GiantStep`, the step
``eta = eta~ sqrt(p)``).

**Instance.** ``p = round(gamma d)`` rows ``w_i`` uniform on the unit sphere, ``a_i = +-1``, a unit
``beta``; a batch of ``n0 = round(alpha0 d)`` inputs ``x ~ N(0, I_d)`` with labels ``y = g(beta.x) +
sqrt(noise) xi``; the step of the model's docstring on the correlation loss (``sigma'`` by automatic
differentiation); then ``n = round(alpha d)`` fresh inputs, the features ``F = sigma(W_1 X)`` and
``K = F F^T / n``.

**Measured** (``jax.numpy.linalg.eigvalsh`` of ``K``): ``outlier``, the top eigenvalue, and ``edge``,
the second (the edge of the bulk from below); for ``GiantSpectrum`` the top one is the features'
mean, measured as ``outlier_per_unit = lambda_max / p``. :func:`feature_eigenvalues` gives all the
eigenvalues of one instance, for histograms. The bulk's edge fluctuates by ``O(d^{-2/3})``, an outlier by
``O(d^{-1/2})``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..models.gcm import RF_ACTIVATIONS, gaussian_equivalence
from ..models.giant_spectrum import GiantSpectrum
from ..models.giant_step import GiantStep
from ..models.learned_spectrum import LearnedSpectrum, one_step_weights
from . import SimulationResult, check_size, simulate


def _sizes(theory: LearnedSpectrum | GiantSpectrum, d: int) -> tuple[int, int, int]:
    """``(p, n, n0)``."""
    return tuple(max(round(float(r) * d), 1) for r in (theory.gamma, theory.alpha, theory.alpha0))


@eqx.filter_jit
def _eigenvalues(theory: LearnedSpectrum, key, d: int, p: int, n: int, n0: int):
    w_key, x_key = jax.random.split(key)
    W, _ = one_step_weights(w_key, d, p, n0, theory.eta, theory.activation, theory.target, theory.noise)
    F = RF_ACTIVATIONS[theory.activation](W @ jax.random.normal(x_key, (n, d), W.dtype).T)
    return jnp.linalg.eigvalsh(F @ F.T / n)


def _network(theory: LearnedSpectrum | GiantSpectrum, d: int) -> LearnedSpectrum:
    """The network of ``theory`` at dimension ``d``: a ``GiantSpectrum``'s step is ``eta~ sqrt(p)``."""
    if isinstance(theory, LearnedSpectrum):
        return theory
    p, *_ = _sizes(theory, d)
    return LearnedSpectrum(eta=theory.eta * p**0.5, gamma=theory.gamma, alpha=theory.alpha, alpha0=theory.alpha0,
                           noise=theory.noise, activation=theory.activation, target=theory.target)


def feature_eigenvalues(theory: LearnedSpectrum | GiantSpectrum, *, d: int = 500, key=None) -> jax.Array:
    """The ``p`` eigenvalues of ``K`` for one instance at dimension ``d`` (ascending)."""
    key = jax.random.PRNGKey(0) if key is None else key
    return _eigenvalues(_network(theory, d), key, d, *_sizes(theory, d))


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


@simulate.register
def simulate_giant_spectrum(theory: GiantSpectrum, *, d: int = 500, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for
    :class:`~hdtheory.models.giant_spectrum.GiantSpectrum`: networks stepped with ``eta = eta~
    sqrt(p)`` at dimension ``d``; ``outlier_per_unit`` (the top eigenvalue over ``p``) and ``edge``
    (the second); see the module docstring."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    p, n, _ = _sizes(theory, d)
    samples = [feature_eigenvalues(theory, d=d, key=k) for k in jax.random.split(key, seeds)]
    return SimulationResult.from_samples(
        [{"outlier_per_unit": values[-1] / p, "edge": values[-2]} for values in samples], d=d, n=n
    )


@jax.jit
def _ridge_errors(X, y, X_test, y_test, lam, z_test):
    """Ridge on the features ``X (n, p)``: ``(test_error_total, test_error)`` on held-out features."""
    p = X.shape[1]
    w = jnp.linalg.solve(X.T @ X / p + lam * jnp.eye(p, dtype=X.dtype), X.T @ y / jnp.sqrt(p))
    f = X_test @ w / jnp.sqrt(p)
    return jnp.mean((y_test - f) ** 2), jnp.mean((z_test - f) ** 2)


def _stepped_ridge(activation, target, gamma, alpha, eta, alpha0, noise, lam, d, keys, test, reference):
    """Ridge on the features of networks stepped with each of ``keys``: ``test_error_total`` against
    the labels and ``test_error`` against ``reference(X_test, beta)``."""
    sigma, link = RF_ACTIVATIONS[activation], RF_ACTIVATIONS[target]
    p, n, n0 = (max(round(float(r) * d), 1) for r in (gamma, alpha, alpha0))
    samples = []
    for key in keys:
        W, beta = one_step_weights(key, d, p, n0, eta, activation, target, noise)
        x_key, t_key, e_key = jax.random.split(jax.random.fold_in(key, 1), 3)
        X, X_test = jax.random.normal(x_key, (n, d)), jax.random.normal(t_key, (test, d))
        xi = jnp.sqrt(noise) * jax.random.normal(e_key, (n + test,))
        y, y_test = link(X @ beta) + xi[:n], link(X_test @ beta) + xi[n:]
        total, excess = _ridge_errors(sigma(X @ W.T), y, sigma(X_test @ W.T), y_test, lam, reference(X_test, beta))
        samples.append({"test_error_total": total, "test_error": excess})
    return SimulationResult.from_samples(samples, d=d, n=n)


def one_step_ridge_errors(
    activation="erf", target="tanh", gamma=1.0, alpha=2.0, eta=0.0, alpha0=2.0, noise=0.0, lam=0.1, *,
    d: int = 300, keys, test: int = 4000,
) -> SimulationResult:
    """Ridge regression (``sum (y - w.v / sqrt(p))^2 / 2 + (lam / 2)|w|^2``) on the features of a
    network stepped at dimension ``d`` (:func:`~hdtheory.models.learned_spectrum.one_step_weights`
    with each of ``keys``, as :func:`~hdtheory.models.learned_spectrum.one_step_ridge` draws them),
    trained on ``n = alpha d`` fresh samples and measured on ``test`` more: ``test_error_total``
    (against the labels) and ``test_error`` (against the target's linear part ``c_1 beta.x``)."""
    _, c1, _ = gaussian_equivalence(target)
    return _stepped_ridge(activation, target, gamma, alpha, eta, alpha0, noise, lam, d, keys, test,
                          lambda X, beta: c1 * X @ beta)


@simulate.register
def simulate_giant_step(theory: GiantStep, *, d: int = 400, seeds: int = 4, key=None, test: int = 4000) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.giant_step.GiantStep`: the
    step ``eta = eta~ sqrt(p)`` at dimension ``d``, then ridge on ``n = alpha d`` fresh samples
    (``sum (y - w.v / sqrt(p))^2 / 2 + (lam / 2)|w|^2``), measured on ``test`` more:
    ``test_error_total`` against the labels, ``test_error`` against the noiseless target."""
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    p = max(round(float(theory.gamma) * d), 1)
    link = RF_ACTIVATIONS[theory.target]
    return _stepped_ridge(
        theory.activation, theory.target, theory.gamma, theory.alpha, theory.eta * p**0.5, theory.alpha0,
        theory.noise, theory.lam, d, jax.random.split(key, seeds), test, lambda X, beta: link(X @ beta),
    )
