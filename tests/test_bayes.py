"""Bayes-optimal generalised linear models: closed forms, published thresholds, gradients."""

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory import kernels

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def mmse_gaussian_linear(alpha, noise, rho):
    """Gaussian prior N(0, rho), y = z + sqrt(noise) xi: E = rho / (1 + alpha rho / (noise + E)),
    the positive root of E^2 + (noise + alpha rho - rho) E - rho noise = 0."""
    b = noise + alpha * rho - rho
    return (-b + np.sqrt(b**2 + 4 * rho * noise)) / 2


@pytest.mark.parametrize("alpha, noise, rho", [(0.5, 0.1, 1.0), (2.0, 0.1, 1.0), (1.0, 0.01, 2.0)])
def test_gaussian_linear_closed_form(alpha, noise, rho):
    theory = hd.BayesGLM(alpha=alpha, noise=noise, rho=rho, prior="gaussian", channel="linear")
    sol = hd.solve(theory)
    expected = mmse_gaussian_linear(alpha, noise, rho)
    assert sol.converged
    np.testing.assert_allclose(sol.observables["mmse"], expected, rtol=1e-9)
    # The Bayes prediction E[y | x, data] = omega errs by the field's posterior variance, plus noise.
    np.testing.assert_allclose(sol.observables["gen_error_total"], expected + noise, rtol=1e-9)


def test_gradient_against_closed_form_and_finite_differences():
    def mmse(alpha, noise):
        theory = hd.BayesGLM(alpha=alpha, noise=noise)
        return hd.solve(theory).observables["mmse"]

    grad = jax.grad(mmse, argnums=(0, 1))(1.5, 0.2)
    h = 1e-5
    for i, g in enumerate(grad):
        args = np.array([1.5, 0.2])
        e = np.eye(2)[i] * h
        fd = (mmse_gaussian_linear(*(args + e), 1.0) - mmse_gaussian_linear(*(args - e), 1.0)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6)


# The default run checks the derivative through the same implicit differentiation of the fixed point
# (test_gradient_against_closed_form_and_finite_differences).
@pytest.mark.extended
def test_gradient_of_perceptron_error_matches_finite_differences():
    def error(alpha):
        theory = hd.BayesGLM(
            alpha=alpha, prior="gaussian", channel="probit", noise=0.1, order=32, panel_order=8
        )
        return hd.solve(theory).observables["gen_error"]

    both = jax.jit(jax.value_and_grad(error))  # one program; the differences reuse it
    h = 1e-4
    fd = (both(0.8 + h)[0] - both(0.8 - h)[0]) / (2 * h)
    np.testing.assert_allclose(both(0.8)[1], fd, rtol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        dict(prior="rademacher", channel="sign", alpha=1.3),
        # The default run checks the same stationarity on the perceptron.
        pytest.param(dict(prior="gaussian", channel="abs", alpha=0.8), marks=pytest.mark.extended),
        pytest.param(
            dict(prior="gauss-bernoulli", rho=0.3, channel="relu", noise=0.1, alpha=1.0), marks=pytest.mark.extended
        ),
    ],
    ids=["perceptron", "phase-retrieval", "relu"],
)
def test_free_entropy_is_stationary_at_the_fixed_point(kw):
    """``f(q) = psi(qhat(q)) - qhat q / 2 + alpha Psi(q)`` is computed from ``log Z_0`` and
    ``log Z_out``, the map from their derivatives (posterior means, ``g_out^2``): ``df/dq = 0`` at a
    fixed point checks one against the other."""
    theory = hd.BayesGLM(**kw, order=48, panel_order=12)

    # One program: run op by op, the residual and the gradient cost more than it.
    @jax.jit
    def check(q):
        # Plain iteration from an interior point reaches the attracting fixed point: it stops once a
        # step moves q by 1e-14 or less (after 20 to 120 steps here), or after 400 steps. The last
        # step's move is the residual of the state it returns.
        def step(carry):
            i, _, new = carry
            return i + 1, new, theory.update(new)

        def moving(carry):
            i, state, new = carry
            return (i < 400) & (abs(new - state) > 1e-14)

        _, state, new = jax.lax.while_loop(moving, step, (0, q, theory.update(q)))
        return state, abs(new - state), jax.grad(theory.free_entropy)(state)

    state, residual, slope = check(jnp.asarray(0.3 * theory.rho))
    assert residual < 1e-10
    assert 0.01 < state < 0.99 * theory.rho
    # The scale of df/dq is qhat ~ 1; a wrong free entropy is off by O(1).
    assert abs(slope) < 1e-5


