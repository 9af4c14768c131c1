"""The Gaussian-random-field model (``RandomField``; Bereyhi et al. 2022's setting, equations derived
in the model's docstring), against what it does not compute itself:

- ``C(q) = q`` is the linear GLM: ``BayesGLM(channel="linear")`` with the same prior;
- ``C(q) = q^p``, Rademacher prior: the information-theoretic threshold tends, from below, to the
  closed form ``alpha_c = 2 log 2 / log(1 + 1 / noise)`` (capacity per output equal to the prior's
  entropy) as ``p`` grows; its implicit derivative in ``noise`` against finite differences of
  located thresholds, and against the closed form's derivative at large ``p``;
- ``C(q) = q^2``: weak recovery at ``alpha = (1 + noise) / 2`` (closed form), and
  exact Bayesian inference by enumeration of the ``2^N`` states at ``N = 12, 14``
  (``hdtheory.simulate``), on each side of the all-or-nothing transition;
- bad input: one-line errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate import simulate
from hdtheory.simulate.random_field import draw_field, field

LOG2 = np.log(2.0)


def test_linear_covariance_is_the_linear_glm():
    """``C(q) = q``: the map and the free entropy on a grid of q in [0, 1) (so the fixed points and
    their free entropies too) equal BayesGLM's to 1e-9, for the Rademacher and Gaussian priors at
    alpha = 0.5 and 1.5, in one program."""
    qs = jnp.linspace(0.0, 0.99, 12)

    def gap(alpha, prior):
        rf = hd.RandomField(alpha=alpha, noise=0.3, coefficients=(0.0, 1.0), prior=prior)
        glm = hd.BayesGLM(alpha=alpha, noise=0.3, channel="linear", prior=prior)
        f = lambda t: jax.vmap(lambda q: jnp.stack([t.update(q), t.free_entropy(q)]))(qs)
        return f(rf), f(glm)

    @jax.jit
    def run(alphas):
        return [jax.vmap(lambda a: gap(a, prior))(alphas) for prior in ("rademacher", "gaussian")]

    for rf, glm in run(jnp.asarray([0.5, 1.5])):
        np.testing.assert_allclose(rf, glm, atol=1e-9)
        assert np.all(np.isfinite(rf)) and np.ptp(rf[..., 0]) > 0.1


def _threshold(p, noise, order=32):
    coefficients = jax.nn.one_hot(p, 17, dtype=noise.dtype)
    theory = hd.RandomField(alpha=1.0, noise=noise, coefficients=coefficients, order=order)
    result = hd.threshold(theory, "alpha", "information-theoretic", (0.5, 2.0), num=8)
    return result.value, result.found


@jax.jit
def _thresholds(powers, noises):
    (values, found), grads = jax.vmap(jax.value_and_grad(_threshold, argnums=1, has_aux=True))(powers, noises)
    return values, grads, found


def test_all_or_nothing_threshold_and_its_gradient():
    """Rademacher prior, noise 0.5, ``C(q) = q^p``: the located IT threshold approaches
    ``alpha_c = 2 log 2 / log 3 = 1.26186`` from below, fast (seen: ``alpha_c - alpha_IT`` = 4.3e-3,
    1.9e-5, 5.8e-10 at p = 4, 8, 16; 2.0e-2 at p = 3). ``d alpha_IT / d noise``: at p = 4 against the
    central difference of thresholds located at noise +- 1e-4; at p = 16 against the closed form's
    derivative ``2 log 2 / (log(1 + 1/noise)^2 noise (1 + noise))``."""
    noise, h = 0.5, 1e-4
    powers = jnp.asarray([4, 8, 16, 4, 4])
    noises = jnp.asarray([noise, noise, noise, noise + h, noise - h])
    values, grads, found = _thresholds(powers, noises)
    assert np.all(found)
    alpha_c = 2 * LOG2 / np.log(1 + 1 / noise)
    gaps = alpha_c - np.asarray(values[:3])
    assert 1e-3 < gaps[0] < 1e-2 and 1e-6 < gaps[1] < 1e-4 and 0 <= gaps[2] < 1e-8
    np.testing.assert_allclose(grads[0], (values[3] - values[4]) / (2 * h), rtol=1e-5)
    closed = 2 * LOG2 / (np.log(1 + 1 / noise) ** 2 * noise * (1 + noise))
    np.testing.assert_allclose(grads[2], closed, rtol=1e-6)


def test_weak_recovery_of_the_quadratic_field():
    """``C(q) = q^2``: the slope of ``update`` at ``q = 0`` is ``2 alpha / (noise + 1)`` (closed form,
    module docstring), so that ``hd.threshold(..., "weak-recovery")`` is at ``alpha = (1 + noise) / 2``
    (0.75 at noise 0.5); ``q = 0`` is no fixed point once ``c_1 > 0`` (infinite radius)."""
    located = hd.threshold(hd.RandomField(noise=0.5), "alpha", "weak-recovery", (0.3, 2.0))
    assert located.found
    np.testing.assert_allclose(located.value, 0.75, rtol=1e-8)
    mixed = hd.RandomField(alpha=1.0, noise=0.5, coefficients=(0.0, 0.1, 1.0))
    assert np.isinf(jax.jit(lambda: mixed.linear_stability()[0])())  # compiled, not run op by op


def test_field_covariance_by_monte_carlo():
    """The simulated field has ``E Phi(x) Phi(x') = c_0 + c_1 q + c_2 q^2`` at ``q = x.x'/N``: 4000 draws
    at N = 8 for three pairs of Rademacher states (q = 1, 0.5, -0.25), within 4 standard errors."""
    d, draws = 8, 4000
    x = jnp.ones((3, d))
    x_prime = jnp.asarray([[1.0] * 8, [1.0] * 6 + [-1.0] * 2, [1.0] * 3 + [-1.0] * 5])
    q = np.sum(np.asarray(x * x_prime), axis=1) / d
    coefficients = jnp.asarray([0.3, 0.5, 1.2])

    def products(key):
        params = draw_field(key, coefficients, d, 1)
        return field(params, x)[:, 0] * field(params, x_prime)[:, 0]

    samples = np.asarray(jax.jit(jax.vmap(products))(jax.random.split(jax.random.PRNGKey(3), draws)))
    expected = 0.3 + 0.5 * q + 1.2 * q**2
    error = samples.std(axis=0) / np.sqrt(draws)
    assert np.all(np.abs(samples.mean(axis=0) - expected) < 4 * error)


# The default run checks N = 12; N = 14 repeats it at a larger size.
@pytest.mark.parametrize("d", [12, pytest.param(14, marks=pytest.mark.extended)])
def test_exact_posterior_on_both_sides_of_the_transition(d):
    """Rademacher prior, ``C(q) = q^2``, noise 0.01: the theory's all-or-nothing transition is at
    ``alpha_IT = 0.300`` (weak recovery only at 0.505). Exact enumeration of the posterior over 128
    instances, at ``M = round(alpha N)`` outputs, against the theory at ``alpha = M / N``:

    - ``alpha = 1/2`` (recovery): the posterior sits on ``+-x*``, so ``I / N = log 2 - log 2 / N``
      (the two states; the theory's ``I = log 2``), less where other states weigh in (which can only
      lower ``I``); seen 0.6338 (N = 12), 0.6435, 0.6498, 0.6546 (N = 14, 16, 18), against 0.6354,
      0.6436, 0.6498, 0.6546: within 3e-3 below; ``mmse_matrix`` (theory 0) below 1e-2 in all
      instances but one at N = 12 (1.45: 6 outputs that another state fits), in at least 97% of them;
    - ``alpha = 1/6`` (nothing, ``q = 0``, ``I / N = (alpha / 2) log(1 + 1 / noise)``): seen
      0.373 +- 0.010 (theory 0.385; N = 12, M = 2), 0.328 +- 0.008 (0.330; N = 14, M = 2),
      0.413 +- 0.008 (0.433; N = 16, M = 3), 0.392 +- 0.009 (0.385; N = 18, M = 3): within 0.03;
      ``mmse_matrix`` (theory 1) is 0.81, 0.87, 0.84, 0.88: the finite posterior's overlap
      fluctuations, ``E <(x.x*/N)^2>`` about ``2 / N``; within ``3 / N``.

    The free entropy ``log Z / N`` agrees too, with the noise's own likelihood adding a spread of
    ``sqrt(alpha / 2N)`` an instance that the mutual information does not have."""
    noise = 0.01
    for alpha, recovered in ((1 / 6, False), (0.5, True)):
        result = simulate(hd.RandomField(alpha=alpha, noise=noise), d=d, seeds=128, key=jax.random.PRNGKey(1))
        theory = hd.RandomField(alpha=result.n / d, noise=noise)
        branches = [hd.solve(theory, init).observables for init in ("uninformed", "informed")]
        best = max(branches, key=lambda o: float(o["free_entropy"]))
        assert (float(best["q"]) > 0.999) == recovered
        info, mmse = result.mean["mutual_information"], result.mean["mmse_matrix"]
        if recovered:
            assert 0 <= float(best["mutual_information"]) - LOG2 / d - info < 3e-3
            assert np.mean(result.samples["mmse_matrix"] < 1e-2) >= 0.97
        else:
            np.testing.assert_allclose(info, float(best["mutual_information"]), atol=0.03)
            np.testing.assert_allclose(mmse, float(best["mmse_matrix"]), atol=3 / d)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=0.0), "parameter 'alpha' must lie in \\(0, inf\\)"),
        (dict(noise=0.0), "parameter 'noise' must lie in \\(0, inf\\)"),
        (dict(coefficients=(0.0, -1.0)), "parameter 'coefficients' must lie in \\[0, inf\\)"),
        (dict(coefficients=(1.0, 0.0)), "parameter 'coefficients' must be c_0, c_1, ... >= 0 with some c_k > 0"),
        (dict(coefficients=(1.0,)), "parameter 'coefficients' must be c_0, c_1"),
        (dict(prior="cauchy"), "parameter 'prior' must be one of"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(hd.ParameterError, match=match) as info:
        hd.RandomField(**kwargs)
    assert "\n" not in str(info.value)


def test_simulation_refuses_what_it_cannot_enumerate():
    with pytest.raises(hd.ParameterError, match="parameter 'prior' must be discrete"):
        simulate(hd.RandomField(prior="gaussian"), d=8)
    with pytest.raises(hd.ParameterError, match="degree <= 2"):
        simulate(hd.RandomField(coefficients=(0.0, 0.0, 0.0, 1.0)), d=8)
    with pytest.raises(hd.ParameterError, match="parameter 'd' must keep"):
        simulate(hd.RandomField(), d=40)
