r"""Finite-``d`` simulations of regularised ERM on isotropic Gaussian data (:class:`~hdtheory.ERM`).

**Setting** (that of :mod:`hdtheory.models.erm`). ``n = round(alpha d)`` samples
``x_i ~ N(0, I_d)``; teacher weights with i.i.d. components from ``theory.prior`` (Gaussian, or
Gauss-Bernoulli: zero with probability ``1 - sparsity``), rescaled onto the sphere
``|w*|^2 = rho d`` (uniform on it for the Gaussian prior; fixing the norm, rather than drawing
``w* ~ N(0, rho I_d)``, removes an ``O(1 / sqrt(d))`` fluctuation of ``m`` that is no part of the
theory, which sees the norm only through ``rho = lim |w*|^2 / d``); labels ``y_i`` drawn by ``theory.channel.sample`` from the teacher's field
``z_i = w*.x_i / sqrt(d)``. Elliptical data (``theory.scale``): ``x_i = sqrt(omega_i) z_i`` with
scales drawn by ``theory.draw_scales``, for the training, validation and test samples alike, and
labels from ``theory.channel_at(omega_i)`` (the noise scaled with the sample under
``noise_scaling=joint``). The estimator is

.. math:: \hat w = \arg\min_w \sum_i l(y_i, w \cdot x_i / \sqrt{d}) + \frac{\lambda}{2} |w|^2 ,

with ``lam`` multiplying the penalty as written and ``l = theory.loss_fn``; the other penalties
(``l1``, ``elastic-net``, ``lp``: ``theory.penalty_fn``) replace ``(lam / 2) |w|^2``. Solvers, for the
ridge: the square loss in closed form (a Cholesky solve); logistic and Huber by Newton's method on the weights
(Hessian ``X^T diag(l'') X / d + lam I``, backtracking line search on the objective, stopped when
the gradient norm falls below 1e-10, 1e-5 in float32, of its value at ``w = 0``); the non-convex
Tukey and Cauchy losses by a local search, the same Newton's method (the curvature clipped at zero
where the Hessian is not positive definite) from ``w = 0``, the ridge fit and the Huber fit of
threshold ``c``, keeping the stationary point of least objective (the global minimiser only if one
start reaches it); hinge by
scikit-learn's ``LinearSVC`` on the features ``x / sqrt(d)`` with ``C = 1 / lam``, whose objective
``|w|^2 / 2 + C sum_i hinge`` is this one divided by ``lam``; the absolute loss, and the hinge loss
with sample weights other than zero or one (the bootstrap's counts), by the dual box-constrained
quadratic program (``_box_dual``: L-BFGS-B, then active-set steps, checked by a duality gap below
1e-10 of the objective). The other penalties with a smooth loss
(square, logistic, Huber): FISTA (Beck & Teboulle 2009) with the penalty's prox as the proximal
step, step ``1 / L`` with ``L = max l'' |X|_2^2 / d``, restarted whenever the momentum points uphill
(O'Donoghue & Candes 2015), stopped when the minimum-norm subgradient of the objective falls below
1e-9 (1e-4 in float32) of the gradient of the loss at ``w = 0`` (a ``RuntimeError`` if not within
``max_steps``); the hinge loss with them is not simulated (``NotImplementedError``). ``lam = 0``
with the logistic or hinge loss (the data may be separable) is not simulated.

**Observables**, per seed, named and normalised as in ``ERM.observables``: ``m = w*.w / d``,
``q = |w|^2 / d``; ``test_error`` and ``test_error_total`` from
``theory.test_errors(m, q, |w*|^2 / d)``, the exact population errors of the fitted ``w``
(its field on a fresh input is jointly Gaussian with the teacher's, given the input's scale); ``train_loss``, the average
training loss (penalty excluded); ``norm = sqrt(q)``; ``angle`` between ``w`` and ``w*`` in
radians; ``weight_error = |w - w*|^2 / d`` and ``sparsity_hat``, the fraction of components of ``w``
that are exactly zero. ``V``, the conjugates and ``at_stability`` are not measured. One diagnostic is added:
``test_error_empirical``, the excess test error measured on ``max(n', 10000)`` fresh samples (one
held-out set, independent of the training sets, shared by the seeds; ``n'`` below): the 0-1 error of
``sign(w.x / sqrt(d))`` against the noiseless ``sign(z)`` for the classification channels, the
mean squared error against ``z`` for the linear one. For the classification teachers on Gaussian data, the
calibration of the confidence on held-out data (``confidence``, ``ece``, ``test_nll``, ``brier``) and
the temperatures a user fits on a validation set of ``n`` fresh samples
(``temperature_validation``, ``ec_temperature_validation``); see ``_calibration``. The theory's
``optimal_temperature`` and ``ec_temperature`` are compared with these.

**Compilation.** The training and validation sets are held in ``n' = bucket(n) >= n`` rows
(:func:`hdtheory.simulate.bucket`: eight sizes per octave), the rows past ``n`` zero and weighted
zero: a sweep over ``alpha`` compiles the fits for a few sizes, not for every ``n``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..models.erm import ERM
from . import SimulationResult, bucket, check_size, simulate


@simulate.register
def simulate_erm(theory: ERM, *, d: int = 1000, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.ERM`; see the module docstring.

    Raises:
        ValueError: ``lam = 0`` with the logistic or hinge loss.
        NotImplementedError: the hinge loss with a penalty other than the ridge.
        RuntimeError: Newton's method or FISTA did not converge.
    """
    _check_fit(theory, d, seeds)
    if theory.penalty != "ridge" and theory.loss == "hinge":
        raise NotImplementedError(f"penalty={theory.penalty!r} with loss='hinge' is not simulated")
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    rows = bucket(n)
    test_key, *seed_keys = jax.random.split(key, seeds + 1)
    # One held-out set, independent of every training set, serves all the seeds.
    X_test = _scaled(theory, test_key, jax.random.normal(test_key, (max(rows, 10_000), d)))
    samples = []
    for seed_key in seed_keys:
        teacher_key, train_key, validation_key = jax.random.split(seed_key, 3)
        w_star = _teacher(theory, teacher_key, d)
        X, y, weight = _draw_like(theory, train_key, w_star, n)
        w = _fit(theory, X, y, weight)
        sample = _observables(theory, w, w_star, X, y, weight, X_test)
        if theory.channel.classification and theory.scale == "none":
            X_val, y_val, weight_val = _draw_like(theory, validation_key, w_star, n)
            sample |= _calibration(theory, w, w_star, X_test, X_val, y_val, weight_val)
        samples.append(sample)
    return SimulationResult.from_samples(samples, d=d, n=n)


