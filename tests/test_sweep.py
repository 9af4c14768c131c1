"""Sweeps: the same numbers as point-by-point solves, whatever the chunking or the devices."""

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
import xarray as xr

import hdtheory as hd

AXES = {"alpha": np.linspace(0.3, 4.0, 5), "lam": np.logspace(-2, 0.5, 4)}


@pytest.fixture(scope="module")
def grid():
    return hd.sweep(hd.ERM(loss="hinge"), AXES, progress=False)


def test_product_sweep_equals_point_by_point(grid):
    assert grid["test_error"].dims == ("alpha", "lam")
    assert bool(grid["converged"].all())
    for i, alpha in enumerate(AXES["alpha"]):
        for j, lam in enumerate(AXES["lam"]):
            sol = hd.solve(hd.ERM(loss="hinge", alpha=alpha, lam=lam))
            for key in ("test_error", "train_loss", "q"):
                assert float(grid[key][i, j]) == pytest.approx(float(sol.observables[key]), rel=1e-9)
    assert grid.attrs["loss"] == "hinge" and grid.attrs["rho"] == 1.0
    assert "hdtheory_version" in grid.attrs


def test_chunked_equals_unchunked(grid):
    chunked = hd.sweep(hd.ERM(loss="hinge"), AXES, chunk_size=3, progress=False)
    xr.testing.assert_allclose(chunked, grid, rtol=1e-12)


def test_zipped_axes():
    zipped = hd.sweep(hd.ERM(), {"alpha": [0.5, 2.0], "lam": [0.01, 1.0]}, product=False)
    assert zipped["test_error"].dims == ("point",)
    sol = hd.solve(hd.ERM(alpha=2.0, lam=1.0))
    assert float(zipped["test_error"][1]) == pytest.approx(float(sol.observables["test_error"]))


def test_stragglers_get_a_second_budget_and_failures_are_flagged():
    theory = hd.ERM()
    axes = {"alpha": [0.5, 3.0], "lam": [0.001, 1.0]}
    retried = hd.sweep(theory, axes, budget=(3, 100), progress=False)
    assert bool(retried["converged"].all())
    assert int(retried["iterations"].max()) > 3  # counted over both passes
    reference = hd.sweep(theory, axes, budget=(100, 100), progress=False)
    np.testing.assert_allclose(retried["test_error"], reference["test_error"], rtol=1e-9)
    starved = hd.sweep(theory, axes, budget=(2, 2), progress=False)
    assert not bool(starved["converged"].any())
    assert bool((starved["status"] == hd.Status.MAX_STEPS).all())


def test_netcdf_and_csv_round_trip(grid, tmp_path):
    grid.to_netcdf(tmp_path / "grid.nc")
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "grid.nc").load(), grid)
    grid.to_dataframe().to_csv(tmp_path / "grid.csv")
    import pandas as pd

    back = pd.read_csv(tmp_path / "grid.csv", index_col=["alpha", "lam"]).to_xarray()
    np.testing.assert_allclose(back["test_error"], grid["test_error"], rtol=1e-12)


def test_cross_parameter_checks_see_every_grid_point():
    """Axes of different lengths: the checks that relate two parameters (the ridgeless square loss
    needs alpha > 1) run on the product's points, not on the axes broadcast against each other."""
    axes = {"alpha": [1.5, 3.0, 4.0], "lam": [0.0, 0.5]}
    swept = hd.sweep(hd.ERM(loss="square"), axes, progress=False)
    assert swept["test_error"].shape == (3, 2) and bool(swept["converged"].all())
    sol = hd.solve(hd.ERM(loss="square", alpha=4.0, lam=0.0))
    assert float(swept["test_error"][2, 0]) == pytest.approx(float(sol.observables["test_error"]), rel=1e-9)
    with pytest.raises(hd.ParameterError, match="'lam'"):
        hd.sweep(hd.ERM(loss="square"), {"alpha": [0.5, 3.0, 4.0], "lam": [0.0, 0.5]})


