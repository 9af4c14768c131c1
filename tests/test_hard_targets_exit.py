r"""The escape from mediocrity at finite ``d`` (Arnaboldi, Krzakala, Loureiro & Stephan 2023, "Escaping
mediocrity", arXiv:2305.18502): ``p`` units on the sphere learning ``(w*.x)^2`` from a random start,
where the overlaps are ``O(d^(-1/2))`` and the noise of SGD is as large as the start.

Read in the paper's LaTeX (the first author's thesis sources, github.com/arn4/phd-thesis,
``papers/2305/``): Sec. "Does stochasticity matter?" and the Appendices "Spherically constrained ODE
and SDE" and "Stochastic correction to the exit-time formula". Near mediocrity (``p = 1``,
``m = 0``) the overlap follows the expansive Ornstein-Uhlenbeck process
``dm = mu m dtau + sigma db`` with ``mu = 4 (1 - 6 gamma) - 2 gamma Delta`` and
``sigma^2 = gamma (48 + 4 Delta) / (p d)`` in their time ``tau = (gamma / p) t`` (``t = n / d``
ours, ``gamma = lr``), and its mean first exit time from ``(-sqrt(T), sqrt(T))`` started at
``m = 0`` (where the ODE never moves) is, after Zeng 2020,
``(T / sigma^2) 2F2(1, 1; 3/2, 2; -mu T / sigma^2)``; that ``2F2`` is evaluated here as the
equivalent integral ``(2 / sigma^2) int_0^sqrt(T) F(sqrt(k) y) / sqrt(k) dy``, ``k = mu / sigma^2``,
``F`` Dawson's function (the solution of ``mu x t' + sigma^2 t'' / 2 = -1``; checked against the
series).

The simulations are online SGD in the exact chain of the overlaps
(``simulate(..., method="overlaps")``), checked here against the run on the weights.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from hdtheory.dynamics import Committee
from hdtheory.simulate import simulate
from hdtheory.simulate.committee import _run_overlaps

SQUARE = (1.0, 0.0, math.sqrt(2.0))


def network(p, lr, R0, noise=0.0):
    return Committee(K=p, M=1, activation="hermite", student=SQUARE, target=SQUARE, output="mean",
                     geometry="spherical", lr=lr, noise=noise, Q0=jnp.eye(p), R0=R0)


def test_diffusion_at_mediocrity():
    """``D`` at ``R = 0``, ``Q = I``: ``p = 1`` the paper's ``sigma^2`` in our time,
    ``(lr / p) gamma (48 + 4 Delta) / p = lr^2 (48 + 4 Delta)``; any ``p`` by Wick's theorem,
    ``D_kk = (4 lr^2 / p^2) (E_p + Delta)`` with ``E_p = E[Delta^2 lambda_1^2 nu^2]
    = (15 + (p - 1)(p + 7)) / p^2 - 6 (p + 2) / p + 15`` (12 at ``p = 1``, 9 at ``p = 2``),
    and no correlation between units (odd in ``lambda_k``)."""
    lr, noise = 0.2, 0.3
    for p in (1, 2):
        theory = network(p, lr, jnp.zeros((p, 1)), noise)
        D = np.asarray(theory.diffusion(0.0, theory.init())).reshape(p, p)
        wick = (15 + (p - 1) * (p + 7)) / p**2 - 6 * (p + 2) / p + 15
        np.testing.assert_allclose(np.diag(D), 4 * lr**2 / p**2 * (wick + noise), rtol=1e-12)
        np.testing.assert_allclose(D - np.diag(np.diag(D)), 0.0, atol=1e-14)
        if p == 1:
            np.testing.assert_allclose(D[0, 0], lr**2 * (48 + 4 * noise), rtol=1e-12)


def test_overlap_chain_is_the_run_on_the_weights():
    """The chain of the overlaps against SGD on the weights (d = 50, two units, label noise): the
    means and spreads of ``R`` at ``t = 1, 2`` agree within 4 standard errors."""
    theory = network(2, 0.3, jnp.array([[0.3], [0.1]]), 0.1)
    times = np.array([0.0, 1.0, 2.0])
    runs = {m: simulate(theory, d=50, seeds=s, times=times, key=jax.random.PRNGKey(7), method=m)
            for m, s in (("overlaps", 2048), ("weights", 512))}
    (a, na), (b, nb) = ((runs[m].samples["R"][:, 1:, :, 0], runs[m].seeds) for m in runs)
    se = np.sqrt(a.var(0) / na + b.var(0) / nb)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 4 * se), (a.mean(0), b.mean(0), se)
    # the spread: the standard deviation's standard error is about std / sqrt(2 n)
    sa, sb = a.std(0), b.std(0)
    assert np.all(np.abs(sa - sb) <= 4 * np.sqrt(sa**2 / (2 * na) + sb**2 / (2 * nb))), (sa, sb)
    with pytest.raises(ValueError, match="method"):
        simulate(theory, d=100, method="bogus")


# -- exit times ------------------------------------------------------------------------------------

LR = 1 / 12  # gamma_opt at p = 1 (Sec. 3.2)
DS = (1000, 2000)
STEP, T_MAX = 0.05, 45.0
SEEDS = 48


def _first_crossing(R, level):
    """Per seed, the middle of the record interval in which ``max_k |R_k|`` first reaches ``level``
    (NaN if never)."""
    hit = np.max(np.abs(R), axis=(-2, -1)) >= level
    index = np.argmax(hit, axis=1)
    return np.where(hit.any(1), (index - 0.5) * STEP, np.nan)


@pytest.fixture(scope="module")
def one_unit_runs():
    """p = 1 at d = 1000 and 2000, from ``m = 0`` and from ``m = d^(-1/2)``: one compiled chain
    (``d`` and the start traced)."""
    times = np.arange(0.0, T_MAX + STEP / 2, STEP)

    @jax.jit
    def chain(R0, d, steps, keys):
        theory = network(1, LR, R0)
        bounds = jnp.stack([jnp.concatenate([jnp.zeros(1, steps.dtype), steps[:-1]]), steps], -1)
        return jax.vmap(lambda k: _run_overlaps(theory, k, d, bounds))(keys)[1]

    runs = {}
    for i, d in enumerate(DS):
        steps = jnp.asarray(np.rint(times * d).astype(np.int64))
        for start in (0.0, d**-0.5):
            keys = jax.random.split(jax.random.PRNGKey(10 * i + (start > 0)), SEEDS)
            runs[d, start > 0] = np.asarray(chain(jnp.full((1, 1), start), d, steps, keys))
    return runs


def _ou_exit_time(mu, sigma2, level):
    """The paper's mean exit time of ``dm = mu m dt + sigma db`` from ``m = 0`` out of
    ``(-level, level)``, as Dawson's integral (module docstring)."""
    k = mu / sigma2
    return integrate.quad(lambda y: 2 / sigma2 * special.dawsn(math.sqrt(k) * y) / math.sqrt(k),
                          0, level)[0]


