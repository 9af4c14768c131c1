"""Random labels as a teacher channel of their own (Gerace et al. 2022): the storage capacity of the
perceptron and the ridge closed form, and simulation."""

import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory
from hdtheory import ERM, ParameterError
from hdtheory.simulate import simulate


def test_hinge_training_loss_vanishes_below_the_capacity():
    # Cover (1965) / Gardner (1988): n random labels on d Gaussian points are linearly separable
    # (with probability -> 1) for alpha = n/d < 2, not beyond; the nearly unregularised hinge loss
    # fits them with zero training loss below alpha = 2 and not above.
    below = hdtheory.solve(ERM(alpha=1.8, lam=1e-5, loss="hinge", teacher="random"))
    above = hdtheory.solve(ERM(alpha=2.2, lam=1e-5, loss="hinge", teacher="random"))
    assert bool(below.converged) and bool(above.converged)
    assert float(below.observables["train_loss"]) < 1e-6
    assert float(above.observables["train_loss"]) > 1e-3
    for solution in (below, above):
        assert float(solution.observables["test_error"]) == 0.5
        assert float(solution.observables["m"]) == 0.0


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_ridgeless_square_loss_fits_the_noise_in_closed_form(alpha):
    # Least squares on labels independent of the inputs (alpha > 1): the residual keeps the fraction
    # 1 - 1/alpha of the labels' variance, train loss (1 - 1/alpha) / 2, and |w|^2 / d = 1 / (alpha - 1)
    # (the mean of the inverse Wishart matrix).
    solution = hdtheory.solve(ERM(alpha=alpha, lam=1e-9, loss="square", teacher="random"))
    assert bool(solution.converged)
    np.testing.assert_allclose(float(solution.observables["train_loss"]), 0.5 * (1 - 1 / alpha), rtol=1e-6)
    np.testing.assert_allclose(float(solution.observables["q"]), 1 / (alpha - 1), rtol=1e-6)


# The closed forms above check the random labels' channel; tests/test_simulate_erm.py the logistic loss
# against simulation.
@pytest.mark.extended
def test_logistic_against_simulation():
    theory = ERM(alpha=3.0, lam=0.1, loss="logistic", teacher="random")
    solution = hdtheory.solve(theory)
    result = simulate(theory, d=400, seeds=4)
    for key in ("train_loss", "q"):
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.01 * (1 + abs(predicted)), (key, predicted, mean, sem)


def test_bad_input():
    with pytest.raises(ParameterError, match="noise"):
        ERM(teacher="random", noise=0.1)
    with pytest.raises(ParameterError, match="lam"):
        ERM(teacher="random", loss="hinge", lam=0.0, alpha=jnp.asarray(1.5))
    ERM(teacher="random", loss="hinge", lam=0.0, alpha=2.5)  # beyond the capacity: a minimiser exists
