"""The sparse k-cluster mixture (Pesce et al. 2022): against the rank-one Wishart model at k = 2, a
Monte-Carlo of the rank-k matrix state evolution at k = 3, the published algorithmic threshold, and
finite differences."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd


def test_two_clusters_are_the_rank_one_wishart_model():
    """k = 2: the centred memberships are +-1/sqrt(2) along (1, -1)/sqrt(2) and the means' difference
    direction is Gauss-Bernoulli, so the model is hd.Spiked (Wishart) with a Rademacher u of second
    moment 1/2, a Gauss-Bernoulli v and SNR lam / rho: the same map and free entropy (computed there
    by the scalar priors' quadratures, here by the Gumbel and chi-square integrals), and the same
    fixed point from the uninformed start (lam^2 alpha = 4.5 > 4, past weak recovery)."""
    lam, alpha, rho = 1.5, 2.0, 0.2
    clusters = hd.SubspaceClustering(snr=lam, alpha=alpha, rho=rho, clusters=2)
    spiked = hd.Spiked(
        ensemble="wishart", snr=lam / rho, alpha=alpha, prior_u="rademacher", rho_u=0.5,
        prior="gauss-bernoulli", rho=rho, order=128,
    )
    states = jnp.array([[1e-4, 1e-4], [0.1, 0.05], [0.3, 0.15], [0.49, 0.199]])
    # Both maps and free entropies at the four states: one compiled program, not one per operation.
    both = jax.jit(lambda states: {f: [jax.vmap(getattr(t, f))(states) for t in (clusters, spiked)]
                                   for f in ("update", "free_entropy")})(states)
    for f, (ours, theirs) in both.items():
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, err_msg=f)
    ours, theirs = hd.solve(clusters), hd.solve(spiked)
    assert ours.converged and ours.observables["q_v"] > 0.05
    for key in ("q_u", "q_v", "free_entropy"):
        np.testing.assert_allclose(ours.observables[key], theirs.observables[key], rtol=1e-8, err_msg=key)


def _monte_carlo(k, rho, a_u, a_v, samples=400_000, seed=0):
    """The rank-k state evolution by sampling, with k x k matrices throughout: the overlaps per
    direction ``tr(M P) / (k - 1)``, the free entropies ``E log Z`` of both sides and the fraction
    of points whose most probable cluster is their own, with their standard errors. ``A = a P``,
    ``P = I - J / k``."""
    rng = np.random.default_rng(seed)
    P = np.eye(k) - 1.0 / k
    sqrt_P = P  # a projector is its own square root
    # Memberships: u* = e_c - 1/k; posterior over the k centred one-hot vectors.
    c = rng.integers(k, size=samples)
    u_star = np.eye(k)[c] - 1.0 / k
    A = a_u * P
    B = u_star @ A + np.sqrt(a_u) * rng.standard_normal((samples, k)) @ sqrt_P
    points = np.eye(k) - 1.0 / k
    logits = B @ points.T - 0.5 * np.einsum("ci,ij,cj->c", points, A, points)
    log_Z_u = np.logaddexp.reduce(logits, axis=1) - np.log(k)
    posterior = np.exp(logits - np.log(k) - log_Z_u[:, None])
    overlap_u = np.einsum("sc,ci,si->s", posterior, points, u_star) / (k - 1)
    correct = (np.argmax(logits, axis=1) == c).astype(float)
    # Means: rows 0 with probability 1 - rho, N(0, I_k) otherwise; Z = 1 - rho + rho N-ratio.
    nonzero = rng.random(samples) < rho
    v_star = rng.standard_normal((samples, k)) * nonzero[:, None]
    A = a_v * P
    B = v_star @ A + np.sqrt(a_v) * rng.standard_normal((samples, k)) @ sqrt_P
    inverse = np.linalg.inv(np.eye(k) + A)
    quad = np.einsum("si,ij,sj->s", B, inverse, B)
    log_nonzero = np.log(rho) - 0.5 * np.linalg.slogdet(np.eye(k) + A)[1] + quad / 2
    log_Z_v = np.logaddexp(np.log1p(-rho), log_nonzero)
    mean = np.exp(log_nonzero - log_Z_v)[:, None] * B @ inverse
    overlap_v = np.einsum("si,ij,sj->s", mean, P, v_star) / (k - 1)
    return {
        name: (x.mean(), x.std() / np.sqrt(samples))
        for name, x in (
            ("q_u", overlap_u), ("q_v", overlap_v), ("psi_u", log_Z_u), ("psi_v", log_Z_v), ("accuracy", correct)
        )
    }


def test_three_clusters_against_monte_carlo():
    """k = 3: the symmetric reduction (a softmax expectation by Gumbel integrals, a chi-square average
    for the group-sparse means) against the k x k state evolution sampled with 4e5 draws, for both
    half-steps, both free entropies and the accuracy of the most probable cluster, within 4
    standard errors."""
    theory = hd.SubspaceClustering(snr=3.0, alpha=1.5, rho=0.3, clusters=3)

    @jax.jit  # one compiled program, not one per operation
    def evaluate(q):
        new = theory.update(q)
        a_u = theory.snr / theory.rho * q[1]
        a_v = theory.snr / theory.rho * theory.alpha * new[0]  # alternating: v from the new q_u
        ours = {"q_u": new[0], "q_v": new[1], "psi_u": theory._psi_u(a_u), "psi_v": theory._psi_v(a_v),
                "accuracy": theory.accuracy(q)}
        return a_u, a_v, ours

    a_u, a_v, ours = evaluate(jnp.array([0.15, 0.12]))
    mc = _monte_carlo(3, 0.3, float(a_u), float(a_v))
    for key, (value, error) in mc.items():
        assert 1e-3 < abs(value)  # a non-trivial point
        assert abs(ours[key] - value) < 4 * error, (key, float(ours[key]), value, error)


def test_weak_recovery_at_k_over_sqrt_alpha():
    """The trivial fixed point loses stability at lam = k / sqrt(alpha), whatever rho: the algorithmic
    threshold of Pesce et al. 2022 (abstract and Sec. 4). The spectral radius of the map at q = 0 is
    (lam^2 alpha / k^2) (the product of the two half-steps' slopes): 1 there, for k = 3, alpha = 2 and
    two densities in one compiled call. (hd.threshold locates it by root finding: tests/test_spiked.py
    for the Wishart model, of which k = 2 is an instance.)"""
    k, alpha = 3, 2.0
    rho = jnp.asarray([0.1, 0.6])
    snr = jnp.asarray([0.9, 1.0, 1.1]) * k / np.sqrt(alpha)

    def radius(snr, rho):
        theory = hd.SubspaceClustering(snr=snr, alpha=alpha, rho=rho, clusters=k, order=16)
        return hd.spectral_radius(theory, jnp.zeros(2))

    radii = jax.jit(jax.vmap(jax.vmap(radius, (None, 0)), (0, None)))(snr, rho)
    np.testing.assert_allclose(radii, (np.asarray(snr)[:, None] ** 2 * alpha / k**2) * np.ones((1, 2)), rtol=1e-7)


def test_free_entropy_is_stationary_and_gradients_match_finite_differences():
    """At the fixed point (k = 4) the free entropy is stationary in the state, a check of the free
    entropy's integrals against the overlaps' (the I-MMSE relation d psi / d a = (k - 1) q / 2);
    and d mmse_v / d (snr, rho) by implicit differentiation against central differences."""
    theory = hd.SubspaceClustering(snr=4.5, alpha=1.5, rho=0.3, clusters=4, order=24)

    def mmse(snr, rho):
        solution = hd.solve(hd.SubspaceClustering(snr=snr, alpha=1.5, rho=rho, clusters=4, order=24))
        return solution.observables["mmse_v"], solution

    # One program for the solution and the gradient; the differences reuse it.
    both = jax.jit(jax.value_and_grad(mmse, argnums=(0, 1), has_aux=True))
    (_, sol), grad = both(4.5, 0.3)
    assert sol.converged and sol.observables["q_v"] > 0.05
    np.testing.assert_allclose(jax.jit(jax.grad(theory.free_entropy))(sol.state), 0.0, atol=1e-9)
    mmse = lambda snr, rho: both(snr, rho)[0][0]  # noqa: E731
    h = 1e-5
    fd = ((mmse(4.5 + h, 0.3) - mmse(4.5 - h, 0.3)) / (2 * h), (mmse(4.5, 0.3 + h) - mmse(4.5, 0.3 - h)) / (2 * h))
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_errors_and_cli(capsys):
    with pytest.raises(hd.ParameterError, match="'rho'"):
        hd.SubspaceClustering(rho=1.5)
    with pytest.raises(hd.ParameterError, match="'clusters'"):
        hd.SubspaceClustering(clusters=1)
    from hdtheory import cli

    assert cli.main(["eval", "subspace-clustering", "clusters=3", "snr=3", "alpha=1.5", "rho=0.3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["converged"] and 1 / 3 < record["accuracy"] < 1
