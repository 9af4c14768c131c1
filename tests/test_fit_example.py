"""examples/fit_theory_to_curve.py: hidden parameters recovered through the theory as a layer."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fit_theory_to_curve.py"


def test_hidden_noise_and_teacher_norm_come_back_within_the_finite_size_error():
    spec = importlib.util.spec_from_file_location("fit_theory_to_curve", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(quick=True)
    for name, truth in example.TRUTH.items():
        # Four standard errors of the fit (statistical, from the seeds' spread) bound the distance
        # to the hidden value; the O(1/d) finite-size bias at d = 200 is below one of them.
        assert abs(result["values"][name] - truth) <= 4 * result["errors"][name], (name, result)
    # The theory describes the measured curve: chi^2 per degree of freedom of order one.
    assert result["chi2"] / result["dof"] < 6
