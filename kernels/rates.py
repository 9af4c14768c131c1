"""Decay exponents fitted from a theory's curve (learning curves in ``n``, error curves in time)."""

import jax
import jax.numpy as jnp


def fitted_rate(x, y) -> jax.Array:
    """The least-squares slope of ``-log(y)`` against ``log(x)`` (last axis): the exponent ``e``
    of ``y ~ x^-e`` over the points given."""
    x = jnp.log(jnp.asarray(x))
    y = jnp.log(jnp.asarray(y))
    xc = x - jnp.mean(x, axis=-1, keepdims=True)
    return -jnp.sum(xc * (y - jnp.mean(y, axis=-1, keepdims=True)), axis=-1) / jnp.sum(xc**2, axis=-1)
