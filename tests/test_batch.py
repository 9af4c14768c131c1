"""``map_instances`` leaves no decomposition batched on the CPU, checked on the compiled programs'
jaxprs (a batched decomposition is one whose operand has more than two axes). The hang itself is
intermittent (it depends on the thread pool's load and timing), so the programs are checked for its
cause rather than run until they hang."""

import jax
import jax.numpy as jnp
import pytest

import hdtheory as hd
from hdtheory._batch import decompositions, map_instances


def batched_decompositions(jaxpr) -> list[str]:
    return decompositions(jaxpr, batched=True)


def two_decompositions(a):
    return jnp.linalg.inv(a), jnp.linalg.eigh(a + 1)[0]


A = jnp.broadcast_to(2 * jnp.eye(3), (4, 3, 3))


def test_finder_sees_batched_decompositions():
    """The check can fail: a ``vmap`` of the same body batches both decompositions."""
    assert sorted(batched_decompositions(jax.make_jaxpr(jax.vmap(two_decompositions))(A).jaxpr)) == ["eigh", "lu"]


def test_map_instances_unbatched_on_cpu_vmapped_elsewhere():
    """On the CPU a body with decompositions is mapped, one without them vmapped (no scan)."""
    plain = jax.make_jaxpr(lambda a: map_instances(lambda b: b @ b, a, backend="cpu"))(A).jaxpr
    assert [e.primitive.name for e in plain.eqns] == ["dot_general"]
    mapped = jax.make_jaxpr(lambda a: map_instances(two_decompositions, a, backend="cpu"))(A).jaxpr
    assert batched_decompositions(mapped) == []
    vmapped = jax.make_jaxpr(lambda a: map_instances(two_decompositions, a, backend="gpu"))(A).jaxpr
    assert sorted(batched_decompositions(vmapped)) == ["eigh", "lu"]
    inverse, values = map_instances(two_decompositions, A)
    # 2 I + 1 1^T: eigenvalues 2, 2 and 2 + 3.
    assert jnp.allclose(inverse, 0.5 * jnp.eye(3)) and jnp.allclose(values, jnp.array([2.0, 2.0, 5.0]))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="on an accelerator the instances are vmapped by design")
def test_simulations_hold_no_batched_decomposition():
    """The simulations whose instances hold several decompositions, traced at small sizes."""
    from hdtheory.simulate import _layers, masked_ssr, spiked

    key = jax.random.PRNGKey(0)
    d = 6
    jaxpr = jax.make_jaxpr(
        lambda k: masked_ssr.measure(k, jnp.eye(d), jnp.eye(d), jnp.ones(d) / d**0.5, 0.1, 0.5, n=8, seeds=2, pca=True)
    )(key)
    assert batched_decompositions(jaxpr.jaxpr) == []
    theory = hd.Spiked(prior="generative", ensemble="wigner", snr=2.0, beta=2.0)
    stack = theory._priors()[0]
    k = _layers.widths(stack, 20)
    jaxpr = jax.make_jaxpr(lambda keys: spiked._lamp_instances(theory, keys, k, 20))(jax.random.split(key, 2))
    assert batched_decompositions(jaxpr.jaxpr) == []