def _check_fit(theory: ERM, d: int, seeds: int) -> None:
    """The checks of a finite-size ERM fit: its size, and a minimiser that exists."""
    if float(theory.lam) == 0 and theory.loss in ("logistic", "hinge"):
        raise ValueError(f"lam=0 with loss={theory.loss!r} is not simulated (separable data)")
    if float(theory.lam) == 0 and theory.loss in ("tukey", "cauchy"):
        raise ValueError(f"lam=0 with loss={theory.loss!r} is not simulated (the local search needs the ridge: its Newton matrix may be singular without it)")
    if theory.loss == "absolute" and theory.penalty != "ridge":
        raise NotImplementedError(f"penalty={theory.penalty!r} with loss='absolute' is not simulated")
    check_size(d, seeds)


def _teacher(theory: ERM, key, d: int):
    """The teacher ``w*``: i.i.d. components from the prior, rescaled to ``|w*|^2 = rho d``."""
    prior, _ = theory.teacher_prior
    w_star = prior.sample(key, (d,))
    return jnp.sqrt(theory.rho * d) * w_star / jnp.linalg.norm(w_star)


def _draw_like(theory: ERM, key, w_star, n: int):
    """``n`` samples labelled by the teacher ``w*``, in :func:`bucket` ``(n)`` rows: ``(X, y,
    weight)``, the rows past ``n`` zero with weight zero."""
    x_key, y_key = jax.random.split(key)
    d, rows = w_star.shape[0], bucket(n)
    weight = (jnp.arange(rows) < n).astype(w_star.dtype)
    X, omega = _scaled(theory, x_key, jax.random.normal(x_key, (rows, d)) * weight[:, None], scales=True)
    channel = theory.channel if theory.scale == "none" else theory.channel_at(omega)
    return X, channel.sample(y_key, X @ w_star / jnp.sqrt(d)), weight


