"""Monte Carlo simulations of the theories at finite dimension: :func:`simulate`.

``simulate(theory, d=..., seeds=...)`` draws ``seeds`` independent instances of the finite-``d``
problem that a theory describes, solves each one, and measures the theory's observables under the
same names and normalisations as ``theory.observables``, so that the two compare key by key. The
model-specific simulations register themselves on :func:`simulate` (see
:mod:`hdtheory.simulate.erm`).
"""

import functools

import equinox as eqx
import jax
import numpy as np


class SimulationResult(eqx.Module):
    """Observables measured over independent seeds.

    ``samples`` holds one value per seed; ``mean`` and ``sem`` (the standard error of the mean over
    the seeds, NaN for a single seed) have the same keys.
    """

    mean: dict[str, float]
    sem: dict[str, float]
    samples: dict[str, np.ndarray]
    d: int
    n: int
    seeds: int

    @classmethod
    def from_samples(cls, samples: list[dict], *, d: int, n: int) -> "SimulationResult":
        """Summarise a list of per-seed dictionaries of observables."""
        stacked = {k: np.array([s[k] for s in samples], dtype=float) for k in samples[0]}
        seeds = len(samples)
        mean = {k: float(np.mean(v)) for k, v in stacked.items()}
        sem = {
            k: float(np.std(v, ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("nan")
            for k, v in stacked.items()
        }
        return cls(mean=mean, sem=sem, samples=stacked, d=d, n=n, seeds=seeds)


@functools.singledispatch
def simulate(
    theory, *, d: int = 1000, seeds: int = 4, key: jax.Array | None = None
) -> SimulationResult:
    """Simulate ``theory`` at input dimension ``d`` over ``seeds`` independent instances.

    Args:
        theory: a theory with a registered simulation.
        d: the input dimension; sample sizes follow from the theory's ratios
            (``n = round(alpha d)``).
        seeds: the number of independent instances.
        key: a ``jax.random`` key, ``PRNGKey(0)`` by default, split across the seeds.

    Returns:
        A :class:`SimulationResult` keyed like ``theory.observables`` (those that a finite instance
        measures), plus any diagnostics that the model's simulation documents.
    """
    raise NotImplementedError(f"no simulation is registered for {type(theory).__name__}")


from . import erm  # noqa: E402, F401  (registers the ERM simulation)
from . import committee  # noqa: E402, F401  (registers the committee-machine simulation)
from . import single_index  # noqa: E402, F401  (registers the single-index simulation)

__all__ = ["simulate", "SimulationResult"]
