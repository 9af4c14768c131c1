r"""Finite-``d`` simulations of adversarial training against l2, l-infinity, lp and l1 attacks
(:class:`~hdtheory.Adversarial`).

**Setting** (that of :mod:`hdtheory.models.adversarial`; data, teacher and labels drawn as for
:mod:`hdtheory.simulate.erm`, the teacher on the sphere ``|w*|^2 = rho d``). The estimator minimises
the robust objective with the inner maximisation in closed form,

.. math:: P(w) = \sum_i l\big(y_i w \cdot x_i / \sqrt{d} - \varepsilon\, \mathrm{reach}(w)\big) + r(w) ,

``reach(w) = (|w|_k^k / d)^{1/k}``: ``|w|_2 / sqrt(d)`` (l2), ``|w|_1 / d`` (l-infinity),
``k = attack_p / (attack_p - 1)`` (lp), ``max_i |w_i|`` (l1, ``k = inf``), ``r`` the penalty
``l1 |w|_1 + (l2 / 2) |w|^2`` (the ridge: ``l1 = 0``) or ``(lam / p) |w|_p^p``, a convex function of
``w`` (a non-increasing convex ``l`` of a concave argument).

- **logistic**, l2 and lp: SciPy's L-BFGS on ``P`` itself (smooth but at ``w = 0``, started away
  from it, at the plain ERM direction ``X^T y``), to a gradient below 1e-6 of its value at the start
  or of ``lam |w|`` (``P`` is ``lam``-strongly convex, so that ``w`` is then within 1e-6 of the
  minimiser relative to its norm), restarted up to twice; 1e-5 for ``k < 2``, where the gradient's
  ``|w_i|^{k - 1}`` is steep near zero and stalls the line search at the objective's rounding (a
  weight at 1e-9 of zero, d = 500). l-infinity, and l2 or lp
  with an l1 penalty (``l1 > 0``) or the lp penalty ``(lam / p) |w|_p^p``: ``w = u - v`` with
  ``u, v >= 0`` and ``|w|_1`` replaced by ``sum(u + v)`` (equal at the minimum, where the objective
  grows with ``sum(u + v)`` at fixed ``u - v``), a smooth objective minimised by L-BFGS-B over the
  orthant to a projected gradient below 1e-6 of its value at the start (1e-5 with a power below 2,
  lp attacks and the lp penalty, whose steep ``|w_i|^{k - 1}`` near zero stalls the line search at
  the objective's rounding). l1: the sup norm as a variable ``R`` with the box
  ``|w_i| <= R``; at fixed ``R`` the objective ``sum_i l(y_i w.x_i / sqrt(d) - eps R) + r(w)`` is
  minimised over the box by L-BFGS-B (in ``w = u - v``, ``0 <= u, v <= R``, as for l-infinity), and
  its minimum ``g(R)``, convex in ``R``, has the derivative ``eps sum_i |l'_i| - sum_j mu_j``
  (``mu_j`` the box's multipliers, the gradient's components pushing outward at the clipped
  coordinates): Brent's method finds its root, warm-starting each inner fit from the last. The
  fit is accepted when the inner projected gradient is below 1e-7 of ``|sum_i y_i x_i| / sqrt(d)``
  and the derivative below 1e-6 of the force ``eps sum_i |l'_i|``.
- **hinge** (ridge): ``P`` is not smooth; its dual is. Writing ``max(0, c) = max_{0 <= a <= 1} a c``
  and exchanging ``min_w`` and ``max_a`` (convex-concave, ``a`` in a box),

  .. math::
      D(a) = \sum_i a_i - \frac{\lambda}{2} |w(a)|^2,\quad g = \sum_i a_i y_i x_i / \sqrt{d},\quad
      \partial_{a_i} D = 1 - y_i w(a) \cdot x_i / \sqrt{d} + \varepsilon\, \mathrm{reach}(w(a)),

  with ``w(a) = (|g| - eps sum_i a_i / sqrt(d))_+ g / (lam |g|)`` (l2) or the soft threshold
  ``w(a) = soft(g, eps sum_i a_i / d) / lam`` (l-infinity) or the clip ``w(a) = sign(g) min(|g|, theta)
  / lam`` with ``sum_j (|g_j| - theta)_+ = eps sum_i a_i`` (l1: ``g`` minus its projection on the l1
  ball, the prox of the sup norm) or, for lp attacks, the prox of ``tau |.|_k`` at ``g / lam``,
  ``tau = eps sum_i a_i / (lam d^{1/k})`` (:func:`_norm_prox`: the stationarity condition
  ``u_i + c u_i^{k - 1} = |g_i| / lam`` per component and a scalar equation for ``c``; ``D`` is
  ``sum_i a_i - (lam / 2) |w(a)|^2`` for every attack, ``reach`` being of degree one), continuously
  differentiable and concave,
  maximised over ``[0, 1]^n`` by SciPy's L-BFGS-B; ``w`` is ``w(a)`` at the maximum, its duality gap
  ``P(w(a)) - D(a)`` below 1e-6 of ``D``. A fit that misses its tolerance raises ``RuntimeError``.

**Observables**, per seed, named as in ``Adversarial.observables``: ``m``, ``q``, ``P`` (l-infinity:
``|w|_1 / d``), ``test_error``, ``test_error_total``, ``robust_error``, ``robust_error_total``,
``boundary_error`` (the theory's formulas at the measured ``m``, ``q`` and budget: the exact
population errors of the fitted ``w``), ``train_loss`` (the robust training loss per sample),
``norm``, ``margin_shift`` (``eps reach(w)``), ``sparsity_hat`` (the fraction of weights above
1e-8 of the largest); and one diagnostic, ``robust_error_empirical``: the fraction of 10000 held-out
samples, shared by the seeds, with ``sign(z) w.x / sqrt(d) < eps_test reach(w)`` (an attack of radius
``eps_test`` makes ``w`` disagree with the noiseless label), a Monte Carlo check of the robust error.
For l2 attacks also ``consistent_robust_error`` and ``consistent_boundary_error`` (the theory's
formulas at the measured overlaps) and ``consistent_robust_error_empirical``: the fraction of the
held-out samples that an attack of radius ``eps_test`` keeping ``sign(z)`` makes ``w`` misclassify,
the attack found exactly, as the distance from each sample to the set of inputs with the teacher's
label that ``w`` misclassifies (a polyhedral cone: the sample, its projection on the student's
hyperplane, or on the intersection of both hyperplanes), not by the theory's formula. For l-infinity
and lp attacks ``consistent_robust_error_empirical`` likewise, the attack's reach found exactly per
sample as the Lagrange dual of its problem (:func:`consistent_threshold`; the theory's formula needs
the weight side's law, not measured here).
``P`` is ``max_i |w_i|`` for l1 attacks. ``V`` and the conjugates are not measured; ``lam = 0`` and the
hinge loss with an l1, elastic-net or lp penalty are not simulated.

Anisotropic data with attack and penalty geometries (:class:`~hdtheory.AdversarialGCM`, the block
feature model): :func:`simulate_adversarial_gcm`, the same fits in ``u = Sigma_w^{1/2} w``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special

from .. import kernels
from ..models.adversarial import Adversarial, AdversarialGCM
from . import SimulationResult, check_size, simulate
from .erm import _draw_like, _teacher

_TOL = 1e-6
"""Relative tolerance of the fits: the logistic gradient, the hinge duality gap."""
_STEEP_TOL = 1e-5
"""Relative tolerance of the projected gradient of the fits in ``w = u - v`` with a power below 2."""


@simulate.register
def simulate_adversarial(theory: Adversarial, *, d: int = 300, seeds: int = 4, key=None) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.Adversarial`; see the module docstring.

    Raises:
        ValueError: ``lam = 0``; the hinge loss with a penalty other than the ridge.
        RuntimeError: a fit did not meet its tolerance.
    """
    if float(theory.lam) == 0:
        raise ValueError("lam=0 is not simulated (the robust minimiser may not exist)")
    check_size(d, seeds)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    test_key, *seed_keys = jax.random.split(key, seeds + 1)
    X_test = np.asarray(jax.random.normal(test_key, (10_000, d)))
    samples = []
    for seed_key in seed_keys:
        teacher_key, train_key = jax.random.split(seed_key)
        w_star = _teacher(theory, teacher_key, d)
        X, y, _ = _draw_like(theory, train_key, w_star, n)
        X, y, w_star = np.asarray(X[:n]), np.asarray(y[:n]), np.asarray(w_star)
        w = _fit(theory, X, y)
        P = None
        if theory.own_norm:
            k = float(theory.dual_exponent)
            P = float(np.max(np.abs(w))) if np.isinf(k) else float(np.mean(np.abs(w) ** k))
        samples.append(_observables(theory, w, w_star, X, y, X_test, P=P))
    return SimulationResult.from_samples(samples, d=d, n=n)


