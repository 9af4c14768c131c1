"""Committee-machine ODEs: closed forms, exact solutions, the Saad-Solla plateau, simulations,
gradients through the adjoint, the integrator's failure reports."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import fsolve

import hdtheory as hd
from hdtheory import ODEStatus, ParameterError, integrate
from hdtheory.dynamics import Committee, CommitteeState
from hdtheory.kernels import activations
from compiled import optimised


# -- the Gaussian integrals against Monte Carlo -------------------------------------------------


@pytest.mark.parametrize("name", ["erf", "erf-z", "relu", "linear", "tanh"])
def test_gaussian_integrals_match_monte_carlo(name):
    rng = np.random.default_rng(1)
    B = rng.normal(size=(4, 6))
    C = B @ B.T / 6
    x = rng.multivariate_normal(np.zeros(4), C, size=1_000_000)
    g = activations.ACTIVATIONS[name]()
    f = lambda u: np.asarray(g(jnp.asarray(u)))
    df = lambda u: np.asarray(g.derivative(jnp.asarray(u)))
    samples = {
        "i2": f(x[:, 0]) * f(x[:, 1]),
        "j2": df(x[:, 0]) * df(x[:, 1]),
        "i3": df(x[:, 0]) * x[:, 1] * f(x[:, 2]),
        "i4": df(x[:, 0]) * df(x[:, 1]) * f(x[:, 2]) * f(x[:, 3]),
    }
    C = jnp.asarray(C)
    computed = {"i2": g.i2(C[:2, :2]), "j2": g.j2(C[:2, :2]), "i3": g.i3(C[:3, :3]), "i4": g.i4(C)}
    for key, values in samples.items():
        sem = values.std() / math.sqrt(values.size)
        assert abs(float(computed[key]) - values.mean()) < 5 * sem + 1e-4, (name, key)


def test_closed_forms_on_singular_covariances_match_monte_carlo():
    # The same field twice (Q_kk in the ODEs) makes the covariance singular.
    rng = np.random.default_rng(2)
    B = rng.normal(size=(3, 5))
    C = B @ B.T / 5
    x = rng.multivariate_normal(np.zeros(3), C, size=1_000_000)
    x = x[:, [0, 0, 1, 2]]
    singular = jnp.asarray(C)[jnp.array([0, 0, 1, 2])][:, jnp.array([0, 0, 1, 2])]
    for g in (activations.Erf(), activations.ReLU()):
        f = lambda u: np.asarray(g(jnp.asarray(u)))
        df = lambda u: np.asarray(g.derivative(jnp.asarray(u)))
        cases = [(df(x[:, 0]) * x[:, 1] * f(x[:, 2]), g.i3(singular[:3, :3]))]
        if g.closed_form_i4:
            cases.append((df(x[:, 0]) * df(x[:, 1]) * f(x[:, 2]) * f(x[:, 3]), g.i4(singular)))
        for values, computed in cases:
            sem = values.std() / math.sqrt(values.size)
            assert abs(float(computed) - values.mean()) < 5 * sem + 1e-4


# -- exact solutions ----------------------------------------------------------------------------


def test_linear_perceptron_matches_its_exact_solution():
    # K = M = 1, g(x) = x: e = Q - 2R + T = 2 eg obeys de/dt = -(2 eta - eta^2) e + eta^2 sigma.
    eta, sigma = 0.5, 0.1
    theory = Committee(K=1, M=1, activation="linear", lr=eta, noise=sigma, q0=0.3, R0=[[0.2]])
    ts = jnp.linspace(0.0, 20.0, 11)
    trajectory = integrate(theory, 20.0, saveat=ts)
    e0, rate = 0.3 - 2 * 0.2 + 1.0, 2 * eta - eta**2
    e_inf = eta**2 * sigma / rate
    exact = 0.5 * (e_inf + (e0 - e_inf) * np.exp(-rate * np.asarray(ts)))
    np.testing.assert_allclose(trajectory.observables["eg"], exact, rtol=1e-7)
    assert int(trajectory.status) == ODEStatus.COMPLETED and bool(trajectory.success)


def test_event_time_matches_the_exact_crossing():
    eta = 0.5
    theory = Committee(K=1, M=1, activation="linear", lr=eta, q0=0.3, R0=[[0.2]])
    trajectory = integrate(theory, 50.0, event=hd.crossing("eg", 1e-3))
    exact = math.log(0.5 * 0.9 / 1e-3) / (2 * eta - eta**2)
    assert int(trajectory.status) == ODEStatus.EVENT
    assert float(trajectory.event_time) == pytest.approx(exact, rel=1e-6)


def test_blow_up_is_a_status_not_a_nan():
    # The linear perceptron diverges for eta > 2: e grows as exp((eta^2 - 2 eta) t).
    trajectory = integrate(Committee(K=1, M=1, activation="linear", lr=2.5), 100.0)
    assert int(trajectory.status) == ODEStatus.DIVERGED and not bool(trajectory.success)
    assert 0 < float(trajectory.t_stop) < 100
    eg = np.asarray(trajectory.observables["eg"])
    assert not np.any(np.isnan(eg))
    assert np.all(np.isinf(eg[np.asarray(trajectory.ts) > float(trajectory.t_stop)]))


# -- the plateau --------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 3])
def test_symmetric_plateau_matches_saad_solla(K):
    """Saad & Solla 1995 (Phys. Rev. E 52, 4225, section on the symmetric phase), K = M, erf, T = I:
    as eta -> 0 the symmetric fixed point is Q_kk = Q_kl = 1 / (2K - 1), R_km = 1 / sqrt(K (2K - 1)),
    with eg = (K / pi) (pi / 6 - K arcsin(1 / (2K)))."""
    eta = 1e-7  # the O(eta^2) terms vanish relative to the O(eta) ones
    theory = Committee(K=K, M=K, lr=eta)

    def state(p):
        Q, C, R = p
        return CommitteeState(
            Q=(Q - C) * jnp.eye(K) + C, R=jnp.full((K, K), R), v=jnp.ones(K)
        )

    @jax.jit
    def field(p):
        field = theory.vector_field(0.0, state(p))
        return jnp.stack([field.Q[0, 0], field.Q[0, 1], field.R[0, 0]]) / eta

    residual = lambda p: np.asarray(field(jnp.asarray(p)))

    (Q, C, R), *_ = fsolve(residual, [0.3, 0.25, 0.4], xtol=1e-12, full_output=True)
    assert np.max(np.abs(residual([Q, C, R]))) < 1e-10
    assert Q == pytest.approx(1 / (2 * K - 1), abs=1e-6)
    assert C == pytest.approx(1 / (2 * K - 1), abs=1e-6)
    assert R == pytest.approx(1 / math.sqrt(K * (2 * K - 1)), abs=1e-6)
    eg = float(theory.generalisation_error(state([Q, C, R])))
    assert eg == pytest.approx(K / math.pi * (math.pi / 6 - K * math.asin(1 / (2 * K))), abs=1e-8)


# -- against simulations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "K, activation, lr",
    # The default run keeps K = 2 with ReLU (its eta^2 term by quadrature); erf's ODEs are also checked
    # against Saad & Solla's plateau and the linear perceptron's exact solution.
    [
        pytest.param(1, "erf", 0.8, marks=pytest.mark.extended),
        pytest.param(2, "erf", 0.5, marks=pytest.mark.extended),
        pytest.param(1, "relu", 0.5, marks=pytest.mark.extended),
        (2, "relu", 0.2),
        pytest.param(3, "relu", 0.1, marks=pytest.mark.extended),
    ],
)
def test_ode_matches_simulation(K, activation, lr):
    """d = 1000, 3 seeds: the seed-to-seed spread gives the standard error; finite-size bias is
    O(1/d) relative, covered by 2% of eg. ReLU's eta^2 term is a quadrature over the K + M fields
    whose error falls as 1/order (the kink); at K = 2, 3 coarse rules (12 and 6 nodes per axis;
    0.3% and ~1% of eg at t = 10 against rules twice as fine) with small learning rates keep the
    test fast. Erf's integrals are closed forms, the same code for every K: K = 1 and 2 check them
    (K = 3 as well, without a simulation, in the plateau's fixed point above)."""
    nodes = {(2, "relu"): 12**4, (3, "relu"): 6**6}.get((K, activation), 2**20)
    theory = Committee(K=K, M=K, lr=lr, activation=activation, q0=0.2, r0=0.1, joint_nodes=nodes)
    times = np.array([0.0, 1.0, 3.0, 6.0]) if lr > 0.2 else np.array([0.0, 2.0, 5.0, 10.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=3, times=times, key=jax.random.PRNGKey(K))
    # ReLU's vector field sums over 6^6 or 12^4 nodes: its run, not its compilation, is the cost.
    ode = optimised(lambda theory: integrate(theory, float(times[-1]), saveat=jnp.asarray(times)))(theory)
    eg = np.asarray(ode.observables["eg"])
    assert abs(eg[-1] - eg[0]) > 0.2 * eg[0]  # the error moves: the comparison is not trivial
    np.testing.assert_array_less(np.abs(sim.mean["eg"] - eg), 4 * sim.sem["eg"] + 0.02 * eg + 1e-4)
    R = np.asarray(ode.observables["R"])
    np.testing.assert_array_less(np.abs(sim.mean["R"] - R), 4 * sim.sem["R"] + 0.02 + 0 * R)


# -- vmap, gradients ----------------------------------------------------------------------------


def _final_error(theory, t=4.0):
    trajectory = integrate(theory, t, saveat=jnp.array([t]), rtol=1e-11, atol=1e-12, max_steps=2048)
    return trajectory.observables["eg"][-1]


def test_vmap_over_learning_rates_equals_separate_integrations():
    lrs = [0.2, 1.0]
    batched = jax.vmap(lambda lr: _final_error(Committee(K=2, M=2, lr=lr, r0=0.1)))(jnp.array(lrs))
    # Python floats, as the theories of the tests below hold: one compiled integration for them all.
    separate = [float(_final_error(Committee(K=2, M=2, lr=lr, r0=0.1))) for lr in lrs]
    np.testing.assert_allclose(batched, separate, rtol=1e-9)


def _fd(f, x, h=1e-5):
    # Arrays, not Python floats: a float field would be a static argument and recompile the solve.
    x = jnp.asarray(x, float)
    return (f(x + h) - f(x - h)) / (2 * h)


# The default run checks the adjoint of the same integration in the schedule's parameters.
@pytest.mark.extended
def test_gradient_wrt_learning_rate_matches_finite_differences():
    base = Committee(K=2, M=2, lr=0.5, r0=0.1)
    # One compiled program, value and gradient, at a point typed as _fd's: the differences reuse it.
    f = jax.jit(jax.value_and_grad(lambda lr: _final_error(eqx.tree_at(lambda th: th.lr, base, lr))))
    grad = f(jnp.asarray(0.5, float))[1]
    assert float(grad) == pytest.approx(float(_fd(lambda x: f(x)[0], 0.5)), rel=1e-5)


def test_gradient_wrt_schedule_parameters_matches_finite_differences():
    # One compiled program, value and gradient: the differences come from its values.
    power = Committee(K=2, M=2, lr=0.8, r0=0.1, schedule="power", decay_time=2.0, decay_power=0.7)
    at = lambda p: eqx.tree_at(lambda th: (th.decay_time, th.decay_power), power, p)
    f = jax.jit(jax.value_and_grad(lambda p: _final_error(at(p))))
    # Strongly typed, as _fd's arguments are: a weakly typed point would compile the program twice more.
    p = (jnp.asarray(2.0, float), jnp.asarray(0.7, float))
    grads = f(p)[1]
    assert float(grads[0]) == pytest.approx(float(_fd(lambda x: f((x, p[1]))[0], 2.0)), rel=1e-5)
    assert float(grads[1]) == pytest.approx(float(_fd(lambda x: f((p[0], x))[0], 0.7)), rel=1e-5)

    pieces = jnp.array([1.0, 0.6, 0.3])
    piecewise = Committee(K=2, M=2, lr=0.8, r0=0.1, schedule="piecewise", pieces=pieces, horizon=3.0)
    # Under jax.jit, as tune takes it: with the jumps given to the step-size controller this gradient
    # was 2 to 25% off the differences while the un-jitted one agreed.
    g = jax.jit(jax.value_and_grad(lambda x: _final_error(eqx.tree_at(lambda th: th.pieces, piecewise, x))))
    grads = g(pieces)[1]
    for j in range(3):
        e = jnp.zeros(3).at[j].set(1.0)
        # The adaptive steps about a jump move with the pieces: a noise of a few 1e-11 in the error,
        # some 1e-7 in a difference of step 1e-4 (the gradients are 3e-3 to 5e-2).
        fd = _fd(lambda h: g(pieces + h * e)[0], 0.0, h=1e-4)
        assert float(grads[j]) == pytest.approx(float(fd), rel=1e-4, abs=1e-6)


# The default run integrates with the default explicit solver, checked against simulation and finite
# differences; the stiff solver's agreement is a repeat at another setting.
@pytest.mark.extended
def test_stiff_solver_agrees():
    theory = Committee(K=2, M=2, lr=0.5, r0=0.1)
    explicit = _final_error(theory)
    stiff = integrate(theory, 4.0, saveat=jnp.array([4.0]), solver="kvaerno5", rtol=1e-10, atol=1e-12)
    assert float(stiff.observables["eg"][-1]) == pytest.approx(float(explicit), rel=1e-6)


def test_second_layer_and_scalings_run_and_agree_with_rescaling():
    # output="mean" with v0 = K and teacher_v = M is the summed committee with v = 1 (fixed layer).
    summed = Committee(K=2, M=2, lr=0.5, r0=0.1)
    mean = Committee(K=2, M=2, lr=0.5, r0=0.1, output="mean", v0=[2.0, 2.0], teacher_v=[2.0, 2.0])
    assert float(_final_error(mean)) == pytest.approx(float(_final_error(summed)), rel=1e-8)
    # time="lr": the same curve at tau = lr t.
    dimensionless = Committee(K=2, M=2, lr=0.5, r0=0.1, time="lr")
    assert float(_final_error(dimensionless, t=2.0)) == pytest.approx(
        float(_final_error(summed, t=4.0)), rel=1e-7
    )
    trained = integrate(Committee(K=2, M=2, lr=0.5, lr_v=0.5, r0=0.1), 5.0)
    assert bool(trained.success)
    assert not np.allclose(trained.observables["v"][-1], 1.0)


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"K": 0}, "K"),
        ({"M": 2.5}, "M"),
        ({"lr": -0.1}, "lr"),
        ({"noise": -1.0}, "noise"),
        ({"activation": "softsign"}, "activation"),
        ({"schedule": "cosine"}, "schedule"),
        ({"R0": [[0.1, 0.2, 0.3]]}, "R0"),
        ({"Q0": [[1.0, 0.0], [0.0, 1.0]], "R0": [[2.0, 0.0], [0.0, 0.0]]}, "positive semi-definite"),
    ],
)
def test_bad_input_raises_parameter_error(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Committee(**kwargs)


def test_bad_integrate_arguments():
    theory = Committee()
    with pytest.raises(ParameterError, match="saveat"):
        integrate(theory, 1.0, saveat=jnp.array([2.0]))
    with pytest.raises(ParameterError, match="solver"):
        integrate(theory, 1.0, solver="euler-maruyama")