@pytest.mark.parametrize(
    "axes, name",
    [({"gamma": [1.0]}, "gamma"), ({"loss": [1.0]}, "loss"), ({"alpha": [1.0, -1.0]}, "alpha"),
     ({"lam": []}, "lam")],
)
def test_bad_axes_are_rejected_before_compiling(axes, name):
    with pytest.raises(hd.ParameterError, match=name):
        hd.sweep(hd.ERM(), axes)


def test_four_cpu_devices_give_the_same_numbers(grid, tmp_path):
    script = textwrap.dedent(
        """
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import hdtheory as hd
        assert len(jax.devices()) == 4
        axes = {"alpha": np.linspace(0.3, 4.0, 5), "lam": np.logspace(-2, 0.5, 4)}
        hd.sweep(hd.ERM(loss="hinge"), axes, chunk_size=8, progress=False).to_netcdf(%r)
        """
        % str(tmp_path / "sharded.nc")
    )
    env = os.environ | {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            cwd=tempfile.gettempdir(), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    sharded = xr.open_dataset(tmp_path / "sharded.nc").load()
    xr.testing.assert_allclose(sharded, grid, rtol=1e-12)


def test_pictures_are_written(grid, tmp_path):
    from hdtheory import plot

    for suffix in ("png", "pdf"):
        plot.heatmap(grid, "test_error", "alpha", "lam", path=tmp_path / f"map.{suffix}")
        plot.curves(grid, "test_error", "alpha", path=tmp_path / f"curves.{suffix}")
        assert (tmp_path / f"map.{suffix}").stat().st_size > 1000
        assert (tmp_path / f"curves.{suffix}").stat().st_size > 1000


def test_two_processes_through_jax_distributed(grid, tmp_path):
    script = textwrap.dedent(
        """
        import sys, jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address="localhost:%d", num_processes=2,
                                   process_id=int(sys.argv[1]))
        import hdtheory as hd
        axes = {"alpha": np.linspace(0.3, 4.0, 5), "lam": np.logspace(-2, 0.5, 4)}
        ds = hd.sweep(hd.ERM(loss="hinge"), axes, chunk_size=4, progress=False)
        ds.to_netcdf(%r + sys.argv[1] + ".nc")
        """
        % (_free_port(), str(tmp_path / "process"))
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], cwd=tempfile.gettempdir(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    for i in range(2):
        xr.testing.assert_allclose(xr.open_dataset(tmp_path / f"process{i}.nc").load(), grid, rtol=1e-12)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_default_chunk_follows_device_memory(monkeypatch):
    import jax

    from hdtheory import _sweep

    solver = _sweep._Solver(hd.ERM(), ("alpha",), "uninformed", ())
    values = np.ones((4, 1))
    devices = jax.local_devices()
    assert _sweep._default_chunk(solver, values, devices) == _sweep._CPU_CHUNK * len(devices)
    monkeypatch.setattr(_sweep, "_free_memory", lambda device: 2**30)
    binary = _sweep._default_chunk(solver, values, devices)
    finer = _sweep._Solver(hd.ERM(panel_order=160), ("alpha",), "uninformed", ())
    # Four times the panel nodes (2 labels x 1440 against 2 x 360): several times the memory per
    # point. Ridge's channel integrals are in closed form: a far smaller program.
    assert 0 < _sweep._default_chunk(finer, values, devices) < binary / 2.5
    ridge = _sweep._Solver(hd.ERM(loss="square", teacher="linear"), ("alpha",), "uninformed", ())
    assert _sweep._default_chunk(ridge, values, devices) > 10 * binary
    # The probe is a compilation: it runs once per program, not once per sweep.
    probes = len(_sweep._BYTES_PER_POINT)
    other = _sweep._Solver(hd.ERM(lam=0.3, alpha=2.0), ("alpha",), "uninformed", ())
    assert _sweep._default_chunk(other, values, devices) == binary
    assert len(_sweep._BYTES_PER_POINT) == probes