def _fit(theory: Adversarial, X, y) -> np.ndarray:
    """The robust minimiser (module docstring)."""
    d = X.shape[1]
    eps = float(theory.eps)
    penalty = theory.penalty_fn
    if isinstance(penalty, kernels.LP):  # (lam / p) |w|^p, the l1 penalty at p = 1
        lam, p = float(penalty.lam), float(penalty.p)
        l1, l2, power = (lam, 0.0, (0.0, 2.0)) if p == 1 else (0.0, 0.0, (lam, p))
    else:
        (l1, l2), power = (float(s) for s in penalty.strengths), (0.0, 2.0)
    Z = y[:, None] * X / np.sqrt(d)  # margins are Z @ w
    k = float(theory.dual_exponent)
    if theory.loss == "logistic":
        if np.isinf(k):
            return _logistic_sup(Z, eps, l1, l2)
        if k == 1 or l1 > 0 or power[0] > 0:
            return _logistic_split(Z, eps, l1, l2, k, power)
        return _logistic(Z, eps, l2, k)
    if l1 > 0 or power[0] > 0:
        raise ValueError(f"the hinge loss is simulated with the ridge penalty only, got penalty={theory.penalty}")
    return _hinge(Z, eps, l2, k)


def _logistic(Z, eps, lam, k=2.0, attack=1.0):
    """The logistic fit against the shift ``eps reach(w)`` (:func:`_reach`), smooth for ``k > 1`` but at
    ``w = 0``."""

    def objective(w):
        reach, along = _reach(w, k, attack), _reach_gradient(w, k, attack)
        t = Z @ w - eps * reach
        slope = -scipy.special.expit(-t)  # l'(t) for l(t) = log(1 + exp(-t))
        grad = Z.T @ slope - eps * np.sum(slope) * along + lam * w
        return np.sum(np.logaddexp(0.0, -t)) + 0.5 * lam * w @ w, grad

    # The objective is lam-strongly convex: |w - w_min| <= |grad| / lam, below tol |w| here. With
    # k < 2 the steep |w_i|^(k - 1) near w_i = 0 stalls the line search at the objective's rounding.
    tol = _STEEP_TOL if k < 2 else _TOL

    def converged(w):
        g = np.linalg.norm(objective(w)[1])
        return g <= tol * g0 or g <= tol * lam * np.linalg.norm(w)

    w = Z.sum(0) / Z.shape[0]
    g0 = np.linalg.norm(objective(w)[1])
    for _ in range(3):  # restarted where |w|^(k - 1) (k < 2) stalls the line search near w_i = 0
        result = scipy.optimize.minimize(
            objective, w, jac=True, method="L-BFGS-B", options={"maxiter": 20_000, "gtol": 0.0, "ftol": 0.0}
        )
        w = result.x
        if converged(w):
            return w
    raise RuntimeError(f"adversarial logistic fit did not converge: {result.message}")


