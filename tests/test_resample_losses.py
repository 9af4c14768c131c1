"""The kinked convex losses (hinge, Huber, absolute) with sample weights and two learners
(``kernels.resampling``, ``Resample``): the closed-form Gaussian averages and the panel integrals
against SciPy's adaptive ``quad`` cut at every weight's kinks, the plain estimator against ERM,
the Huber bootstrap against resampled fits, a gradient, refused losses and the command line."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import hdtheory
from hdtheory import ERM, ParameterError, Resample, cli
from hdtheory.kernels import Absolute, Hinge, Huber
from hdtheory.kernels.resampling import WeightLaw, _piecewise_average, clip_mean, cross_conjugate
from hdtheory.models import Overlaps
from hdtheory.simulate import simulate

# Weights 0..3 with Poisson(1) masses (renormalised): several steps p V, few enough for nested quad.
LAW = WeightLaw(values=jnp.arange(4.0), probabilities=jnp.asarray(stats.poisson.pmf(np.arange(4), 1.0) / stats.poisson.cdf(3, 1.0)))
P, PI = np.arange(4.0), np.asarray(LAW.probabilities)


def _f(loss, y, omega, V, power=1):
    """``E_p f_p^power`` written from the prox's cases (module docstrings of the losses), in NumPy."""
    total = 0.0
    for p, pi in zip(P[1:], PI[1:]):
        s = p * V  # the weighted loss p l has the prox of step p V
        r = y - omega
        if loss == "hinge":
            u = y * omega
            f = np.where(u >= 1, 0.0, np.where(u <= 1 - s, y * s, y - omega)) / V
        elif loss == "huber":
            f = np.where(np.abs(r) <= (1 + s), s * r / (1 + s), s * np.sign(r)) / V  # delta = 1
        else:
            f = np.where(np.abs(r) <= s, r, s * np.sign(r)) / V
        total = total + pi * f**power
    return total


def _kinks(loss, y, V):
    s = P[1:] * V
    if loss == "hinge":
        return sorted(set(np.r_[y * (1 - s), y]))
    width = 1 + s if loss == "huber" else s
    return sorted(np.r_[y - width, y + width])


LOSSES = {"hinge": Hinge(), "huber": Huber(1.0), "absolute": Absolute()}


