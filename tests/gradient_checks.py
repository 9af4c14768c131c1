"""The finite-difference check of a scalar function's gradient, shared by the ODE tests."""

import jax
import jax.numpy as jnp
import pytest


def assert_gradient_matches_differences(f, points, names, *, floor, rtol, atol, h=1e-5):
    """At each of ``points``, ``jax.grad(f)`` (one compiled program with the values) against central
    differences of step ``h`` of the same program's values, component by component (``names``): each
    derivative above ``floor`` in size (not trivially zero) and within ``rtol`` / ``atol`` of the difference."""
    value_and_grad = jax.jit(jax.value_and_grad(f))
    for p in points:
        _, grad = value_and_grad(p)
        for i, name in enumerate(names):
            step = h * jnp.eye(len(names))[i]
            fd = (value_and_grad(p + step)[0] - value_and_grad(p - step)[0]) / (2 * h)
            assert abs(float(grad[i])) > floor, name
            assert float(grad[i]) == pytest.approx(float(fd), rel=rtol, abs=atol), name