def _split_objective(Z, eps, k, shift, l1, l2, power=(0.0, 2.0)):
    """The logistic objective in ``w = u - v``, ``z = (u, v) >= 0``, with the margins shifted by
    ``eps reach(w) + shift`` (:func:`_reach`; ``|w|_1 / d`` replaced by ``sum(z) / d`` at ``k = 1``) and
    the penalty ``l1 sum(z) + (l2 / 2) |w|^2 + (lam_p / p) |w|_p^p``, ``(lam_p, p) = power``, ``p > 1``:
    its value and gradient (smooth away from ``w = 0``)."""
    d = Z.shape[1]
    lam_p, p = power

    def objective(z):
        w, total = z[:d] - z[d:], np.sum(z)
        reach = total / d if k == 1 else _reach(w, k)
        t = Z @ w - eps * reach - shift
        slope = -scipy.special.expit(-t)
        along = Z.T @ slope + l2 * w + lam_p * np.abs(w) ** (p - 1) * np.sign(w)
        common = l1
        if k == 1:
            common = common - eps * np.sum(slope) / d
        else:
            along = along - eps * np.sum(slope) * _reach_gradient(w, k)
        grad = np.concatenate([along + common, -along + common])
        value = np.sum(np.logaddexp(0.0, -t)) + l1 * total + 0.5 * l2 * w @ w + lam_p / p * np.sum(np.abs(w) ** p)
        return value, grad

    return objective


