"""Single-index ODEs: the escape time of a target of information exponent 3 on the sphere."""

import math

import jax.numpy as jnp
import pytest

import hdtheory as hd
from hdtheory import ParameterError
from hdtheory.dynamics import SingleIndex


def test_escape_time_of_information_exponent_three():
    """f = f* = He_3 / sqrt(6), spherical SGD: dm/dt = 3 eta m^2 (1 - m^2) + O(eta^2 m), so the time
    from m0 = d^(-1/2) to m = 1/2 is (1 / (3 eta)) (1/m0 - 2 + atanh(1/2) - atanh(m0)): it grows
    as sqrt(d) = d^((k-2)/2) (Ben Arous, Gheissari & Jagannath 2021, k = 3)."""
    eta = 1e-6
    for d in (1e4, 1e6):
        m0 = 1 / math.sqrt(d)
        theory = SingleIndex(lr=eta, m0=m0)
        assert theory.information_exponent == 3
        trajectory = hd.integrate(
            theory, 1e10, saveat=jnp.array([0.0]), event=hd.crossing("m", 0.5), max_steps=10_000
        )
        exact = (1 / m0 - 2 + math.atanh(0.5) - math.atanh(m0)) / (3 * eta)
        assert float(trajectory.event_time) == pytest.approx(exact, rel=2e-2)


def test_batch_rescales_the_learning_rate():
    one = SingleIndex(lr=0.01, m0=0.2, target=(0.0, 0.0, 1.0), student=(0.0, 0.0, 1.0))
    four = SingleIndex(lr=0.04, batch=4, m0=0.2, target=(0.0, 0.0, 1.0), student=(0.0, 0.0, 1.0))
    a = hd.integrate(one, 100.0, saveat=jnp.array([100.0])).observables
    b = hd.integrate(four, 100.0, saveat=jnp.array([100.0])).observables
    assert float(a["m"][-1]) == pytest.approx(float(b["m"][-1]), rel=1e-8)
    assert float(b["iterations"][-1]) == pytest.approx(25.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"batch": 0}, "batch"), ({"m0": 1.5}, "m0"), ({"geometry": "torus"}, "geometry"),
     ({"lr": 0.0}, "lr")],
)
def test_bad_input(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        SingleIndex(**kwargs)


@pytest.mark.parametrize("geometry", ["spherical", pytest.param("unconstrained", marks=pytest.mark.extended)])
def test_ode_matches_simulation(geometry):
    """d = 1000, 4 seeds, b = 4, target = student = He_2 / sqrt(2) with label noise: the overlap
    within 4 standard errors plus 0.02 (the O(d^-1/2) finite-size bias of one run)."""
    import jax
    import numpy as np

    theory = SingleIndex(lr=0.2, batch=4, m0=0.2, q0=0.5, geometry=geometry, noise=0.1,
                         target=(0.0, 0.0, 1.0), student=(0.0, 0.0, 1.0))
    times = np.array([0.0, 5.0, 10.0, 20.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(1))
    ode = hd.integrate(theory, 20.0, saveat=jnp.asarray(times)).observables
    m = np.asarray(ode["m"])
    assert m[-1] > 2 * m[0]  # the overlap grows: the comparison is not trivial
    for key in ("m", "q"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - np.asarray(ode[key])),
                                     4 * sim.sem[key] + 0.02)
