"""ERM at the edges of its domain: large sample ratios, vanishing penalties, float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from test_erm import ridge_closed_form


def ridge_classification_closed_form(alpha, lam, rho):
    """Square loss on the labels of a noiseless sign teacher, from the Marchenko-Pastur closed form.

    The square loss's fixed point sees the labels only through ``E[y z] = sqrt(2 rho / pi)`` and
    ``E[y^2] = 1``: it is ridge on a linear teacher ``y = mu z + e`` with ``mu = sqrt(2 / (pi rho))``,
    teacher variance ``rho' = mu^2 rho = 2 / pi`` and noise ``1 - 2 / pi`` (uncorrelated with ``z``).
    With that teacher's ``m'`` and excess error ``E``, ``q = E - rho' + 2 m'`` and the 0-1 error is
    ``arccos(m' / sqrt(rho' q)) / pi``.
    """
    teacher = 2 / np.pi
    ref = ridge_closed_form(alpha, lam, teacher, 1 - teacher)
    q = ref["test_error"] - teacher + 2 * ref["m"]
    return np.arccos(ref["m"] / np.sqrt(teacher * q)) / np.pi


ALPHAS = jnp.array([50.0, 1e3, 1e4])


def _errors(loss, lams, **kw):
    return jax.jit(jax.vmap(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l, loss=loss, **kw))))(ALPHAS, lams)


def test_ridge_classification_at_large_alpha_matches_its_closed_form():
    """Against the closed form above, exact at any alpha (derived here, independent of the model).

    Aubin et al. 2020 (NeurIPS, "Generalization error in high-dimensional perceptrons") report that
    ridge classification decays as ``~0.24 / sqrt(alpha)`` at large alpha; their exact constant
    was not retrieved for this test, so only its order is checked, at ``lam = 0.24 / sqrt(alpha)``.
    """
    lams = 0.24 / jnp.sqrt(ALPHAS)
    sol = _errors("square", lams)
    assert bool(jnp.all(sol.converged))
    ref = ridge_classification_closed_form(np.asarray(ALPHAS), np.asarray(lams), 1.0)
    np.testing.assert_allclose(sol.observables["test_error"], ref, rtol=1e-7)
    assert 0.2 < float(ref[-1] * np.sqrt(1e4)) < 0.3


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_sign_teacher_at_large_alpha_agrees_with_four_times_the_panel_order(loss):
    """The teacher's step narrows to ``sqrt(rho - m^2 / q)`` as the student aligns: the default
    panels against ``panel_order=160`` (converged to 1e-12 on the conjugates) up to alpha = 1e4.
    ``lam = 1e-3`` at alpha = 1000 is the logistic setting whose error is 1.100e-3."""
    lams = jnp.array([1e-3, 1e-3, 5e-5])
    ours = _errors(loss, lams)
    fine = jax.jit(jax.vmap(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l, loss=loss, panel_order=160))))(ALPHAS, lams)
    assert bool(jnp.all(ours.converged)) and bool(jnp.all(fine.converged))
    np.testing.assert_allclose(ours.observables["test_error"], fine.observables["test_error"], rtol=1e-6)
    if loss == "logistic":
        assert float(ours.observables["test_error"][1]) == pytest.approx(1.100e-3, rel=1e-3)


def test_quadrature_orders_are_declared_parameters_the_command_line_sets(capsys):
    from hdtheory._theory import parameters

    fields = parameters(hd.ERM)
    assert fields["panel_order"].metadata["integer"] and fields["order"].metadata["integer"]
    assert hd.ERM(panel_order=80).panel_order == 80
    with pytest.raises(hd.ParameterError, match="panel_order"):
        hd.ERM(panel_order=2)
    from hdtheory.cli import main

    try:
        status = main(["eval", "erm", "panel_order=2"])
    except SystemExit as exit:
        status = exit.code
    assert status == 2
    assert "panel_order" in capsys.readouterr().err


def test_large_variances_and_norms_are_not_called_divergent():
    """``V ~ 1 / lam`` (alpha < 1), perfect recovery (noiseless ridge, alpha = 100), the
    interpolation peak (alpha = 1 at lam = 1e-9, where Newton from a generic start ran off to a
    spurious solution at infinity; alpha = 0.8 with noise) and a teacher of variance 1e4 are well
    posed: against the Marchenko-Pastur closed forms."""
    alphas = jnp.array([0.5, 100.0, 0.5, 1.0, 100.0, 1.0, 0.8])
    lams = jnp.array([1e-9, 1e-9, 1e-6, 1e-6, 1e-6, 1e-9, 1e-4])
    noises = jnp.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1])
    sol = jax.jit(jax.vmap(lambda a, l, n: hd.solve(
        hd.ERM(alpha=a, lam=l, loss="square", teacher="linear", noise=n))))(alphas, lams, noises)
    assert np.asarray(sol.converged).all()
    for i, (a, l, n) in enumerate(zip(alphas.tolist(), lams.tolist(), noises.tolist())):
        ref = ridge_closed_form(a, l, 1.0, n)
        for key in ("test_error", "m", "V"):
            np.testing.assert_allclose(float(sol.observables[key][i]), ref[key], rtol=1e-7, atol=1e-12)
    alphas = jnp.array([0.5, 2.0, 10.0])
    sol = jax.jit(jax.vmap(lambda a: hd.solve(hd.ERM(alpha=a, lam=0.1, rho=1e4, loss="square"))))(alphas)
    assert bool(jnp.all(sol.converged))
    # The 0-1 error of ridge classification does not depend on the teacher's scale.
    ref = ridge_classification_closed_form(np.asarray(alphas), 0.1, 1e4)
    np.testing.assert_allclose(sol.observables["test_error"], ref, rtol=1e-7)


def test_unregularised_logistic_on_separable_data_is_still_divergent():
    sol = hd.solve(hd.ERM(alpha=1.0, lam=0.0, loss="logistic", noise=0.05))
    assert int(sol.status) == hd.Status.DIVERGED


def test_float32_calls_converged_only_within_its_tolerance_of_float64():
    """Near the interpolation peak ``I - T'`` is nearly singular: a float32 residual below 1e-5 left
    the test error 2% off at alpha = 1 (square loss, lam = 1e-6). Every point float32 calls
    converged is within 1e-5 of float64 in the solver's coordinates."""
    alphas = np.array([0.5, 0.9, 1.0, 1.05, 1.5])

    def solve(dtype):
        return jax.jit(jax.vmap(lambda a: hd.solve(hd.ERM(
            alpha=a, lam=jnp.asarray(1e-6, dtype), noise=jnp.asarray(0.1, dtype), loss="square",
            teacher="linear"))))(jnp.asarray(alphas, dtype))

    s32, s64 = solve(jnp.float32), solve(jnp.float64)
    assert bool(jnp.all(s64.converged))
    theory = hd.ERM(loss="square", teacher="linear")
    u32 = np.asarray(jax.vmap(theory.unconstrain)(s32.state), float)
    u64 = np.asarray(jax.vmap(theory.unconstrain)(s64.state))
    error = np.max(np.abs(u32 - u64) / (1 + np.abs(u64)), axis=-1)
    ok = np.asarray(s32.converged)
    assert ok.any() and np.all(error[ok] <= 1e-5), (ok, error)
