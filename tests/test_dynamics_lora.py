"""LoRA fine-tuning of a pre-trained single-index model: without pre-training and with a frozen
scale it is the single-index model, closed forms for a linear link and for the escape rate from
the pre-trained weight (the slow-down by strong pre-training), online SGD at d = 1000, gradients
through the adjoint, bad input."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import LoRA, SingleIndex
from hdtheory.dynamics.lora import LoRAState
from hdtheory.dynamics.single_index import Overlaps

HERMITE = dict(target=(0.1, 0.5, 1.0, 0.3), student=(0.0, 0.2, 1.0, 0.5))


def _state(m, n, a):
    return LoRAState(*(jnp.asarray(x, jnp.float64) for x in (m, n, a)))


@eqx.filter_jit
def _fields(theory, other, m):
    def one(m):
        a = theory.vector_field(0.0, _state(m, 0.0, 1.0))
        b = other.vector_field(0.0, Overlaps(m=m, q=jnp.ones_like(m)))
        eg_a = theory.observables(0.0, _state(m, 0.0, 1.0))["eg"]
        eg_b = other.observables(0.0, Overlaps(m=m, q=jnp.ones_like(m)))["eg"]
        return jnp.stack([a.m, eg_a]), jnp.stack([b.m, eg_b]), jnp.stack([a.n, a.a])

    return jax.vmap(one)(m)


def test_no_pretraining_frozen_scale_is_single_index():
    """w0 = 0, a = 1 frozen (scale_lr = 0): w = v, spherical SGD on v; the same vector field and error
    as :class:`SingleIndex` (which computes E[g (nu - m lambda)] directly, not by Stein's lemma)."""
    kw = dict(lr=0.3, noise=0.1, **HERMITE)
    theory = LoRA(mu=0.0, tau=0.0, scale_lr=0.0, **kw)
    ours, theirs, rest = _fields(theory, SingleIndex(**kw), jnp.array([0.3, -0.5, 0.9, 0.05]))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-12, atol=1e-13)
    assert np.all(np.asarray(rest) == 0.0)


def test_linear_link_closed_form():
    """f = f* = z: g = lambda - nu, so E[g nu] = M - 1, E[g chi] = tau + a n,
    E[g rho] = mu m + tau n + a - m, E[g^2 f'^2] = q - 2 M + 1 + noise and eg = (q - 2 M + 1) / 2,
    with M = mu + a m and q = mu^2 + tau^2 + 2 a (mu m + tau n) + a^2."""
    eta, noise, r = 0.2, 0.3, 0.7
    for mu, tau, m, n, a in [(0.5, 0.0, 0.1, 0.0, 0.2), (-0.3, 0.8, 0.4, -0.5, 1.3), (1.2, 0.4, -0.6, 0.2, -0.7)]:
        theory = LoRA(mu=mu, tau=tau, lr=eta, scale_lr=r, noise=noise, target=(0.0, 1.0), student=(0.0, 1.0))
        field = theory.vector_field(0.0, _state(m, n, a))
        M, q = mu + a * m, mu**2 + tau**2 + 2 * a * (mu * m + tau * n) + a**2
        g_nu, g_chi, g_rho = M - 1, tau + a * n, mu * m + tau * n + a - m
        c = q - 2 * M + 1 + noise
        assert float(field.m) == pytest.approx(-eta * a * (g_nu - m * g_rho) - eta**2 * a**2 * m * c / 2, rel=1e-12)
        assert float(field.n) == pytest.approx(-eta * a * (g_chi - n * g_rho) - eta**2 * a**2 * n * c / 2, rel=1e-12)
        assert float(field.a) == pytest.approx(-r * eta * g_rho, rel=1e-12)
        obs = theory.observables(0.0, _state(m, n, a))
        assert float(obs["eg"]) == pytest.approx((q - 2 * M + 1) / 2, rel=1e-12)
        assert float(obs["q"]) == pytest.approx(q, rel=1e-12)


def _escape_rate(mu, eta):
    """f = f* = He_2 / sqrt(2), w0 = mu w*: linearised at a = m = 0 the ODEs are
    (da, dm)/dt = -eta [[A, c], [c, 0]] (a, m), with A = E[f'(mu nu)^2 + Delta f''] = 3 mu^2 - 1 and
    c = mu A - E[f'(nu) f'(mu nu)] = -3 mu (1 - mu^2); the growth rate is the positive eigenvalue."""
    A, c = 3 * mu**2 - 1, -3 * mu * (1 - mu**2)
    return eta * (-A + math.sqrt(A**2 + 4 * c**2)) / 2


