"""The ReLU landscape in the weights (``hdtheory.dynamics.landscape``): the Hessian of the population
error at the minima of ``Committee(flow="gradient")``, its zero eigenvalues against the closed-form
count of flat directions, and what one more student does to a spurious minimum (Huang, Loureiro &
Sarao Mannelli 2026: minima isolated at ``K = M``, joined by flat directions as the width grows,
spurious minima losing their attraction).

References: the arc-cosine kernel of Cho & Saul 2009 written out here (the Hessian against autodiff
of it); the smallest Hessian eigenvalue 0.021 of the ``k = n = 8`` spurious minimum published with
the code of Safran, Yehudai & Shamir 2021 (github.com/ItaySafran/Overparameterization); the
overlaps' Jacobian (``growth_rate`` of ``steady_state``), an independent route to the same
curvature; the split of a student (Fukumizu & Amari 2000), whose curvature across the split is
``p^T A p / (s (1 - s))`` with ``A`` read off the unsplit minimum's Hessian; the Gauss-Newton null
space ``n (K - M)`` of a global minimum of ``K > M`` students, built in closed form; and online SGD
at ``d = 1000`` started at the spurious minimum, against the flow's linear response to SGD's noise.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.dynamics import landscape
from hdtheory.dynamics.committee import CommitteeState

# The k = n = 8 spurious minimum of Safran, Yehudai & Shamir 2021 (family p = (1, 7)), as in
# test_relu_landscape.py: one student anti-aligned with its teacher, seven aligned.
ANTI = (-0.658256262009, 0.159816042942)
ALIGNED = (0.22808901644, 1.001434253459, -0.025883628041)
M = 8


def flow(K, lr=1.0, **overlaps):
    return hd.Committee(K=K, M=M, activation="relu", flow="gradient", time="lr", lr=lr, **overlaps)


def state(R, Q=None):
    R = jnp.asarray(R)
    return CommitteeState(Q=R @ R.T if Q is None else jnp.asarray(Q), R=R, v=jnp.ones(len(R)))


@pytest.fixture(scope="module")
def minimum():
    """The published minimum polished by Newton (``steady_state``) and the Hessian there."""
    a, e = ANTI
    f, c, d = ALIGNED
    R = np.full((M, M), d)
    np.fill_diagonal(R, c)
    R[0], R[0, 0], R[1:, 0] = e, a, f
    sol = hd.steady_state(flow(M, Q0=R @ R.T, R0=R), state(R), max_steps=20)
    assert sol.converged
    H = landscape.hessian(flow(M), sol.state)
    return sol, np.asarray(H)


def arc_cosine_error(W, W_star):
    """``eg = E[(sum_k relu(w_k.x) - sum_m relu(w*_m.x))^2] / 2`` from ``kappa(u, v) = |u||v|
    (sin t + (pi - t) cos t) / (2 pi)`` (Cho & Saul 2009), ``kappa(u, u) = |u|^2 / 2``."""
    rows = jnp.concatenate([W, W_star])
    c = jnp.concatenate([jnp.ones(len(W)), -jnp.ones(len(W_star))])
    norms = jnp.linalg.norm(rows, axis=1)
    cos = (rows @ rows.T) / jnp.outer(norms, norms)
    off = ~jnp.eye(len(rows), dtype=bool)
    t = jnp.arccos(jnp.where(off, cos, 0.0))
    kappa = jnp.outer(norms, norms) * (jnp.sin(t) + (math.pi - t) * jnp.cos(t)) / (2 * math.pi)
    kappa = jnp.where(off, kappa, norms**2 / 2)
    return c @ kappa @ c / 2


# Five students on three teachers: a generic point, and a global minimum with two teachers split
# (shares (0.3, 0.7) and (0.4, 0.6)), the students collinear with them.
K5, M3 = 5, 3
SPLIT = np.array([[0.3, 0, 0], [0.7, 0, 0], [0, 0.4, 0], [0, 0.6, 0], [0, 0, 1.0]])


def test_the_hessian_is_that_of_the_arc_cosine_kernel_and_its_gradient_the_flow():
    n = M3 + K5 + 1
    theory = hd.Committee(K=K5, M=M3, activation="relu", flow="gradient", time="lr", lr=1.0)
    W = np.random.default_rng(0).normal(size=(K5, K5 + M3)) / 2
    s = state(W[:, :M3], W @ W.T)
    Wn, W_star = landscape.weights(theory, s)
    np.testing.assert_allclose(Wn @ Wn.T, s.Q, atol=1e-13)
    np.testing.assert_allclose(Wn @ W_star.T, s.R, atol=1e-13)
    T = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])  # any teacher Gram matrix
    Wt, Wt_star = landscape.weights(hd.Committee(K=K5, M=M3, T=T), s)
    np.testing.assert_allclose(Wt_star @ Wt_star.T, T, atol=1e-13)
    np.testing.assert_allclose(Wt @ Wt_star.T, s.R, atol=1e-13)
    np.testing.assert_allclose(Wt @ Wt.T, s.Q, atol=1e-13)
    error = lambda w: arc_cosine_error(w.reshape(K5, n), W_star)
    reference = jax.jit(jax.hessian(error))(Wn.ravel())
    np.testing.assert_allclose(landscape.hessian(theory, s), reference, atol=1e-12)
    # The gradient drives the overlaps' flow: dR/dtau = -G W*^T, dQ/dtau = -(G W^T + W G^T).
    G = jax.jit(jax.grad(error))(Wn.ravel()).reshape(K5, n)
    field = jax.jit(lambda s: theory.vector_field(0.0, s))(s)  # one program, not one per operation
    np.testing.assert_allclose(field.R, -G @ W_star.T, atol=1e-12)
    np.testing.assert_allclose(field.Q, -(G @ Wn.T + Wn @ G.T), atol=1e-12)


def test_global_minima_of_wider_students_have_K_minus_M_flat_directions():
    """At ``SPLIT`` (collinear students, where the kernel's autodiff is 0 / 0 and the derivative of
    its closed-form gradient is used): ``eg = 0``, a flat set of dimension ``K - M = 2``, and a
    Hessian equal to the Gauss-Newton matrix, positive semi-definite with null space ``{sum of each
    teacher's students' moves = 0}``, of dimension ``n (K - M)`` (``n = M + K + 1 = 9``)."""
    theory = hd.Committee(K=K5, M=M3, activation="relu", flow="gradient", time="lr", lr=1.0)
    s = state(SPLIT)
    assert jax.jit(lambda s: theory.generalisation_error(s))(s) == 0  # one program, not one per operation
    values = np.linalg.eigvalsh(landscape.hessian(theory, s))
    n = M3 + K5 + 1
    assert np.all(values > -1e-12)
    assert np.sum(values < 1e-10) == n * (K5 - M3)
    assert values[n * (K5 - M3)] > 0.05
    assert landscape.flat_dimension(s) == K5 - M3
    assert landscape.symmetry_dimension(theory, s) == 0


def test_the_spurious_minimum_is_isolated_with_the_published_curvature(minimum):
    sol, H = minimum
    values = np.linalg.eigvalsh(H)
    # Isolated: no flat direction (8 distinct directions) and no symmetry (students in the teacher's
    # span), and every eigenvalue positive: the smallest 0.021, published with the minimum.
    assert landscape.flat_dimension(sol.state) == 0
    assert landscape.symmetry_dimension(flow(M), sol.state) == 0
    np.testing.assert_allclose(values[0], 0.021, rtol=0.05)
    # The same slowest rate as the overlaps' Jacobian: the flow dW/dtau = -H dW near the minimum.
    np.testing.assert_allclose(values[0], -sol.observables["growth_rate"], rtol=1e-8)


@pytest.mark.parametrize("k, s", [(0, 0.5), (3, 0.3)])
def test_a_split_student_is_a_saddle_with_one_flat_direction(minimum, k, s):
    """Student ``k`` of the ``K = M = 8`` minimum split into ``s w_k`` and ``(1 - s) w_k``: a
    critical point of ``K = 9`` students with one flat direction (the share ``s``), and a saddle,
    its curvature across the split ``p^T A p / (s (1 - s))`` with ``A`` the residual part of
    ``w_k``'s block of the unsplit Hessian, whose eigenvalues are all <= 0 (the one more student
    of test_relu_landscape.py leaves this family)."""
    sol, H8 = minimum
    R8 = np.asarray(sol.state.R)
    R = np.vstack([R8, (1 - s) * R8[k]])
    R[k] *= s
    split = state(R)
    theory = flow(M + 1)
    field = jax.jit(lambda s: theory.vector_field(0.0, s))(split)  # one program, not one per operation
    assert max(np.abs(field.Q).max(), np.abs(field.R).max()) < 1e-8
    n8, n9 = 2 * M + 1, 2 * M + 2
    H = np.asarray(landscape.hessian(theory, split))
    values, vectors = np.linalg.eigh(H)
    zero = np.abs(values) < 1e-8
    assert zero.sum() == landscape.flat_dimension(split) == 1
    assert landscape.symmetry_dimension(theory, split) == 0
    # The flat direction moves norm from one half to the other: (w_k, -w_k) on the pair.
    share = np.zeros((M + 1, n9))
    share[k, :M], share[M, :M] = R8[k], -R8[k]
    share = share.ravel() / np.linalg.norm(share)
    np.testing.assert_allclose(abs(vectors[:, zero][:, 0] @ share), 1.0, atol=1e-8)
    A = H8[k * n8:(k + 1) * n8, k * n8:(k + 1) * n8] - np.eye(n8) / 2
    a, P = np.linalg.eigh(A)
    assert a[0] < -0.05 and a[-1] < 1e-10
    across = np.zeros((n8, M + 1, n9))
    across[:, k, :n8] = P.T
    across[:, M, :n8] = -P.T
    across = across.reshape(n8, -1)
    np.testing.assert_allclose(np.einsum("pi,ij,pj->p", across, H, across), a / (s * (1 - s)), rtol=1e-7, atol=1e-10)
    assert values[0] <= a[0] / (2 * s * (1 - s)) * (1 - 1e-7)  # Rayleigh: a descent direction


# The default run checks the spurious minimum against gradient descent on the weights at finite d
# (test_relu_landscape).
@pytest.mark.extended
def test_online_sgd_at_finite_d_stays_at_the_spurious_minimum(minimum):
    """Online SGD at ``d = 1000`` (learning rate 0.025, two seeds) from weights with exactly the
    minimum's overlaps, to ``tau = lr t = 0.5`` (2 10^4 steps): the overlaps stay within 2e-3 (an
    escape along a descent direction would grow at the rate of the Hessian's, 0.2 at the split of
    the test above) and the error rises only by SGD's noise, the ``lr E[Delta^2 g'_k g'_l]`` term of
    ``dQ_kl / dtau`` that the flow drops. To first order in ``lr`` that term, ``lr S`` with ``S`` at
    the minimum (Monte Carlo, 10^6 samples of the fields), is filtered by the flow's linearisation
    ``J`` at the minimum: ``eg(tau) - eg = lr grad eg . int_0^tau e^(J s) ds S``, 6.0e-4 at
    ``tau = 0.5`` (the top-right block of the exponential of ``[[J, S], [0, 0]] tau``). Seen: 6.03e-4
    +- 0.16e-4 (at ``lr = 0.05``, 12% above its prediction: the ``O(lr^2)`` terms); asserted to 10%."""
    sol, _ = minimum
    eg, R, lr, tau = float(sol.observables["eg"]), np.asarray(sol.state.R), 0.025, 0.5
    theory = flow(M)

    @jax.jit  # one program, not one per operation
    def linear_response(start):
        u = theory.coordinates(start)
        field = lambda u: theory.coordinates(theory.vector_field(0.0, theory.from_coordinates(u, start)))
        J = jax.jacfwd(field)(u)
        z = jax.random.normal(jax.random.PRNGKey(0), (10**6, M))  # teacher fields; students' R z
        lam = z @ start.R.T
        delta = jnp.maximum(lam, 0).sum(1) - jnp.maximum(z, 0).sum(1)
        slopes = (lam > 0).astype(z.dtype)
        S = jnp.einsum("n,nk,nl->kl", delta**2, slopes, slopes) / len(z)
        S = theory.coordinates(CommitteeState(Q=S, R=jnp.zeros_like(start.R), v=jnp.zeros(M)))
        gradient = jax.grad(lambda u: theory.generalisation_error(theory.from_coordinates(u, start)))(u)
        augmented = jnp.zeros((len(u) + 1, len(u) + 1)).at[:-1, :-1].set(J).at[:-1, -1].set(S)
        return lr * gradient @ jax.scipy.linalg.expm(augmented * tau)[:-1, -1]

    rise = linear_response(sol.state)
    run = hd.simulate.simulate(flow(M, lr=lr, Q0=R @ R.T, R0=R), d=1000, seeds=2, times=np.array([0.0, tau]))
    np.testing.assert_allclose(run.mean["eg"][0], eg, rtol=1e-12)
    np.testing.assert_allclose(run.mean["eg"][-1] - eg, rise, rtol=0.1)
    assert np.abs(np.asarray(run.mean["R"])[-1] - R).max() < 2e-3
    assert np.abs(np.asarray(run.mean["Q"])[-1] - R @ R.T).max() < 4e-3


def test_bad_input_is_refused():
    with pytest.raises(hd.ParameterError, match="extra"):
        landscape.weights(flow(M), state(np.eye(M)), extra=0)
    with pytest.raises(hd.ParameterError, match="output"):
        landscape.hessian(hd.Committee(K=2, M=2, activation="relu", output="mean"), state(np.eye(2)))
