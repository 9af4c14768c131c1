"""Masked self-supervised ridge regression (``hdtheory.models.masked_ssr.MaskedSSR``, Wortsman Zurich et
al. 2026): the SSR matrix's test and training errors and its spectrum (edge, spike outlier, BBP
threshold, overlap), with and without random masks, against the masked ridge run on sampled data;
closed forms (isotropic data and its spiked spectrum, the ridgeless limit, the masked population
objective by matrix algebra); finite differences; bad input and the command line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory._theory import ParameterError
from hdtheory.cli import main
from hdtheory.models.masked_ssr import MaskedSSR
from hdtheory.simulate import simulate


@pytest.mark.parametrize(
    "alpha, lam, corr, spike, mask",
    [(2.0, 0.2, 0.5, 3.0, 0.15), (0.5, 0.05, 0.5, 0.5, 0.0),
     # The first two check random masks and one masked coordinate; the closed forms below, corr = 0.
     pytest.param(1.0, 0.1, 0.8, 8.0, 0.5, marks=pytest.mark.extended),
     pytest.param(3.0, 1.5, 0.0, 2.0, 0.0, marks=pytest.mark.extended)],
)
def test_against_simulation(alpha, lam, corr, spike, mask):
    """Each coordinate's ridge regression on the others, all at once through the SSR matrix, at d = 500
    (n = alpha d; 3 seeds), on spiked circulant data, with one coordinate masked at a time and with
    random masks (the masked objective averaged over masks, fitted with the exact diagonal of the
    sample covariance, which the theory replaces by its limit). Test error (exact over the test
    distribution and the masks) and training error within 4 standard errors plus 2.5% of the theory:
    the 2.5% is the O(1 / d) finite-size bias of the mean (seen: test errors within 0.4%, training
    errors within 1.5%, the farthest at alpha = 0.5, where the ridge interpolates most: 1.7%, 1.2%,
    0.45% at d = 250, 500, 1000); the seeds' spread is about 0.1%. A's top eigenvalues (the outlier
    and the bulk's edge) within 4 standard errors plus 1.5% (seen: 0.9%; the edge sits below by
    O(d^-2/3)), the top eigenvector's squared cosine with the spike within 4 standard errors plus 0.02
    (seen: 0.01). Below the transition (alpha = 0.5: spike 0.5 < critical_spike = 1.34) the theory
    has no outlier and the measured top eigenvector keeps a cosine^2 below 0.25 (seen: 0.07), against
    0.7 to 0.9 above."""
    theory = MaskedSSR(alpha=alpha, lam=lam, corr=corr, spike=spike, mask=mask)
    sol = hd.solve(theory)
    assert bool(sol.converged)
    obs = sol.observables
    measured = simulate(theory, d=500, seeds=3)
    below = spike < float(obs["critical_spike"])
    for key, rel, tol in (("test_error", 0.025, 0), ("train_error", 0.025, 0), ("outlier", 0.015, 0),
                          ("edge", 0.015, 0), ("overlap", 0, 0.02)):
        want = float(obs[key])
        if key == "outlier" and below:
            assert want == float(obs["edge"]) and float(obs["overlap"]) == 0.0
        if key == "overlap" and below:
            assert measured.mean[key] < 0.25
            continue
        assert abs(measured.mean[key] - want) <= 4 * measured.sem[key] + rel * want + tol, (
            key, measured.mean[key], want)


@pytest.mark.parametrize("alpha, lam", [(0.5, 0.3), (2.0, 0.01), (4.0, 2.0)])
def test_isotropic_closed_form(alpha, lam):
    """Isotropic data (corr = 0): no coordinate predicts another, the ridge only fits noise.
    ``kappa`` is the positive root of ``kappa^2 + (1 - 1/alpha - lam_avg) kappa - lam_avg = 0``
    (``lam_avg = lam / alpha``), and ``E_test = 1 / (1 - gamma)``, ``gamma = (1 / alpha) / (1 +
    kappa)^2``, ``E_train = (lam_avg / kappa)^2 E_test``: to 1e-9 (the solver's tolerance; 1e-8 for
    the training error, whose ``1 / kappa^2`` doubles the error of a small ``kappa``)."""
    obs = hd.solve(MaskedSSR(alpha=alpha, lam=lam, corr=0.0)).observables
    la, psi = lam / alpha, 1 / alpha
    b = 1 - psi - la
    kappa = (-b + np.sqrt(b**2 + 4 * la)) / 2
    gamma = psi / (1 + kappa) ** 2
    assert float(obs["kappa"]) == pytest.approx(kappa, rel=1e-9)
    assert float(obs["test_error"]) == pytest.approx(1 / (1 - gamma), rel=1e-9)
    assert float(obs["train_error"]) == pytest.approx((la / kappa) ** 2 / (1 - gamma), rel=1e-8)
    assert float(obs["population_error"]) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("alpha, spike", [(2.0, 2.0), (0.5, 3.0), (4.0, 0.3)])
def test_isotropic_spectrum_closed_form(alpha, spike):
    """Isotropic data with a spike (Baik, Ben Arous & Peche 2005; Baik & Silverstein 2006; Paul 2007):
    the sample covariance's bulk ends at ``(1 + sqrt(psi))^2`` (``psi = 1 / alpha``), the transition is
    at ``spike = sqrt(psi)``, the outlier at ``(1 + spike)(1 + psi / spike)`` with squared cosine
    ``(1 - psi / spike^2) / (1 + psi / spike)``; A's eigenvalues are ``1 - (1 / R_kk) / (mu + lam_avg)``
    with ``R_kk = kappa / (lam_avg (1 + kappa))`` on isotropic data. To 1e-9."""
    lam = 0.3
    obs = hd.solve(MaskedSSR(alpha=alpha, lam=lam, corr=0.0, spike=spike)).observables
    psi, la, kappa = 1 / alpha, lam / alpha, float(obs["kappa"])
    scale = la * (1 + kappa) / kappa

    def a(mu):
        return 1 - scale / (mu + la)

    assert float(obs["critical_spike"]) == pytest.approx(np.sqrt(psi), rel=1e-9)
    assert float(obs["edge"]) == pytest.approx(a((1 + np.sqrt(psi)) ** 2), rel=1e-9)
    if spike > np.sqrt(psi):
        assert float(obs["outlier"]) == pytest.approx(a((1 + spike) * (1 + psi / spike)), rel=1e-9)
        assert float(obs["overlap"]) == pytest.approx((1 - psi / spike**2) / (1 + psi / spike), rel=1e-9)
    else:
        assert float(obs["outlier"]) == float(obs["edge"]) and float(obs["overlap"]) == 0.0


@pytest.mark.parametrize("corr", [0.3, 0.8, 0.99])
def test_ridgeless_least_squares(corr):
    """``lam -> 0`` with ``alpha > 1``: least squares of ``x_k`` on the ``d - 1`` others, whose
    expected test error over a Gaussian design is ``sigma^2 (1 + p / (n - p - 1))`` (``sigma^2 =
    Var(x_k | x_-k)``), in the limit ``alpha / (alpha - 1)`` times the AR(1) process's conditional
    variance ``(1 - c^2) / (1 + c^2)`` (its precision matrix is tridiagonal with interior diagonal
    ``(1 + c^2) / (1 - c^2)``). At lam = 1e-9 the penalty moves the error by O(lam): 1e-7 relative.
    corr = 0.99 checks the quadrature where the spectrum peaks over a width 0.01."""
    obs = hd.solve(MaskedSSR(alpha=3.0, lam=1e-9, corr=corr)).observables
    conditional = (1 - corr**2) / (1 + corr**2)
    assert float(obs["conditional_variance"]) == pytest.approx(conditional, rel=1e-12)
    assert float(obs["test_error"]) == pytest.approx(1.5 * conditional, rel=1e-7)


@pytest.mark.parametrize("mask", [0.0, 0.3])
def test_population_limit(mask):
    """``alpha -> infinity``: the masked objective on the population, whose normal matrix is
    ``M = q^2 Sigma + q (1 - q) diag(Sigma) + lam_avg`` (``q = 1 - mask``), ``A = (I - diag(R)^-1 R) / q``
    with ``R = M^-1``, and error ``(Tr[B Sigma B^T] + q (1 - q) sum_kj A_kj^2 Sigma_jj) / d``,
    ``B = I - q A``: computed here by matrix algebra on the circulant covariance at d = 256 (whose
    diagonals are exact averages over its spectrum; no deterministic equivalent enters). At alpha = 1e6
    the theory's test error is within 2e-5 of it (the 1 / alpha correction) and ``population_error``
    within 1e-10. At mask = 0 it is the population ridge, ``(R Sigma R)_kk / R_kk^2``."""
    corr, lam_avg, d, q = 0.6, 0.25, 256, 1 - mask
    obs = hd.solve(MaskedSSR(alpha=1e6, lam=lam_avg * 1e6, corr=corr, mask=mask)).observables
    s = (1 - corr**2) / (1 - 2 * corr * np.cos(2 * np.pi * np.arange(d) / d) + corr**2)
    column = np.real(np.fft.ifft(s))
    Sigma = column[(np.arange(d)[:, None] - np.arange(d)[None, :]) % d]
    R = np.linalg.inv(q**2 * Sigma + q * (1 - q) * np.diag(np.diag(Sigma)) + lam_avg * np.eye(d))
    B = R / np.diag(R)[:, None]
    A = (np.eye(d) - B) / q
    expected = (np.trace(B @ Sigma @ B.T) + q * (1 - q) * np.sum(A**2 @ np.diag(Sigma))) / d
    assert float(obs["population_error"]) == pytest.approx(expected, rel=1e-10)
    assert float(obs["test_error"]) == pytest.approx(expected, rel=2e-5)


def test_gradients_match_finite_differences():
    """d(test_error, outlier, overlap) / d(alpha, lam, corr, spike, mask) against central differences of
    the values (one program: the Jacobian by jax.jacfwd beside the values)."""

    def observed(x):
        obs = hd.solve(MaskedSSR(alpha=x[0], lam=x[1], corr=x[2], spike=x[3], mask=x[4])).observables
        return jnp.stack([obs["test_error"], obs["outlier"], obs["overlap"]])

    values_and_jacobian = jax.jit(lambda x: (observed(x), jax.jacfwd(observed)(x)))
    x = jnp.array([1.5, 0.2, 0.5, 2.0, 0.2])
    _, jacobian = values_and_jacobian(x)
    for i in range(5):
        h = 1e-5
        dx = jnp.zeros(5).at[i].set(h)
        fd = (values_and_jacobian(x + dx)[0] - values_and_jacobian(x - dx)[0]) / (2 * h)
        np.testing.assert_allclose(jacobian[:, i], fd, rtol=1e-6, atol=1e-9, err_msg=str(i))
    # More samples help; stronger correlations make the coordinates more predictable; a stronger
    # spike moves the outlier out and aligns the eigenvector.
    assert float(jacobian[0, 0]) < 0 and float(jacobian[0, 2]) < 0
    assert float(jacobian[1, 3]) > 0 and float(jacobian[2, 3]) > 0


def test_bad_input():
    for name, value in (("alpha", 0.0), ("lam", 0.0), ("corr", 1.0), ("corr", -0.1), ("spike", -1.0),
                        ("mask", 1.0), ("mask", -0.1)):
        with pytest.raises(ParameterError, match=name):
            MaskedSSR(**{name: value})
    with pytest.raises(ParameterError, match="panels"):
        MaskedSSR(panels=2)


def test_command_line(capsys):
    """``hdtheory eval masked-ssr ...`` gives the library's numbers; a bad value is a one-line error."""
    main(["eval", "masked-ssr", "alpha=2", "lam=0.2", "corr=0.5", "--json"])
    got = json.loads(capsys.readouterr().out)
    want = hd.solve(MaskedSSR(alpha=2.0, lam=0.2, corr=0.5)).observables
    assert got["converged"]
    assert got["test_error"] == pytest.approx(float(want["test_error"]), rel=1e-10)
    assert main(["eval", "masked-ssr", "corr=1.5"]) != 0
    err = capsys.readouterr().err
    assert "'corr' must lie in [0, 1)" in err and len(err.strip().splitlines()) == 1
