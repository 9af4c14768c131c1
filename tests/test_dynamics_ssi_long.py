"""Long sequences and mini-batches of the sequence single-index ODEs (``ssi``, sum form): the
per-token reduction against the product rule over all tokens, a closed form at L = 1000, online
mini-batch SGD at L = 32, d = 1000."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.dynamics import SequenceSingleIndex
from hdtheory.dynamics.ssi import SequenceOverlaps

HERMITE = dict(target=(0.1, 0.5, 1.0, 0.3), student=(0.0, 0.2, 1.0, 0.5))
STATES = [(0.3, 0.2, 0.5), (0.1, -0.4, 1.2), (-0.5, 0.1, 0.3), (0.9, 0.05, 1.0)]


@eqx.filter_jit
def _unconstrained(theory, m, e, q):
    """``(dm, de, dq, eg)`` of an unconstrained theory at the states ``(m, e, q)`` (arrays)."""

    def one(m, e, q):
        state = SequenceOverlaps(m=m, e=e, q=q)
        field = theory.vector_field(0.0, state)
        return jnp.stack([field.m, field.e, field.q, theory.observables(0.0, state)["eg"]])

    return jax.vmap(one)(m, e, q)


@pytest.mark.parametrize("L", [2, 3])
def test_per_token_reduction_equals_product_rule(L):
    """Cubic link and activation with every Hermite degree, label noise, an encoding that differs
    per token, mini-batches: the O(L) two-dimensional integrals equal the product rule over all 2L
    fields (both exact for polynomials) to 1e-12 relative, drifts and error."""
    kw = dict(L=L, lr=0.3, batch=3, noise=0.1, geometry="unconstrained",
              positions=tuple(np.linspace(1.0, -0.5, L)), **HERMITE)
    reduced, product = SequenceSingleIndex(**kw), SequenceSingleIndex(rule="product", **kw)
    assert reduced.reduced and not product.reduced
    m, e, q = (jnp.array(v) for v in zip(*STATES))
    a, b = np.asarray(_unconstrained(reduced, m, e, q)), np.asarray(_unconstrained(product, m, e, q))
    assert np.all(np.abs(b[:, :3]) > 1e-3)  # every drift non-trivial
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_linear_closed_form_at_a_thousand_tokens():
    """f = f* = sum_l z_l, L = 1000, an encoding c with C = sum_l c_l = 125: the closed form of
    tests/test_dynamics_ssi.py with eta = lr / batch (dm/dt = -eta L (m - 1), de/dt = -eta e (C^2 + L),
    dq/dt = -2 eta (L (q - m) + e^2 C^2) + eta^2 L (L (q - 2m + 1) + e^2 C^2 + noise)) to 1e-12; the
    product rule would need 4^2000 nodes."""
    L, lr, batch, noise = 1000, 1e-3, 4, 0.3
    c = np.where(np.arange(L) % 4 == 0, 1.5, -0.5)
    C, eta = c.sum(), lr / batch
    theory = SequenceSingleIndex(L=L, lr=lr, batch=batch, noise=noise, geometry="unconstrained",
                                 positions=tuple(c), target=(0.0, 1.0), student=(0.0, 1.0))
    m, e, q = (np.array(v) for v in zip(*STATES))
    ours = np.asarray(_unconstrained(theory, *(jnp.asarray(v) for v in (m, e, q))))
    error = L * (q - 2 * m + 1) + e**2 * C**2
    expected = np.stack([-eta * L * (m - 1), -eta * e * (C**2 + L),
                         -2 * eta * (L * (q - m) + e**2 * C**2) + eta**2 * L * (error + noise),
                         error / 2], -1)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


# The default run checks the per-token reduction against the product rule and a closed form (above),
# and long sequences in mini-batches against SGD in test_dynamics_ssi_tied.
@pytest.mark.extended
def test_long_sequence_matches_minibatch_simulation():
    """L = 32 tokens (the product rule would need 6^64 nodes), h = h* = He_1 / 2 + He_2 / sqrt(2),
    alternating encoding c = (1, -1, ...), label noise, spherical, mini-batches of 2 sequences, eta L
    = 0.64 (the eta^2 term, of order (eta L)^2, matters): online SGD at d = 1000 (4 seeds) against
    the ODEs, m and e within 4 standard errors plus 0.03 (seen: up to 3.8 standard errors, 0.045,
    over three keys; the runs' spread is about 0.025 each, O((eta L)^2 t / d)^(1/2))."""
    L = 32
    theory = SequenceSingleIndex(L=L, lr=0.04, batch=2, m0=0.2, e0=0.3, positions=(1.0, -1.0) * (L // 2),
                                 noise=0.1, target=(0, 0.5, 1.0), student=(0, 0.5, 1.0))
    times = np.array([0.0, 0.5, 1.5])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(2))
    ode = hd.integrate(theory, 1.5, saveat=jnp.asarray(times)).observables
    ode = {k: np.asarray(v) for k, v in ode.items()}
    assert ode["m"][-1] > 2 * ode["m"][0] and ode["e"][-1] < 0.1 * ode["e"][0]  # both move
    np.testing.assert_allclose(sim.mean["iterations"], times / 2)
    for key in ("m", "e"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - ode[key]), 4 * sim.sem[key] + 0.03)