@pytest.mark.parametrize("name", ["hinge", "huber", "absolute"])
def test_clip_mean_against_quad(name):
    y, mean, sd, V = 1.0, 0.3, 0.8, 0.7
    got = float(clip_mean(LOSSES[name], LAW, y, mean, sd, V))
    density = lambda w: stats.norm.pdf(w, mean, sd)
    want = sum(
        integrate.quad(lambda w: _f(name, y, w, V) * density(w), a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
        for a, b in zip([-12.0] + _kinks(name, y, V), _kinks(name, y, V) + [12.0])
    )
    assert abs(got - want) < 1e-12, (got, want)
    # No spread: the output function itself.
    np.testing.assert_allclose(float(clip_mean(LOSSES[name], LAW, y, mean, 0.0, V)), _f(name, y, mean, V), atol=1e-15)


def _nested_quad(name, y, V_a, V_b, mean_a, mean_b, L):
    """``E[bar f_a(y, omega_a) bar f_b(y, omega_b)]``, ``omega_a = mean_a + L00 g``, ``omega_b = mean_b +
    L10 g + L11 h``, by nested adaptive quadrature cut at the kinks."""

    def inner(g):
        centre = mean_b + L[1, 0] * g
        edges = [(k - centre) / L[1, 1] for k in _kinks(name, y, V_b)]
        cuts = [-12.0] + sorted(e for e in edges if abs(e) < 12) + [12.0]
        return sum(
            integrate.quad(lambda h: _f(name, y, centre + L[1, 1] * h, V_b) * stats.norm.pdf(h), a, b, epsabs=1e-13, epsrel=1e-11)[0]
            for a, b in zip(cuts[:-1], cuts[1:])
        )

    edges = [(k - mean_a) / L[0, 0] for k in _kinks(name, y, V_a)] + [(k - mean_b) / L[1, 0] for k in _kinks(name, y, V_b)]
    cuts = [-12.0] + sorted(e for e in edges if abs(e) < 12) + [12.0]
    return sum(
        integrate.quad(lambda g: _f(name, y, mean_a + L[0, 0] * g, V_a) * inner(g) * stats.norm.pdf(g), a, b, epsabs=1e-12, epsrel=1e-10)[0]
        for a, b in zip(cuts[:-1], cuts[1:])
    )


@pytest.mark.parametrize("name, correlation, tol", [("hinge", 0.6, 1e-9), ("huber", 0.6, 1e-9), ("absolute", 0.97, 2e-8)])
def test_two_learner_integral_against_nested_quad(name, correlation, tol):
    # Two learners with different variances and means, at one outer node (a label and the
    # teacher's field), the second learner strongly correlated with the first in one case (the
    # inner average then bends sharply where its kinks project on the outer field: 2e-8 there at
    # the eight nodes per panel used, 1e-9 elsewhere).
    y, V_a, V_b, mean_a, mean_b = 1.0, 0.6, 0.9, 0.2, -0.1
    L = np.array([[1.1, 0.0], [1.3 * correlation, 1.3 * math.sqrt(1 - correlation**2)]])
    # One compiled program, not op-by-op runs.
    average = jax.jit(lambda L: _piecewise_average(LOSSES[name], LAW, LAW, V_a, V_b, jnp.ones(1) * y, jnp.ones(1) * y, jnp.ones(1),
                                                   jnp.ones(1) * mean_a, jnp.ones(1) * mean_b, L, 8))
    got = float(average(jnp.asarray(L)))
    want = _nested_quad(name, y, V_a, V_b, mean_a, mean_b, L)
    assert abs(got - want) < tol, (got, want)


def test_weighted_hinge_conjugates_against_quad():
    # One learner of the hinge loss under the bootstrap (Poisson weights 0..19) on a noisy sign
    # teacher: ERM's conjugates with f averaged over the weights, integrated on ERM's panels with
    # edges at every step's kinks, against quad cut there.
    rho, m, q, V, eps, alpha = 1.0, 0.7, 1.4, 0.8, 0.05, 2.0
    learner = Resample(alpha=alpha, rho=rho, noise=eps, loss="hinge", teacher="sign").learner
    state = Overlaps(m=jnp.asarray(m), q=jnp.asarray(q), V=jnp.asarray(V))
    got = jax.jit(lambda state: learner.conjugates(state))(state)  # compiled, not op by op
    law = learner.weights
    values, probs = np.asarray(law.values), np.asarray(law.probabilities)
    V0 = rho - m**2 / q

    def f_and_slope(y, omega):  # E_p f_p, E_p f_p^2, E_p d f_p / d omega
        f = f2 = df = 0.0
        for p, pi in zip(values[1:], probs[1:]):
            s, u = p * V, y * omega
            fp = np.where(u >= 1, 0.0, np.where(u <= 1 - s, y * s, y - omega)) / V
            f, f2 = f + pi * fp, f2 + pi * fp**2
            df = df + pi * np.where((u < 1) & (u > 1 - s), -1 / V, 0.0)
        return f, f2, df

    want = np.zeros(3)
    for y in (-1.0, 1.0):
        kinks = sorted({y * (1 - p * V) / math.sqrt(q) for p in values[1:]} | {y / math.sqrt(q), 0.0})
        cuts = [-12.0] + [k for k in kinks if abs(k) < 12] + [12.0]

        def integrands(xi):
            omega0, omega = m / math.sqrt(q) * xi, math.sqrt(q) * xi
            Z = eps + (1 - 2 * eps) * stats.norm.cdf(y * omega0 / math.sqrt(V0))
            dZ = (1 - 2 * eps) * y * stats.norm.pdf(y * omega0 / math.sqrt(V0)) / math.sqrt(V0)
            f, f2, df = f_and_slope(y, omega)
            return np.array([dZ * f, Z * f2, -Z * df]) * stats.norm.pdf(xi)

        for k in range(3):
            want[k] += sum(
                integrate.quad(lambda xi: integrands(xi)[k], a, b, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
                for a, b in zip(cuts[:-1], cuts[1:])
            )
    np.testing.assert_allclose(np.asarray(got), alpha * want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["huber", "absolute"])
def test_weighted_residual_closed_form_against_quad(name):
    # The linear teacher: f_p a function of the Gaussian residual r ~ N(0, s2); mhat = Vhat =
    # alpha E_p E f_p'(r), qhat = alpha E_p E f_p(r)^2 (in closed form), against quad over r.
    rho, m, q, V, noise, alpha = 1.0, 0.6, 0.9, 0.7, 0.3, 1.5
    learner = Resample(alpha=alpha, rho=rho, noise=noise, loss=name, teacher="linear").learner
    state = Overlaps(m=jnp.asarray(m), q=jnp.asarray(q), V=jnp.asarray(V))
    got = jax.jit(lambda state: learner.conjugates(state))(state)  # compiled, not op by op
    s = math.sqrt(rho + noise - 2 * m + q)
    values, probs = np.asarray(learner.weights.values), np.asarray(learner.weights.probabilities)

    def parts(r):
        f2 = df = 0.0
        for p, pi in zip(values[1:], probs[1:]):
            step = p * V
            width = 1 + step if name == "huber" else step
            fp = np.where(np.abs(r) <= width, r * step / width, step * np.sign(r)) / V
            f2, df = f2 + pi * fp**2, df + pi * np.where(np.abs(r) <= width, step / width / V, 0.0)
        return np.array([df, f2])

    kinks = sorted({w for p in values[1:] for w in ((1 + p * V) if name == "huber" else p * V,)})
    cuts = [-12 * s] + sorted([-k for k in kinks if k < 12 * s]) + [k for k in kinks if k < 12 * s] + [12 * s]
    want = [
        sum(integrate.quad(lambda r: parts(r)[k] * stats.norm.pdf(r, 0, s), a, b, epsabs=1e-14, epsrel=1e-12)[0]
            for a, b in zip(cuts[:-1], cuts[1:]))
        for k in range(2)
    ]
    np.testing.assert_allclose(np.asarray(got), alpha * np.array([want[0], want[1], want[0]]), rtol=1e-10)


# The default run checks the same path with the hinge loss, and the Huber loss's resampling against
# simulation (test_huber_bootstrap_against_simulation).
@pytest.mark.parametrize(
    "kw", [dict(loss="hinge", teacher="sign", noise=0.05),
           pytest.param(dict(loss="huber", teacher="linear", noise=0.5, delta=0.7), marks=pytest.mark.extended)]
)
def test_identical_learners_and_the_plain_estimator_are_erm(kw):
    # scheme=full is ERM's fixed point; and the two-learner integral of two identical learners with
    # constant weights (q_ab = q: a singular covariance) is ERM's qhat / alpha, integrated by ERM's
    # own rule (panels at the kinks for hinge, the closed form for Huber).
    common = dict(alpha=1.5, lam=0.2, **kw)
    sol = hdtheory.solve(Resample(scheme="full", **common))
    erm = hdtheory.solve(ERM(**common))
    assert sol.converged and erm.converged
    for key in ("m", "q", "V"):
        np.testing.assert_allclose(float(sol.observables[key]), float(erm.observables[key]), rtol=1e-10)
    np.testing.assert_allclose(float(sol.observables["q_ab"]), float(erm.observables["q"]), rtol=1e-10)
    o = erm.observables
    theory = ERM(**common)
    one = (o["m"], o["q"], o["V"], WeightLaw.constant())
    same = jax.jit(lambda one, q_ab: cross_conjugate(theory.channel, theory.loss_fn, 1.0, one, one, q_ab))(one, o["q"])
    np.testing.assert_allclose(float(same), float(o["qhat"]) / 1.5, rtol=1e-9)


def test_huber_bootstrap_against_simulation():
    # The pairs bootstrap as practised: 20 resampled Huber fits (Newton's method in one compiled
    # loop) on each of two data sets at d = 150, n = 150; their variance per coordinate against
    # resample_variance (as the ridge check of test_resample.py, which runs the 50 resamples at
    # d = 300: the spread over resamples of one data set, which the teacher's and the data's draw
    # move little; m and q themselves move by 4% between data sets at n = 300). q - q_ab is unbiased
    # in the number of resamples, whose finite count (relative error sqrt(2 / (19 d)) = 2.6% here)
    # the spread over data sets measures. Tolerance: four standard errors over the data sets plus 6%
    # for the O(1 / d) bias (multinomial counts of n draws for Poisson(1) weights; 3% at d = 300).
    # The fits cost d^3 each: 20 at d = 150 are 1/20 of 50 at d = 300.
    theory = Resample(alpha=1.0, lam=0.1, noise=0.5, loss="huber", delta=0.5, scheme="bootstrap", M=50.0)
    sol = hdtheory.solve(theory)
    assert sol.converged
    sim = simulate(theory, d=150, seeds=2, learners=20)
    want = float(sol.observables["resample_variance"])
    assert abs(sim.mean["resample_variance"] - want) < 4 * sim.sem["resample_variance"] + 0.06 * want, (
        want, sim.mean["resample_variance"], sim.sem["resample_variance"])


def test_gradient_in_lam():
    def variance(lam):
        theory = Resample(alpha=2.0, lam=lam, noise=0.5, loss="huber", delta=0.5, scheme="bootstrap")
        return hdtheory.solve(theory).observables["resample_variance"]

    value_and_grad = jax.jit(jax.value_and_grad(variance))
    grad = float(value_and_grad(0.1)[1])
    h = 1e-5
    fd = (float(value_and_grad(0.1 + h)[0]) - float(value_and_grad(0.1 - h)[0])) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd)), (grad, fd)


@pytest.mark.parametrize("loss", ["tukey", "cauchy"])
def test_non_convex_losses_are_refused(loss):
    with pytest.raises(ParameterError, match=f"'loss' must not be '{loss}': a non-convex loss"):
        Resample(loss=loss, teacher="linear")


def test_command_line(capsys):
    args = ["eval", "resample", "loss=huber", "scheme=bootstrap", "teacher=linear", "alpha=2", "lam=0.1", "noise=0.5"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and out["variance_ratio"] > 0
    assert cli.main(["eval", "resample", "loss=cauchy", "teacher=linear"]) == 2
    err = capsys.readouterr().err
    assert "non-convex" in err and len(err.strip().splitlines()) == 1