def _scaled(theory: ERM, key, Z, scales: bool = False):
    """Elliptical inputs ``sqrt(omega_i) z_i`` from Gaussian rows ``Z``, the scales drawn from the
    theory's law with a key of their own (``Z`` itself for Gaussian data); with ``scales``, also
    ``omega``."""
    omega = theory.draw_scales(jax.random.fold_in(key, 1), Z.shape[:1])
    X = Z if theory.scale == "none" else jnp.sqrt(omega)[:, None] * Z
    return (X, omega) if scales else X


def _fit(theory: ERM, X, y, weight=None):
    """The estimator on the samples weighted by ``weight`` (all of them with weight one by default;
    the hinge loss takes the first ``sum(weight)`` samples, weights zero or one and the ones first)."""
    weight = jnp.ones(X.shape[0], X.dtype) if weight is None else weight
    if theory.penalty != "ridge":
        w, converged = _fista(theory.loss_fn, theory.penalty_fn, X, y, weight, _CURVATURE[theory.loss])
        if not converged:
            raise RuntimeError(f"FISTA did not converge for {theory}")
        return w
    if theory.loss == "square":
        return _ridge(X, y, weight, theory.lam)
    if theory.loss == "absolute" or (theory.loss == "hinge" and not _leading_ones(weight)):
        return _box_dual(theory.loss_fn, X, y, weight, float(theory.lam))
    if theory.loss == "hinge":
        n = int(jnp.sum(weight))
        return _svm(X[:n], y[:n], float(theory.lam))
    if theory.loss in ("tukey", "cauchy"):
        return _local_search(theory, X, y, weight)
    w, converged = _newton(theory.loss_fn, X, y, weight, theory.lam)
    if not converged:
        raise RuntimeError(f"Newton's method did not converge for {theory}")
    return w


@jax.jit
def _ridge(X, y, weight, lam):
    """The minimiser of ``sum_i weight_i (y_i - w.x_i / sqrt(d))^2 / 2 + (lam / 2) |w|^2``."""
    d = X.shape[1]
    hessian = (X.T * weight) @ X / d + lam * jnp.eye(d, dtype=X.dtype)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(hessian), X.T @ (weight * y) / jnp.sqrt(d))


def _svm(X, y, lam: float):
    from sklearn.svm import LinearSVC  # optional dependency: hdtheory[simulate]

    features = np.asarray(X, np.float64) / np.sqrt(X.shape[1])
    svc = LinearSVC(
        loss="hinge", fit_intercept=False, C=1 / lam, dual=True, tol=1e-8, max_iter=100_000
    )
    svc.fit(features, np.asarray(y, np.float64))  # classes_ = [-1, 1]: coef_ scores the label +1
    return jnp.asarray(svc.coef_[0], X.dtype)


def _leading_ones(weight) -> bool:
    """Whether the weights are ones followed by zeros (the rows of one data set in its bucket)."""
    weight = np.asarray(weight)
    n = int(np.sum(weight))
    return bool(np.all(weight[:n] == 1) and np.all(weight[n:] == 0))


_POLISH_STEPS = 50


def _box_dual(loss, X, y, weight, lam: float, gap: float = 1e-10):
    r"""The ridge fit of a loss ``l(y, z) = max_{a in [lo, hi]} a (y - z)`` (hinge, absolute: the
    bounds of :meth:`Loss.clip_output`) with sample weights ``p``, by its dual
    ``max_u sum_i u_i y_i - |X^T u|^2 / (2 lam d)`` over ``u_i in [p_i lo_i, p_i hi_i]``, a box-constrained
    quadratic program (SciPy's L-BFGS-B), and ``w = X^T u / (lam sqrt(d))``. Raises ``RuntimeError``
    unless the duality gap is below ``gap`` times the primal objective."""
    from scipy.optimize import minimize

    X, y, p = (np.asarray(a, np.float64) for a in (X, y, weight))
    d = X.shape[1]
    X, y, p = X[p > 0], y[p > 0], p[p > 0]  # a sample of weight zero has u = 0
    _, lo, hi = (np.asarray(b, np.float64) for b in loss.clip_output(jnp.asarray(y), jnp.ones_like(jnp.asarray(y))))
    features = X / np.sqrt(d)

    def negative_dual(u):
        v = features.T @ u
        return v @ v / (2 * lam) - u @ y, features @ v / lam - y

    lower, upper = p * lo, p * hi
    u = np.zeros_like(y)
    for tol in (1e-8, 1e-14):  # a cheap start, polished; a tight one where that was not enough
        u = minimize(
            negative_dual, u, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper)),
            options={"maxiter": 100_000, "maxfun": 200_000, "ftol": tol, "gtol": tol, "maxcor": 30},
        ).x
        u = _active_set_steps(negative_dual, features, y, lam, u, lower, upper)
        w = features.T @ u / lam
        primal = float(np.sum(p * np.asarray(loss(jnp.asarray(y), jnp.asarray(features @ w)))) + lam / 2 * w @ w)
        if primal + negative_dual(u)[0] <= gap * max(abs(primal), 1.0):
            return jnp.asarray(w)
    raise RuntimeError(f"the dual fit's duality gap {primal + negative_dual(u)[0]:.3g} exceeds {gap:g} of {primal:.6g}")


