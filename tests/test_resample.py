"""The bootstrap and subsampling of regularised ERM (Clarté et al. 2024, "Analysis of bootstrap and
subsampling in high-dimensional regularized regression"; Loureiro et al. 2022, "Fluctuations, bias,
variance & ensemble of learners"): the plain estimator, ridge in closed form, the cross kernel
against closed forms and ERM, simulations, a gradient, input and the command line."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

import hdtheory
from hdtheory import ERM, ParameterError, Resample, cli
from hdtheory.kernels import Logistic, Sign, Linear, Square
from hdtheory.kernels.resampling import WeightLaw, cross_conjugate
from hdtheory.simulate import simulate


def _ridge_numpy(alpha, lam, rho, noise, pmf):
    """Ridge (square loss, linear teacher) with weights of law ``pmf`` (values 0, 1, ...), its fixed
    point written out and solved in NumPy: ``Vhat = mhat = alpha E c``, ``c = p / (1 + p V)``,
    ``V = 1 / (lam + Vhat)``, ``m = rho mhat V``, and ``q``, ``q_ab`` from their linear equations with
    ``qhat = alpha E c^2 e(q)``, ``qhat_ab = alpha (E c)^2 e(q_ab)``, ``e(x) = rho + noise - 2 m + x``."""
    p = np.arange(len(pmf), dtype=float)

    def c(V):
        return np.sum(pmf * p / (1 + p * V)), np.sum(pmf * (p / (1 + p * V)) ** 2)

    V = optimize.brentq(lambda V: V * (lam + alpha * c(V)[0]) - 1, 1e-12, 1 / lam)
    c1, c2 = c(V)
    mhat = alpha * c1
    m = rho * mhat * V
    e0 = rho + noise - 2 * m
    q = (rho * mhat**2 + alpha * c2 * e0) * V**2 / (1 - alpha * c2 * V**2)
    q_ab = (rho * mhat**2 + alpha * c1**2 * e0) * V**2 / (1 - alpha * c1**2 * V**2)
    return dict(m=m, q=q, V=V, q_ab=q_ab)


@jax.jit
def _ridge_bootstrap(alpha, lam):
    """Ridge under the bootstrap at ``(alpha, lam)``, noise 0.5: one compiled program for the tests below."""
    sol = hdtheory.solve(Resample(alpha=alpha, lam=lam, noise=0.5, scheme="bootstrap", M=3.0))
    return sol.observables, sol.converged


@pytest.mark.parametrize("alpha, lam", [(0.5, 0.05), (2.0, 0.1), (5.0, 1.0)])
def test_ridge_bootstrap_against_closed_form(alpha, lam):
    # Poisson(1) untruncated (to 60 values) here; the theory truncates it to 20.
    pmf = stats.poisson.pmf(np.arange(60), 1.0)
    ref = _ridge_numpy(alpha, lam, 1.0, 0.5, pmf)
    full = _ridge_numpy(alpha, lam, 1.0, 0.5, np.array([0.0, 1.0]))
    out, converged = _ridge_bootstrap(alpha, lam)
    assert converged
    for key in ("m", "q", "V", "q_ab"):
        np.testing.assert_allclose(float(out[key]), ref[key], rtol=1e-8, err_msg=key)
    np.testing.assert_allclose(float(out["true_variance"]), full["q"] - full["m"] ** 2, rtol=1e-8)
    np.testing.assert_allclose(float(out["resample_variance"]), ref["q"] - ref["q_ab"], rtol=1e-8)
    ensemble_q = ref["q"] / 3 + 2 / 3 * ref["q_ab"]
    np.testing.assert_allclose(float(out["ensemble_error"]), 1 - 2 * ref["m"] + ensemble_q, rtol=1e-8)
    np.testing.assert_allclose(float(out["ensemble_error_inf"]), 1 - 2 * ref["m"] + ref["q_ab"], rtol=1e-8)


def test_bootstrap_is_consistent_only_at_large_alpha():
    # Classical consistency of the pairs bootstrap at fixed d (Bickel & Freedman 1983): the ratio
    # tends to one as alpha = n / d grows. Near the interpolation threshold of nearly unregularised
    # least squares it overestimates the variance several times (El Karoui & Purdom 2018, "Can we
    # trust the bootstrap in high dimensions?"), and below it (alpha < 1) it underestimates it
    # (Clarté et al. 2024: not consistent in the over-parametrised regime).
    ratios = [float(_ridge_bootstrap(a, 1e-3)[0]["variance_ratio"]) for a in (0.5, 1.5, 400.0)]
    assert ratios[0] < 0.5
    assert ratios[1] > 3
    assert abs(ratios[2] - 1) < 0.01


def test_gradient_of_resample_variance_in_lam():
    def variance(lam):
        return _ridge_bootstrap(2.0, lam)[0]["resample_variance"]

    grad = float(jax.jit(jax.grad(variance))(0.3))
    h = 1e-5
    fd = (float(variance(0.3 + h)) - float(variance(0.3 - h))) / (2 * h)
    assert abs(grad - fd) < 1e-6 * (1 + abs(fd)), (grad, fd)


def test_the_plain_estimator_is_erm():
    kw = dict(alpha=1.5, lam=0.05, noise=0.1, loss="logistic", teacher="sign")
    ref = hdtheory.solve(ERM(**kw)).observables
    sol = hdtheory.solve(Resample(scheme="full", **kw))
    assert sol.converged
    out = sol.observables
    for key in ("m", "q", "V", "test_error"):
        np.testing.assert_allclose(float(out[key]), float(ref[key]), rtol=1e-8, err_msg=key)
        np.testing.assert_allclose(float(out["full_" + key]), float(ref[key]), rtol=1e-8)
    assert abs(float(out["resample_variance"])) < 1e-12 * float(ref["q"])
    # Ridge with every sample in the subsample: the learner is the full estimator (against the
    # closed form), and the cross overlap, found by iteration, is q.
    sol = hdtheory.solve(Resample(scheme="subsample", fraction=1.0, alpha=1.5, lam=0.05, noise=0.5))
    ref = _ridge_numpy(1.5, 0.05, 1.0, 0.5, np.array([0.0, 1.0]))
    assert sol.converged
    for key in ("m", "q", "V"):
        np.testing.assert_allclose(float(sol.observables[key]), ref[key], rtol=1e-8, err_msg=key)
    assert abs(float(sol.observables["resample_variance"])) < 1e-8 * ref["q"]
    # Subsamples of a fraction f vary by (1 - f) / f times the variance at n samples when that is
    # of order 1 / n (the sample mean's finite-population factor): at alpha = 400 the rescaled
    # ratio is one to O(1 / alpha), the plain one (1 - f) / f = 1/4.
    out = hdtheory.solve(Resample(scheme="subsample", fraction=0.8, alpha=400.0, lam=0.05, noise=0.5)).observables
    assert abs(float(out["rescaled_ratio"]) - 1) < 0.01
    assert abs(float(out["variance_ratio"]) - 0.25) < 0.01


def test_cross_kernel_against_closed_forms_and_erm():
    """The generic two-learner kernel (Hermite for the linear teacher, panels for the sign teacher)
    against the square loss in closed form, and against ERM's qhat for two identical learners."""
    rho, m, q, V, q_ab = 1.2, 0.6, 0.9, 0.7, 0.5
    law = WeightLaw.poisson()
    c = float(np.sum(stats.poisson.pmf(np.arange(60), 1.0) * np.arange(60) / (1 + np.arange(60) * V)))
    learner = (m, q, V, law)

    @jax.jit
    def kernels():
        linear = cross_conjugate(Linear(0.3), Square(), rho, learner, learner, q_ab)
        sign = cross_conjugate(Sign(0.1), Square(), rho, learner, learner, q_ab)
        same = cross_conjugate(Sign(0.1), Logistic(), rho, (m, q, V, WeightLaw.constant()),
                               (m, q, V, WeightLaw.constant()), q)
        return linear, sign, same

    linear, sign, same = kernels()
    np.testing.assert_allclose(float(linear), c**2 * (rho + 0.3 - 2 * m + q_ab), rtol=1e-10)
    zy = (1 - 2 * 0.1) * math.sqrt(2 * rho / math.pi)  # E[z y] for the sign teacher with flips
    np.testing.assert_allclose(float(sign), c**2 * (1 - 2 * m / rho * zy + q_ab), rtol=1e-10)
    erm = ERM(alpha=1.0, rho=rho, noise=0.1, loss="logistic", teacher="sign")
    qhat = erm.conjugates(hdtheory.models.Overlaps(m=jnp.asarray(m), q=jnp.asarray(q), V=jnp.asarray(V)))[1]
    np.testing.assert_allclose(float(same), float(qhat), rtol=1e-7)


