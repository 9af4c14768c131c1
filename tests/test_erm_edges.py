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

    Its large-alpha limit: the least-squares student is ``mu w* + e`` with ``mu = sqrt(2 / pi)``
    and an error ``e`` of variance ``(1 - 2 / pi) / alpha`` per entry, so the angle to the teacher
    is ``sqrt((pi / 2 - 1) / alpha)`` and the error ``sqrt(pi / 2 - 1) / (pi sqrt(alpha))``
    ``= 0.2405 / sqrt(alpha)``, the rate Aubin et al. 2020 (NeurIPS, "Generalization error in
    high-dimensional perceptrons", Fig. 2) show for ridge classification.
    """
    lams = 0.24 / jnp.sqrt(ALPHAS)
    sol = _errors("square", lams)
    assert bool(jnp.all(sol.converged))
    ref = ridge_classification_closed_form(np.asarray(ALPHAS), np.asarray(lams), 1.0)
    np.testing.assert_allclose(sol.observables["test_error"], ref, rtol=1e-7)
    limit = np.sqrt(np.pi / 2 - 1) / np.pi
    assert float(sol.observables["test_error"][-1]) * np.sqrt(1e4) == pytest.approx(limit, rel=2e-2)


# Large-alpha constants of the noiseless sign teacher (alpha times the 0-1 error), from the
# statistical physics of the perceptron:
BAYES_RATE = 0.442  # Opper & Haussler 1991 (PRL 66, 2677), the Bayes-optimal error 0.442 / alpha
MAX_MARGIN_RATE = 0.500  # Opper, Kinzel, Kleinz & Nehl 1990 (J. Phys. A 23, L581), 0.500 / alpha


def test_bayes_optimal_error_decays_as_its_published_rate():
    alphas = jnp.array([1e3, 1e4])
    sol = jax.jit(jax.vmap(lambda a: hd.solve(hd.BayesGLM(alpha=a, channel="sign"))))(alphas)
    assert bool(jnp.all(sol.converged))
    np.testing.assert_allclose(sol.observables["gen_error"] * alphas, BAYES_RATE, rtol=1e-3)


@pytest.fixture(scope="module")
def sign_teacher_lam_scan():
    """The test error of hinge and logistic at alpha = 1e3 and 1e4 over lam = c / alpha^2 (the
    scaling of the optimal lam), and hinge at lam = 1e-12 (max-margin): one program per loss."""
    alphas = jnp.array([1e3, 1e4])
    c = jnp.logspace(-1.5, 1.5, 13)
    lam = jnp.concatenate([c[None, :] / alphas[:, None] ** 2, jnp.full((2, 1), 1e-12)], axis=1)
    alpha = jnp.broadcast_to(alphas[:, None], lam.shape)
    out = {}
    for loss in ("hinge", "logistic"):
        run = jax.jit(jax.vmap(jax.vmap(lambda a, l: hd.solve(hd.ERM(alpha=a, lam=l, loss=loss)))))
        out[loss] = run(alpha, lam)
    return alpha, out


def test_max_margin_at_large_alpha_converges_to_its_published_rate(sign_teacher_lam_scan):
    """Hinge at ``lam -> 0`` is the max-margin classifier: at alpha = 1e4 its fixed point lies far
    along a slowly converging valley (``q ~ 1e8``) that plain backtracking crawled along."""
    alpha, out = sign_teacher_lam_scan
    sol = out["hinge"]
    assert bool(jnp.all(sol.converged)), sol.status
    assert int(jnp.max(sol.iterations)) <= 60
    rate = np.asarray(sol.observables["test_error"] * alpha)[:, -1]
    np.testing.assert_allclose(rate, MAX_MARGIN_RATE, rtol=2e-3)


def test_hinge_and_logistic_at_their_optimal_lam_lie_between_bayes_and_max_margin(sign_teacher_lam_scan):
    """Aubin et al. 2020 (NeurIPS, Fig. 3): at their optimal lam, logistic and hinge reach the
    Bayes-optimal rate ``1 / alpha`` as alpha grows, logistic within a fraction of a percent of the
    Bayes-optimal error, hinge between it and max-margin. The optimal lam scales as ``alpha^-2``:
    the minimum over ``c / alpha^2`` is interior and its rate is the same at alpha = 1e3 and 1e4."""
    alpha, out = sign_teacher_lam_scan
    best = {}
    for loss, sol in out.items():
        assert bool(jnp.all(sol.converged)), (loss, sol.status)
        rate = np.asarray(sol.observables["test_error"] * alpha)[:, :-1]
        assert np.all((np.argmin(rate, axis=1) > 0) & (np.argmin(rate, axis=1) < rate.shape[1] - 1)), loss
        best[loss] = rate.min(axis=1)
        np.testing.assert_allclose(best[loss][0], best[loss][1], rtol=1e-3, err_msg=loss)
    assert np.all(BAYES_RATE * (1 - 1e-3) < best["logistic"])
    assert np.all(best["logistic"] < BAYES_RATE * 1.005)
    assert np.all(best["logistic"] < best["hinge"]) and np.all(best["hinge"] < MAX_MARGIN_RATE)


# The default run checks the hinge loss at alpha = 1e4 against the published max-margin rate.
@pytest.mark.parametrize("loss", ["logistic", pytest.param("hinge", marks=pytest.mark.extended)])
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
    rf = parameters(hd.RandomFeatures)
    assert all(rf[name].metadata["integer"] for name in ("order", "panel_order", "nodes"))
    with pytest.raises(hd.ParameterError, match="panel_order"):
        hd.RandomFeatures(panel_order=2)
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
    converged is within twice its tolerance 1e-5 of float64 in the solver's coordinates: the Newton
    estimate of the error is itself computed in float32 (at alpha = 1, cond(I - T') ~ 800, the
    closed-form map's rounding leaves 1.1e-5), as in test_bayes_edges's float32 test."""
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
    assert ok.any() and np.all(error[ok] <= 2e-5), (ok, error)
