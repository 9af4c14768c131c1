"""LoRA fine-tuning of a pre-trained single-index or two-layer model: at rank one the ODEs that
Stein's lemma gives on the pair (lambda, nu); without pre-training and with U frozen it is the
single-index model and, at rank = width, the spherical committee machine; closed forms for a linear
link and for the escape rate from the pre-trained weight (the slow-down by strong pre-training),
and the authors' formula for that rate; online SGD at d = 1000 of a two-layer student with a
rank-two adapter; gradients through the adjoint; bad input."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.cli import main
from hdtheory.dynamics import Committee, LoRA, SingleIndex
from hdtheory.dynamics.committee import CommitteeState
from hdtheory.dynamics.lora import LoRAState
from hdtheory.dynamics.single_index import Overlaps, expect_pair, guarded_sqrt
from hdtheory.kernels import hermite_series

from gradient_checks import assert_gradient_matches_differences

HERMITE = dict(target=(0.1, 0.5, 1.0, 0.3), student=(0.0, 0.2, 1.0, 0.5))


def _state(m, n, a):
    """A rank-one state, p = M = L = 1."""
    S = jnp.stack([jnp.asarray(m, jnp.float64), jnp.asarray(n, jnp.float64)])[None]
    return LoRAState(S=S, Q=jnp.eye(1), U=jnp.asarray(a, jnp.float64).reshape(1, 1))


def _stein_rank_one(theory, m, n, a):
    """The rank-one ODEs by Stein's lemma on the pair (lambda, nu), E[lambda nu] = M = mu + a m,
    lambda - M nu = (tau + a n) xi_1 + a sqrt(1 - m^2 - n^2) xi_2: with A = E[f'^2 + Delta f''],
    B = -E[f*' f'], C = E[(Delta^2 + noise) f'^2], E[g nu] = M A + B, E[g chi] = (tau + a n) A,
    E[g rho] = (mu m + tau n + a) A + m B and dm = -eta a (E[g nu] - m E[g rho]) - eta^2 a^2 m C / 2,
    dn likewise, da = -scale_lr eta E[g rho]; eg = E[Delta^2] / 2."""
    mu, tau, eta, noise = theory.mu, theory.tau, theory.lr / theory.batch, theory.noise
    series = lambda c: jnp.vectorize(lambda z: hermite_series(c, z))
    f, f_star = series(theory.student), series(theory.target)
    f1, f2, f_star1 = jnp.vectorize(jax.grad(f)), jnp.vectorize(jax.grad(jax.grad(f))), jnp.vectorize(jax.grad(f_star))

    def moments(lam, nu):
        delta = f(lam) - f_star(nu)
        return jnp.stack([f1(lam) ** 2 + delta * f2(lam), -f_star1(nu) * f1(lam),
                          (delta**2 + noise) * f1(lam) ** 2, delta**2], -1)

    M = mu + a * m
    A, B, C, E2 = expect_pair(moments, M, (tau + a * n, a * guarded_sqrt(1 - m**2 - n**2)), 12)
    g_nu, g_chi, g_rho = M * A + B, (tau + a * n) * A, (mu * m + tau * n + a) * A + m * B
    ito = 0.5 * (eta * a) ** 2 * C
    return (-eta * a * (g_nu - m * g_rho) - ito * m, -eta * a * (g_chi - n * g_rho) - ito * n,
            -theory.scale_lr * eta * g_rho, 0.5 * E2)


def test_rank_one_is_stein_lemma():
    """At rank one (p = M = L = 1) the general field (one Gauss-Hermite rule over the fields
    (nu, chi, rho), the E[g z] moments directly) equals the Stein-lemma reduction to the pair
    (lambda, nu) to 1e-12, also at the degenerate pre-trained start a = 0."""
    theory = LoRA(lr=0.3, noise=0.1, scale_lr=0.7, mu=0.6, tau=0.4, batch=2, **HERMITE)

    @jax.jit
    @jax.vmap
    def both(point):
        m, n, a = point
        field = theory.vector_field(0.0, _state(m, n, a))
        eg = theory.observables(0.0, _state(m, n, a))["eg"]
        ours = jnp.stack([field.S[0, 0], field.S[0, 1], field.U[0, 0], eg, field.Q[0, 0]])
        return ours, jnp.stack(_stein_rank_one(theory, m, n, a))

    points = jnp.array([(0.3, 0.2, 0.5), (0.0, 0.0, 0.0), (-0.5, 0.6, 1.3), (0.1, -0.2, 0.0)])
    ours, reference = both(points)
    np.testing.assert_allclose(np.asarray(ours[:, :4]), np.asarray(reference), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(ours[:, 4]), 0.0, atol=1e-15)  # the row stays on the sphere


@eqx.filter_jit
def _fields(theory, other, m):
    def one(m):
        a = theory.vector_field(0.0, _state(m, 0.0, 1.0))
        b = other.vector_field(0.0, Overlaps(m=m, q=jnp.ones_like(m)))
        eg_a = theory.observables(0.0, _state(m, 0.0, 1.0))["eg"]
        eg_b = other.observables(0.0, Overlaps(m=m, q=jnp.ones_like(m)))["eg"]
        return jnp.stack([a.S[0, 0], eg_a]), jnp.stack([b.m, eg_b]), jnp.stack([a.S[0, 1], a.U[0, 0]])

    return jax.vmap(one)(m)


def test_no_pretraining_frozen_scale_is_single_index():
    """W0 = 0, U = 1 frozen (scale_lr = 0): w = v, spherical SGD on v; the same vector field and error
    as :class:`SingleIndex` (which computes E[g (nu - m lambda)] directly) to 1e-12."""
    kw = dict(lr=0.3, noise=0.1, **HERMITE)
    theory = LoRA(mu=0.0, tau=0.0, scale_lr=0.0, **kw)
    ours, theirs, rest = _fields(theory, SingleIndex(**kw), jnp.array([0.3, -0.5, 0.9, 0.05]))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(rest), 0.0, atol=1e-15)  # n stays 0, U frozen


@eqx.filter_jit
def _committee_fields(ours, theirs, S, Q):
    """Both vector fields at the states ``(S[i], Q[i])`` (``U = I``; ``R = S``)."""
    def one(S, Q):
        a = ours.vector_field(0.0, LoRAState(S=S, Q=Q, U=jnp.eye(2)))
        b = theirs.vector_field(0.0, CommitteeState(Q=Q, R=S, v=jnp.ones(2)))
        eg_a = ours.observables(0.0, LoRAState(S=S, Q=Q, U=jnp.eye(2)))["eg"]
        eg_b = theirs.observables(0.0, CommitteeState(Q=Q, R=S, v=jnp.ones(2)))["eg"]
        return (a.S, a.Q, a.U, eg_a), (b.R, b.Q, b.v, eg_b)

    return jax.vmap(one)(S, Q)


def test_rank_equal_to_width_without_pretraining_is_committee():
    """Two hidden units, rank two, W0 = 0, U = I frozen: W = V is plain spherical online SGD of a
    committee machine with a fixed second layer (He_1 + He_2 link, two teachers, label noise;
    Committee's Hermite integrals I_3, I_4 on the covariance of the K + M fields, not our rule over
    the fields z): dR/dt, dQ/dt and eg agree to 1e-12 at three states, dU/dt and dv/dt vanish."""
    link = (0.0, 0.6, 0.8)
    common = dict(lr=0.4, noise=0.05, student=link, target=link)
    ours = LoRA(width=2, rank=2, teachers=2, mu=np.zeros((2, 2)), tau=np.zeros((2, 0)), scale_lr=0.0,
                U0=np.eye(2), **common)
    theirs = Committee(K=2, M=2, activation="hermite", geometry="spherical", **common)
    S = jnp.array([[[0.3, -0.1], [0.05, 0.4]], [[0.0, 0.0], [0.0, 0.0]], [[0.7, 0.2], [-0.3, 0.6]]])
    Q = jnp.array([[[1.0, 0.2], [0.2, 1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, -0.4], [-0.4, 1.0]]])
    (dS, dQ, dU, eg), (dR, dQ_c, dv, eg_c) = _committee_fields(ours, theirs, S, Q)
    assert float(jnp.min(jnp.abs(dS[0]))) > 1e-3  # a moving state
    np.testing.assert_allclose(np.asarray(dS), np.asarray(dR), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(dQ), np.asarray(dQ_c), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(eg), np.asarray(eg_c), rtol=1e-12, atol=1e-14)
    assert np.all(np.asarray(dU) == 0.0) and np.all(np.asarray(dv) == 0.0)


# The default run checks the reduction's vector field (test_rank_equal_to_width_without_pretraining_is_committee).
@pytest.mark.extended
def test_rank_equal_to_width_trajectory_is_committee():
    """The same reduction along a trajectory, for a linear activation against Committee's closed
    forms (activation="linear"): R, Q and eg at t = 2 and 4, both integrated at rtol 1e-10, agree
    to 1e-8."""
    S0 = np.array([[0.3, -0.1], [0.05, 0.4]])
    Q0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    ours = LoRA(width=2, rank=2, teachers=2, mu=np.zeros((2, 2)), tau=np.zeros((2, 0)), scale_lr=0.0,
                S0=S0, Q0=Q0, U0=np.eye(2), lr=0.3, noise=0.05, student=(0.0, 1.0), target=(0.0, 1.0))
    theirs = Committee(K=2, M=2, activation="linear", geometry="spherical", Q0=Q0, R0=S0, lr=0.3, noise=0.05)
    times = jnp.array([0.0, 2.0, 4.0])
    a = hd.integrate(ours, 4.0, saveat=times, rtol=1e-10).observables
    b = hd.integrate(theirs, 4.0, saveat=times, rtol=1e-10).observables
    assert float(jnp.max(jnp.abs(a["m"][-1] - a["m"][0]))) > 0.05  # the overlaps move
    for key, other_key in (("m", "R"), ("Q", "Q"), ("eg", "eg")):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[other_key]), rtol=1e-8, atol=1e-10)


def test_linear_link_closed_form():
    """f = f* = z: g = lambda - nu, so E[g nu] = M - 1, E[g chi] = tau + a n,
    E[g rho] = mu m + tau n + a - m, E[g^2 f'^2] = q - 2 M + 1 + noise and eg = (q - 2 M + 1) / 2,
    with M = mu + a m and q = mu^2 + tau^2 + 2 a (mu m + tau n) + a^2."""
    eta, noise, r = 0.2, 0.3, 0.7
    at = eqx.filter_jit(lambda theory, state: (theory.vector_field(0.0, state), theory.observables(0.0, state)))
    for mu, tau, m, n, a in [(0.5, 0.0, 0.1, 0.0, 0.2), (-0.3, 0.8, 0.4, -0.5, 1.3), (1.2, 0.4, -0.6, 0.2, -0.7)]:
        theory = LoRA(mu=mu, tau=tau, lr=eta, scale_lr=r, noise=noise, target=(0.0, 1.0), student=(0.0, 1.0))
        field, obs = at(theory, _state(m, n, a))
        M, q = mu + a * m, mu**2 + tau**2 + 2 * a * (mu * m + tau * n) + a**2
        g_nu, g_chi, g_rho = M - 1, tau + a * n, mu * m + tau * n + a - m
        c = q - 2 * M + 1 + noise
        assert float(field.S[0, 0]) == pytest.approx(-eta * a * (g_nu - m * g_rho) - eta**2 * a**2 * m * c / 2, rel=1e-12)
        assert float(field.S[0, 1]) == pytest.approx(-eta * a * (g_chi - n * g_rho) - eta**2 * a**2 * n * c / 2, rel=1e-12)
        assert float(field.U[0, 0]) == pytest.approx(-r * eta * g_rho, rel=1e-12)
        assert float(obs["eg"]) == pytest.approx((q - 2 * M + 1) / 2, rel=1e-12)
        assert float(obs["q"][0, 0]) == pytest.approx(q, rel=1e-12)


def _escape_rate(mu, eta):
    """f = f* = He_2 / sqrt(2), w0 = mu w*: linearised at a = m = 0 the ODEs are
    (da, dm)/dt = -eta [[A, c], [c, 0]] (a, m), with A = E[f'(mu nu)^2 + Delta f''] = 3 mu^2 - 1 and
    c = mu A - E[f'(nu) f'(mu nu)] = -3 mu (1 - mu^2); the growth rate is the positive eigenvalue."""
    A, c = 3 * mu**2 - 1, -3 * mu * (1 - mu**2)
    return eta * (-A + math.sqrt(A**2 + 4 * c**2)) / 2


def _measured_rate(mu, link, eta, window):
    """The log slope of |m| between the two times of ``window`` from the pre-trained weight
    (a0 = 0, m0 = 1e-9, w0 = mu w*, f = f* = link), checked to be still in the linear regime."""
    ts = jnp.array(window)
    theory = LoRA(mu=mu, m0=1e-9, a0=0.0, lr=eta, target=link, student=link)
    m = np.abs(np.asarray(hd.integrate(theory, float(ts[-1]), saveat=ts).observables["m"][:, 0, 0]))
    assert m[-1] < 1e-2  # still linear
    return math.log(m[1] / m[0]) / float(ts[1] - ts[0])


def test_escape_rate_and_the_cost_of_pre_training():
    """From the pre-trained weight (a0 = 0, m0 = 1e-9) |m| grows as exp(rate t); the measured rate
    (log slope between two times after the decaying mode has died out, while |m| < 1e-2) is the
    closed form to 1e-3, and it drops as the pre-training alignment mu -> 1 (the search phase
    lengthens)."""
    eta = 0.05
    rates = [_measured_rate(mu, (0.0, 0.0, 1.0), eta, np.array(window) / eta)
             for mu, window in ((0.5, (4.0, 8.0)), (0.9, (20.0, 40.0)))]
    for mu, rate in zip((0.5, 0.9), rates):
        assert rate == pytest.approx(_escape_rate(mu, eta), rel=1e-3)
    assert rates[1] < rates[0] / 5


def _paper_rate(mu, degree):
    """Nwemadji et al.'s escape rate lambda_+ = (B + sqrt(B^2 + 4 A^2)) / 2 (their characteristic time
    tau(mu) = 1 / lambda_+ = (-B + sqrt(B^2 + 4 A^2)) / (2 A^2), the authors' repository,
    Jupyter_Notebok/for_compute_the_exit_time_.ipynb, compute_A_B and tau_from_A_B), for
    sigma = sigma* = He_k and w0 = mu w*, r = mu^2:
    A = -sum_k sbar_k / (k! mu^(k+1)) (-s_k + s_k^[r] / mu^k),
    B = -sum_k [sbar_k s_k^[r] / (k! mu^(2k+2)) + s_k / ((k-1)! mu^(k+2)) (s_k^[r] - sbar_k / k)],
    with s_k = E[He_k(z) sigma(z)], s_k^[r] = E[He_k^[r](x) sigma(x)],
    sbar_k = E[x He_k^[r](x) sigma'(x)], x ~ N(0, r), He_k^[r](x) = r^(k/2) He_k(x / sqrt(r)) (Gauss-Hermite
    sums here, exact). Their He_k is not normalised: our He_k / sqrt(k!) divides the rate by k!. (Their
    code also divides A and B by k! k, the factor by which their simulations divide the learning
    rate; both sides here are at the same learning rate.)"""
    z, w = np.polynomial.hermite_e.hermegauss(2 * degree + 4)
    w = w / w.sum()
    he = lambda k, x: np.polynomial.hermite_e.hermeval(x, [0.0] * k + [1.0])
    x = mu * z
    sigma, slope = he(degree, x), degree * he(degree - 1, x)
    A = B = 0.0
    for k in range(degree + 1):
        s, s_r, s_bar = (np.sum(w * he(k, z) * he(degree, z)), np.sum(w * mu**k * he(k, z) * sigma),
                         np.sum(w * x * mu**k * he(k, z) * slope))
        A -= s_bar / (math.factorial(k) * mu ** (k + 1)) * (s_r / mu**k - s)
        B -= s_bar * s_r / (math.factorial(k) * mu ** (2 * k + 2))
        if k >= 1:
            B -= s / (math.factorial(k - 1) * mu ** (k + 2)) * (s_r - s_bar / k)
    return (B + math.sqrt(B * B + 4 * A * A)) / 2 / math.factorial(degree)


def test_escape_rate_against_the_papers_formula():
    """f = f* = He_3 / sqrt(6) (information exponent three: from a random start the escape would be
    polynomially slow in d; from the pre-trained weight it is linear): the measured rate at mu = 0.5
    and 0.9 is Nwemadji et al.'s lambda_+ to 1e-3 (here, unlike for He_2, the stronger pre-training
    escapes faster: 0.0254 against 0.0166 at eta = 0.05); at He_2 their formula is the closed form of
    the test above, to 1e-12."""
    eta = 0.05
    for mu in (0.5, 0.9):
        expected = eta * _paper_rate(mu, 3)
        rate = _measured_rate(mu, (0.0, 0.0, 0.0, 1.0), eta, np.array([8.0, 16.0]) / expected)
        assert rate == pytest.approx(expected, rel=1e-3)
        assert eta * _paper_rate(mu, 2) == pytest.approx(_escape_rate(mu, eta), rel=1e-12)


def test_ode_matches_simulation_two_layer_rank_two():
    """A two-layer student (p = 2 units, mean readout) pre-trained as W0 = diag(0.6, 0.3) W* +
    (0.3, 0.2)^T xi^T (the paper's D T, plus a component off the teacher) and fine-tuned by a
    rank-two adapter from an asymmetric start; d = 1000, 4 seeds, b = 2, label noise,
    f = f* = (He_1 + He_2) / sqrt(2): m, n, Q, U and eg within 4 standard errors plus 0.01 (an
    allowance for the finite-d bias; the differences here are at most 0.008, in U, and 0.003 in m,
    where the standard errors are up to 0.007 and 0.005)."""
    link = (0.0, 0.7, 0.7)
    theory = LoRA(width=2, rank=2, teachers=2, output="mean", mu=np.diag([0.6, 0.3]), tau=np.array([[0.3], [0.2]]),
                  noise=0.05, S0=np.array([[0.2, 0.0, 0.1], [0.0, 0.1, -0.1]]), U0=np.array([[0.5, 0.1], [0.0, 0.4]]),
                  lr=0.5, batch=2, target=link, student=link)
    times = np.array([0.0, 4.0, 8.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(2))
    ode = hd.integrate(theory, float(times[-1]), saveat=jnp.asarray(times)).observables
    for name in ("m", "n", "Q", "U", "eg"):
        np.testing.assert_array_less(np.abs(sim.mean[name] - np.asarray(ode[name])), 4 * sim.sem[name] + 0.01)
    assert float(jnp.max(jnp.abs(ode["m"][-1] - ode["m"][0]))) > 0.1  # the adapter moves
    assert float(ode["eg"][-1]) < 0.85 * float(ode["eg"][0])


def test_gradients_against_finite_differences():
    """d eg(t = 5) / d (mu, tau, lr, scale_lr, a0) through the adjoint against central differences
    of the same compiled program's values (step 1e-5), for two student units (one pre-trained along
    the teacher, both along one xi) fine-tuned by a rank-two adapter, at a generic start and at the paper's degenerate one (tau = 0, U0 = 0: the
    student fields proportional to the teacher's)."""
    base = dict(m0=0.2, n0=0.1, noise=0.05, target=(0.0, 0.5, 1.0), student=(0.0, 0.5, 1.0),
                width=2, rank=2, output="mean")
    names = ("mu", "tau", "lr", "scale_lr", "a0")

    def eg(p):
        mu, tau, lr, scale_lr, a0 = p  # W0 = mu e_1 w*^T + tau (1, 1)^T xi^T
        theory = LoRA(**base, mu=mu, tau=tau * jnp.ones((2, 1)), lr=lr, scale_lr=scale_lr, a0=a0)
        return hd.integrate(theory, 5.0, saveat=jnp.array([5.0])).observables["eg"][-1]

    assert_gradient_matches_differences(eg, (jnp.array([0.5, 0.3, 0.5, 1.0, 0.3]), jnp.array([0.8, 0.0, 0.5, 1.0, 0.0])), names, floor=1e-3, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"m0": 0.8, "n0": 0.8}, "n0"), ({"tau": -0.1}, "tau"), ({"scale_lr": -1.0}, "scale_lr"),
     ({"batch": 0}, "batch"), ({"lr": 0.0}, "lr"), ({"order": 3}, "order"), ({"m0": 1.5}, "m0"),
     ({"noise": -0.1}, "noise"), ({"rank": 0}, "rank"), ({"width": 2, "mu": np.ones((1, 1))}, "mu"),
     ({"rank": 2, "S0": np.zeros((1, 2))}, "S0"), ({"rank": 2, "Q0": 2 * np.eye(2)}, "Q0"),
     ({"rank": 2, "m0": 0.6, "n0": 0.6}, "n0"), ({"output": "max"}, "output")],
)
def test_bad_input(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        LoRA(**kwargs)


def test_command_line(capsys):
    """``hdtheory eval lora rank=2``: at t = 0 the linear link's error (q - 2 M + 1) / 2 with
    mu = 0.5, tau = 0.2, a0 = 0.4 and orthogonal adapter rows alike (m0 = 0.3, n0 = -0.1), so that the
    adapter is 0.4 (v_1 + v_2): M = 0.74, q = 0.818; the error then falls; bad input one line naming
    the parameter."""
    assert main(["eval", "lora", "rank=2", "mu=0.5", "tau=0.2", "a0=0.4", "m0=0.3", "n0=-0.1", "target=0,1",
                 "student=0,1", "t=0,1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    # W = w0 + 0.4 (v_1 + v_2): M = 0.5 + 0.8 * 0.3, q = |w0|^2 + 2 * 0.8 (mu m + tau n) + 0.16 |v_1 + v_2|^2
    M, q = 0.5 + 0.8 * 0.3, 0.29 + 1.6 * (0.15 - 0.02) + 0.16 * 2
    assert record["eg"][0] == pytest.approx((q - 2 * M + 1) / 2, rel=1e-10)
    assert record["eg"][1] < record["eg"][0] and record["success"] is True
    assert main(["eval", "lora", "tau=-1"]) == 2
    error = capsys.readouterr().err
    assert "tau" in error and error.count("\n") == 1
