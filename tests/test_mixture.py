"""The Gaussian-mixture classification model: reductions, a closed form, simulation, gradients, input."""

import re
import subprocess
import tempfile
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory
from hdtheory import Mixture, ParameterError
from hdtheory.simulate import simulate


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(K=1), "K"),
        (dict(K=3, weights=(0.5, 0.3, 0.3)), "weights"),
        (dict(K=2, weights=(0.5, 0.3, 0.2)), "weights"),
        (dict(K=3, loss="logistic"), "loss"),
        (dict(K=2, gram=[[1.0, 2.0], [2.0, 1.0]]), "gram"),
        (dict(K=3, gram=[1.0, 0.0, 0.0, 1.0]), "gram"),
        (dict(K=3, loss="hinge"), "loss"),
        (dict(lam=0.0), "lam"),
    ],
)
def test_bad_input_raises_parameter_error(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Mixture(**kwargs)


@pytest.mark.parametrize("intercept", [0, 1])
def test_two_class_cross_entropy_is_logistic_with_half_the_penalty(intercept):
    # For K = 2 the softmax minimiser is W = (w / 2, -w / 2), w the binary logistic minimiser with
    # penalty lam / 2 (labels +1 for cluster 1, -1 for cluster 2), for balanced or unbalanced
    # clusters: the same test error and training loss, m_binary = 2 m_1c, q_binary = 4 q_11, and
    # with an intercept b = (beta / 2, -beta / 2). Two different proximal operators (the
    # K-dimensional Newton solve and the scalar logistic one).
    common = dict(K=2, alpha=1.5, snr=1.5, weights=(0.7, 0.3), intercept=intercept)
    softmax = hdtheory.solve(Mixture(loss="cross-entropy", lam=0.05, **common))
    binary = hdtheory.solve(Mixture(loss="logistic", lam=0.025, **common))
    assert bool(softmax.converged) and bool(binary.converged)
    a, b = softmax.observables, binary.observables
    for key in ("test_error", "train_loss"):
        assert abs(float(a[key]) - float(b[key])) < 1e-9, key
    for c in (1, 2):
        assert abs(2 * float(a[f"m_1_{c}"]) - float(b[f"m_1_{c}"])) < 1e-8
    assert abs(4 * float(a["q_1_1"]) - float(b["q_1_1"])) < 1e-8
    assert abs(float(a["m_2_1"]) + float(a["m_1_1"])) < 1e-10  # w_2 = -w_1
    if intercept:
        assert abs(2 * float(a["b_1"]) - float(b["b_1"])) < 1e-8
        assert float(b["b_1"]) > 0.1  # towards the larger cluster (label +1)


def _square_closed_form(alpha, lam, rho, G, steps=4000):
    """The square-loss equations with every Gaussian expectation done by hand (the prox is linear):
    ``f_c = (I + V)^{-1} (e_c - omega)``, ``(I + H V)^{-1} H = (I + V)^{-1}``."""
    K = len(rho)
    M, Q, V = np.zeros((K, K)), np.eye(K), np.eye(K)
    for _ in range(steps):
        R = np.linalg.inv(np.eye(K) + V)
        resid = np.eye(K) - M  # column c: e_c - M_c
        Mhat = alpha * rho * (R @ resid)
        Qhat = alpha * R @ (resid @ np.diag(rho) @ resid.T + Q) @ R
        Vhat = alpha * R
        V_new = np.linalg.inv(lam * np.eye(K) + Vhat)
        M_new, Q_new = V_new @ Mhat @ G, V_new @ (Qhat + Mhat @ G @ Mhat.T) @ V_new
        M, Q, V = 0.5 * (M + M_new), 0.5 * (Q + Q_new), 0.5 * (V + V_new)
    return M, Q, V


@pytest.mark.parametrize("K, tol", [(3, 1e-9), (4, 1e-4)])
def test_square_loss_against_its_closed_form(K, tol):
    # K = 3: the product Gauss-Hermite rule over 3 fields (exact here: polynomial integrands);
    # K = 4: the shifted Sobol rule over 4 fields, to its stated accuracy.
    rho = np.array([0.5, 0.3, 0.2, 0.1][:K])
    rho = rho / rho.sum()
    gram = np.eye(K) + 0.3 * (np.eye(K, k=1) + np.eye(K, k=-1))
    theory = Mixture(K=K, loss="square", alpha=2.5, lam=0.3, snr=1.5, weights=rho, gram=gram)
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    M, Q, V = _square_closed_form(2.5, 0.3, rho, 1.5 * gram)
    np.testing.assert_allclose(np.asarray(solution.state.M), M, atol=tol)
    np.testing.assert_allclose(np.asarray(solution.state.Q), Q, atol=tol)
    np.testing.assert_allclose(np.asarray(solution.state.V), V, atol=tol)


@pytest.mark.parametrize("loss, intercept", [("cross-entropy", 0), ("cross-entropy", 1), ("square", 1)])
def test_three_clusters_against_simulation(loss, intercept):
    # d = 400, n = 800, 4 seeds, unbalanced clusters: the test error, training loss, overlaps and
    # intercepts agree within 4 standard errors plus an allowance of 0.01 (relative) for the
    # O(1/d) finite-size bias (the deviations seen are within 2.5 standard errors).
    theory = Mixture(K=3, loss=loss, intercept=intercept, alpha=2.0, lam=0.1, snr=2.0, weights=(0.5, 0.3, 0.2))
    solution = hdtheory.solve(theory)
    assert bool(solution.converged)
    result = simulate(theory, d=400, seeds=4)
    keys = ["test_error", "train_loss", "m_1_1", "m_2_2", "m_1_2", "q_1_1", "q_1_2", "norm"]
    for key in keys + (["b_1", "b_2", "b_3"] if intercept else []):
        predicted, mean, sem = float(solution.observables[key]), result.mean[key], result.sem[key]
        assert abs(predicted - mean) < 4 * sem + 0.01 * (1 + abs(predicted)), (key, predicted, mean, sem)


def test_gradient_in_lam_matches_finite_differences():
    def error(lam):
        theory = Mixture(K=2, loss="cross-entropy", alpha=1.5, snr=1.5, lam=lam, weights=(0.7, 0.3))
        return hdtheory.solve(theory).observables["test_error"]

    lam, h = 0.2, 1e-5
    grad = float(jax.grad(error)(jnp.asarray(lam)))
    fd = (float(error(lam + h)) - float(error(lam - h))) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd))