def _projected(g, z):
    """The projected gradient at ``z >= 0``: the components that can move."""
    return np.where(z > 0, g, np.minimum(g, 0.0))


def _split_start(Z):
    w0 = Z.sum(0) / Z.shape[0]
    return np.concatenate([np.maximum(w0, 0.0), np.maximum(-w0, 0.0)])


def _logistic_split(Z, eps, l1, l2, k, power=(0.0, 2.0)):
    """The logistic fit against the shift ``eps reach(w)`` (:func:`_reach`), penalty
    ``l1 |w|_1 + (l2 / 2) |w|^2 + (lam_p / p) |w|_p^p``, in ``w = u - v`` with ``u, v >= 0`` (module
    docstring)."""
    d = Z.shape[1]
    objective = _split_objective(Z, eps, k, 0.0, l1, l2, power)
    z = z0 = _split_start(Z)
    g0 = np.linalg.norm(_projected(objective(z0)[1], z0))
    # A power below 2 (k or p) is steep near w_i = 0: the line search stalls at the rounding of the
    # objective a little short of _TOL; restarted, and held to _STEEP_TOL.
    steep = (k not in (1, 2)) or power[0] > 0
    for _ in range(3):
        result = scipy.optimize.minimize(
            objective, z, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * (2 * d),
            options={"maxiter": 50_000, "maxcor": 30, "gtol": 0.0, "ftol": 0.0},
        )
        z = result.x
        if np.linalg.norm(_projected(objective(z)[1], z)) <= (_STEEP_TOL if steep else _TOL) * g0:
            return z[:d] - z[d:]
    raise RuntimeError(f"adversarial logistic fit in w = u - v did not converge: {result.message}")


def _logistic_sup(Z, eps, l1, l2):
    """The logistic fit against an l1 attack (shift ``eps max_i |w_i|``), penalty
    ``l1 |w|_1 + (l2 / 2) |w|^2``: Brent's method on the derivative of the box-constrained minimum
    in the box's half-width ``R`` (module docstring)."""
    n, d = Z.shape
    scale = np.linalg.norm(Z.sum(0))
    state = {"z": _split_start(Z)}

    def inner(R):
        objective = _split_objective(Z, 0.0, 1.0, eps * R, l1, l2)
        z = np.minimum(state["z"], R)
        for _ in range(3):  # restarted where the line search stalls short of the tolerance
            result = scipy.optimize.minimize(
                objective, z, jac=True, method="L-BFGS-B", bounds=[(0.0, R)] * (2 * d),
                options={"maxiter": 50_000, "maxcor": 30, "gtol": 1e-10 * scale, "ftol": 0.0},
            )
            z = state["z"] = result.x
            grad = objective(z)[1]
            if np.linalg.norm(np.clip(z - grad, 0.0, R) - z) <= 1e-7 * scale:  # L-BFGS-B's projected gradient
                break
        else:
            raise RuntimeError(f"adversarial logistic fit (l1 attack) did not converge: {result.message}")
        force = eps * np.sum(scipy.special.expit(-(Z @ (z[:d] - z[d:]) - eps * R)))  # eps sum_i |l'_i|
        multipliers = np.sum(np.where(z - grad >= R, np.maximum(-grad, 0.0), 0.0))
        return force - multipliers, force

    hi = 1.0
    while inner(hi)[0] <= 0:
        hi *= 2
    lo = hi / 2
    while inner(lo)[0] > 0:
        lo /= 2
        if lo < 1e-8 * hi:
            raise RuntimeError("adversarial logistic fit (l1 attack): the minimiser is w = 0 (eps too large)")
    R = scipy.optimize.brentq(lambda R: inner(R)[0], lo, 2 * lo, xtol=1e-13 * lo, rtol=1e-13)
    slope, force = inner(R)
    if not abs(slope) <= _TOL * force:
        raise RuntimeError(f"adversarial logistic fit (l1 attack) did not converge: dg/dR = {slope:.3g}")
    z = state["z"]
    return z[:d] - z[d:]


