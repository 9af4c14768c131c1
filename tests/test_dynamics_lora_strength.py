"""LoRA fine-tuning: gradients through the ODEs of a ReLU student against finite differences, and
the paper's headline claim located by the ODEs: at a fixed alignment of the pre-trained weight
with the teacher, a stronger pre-training lengthens the search phase, its escape rate the
linearisation's."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import hdtheory as hd
from hdtheory.dynamics import LoRA

from gradient_checks import assert_gradient_matches_differences


def test_relu_gradients_against_finite_differences():
    """d eg(t = 2) / d (mu, tau, lr, scale_lr, a0) for a ReLU unit (p = M = 1, rank one, label noise)
    through the adjoint against central differences of the same compiled program's values (step
    1e-5), at a generic start and at the paper's degenerate one (tau = 0, a0 = 0: lambda = mu nu).
    ReLU's I_2, I_3, J_2 are closed forms in arccos and square roots with infinite slopes where a
    field meets itself (correlation 1, conditional variance 0): there they are taken at exactly 1 and
    0, else rounding errors of 1e-16 jump the moments by 1e-9 and the differences by 1e-4 relative;
    its I_4 is a product rule over (lambda, nu) with lambda on the first Cholesky axis, whose kink
    stays between the nodes. Seen: agreement to 3e-6 relative."""
    names = ("mu", "tau", "lr", "scale_lr", "a0")

    def eg(p):
        mu, tau, lr, scale_lr, a0 = p
        theory = LoRA(activation="relu", output="mean", mu=mu, tau=tau, lr=lr, scale_lr=scale_lr, a0=a0,
                      m0=0.2, n0=0.1, noise=0.05)
        return hd.integrate(theory, 2.0, saveat=jnp.array([2.0])).observables["eg"][-1]

    assert_gradient_matches_differences(eg, (jnp.array([0.5, 0.3, 0.8, 1.0, 0.3]), jnp.array([0.7, 0.0, 0.8, 1.0, 0.0])), names, floor=1e-4, rtol=2e-5, atol=1e-10)


def test_stronger_pre_training_at_fixed_alignment_escapes_later():
    """Nwemadji, Loureiro & Barbier 2026 (abstract): "even when the pre-training and downstream tasks
    are well aligned, strong pre-training can induce a prolonged search phase". The paper's erf(z)
    unit (activation="erf-z"), pre-trained as w0 = s (0.8 w* + 0.6 xi) (alignment 0.8 with the
    teacher, strength s) and fine-tuned from the paper's start (U = 0, the adapter's overlap with the
    teacher 1e-3): the cosine of w with w* stays at 0.8 through a search phase, then rises; the
    time it reaches 0.9 (an event of the ODE) grows with the strength, from 103 at s = 1 to 111,
    125 and 161 at s = 1.5, 2 and 3 (lr = 0.5; below s = 1 it is flat, 104 at s = 0.5)."""

    @jax.jit
    def escape(strength):
        theory = LoRA(activation="erf-z", output="sqrt", mu=0.8 * strength, tau=0.6 * strength, a0=0.0, m0=1e-3,
                      lr=0.5)
        trajectory = hd.integrate(theory, 1e3, event=hd.crossing("max_overlap", 0.9))
        return trajectory.event_time, theory.observables(0.0, theory.init())["max_overlap"]

    times = []
    for strength in (1.0, 1.5, 2.0, 3.0):
        time, start = escape(strength)
        assert float(start) == pytest.approx(0.8, abs=1e-6)
        assert 30.0 < float(time) < 1e3  # a search phase, then the escape
        times.append(float(time))
    assert all(a < b for a, b in zip(times, times[1:]))
    assert times[-1] > 1.5 * times[0]


def _escape_rate(mu, tau, eta, order=80):
    """The growth rate of the adapter from the pre-trained weight w0 = mu w* + tau xi (U = 0, S = 0)
    for f = f* = erf(z), by linearising the rank-one ODEs (Stein's lemma on (lambda, nu)): with
    A = E[f'(lambda)^2 + Delta f''(lambda)], B = -E[f'(nu) f'(lambda)] at lambda = mu nu + tau xi,
    the adapter a and y = (mu A + B) m + tau A n obey d(a, y)/dt = -eta [[A, 1], [k, 0]] (a, y),
    k = (mu A + B)^2 + (tau A)^2, whose positive eigenvalue is eta (-A + sqrt(A^2 + 4 k)) / 2; A and B
    by a NumPy product Gauss-Hermite rule over (nu, xi) with SciPy's erf."""
    z, w = np.polynomial.hermite_e.hermegauss(order)
    nu, xi = np.meshgrid(z, z, indexing="ij")
    weights = np.outer(w, w) / w.sum() ** 2
    lam = mu * nu + tau * xi
    slope = 2 / math.sqrt(math.pi) * np.exp(-(lam**2))
    A = np.sum(weights * (slope**2 - 2 * lam * slope * (erf(lam) - erf(nu))))
    B = -np.sum(weights * 2 / math.sqrt(math.pi) * np.exp(-(nu**2)) * slope)
    k = (mu * A + B) ** 2 + (tau * A) ** 2
    return eta * (-A + math.sqrt(A * A + 4 * k)) / 2


def test_escape_rate_falls_with_the_strength():
    """The mechanism of the test above: from the pre-trained weight (a0 = 0, m0 = 1e-12) |m| grows
    as exp(rate t); the log slope of |m| between t = 150 and 200 (after the decaying mode, while
    |m| < 1e-6) is the linearisation's rate to 2e-3 (seen 1e-5 and 1e-3), 0.0767 at strength 1 and
    0.0521 at strength 3 (alignment 0.8, lr = 0.5)."""

    @jax.jit
    def overlaps(strength):
        theory = LoRA(activation="erf-z", output="sqrt", mu=0.8 * strength, tau=0.6 * strength, a0=0.0, m0=1e-12,
                      lr=0.5)
        return hd.integrate(theory, 200.0, saveat=jnp.array([150.0, 200.0])).observables["m"][:, 0, 0]

    rates = []
    for strength in (1.0, 3.0):
        m = np.abs(np.asarray(overlaps(strength)))
        assert m[-1] < 1e-6  # still linear
        rates.append(math.log(m[1] / m[0]) / 50.0)
        assert rates[-1] == pytest.approx(_escape_rate(0.8 * strength, 0.6 * strength, 0.5), rel=2e-3)
    assert rates[1] < 0.75 * rates[0]
