"""Mode collapse in variational inference (``hdtheory.dynamics.vi``): the overlaps' ODEs against a
closed form, a Monte Carlo KL, the flow of the means in d = 200 dimensions, the papers' claim
(collapse without annealing, none with it), steady states and their stability, and the adjoint."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.dynamics.vi import VariationalMixture, VIState
from hdtheory.simulate import simulate


def test_single_gaussian_target_closed_form_under_linear_annealing():
    # rho = 1: p = N(mu, Delta I). Both means at s0 mu with equal weights: q stays one Gaussian and
    # dm/dt = -(lr / 2 Delta) beta(t) (m - mu), so M(t) - mu2 = (M0 - mu2) exp(-lr/(2 Delta) int beta),
    # int_0^t beta = beta0 t + (1 - beta0) t^2 / (2 h) for t <= h; |m|^2 = M^2 / mu2 and
    # KL(q || p) = |m - mu|^2 / (2 Delta).
    mu2, delta, lr, beta0, h, M0 = 3.0, 1.5, 0.8, 0.3, 4.0, -0.6
    theory = VariationalMixture(
        mu2=mu2, rho=1.0, delta=delta, lr=lr, m0=(M0, M0), q0=(M0**2 / mu2,) * 2,
        q12_0=M0**2 / mu2, anneal="linear", beta0=beta0, horizon=h,
    )
    ts = jnp.array([1.0, 2.5, 4.0])
    obs = hd.integrate(theory, 4.0, saveat=ts).observables
    integral = beta0 * ts + (1 - beta0) * ts**2 / (2 * h)
    M = mu2 + (M0 - mu2) * jnp.exp(-lr / (2 * delta) * integral)
    for key in ("m1", "m2"):
        np.testing.assert_allclose(obs[key], M, rtol=1e-6)
    np.testing.assert_allclose(obs["q12"], M**2 / mu2, rtol=1e-6)
    np.testing.assert_allclose(obs["kl"], (M - mu2) ** 2 / (2 * delta * mu2), rtol=1e-6)
    np.testing.assert_allclose(obs["weight"], 0.5, atol=1e-12)


def test_kl_against_monte_carlo_in_three_dimensions():
    # KL(q || p) from the theory's one-dimensional quadrature against a plain Monte Carlo average of
    # log q - log p over 4e5 samples of q, with m_1, m_2, mu realised in R^3.
    theory = VariationalMixture(mu2=2.0, rho=0.3, delta=0.7, weight0=0.35)
    mu = np.array([np.sqrt(2.0), 0.0, 0.0])
    m = np.array([[0.9, 0.4, 0.0], [-0.2, -0.5, 0.6]])
    state = VIState(Q=jnp.asarray(m @ m.T), M=jnp.asarray(m @ mu), a=jnp.asarray(np.log(0.35 / 0.65)))
    kl = eqx.filter_jit(theory.observables)(0.0, state)["kl"]  # compiled, not run op by op

    rng = np.random.default_rng(0)
    n = 400_000
    comp = rng.random(n) < 0.35
    x = np.where(comp[:, None], m[0], m[1]) + np.sqrt(0.7) * rng.standard_normal((n, 3))

    def log_mix(w, means):
        d2 = ((x[:, None, :] - means) ** 2).sum(-1)
        return np.log((np.asarray(w) * np.exp(-d2 / 1.4)).sum(-1))

    f = log_mix([0.35, 0.65], m) - log_mix([0.3, 0.7], np.stack([mu, -mu]))
    assert abs(kl - f.mean()) < 4 * f.std() / np.sqrt(n)


def test_flow_of_the_means_in_d_200_with_monte_carlo_gradients():
    # Gradient descent (step 0.02) on the d-dimensional means with 32 reparameterised samples per
    # component and step, under linear annealing; 6 seeds. Tolerance: 4 standard errors of the mean
    # (Monte Carlo noise) plus 0.03 (Euler's O(dt) bias, about 1% of the overlaps here).
    theory = VariationalMixture(anneal="linear", beta0=0.5, horizon=4.0)
    ts = [1.5, 4.0]
    theory_obs = hd.integrate(theory, 4.0, saveat=jnp.asarray(ts)).observables
    sim = simulate(theory, d=200, seeds=6, times=ts, dt=0.02, samples=32)
    for key in ("m1", "m2", "q11", "q12", "q22", "weight", "kl"):
        gap = np.abs(sim.mean[key] - np.asarray(theory_obs[key]))
        assert np.all(gap < 4 * sim.sem[key] + 0.03), (key, sim.mean[key], theory_obs[key], sim.sem[key])
    assert np.all(np.asarray(sim.samples["t"][0]) == np.asarray(ts))


@pytest.fixture(scope="module")
def far_modes():
    # Modes 2|mu| = 8 standard deviations apart, both means starting on the side of +mu.
    return VariationalMixture(
        mu2=16.0, m0=(2.0, 1.0), q0=(1.0, 1.0), q12_0=0.0, anneal="piecewise", horizon=100.0,
        pieces=(1.0, 1.0, 1.0),
    )


def test_collapse_without_annealing_and_none_with_it(far_modes):
    # Soletskyi et al. 2024: mode collapse (here by vanishing weight and both means on +mu) from a
    # start on one side; Fogliani et al. 2026: annealing from a high temperature avoids it.
    # pieces = (1, 1, 1) is beta = 1 throughout; (0.1, 0.4, 0.7) anneals over t in [0, 100].
    pieces = jnp.array([[1.0, 1.0, 1.0], [0.1, 0.4, 0.7]])

    def final(p):
        theory = eqx_set(far_modes, p)
        return hd.integrate(theory, 200.0, saveat=jnp.array([200.0])).observables

    obs = jax.jit(jax.vmap(final))(pieces)
    plain, annealed = ({k: float(v[i, 0]) for k, v in obs.items()} for i in range(2))
    assert plain["collapsed"] == 1.0 and plain["m1"] > 0 and plain["m2"] > 0
    assert plain["weight"] > 0.9  # the second weight vanishing, its mean left behind
    assert plain["m2"] < plain["m1"] - 1
    # Collapsed on one mode of a well-separated balanced target: KL -> log 2.
    assert abs(plain["kl"] - np.log(2)) < 1e-2
    assert annealed["collapsed"] == 0.0 and annealed["kl"] < 1e-3
    np.testing.assert_allclose([annealed["m1"], annealed["m2"]], [16.0, -16.0], atol=0.05)


def eqx_set(theory, pieces):
    return eqx.tree_at(lambda t: t.pieces, theory, pieces)


def test_adjoint_of_the_final_kl_against_finite_differences():
    # d KL(t = 30) / d beta_1 through the adjoint of the ODE solver, against central differences (a
    # tight rtol: the adaptive steps about the jumps move with beta_1, a noise in the differences).
    theory = VariationalMixture(
        mu2=4.0, m0=(0.3, 0.1), anneal="piecewise", horizon=20.0, pieces=(0.3, 0.6)
    )

    def kl(p0):
        th = eqx_set(theory, jnp.stack([p0, 0.6]))
        return hd.integrate(th, 30.0, saveat=jnp.array([30.0]), rtol=1e-11).observables["kl"][0]

    value_and_grad = jax.jit(jax.value_and_grad(kl))
    _, grad = value_and_grad(0.3)
    eps = 1e-4
    fd = (value_and_grad(0.3 + eps)[0] - value_and_grad(0.3 - eps)[0]) / (2 * eps)
    assert abs(grad) > 1e-6
    # 4e-4 seen: the steps that straddle a jump of the schedule, which the error control shortens
    # until they pass, move with beta_1.
    np.testing.assert_allclose(grad, fd, rtol=1e-3)


def test_steady_states_good_and_mean_aligned():
    # Three zeros of the field at fixed weights, from three starts in one vmapped solve: the good
    # point q = p (KL = 0, attracting); both means on the mode +mu (mean alignment: collapsed,
    # KL -> log 2 for a balanced target 8 standard deviations wide); both means at the centre (a
    # saddle). The saddle's growth rate is checked against the separation M_1 - M_2 of a nearby
    # start, integrated (it grows as exp(rate t)); mean alignment on the mode is marginal at linear
    # order (q and p share the variance Delta), so its attraction is checked by integration: a
    # spread |m_1 - m_2|^2 = 0.09 orthogonal to mu shrinks.
    theory = VariationalMixture(mu2=16.0, lr_weights=0.0, m0=(2.0, 1.0))
    starts = [theory.good_state(), theory.aligned_state(0.9), theory.aligned_state(0.0)]
    starts = jax.tree.map(lambda *x: jnp.stack(x), *starts)
    sols = jax.jit(jax.vmap(lambda s: hd.steady_state(theory, s)))(starts)
    obs = {k: np.asarray(v) for k, v in sols.observables.items()}
    assert np.all(sols.converged)
    assert obs["kl"][0] < 1e-10 and obs["growth_rate"][0] < 0 and obs["collapsed"][0] == 0
    np.testing.assert_allclose(obs["m1"][1:], obs["m2"][1:], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(obs["q11"][1:], obs["m1"][1:] ** 2 / 16.0, rtol=1e-8, atol=1e-10)
    assert obs["collapsed"][1] == 1 and abs(obs["kl"][1] - np.log(2)) < 1e-2 and obs["m1"][1] > 15
    assert obs["m1"][2] == 0 and obs["growth_rate"][2] > 0.5

    eps = 1e-4  # m_1 = -m_2 = eps mu / |mu| beside the saddle
    near = VariationalMixture(
        mu2=16.0, lr_weights=0.0, m0=(4 * eps, -4 * eps), q0=(eps**2, eps**2), q12_0=-(eps**2)
    )
    s = sols.state
    aligned = jax.tree.map(lambda x: x[1], s)
    spread = 0.09  # m_2 moved by 0.3 orthogonally to mu and m_1
    off = VariationalMixture(
        mu2=16.0, lr_weights=0.0, m0=aligned.M, q0=jnp.diag(aligned.Q).at[1].add(spread),
        q12_0=float(aligned.Q[0, 1]),  # a Python float, as near's: an array would compile the solve again
    )
    ts = jnp.array([1.0, 2.0, 20.0])  # one compiled solve for both starts
    sep = hd.integrate(near, 20.0, saveat=ts).observables
    rate = np.log((sep["m1"][1] - sep["m2"][1]) / (sep["m1"][0] - sep["m2"][0]))
    np.testing.assert_allclose(rate, obs["growth_rate"][2], rtol=2e-3)
    end = hd.integrate(off, 20.0, saveat=ts).observables
    assert end["q11"][-1] - 2 * end["q12"][-1] + end["q22"][-1] < 0.8 * spread
    assert end["collapsed"][-1] == 1


def test_bad_initial_overlaps_are_refused():
    with pytest.raises(hd.ParameterError, match="q0"):
        VariationalMixture(mu2=1.0, m0=(2.0, 0.0), q0=(1.0, 1.0))
    with pytest.raises(hd.ParameterError, match="rho"):
        VariationalMixture(rho=0.0)