def _hinge(Z, eps, lam, k=2.0):
    """The hinge fit by its dual (module docstring): ``w(a)`` shrinks ``g = Z^T a`` by
    ``t = eps sum(a) / sqrt(d)`` in norm (l2, ``k = 2``), by ``t = eps sum(a) / d`` elementwise
    (l-infinity, ``k = 1``), clips it at the level where the clipped excess is ``eps sum(a)`` (l1,
    ``k = inf``), or is the prox of the lk norm (lp, :func:`_norm_prox`)."""
    n, d = Z.shape

    def weights(a):
        g = Z.T @ a
        if k == 1:
            return np.sign(g) * np.maximum(np.abs(g) - eps * np.sum(a) / d, 0.0) / lam
        if np.isinf(k):
            return np.sign(g) * np.minimum(np.abs(g), _clip_level(np.abs(g), eps * np.sum(a))) / lam
        if k != 2:
            return _norm_prox(g / lam, eps * np.sum(a) / (lam * d ** (1 / k)), k)
        size = np.linalg.norm(g)
        return max(size - eps * np.sum(a) / np.sqrt(d), 0.0) / lam * g / max(size, 1e-300)

    def negative_dual(a):
        w = weights(a)
        # dD / da = 1 - Z w + eps reach(w): the robust margins' slack (module docstring).
        return -(np.sum(a) - 0.5 * lam * w @ w), -(1.0 - Z @ w + eps * _reach(w, k))

    def primal(w):
        return np.sum(np.maximum(0.0, 1.0 - Z @ w + eps * _reach(w, k))) + 0.5 * lam * w @ w

    result = scipy.optimize.minimize(
        negative_dual, np.full(n, 0.5), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * n,
        options={"maxiter": 50_000, "maxcor": 30, "gtol": 1e-13, "ftol": 1e-16},
    )
    w = weights(result.x)
    gap = primal(w) + result.fun
    if not gap <= _TOL * abs(result.fun):
        raise RuntimeError(f"adversarial hinge fit did not converge: duality gap {gap:.3g} ({result.message})")
    return w


def _norm_prox(v, tau, k):
    """``argmin_w |w - v|^2 / 2 + tau |w|_k`` for ``k > 1`` (the hinge's ``w(a)`` against an lp attack).

    Zero where ``|v|_p <= tau`` (``p = k / (k - 1)``, the dual norm). Else ``w = sign(v) u``,
    ``u_i + c u_i^{k - 1} = |v_i|`` with ``c = tau N^{1 - k}``, ``N = |w|_k`` (the stationarity
    condition): for each ``c`` the roots by Newton's method in ``log u`` (:func:`_power_root`), and
    ``c`` the root of ``phi(log c) = log c + (k - 1) log N(c) - log tau``, increasing from ``-inf`` to
    ``log(|v|_p / tau) > 0``: Newton's method in ``log c`` safeguarded by bisection, with
    ``d u_i / d c = -u_i^k / (u_i + c (k - 1) u_i^{k - 1})``."""
    x = np.abs(v)
    p = k / (k - 1)
    scale = np.max(x)
    if tau <= 0 or scale == 0:
        return v.copy()
    if scale * np.sum((x / scale) ** p) ** (1 / p) <= tau:
        return np.zeros_like(v)

    def phi(log_c):
        c = np.exp(log_c)
        u = _power_root(x, c, k)
        norm_k = np.sum(u**k)
        du = -u**k / np.maximum(u + c * (k - 1) * u ** (k - 1), 1e-300)
        slope = 1 + (k - 1) * c * np.sum(u ** (k - 1) * du) / norm_k
        return log_c + (k - 1) / k * np.log(norm_k) - np.log(tau), slope, u

    lo, hi = np.log(tau) - (k - 1) * np.log(scale * x.size), None  # phi(lo) < 0: N(c) < |v|_k
    log_c = lo
    for _ in range(200):
        value, slope, u = phi(log_c)
        if value < 0:
            lo = log_c
        else:
            hi = log_c
        if abs(value) <= 1e-14:
            break
        step = log_c - value / slope
        if hi is None:
            log_c = step if step > lo else lo + 1.0
        else:
            log_c = step if lo < step < hi else 0.5 * (lo + hi)
        if hi is not None and hi - lo <= 1e-15 * (1 + abs(log_c)):
            break
    else:
        raise RuntimeError("the prox of the lk norm did not converge")
    return np.sign(v) * u


