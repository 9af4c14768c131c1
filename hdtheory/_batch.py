"""Batching over independent instances whose bodies may hold matrix decompositions.

jaxlib's CPU kernels for batched decompositions (``eigh``, ``inv``/``solve`` through LU, ``cholesky``,
``qr``, ``svd``) split the batch over XLA's CPU thread pool and wait on it from a thread of that same
pool. A ``vmap`` over a body with several independent decompositions gives XLA several such batched
calls that it may run at once; when they hold every thread of the pool, each waits for work that no
thread is free to do, and the program hangs (seen with the SSR matrix's inverse beside PCA's ``eigh``
on a two-core machine). :func:`map_instances` runs a body that holds a decomposition one instance
after another on the CPU, where no decomposition is batched, and ``vmap``s every other body, and
every body on accelerators, whose solvers do not share that pool.
"""

from collections.abc import Callable

import jax
import jax.extend

# The primitives of jnp.linalg's and jax.scipy.linalg's decompositions (inv/solve through LU).
DECOMPOSITIONS = frozenset({"eigh", "lu", "cholesky", "svd", "qr", "geqrf", "householder_product", "schur", "eig"})


def decompositions(jaxpr, *, batched: bool = False) -> list[str]:
    """The decomposition primitives of ``jaxpr`` and its sub-jaxprs; with ``batched``, only those whose
    operand has more than two axes."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in DECOMPOSITIONS and (not batched or eqn.invars[0].aval.ndim > 2):
            found.append(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += decompositions(sub, batched=batched)
    return found


def map_instances(f: Callable, xs, *, backend: str | None = None):
    """``f`` over the leading axis of the pytree ``xs``: ``jax.lax.map`` on the CPU when ``f`` holds a
    decomposition (traced once on one instance's shapes), ``jax.vmap`` otherwise. ``backend`` defaults
    to JAX's default backend."""
    if (backend or jax.default_backend()) == "cpu":
        one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), xs)
        if decompositions(jax.make_jaxpr(f)(one).jaxpr):
            return jax.lax.map(f, xs)
    return jax.vmap(f)(xs)
