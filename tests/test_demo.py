"""``hdtheory demo``: every promised file, its content, and the page in a real headless browser."""

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

FIGURES = ("phase_diagram", "learning_curve", "double_descent", "committee_plateau")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A page that shows the demo's index in a frame of the same origin and, once everything has loaded
# (the frame and its images included), writes which images decoded and which did not.
CHECK_PAGE = """<!DOCTYPE html>
<html><body><iframe id="page" src="{index}" width="1200" height="900"></iframe>
<script>
window.addEventListener("load", function () {{
  var images = Array.from(document.getElementById("page").contentDocument.images);
  var result = {{loaded: [], broken: []}};
  images.forEach(function (img) {{
    (img.complete && img.naturalWidth > 0 ? result.loaded : result.broken).push(img.getAttribute("src"));
  }});
  var out = document.createElement("pre");
  out.id = "result";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
}});
</script></body></html>
"""


def hdtheory(*args):
    # The installed command, from a neutral folder (the installed package, not the source tree).
    command = Path(sys.executable).parent / "hdtheory"
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=900,
                          cwd=tempfile.gettempdir())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    result = hdtheory("demo", "--quick", "--out", str(root / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert f"[{len(FIGURES)}/{len(FIGURES)}]" in result.stderr  # progress is shown
    return root, json.loads(result.stdout)


def test_demo_writes_every_promised_file(demo):
    root, paths = demo
    out = root / "out"
    promised = {f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf", "nc", "csv")}
    assert promised | {"index.html"} <= set(paths)
    for name in promised | {"index.html"}:
        assert Path(paths[name]) == out / name and (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text()
    for name in FIGURES:  # the page shows every figure and links its data
        for target in (f"{name}.png", f"{name}.nc", f"{name}.csv", f"{name}.pdf"):
            assert f'"{target}"' in page, target
    for link in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert (out / link).is_file(), link


def test_demo_data(demo):
    import xarray as xr

    out = demo[0] / "out"
    phase = xr.open_dataset(out / "phase_diagram.nc")
    assert bool(phase["converged"].all()) and bool(phase["optimal_converged"].all())
    # The tuned lam beats (or ties) every lam of the grid at each alpha: it is the optimum.
    grid_best = phase["test_error"].min("lam")
    assert bool((phase["optimal_test_error"] <= grid_best + 1e-9).all())
    inside = phase["optimal_at_boundary"] == 0
    assert bool(inside.all())  # 10% label flips: the optimal penalty is finite and nonzero

    curve = xr.open_dataset(out / "learning_curve.nc")
    assert bool(curve["converged"].all())
    # The simulation points sit on the theory curve within their finite-size error.
    theory = curve["test_error"].interp(alpha=curve["alpha_sim"])
    gap = abs(theory - curve["simulated_test_error"])
    assert bool((gap < 4 * curve["simulated_test_error_sem"] + 0.02).all())

    descent = xr.open_dataset(out / "double_descent.nc")
    assert bool(descent["converged"].all())
    # The interpolation peak: at the smallest penalty the error is largest at p = n (gamma = 1), and
    # a larger penalty lowers it there.
    smallest = descent["test_error"].isel(lam=0)
    assert abs(float(smallest.idxmax("gamma")) - 1.0) < 0.1
    assert float(descent["test_error"].isel(lam=-1).sel(gamma=1.0, method="nearest")) < float(smallest.max())

    plateau = xr.open_dataset(out / "committee_plateau.nc")
    eg = plateau["eg"]
    assert np.allclose(eg.isel(t=0), eg.isel(t=0, lr=0))  # one initial condition for every lr
    ode = eg.sel(lr=plateau.attrs["simulation_lr"]).interp(t=plateau["t_sim"])
    assert bool((abs(ode - plateau["simulated_eg"]) < 4 * plateau["simulated_eg_sem"] + 0.05 * ode).all())
    assert 0 < plateau.attrs["plateau_height"] < float(eg.isel(t=0, lr=0))


def chromium() -> str | None:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None and not os.environ.get("CI"):
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    assert path is not None, "chromium is missing in CI: .ci/run installs it"
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def images_in_browser(root: Path, index: str) -> dict:
    """Serve ``root`` on localhost and report which images of ``index`` a headless Chromium decoded."""
    (root / "check.html").write_text(CHECK_PAGE.format(index=index))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as profile:
            result = subprocess.run(
                [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1000",
                 "--virtual-time-budget=15000", "--dump-dom",
                 f"http://127.0.0.1:{server.server_address[1]}/check.html"],
                capture_output=True, text=True, timeout=180, cwd=tempfile.gettempdir(),
            )
    finally:
        server.shutdown()
        server.server_close()
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the check page reported nothing:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_every_figure_loads_in_a_headless_browser(demo):
    root = demo[0]
    report = images_in_browser(root, "out/index.html")
    assert report["broken"] == []
    assert sorted(report["loaded"]) == sorted(f"{name}.png" for name in FIGURES)


def test_the_browser_check_sees_a_missing_and_a_corrupt_image(demo, tmp_path):
    root = demo[0]
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(root / "out" / "learning_curve.png", site / "good.png")
    (site / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (site / "index.html").write_text(
        '<img src="good.png"><img src="missing.png"><img src="corrupt.png">'
    )
    report = images_in_browser(tmp_path, "site/index.html")
    assert report == {"loaded": ["good.png"], "broken": ["missing.png", "corrupt.png"]}