def _power_root(x, c, k):
    """Elementwise ``u >= 0`` with ``u + c u^{k - 1} = x`` (``x >= 0``, ``c > 0``, ``k > 1``): Newton's method
    in ``s = log u``, where the left side is convex and increasing, from above the root (the least of
    ``log x`` and ``log(x / c) / (k - 1)``), so that the iterates decrease to it (as
    :func:`hdtheory.kernels.lp_prox`)."""
    positive = x > 0
    log_x = np.log(np.where(positive, x, 1.0))
    s = np.minimum(log_x, (log_x - np.log(c)) / (k - 1))
    for _ in range(100):
        linear, power = np.exp(s), c * np.exp((k - 1) * s)
        step = np.where(positive, (linear + power - x) / (linear + (k - 1) * power), 0.0)
        s = s - step
        if np.all(np.abs(step) <= 4e-16 * (1 + np.abs(s))):
            break
    return np.where(positive, np.exp(s), 0.0)


def _clip_level(x, excess):
    """For ``x >= 0``, the level ``theta >= 0`` with ``sum (x - theta)_+ = excess`` (0 if ``sum x <= excess``):
    ``min(x, theta)`` is ``x`` minus its projection on the l1 ball of radius ``excess``, the prox of
    ``excess max_i |.|`` (Moreau), by sorting."""
    if np.sum(x) <= excess:
        return 0.0
    u = np.sort(x)[::-1]
    levels = (np.cumsum(u) - excess) / np.arange(1, u.size + 1)
    return levels[np.nonzero(u > levels)[0][-1]]


def _reach(w, k, attack=1.0):
    """The margin shift per unit radius, ``P^{1 / k}`` with ``P = mean(attack |w|^k)``: ``|w|_1 / d``
    (l-infinity, ``k = 1``), ``|w|_2 / sqrt(d)`` (l2), ``sqrt(w^T Sigma_delta w / d)`` (attack geometry),
    ``max_i |w_i|`` (l1, ``k = inf``)."""
    if np.isinf(k):
        return np.max(np.abs(w))
    return np.mean(attack * np.abs(w) ** k) ** (1 / k)


def _reach_gradient(w, k, attack=1.0):
    """The gradient of :func:`_reach` in ``w`` (``w != 0``, ``k > 1``)."""
    P = max(np.mean(attack * np.abs(w) ** k), 1e-300)
    return P ** (1 / k - 1) * attack * np.abs(w) ** (k - 1) * np.sign(w) / w.shape[0]


@eqx.filter_jit
def _population_errors(theory: Adversarial, m, q, rho, budget):
    return *theory.test_errors(m, q, rho), *theory.robust_errors(m, q, budget)


_inconsistent_error = jax.jit(kernels.inconsistent_error)


def _consistent_distance(label, teacher, student, cosine):
    """Per sample, the l2 distance from ``x`` to the inputs that keep the teacher's ``label`` and that
    the student misclassifies, ``{x': label t.x' >= 0, label s.x' <= 0}`` (``t``, ``s`` the unit
    teacher and student, ``teacher = t.x``, ``student = s.x``, ``cosine = s.t``): zero if ``x`` is
    misclassified; else the distance ``label s.x`` to the student's hyperplane if its projection there
    keeps the label; else the distance to the intersection of both hyperplanes, the norm of the
    projection of ``x`` on the plane of ``s`` and ``t``. A consistent attack of radius ``r`` succeeds
    exactly when this is at most ``r``."""
    a, b = label * teacher, label * student
    plane = np.sqrt(np.maximum(a**2 - 2 * cosine * a * b + b**2, 0) / (1 - cosine**2))
    return np.where(b <= 0, 0.0, np.where(a - cosine * b >= 0, b, plane))