def _active_set_steps(negative_dual, features, y, lam, u, lower, upper):
    """Active-set steps on the dual from ``u`` while they lower it: the coordinates inside the box
    solve their linear equations exactly (L-BFGS-B stalls near a kinked optimum), the others stay at
    the bound they press on."""
    value = negative_dual(u)[0]
    for _ in range(_POLISH_STEPS):
        grad = negative_dual(u)[1]
        scale = 1e-9 * np.maximum(upper - lower, 1e-300)
        pressed = ((u <= lower + scale) & (grad > 0)) | ((u >= upper - scale) & (grad < 0))
        free = ~pressed
        rhs = y[free] - features[free] @ (features[pressed].T @ u[pressed]) / lam
        solved = np.linalg.lstsq(features[free] @ features[free].T / lam, rhs, rcond=None)[0]
        new = u.copy()
        new[free] = np.clip(solved, lower[free], upper[free])
        new_value = negative_dual(new)[0]
        if not new_value < value:
            break
        u, value = new, new_value
    return u


def _local_search(theory: ERM, X, y, weight):
    """A non-convex loss (Tukey, Cauchy): the stationary point of least objective reached by
    :func:`_newton` (its curvature clipped at zero) from three starts, ``w = 0``, the ridge fit and
    the Huber fit of threshold ``c``. A local search: it finds the global minimiser only where the
    landscape lets one of the starts reach it."""
    loss, lam = theory.loss_fn, theory.lam
    starts = [jnp.zeros(X.shape[1], X.dtype), _ridge(X, y, weight, lam)]
    huber, converged = _newton(kernels.Huber(theory.c), X, y, weight, lam)
    starts += [huber] if converged else []
    best, best_value = None, np.inf
    for w0 in starts:
        w, converged = _newton(loss, X, y, weight, lam, w0=w0, max_steps=500)
        value = float(_objective(loss, X, y, weight, lam, w))
        if converged and value < best_value:
            best, best_value = w, value
    if best is None:
        raise RuntimeError(f"no start reached a stationary point for {theory}")
    return best


def _objective(loss, X, y, weight, lam, w):
    return jnp.sum(weight * loss(y, X @ w / jnp.sqrt(X.shape[1]))) + 0.5 * lam * w @ w