def test_perceptron_thresholds(tmp_path):
    """Rademacher prior, sign channel (the teacher-student binary perceptron), as
    examples/bayes_phase_diagram.py computes them (run here in its quick mode rather than by
    tests/test_examples.py; orders 32 / 8).

    Algorithmic threshold alpha_alg = 1.493: Barbier, Krzakala, Macris, Miolane and Zdeborova 2019,
    PNAS 116, 5451, Fig. 2 and the text on the perceptron. Information-theoretic threshold, the
    first-order transition to perfect generalisation, alpha_IT = 1.245: Gyorgyi 1990, Phys. Rev. A
    41, 7097 (abstract: "the transition is found to occur at alpha = 1.245"); Sompolinsky, Tishby
    and Seung 1990, Phys. Rev. Lett. 65, 1683 (the zero of the entropy of the uninformed state,
    where its free entropy meets -log 2, that of the teacher). The value alpha_IT = 1.249 is also
    quoted for this model (attributed to Barbier et al. 2019); the crossing computed here is 1.2447
    at orders 32/8 and at 96/24 alike (to 1e-6: the quadrature is converged), Gyorgyi's value to his
    three digits, 0.004 below 1.249. At alpha = 2 the Bayes-optimal error is zero. (GAMP against
    state evolution: tests/test_bayes_gamp.py.)
    """
    spec = importlib.util.spec_from_file_location("bayes_phase_diagram", EXAMPLES / "bayes_phase_diagram.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(quick=True, out=str(tmp_path / "bayes_phase_diagram.png"))
    alg, it = result["alpha_alg"], result["alpha_it"]
    assert alg.found and it.found
    assert abs(alg.value - 1.493) < 1e-3
    assert abs(it.value - 1.245) < 1e-3
    # Past alpha_IT the teacher (q = rho) is the stable branch; AMP stays on the other until alpha_alg.
    assert it.states[1] == pytest.approx(1.0)
    assert float(result["branches"]["stable_gen_error"][-1]) < 1e-6
    assert (tmp_path / "bayes_phase_diagram.png").stat().st_size > 0


def test_threshold_derivative_matches_finite_differences():
    """Compressed sensing (Gauss-Bernoulli prior, linear channel): d alpha_IT / d noise by implicit
    differentiation against central differences of located thresholds."""

    def locate(noise):
        theory = hd.BayesGLM(
            prior="gauss-bernoulli", rho=0.2, channel="linear", noise=noise, order=32, panel_order=8
        )
        return hd.threshold(theory, "alpha", "information-theoretic", (0.31, 0.35), num=4).value

    # One compiled program gives the threshold and its derivative; the differences reuse it.
    located = jax.jit(jax.value_and_grad(locate))
    h = 2e-6
    value, derivative = located(1e-4)
    assert 0.31 < value < 0.35
    fd = (located(1e-4 + h)[0] - located(1e-4 - h)[0]) / (2 * h)
    # The implicit derivative drops d f / d x, zero at a fixed point up to the quadrature's accuracy
    # (order 32, panels of 8 nodes: 0.6% here); leaving out a term would be off by O(1).
    np.testing.assert_allclose(derivative, fd, rtol=1e-2)


def test_bad_parameters_are_rejected():
    with pytest.raises(hd.ParameterError, match="noise"):
        hd.BayesGLM(channel="sign", noise=0.5)
    with pytest.raises(hd.ParameterError, match="noise"):
        hd.BayesGLM(channel="relu", noise=0.0)
    with pytest.raises(hd.ParameterError, match="rho"):
        hd.BayesGLM(prior="gauss-bernoulli", rho=1.5)
    with pytest.raises(hd.ParameterError, match="kind"):
        hd.threshold(hd.BayesGLM(), "alpha", "spinodal", (0.5, 1.0))


# The default run checks `python -m hdtheory.cli eval` in test_cli.py, and eval of bayes-glm and spiked in
# process (test_bayes_generative.py, test_spiked.py).
@pytest.mark.extended
@pytest.mark.parametrize(
    "model, params",
    [
        ("bayes-glm", ["prior=rademacher", "channel=sign", "alpha=1.3"]),
        ("spiked", ["prior=rademacher", "snr=0.5"]),
    ],
)
def test_cli_eval(model, params):
    out = subprocess.run(
        [sys.executable, "-m", "hdtheory.cli", "eval", model, *params, "--json"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    record = json.loads(out.stdout)
    assert record["converged"]
    if model == "bayes-glm":
        assert 0.1 < record["mmse"] < 0.5  # between the teacher (0) and no information (1)
    else:
        assert record["mmse_matrix"] == pytest.approx(1.0)  # below weak recovery: q = 0


def test_channel_partitions_are_normalised():
    """``int dy Z_out(y, omega, V) = 1`` and ``int dy d_omega Z_out = 0`` by the label quadrature,
    and ``Z_out`` by quadrature over ``z`` matches the closed form."""
    omega, V = jnp.asarray([-0.7, 0.2, 1.5]), jnp.asarray(0.4)

    # Each channel's sums in one compiled program rather than op by op.
    @jax.jit
    def sums(channel):
        y, w, dw = channel.label_quadrature(omega, V, 12)
        # E_y[g_out] = 0 and the closed-form Z integrates P(y | z) over z ~ N(omega, V).
        g = channel.dlog_partition(y, omega[:, None], V)
        return jnp.sum(w, -1), jnp.sum(dw, -1), jnp.sum(w * g, -1)

    for channel in (kernels.ReLU(0.1), kernels.Abs(0.0), kernels.Abs(0.2)):
        total, d_total, mean_g = sums(channel)
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        np.testing.assert_allclose(d_total, 0.0, atol=1e-10)
        np.testing.assert_allclose(mean_g, 0.0, atol=1e-5)

    # Z(y, 0.4, 0.36) = E_z N(y; relu(z), 0.1), z ~ N(0.4, 0.36): panels cut at the kink z = 0.
    @jax.jit
    @jax.vmap
    def partitions(y0):
        z, wz = kernels.panel_rule(jnp.asarray([-0.4 / 0.6]), 60)
        kernel = jnp.exp(-0.5 * (y0 - jnp.maximum(0.4 + 0.6 * z, 0)) ** 2 / 0.1) / np.sqrt(2 * np.pi * 0.1)
        return kernels.ReLU(0.1).partition(y0, 0.4, 0.36), jnp.sum(wz * kernel)

    closed, by_quadrature = partitions(jnp.asarray([-0.3, 0.5]))
    np.testing.assert_allclose(closed, by_quadrature, rtol=1e-10)