def test_escape_rate_and_the_cost_of_pre_training():
    """From the pre-trained weight (a0 = 0, m0 = 1e-9) |m| grows as exp(rate t); the measured rate
    (log slope between two times after the decaying mode has died out, while |m| < 1e-3) is the
    closed form to 1e-3, and it drops as the pre-training alignment mu -> 1 (the search phase
    lengthens)."""
    eta = 0.05
    rates = []
    for mu, window in ((0.5, (4.0, 8.0)), (0.9, (20.0, 40.0))):
        ts = jnp.array(window) / eta
        theory = LoRA(mu=mu, m0=1e-9, a0=0.0, lr=eta, target=(0.0, 0.0, 1.0), student=(0.0, 0.0, 1.0))
        m = np.abs(np.asarray(hd.integrate(theory, float(ts[-1]), saveat=ts).observables["m"]))
        assert m[-1] < 1e-3  # still linear
        rate = math.log(m[1] / m[0]) / float(ts[1] - ts[0])
        assert rate == pytest.approx(_escape_rate(mu, eta), rel=1e-3)
        rates.append(rate)
    assert rates[1] < rates[0] / 5


def test_ode_matches_simulation():
    """d = 1000, 4 seeds, b = 2, f = f* = He_2 / sqrt(2), label noise, w0 = (w* + xi) / 2: m, n, a
    and eg within 4 standard errors plus 0.03 (the O(d^-1/2) bias of a run at d = 1000; at d = 4000
    the differences fall inside the standard errors)."""
    theory = LoRA(mu=0.5, tau=0.5, m0=0.2, n0=0.1, a0=0.5, lr=0.3, batch=2, noise=0.05,
                  target=(0.0, 0.0, 1.0), student=(0.0, 0.0, 1.0))
    times = np.array([0.0, 5.0, 10.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(1))
    ode = hd.integrate(theory, 10.0, saveat=jnp.asarray(times)).observables
    assert ode["m"][-1] > 2 * ode["m"][0] and ode["n"][-1] < -0.1  # both directions move
    for key in ("m", "n", "a", "eg"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - np.asarray(ode[key])), 4 * sim.sem[key] + 0.03)


def test_gradients_against_finite_differences():
    """d eg(t = 5) / d (mu, tau, lr, scale_lr, a0) through the adjoint against central differences
    of the same compiled program's values (step 1e-5), at a generic start and at the paper's
    degenerate one (tau = 0, a0 = 0: the student field proportional to the target's)."""
    base = dict(m0=0.2, n0=0.1, noise=0.05, target=(0.0, 0.5, 1.0), student=(0.0, 0.5, 1.0))
    names = ("mu", "tau", "lr", "scale_lr", "a0")

    def eg(p):
        theory = LoRA(**base, **dict(zip(names, p)))
        return hd.integrate(theory, 5.0, saveat=jnp.array([5.0])).observables["eg"][-1]

    value_and_grad = jax.jit(jax.value_and_grad(eg))
    h = 1e-5
    for p in (jnp.array([0.6, 0.3, 0.2, 1.0, 0.2]), jnp.array([0.8, 0.0, 0.2, 1.0, 0.0])):
        _, grad = value_and_grad(p)
        for i in range(len(names)):
            step = h * jnp.eye(len(names))[i]
            fd = (value_and_grad(p + step)[0] - value_and_grad(p - step)[0]) / (2 * h)
            assert abs(float(grad[i])) > 1e-3, names[i]  # not trivially zero
            assert float(grad[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9), names[i]


@pytest.mark.parametrize(
    "kwargs, name",
    [({"m0": 0.8, "n0": 0.8}, "n0"), ({"tau": -0.1}, "tau"), ({"scale_lr": -1.0}, "scale_lr"),
     ({"batch": 0}, "batch"), ({"lr": 0.0}, "lr"), ({"order": 3}, "order"), ({"m0": 1.5}, "m0"),
     ({"noise": -0.1}, "noise")],
)
def test_bad_input(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        LoRA(**kwargs)


def test_command_line():
    """``hdtheory eval lora``: at t = 0 the linear link's error (q - 2 M + 1) / 2 (mu = 0.5, tau = 0.2,
    a0 = 0.4, m0 = 0.3, n0 = -0.1: M = 0.62, q = 0.554); bad input one line naming the parameter."""
    import json
    import subprocess
    import sys
    import tempfile

    def run(*args):
        return subprocess.run([sys.executable, "-m", "hdtheory.cli", "eval", "lora", *args],
                              capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir())

    result = run("mu=0.5", "tau=0.2", "a0=0.4", "m0=0.3", "n0=-0.1", "target=0,1", "student=0,1",
                 "t=0,1", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["eg"][0] == pytest.approx((0.554 - 2 * 0.62 + 1) / 2, rel=1e-10)
    assert record["eg"][1] < record["eg"][0] and record["success"] is True
    result = run("tau=-1")
    assert result.returncode == 2 and "tau" in result.stderr and result.stderr.count("\n") == 1
