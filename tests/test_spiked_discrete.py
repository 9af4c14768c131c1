"""Discrete priors for the ``u`` factor of the spiked Wishart model (``prior_u="discrete"``, atoms
``values_u`` of ``probabilities_u``), the same :class:`hdtheory.kernels.Discrete` as ``prior``'s.

- two atoms +-1 of weight 1/2 against the built-in Rademacher prior, and three atoms (-1, 0, 1)
  against the built-in sparse Rademacher prior: the state evolution map and the free entropy at the
  same states, to the quadrature's precision;
- the sparse Rademacher ``u`` given as atoms: AMP at d = 1000 against state evolution, iteration by
  iteration; the solved fixed point past the closed-form weak-recovery threshold
  ``lam^2 alpha rho_u^2 rho^2 = 1``, and none below it;
- the gradient of the solved MMSE in ``snr`` and in the atoms by finite differences;
- bad atoms rejected with the parameter's name; the command line's ``prior_u=discrete``.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.simulate.spiked import amp_errors

ALPHA = 2.0
SPARSE = dict(values_u=(-1.0, 0.0, 1.0), probabilities_u=(0.15, 0.7, 0.15))  # density rho_u = 0.3


def sparse(snr, values_u=SPARSE["values_u"]):
    """Sparse Rademacher u of density 0.3 given as atoms, Rademacher v, n = 2 d."""
    return hd.Spiked(
        ensemble="wishart", snr=snr, alpha=ALPHA, prior="rademacher", prior_u="discrete",
        values_u=values_u, probabilities_u=SPARSE["probabilities_u"], order=32,
    )


@pytest.mark.parametrize(
    "builtin, atoms",
    [
        (dict(prior_u="rademacher"), dict(values_u=(-1.0, 1.0), probabilities_u=(0.5, 0.5))),
        (dict(prior_u="sparse-rademacher", rho_u=0.3), SPARSE),
    ],
    ids=["rademacher", "sparse-rademacher"],
)
def test_atoms_equal_the_builtin_prior(builtin, atoms):
    """The map ``q -> update(q)`` and the observables at states from uninformative to near perfect
    recovery: the built-in prior (Rademacher: ``tanh`` in closed form) and the same law as atoms
    agree to 1e-10, the quadratures' precision (the discrete prior's panel rule is checked against
    SciPy's ``quad`` to 1e-10 in tests/test_bayes_discrete.py)."""
    kw = dict(ensemble="wishart", snr=3.0, alpha=ALPHA, prior="rademacher", order=32)
    rho_u = float(hd.Spiked(**kw, **builtin)._priors()[1].rho)
    states = jnp.stack([rho_u * jnp.asarray([1e-4, 0.2, 0.6, 0.99]), jnp.asarray([0.5, 0.9, 0.1, 0.999])], axis=1)

    def outputs(theory):
        return jax.jit(jax.vmap(lambda q: (theory.update(q), theory.observables(q))))(states)

    builtin, atoms = outputs(hd.Spiked(**kw, **builtin)), outputs(hd.Spiked(**kw, prior_u="discrete", **atoms))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), builtin, atoms)
    np.testing.assert_allclose(atoms[1]["mmse_u"], rho_u - states[:, 0], rtol=1e-12)


# The default run checks the Wishart AMP against state evolution in test_spiked_amp.py, and these atoms'
# map against the built-in prior above.
@pytest.mark.extended
def test_amp_follows_state_evolution():
    """Sparse Rademacher u as atoms at lam = 4 (lam^2 alpha rho_u^2 = 2.9, past weak recovery), from
    side observations at SNR 0.1: the errors fall from 0.29 to 0.18 (u), 0.91 to 0.47 (v) and 0.30
    to 0.24 (the matrix). Per seed they fluctuate by O(1 / sqrt(d)) times the factor's second moment
    (the seeds' spread at d = 2000: up to 0.03 for v, 0.006 for u), with an O(1 / d) bias; the mean
    of four seeds is held to 3 / sqrt(d) times the second moment (rho_u = 0.3 for u, 1 for v, their
    product for the matrix), the tolerance of the Rademacher test in tests/test_spiked_amp.py scaled
    to the factor. Over six sets of seeds at d = 1000 the largest deviation was 0.48 of it; each
    fall is more than twice it."""
    theory = sparse(4.0)
    steps, d, snr0 = 10, 1000, 0.1
    errors = amp_errors(theory, d=d, seeds=4, steps=steps, snr0=snr0, key=jax.random.PRNGKey(1))
    prior, prior_u = theory._priors()
    q0 = jnp.stack([prior_u.overlap(snr0, theory.order), prior.overlap(snr0, theory.order)])
    predicted = hd.iterate(theory, steps, init=q0)
    scale = {"mmse_u": 0.3, "mmse_v": 1.0, "mmse_matrix": 0.3}
    for key, error in errors.items():
        atol = 3 / np.sqrt(d) * scale[key]
        np.testing.assert_allclose(np.mean(error, axis=0), predicted[key], atol=atol, err_msg=key)
        assert predicted[key][0] - predicted[key][-1] > 2 * atol, key


