"""Long sequences with tied and mixed forms of the sequence single-index ODEs (``ssi``): the tied
student's reduction to a rule in two or four fields and the sum student's per-token reduction
against a tied target, both against the product rule over all tokens, against exact identities at
L = 1000, against finite differences, and against online SGD at L = 16, d = 1000."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hdtheory as hd
from hdtheory.dynamics import SequenceSingleIndex
from hdtheory.dynamics.ssi import SequenceOverlaps

CUBIC = dict(target=(0.1, 0.5, 1.0, 0.3), student=(0.0, 0.2, 1.0, 0.5))
QUADRATIC = dict(target=(0.2, 0.5, 1.0), student=(-0.1, 0.3, 0.8))
STATES = [(0.3, 0.2, 0.5), (0.1, -0.4, 1.2), (-0.5, 0.1, 0.3), (0.9, 0.05, 1.0)]
MIXED = [("tied", "tied"), ("tied", "sum"), ("sum", "tied")]


@eqx.filter_jit
def _unconstrained(theories, m, e, q):
    """``(dm, de, dq, eg)`` of each unconstrained theory at the states ``(m, e, q)`` (arrays)."""

    def one(theory, m, e, q):
        state = SequenceOverlaps(m=m, e=e, q=q)
        field = theory.vector_field(0.0, state)
        return jnp.stack([field.m, field.e, field.q, theory.observables(0.0, state)["eg"]])

    return [jax.vmap(lambda *s: one(theory, *s))(m, e, q) for theory in theories]


def _states():
    return tuple(jnp.array(v) for v in zip(*STATES))


@pytest.mark.parametrize("student_form, target_form", MIXED)
def test_reductions_equal_product_rule(student_form, target_form):
    """Cubic link and activation with every Hermite degree at L = 2, 3 (and quadratic ones at L = 4 for
    the tied student, whose rule weighs the other L - 2 tokens by sqrt(L - 2)), label noise, an encoding
    that differs per token, mini-batches: the reductions equal the product rule over all 2L fields (both
    exact for polynomials) to 1e-11 relative, drifts and error."""
    pairs = []
    cases = ((2, CUBIC), (3, CUBIC)) + (((4, QUADRATIC),) if target_form == "sum" else ())
    for L, hermite in cases:
        kw = dict(L=L, lr=0.3, batch=3, noise=0.1, geometry="unconstrained", student_form=student_form,
                  target_form=target_form, positions=tuple(np.linspace(1.0, -0.5, L)), **hermite)
        pairs += [SequenceSingleIndex(**kw), SequenceSingleIndex(rule="product", **kw)]
    assert all(t.reduced for t in pairs[::2]) and not any(t.reduced for t in pairs[1::2])
    values = [np.asarray(v) for v in _unconstrained(pairs, *_states())]
    for ours, product in zip(values[::2], values[1::2]):
        assert np.all(np.abs(product[:, :3]) > 1e-4)  # every drift non-trivial
        np.testing.assert_allclose(ours, product, rtol=1e-11, atol=1e-13)


def test_identities_at_a_thousand_tokens():
    """L = 1000 (the product rule would need 6^2000 nodes), an encoding, noise. A tied student sees
    a summed target T = sum_l h*(nu_l) through E[T | N] and Var(T | N) only (its fields are
    functions of N = sum_l nu_l / sqrt(L) and of a normal independent of the tokens). For
    h* = c0 + c1 He_1 + c2 He_2 / sqrt(2), writing nu_l = N / sqrt(L) + xi_l (sum_l xi_l = 0),
    E[T | N] = L c0 + sqrt(L) c1 N + c2 He_2(N) / sqrt(2), and Var(T | N) = c2^2 (L - 1) (the
    chi-square of the xi_l, L - 1 degrees of freedom, independent of N): a tied cubic student on it
    is the tied pair with target (L c0, sqrt(L) c1, c2) and label noise increased by c2^2 (L - 1),
    with eg increased by c2^2 (L - 1) / 2. A linear sum student, sum_l (c0 + c1 z_l) =
    L c0 + sqrt(L) c1 (sum_l z_l / sqrt(L)), on a tied cubic target is the tied pair with student
    (L c0, sqrt(L) c1). Equal to 1e-11."""
    L, c0, c1, c2, noise = 1000, 0.1, 0.5, 0.3, 0.3
    code = tuple(np.where(np.arange(L) % 4 == 0, 1.5, -0.5))
    kw = dict(L=L, lr=1e-3, batch=2, geometry="unconstrained", positions=code)
    linear, tied_linear = (c0, c1), (L * c0, np.sqrt(L) * c1)
    cubic = CUBIC["student"]
    theories = [
        SequenceSingleIndex(student_form="tied", target_form="sum", student=cubic, target=(c0, c1, c2),
                            noise=noise, **kw),
        SequenceSingleIndex(student_form="tied", target_form="tied", student=cubic, target=(*tied_linear, c2),
                            noise=noise + c2**2 * (L - 1), **kw),
        SequenceSingleIndex(student_form="sum", target_form="tied", student=linear, target=cubic,
                            noise=noise, **kw),
        SequenceSingleIndex(student_form="tied", target_form="tied", student=tied_linear, target=cubic,
                            noise=noise, **kw),
    ]
    values = [np.array(v) for v in _unconstrained(theories, *_states())]
    values[1][:, 3] += c2**2 * (L - 1) / 2
    for ours, identity in zip(values[::2], values[1::2]):
        assert np.all(np.abs(identity[:, :3]) > 1e-3)
        np.testing.assert_allclose(ours, identity, rtol=1e-11)


def _field(theory, point):
    """``(dm, de, dq, eg)`` at ``point = (m, e, q, target coefficients...)``."""
    theory = eqx.tree_at(lambda t: t.target, theory, point[3:])
    state = SequenceOverlaps(m=point[0], e=point[1], q=point[2])
    field = theory.vector_field(0.0, state)
    return jnp.stack([field.m, field.e, field.q, theory.observables(0.0, state)["eg"]])


@eqx.filter_jit
def _jacobian_and_differences(theory, point, step):
    """The Jacobian of :func:`_field` by forward mode, and by central differences of size ``step``."""
    steps = step * jnp.eye(point.size, dtype=point.dtype)
    shifted = jax.vmap(lambda h: _field(theory, point + h) - _field(theory, point - h))(steps)
    return jax.jacfwd(lambda x: _field(theory, x))(point), shifted.T / (2 * step)


def test_gradients_against_finite_differences():
    """The Jacobian of the drifts and error in the state (m, e, q) and in the target's Hermite
    coefficients, L = 100, a sum student on a tied target (through the target's Hermite expansion
    computed in the program, and the Gauss-Hermite rule's spread sqrt(q - m^2)), against central
    differences (step 1e-5) to 1e-6 relative."""
    L = 100
    theory = SequenceSingleIndex(L=L, lr=1e-3, noise=0.1, geometry="unconstrained", student_form="sum",
                                 target_form="tied", positions=tuple(np.where(np.arange(L) % 2, -0.5, 1.0)),
                                 **CUBIC)
    point = jnp.array([0.3, 0.2, 0.8, *CUBIC["target"]])
    jacobian, differences = (np.asarray(a) for a in _jacobian_and_differences(theory, point, 1e-5))
    assert np.all(np.abs(jacobian).max(axis=0) > 1e-6)  # every variable moves something
    np.testing.assert_allclose(jacobian, differences, rtol=1e-6, atol=1e-6 * np.abs(jacobian).max())


# Both reductions are checked against the product rule above; one of them against SGD by default.
@pytest.mark.parametrize("student_form, target_form, lr", [pytest.param("tied", "sum", 0.15, marks=pytest.mark.extended), ("sum", "tied", 0.04)])
def test_long_sequence_matches_simulation(student_form, target_form, lr):
    """L = 16 tokens (the product rule would need 4^32 nodes), h = h* = He_1 / 2 + He_2 / sqrt(2),
    one form tied and the other summed, encoding c = (1, -0.5, ...), label noise, spherical,
    mini-batches of 2 sequences: online SGD at d = 1000 (4 seeds) against the ODEs, m and e within
    4 standard errors plus 0.02 (seen: up to 3.7 standard errors, 0.019, in e at t = 0.4 with the
    sum student; at most 0.028 absolute, 2.1 standard errors, with the tied one; the runs cost
    L d^2 t, so the sequences are shorter than the reductions allow)."""
    L = 16
    theory = SequenceSingleIndex(L=L, lr=lr, batch=2, m0=0.2, e0=0.3, positions=(1.0, -0.5) * (L // 2),
                                 noise=0.1, target=(0, 0.5, 1.0), student=(0, 0.5, 1.0),
                                 student_form=student_form, target_form=target_form)
    times = np.array([0.0, 0.4, 1.0])
    sim = hd.simulate.simulate(theory, d=1000, seeds=4, times=times, key=jax.random.PRNGKey(2))
    ode = hd.integrate(theory, 1.0, saveat=jnp.asarray(times)).observables
    ode = {k: np.asarray(v) for k, v in ode.items()}
    assert np.max(np.abs(np.diff(ode["e"]))) > 0.04  # the encoding's overlap moves
    for key in ("m", "e"):
        np.testing.assert_array_less(np.abs(sim.mean[key] - ode[key]), 4 * sim.sem[key] + 0.02)
