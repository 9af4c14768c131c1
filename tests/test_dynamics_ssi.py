"""Sequence single-index ODEs (``ssi``): reductions to the single-index model, a closed form with a
positional encoding, the escape time, online SGD at d = 1000, the gradient in the learning rate."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import SequenceSingleIndex, SingleIndex
from hdtheory.dynamics.single_index import Overlaps
from hdtheory.dynamics.ssi import SequenceOverlaps

STATES = [(0.3, 0.5), (0.1, 1.2), (-0.5, 0.3), (0.9, 1.0)]
HERMITE = dict(target=(0.1, 0.5, 1.0, 0.3), student=(0.0, 0.2, 1.0, 0.5))


@eqx.filter_jit
def _fields(theory, other, m, q):
    """Both vector fields and errors at the states ``(m, q)`` (arrays), in one compiled call."""

    def one(m, q):
        state = SequenceOverlaps(m=m, e=jnp.zeros_like(m), q=q)
        a, b = theory.vector_field(0.0, state), other.vector_field(0.0, Overlaps(m=m, q=q))
        eg_a = theory.observables(0.0, state)["eg"]
        eg_b = other.observables(0.0, Overlaps(m=m, q=q))["eg"]
        return jnp.stack([a.m, a.q, eg_a]), jnp.stack([b.m, b.q, eg_b]), a.e

    return jax.vmap(one)(m, q)


@pytest.mark.parametrize("geometry", ["spherical", "unconstrained"])
@pytest.mark.parametrize("L, form", [(1, "sum"), (1, "tied"), (1000, "tied")])
def test_single_index_reductions(L, form, geometry):
    """One token, or the tied form at any L without encoding, is the single-index model: the same
    vector field to rounding at states away from the start (the tied form at L = 1000 through its
    reduction; its fields' sum over sqrt(L) is again N(0, q), correlated by m)."""
    kw = dict(lr=0.3, noise=0.1, geometry=geometry, **HERMITE)
    theory = SequenceSingleIndex(L=L, target_form=form, student_form=form, **kw)
    m, q = (jnp.array(v) for v in zip(*STATES))
    ours, theirs, e = _fields(theory, SingleIndex(**kw), m, q)
    assert np.all(np.asarray(e) == 0.0)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-12, atol=1e-13)


# The default run checks the same reduction's vector field (test_single_index_reductions).
@pytest.mark.extended
def test_length_one_trajectory_is_single_index():
    """The whole trajectory (spherical, label noise) to the solver's tolerance (1e-8 relative)."""
    kw = dict(lr=0.1, m0=0.2, noise=0.1, target=(0.0, 0.5, 1.0), student=(0.0, 0.5, 1.0))
    ts = jnp.array([0.0, 2.0, 5.0, 10.0])
    a = hd.integrate(SequenceSingleIndex(L=1, **kw), 10.0, saveat=ts).observables
    b = hd.integrate(SingleIndex(**kw), 10.0, saveat=ts).observables
    assert float(b["m"][-1]) > 0.7  # a non-trivial path
    for key in ("m", "eg"):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-6, atol=1e-9)


def test_linear_sum_with_positions_closed_form():
    """f = f* = sum_l z_l (He_1), encoding c, unconstrained: Delta = sum_l (lambda_l - nu_l) + e C,
    C = sum_l c_l, and the moments are elementary: dm/dt = -eta L (m - 1),
    de/dt = -eta e (C^2 + L) (the L from Stein's lemma on p.x_l), dq/dt = -2 eta (L (q - m) + e^2 C^2)
    + eta^2 L (L (q - 2m + 1) + e^2 C^2 + noise), eg = (L (q - 2m + 1) + e^2 C^2) / 2."""
    L, eta, noise = 3, 0.1, 0.3
    c = (1.0, -0.5, 2.0)
    C = sum(c)
    theory = SequenceSingleIndex(L=L, lr=eta, noise=noise, geometry="unconstrained", positions=c,
                                 target=(0.0, 1.0), student=(0.0, 1.0))
    for m, e, q in [(0.1, 0.2, 0.5), (0.7, -0.3, 1.3), (-0.2, 0.6, 0.9)]:
        state = SequenceOverlaps(m=jnp.array(m), e=jnp.array(e), q=jnp.array(q))
        field = theory.vector_field(0.0, state)
        error = L * (q - 2 * m + 1) + e**2 * C**2
        assert float(field.m) == pytest.approx(-eta * L * (m - 1), rel=1e-12)
        assert float(field.e) == pytest.approx(-eta * e * (C**2 + L), rel=1e-12)
        expected_q = -2 * eta * (L * (q - m) + e**2 * C**2) + eta**2 * L * (error + noise)
        assert float(field.q) == pytest.approx(expected_q, rel=1e-12)
        assert float(theory.observables(0.0, state)["eg"]) == pytest.approx(error / 2, rel=1e-12)