@eqx.filter_jit
def _newton(loss, X, y, weight, lam, w0=None, max_steps: int = 100, max_backtracks: int = 40):
    """Newton's method with backtracking from ``w0`` (default ``0``) on the ``weight``-ed samples;
    returns ``(w, converged)``. For a non-convex loss, where the Hessian is not positive definite
    (its Cholesky factor is not finite) the step takes the loss's curvature clipped at zero instead, a
    descent direction still: the iterates descend to a stationary point, quadratically near a
    local minimum."""
    d = X.shape[1]
    dtype = X.dtype
    eps = jnp.finfo(dtype).eps
    tol = 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5
    second = jax.vmap(jax.grad(jax.grad(loss, argnums=1), argnums=1))
    objective = lambda w: _objective(loss, X, y, weight, lam, w)

    value_and_grad = jax.value_and_grad(objective)
    # The gradient's scale: its norm at w = 0, as the tolerance's reference whatever the start.
    g0_norm = jnp.linalg.norm(value_and_grad(jnp.zeros(d, dtype))[1])
    w0 = jnp.zeros(d, dtype) if w0 is None else w0
    f0, g0 = value_and_grad(w0)

    def running(carry):
        w, f, g, i = carry
        return (jnp.linalg.norm(g) > tol * g0_norm) & (i < max_steps) & jnp.isfinite(f)

    def newton_step(carry):
        w, f, g, i = carry
        curvature = weight * second(y, X @ w / jnp.sqrt(d))

        def newton_direction(c):
            factor = jax.scipy.linalg.cho_factor((X.T * c) @ X / d + lam * jnp.eye(d, dtype=dtype))
            return -jax.scipy.linalg.cho_solve(factor, g)

        step = newton_direction(curvature)
        if isinstance(loss, kernels.RobustLoss):
            descent = jnp.all(jnp.isfinite(step)) & (g @ step < 0)
            step = jnp.where(descent, step, newton_direction(jnp.maximum(curvature, 0.0)))
        # Armijo's condition, with a rounding allowance so that steps near the optimum, whose
        # decrease is below the precision of f, are taken rather than backtracked forever.
        bound = lambda t: f + 1e-4 * t * (g @ step) + 16 * eps * jnp.abs(f)

        def too_long(search):
            t, f_t, k = search
            return ~(f_t <= bound(t)) & (k < max_backtracks)

        def halve(search):
            t, _, k = search
            return t / 2, objective(w + t / 2 * step), k + 1

        t, *_ = jax.lax.while_loop(too_long, halve, (jnp.ones((), dtype), objective(w + step), 0))
        w = w + t * step
        return (w, *value_and_grad(w), i + 1)

    w, f, g, _ = jax.lax.while_loop(running, newton_step, (w0, f0, g0, 0))
    return w, jnp.isfinite(f) & (jnp.linalg.norm(g) <= tol * g0_norm)


_CURVATURE = {"square": 1.0, "huber": 1.0, "logistic": 0.25}
"""The largest second derivative of each smooth loss in its second argument."""


@eqx.filter_jit
def _fista(loss, penalty, X, y, weight, curvature, max_steps: int = 100_000):
    """FISTA with restarts from ``w = 0`` on the ``weight``-ed samples (module docstring); returns
    ``(w, converged)``."""
    d = X.shape[1]
    dtype = X.dtype
    tol = 1e-9 if jnp.finfo(dtype).bits >= 64 else 1e-4
    step = d / (curvature * jnp.linalg.norm(X, 2) ** 2)
    grad = jax.grad(lambda w: jnp.sum(weight * loss(y, X @ w / jnp.sqrt(d))))

    def violation(w):
        """The minimum-norm subgradient of the objective at ``w``."""
        return jnp.linalg.norm(penalty.min_subgradient(w, grad(w)))

    w0 = jnp.zeros(d, dtype)
    scale = jnp.linalg.norm(grad(w0))

    def running(carry):
        w, _, _, i, residual = carry
        return (residual > tol * scale) & (i < max_steps)

    def iterate(carry):
        w, z, t, i, _ = carry
        w_new = penalty.prox(z - step * grad(z), step)
        restart = jnp.vdot(z - w_new, w_new - w) > 0
        t_new = jnp.where(restart, 1.0, (1 + jnp.sqrt(1 + 4 * t**2)) / 2)
        z_new = jnp.where(restart, w_new, w_new + (t - 1) / t_new * (w_new - w))
        return w_new, z_new, t_new, i + 1, violation(w_new)

    carry = (w0, w0, jnp.ones((), dtype), 0, violation(w0))
    w, _, _, _, residual = jax.lax.while_loop(running, iterate, carry)
    return w, residual <= tol * scale


@eqx.filter_jit
def _observables(theory: ERM, w, w_star, X, y, weight, X_test) -> dict[str, jax.Array]:
    d = w.shape[0]
    m, q, rho = w_star @ w / d, w @ w / d, w_star @ w_star / d
    test_error, test_error_total = theory.test_errors(m, q, rho)
    z, omega = X_test @ w_star / jnp.sqrt(d), X_test @ w / jnp.sqrt(d)
    if theory.channel.classification:
        empirical = jnp.mean((omega >= 0) != (z >= 0), dtype=w.dtype)
    else:
        empirical = jnp.mean((omega - z) ** 2)
    return {
        "m": m,
        "q": q,
        "test_error": test_error,
        "test_error_total": test_error_total,
        "test_error_empirical": empirical,
        "train_loss": jnp.sum(weight * theory.loss_fn(y, X @ w / jnp.sqrt(d))) / jnp.sum(weight),
        "norm": jnp.sqrt(q),
        "angle": jnp.arccos(jnp.clip(m / jnp.sqrt(rho * q), -1.0, 1.0)),
        "weight_error": jnp.sum((w - w_star) ** 2) / d,
        "sparsity_hat": jnp.mean(w != 0, dtype=w.dtype),
    }


