"""Roots of scalar functions: Newton's method safeguarded by bisection, and a root differentiable
by the implicit function theorem (``-dF/dp / dF/dtheta``). Pure JAX: vmappable, jittable, no host
synchronisation."""

import jax
import jax.numpy as jnp


def bracketed_newton(evaluate, lo, hi, f_lo, theta, f, slope, aux, steps, tol):
    """Newton's method on a scalar function in ``[lo, hi]`` (``f_lo``: its value at ``lo``, whose sign
    the function changes within), from ``theta`` where it is ``f`` with ``slope``; a step that leaves
    the bracket is a bisection. ``evaluate(theta) -> (value, slope, aux)``, ``aux`` carried along;
    a slope of ``None`` is the secant's through the previous point (the secant method).
    Returns ``(theta, value, slope, aux)`` at the last point."""

    def running(carry):
        lo, hi, f_lo, theta, f, slope, aux, i = carry
        return (jnp.abs(f) > tol) & (jnp.abs(hi - lo) > tol * (1 + jnp.abs(theta))) & (i < steps)

    def body(carry):
        lo, hi, f_lo, theta, f, slope, aux, i = carry
        newton = theta - f / slope
        inside = ((newton - lo) * (newton - hi) < 0) & jnp.isfinite(newton)
        new = jnp.where(inside, newton, 0.5 * (lo + hi))
        f_new, slope_new, aux = evaluate(new)
        slope_new = (f_new - f) / (new - theta) if slope_new is None else slope_new
        same = jnp.sign(f_new) == jnp.sign(f_lo)
        lo, f_lo, hi = jnp.where(same, new, lo), jnp.where(same, f_new, f_lo), jnp.where(same, hi, new)
        return lo, hi, f_lo, new, f_new, slope_new, aux, i + 1

    carry = jax.lax.while_loop(running, body, (lo, hi, f_lo, theta, f, slope, aux, 0))
    return carry[3:7]


def scalar_root(F, bracket, steps, tol, ends=False):
    """Root of a scalar ``F`` in ``bracket`` (where it changes sign, or, with ``ends``, vanishes to
    ``tol`` at an end): Newton's method safeguarded by bisection, then one Newton step with the gradient left on,
    whose derivative with respect to anything ``F`` closes over is the implicit one,
    ``-dF/dp / dF/dtheta``, since ``F = 0`` there.

    ``F`` (often a whole fixed-point solve) is traced twice: once in one loop that evaluates it (with
    its slope) at each end of the bracket, then at the start (the midpoint, or an end where ``F``
    vanishes to ``tol`` there with ``ends``), then at each step; once for the last step. ``steps``
    bounds the steps after the start."""

    dtype = jnp.result_type(bracket[0], bracket[1], float)
    lo, hi = (jnp.asarray(x, dtype) for x in jax.lax.stop_gradient(bracket))
    # The search sees ``F`` with what it closes over held fixed: its result is cut from the
    # derivative anyway, and a loop whose body closes over differentiated values is differentiated
    # (traced, and its tangents carried) in full.
    closed, consts = jax.closure_convert(F, lo)
    consts = jax.lax.stop_gradient(consts)

    def value_and_slope(theta):
        return jax.jvp(lambda t: closed(t, *consts), (theta,), (jnp.ones_like(theta),))

    def running(carry):
        lo, hi, _, _, theta, f, _, i = carry
        searching = (jnp.abs(f) > tol) & (jnp.abs(hi - lo) > tol * (1 + jnp.abs(theta))) & (i < steps + 3)
        return (i < 3) | searching

    def body(carry):
        lo, hi, f_lo, f_hi, theta, f, slope, i = carry
        newton = theta - f / slope
        inside = ((newton - lo) * (newton - hi) < 0) & jnp.isfinite(newton)
        # A root at an end of the bracket (a grid value on the transition, within rounding) is taken
        # as it is: the sign of F there is that of the rounding, and bisection could leave it.
        at_end = ends & (jnp.minimum(jnp.abs(f_lo), jnp.abs(f_hi)) <= tol)
        start = jnp.where(at_end, jnp.where(jnp.abs(f_lo) <= jnp.abs(f_hi), lo, hi), 0.5 * (lo + hi))
        new = jnp.select([i == 0, i == 1, i == 2], [lo, hi, start], jnp.where(inside, newton, 0.5 * (lo + hi)))
        f_new, slope_new = (jnp.asarray(x, dtype) for x in value_and_slope(new))
        f_lo, f_hi = jnp.where(i == 0, f_new, f_lo), jnp.where(i == 1, f_new, f_hi)
        same = (i >= 2) & (jnp.sign(f_new) == jnp.sign(f_lo))
        other = (i >= 2) & ~same
        lo, f_lo = jnp.where(same, new, lo), jnp.where(same, f_new, f_lo)
        hi, f_hi = jnp.where(other, new, hi), jnp.where(other, f_new, f_hi)
        return lo, hi, f_lo, f_hi, new, f_new, slope_new, i + 1

    inf, one, zero = jnp.asarray(jnp.inf, dtype), jnp.ones((), dtype), jnp.zeros((), dtype)
    carry = jax.lax.while_loop(running, body, (lo, hi, zero, zero, lo, inf, one, 0))
    root, f, slope = jax.lax.stop_gradient(carry[4:7])
    return root - F(root) / slope, jnp.abs(f)
