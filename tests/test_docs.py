"""The documentation builds with mkdocs in strict mode (every warning an error), offline."""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir(),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # Every page, the equations marked for MathJax, and the API reference from the docstrings.
    for page in ("getting-started", "cli", "conventions", "api", "models/erm", "models/bayes", "models/dynamics"):
        assert (tmp_path / page / "index.html").is_file(), page
    assert 'class="arithmatex"' in (tmp_path / "models" / "erm" / "index.html").read_text()
    api = (tmp_path / "api" / "index.html").read_text()
    assert 'id="hdtheory.tune"' in api and "Minimise an asymptotic objective" in api
    assert (tmp_path / "figures" / "phase_diagram.png").stat().st_size > 0