_BINS = 20
CALIBRATION_BINS = np.linspace(0.5, 1.0, _BINS + 1)
"""The edges of the confidence bins of ``calibration_curve`` and ``ece``."""


@eqx.filter_jit
def _calibration(theory: ERM, w, w_star, X_test, X_val, y_val, weight_val) -> dict[str, jax.Array]:
    """Calibration of the confidence ``sigmoid(omega / T)`` on held-out data.

    On the test inputs, the metrics of :func:`binned_calibration`. On the validation set (labels
    drawn, as a user has them) ``temperature_validation`` minimises the negative log-likelihood over
    the temperature (bisection on its derivative in ``log T``) and ``ec_temperature_validation``
    equalises the mean confidence and the accuracy.
    """
    d = w.shape[0]
    val_omega = X_val @ w / jnp.sqrt(d)

    def val_mean(x):
        return jnp.sum(weight_val * x) / jnp.sum(weight_val)

    def val_nll(log_t):
        return val_mean(-jax.nn.log_sigmoid(y_val * val_omega / jnp.exp(log_t)))

    def val_gap(log_t):
        conf = jax.nn.sigmoid(jnp.abs(val_omega) / jnp.exp(log_t))
        return val_mean(conf) - val_mean(jnp.sign(val_omega) == y_val)

    return binned_calibration(theory, X_test @ w_star / jnp.sqrt(d), X_test @ w / jnp.sqrt(d)) | {
        "temperature_validation": jnp.exp(_bisect(jax.grad(val_nll))),
        # The mean confidence decreases with the temperature.
        "ec_temperature_validation": jnp.exp(_bisect(lambda log_t: -val_gap(log_t))),
    }


def binned_calibration(theory: ERM, z, omega) -> dict[str, jax.Array]:
    """Calibration of the confidence ``sigmoid(|omega| / T)`` on test fields ``omega`` with teacher
    fields ``z``.

    The label's law given the teacher's field is known exactly, ``p_i = P(y = sign(omega_i) | z_i)``,
    and averaged in place of sampled labels (the same expectations, with less variance):
    ``confidence``, ``test_nll``, ``brier``, and, over 20 equal-width bins of confidence on
    ``[1/2, 1]`` (``CALIBRATION_BINS``), ``ece`` and ``calibration_curve``, the probability of the
    predicted label per bin (NaN for an empty bin).
    """
    predicted = jnp.where(omega >= 0, 1.0, -1.0)
    right = theory.channel.partition(predicted, z, 0.0)
    T = theory.temperature
    confidence = jax.nn.sigmoid(jnp.abs(omega) / T)
    bins = jnp.clip(((confidence - 0.5) * 2 * _BINS).astype(int), 0, _BINS - 1)
    count = jnp.zeros(_BINS).at[bins].add(1.0)
    gap = jnp.zeros(_BINS).at[bins].add(confidence - right)
    curve = jnp.zeros(_BINS).at[bins].add(right) / jnp.where(count > 0, count, jnp.nan)
    log_p = jax.nn.log_sigmoid(jnp.abs(omega) / T)
    log_q = jax.nn.log_sigmoid(-jnp.abs(omega) / T)
    return {
        "confidence": jnp.mean(confidence),
        "ece": jnp.sum(jnp.abs(gap)) / omega.shape[0],
        "calibration_curve": curve,
        "test_nll": -jnp.mean(right * log_p + (1 - right) * log_q),
        "brier": jnp.mean(right * (1 - confidence) ** 2 + (1 - right) * confidence**2),
    }


def _bisect(f, lo=-12.0, hi=12.0, steps: int = 80):
    """The root of ``f`` on ``[lo, hi]``, negative below it and positive above, by bisection."""

    def step(_, interval):
        lo, hi = interval
        mid = 0.5 * (lo + hi)
        positive = f(mid) > 0
        return jnp.where(positive, lo, mid), jnp.where(positive, mid, hi)

    lo, hi = jax.lax.fori_loop(0, steps, step, (jnp.asarray(lo), jnp.asarray(hi)))
    return 0.5 * (lo + hi)
