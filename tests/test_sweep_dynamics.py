"""``sweep`` over an ODE theory: learning curves on a grid, with a time axis.

The reference is the linear perceptron's exact solution (K = M = 1, g(x) = x): the error
``e = Q - 2R + T = 2 eg`` obeys ``de/dt = -(2 eta - eta^2) e + eta^2 sigma``, and diverges for
``eta > 2``.
"""

import numpy as np
import pytest

import hdtheory as hd

TIMES = np.linspace(0.0, 20.0, 6)


@pytest.fixture(scope="module")
def grid():
    theory = hd.Committee(K=1, M=1, activation="linear", q0=0.3, R0=[[0.2]])
    axes = {"lr": [0.25, 0.5, 1.5, 2.5], "noise": [0.0, 0.1]}
    return hd.sweep(theory, axes, t1=20.0, saveat=TIMES, chunk_size=4, progress=False)


def test_learning_curves_on_a_grid_match_the_exact_solution(grid):
    assert grid["eg"].dims == ("lr", "noise", "t")
    np.testing.assert_array_equal(grid["t"], TIMES)
    assert grid["Q"].dims == ("lr", "noise", "t", "Q_0", "Q_1")
    eta, sigma = np.meshgrid(grid["lr"], grid["noise"], indexing="ij")
    rate = (2 * eta - eta**2)[..., None]
    e0, e_inf = 0.3 - 2 * 0.2 + 1.0, (eta**2 * sigma)[..., None] / rate
    exact = 0.5 * (e_inf + (e0 - e_inf) * np.exp(-rate * TIMES))
    converging = grid["lr"] < 2
    # The solver's tolerance is relative to each entry's initial size (eg = 0.45 at t = 0): where a
    # noiseless curve has decayed to 1e-4 its error is a few 1e-9 absolute.
    np.testing.assert_allclose(grid["eg"].sel(lr=grid["lr"][converging]), exact[converging], rtol=1e-7, atol=1e-8)
    assert grid["converged"].sel(lr=grid["lr"][converging]).all()
    assert (grid["status"].sel(lr=grid["lr"][converging]) == hd.ODEStatus.COMPLETED).all()


def test_a_blow_up_is_reported_at_its_grid_point(grid):
    diverged = grid.sel(lr=2.5)
    assert not diverged["converged"].any()
    assert (diverged["status"] == hd.ODEStatus.DIVERGED).all()
    assert ((0 < diverged["t_stop"]) & (diverged["t_stop"] < 20)).all()
    # Past the blow-up the curve does not exist: +inf, never a finite number.
    assert np.isinf(diverged["eg"].isel(t=-1)).all()


def test_the_dataset_is_labelled_and_saves(grid, tmp_path):
    assert grid.attrs["theory"] == "Committee" and "diverged" in grid.attrs["status_codes"]
    path = tmp_path / "curves.nc"
    grid.to_netcdf(path)
    import xarray as xr

    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["eg"], grid["eg"])


def test_bad_requests_are_parameter_errors():
    theory = hd.Committee(K=1, M=1)
    with pytest.raises(hd.ParameterError, match="t1"):
        hd.sweep(theory, {"lr": [0.1, 0.2]})
    with pytest.raises(hd.ParameterError, match="saveat"):
        hd.sweep(theory, {"lr": [0.1, 0.2]}, t1=1.0, saveat=[0.5, 2.0])
    with pytest.raises(hd.ParameterError, match="fixed-point"):
        hd.sweep(hd.ERM(), {"alpha": [1.0]}, t1=1.0)