def consistent_threshold(w, w_star, a, eps, k, steps=60):
    """Per test point with the teacher's field ``|z| = a``, the most that a consistent attack of radius
    ``eps`` (an lk-dual ball: l-infinity ``k = 1``, lp ``k = p / (p - 1)``) can lower the student's margin
    ``sign(z) w.x / sqrt(d)``: ``G(a) = min_{mu >= 0} eps N(mu) + mu a``, ``N(mu) = (mean |w - mu w*|^k)^{1/k}``,
    the Lagrange dual of the attack's problem ``min sign(z) w.delta / sqrt(d)`` over the ball with the
    teacher's margin kept, ``sign(z) w*.(x + delta) >= 0`` (strong duality: ``delta = 0`` is strictly
    feasible). ``N`` is convex: ``mu`` by bisection on its (right) derivative, ``steps`` halvings of
    ``[0, 2 N(0) / N_inf]`` (``N_inf = (mean |w*|^k)^{1/k}``, beyond which ``N`` increases)."""
    def norm(mu):
        return np.mean(np.abs(w[None] - mu[:, None] * w_star[None]) ** k, axis=-1) ** (1 / k)

    def derivative(mu):
        r = w[None] - mu[:, None] * w_star[None]
        if k == 1:
            return -np.mean(np.where(r > 0, 1.0, -1.0) * w_star[None], axis=-1)  # the right derivative
        return -np.mean(np.sign(r) * np.abs(r) ** (k - 1) * w_star[None], axis=-1) / norm(mu) ** (k - 1)

    zero = np.zeros(1)
    N0 = norm(zero)[0]
    threshold = np.full(a.shape, eps * N0)
    near = a < -eps * derivative(zero)[0]  # elsewhere mu = 0, the unconstrained attack
    lo, hi = np.zeros(near.sum()), np.full(near.sum(), 2 * N0 / np.mean(np.abs(w_star) ** k) ** (1 / k))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        below = eps * derivative(mid) + a[near] < 0
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    mu = 0.5 * (lo + hi)
    threshold[near] = eps * norm(mu) + mu * a[near]
    return threshold


def _observables(theory: Adversarial, w, w_star, X, y, X_test, variance=1.0, P=None) -> dict[str, float]:
    """Per seed (module docstring): the overlaps in the data's covariance ``diag(variance)``, the
    errors at them, and ``P`` where the theory has it (``P ** (1 / k)`` the shift per unit radius,
    ``k`` the attack's :attr:`~hdtheory.Adversarial.dual_exponent`; ``sqrt(q)`` otherwise)."""
    d = w.shape[0]
    m, q = float(w_star @ (variance * w) / d), float(w @ (variance * w) / d)
    rho = float(w_star @ (variance * w_star) / d)
    reach = np.sqrt(q) if P is None else theory.reach(P)
    # As arrays: Python floats are static arguments of a filtered jit, a compile per seed.
    overlaps = map(jnp.asarray, (m, q, rho, float(theory.eps_test) * reach / np.sqrt(q)))
    test_error, test_error_total, robust, robust_total, boundary = (
        float(e) for e in _population_errors(theory, *overlaps)
    )
    shift = float(theory.eps) * reach
    margins = y * (X @ w) / np.sqrt(d) - shift
    z, field = X_test @ w_star / np.sqrt(d), X_test @ w / np.sqrt(d)
    consistent = {}
    if isinstance(theory.attack, str) and theory.attack == "l2":  # isotropic data, l2 attacks
        cosine = m / np.sqrt(rho * q)
        inconsistent = float(_inconsistent_error(jnp.asarray(cosine), jnp.asarray(float(theory.eps_test))))
        distance = _consistent_distance(np.sign(z), z / np.sqrt(rho), field / np.sqrt(q), cosine)
        consistent = {"consistent_robust_error": robust - inconsistent,
                      "consistent_boundary_error": boundary - inconsistent,
                      "consistent_robust_error_empirical": float(np.mean(distance <= float(theory.eps_test)))}
    elif isinstance(theory.attack, str) and theory.attack in ("linf", "lp"):
        threshold = consistent_threshold(w, w_star, np.abs(z), float(theory.eps_test), float(theory.dual_exponent))
        consistent = {"consistent_robust_error_empirical": float(np.mean(np.sign(z) * field < threshold))}
    return {"m": m, "q": q} | ({} if P is None else {"P": P}) | consistent | {
        "test_error": test_error,
        "test_error_total": test_error_total,
        "robust_error": robust,
        "robust_error_total": robust_total,
        "boundary_error": boundary,
        "robust_error_empirical": float(np.mean(np.sign(z) * field < float(theory.eps_test) * reach)),
        "train_loss": float(np.mean(theory.loss_fn(1.0, jnp.asarray(margins)))),
        "norm": np.sqrt(q),
        "margin_shift": shift,
        "sparsity_hat": float(np.mean(np.abs(w) > 1e-8 * np.max(np.abs(w)))),
    }


