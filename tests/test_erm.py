"""The ERM theory against closed forms, published numbers and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdtheory as hd


def ridge_closed_form(alpha, lam, rho, noise):
    """Ridge on isotropic data from the Marchenko-Pastur Stieltjes transform.

    With S = X^T X / d (X of size n x d, alpha = n / d), g(z) = (1/d) tr (S - z)^{-1} solves
    g (-z + alpha / (1 + g)) = 1; at z = -lam, lam g^2 + (lam + alpha - 1) g - 1 = 0. The estimator
    w = (S + lam)^{-1} X^T y / sqrt(d) has excess error |w - w*|^2 / d
    = rho lam^2 g'(-lam) + noise (g - lam g'(-lam)), overlap m = rho (1 - lam g) and V = g.
    """
    b = lam + alpha - 1
    root = np.sqrt(b**2 + 4 * lam)
    # The root without cancellation: 2 / (b + root) for b > 0, (root - b) / (2 lam) otherwise.
    g = np.where(b > 0, 2 / (b + root), (root - b) / (2 * lam))
    dg = (g**2 + g) / (2 * lam * g + b)
    return {"test_error": rho * lam**2 * dg + noise * (g - lam * dg), "m": rho * (1 - lam * g), "V": g}


def test_square_loss_matches_marchenko_pastur_closed_form():
    alphas, lams = np.meshgrid(np.linspace(0.2, 4.0, 7), np.logspace(-3, 1, 6), indexing="ij")
    rho, noise = 1.3, 0.4
    solve = jax.jit(jax.vmap(lambda a, l: hd.solve(hd.ERM(
        alpha=a, lam=l, rho=rho, noise=noise, loss="square", teacher="linear"))))
    sol = solve(alphas.ravel(), lams.ravel())
    assert bool(jnp.all(sol.converged))
    ref = ridge_closed_form(alphas.ravel(), lams.ravel(), rho, noise)
    for key, value in ref.items():
        np.testing.assert_allclose(sol.observables[key], value, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.observables["test_error_total"], ref["test_error"] + noise, rtol=1e-8)


def test_ridgeless_regression_above_interpolation_threshold():
    # lam -> 0 with alpha > 1: excess error noise / (alpha - 1) (least squares).
    sol = hd.solve(hd.ERM(alpha=3.0, lam=0.0, noise=0.5, loss="square", teacher="linear"))
    assert bool(sol.converged)
    assert float(sol.observables["test_error"]) == pytest.approx(0.5 / 2.0, abs=1e-8)


# Logistic regression, noiseless sign teacher, rho = 1, lam = 0.01: test errors computed by two
# independent public implementations of these replica equations, which agree to six digits.
PUBLISHED = [(0.5, 0.322914), (1.0, 0.255064), (2.0, 0.174781), (4.0, 0.102586)]


def test_logistic_published_learning_curve():
    alphas = jnp.array([a for a, _ in PUBLISHED])
    sol = jax.vmap(lambda a: hd.solve(hd.ERM(alpha=a, lam=0.01)))(alphas)
    assert bool(jnp.all(sol.converged))
    np.testing.assert_allclose(sol.observables["test_error"], [e for _, e in PUBLISHED], atol=1e-5)


@pytest.mark.parametrize("loss", ["logistic", "hinge", "huber", "square"])
# The default run checks every loss with the sign teacher; the probit teacher's partition enters the same way.
@pytest.mark.parametrize("teacher", ["sign", pytest.param("probit", marks=pytest.mark.extended)])
def test_conjugates_match_a_fine_trapezoid_at_large_norm(loss, teacher):
    """The panel quadrature against a brute-force reference where Gauss-Hermite struggles (q = 150).

    The reference is a trapezoid rule on 100001 equispaced points per piece of [-12, 12], the pieces
    split at the prox's kinks (a trapezoid across a jump is only first-order accurate), and uses the
    direct form of Vhat, with the prox's derivative, rather than the model's integrated-by-parts form.
    """
    theory = hd.ERM(alpha=3.0, lam=0.01, loss=loss, teacher=teacher, noise=0.1, delta=0.7)
    m, q, V = 9.5, 150.0, 60.0
    state = hd.models.Overlaps(m=jnp.asarray(m), q=jnp.asarray(q), V=jnp.asarray(V))
    ours = theory.conjugates(state)
    channel, prox = theory.channel, theory.loss_fn
    V0, sq = float(theory.rho) - m**2 / q, np.sqrt(q)
    reference = np.zeros(3)
    for y in (-1.0, 1.0):
        kinks = sorted(float(b) / sq for b in prox.breakpoints(y, V))
        edges = [-12.0, *kinks, 12.0]
        # The midpoints keep each piece's ends off the kinks: both one-sided values are right.
        pieces = [jnp.linspace(a, b, 100_001)[1:-1] for a, b in zip(edges[:-1], edges[1:])]
        xi = jnp.concatenate(pieces)
        density = jnp.exp(-xi**2 / 2) / np.sqrt(2 * np.pi)
        omega, omega0 = sq * xi, m / sq * xi
        z, dz_domega, _ = prox.prox_derivatives(y, omega, V)
        f = (z - omega) / V
        Z = channel.partition(y, omega0, V0)
        dZ = Z * channel.dlog_partition(y, omega0, V0)
        for k, g in enumerate((dZ * f, Z * f**2, -Z * (dz_domega - 1) / V)):
            values = density * g
            start = 0
            for piece in pieces:  # a trapezoid per piece, extended to the piece's true ends
                stop = start + len(piece)
                h = float(piece[1] - piece[0])
                v = values[start:stop]
                reference[k] += float(h * (jnp.sum(v) - 0.5 * (v[0] + v[-1])) + h * (v[0] + v[-1]))
                start = stop
    np.testing.assert_allclose(np.array(ours, dtype=float), float(theory.alpha) * reference,
                               rtol=1e-6, atol=1e-12)


# The default run checks the default panels against a finer order at large norms in test_erm_edges.
@pytest.mark.extended
def test_panel_order_converges_where_hermite_did_not():
    def error(**kw):
        return float(hd.solve(hd.ERM(alpha=5.0, lam=0.001, **kw)).observables["test_error"])

    # q ~ 180 here: the default panels agree with twice as many nodes to 1e-6 ...
    assert abs(error() - error(panel_order=80)) < 1e-6
    assert abs(error(loss="hinge") - error(loss="hinge", panel_order=80)) < 1e-9


SETTINGS = {
    "logistic-sign": dict(loss="logistic", teacher="sign"),
    "hinge-probit": dict(loss="hinge", teacher="probit"),
    "huber-linear": dict(loss="huber", teacher="linear"),
    "square-sign": dict(loss="square", teacher="sign"),
}
FIELDS = ("alpha", "lam", "rho", "noise", "delta")
POINT = jnp.array([1.7, 0.3, 1.2, 0.1, 0.8])
OBSERVABLES = ("test_error", "train_loss", "q", "m")


def _observables(setting):
    def f(params):
        sol = hd.solve(hd.ERM(**dict(zip(FIELDS, params)), **SETTINGS[setting]))
        return jnp.stack([sol.observables[k] for k in OBSERVABLES])

    return f


def _with_values(f):
    """``f`` returning its value twice: the second is ``jacfwd``'s or ``jacrev``'s auxiliary output, so
    that one program gives the Jacobian at a point and the value there (one solve)."""

    def both(params):
        value = f(params)
        return value, value

    return both


def _neighbours(points, h):
    """``points`` followed by each one moved by ``+h`` and then ``-h`` along every parameter."""
    steps = h * jnp.eye(len(FIELDS))
    return jnp.concatenate([points, (points[:, None] + steps).reshape(-1, len(FIELDS)),
                            (points[:, None] - steps).reshape(-1, len(FIELDS))])


# The default run checks reverse mode with the hinge loss (and the probit teacher), and the logistic loss's
# reverse mode against its forward mode and differences (test_gradients_under_jit_vmap_and_forward_mode);
# the other losses differentiate through the same implicit-function path.
@pytest.mark.parametrize("setting", [s if s == "hinge-probit" else pytest.param(s, marks=pytest.mark.extended)
                                     for s in SETTINGS])
def test_gradients_match_central_differences(setting):
    """Reverse mode (grad) with respect to every parameter, against central differences. One
    program: the Jacobian at the point and the values at its neighbours (reverse mode's auxiliary
    output, vmapped)."""
    h = 1e-5
    jac, values = jax.jit(jax.vmap(jax.jacrev(_with_values(_observables(setting)), has_aux=True)))(
        _neighbours(POINT[None], h))
    plus, minus = values[1:1 + len(FIELDS)], values[1 + len(FIELDS):]
    for i, field in enumerate(FIELDS):
        fd = (plus[i] - minus[i]) / (2 * h)
        np.testing.assert_allclose(jac[0][:, i], fd, rtol=1e-5, atol=1e-8, err_msg=field)


def test_gradients_under_jit_vmap_and_forward_mode():
    """Forward mode (``jacfwd``, vmapped and jitted) against reverse mode (vmapped, not jitted) and
    central differences at three points, and a ``jvp`` (not vmapped) against the Jacobian. One
    compiled program gives the forward Jacobians, the values at the neighbours (``jacfwd``'s
    auxiliary output) and the ``jvp``."""
    f = _observables("logistic-sign")
    points = jnp.stack([POINT, POINT.at[1].set(0.02), POINT.at[0].set(4.0)])
    h, tangent = 1e-5, jnp.ones(len(FIELDS))

    @jax.jit
    def forward(points):
        jac, values = jax.vmap(jax.jacfwd(_with_values(f), has_aux=True))(points)
        return jac, values, jax.jvp(f, (POINT,), (tangent,))[1]

    jac, values, jvp = forward(_neighbours(points, h))
    jac_fwd = jac[: len(points)]
    jac_rev = jax.vmap(jax.jacrev(f))(points)
    np.testing.assert_allclose(jac_fwd, jac_rev, rtol=1e-8, atol=1e-12)
    n = len(points) * len(FIELDS)
    plus = values[len(points):len(points) + n].reshape(len(points), len(FIELDS), -1)
    minus = values[len(points) + n:].reshape(len(points), len(FIELDS), -1)
    for k in range(len(points)):
        for i in range(len(FIELDS)):
            fd = (plus[k, i] - minus[k, i]) / (2 * h)
            np.testing.assert_allclose(jac_fwd[k, :, i], fd, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(jvp, jac_fwd[0] @ tangent, rtol=1e-10)


def test_vmap_equals_point_by_point():
    alphas = jnp.array([0.3, 1.0, 2.5, 4.0])
    lams = jnp.array([0.001, 0.05, 1.0, 10.0])
    batch = jax.vmap(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l, loss="hinge")))(alphas, lams)
    for i, (a, l) in enumerate(zip(alphas, lams)):
        one = hd.solve(hd.ERM(alpha=float(a), lam=float(l), loss="hinge"))
        for key, value in one.observables.items():
            assert float(batch.observables[key][i]) == pytest.approx(float(value), rel=1e-9, abs=1e-12)


def test_newton_needs_tens_of_iterations_where_damped_iteration_needs_hundreds():
    theory = hd.ERM(alpha=4.0, lam=0.001)
    newton = hd.solve(theory)
    damped = hd.solve(theory, method=hd.Damped(0.5), max_steps=5000)
    assert bool(newton.converged) and int(newton.iterations) <= 20
    assert int(damped.iterations) > 5 * int(newton.iterations)
    assert float(newton.observables["test_error"]) == pytest.approx(
        float(damped.observables["test_error"]), abs=1e-8)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(alpha=0.0), "alpha"),
        (dict(alpha=-1.0), "alpha"),
        (dict(lam=-0.1), "lam"),
        (dict(rho=0.0), "rho"),
        (dict(loss="cauchy"), "loss"),
        (dict(teacher="relu"), "teacher"),
        (dict(teacher="sign", noise=0.5), "noise"),
        (dict(teacher="linear", loss="square", noise=-1.0), "noise"),
        (dict(loss="huber", teacher="linear", delta=0.0), "delta"),
        (dict(loss="logistic", teacher="linear"), "teacher"),
        (dict(lam=0.0, loss="hinge", teacher="sign"), "lam"),
        (dict(lam=0.0, loss="square", teacher="linear", alpha=0.5), "lam"),
        (dict(alpha=jnp.array([1.0, -2.0])), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
    ],
)
def test_bad_input_is_rejected_with_the_parameter_named(kwargs, name):
    with pytest.raises(hd.ParameterError, match=name):
        hd.ERM(**kwargs)


def test_separable_data_without_regularisation_is_flagged():
    # Noisy labels at lam = 0 and small alpha are linearly separable: no minimiser exists.
    sol = hd.solve(hd.ERM(alpha=1.0, lam=0.0, loss="logistic", noise=0.05))
    assert not bool(sol.converged)
    assert int(sol.status) in (hd.Status.DIVERGED, hd.Status.MAX_STEPS)
    # Above the separability threshold the same setting converges.
    sol = hd.solve(hd.ERM(alpha=3.0, lam=0.0, loss="logistic", noise=0.2))
    assert bool(sol.converged) and np.isfinite(float(sol.observables["test_error"]))


def test_float32_runs():
    theory = hd.ERM(alpha=jnp.float32(2.0), lam=jnp.float32(0.01))
    sol = hd.solve(theory)
    assert sol.observables["test_error"].dtype == jnp.float32
    assert bool(sol.converged)
    assert float(sol.observables["test_error"]) == pytest.approx(0.174781, abs=1e-4)


COMPATIBLE = [("logistic", "sign"), ("logistic", "probit"), ("hinge", "sign"), ("hinge", "probit"),
              ("square", "linear"), ("square", "sign"), ("huber", "linear"), ("huber", "probit")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(COMPATIBLE),
    alpha=st.floats(0.05, 20.0),
    lam=st.floats(1e-4, 100.0),
    rho=st.floats(0.1, 10.0),
    noise=st.floats(0.0, 0.49),
    delta=st.floats(0.05, 5.0),
)
def test_every_setting_is_converged_and_finite_or_flagged(kind, alpha, lam, rho, noise, delta):
    loss, teacher = kind
    # hd.solve's own compiled program per (loss, teacher), shared with the tests above.
    theory = hd.ERM(alpha=alpha, lam=lam, rho=rho, noise=noise, delta=delta, loss=loss, teacher=teacher)
    sol = hd.solve(theory)
    finite = all(bool(jnp.isfinite(v)) for v in sol.observables.values())
    if bool(sol.converged):
        assert finite
        # Within the tolerance in the solver's coordinates, or a fixed point to rounding in the
        # theory's own (near perfect recovery atanh(m / sqrt(rho q)) magnifies q's rounding).
        # The map, run op by op, only where the residual needs it.
        if float(sol.residual) > 1e-10:
            state = np.array([float(x) for x in jax.tree.leaves(sol.state)])
            mapped = np.array([float(x) for x in jax.tree.leaves(theory.update(sol.state))])
            assert np.all(np.abs(mapped - state) <= 16 * 2.3e-16 * np.abs(state))
    else:
        assert int(sol.status) in (hd.Status.MAX_STEPS, hd.Status.DIVERGED)
