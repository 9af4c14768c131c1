r"""Online SGD for phase retrieval on power-law data (:class:`~hdtheory.dynamics.PowerLawRetrieval`).

**Setting** (that of :mod:`hdtheory.dynamics.power_law`), in dimension ``d = modes``, in the
eigenbasis of the covariance: the student starts at exactly the theory's ``w(0)`` (the same seeded
draw); each step draws one fresh ``x = sqrt(lambda) * z``, ``z ~ N(0, I_d)``, the label
``y = (theta.x)^2`` and takes
``w <- w - (lr s(t) / d) 2 (lambda^2 - y) lambda x`` with ``lambda = w.x`` (the per-sample
gradient of ``(y_hat - y)^2 / 2``, step ``lr / d``); time advances by ``1 / d`` per step
(``lax.scan`` over the recorded segments, ``vmap`` over seeds). Its mean follows the theory's flow;
the sampling noise moves ``w`` by ``O(lr / sqrt(d))`` per unit time.

**Observables**, per seed, at each requested time: the theory's observables at the simulated ``w``
(``eg`` the exact population error there), and ``t``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._compilation import LONG_RUN
from .._theory import ParameterError
from ..dynamics.power_law import PowerLawRetrieval
from . import SimulationResult, online_steps, simulate


def _run(theory: PowerLawRetrieval, key, bounds):
    d = theory.modes
    lam, theta = theory.spectrum()
    root = jnp.sqrt(lam)

    def step(s, w):
        x = root * jax.random.normal(jax.random.fold_in(key, s), (d,), w.dtype)
        field = w @ x
        y = (theta @ x) ** 2
        eta = theory.lr * theory.rate(s / d) / d
        return w - eta * 2 * (field**2 - y) * field * x

    def segment(w, bound):
        w = jax.lax.fori_loop(bound[0], bound[1], step, w)
        return w, w

    _, ws = jax.lax.scan(segment, theory.init(), bounds)
    return ws


@eqx.filter_jit
def _observables(theory: PowerLawRetrieval, t, ws):
    """The observables at the simulated weights ``(seeds, times, modes)``: one compiled program, not
    one per operation of ``theory.observables``."""
    return jax.vmap(jax.vmap(theory.observables), in_axes=(None, 0))(t, ws)


def simulate_power_law(
    theory: PowerLawRetrieval, *, d: int | None = None, seeds: int = 4, key=None, times=None
) -> SimulationResult:
    """:func:`~hdtheory.simulate.simulate` for :class:`~hdtheory.dynamics.PowerLawRetrieval`.

    Args:
        d: the dimension, which is the theory's ``modes`` (the default); another value is refused.
        times: the times (samples / d) at which to measure, ``[0, 1, 10]`` by default; each is
            rounded to a whole number of samples.
    """
    d = theory.modes if d is None else d
    if d != theory.modes:
        raise ParameterError(f"parameter 'd' must equal the theory's modes={theory.modes}, got {d!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    bounds = online_steps(times, d=d, seeds=seeds, time_per_step=1 / d)
    ws = jax.jit(jax.vmap(lambda k: _run(theory, k, bounds)), compiler_options=LONG_RUN)(jax.random.split(key, seeds))
    t = bounds[:, 1] / d
    observables = _observables(theory, jnp.asarray(t), ws)
    observables["t"] = np.broadcast_to(t, (seeds, len(t)))
    return SimulationResult.from_stacked(observables, d=d, n=int(bounds[-1, 1]))


simulate.register(PowerLawRetrieval)(simulate_power_law)