def test_exit_from_the_fixed_point_of_the_ode(one_unit_runs):
    """From ``m = 0`` exactly (the student orthogonal to the teacher, a fixed point of the ODE: the
    deterministic theory never leaves), SGD escapes by its own noise: the mean time for ``|m|`` to
    reach 0.1 against the paper's formula with ``mu = r = 4 lr (1 - 6 lr)`` and
    ``sigma^2 = lr^2 48 / d`` (our time), within 3 standard errors plus 0.1 (the record grid and
    the drift's ``1 - m^2 <= 1%``). At d = 1000: 48 seeds."""
    level = 0.1
    r = 4 * LR * (1 - 6 * LR)
    theory = network(1, LR, jnp.zeros((1, 1)))
    D = float(theory.diffusion(0.0, theory.init())[0, 0, 0, 0])
    for d in DS:
        t = _first_crossing(one_unit_runs[d, False], level)
        assert np.all(np.isfinite(t)), "a seed did not escape"
        expected = _ou_exit_time(r, D / d, level)
        sem = t.std(ddof=1) / math.sqrt(len(t))
        print(d, t.mean(), sem, expected)
        assert abs(t.mean() - expected) <= 3 * sem + 0.1, (d, t.mean(), sem, expected)
    # the ODE from m = 0 stays there
    assert float(theory.vector_field(0.0, theory.init()).R[0, 0]) == 0.0


def test_exit_from_a_random_start(one_unit_runs):
    """From ``m_0 = d^(-1/2)`` (the annealed start) the linear stage of the SDE,
    ``m(t) e^(-r t) -> m_0 + s xi`` with ``s^2 = D / (2 r d)``, turns the start into a Gaussian one,
    after which the ODE ``dm/dt = r m (1 - m^2)`` (``Delta = 0``) carries it:
    ``t = log[L^2 (1 - m^2) / ((1 - L^2) m^2)] / (2 r)`` at ``m = m_0 + s xi``. Its mean over ``xi``
    against the simulated mean time to ``|m| = L = 0.5``, within 3 standard errors plus 0.1; the
    deterministic ODE from ``m_0`` (the paper's exit time, no noise) is printed beside it."""
    level = 0.5
    r = 4 * LR * (1 - 6 * LR)
    theory = network(1, LR, jnp.zeros((1, 1)))
    D = float(theory.diffusion(0.0, theory.init())[0, 0, 0, 0])

    def ode_time(m):
        return math.log(level**2 * (1 - m**2) / ((1 - level**2) * m**2)) / (2 * r)

    for d in DS:
        t = _first_crossing(one_unit_runs[d, True], level)
        assert np.all(np.isfinite(t)), "a seed did not escape"
        m0, s = d**-0.5, math.sqrt(D / (2 * r * d))
        expected = integrate.quad(lambda x: ode_time(m0 + s * x) * stats.norm.pdf(x), -12, 12,
                                  points=[-m0 / s], limit=200)[0]
        sem = t.std(ddof=1) / math.sqrt(len(t))
        print(d, t.mean(), sem, expected, ode_time(m0))
        assert abs(t.mean() - expected) <= 3 * sem + 0.1, (d, t.mean(), sem, expected)