@simulate.register
def simulate_adversarial_gcm(
    theory: AdversarialGCM, *, d: int = 400, seeds: int = 4, key=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.models.adversarial.AdversarialGCM`.

    The modes are blocks of ``weights_j d`` coordinates (``weights`` times ``d`` must be integers;
    ``weights=None``, one coordinate per mode, needs ``d`` equal to the number of modes), with
    ``x_i ~ N(0, omega_j)``, the teacher uniform on the sphere of each block with
    ``|w*_b|^2 = d weights_b theta2_b / omega_b^2`` (so that ``w*^T Sigma_x w* / d = rho`` when ``rho``
    is the one the spectrum explains), and ``Sigma_delta``, ``Sigma_w`` the ``attack`` and ``ridge`` of
    the modes. In ``u = Sigma_w^{1/2} w`` the penalty is the ridge and the attacked norm
    ``sqrt(u^T diag(attack / ridge) u)``: the logistic loss is fitted as for isotropic data; the
    hinge loss's dual needs the attacked norm to be ``|u|`` up to a factor, ``attack`` proportional
    to ``ridge``. Observables as for :class:`~hdtheory.Adversarial`, at the measured ``m``, ``q`` and
    ``P = w^T Sigma_delta w / d`` (``robust_error`` at the budget ``eps_test sqrt(P / q)``).

    Raises:
        ValueError: ``lam = 0``; block sizes that are not integers; the hinge loss with an attack not
            proportional to the penalty.
        RuntimeError: a fit did not meet its tolerance.
    """
    if float(theory.lam) == 0:
        raise ValueError("lam=0 is not simulated (the robust minimiser may not exist)")
    check_size(d, seeds)
    omega = np.asarray(theory.omega, float)
    weights = np.full(omega.shape, 1 / omega.size) if theory.weights is None else np.asarray(theory.weights, float)
    sizes = np.rint(weights * d).astype(int)
    if not (np.allclose(sizes, weights * d, atol=1e-9) and sizes.sum() == d):
        raise ValueError(f"block sizes weights * d = {weights * d} must be integers summing to d = {d}")
    per_mode = lambda x: np.repeat(np.asarray(x, float), sizes)  # noqa: E731
    scale, attack, ridge = per_mode(np.sqrt(omega)), per_mode(theory.attack_spectrum), per_mode(theory.ridge_spectrum)
    ratio = attack / ridge
    if theory.loss == "hinge" and not np.allclose(ratio, ratio[0]):
        raise ValueError("the hinge loss is simulated with an attack proportional to the penalty only")
    signal = np.where(omega > 0, np.asarray(theory.theta2, float) / np.where(omega > 0, omega, 1.0) ** 2, 0.0)
    key = jax.random.PRNGKey(0) if key is None else key
    n = max(round(float(theory.alpha) * d), 1)
    test_key, *seed_keys = jax.random.split(key, seeds + 1)
    X_test = np.asarray(jax.random.normal(test_key, (10_000, d))) * scale
    samples = []
    for seed_key in seed_keys:
        teacher_key, x_key, y_key = jax.random.split(seed_key, 3)
        g = np.asarray(jax.random.normal(teacher_key, (d,)))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        w_star = np.concatenate([
            g[a:b] * np.sqrt(d * w * s / max(np.sum(g[a:b] ** 2), 1e-300))
            for a, b, w, s in zip(starts[:-1], starts[1:], weights, signal)
        ])
        X = np.asarray(jax.random.normal(x_key, (n, d))) * scale
        y = np.asarray(theory.channel.sample(y_key, jnp.asarray(X @ w_star / np.sqrt(d))))
        Z = y[:, None] * X / np.sqrt(d * ridge)  # margins are Z @ u, u = sqrt(ridge) w
        eps, lam = float(theory.eps), float(theory.lam)
        if theory.loss == "logistic":
            u = _logistic(Z, eps, lam, 2.0, ratio)
        else:
            u = _hinge(Z, eps * np.sqrt(ratio[0]), lam)
        w = u / np.sqrt(ridge)
        samples.append(_observables(theory, w, w_star, X, y, X_test, scale**2, float(w @ (attack * w) / d)))
    return SimulationResult.from_samples(samples, d=d, n=n)
