"""Robust regression in ``erm``: the outlier-contaminated teacher (Vilucchio, Troiani, Erba & Krzakala
2023), the absolute loss, the non-convex Tukey and Cauchy losses (the global minimiser of the prox
objective), and the replicon (de Almeida-Thouless) stability ``at_stability``.

Checked against: brute-force minimisation and SciPy ``quad`` (proxes, jumps, Gaussian averages),
the ridge closed form of an equivalent linear teacher, Monte Carlo labels, the channel's Hermite
quadrature, simulations at d = 500, finite differences.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import hdtheory as hd
import hdtheory.simulate
from hdtheory import kernels
from hdtheory.models.erm import Overlaps

OUTLIERS = dict(teacher="outliers", noise=0.1, epsilon=0.2, beta=0.0, noise_out=5.0)
"""Vilucchio et al.'s setting: 20% of the labels pure noise of variance 5, inliers of noise 0.1."""


def second_derivative(loss, s, c):
    """``rho''(s)`` of the Tukey and Cauchy losses, written out."""
    u = (s / c) ** 2
    if isinstance(loss, kernels.Tukey):
        return np.where(u <= 1, (1 - u) * (1 - 5 * u), 0.0)
    return (1 - u) / (1 + u) ** 2


def loss_of(loss, s, c):
    """``rho(s)`` of the Tukey and Cauchy losses, written out."""
    if isinstance(loss, kernels.Tukey):
        return c**2 / 6 * (1 - (1 - np.minimum((s / c) ** 2, 1)) ** 3)
    return 0.5 * c**2 * np.log1p((s / c) ** 2)