def test_command_line():
    # The registry gives the command line its model and its scalar parameters by name, and bad
    # input as one line on stderr with exit status 2, before any compile.
    from hdtheory.cli import build_theory

    theory = build_theory("mixture", ["K=4", "alpha=2", "lam=0.1", "intercept=1", "loss=square"])
    assert isinstance(theory, Mixture) and theory.K == 4 and theory.intercept == 1
    np.testing.assert_allclose(np.asarray(theory._rho()), np.full(4, 0.25))
    with pytest.raises(ParameterError, match="intercept"):
        build_theory("mixture", ["intercept=2"])
    # The class weights and the means' Gram matrix are array parameters: comma-separated numbers.
    theory = build_theory("mixture", ["K=3", "weights=0.2,0.3,0.5", "gram=1,0.2,0,0.2,1,0,0,0,1"])
    np.testing.assert_allclose(np.asarray(theory._rho()), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(np.asarray(theory.gram), [1, 0.2, 0, 0.2, 1, 0, 0, 0, 1])
    with pytest.raises(ParameterError, match="weights"):
        build_theory("mixture", ["K=3", "weights=0.2,0.3"])
    # Run outside the checkout, so that the installed package (with hdtheory.kernels) is imported.
    result = subprocess.run([sys.executable, "-m", "hdtheory.cli", "eval", "mixture", "K=3", "loss=logistic"],
                            capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir())
    assert result.returncode == 2, result.stderr
    assert "loss" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sweep_config_takes_the_array_parameters(tmp_path):
    # A TOML list fixes an array parameter; the Dataset's attributes keep it (an empty array, the
    # default, as an empty one), and they round-trip through netCDF.
    import xarray as xr

    from hdtheory import _config, _sweep

    path = tmp_path / "mixture.toml"
    path.write_text('model = "mixture"\n[parameters]\nK = 3\nweights = [0.2, 0.3, 0.5]\n[axes]\nalpha = [1.0, 2.0]\n')
    theory = _config.load(path).theory
    np.testing.assert_allclose(np.asarray(theory._rho()), [0.2, 0.3, 0.5])
    attrs = {k: _sweep._attribute(getattr(theory, k)) for k in ("weights", "gram", "lam", "loss")}
    xr.Dataset(attrs=attrs).to_netcdf(tmp_path / "attrs.nc")
    back = xr.open_dataset(tmp_path / "attrs.nc").attrs
    np.testing.assert_allclose(back["weights"], [0.2, 0.3, 0.5])
    assert np.size(back["gram"]) == 0 and back["lam"] == 0.1 and back["loss"] == "cross-entropy"
    path.write_text('model = "mixture"\n[parameters]\nweights = 0.5\n[axes]\nalpha = [1.0, 2.0]\n')
    with pytest.raises(_config.ConfigError, match="weights"):
        _config.load(path)


def test_vmapped_solve_calls_lapack_per_point_only():
    # The prox's K x K systems are solved by unrolled elimination, not by LAPACK. LAPACK calls
    # batched over the grid points and the quadrature nodes (3 x 576 matrices per point) split
    # their batch over XLA's CPU thread pool and can deadlock it: a vmapped solve over 50 values of
    # lam at alpha = 0.5 hung forever on a 2-core machine (the kernels' module docstring).
    points = 3
    solve = jax.jit(jax.vmap(lambda a, lam: hdtheory.solve(Mixture(K=3, alpha=a, lam=lam))))
    text = solve.lower(jnp.full(points, 0.5), jnp.logspace(-2.0, 1.0, points)).as_text()
    shapes = re.findall(r"custom_call @lapack_\w+\(.*?\).*?: \(tensor<((?:\d+x)+)f64>", text)
    assert shapes
    batches = [int(np.prod([int(d) for d in shape.split("x")[:-1]][:-2])) for shape in shapes]
    assert max(batches) <= points * 3, batches
