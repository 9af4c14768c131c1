r"""Learning-rate schedules shared by the online-SGD theories.

The learning rate at time ``t`` (samples seen / d) is ``lr * s(t)`` with

- ``schedule="constant"``: ``s(t) = 1``;
- ``schedule="power"``: ``s(t) = (1 + t / decay_time)^(-decay_power)``;
- ``schedule="piecewise"``: ``s(t) = pieces[j]`` on the ``j``-th of ``len(pieces)`` equal intervals
  of ``[0, horizon]``, and ``pieces[-1]`` after ``horizon``.

Every schedule parameter is a JAX array field of the theory, so ``jax.grad`` of an observable at a
fixed time reaches ``lr``, ``decay_time``, ``decay_power`` and each entry of ``pieces`` through the
ODE solver's adjoint (the tuning of learning-rate schedules by gradient descent).
"""

import jax
import jax.numpy as jnp

from .._theory import NONNEGATIVE, POSITIVE, ODETheory, choice, parameter

SCHEDULES = {"constant": None, "power": None, "piecewise": None}


class Scheduled(ODETheory):
    """An ODE theory trained by SGD with a learning-rate schedule; see the module docstring."""

    lr: jax.Array = parameter(0.5, POSITIVE, "learning rate (per-sample gradient step)")
    schedule: str = choice("constant", SCHEDULES, "learning-rate schedule s(t): lr * s(t)")
    decay_time: jax.Array = parameter(10.0, POSITIVE, "power schedule: (1 + t/decay_time)^-power")
    decay_power: jax.Array = parameter(0.5, NONNEGATIVE, "power schedule: its exponent")
    pieces: jax.Array = parameter((1.0,), NONNEGATIVE, "piecewise schedule: multipliers of lr")
    horizon: jax.Array = parameter(100.0, POSITIVE, "piecewise schedule: [0, horizon] split evenly")

    def rate(self, t) -> jax.Array:
        """The schedule's multiplier ``s(t)``."""
        if self.schedule == "power":
            return (1 + t / self.decay_time) ** (-self.decay_power)
        if self.schedule == "piecewise":
            return piecewise(t, self.pieces, self.horizon)
        return jnp.ones_like(t)


def piecewise(t, pieces, horizon) -> jax.Array:
    """``pieces[j]`` on the ``j``-th of ``len(pieces)`` equal intervals of ``[0, horizon]``, and
    ``pieces[-1]`` after ``horizon`` (also the temperature schedules of :mod:`.vi`)."""
    pieces = jnp.atleast_1d(pieces)
    j = jnp.clip(jnp.floor(t / horizon * pieces.shape[0]), 0, pieces.shape[0] - 1)
    return pieces[j.astype(jnp.int32)]