def brute_residual(loss, r, V, c):
    """The global minimiser of ``h(s) = (r - s)^2 / (2 V) + rho(s)`` by a dense grid over
    ``[-|r|, |r|]`` and a bounded scalar minimisation about its best point (NumPy and SciPy only);
    ``(s, h)``."""
    h = lambda s: (r - s) ** 2 / (2 * V) + loss_of(loss, s, c)
    grid = np.linspace(-abs(r), abs(r), 4001)
    k = np.argmin(h(grid))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best = optimize.minimize_scalar(h, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x if hi > lo else 0.0
    return best, h


@pytest.mark.parametrize("loss", [kernels.Tukey(1.3), kernels.Cauchy(0.7)], ids=["tukey", "cauchy"])
def test_robust_prox_is_the_global_minimiser(loss):
    """The prox against brute-force minimisation at steps below and above the jumps' onset
    (Tukey 5/4, Cauchy 8); at the jump ``r_J`` the two local minima tie; derivatives of the prox in
    ``(r, V, c)`` and of ``r_J`` in ``(V, c)`` against finite differences."""
    c = float(loss.c)
    # Compiled programs (their arguments' shapes and types fixed), not op-by-op runs for each call.
    prox = jax.jit(lambda r, V, c: kernels.losses._robust_residual(type(loss)(c), r, V))
    jump = jax.jit(lambda V, c: type(loss)(c).jump(V))
    r = np.linspace(-6.0, 6.0, 41) + 0.013
    for V in (0.5, 3.0, 20.0):
        ours = np.asarray(prox(jnp.asarray(r), V, c))
        for r_k, s_k in zip(r, ours):
            best, h = brute_residual(loss, r_k, V, c)
            assert h(s_k) <= h(best) + 1e-12 and abs(s_k - best) < 1e-6, (V, r_k, s_k, best)
    onset = 1.25 if isinstance(loss, kernels.Tukey) else 8.0
    assert float(jump(0.99 * onset, c)) == 0.0 < float(jump(1.01 * onset, c))
    V = 20.0
    r_J = float(jump(V, c))
    a1, a2 = (float(a) for a in jax.jit(lambda V, c: type(loss)(c).turning_points(V))(V, c))
    _, h = brute_residual(loss, r_J, V, c)
    low = optimize.minimize_scalar(h, bounds=(0, a1), method="bounded", options={"xatol": 1e-12})
    high = optimize.minimize_scalar(h, bounds=(a2, r_J), method="bounded", options={"xatol": 1e-12})
    assert abs(low.fun - high.fun) < 1e-9 and high.x - low.x > 0.5

    prox_grad = jax.jit(jax.grad(prox, argnums=(0, 1, 2)))
    e = 1e-6
    for args in ((1.1, 3.0, c), (r_J + 0.3, V, c), (r_J - 0.3, V, c)):
        grads = prox_grad(*args)
        for k in range(3):
            up, down = list(args), list(args)
            up[k] += e
            down[k] -= e
            assert np.isclose(grads[k], (prox(*up) - prox(*down)) / (2 * e), rtol=1e-6, atol=1e-8)
    grads = jax.jit(jax.grad(jump, argnums=(0, 1)))(V, c)
    assert np.allclose(grads, [(jump(V + e, c) - jump(V - e, c)) / (2 * e), (jump(V, c + e) - jump(V, c - e)) / (2 * e)], rtol=1e-6)


@pytest.mark.parametrize(
    "loss, V",
    [(kernels.Tukey(2.0), 3.0), (kernels.Cauchy(1.0), 12.0), (kernels.Cauchy(1.0), 2.0), (kernels.Absolute(), 0.7)],
    ids=["tukey-jumps", "cauchy-jumps", "cauchy", "absolute"],
)
def test_residual_averages_against_quad(loss, V):
    """``(E r f / s2, E f^2, E l)`` and ``E f'^2`` over ``r ~ N(0, s2)`` against SciPy ``quad`` of the
    brute-force prox, with breakpoints at the jumps (to 1e-8)."""
    s2 = 1.7
    if isinstance(loss, kernels.Absolute):
        s_of = lambda r: r - np.clip(r, -V, V)  # the new residual y - prox = r - V f
        ds_of = lambda r: float(abs(r) > V)
        rho, points = abs, [-V, V]
    else:
        c = float(loss.c)
        s_of = lambda r: brute_residual(loss, r, V, c)[0]
        ds_of = lambda r: 1 / (1 + V * second_derivative(loss, s_of(r), c))  # the stationarity condition
        rho = lambda s: loss_of(loss, s, c)
        r_J = float(jax.jit(lambda V: loss.jump(V))(V))
        points = [-r_J, r_J] if r_J > 0 else None
    density = lambda r: np.exp(-r * r / (2 * s2)) / np.sqrt(2 * np.pi * s2)
    f = lambda r: (r - s_of(r)) / V
    quad = lambda g: integrate.quad(lambda r: g(r) * density(r), -12, 12, points=points, limit=400, epsabs=1e-12)[0]
    expected = [quad(lambda r: r * f(r)) / s2, quad(lambda r: f(r) ** 2), quad(lambda r: rho(s_of(r)))]
    # One compiled program, not op-by-op runs.
    got, got_replicon, jumps = jax.jit(lambda s2, V: (
        loss.gaussian_residual_averages(s2, V), loss.gaussian_residual_replicon(s2, V), loss.prox_jumps(V)
    ))(jnp.asarray(s2), jnp.asarray(V))
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    replicon = quad(lambda r: ((1 - ds_of(r)) / V) ** 2)
    np.testing.assert_allclose(got_replicon, replicon, rtol=1e-7)
    assert bool(jumps) == (points is not None and not isinstance(loss, kernels.Absolute))


def test_outlier_channel():
    """The mixture's partition function is a density whose moments are the closed forms; its label
    quadrature integrates them; its samples have them (Monte Carlo, 5 standard errors)."""
    channel = kernels.Outliers(0.3, epsilon=0.25, beta=-0.6, noise_out=2.0)
    omega, V = 0.4, 0.7
    Z = lambda y: float(channel.partition(y, omega, V))
    mean = (0.75 + 0.25 * -0.6) * omega
    second = 0.75 * (omega**2 + V + 0.3) + 0.25 * (0.36 * omega**2 + 0.36 * V + 2.0)
    for k, expected in enumerate((1.0, mean, second)):
        assert np.isclose(integrate.quad(lambda y: y**k * Z(y), -30, 30, epsabs=1e-13)[0], expected, rtol=1e-10)
    y, w, dw = channel.label_quadrature(jnp.asarray(omega), jnp.asarray(V), 32)
    np.testing.assert_allclose([jnp.sum(w), jnp.sum(w * y), jnp.sum(w * y**2), jnp.sum(dw * y)],
                               [1.0, mean, second, 0.75 - 0.25 * 0.6], rtol=1e-12)
    log_Z = lambda o: jnp.log(channel.partition(0.9, o, V))
    np.testing.assert_allclose(channel.dlog_partition(0.9, omega, V), jax.grad(log_Z)(omega), rtol=1e-12)
    z = jax.random.normal(jax.random.PRNGKey(1), (400_000,))
    labels = np.asarray(channel.sample(jax.random.PRNGKey(2), z))
    second_z, cross = channel.label_moments(1.0)
    for sample, expected in ((labels**2, second_z), (np.asarray(z) * labels, cross)):
        assert abs(sample.mean() - expected) < 5 * sample.std() / np.sqrt(sample.size)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_square_loss_is_ridge_of_the_equivalent_teacher(beta):
    """The square loss sees the labels through ``E y^2``, ``E z y`` alone: with outliers it is ridge on
    the linear teacher ``y = kappa z + noise'`` (``kappa = 1 - eps + eps beta``, ``rho' = kappa^2 rho``,
    ``noise' = E y^2 - kappa^2 rho``, ``m = m' / kappa``), whose fixed point is in closed form
    (Marchenko-Pastur); to 1e-9. Its replicon is ``alpha (V / (1 + V))^2 < 1``."""
    eps, rho = 0.2, 1.3
    kappa = 1 - eps + eps * beta
    settings = dict(OUTLIERS, beta=beta, rho=rho, alpha=1.7, lam=0.05, loss="square")
    sol = hd.solve(hd.ERM(**settings))
    second = (1 - eps) * (rho + 0.1) + eps * (beta**2 * rho + 5.0)
    ridge = hd.ERM(alpha=1.7, lam=0.05, loss="square", teacher="linear", rho=kappa**2 * rho, noise=second - kappa**2 * rho)
    exact = ridge._ridge_fixed_point(jnp.ones(()))
    obs = sol.observables
    assert sol.converged
    np.testing.assert_allclose([obs["m"], obs["q"], obs["V"]], [exact.m / kappa, exact.q, exact.V], rtol=1e-9)
    np.testing.assert_allclose(obs["at_stability"], 1.7 * (exact.V / (1 + exact.V)) ** 2, rtol=1e-9)
    np.testing.assert_allclose(obs["test_error"], rho - 2 * obs["m"] + obs["q"], rtol=1e-12)


def test_closed_forms_against_channel_quadrature():
    """Huber and absolute losses with outliers: the truncated-Gaussian-mixture closed forms against
    the channel's own Hermite quadrature (the generic path, 300 nodes a axis: the kinks leave ~1e-5)."""
    for loss in ("huber", "absolute"):
        theory = hd.ERM(loss=loss, alpha=3.0, lam=0.1, delta=0.8, order=300, **dict(OUTLIERS, beta=0.4))
        state = Overlaps(m=jnp.asarray(0.8), q=jnp.asarray(0.9), V=jnp.asarray(0.55))
        y, omega, w, dw = theory._channel_terms(state)
        f, f2, loss_value = theory._outputs(y, omega, state.V)
        xi = omega / jnp.sqrt(state.q)
        Vhat = -3.0 / jnp.sqrt(state.q) * jnp.sum((xi * w - state.m / jnp.sqrt(state.q) * dw) * f)
        quadrature = [3.0 * jnp.sum(dw * f), 3.0 * jnp.sum(w * f2), Vhat, jnp.sum(w * loss_value)]
        np.testing.assert_allclose(theory._closed_form(state), quadrature, rtol=3e-5)


def _agree(theory, sim, keys, slack):
    obs = hd.solve(theory).observables
    for key in keys:
        mean, sem = float(sim.mean[key]), float(sim.sem[key])
        assert abs(float(obs[key]) - mean) <= 4 * sem + slack * abs(mean), (key, float(obs[key]), mean, sem)
    return obs


SIMULATED = ("m", "q", "test_error", "train_loss")


# The default run checks the Huber loss under outliers against the published curves
# (test_erm_outliers_published).
@pytest.mark.extended
def test_huber_against_simulation():
    """Huber with outliers (d = 500, 2 seeds) as the non-convex losses below: ``m``, ``q``, the test error
    and the training loss within four standard errors plus 5% (the finite-size bias; within 3% at
    d = 1600)."""
    huber = hd.ERM(loss="huber", alpha=3.0, lam=0.1, delta=1.0, **OUTLIERS)
    _agree(huber, hd.simulate.simulate(huber, d=500, seeds=2), SIMULATED, 0.05)


def test_against_simulation():
    """Cauchy and Tukey (d = 500, 2 seeds; the simulation is a local search from three starts) with
    outliers, at steps where the prox is single-valued: ``m``, ``q``, the test error and the training
    loss within four standard errors plus 5% (the finite-size bias; seen at d = 500: ``m`` and ``q``
    within 3.3%, the errors and training losses within 6.6%, each within one standard error where
    above 5%)."""
    keys = SIMULATED
    cauchy = hd.ERM(loss="cauchy", alpha=3.0, lam=0.1, c=1.0, **OUTLIERS)
    obs = _agree(cauchy, hd.simulate.simulate(cauchy, d=500, seeds=2), keys, 0.05)
    assert 0 < float(obs["at_stability"]) < 1 and float(obs["V"]) < 8  # single-valued prox: RS stable
    tukey = hd.ERM(loss="tukey", alpha=3.0, lam=0.5, c=2.0, **OUTLIERS)
    obs = _agree(tukey, hd.simulate.simulate(tukey, d=500, seeds=2), keys, 0.05)
    assert 0 < float(obs["at_stability"]) < 1 and float(obs["V"]) < 1.25


def test_replicon():
    """Convex losses: ``at_stability <= Vhat / (Vhat + lam) < 1``; Tukey with a step beyond 5/4
    (the prox jumps): ``inf``; Cauchy with a continuous prox: the replicon against SciPy ``quad`` of
    the brute-force prox's derivative over the residual mixture."""
    for loss, teacher in (("huber", OUTLIERS), ("absolute", OUTLIERS), ("hinge", dict(teacher="sign", noise=0.1))):
        obs = hd.solve(hd.ERM(loss=loss, alpha=2.0, lam=0.1, **teacher)).observables
        assert 0 < float(obs["at_stability"]) <= float(obs["Vhat"] / (obs["Vhat"] + 0.1)) * (1 + 1e-12) < 1
    tukey = hd.solve(hd.ERM(loss="tukey", alpha=3.0, lam=0.01, c=1.0, **OUTLIERS)).observables  # V = 7
    assert float(tukey["V"]) > 1.25 and np.isinf(float(tukey["at_stability"]))
    theory = hd.ERM(loss="cauchy", alpha=3.0, lam=0.1, c=0.5, **OUTLIERS)
    obs = hd.solve(theory).observables
    m, q, V = (float(obs[k]) for k in ("m", "q", "V"))
    loss = theory.loss_fn
    ds = lambda r: 1 / (1 + V * second_derivative(loss, brute_residual(loss, r, V, 0.5)[0], 0.5))
    total = 0.0
    for weight, b, noise in ((0.8, 1.0, 0.1), (0.2, 0.0, 5.0)):
        s2 = b * b + noise - 2 * b * m + q
        g = lambda r: (1 - ds(r)) ** 2 * np.exp(-r * r / (2 * s2)) / np.sqrt(2 * np.pi * s2)
        total += weight * integrate.quad(g, -12 * np.sqrt(s2), 12 * np.sqrt(s2), limit=200)[0]
    np.testing.assert_allclose(float(obs["at_stability"]), 3.0 * total, rtol=1e-7)


def test_gradients_against_finite_differences():
    """d test_error / d (delta, epsilon) for Huber and d / d (c, epsilon) for Tukey at a step ``V``
    beyond 5/4 (its prox jumps: the panels' edges move with ``r_J``) by implicit differentiation,
    against central differences of the same compiled solve (rtol 1e-5: the differences' error): one
    program per loss, values and gradients at the point and its four neighbours."""
    e = 1e-5
    for loss, field, base, lam in (("huber", "delta", 1.0, 0.05), ("tukey", "c", 1.0, 0.01)):

        def error(x, loss=loss, field=field, lam=lam):
            theory = hd.ERM(loss=loss, alpha=3.0, lam=lam, **{field: x[0]}, **dict(OUTLIERS, epsilon=x[1]))
            return hd.solve(theory).observables["test_error"]

        x = jnp.asarray([base, 0.2])
        points = jnp.stack([x] + [x + e * jnp.eye(2)[k] * sign for k in range(2) for sign in (1, -1)])
        values, grads = jax.jit(jax.vmap(jax.value_and_grad(error)))(points)
        fd = [(values[1 + 2 * k] - values[2 + 2 * k]) / (2 * e) for k in range(2)]
        np.testing.assert_allclose(grads[0], fd, rtol=1e-5)


# The default run checks hd.tune of the Huber loss under outliers against the published optimum
# (test_erm_outliers_published).
@pytest.mark.extended
def test_tuned_huber_beats_square_and_absolute():
    """Under outliers (20% pure noise of variance 5) the Huber loss with ``(delta, lam)`` tuned by
    ``hd.tune`` has a lower test error than the square and the absolute losses at their best ``lam``
    on a dense grid (Vilucchio et al. 2023's point); its optimal ``delta`` is interior."""
    base = dict(alpha=2.0, **OUTLIERS)
    best = hd.tune(hd.ERM(loss="huber", lam=0.1, delta=1.0, **base), "test_error", over={"delta": "log", "lam": "log"})
    assert bool(best.converged) and int(best.at_boundary["delta"]) == 0
    lams = jnp.logspace(-4, 1, 200)
    for loss in ("square", "absolute"):
        curve = jax.jit(jax.vmap(lambda lam, loss=loss: hd.solve(hd.ERM(loss=loss, lam=lam, **base)).observables["test_error"]))(lams)
        assert float(best.objective) < float(jnp.min(curve)) - 1e-3, (loss, float(best.objective), float(jnp.min(curve)))


def test_errors_before_compiling():
    with pytest.raises(hd.ParameterError, match="teacher"):
        hd.ERM(loss="tukey", teacher="sign")
    with pytest.raises(hd.ParameterError, match="epsilon"):
        hd.ERM(teacher="outliers", loss="huber", epsilon=1.0)
    with pytest.raises(hd.ParameterError, match="teacher"):
        hd.GCM(teacher="outliers", loss="square")