# The default run checks the per-token reduction at L = 1000 against a closed form
# (test_dynamics_ssi_long) and event times against exact crossings (test_dynamics_committee).
@pytest.mark.extended
def test_escape_time_is_one_over_L():
    """Sum form, h = h* = He_3 / sqrt(6), L = 1000 (the per-token reduction), spherical, small eta:
    each token's drift adds up and the cross-token terms vanish (E[He_3] = 0),
    dm/dt = 3 L eta m^2 (1 - m^2) + O(eta^2 L^2 m), so the time from m0 to 1/2 is
    (1 / m0 - 2 + atanh(1/2) - atanh(m0)) / (3 L eta): the single-index time
    (tests/test_dynamics_single_index.py) over L. Within 1% (the O(eta L) correction: 0.01% seen)."""
    L, m0 = 1000, 1e-2
    eta = 2e-6 / L
    theory = SequenceSingleIndex(L=L, lr=eta, m0=m0, target=(0, 0, 0, 1.0), student=(0, 0, 0, 1.0))
    trajectory = hd.integrate(theory, 1e10, saveat=jnp.array([0.0]), event=hd.crossing("m", 0.5),
                              max_steps=10_000)
    exact = (1 / m0 - 2 + math.atanh(0.5) - math.atanh(m0)) / (3 * L * eta)
    assert float(trajectory.event_time) == pytest.approx(exact, rel=1e-2)


def test_ode_matches_simulation():
    """d = 1000, 4 seeds, L = 2, h = h* = He_1 / 2 + He_2 / sqrt(2), opposite-paired encoding
    c = (1, -1), label noise, unconstrained: m, e, q within 4 standard errors plus 0.02 (the
    O(d^-1/2) finite-size bias of one run)."""
    theory = SequenceSingleIndex(L=2, lr=0.1, m0=0.2, e0=0.3, q0=0.8, positions=(1.0, -1.0),
                                 noise=0.1, geometry="unconstrained", target=(0, 0.5, 1.0),
                                 student=(0, 0.5, 1.0))
    times = np.array([0.0, 2.0, 5.0, 10.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(1))
    ode = {k: np.asarray(v) for k, v in hd.integrate(theory, 10.0, saveat=jnp.asarray(times)).observables.items()}
    assert ode["m"][-1] > 4 * ode["m"][0] and ode["e"][-1] < 0.1 * ode["e"][0]  # both move
    for key in ("m", "e", "q"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - ode[key]), 4 * sim.sem[key] + 0.02)


def test_gradient_in_the_learning_rate():
    """d eg(t = 5) / d lr through the adjoint against a central finite difference (the same compiled
    program's values), spherical, L = 2 with the opposite-paired encoding."""
    base = SequenceSingleIndex(L=2, lr=0.1, m0=0.2, e0=0.3, positions=(1.0, -1.0),
                               target=(0, 0.5, 1.0), student=(0, 0.5, 1.0))

    def eg(lr):
        theory = SequenceSingleIndex(**{**_fields_of(base), "lr": lr})
        return hd.integrate(theory, 5.0, saveat=jnp.array([5.0])).observables["eg"][-1]

    value_and_grad = jax.jit(jax.value_and_grad(eg))
    lr, h = 0.1, 1e-4
    value, grad = value_and_grad(jnp.asarray(lr))
    fd = (value_and_grad(jnp.asarray(lr + h))[0] - value_and_grad(jnp.asarray(lr - h))[0]) / (2 * h)
    assert abs(float(grad)) > 1.0  # not trivially zero
    assert float(grad) == pytest.approx(float(fd), rel=1e-5)


def _fields_of(theory):
    return {name: getattr(theory, name) for name in theory.__dataclass_fields__}


@pytest.mark.parametrize(
    "kwargs, name",
    [({"L": 0}, "L"), ({"positions": (1.0, 2.0, 3.0)}, "positions"), ({"m0": 0.8, "e0": 0.8}, "e0"),
     ({"lr": 0.0}, "lr"), ({"target_form": "product"}, "target_form"), ({"order": 2}, "order"),
     ({"L": 9, "rule": "product"}, "L"), ({"L": 9, "student_form": "tied", "rule": "product"}, "L"), ({"e0": 1.5}, "e0"),
     ({"batch": 0}, "batch"), ({"rule": "exact"}, "rule")],
)
def test_bad_input(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SequenceSingleIndex(**kwargs)


def test_registered():
    from hdtheory.dynamics import DYNAMICS

    assert DYNAMICS["ssi"] is SequenceSingleIndex is hd.SequenceSingleIndex
