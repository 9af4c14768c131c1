"""Misuse of the Python API: a ParameterError naming the argument and what it allows, before any
compilation (never a KeyError, a TypeError from inside JAX, or a silent acceptance)."""

import numpy as np
import pytest

import hdtheory as hd

RIDGE = hd.ERM(alpha=2.0, lam=1.0, loss="square", teacher="linear", order=16)
COMMITTEE = hd.Committee(K=2, M=2)

CASES = [
    # solve
    (lambda: hd.solve(RIDGE, init="bogus"), "init must be 'uninformed', 'informed'"),
    (lambda: hd.solve(RIDGE, max_steps=0), "max_steps must be an integer >= 1, got 0"),
    (lambda: hd.solve(RIDGE, max_steps=-1), "max_steps must be an integer >= 1, got -1"),
    (lambda: hd.solve(RIDGE, max_steps=2.5), "max_steps must be an integer >= 1"),
    (lambda: hd.solve(RIDGE, tol=-1.0), "tol must be a number > 0"),
    (lambda: hd.solve(RIDGE, tol=float("nan")), "tol must be a number > 0"),
    (lambda: hd.solve(RIDGE, max_norm=0.0), "max_norm must be a number > 0"),
    (lambda: hd.solve(RIDGE, method="newton"), "method must be Newton"),
    (lambda: hd.solve(COMMITTEE), "solve needs a FixedPointTheory"),
    # sweep
    (lambda: hd.sweep(RIDGE, {"unknown": [1.0, 2.0]}), "cannot sweep 'unknown': the numeric parameters are alpha"),
    (lambda: hd.sweep(RIDGE, {"alpha": []}), "axis 'alpha' must be a non-empty"),
    (lambda: hd.sweep(RIDGE, {"loss": [1, 2]}), "cannot sweep 'loss'"),
    (lambda: hd.sweep(RIDGE, {"loss": ["square", "hinge"]}), "cannot sweep 'loss'"),
    (lambda: hd.sweep(RIDGE, {"alpha": ["a", "b"]}), "axis 'alpha' must hold numbers"),
    (lambda: hd.sweep(RIDGE, {"alpha": [1.0, -1.0]}), r"'alpha' must lie in \(0, inf\)"),
    (lambda: hd.sweep(RIDGE, {"alpha": [1.0, np.inf]}), r"'alpha' must lie in \(0, inf\), got inf"),
    (lambda: hd.sweep(RIDGE, {}), "axes must be a non-empty mapping"),
    (lambda: hd.sweep(RIDGE, {"alpha": [1.0]}, budget=(0, 5)), "budget must be two integers >= 1"),
    (lambda: hd.sweep(RIDGE, {"alpha": [1.0]}, chunk_size=0), "chunk_size must be None or an integer >= 1"),
    (lambda: hd.sweep(COMMITTEE, {"lr": [1.0]}), "sweeping an ODE theory needs the final time t1"),
    # tune
    (lambda: hd.tune(RIDGE, "no_such_observable", {"lam": "log"}), "objective must be one of .*test_error"),
    (lambda: hd.tune(COMMITTEE, "no_such_observable", {"lr": "log"}, t1=1.0), "objective must be one of .*eg"),
    (lambda: hd.tune(COMMITTEE, "Q", {"lr": "log"}, t1=1.0), r"scalar observables .*eg.*got 'Q' \(of shape \(2, 2\)\)"),
    (lambda: hd.tune(RIDGE, "test_error", {"unknown": "log"}), "cannot tune 'unknown'"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": "bogus"}), "transform for 'lam' must be one of log"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": hd.Log(low=1.0, high=0.5)}), "low < high"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": hd.Log(low=1.0, high=1.0)}), "low < high"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": "log"}, max_iterations=0), "max_iterations must be an integer >= 1"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": "log"}, gtol=-1.0), "gtol must be a number > 0"),
    (lambda: hd.tune(RIDGE, "test_error", {"lam": "log"}, init="bogus"), "init must be 'uninformed'"),
    # threshold
    (lambda: hd.threshold(hd.Spiked(), "snr", "bogus", (0.5, 1.5)), "'kind' must be one of algorithmic"),
    (lambda: hd.threshold(hd.Spiked(), "nope", "weak-recovery", (0.5, 1.5)), "'axis' must be one of snr"),
    (lambda: hd.threshold(hd.Spiked(), "snr", "weak-recovery", (1.0, 1.0)), "bracket must be two different values"),
    (lambda: hd.threshold(hd.Spiked(), "snr", "weak-recovery", (-1.0, 1.5)), r"bracket must be .* in \(0, inf\)"),
    (lambda: hd.threshold(hd.Spiked(), "snr", "weak-recovery", 1.0), "bracket must be two"),
    (lambda: hd.threshold(hd.Spiked(), "snr", "weak-recovery", (0.5, 1.5), num=1), "num must be an integer >= 2"),
    # integrate
    (lambda: hd.integrate(COMMITTEE, -1.0), "t1 must be a finite time >= 0"),
    (lambda: hd.integrate(COMMITTEE, 2.0, saveat=np.array([1.0, 0.5])), "saveat must be a 1-D increasing array"),
    # simulate
    (lambda: hd.simulate.simulate(RIDGE, d=0), r"parameter 'd' must lie in \[1, inf\), got 0"),
    (lambda: hd.simulate.simulate(RIDGE, d=100, seeds=0), r"parameter 'seeds' must lie in \[1, inf\)"),
    # fields of the wrong type, and values outside the domain (inf and nan included)
    (lambda: hd.ERM(alpha="a"), "parameter 'alpha' must be a real number"),
    (lambda: hd.ERM(alpha=None), "parameter 'alpha' must be a real number"),
    (lambda: hd.ERM(noise="x", teacher="sign"), "parameter 'noise' must be a real number"),
    (lambda: hd.RandomFeatures(gamma="x"), "parameter 'gamma' must be a real number"),
    (lambda: hd.Committee(lr="x"), "parameter 'lr' must be a real number"),
    (lambda: hd.ERM(loss=3), "parameter 'loss' must be one of"),
    # quadrature orders a model checks itself (static, not command-line parameters)
    (lambda: hd.BayesGLM(order=4), r"parameter 'order' must lie in \[8, inf\), got 4"),
    (lambda: hd.BayesGLM(label_order=10.0), r"parameter 'label_order' must be an integer in \[4, inf\), got 10.0"),
    (lambda: hd.BayesGLM(panel_order=True), "parameter 'panel_order' must be an integer"),
    (lambda: hd.MultiIndex(inner_order=-1), r"parameter 'inner_order' must lie in \[0, inf\), got -1"),
    (lambda: hd.MultiIndex(panel_order=True), r"parameter 'panel_order' must be an integer in \[0, inf\), got True"),
]