def test_cross_kernel_gradient():
    """The logistic two-learner integral under the bootstrap, differentiated in the overlaps, the
    variance and the cross overlap, against central differences."""
    law = WeightLaw.poisson()

    def kernel(x):
        m, q, V, q_ab = x
        return cross_conjugate(Sign(0.1), Logistic(), 1.0, (m, q, V, law), (m, q, V, law), q_ab, 16, 16)

    x = jnp.asarray([0.8, 1.1, 1.3, 0.9])
    value_and_grad = jax.jit(jax.value_and_grad(kernel))
    grad = np.asarray(value_and_grad(x)[1])
    h = 1e-5
    for i in range(4):
        e = h * np.eye(4)[i]
        fd = (float(value_and_grad(x + e)[0]) - float(value_and_grad(x - e)[0])) / (2 * h)
        assert abs(grad[i] - fd) < 1e-7 * (1 + abs(fd)), (i, grad[i], fd)


SIMULATED = ("m", "q", "full_m", "full_q", "q_ab", "true_variance", "resample_variance", "ensemble_error")


@pytest.mark.parametrize(
    "kwargs, d, seeds",
    [
        (dict(scheme="bootstrap", loss="logistic", teacher="sign", alpha=2.0, lam=0.1, noise=0.05), 300, 3),
        (dict(scheme="subsample", fraction=0.7, loss="square", teacher="linear", alpha=1.5, lam=0.05, noise=0.5), 400, 4),
    ],
)
def test_against_simulation(kwargs, d, seeds):
    # Three resampled learners per data set, the ensemble of the three (M = 3). Tolerance: four
    # standard errors over the seeds, plus 2% for the O(1 / d) finite-size bias.
    theory = Resample(M=3.0, cross_order=16, panel_order=24, **kwargs)
    sol = hdtheory.solve(theory)
    assert sol.converged
    sim = simulate(theory, d=d, seeds=seeds, learners=3)
    for key in SIMULATED:
        value = float(sol.observables[key])
        assert abs(sim.mean[key] - value) < 4 * sim.sem[key] + 0.02 * abs(value), (key, value, sim.mean[key], sim.sem[key])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(scheme="subsample", fraction=0.0), "fraction"),
        (dict(scheme="subsample", fraction=1.5), "fraction"),
        (dict(M=0.5), "M"),
        (dict(lam=0.0), "lam"),
        (dict(loss="hinge"), "loss"),
        (dict(scheme="jackknife"), "scheme"),
        (dict(loss="logistic", teacher="linear"), "loss"),
    ],
)
def test_bad_input_raises_parameter_error(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Resample(**kwargs)


def test_command_line(capsys):
    args = ["eval", "resample", "scheme=bootstrap", "loss=square", "teacher=linear", "alpha=2", "lam=0.1", "M=inf"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and out["variance_ratio"] > 1
    assert out["ensemble_error"] == pytest.approx(out["ensemble_error_inf"], rel=1e-12)
    assert cli.main([*args[:-1], "scheme=subsample", "fraction=2"]) == 2
    err = capsys.readouterr().err
    assert "fraction" in err and len(err.strip().splitlines()) == 1


def test_pairs_bootstrap_with_50_resamples_against_simulation():
    # The pairs bootstrap as practised: 50 resampled ridge fits (Cholesky solves) on each of three
    # data sets at d = 300, n = 300; their variance per coordinate against resample_variance. And the
    # variance the bootstrap means to estimate, measured directly: the spread of the full-data fit
    # over 20 data sets drawn for one teacher, against true_variance. At alpha = 1, lam = 0.1 the
    # bootstrap estimates half the true variance (variance_ratio 0.50), so each check tells the two
    # apart.
    # Tolerances: the bootstrap's, four standard errors over the data sets plus 2% for the O(1 / d)
    # bias (multinomial counts of n draws for Poisson(1) weights); the direct one, 8%: four times
    # the relative error sqrt(2 / (19 d)) = 1.9% of a sample variance over 20 data sets averaged
    # over d nearly independent coordinates.
    theory = Resample(alpha=1.0, lam=0.1, noise=0.5, scheme="bootstrap")
    out = _ridge_bootstrap(1.0, 0.1)[0]
    sim = simulate(theory, d=300, seeds=3, learners=50)
    want = float(out["resample_variance"])
    assert abs(sim.mean["resample_variance"] - want) < 4 * sim.sem["resample_variance"] + 0.02 * want
    d, n, data_sets = 300, 300, 20
    rng = np.random.default_rng(5)
    w_star = rng.standard_normal(d)
    w_star *= math.sqrt(d) / np.linalg.norm(w_star)
    fits = []
    for _ in range(data_sets):
        X = rng.standard_normal((n, d))
        y = X @ w_star / math.sqrt(d) + math.sqrt(0.5) * rng.standard_normal(n)
        fits.append(np.linalg.solve(X.T @ X / d + 0.1 * np.eye(d), X.T @ y / math.sqrt(d)))
    over_data_sets = np.mean(np.var(np.array(fits), axis=0, ddof=1))
    want = float(out["true_variance"])
    assert abs(over_data_sets - want) < 0.08 * want, (over_data_sets, want)
    assert float(out["variance_ratio"]) < 0.6  # the two variances do differ here