@pytest.fixture(scope="module")
def solved():
    """``mmse_matrix`` of the solved fixed point and its gradient in ``(snr, values_u)``, one program."""

    def mmse(snr, values_u):
        sol = hd.solve(sparse(snr, values_u))
        return sol.observables["mmse_matrix"], (sol.converged, sol.observables)

    return jax.jit(jax.value_and_grad(mmse, argnums=(0, 1), has_aux=True))


def test_weak_recovery_threshold(solved):
    """Zero-mean priors: q = 0 is unstable past lam^2 alpha rho_u^2 rho^2 = 1 (module docstring of
    hdtheory.models.spiked), lam_c = 1 / (0.3 sqrt(2)) = 2.357 here. At 0.97 lam_c the uninformed
    solve stays at q = 0 (mmse_matrix = rho_u rho = 0.3); at 1.03 lam_c it leaves it."""
    lam_c = 1 / (0.3 * np.sqrt(ALPHA))
    values = jnp.asarray(SPARSE["values_u"])
    (below, (converged, obs)), _ = solved(0.97 * lam_c, values)
    assert converged
    np.testing.assert_allclose([obs["q_u"], obs["q_v"]], 0.0, atol=1e-6)
    np.testing.assert_allclose(below, 0.3, atol=1e-6)
    (above, (converged, obs)), _ = solved(1.03 * lam_c, values)
    assert converged and obs["q_u"] > 1e-3 and obs["q_v"] > 1e-3 and above < 0.3 - 1e-4


def test_gradient_matches_finite_differences(solved):
    """d mmse_matrix / d snr and / d values_u (all atoms, along (-1, 0, 1): the atoms' scale) at
    lam = 4, against central differences of the same program's values, step 1e-5 (error ~1e-10)."""
    values, h = jnp.asarray(SPARSE["values_u"]), 1e-5
    (value, (converged, _)), (d_snr, d_values) = solved(4.0, values)
    assert converged
    fd_snr = (solved(4.0 + h, values)[0][0] - solved(4.0 - h, values)[0][0]) / (2 * h)
    fd_scale = (solved(4.0, values * (1 + h))[0][0] - solved(4.0, values * (1 - h))[0][0]) / (2 * h)
    np.testing.assert_allclose(d_snr, fd_snr, rtol=1e-6)
    np.testing.assert_allclose(d_values @ values, fd_scale, rtol=1e-6)
    assert abs(d_snr) > 1e-3 and abs(fd_scale) > 1e-3


def test_bad_atoms_are_rejected():
    wishart = dict(ensemble="wishart", prior_u="discrete")
    cases = [
        (dict(values_u=(-1.0, 1.0), probabilities_u=(0.5, 0.6)), "'probabilities_u' must be 2 numbers"),
        (dict(values_u=(-1.0, 1.0), probabilities_u=(1.5, -0.5)), "probabilities_u"),
        (dict(values_u=(-1.0, 0.0, 1.0), probabilities_u=(0.5, 0.5)), "'probabilities_u' must be 3 numbers"),
        (dict(values_u=(1.0, 1.0), probabilities_u=(0.5, 0.5)), "'values_u' must be at least two"),
        (dict(), "'values_u' must be at least two distinct numbers for prior_u=discrete"),
    ]
    for kw, message in cases:
        with pytest.raises(hd.ParameterError, match=message) as error:
            hd.Spiked(**wishart, **kw)
        assert "\n" not in str(error.value)
    with pytest.raises(hd.ParameterError, match="'values_u' is for prior_u=discrete only"):
        hd.Spiked(ensemble="wishart", prior_u="rademacher", values_u=(-1.0, 1.0))


def test_command_line(capsys):
    """``hdtheory eval spiked ensemble=wishart prior_u=discrete values_u=... probabilities_u=...``: the
    atoms parsed, and, a two-atom law of mean zero, below weak recovery (lam = 1.5 < lam_c =
    1 / (rho_u sqrt(alpha)) = 1.886) the uninformative fixed point,
    ``mmse_u = rho_u = sum_k p_k v_k^2 = 0.6 * 0.25 + 0.4 * 0.5625 = 0.375``."""
    from hdtheory import cli

    args = [
        "eval", "spiked", "ensemble=wishart", "snr=1.5", "alpha=2", "prior=rademacher", "prior_u=discrete",
        "values_u=-0.5,0.75", "probabilities_u=0.6,0.4", "--json",
    ]
    assert cli.main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["converged"]
    np.testing.assert_allclose(record["mmse_u"], 0.375, atol=1e-9)