@pytest.mark.parametrize(("call", "match"), CASES, ids=[f"{i}-{m[:30]}" for i, (_, m) in enumerate(CASES)])
def test_misuse_is_a_parameter_error_naming_the_argument(call, match):
    with pytest.raises(hd.ParameterError, match=match):
        call()


INFINITE = [
    (lambda v: hd.ERM(alpha=v), "alpha", r"\(0, inf\)"),
    (lambda v: hd.ERM(lam=v), "lam", r"\[0, inf\)"),
    (lambda v: hd.BayesGLM(alpha=v), "alpha", r"\(0, inf\)"),
    (lambda v: hd.Spiked(snr=v), "snr", r"\(0, inf\)"),
    (lambda v: hd.KRR(n=v), "n", r"\(0, inf\)"),
    (lambda v: hd.RandomFeatures(gamma=v), "gamma", r"\(0, inf\)"),
    (lambda v: hd.Committee(lr=v), "lr", r"\(0, inf\)"),
]


@pytest.mark.parametrize(("build", "name", "domain"), INFINITE, ids=[c[1] + str(i) for i, c in enumerate(INFINITE)])
def test_inf_and_nan_are_outside_a_domain_printed_open_at_infinity(build, name, domain):
    with pytest.raises(hd.ParameterError, match=f"'{name}' must lie in {domain}, got inf"):
        build(np.inf)
    with pytest.raises(hd.ParameterError, match=f"'{name}' must lie in {domain}, got nan \\(not a number\\)"):
        build(np.nan)
    with pytest.raises(hd.ParameterError, match=f"'{name}' must lie in {domain}, got nan"):
        build(np.array([1.0, np.nan]))


def test_the_kernel_limit_is_in_the_domain_of_features_and_says_so():
    from hdtheory._theory import parameters

    domain = parameters(hd.KRR)["features"].metadata["domain"]
    assert str(domain) == "(0, inf]"
    assert float(hd.KRR(features=np.inf).features) == np.inf
    with pytest.raises(hd.ParameterError, match=r"'features' must lie in \(0, inf\], got nan"):
        hd.KRR(features=np.nan)
    assert str(parameters(hd.ERM)["alpha"].metadata["domain"]) == "(0, inf)"
