"""The Bayes-optimal multi-index model (``k x k`` GAMP state evolution): ``k = 1`` against
``bayes-glm``, weak-recovery thresholds against closed forms, the trivial fixed point below and above
them, trivial and hard directions, a gradient against finite differences, two quadrature orders,
bad input and the command line."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import k0e, k1e

import hdtheory as hd
from hdtheory import ParameterError, cli
from compiled import optimised

weak_recovery = eqx.filter_jit(lambda theory: theory.weak_recovery())


def _state(theory):
    solution = hd.solve(theory)
    assert bool(solution.converged)
    return solution


@pytest.mark.parametrize(
    "link, channel, alpha, noise",
    [
        # The default run checks k = 1 against bayes-glm on the sign channel, and the linear link's
        # closed form in test_command_line.
        pytest.param("sum", "linear", 1.5, 0.3, marks=pytest.mark.extended),
        ("sign-product", "sign", 1.0, 0.1),
    ],
)
def test_one_direction_is_bayes_glm(link, channel, alpha, noise):
    """``k = 1``: the linear link is the linear channel and ``sign-product`` the sign channel of
    ``bayes-glm`` (Gaussian prior), state and generalisation error, to solver precision."""
    ours = _state(hd.MultiIndex(link=link, k=1, alpha=alpha, noise=noise))
    glm = _state(hd.BayesGLM(prior="gaussian", channel=channel, alpha=alpha, noise=noise))
    np.testing.assert_allclose(ours.state[0, 0], glm.state, rtol=1e-9)
    for name in ("gen_error", "gen_error_total"):
        np.testing.assert_allclose(ours.observables[name], glm.observables[name], rtol=1e-6)


def _product_threshold():
    """``alpha_c`` of ``y = z1 z2`` (noiseless), derived here. With ``a(y) = E[z1^2 | y] - 1 =
    E[z2^2 | y] - 1`` and ``E[z1 z2 | y] = y``, ``G(y) = [[a, y], [y, a]]`` and ``M -> E G M G`` has the
    eigenvectors ``I`` and ``[[0, 1], [1, 0]]`` with eigenvalue ``1 + E a^2`` (``E a y = 0``) and
    ``diag(1, -1)`` with ``E a^2 - 1``. The density of ``y`` is ``K0(|y|) / pi`` and
    ``E[z1^2 | y] = |y| K1(|y|) / K0(|y|)`` (``int_0^inf exp(-(s + y^2 / s) / 2) ds = 2 |y| K1(|y|)``)."""

    def integrand(y):  # E a^2 = 2 int_0^inf a(y)^2 K0(y) / pi dy, K's scaled by exp(y)
        return 2 * (y * k1e(y) / k0e(y) - 1) ** 2 * k0e(y) * math.exp(-y) / math.pi

    second = quad(integrand, 0, 1, limit=200)[0] + quad(integrand, 1, 60, limit=200)[0]
    return 1 / (1 + second)


def _abs_difference_threshold():
    """``alpha_c`` of ``y = |z1| - |z2|`` (noiseless), derived here: flipping the sign of either field
    leaves ``y`` alone, so ``E[z | y] = 0`` and ``E[z1 z2 | y] = 0``; ``G = diag(a(y), a(-y))`` with
    ``a(y) = E[z1^2 | y] - 1`` (swapping the fields maps ``y`` to ``-y``), and ``lambda_max = E a^2``
    (the off-diagonal mode has ``E a(y) a(-y) <= E a^2``). ``|z_i|`` are half-normal ``u``, ``v`` and
    ``E[z1^2 | y]`` a ratio of integrals over ``u`` with ``v = u - y``."""
    half = lambda u: 2 * math.exp(-u * u / 2) / math.sqrt(2 * math.pi)

    def weighted(y):  # p(y) a(y)^2
        lo = max(0.0, y)
        p = quad(lambda u: half(u) * half(u - y), lo, lo + 12)[0]
        second = quad(lambda u: u * u * half(u) * half(u - y), lo, lo + 12)[0]
        return p * (second / p - 1) ** 2

    return 1 / (quad(weighted, -12, 0, limit=200)[0] + quad(weighted, 0, 12, limit=200)[0])


def test_weak_recovery_thresholds():
    """Troiani et al. 2025 (AISTATS, arXiv:2405.15480): ``alpha_c = 1 / lambda_max`` of
    ``M -> E_y G M G``. Against closed forms derived here, independently of the model's quadratures:
    ``z1 z2`` (the Bessel integral above; the model needs noise, 1e-4 shifts it by about 1e-4) and
    ``|z1| - |z2|`` (a one-dimensional integral above, likewise),
    ``sign(z1 z2)``: ``E[z1 z2 | y] = 2 y / pi`` and ``E[z_i^2 | y] = 1``, so ``alpha_c = pi^2 / 4``;
    ``sign(z1 z2 z3)``, a parity, ``G = 0``: ``alpha_c = inf`` (the paper's diverging thresholds);
    the trivial subspace: none for these, all of it for the linear link, where
    ``E[z | y] = y / (1 + noise)`` and ``T = 1 / (1 + noise)``.
    Published values: ``alpha_c ~ 0.59375`` for ``z1 z2`` and ``pi^2 / 4`` for ``sign(z1 z2)`` (Defilippis,
    Dandi, Mergny, Krzakala and Loureiro 2025, "Optimal spectral transitions in high-dimensional
    multi-index models", NeurIPS: Fig. 1 and Fig. 4 captions; Figs. 5 and 6 captions, App. E.2.2)."""
    np.testing.assert_allclose(_product_threshold(), 0.59375, atol=5e-6)  # five printed digits
    alpha_c, trivial = weak_recovery(hd.MultiIndex(link="product", k=2, noise=1e-4))
    np.testing.assert_allclose(alpha_c, _product_threshold(), rtol=5e-4)
    assert np.all(np.abs(trivial) < 1e-12)
    alpha_c, trivial = weak_recovery(hd.MultiIndex(link="abs-difference", k=2, noise=1e-4))
    np.testing.assert_allclose(alpha_c, _abs_difference_threshold(), rtol=5e-4)
    assert np.all(np.abs(trivial) < 1e-12)
    alpha_c, trivial = weak_recovery(hd.MultiIndex(link="sign-product", k=2, noise=0.0))
    np.testing.assert_allclose(alpha_c, math.pi**2 / 4, rtol=1e-5)
    assert np.all(np.abs(trivial) < 1e-12)
    alpha_c, trivial = weak_recovery(hd.MultiIndex(link="sign-product", k=3, noise=0.0))
    assert np.isinf(alpha_c) and np.all(np.abs(trivial) < 1e-12)
    alpha_c, trivial = weak_recovery(hd.MultiIndex(link="sum", k=1, noise=0.25))
    np.testing.assert_allclose(trivial, [1 / 1.25], rtol=1e-10)


def _mmse(alpha):
    theory = hd.MultiIndex(link="product", k=2, alpha=alpha, noise=0.1, order=4, panel_order=0, quadrature_tol=0.05)
    solution = hd.solve(theory)
    observables = solution.observables
    return observables["mmse_1"], (solution.status, observables["alpha_c"], observables["quadrature_error"])


def test_trivial_fixed_point_and_gradient():
    """``y = z1 z2 + noise``: from the uninformed start the overlap stays zero below ``alpha_c`` and
    grows above it; the derivative of the MMSE in ``alpha`` (implicit differentiation through
    ``solve``) against central differences (step 1e-4, error about 1e-8). On the Hermite rule of 4
    nodes per axis (``panel_order = 0``): these hold for any rule, and the overlaps stay small (at
    ``1.4 alpha_c``, ``m_1 = 0.09``, its error estimate 1.6e-2, below the tolerance of 5e-2 set here).
    At ``alpha = 3`` (``m_1 = 0.87``) its estimated error (2.3e-1; 4.7e-2 against the panels) is above
    that tolerance: the solve ends ``INACCURATE``, not converged."""
    alpha_c = float(weak_recovery(hd.MultiIndex(link="product", k=2, noise=0.1, order=4))[0])
    h, above = 1e-4, 1.4 * alpha_c
    alphas = jnp.asarray([0.8 * alpha_c, above - h, above, above + h, 3.0])
    # Forward mode: a fifth less to trace and compile than value_and_grad, the same implicit derivative.
    tangent = lambda alpha: jax.jvp(_mmse, (alpha,), (jnp.ones_like(alpha),), has_aux=True)
    mmse, grad, (status, reported, error) = optimised(jax.vmap(tangent))(alphas)
    assert status.tolist() == [hd.Status.CONVERGED] * 4 + [hd.Status.INACCURATE]
    assert np.all(error[:4] < 0.05) and error[4] > 0.05 and 0 < mmse[4] < 0.2
    np.testing.assert_allclose(reported, alpha_c, rtol=1e-12)
    assert mmse[0] > 1 - 1e-8 and mmse[2] < 0.95
    np.testing.assert_allclose(grad[2], (mmse[3] - mmse[1]) / (2 * h), rtol=1e-5)
    assert grad[2] < 0


def test_trivial_and_hard_directions():
    """The staircase ``z1 + z1 z2``: ``E[z | y]`` is not zero along either field (the label is skewed
    in ``z2`` too), so both are in Troiani et al.'s trivial subspace, learned at any ``alpha``.
    ``z1 + z2^2`` (a custom link): ``z2 -> -z2`` leaves the label alone, so ``E[z2 | y] = 0`` and ``z2``
    is hard: at small ``alpha`` the first direction is learned while the second stays at zero, and
    to first order ``m_1 = alpha T_11`` (``T`` learned in one step)."""
    _, trivial = weak_recovery(hd.MultiIndex(link="staircase", k=2, noise=0.1))
    assert trivial[1] > 0.1
    alpha = 0.05
    custom = hd.MultiIndex(
        link="custom", link_fn=lambda z: z[..., 0] + z[..., 1] ** 2, k=2, alpha=alpha, noise=0.5, order=4
    )
    solution = _state(custom)
    observables = solution.observables
    assert abs(observables["m_2"]) < 1e-8 and abs(observables["M_1_2"]) < 1e-8
    assert observables["trivial_2"] < 1e-10
    # y = z1 + z2^2 + noise: E[z1 | y] = (y - 1) / (1 + 2 + noise) (Cov(z1, y) = 1, Var y = 3 + noise)
    # is not exact, but T_11 = E E[z1 | y]^2 >= the linear estimator's 1 / (3 + noise).
    assert observables["trivial_1"] > 1 / 3.5
    np.testing.assert_allclose(observables["m_1"] / alpha, observables["trivial_1"], rtol=0.1)


# The default run checks the Hermite rule in xi against an independent rule in
# test_continuous_links_small_to_near_perfect_recovery[product].
@pytest.mark.extended
def test_two_quadrature_orders():
    """The conjugate ``Mhat`` of ``z1 z2`` at a small ``M``, where the Hermite rule in ``xi``
    (``panel_order = 0``) is accurate: the default label and posterior rules and 8 Hermite nodes per
    axis against doubled orders, within 5e-4 relative (the ``xi`` rule dominates)."""
    M = jnp.asarray([[0.3, 0.05], [0.05, 0.2]])
    conjugate = eqx.filter_jit(lambda theory: theory.conjugate(M))
    low = conjugate(hd.MultiIndex(link="product", k=2, noise=0.1, panel_order=0))
    high = conjugate(
        hd.MultiIndex(link="product", k=2, noise=0.1, panel_order=0, order=16, inner_order=8, label_order=8)
    )
    np.testing.assert_allclose(low, high, rtol=5e-4, atol=5e-5)


def _polar_rule(centre, angles, order=6, panels=16, period=2 * np.pi, radii=None):
    """An independent rule for ``E f(xi)``, ``xi ~ N(0, I_2)``: polar coordinates about ``centre``,
    Gauss-Legendre in the angle on panels cut at ``angles`` and at ``panels`` equal steps over
    ``period`` (``pi`` for an integrand even about ``centre = 0``), and in the radius on panels with
    edges ``radii`` (by default geometric from 1e-3 to 12) (NumPy)."""
    x, w = np.polynomial.legendre.leggauss(order)

    def panels_of(edges):
        lo, hi = edges[:-1, None], edges[1:, None]
        return (0.5 * (lo + hi) + 0.5 * (hi - lo) * x).ravel(), (0.5 * (hi - lo) * w).ravel()

    theta_edges = np.sort(np.mod(np.concatenate([angles, np.linspace(0, period, panels + 1)[:-1]]), period))
    theta, w_theta = panels_of(np.concatenate([theta_edges, theta_edges[:1] + period]))
    radii = np.concatenate([[0.0], np.geomspace(1e-3, 12.0, panels // 2)]) if radii is None else radii
    r, w_r = panels_of(np.asarray(radii))
    xi = centre + r[:, None, None] * np.stack([np.cos(theta), np.sin(theta)], -1)[None]
    weights = (w_r * r)[:, None] * w_theta[None] * np.exp(-0.5 * np.sum(xi**2, -1)) / period
    return xi.reshape(-1, 2), weights.ravel()


def test_panels_near_perfect_recovery():
    """``sign(z1 z2)`` near perfect recovery (``M = diag(0.9, 0.8)``, ``diag(0.99, 0.97)`` and a
    correlated overlap): ``g_out g_out^T`` lives on strips of width ``sqrt(V_ii)`` about the lines
    ``omega_i = 0``, where the Hermite rule of 8 nodes per axis is 60 to 100% off. ``Mhat`` of the
    default panel rule against the same integrand averaged on an independent polar rule about the
    lines' crossing (5760 nodes; within 3e-5 of 12096), within 1e-3; and its derivative along a
    direction of ``M`` (the panels move with ``M``) against central differences (step 1e-5), at 6
    nodes per panel (at the default 3 the two differ by 3e-3, each within that of the converged
    derivative)."""
    theory = hd.MultiIndex(link="sign-product", k=2, alpha=2.0, noise=0.05)
    Ms = jnp.asarray([np.diag([0.9, 0.8]), np.diag([0.99, 0.97]), [[0.9, 0.05], [0.05, 0.8]]])
    ours = jax.jit(jax.vmap(theory.conjugate))(Ms)

    @jax.jit
    def integrand(omega, V):
        weights, means, _ = theory._labels(omega, V)
        g = jnp.linalg.solve(V, (means - omega).T).T
        return jnp.einsum("n,ni,nj->ij", weights, g, g)

    for M, Mhat in zip(np.asarray(Ms), np.asarray(ours)):
        L = np.linalg.cholesky(M)
        # The lines omega_i = 0 are rays of xi at the angles of (L^T e_i) + pi / 2 and their opposites.
        angles = [np.arctan2(row[1], row[0]) + np.pi / 2 + half for row in L for half in (0.0, np.pi)]
        xi, w = _polar_rule(np.zeros(2), np.asarray(angles))
        values = jax.vmap(integrand, (0, None))(jnp.asarray(xi @ L.T), jnp.asarray(np.eye(2) - M))
        reference = theory.alpha * np.einsum("n,nij->ij", w, np.asarray(values))
        np.testing.assert_allclose(Mhat, reference, rtol=0, atol=1e-3 * np.max(np.abs(reference)))
    finer = hd.MultiIndex(link="sign-product", k=2, alpha=2.0, noise=0.05, panel_order=6)
    h, M, dM = 1e-5, Ms[2], jnp.asarray([[0.01, -0.02], [-0.02, 0.03]])
    # The tangent at M and the values at M +- h dM: one program.
    linearised = jax.jit(jax.vmap(lambda M: jax.jvp(finer.conjugate, (M,), (dM,))))
    values, tangents = linearised(jnp.stack([M, M + h * dM, M - h * dM]))
    np.testing.assert_allclose(tangents[0], (values[1] - values[2]) / (2 * h), rtol=1e-4)


def _integrand(theory, omega, V):
    """``int dy Z_out g_out g_out^T`` at each of the points ``omega`` ``(N, k)`` with ``V`` ``(N, k, k)``."""

    def at(point):
        omega, V = point
        weights, means, _ = theory._labels(omega, V)
        g = jnp.linalg.solve(V, (means - omega).T).T
        return jnp.einsum("n,ni,nj->ij", weights, g, g)

    # Thousands of points: the run is the cost, not the compilation.
    return optimised(lambda omega, V: jax.lax.map(at, (omega, V), batch_size=256))(omega, V)


_LINES = {"product": (0.0, 0.0), "staircase": (0.0, -1.0), "abs-difference": (0.0, 0.0)}
_RADII = np.asarray([0.0, 1e-3, 1e-2, 0.1, 0.4, 1.0, 2.0, 3.0, 4.5, 6.5, 9.0])


@pytest.mark.parametrize(
    "link",
    [
        "product",
        # The default run checks the rule in xi on z1 z2 (and its derivative) through the same path.
        pytest.param("staircase", marks=pytest.mark.extended),
        pytest.param("abs-difference", marks=pytest.mark.extended),
    ],
)
def test_continuous_links_small_to_near_perfect_recovery(link):
    """The default rule in ``xi`` (the panels cut at the link's lines) for ``z1 z2``, ``z1 + z1 z2`` and
    ``|z1| - |z2|`` (``noise = 0.01``), from a small overlap to near perfect recovery, ``M`` in
    {``[[0.3, 0.05], [0.05, 0.2]]``, ``diag(0.9, 0.8)``, ``diag(0.99, 0.98)``}: ``Mhat``
    against the same integrand on an independent polar rule about the lines' crossing (1600 nodes on a
    half-turn for the even links, 3200 on a full one; for ``z1 z2`` within 2e-5 of 11000 nodes),
    within 1e-3 of the largest entry (measured: 4.7e-4, 4.9e-5, 9.3e-5 for ``z1 z2`` at the default
    orders, 1.8e-4 and 6.3e-4 at most for the others; the Hermite rule of 8 nodes per axis,
    ``panel_order = 0``, is 3.4% off for ``z1 z2`` and up to 15% for the others). For the staircase
    and ``|z1| - |z2|`` both sides share the integrand, at 3 label and 2 posterior nodes per panel (half
    the map's default cost, the same rule in ``xi``). For ``z1 z2`` the map is at its default orders (4
    label and 3 posterior nodes per panel) and the reference's integrand at 6 and 4 (those of the
    threshold), so that the map's leaner label and posterior rules are checked too; also its
    derivative along a direction of ``M``
    against central differences (step 1e-5) from the same compiled program, within 3e-4 (the label
    rule's edges are held fixed in the derivative: 1.4e-4 apart at 4 nodes per panel, 1.5e-3 at 3).

    The Hermite rule of 8 nodes per axis (``panel_order = 0``) against the same reference: its error
    estimate ``quadrature_error`` (order 8 against 7) is at least half its error, and it is flagged
    (above the default tolerance 5e-3) exactly where its error is above that: nowhere at the small
    overlap for ``z1 z2`` and the staircase (errors 4.4e-4 and 4.0e-4, estimates 1.6e-3 and 1.2e-3),
    everywhere for ``|z1| - |z2|`` (1.9e-2 at the small overlap, estimate 4.6e-2) and at
    ``diag(0.9, 0.8)`` and ``diag(0.99, 0.98)`` for all three (errors 1.6e-2 to 1.5e-1, estimates
    2.4 to 4.3 times them)."""
    # z1 z2 at the default orders; the others at half their cost (the same rule in xi).
    orders = {} if link == "product" else {"label_order": 3, "inner_order": 2}
    theory = hd.MultiIndex(link=link, k=2, alpha=1.0, noise=0.01, **orders)
    Ms = np.asarray([[[0.3, 0.05], [0.05, 0.2]], np.diag([0.9, 0.8]), np.diag([0.99, 0.98])])
    even = link != "staircase"
    h, dM = 1e-5, np.asarray([[0.01, -0.02], [-0.02, 0.03]])
    if link == "product":  # the values at M and M +- h dM and the tangents: one program
        linearised = optimised(jax.vmap(lambda M: jax.jvp(theory.conjugate, (M,), (jnp.asarray(dM),))))
        ours, tangents = linearised(jnp.asarray(np.concatenate([Ms, Ms[1] + np.asarray([h, -h])[:, None, None] * dM])))
    else:
        ours = optimised(jax.vmap(theory.conjugate))(jnp.asarray(Ms))
    hermite = hd.MultiIndex(link=link, k=2, alpha=1.0, noise=0.01, panel_order=0, **orders)
    on_hermite, estimates = jax.jit(jax.vmap(lambda M: (hermite.conjugate(M), hermite.quadrature_error(M))))(
        jnp.asarray(Ms)
    )
    omegas, Vs, rules = [], [], []
    for M in Ms:
        L = np.linalg.cholesky(M)
        # The lines omega_i = c_i are lines of xi at the angles of (L^T e_i) + pi / 2, through L^{-1} c.
        angles = [np.arctan2(row[1], row[0]) + np.pi / 2 + half for row in L for half in (0.0, np.pi)]
        xi, w = _polar_rule(
            np.linalg.solve(L, _LINES[link]), np.asarray(angles), 4, 8, np.pi if even else 2 * np.pi, _RADII
        )
        omegas.append(xi @ L.T)
        Vs.append(np.broadcast_to(np.eye(2) - M, (len(w), 2, 2)))
        rules.append(w)
    values = np.asarray(_integrand(theory, jnp.asarray(np.concatenate(omegas)), jnp.asarray(np.concatenate(Vs))))
    values = np.split(values, np.cumsum([len(w) for w in rules])[:-1])
    errors = []
    for Mhat, w, value, rough in zip(np.asarray(ours), rules, values, np.asarray(on_hermite)):
        reference = theory.alpha * np.einsum("n,nij->ij", w, value)
        np.testing.assert_allclose(Mhat, reference, rtol=0, atol=1e-3 * np.max(np.abs(reference)))
        errors.append(np.max(np.abs(rough - reference)) / np.max(np.abs(reference)))
    errors, tol = np.asarray(errors), hermite.quadrature_tol
    assert np.all(np.asarray(estimates) >= 0.5 * errors), (estimates, errors)
    np.testing.assert_array_equal(np.asarray(estimates) > tol, errors > tol)
    assert np.all(errors[1:] > tol)  # diag(0.9, 0.8) and diag(0.99, 0.98): flagged
    if link == "product":
        np.testing.assert_allclose(tangents[1], (ours[3] - ours[4]) / (2 * h), rtol=3e-4)


def test_bad_input():
    for kwargs, name in (
        ({"k": 0}, "k"),
        ({"link": "abs-difference", "k": 3}, "k"),
        ({"link": "product", "k": 1}, "k"),
        ({"noise": -0.1}, "noise"),
        ({"link": "product", "noise": 0.0}, "noise"),
        ({"link": "sign-product", "noise": 0.5}, "noise"),
        ({"link": "custom"}, "link_fn"),
        ({"link_fn": lambda z: z[..., 0]}, "link_fn"),
        ({"link": "staircase", "alpha": 0.0}, "alpha"),
        ({"panel_order": -1}, "panel_order"),
        ({"panel_order": 0, "order": 1}, "order"),
        ({"quadrature_tol": 0.0}, "quadrature_tol"),
    ):
        with pytest.raises(ParameterError, match=name):
            hd.MultiIndex(**kwargs)


@pytest.mark.parametrize(
    "link_fn, problem",
    [
        (lambda z: z[..., 2], "reads past the fields"),  # jnp indexing would clamp it to z[..., 1]
        (lambda z: jnp.take(z, 2, axis=-1), "reads past the fields"),  # jnp.take would fill NaN
        (lambda z: z, "returns shape (3, 2), not (3,)"),
        (lambda z: z[0] + z[1], "returns shape (2,), not (3,)"),  # the leading axis, not the fields'
        (lambda z: np.sin(z[..., 0]), "TracerArrayConversionError"),  # NumPy: it cannot be traced
        (lambda z: jnp.log(z[..., 0]), "non-finite values"),
        ("abs", "got 'abs'"),
    ],
)
def test_bad_link_fn(link_fn, problem):
    """A ``link_fn`` that is not a function of the ``k`` fields fails at construction, in one line
    naming ``link_fn``, ``k`` and what is wrong (the probe compiles only the function itself)."""
    with pytest.raises(ParameterError) as info:
        hd.MultiIndex(link="custom", link_fn=link_fn, k=2)
    message = str(info.value)
    assert message.startswith("parameter 'link_fn' must be a function of the k=2 fields") and "\n" not in message
    assert problem in message, message


def test_command_line(capsys):
    """``hdtheory eval multi-index`` (the linear link at ``k = 1``, whose fixed point is the root of
    ``q = qhat / (1 + qhat)``, ``qhat = alpha / (noise + 1 - q)``)."""
    assert cli.main(["eval", "multi-index", "link=sum", "k=1", "alpha=2", "noise=0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # q (noise + 1 - q) + q alpha = alpha: q^2 - (1 + noise + alpha) q + alpha = 0.
    b = 1 + 0.5 + 2
    assert out["converged"]
    np.testing.assert_allclose(out["m_1"], (b - math.sqrt(b * b - 8)) / 2, rtol=1e-5)  # printed to 6 digits


# The default run checks the command line's multi-index path (test_command_line), sign-product's alpha_c in
# closed form (test_multi_index_threshold.py::test_sign_product_closed_forms) and the overlap's growth above
# alpha_c from the uninformed start at k = 2 (test_trivial_fixed_point_and_gradient).
@pytest.mark.extended
def test_command_line_two_directions(capsys):
    """``hdtheory eval multi-index link=sign-product k=2``: ``alpha_c = pi^2 / (4 (1 - 2 noise)^2)`` (the
    closed form of ``test_multi_index_threshold.py``, 3.0462 at flips 0.05), and at ``alpha = 3.5``,
    above it, a converged fixed point that has left ``M = 0`` with both directions alike (swapping the
    fields leaves the labels alone)."""
    args = ["eval", "multi-index", "link=sign-product", "k=2", "alpha=3.5", "noise=0.05", "--json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and out["status"] == "converged"
    np.testing.assert_allclose(out["alpha_c"], math.pi**2 / (4 * (1 - 2 * 0.05) ** 2), rtol=1e-5)
    assert out["m_1"] > 0.05
    np.testing.assert_allclose(out["m_2"], out["m_1"], rtol=1e-6)
