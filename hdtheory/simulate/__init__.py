"""Monte Carlo simulations of the theories at finite dimension: :func:`simulate`.

``simulate(theory, d=..., seeds=...)`` draws ``seeds`` independent instances of the finite-``d``
problem that a theory describes, solves each one, and measures the theory's observables under the
same names and normalisations as ``theory.observables``, so that the two compare key by key. The
model-specific simulations register themselves on :func:`simulate` (see
:mod:`hdtheory.simulate.erm`).
"""

import functools
import warnings

import equinox as eqx
import jax
import numpy as np

from .._theory import Interval, check_integer


class SimulationResult(eqx.Module):
    """Observables measured over independent seeds.

    ``samples`` holds one value (or one array, such as a binned curve) per seed; ``mean`` and
    ``sem`` (the standard error of the mean over the seeds, NaN for a single seed) have the same
    keys, floats for scalar observables and arrays for array-valued ones.
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
        return cls.from_stacked({k: np.array([s[k] for s in samples]) for k in samples[0]}, d=d, n=n)

    @classmethod
    def from_stacked(cls, samples: dict, *, d: int, n: int) -> "SimulationResult":
        """Summarise observables stacked over the seeds on their first axis."""
        stacked = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
        seeds = len(next(iter(stacked.values())))

        def scalar(x):
            return float(x) if np.ndim(x) == 0 else x

        # An array-valued observable (a binned curve) is averaged entry by entry, ignoring NaN
        # (empty bins).
        with warnings.catch_warnings():  # a bin filled in one seed only has no spread
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = {k: scalar(np.nanmean(v, axis=0)) for k, v in stacked.items()}
            sem = {
                k: scalar(np.nanstd(v, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(v), axis=0)))
                if seeds > 1
                else scalar(np.full(v.shape[1:], np.nan))
                for k, v in stacked.items()
            }
        return cls(mean=mean, sem=sem, samples=stacked, d=d, n=n, seeds=seeds)


def bucket(n: int) -> int:
    """``n`` rounded up to one of eight sizes per octave, ``2^e ceil(n / 2^e)`` with
    ``e = max(floor(log2 n) - 3, 0)`` (at most 12.5% more): the number of rows a simulation holds
    ``n`` samples in, the rows past ``n`` zero and weighted zero, so that a sweep over ``alpha``
    compiles its programs for a few sizes instead of every ``n``."""
    step = 2 ** max(n.bit_length() - 4, 0)
    return -(-n // step) * step


def check_size(d: int, seeds: int) -> None:
    """A simulation needs ``d >= 1`` and ``seeds >= 1``."""
    check_integer("d", d, Interval(1))
    check_integer("seeds", seeds, Interval(1))


def online_steps(times, *, d: int, seeds: int, time_per_step: float) -> np.ndarray:
    """The step counts at which an online simulation records, from ``times`` (``[0, 1, 10]`` if None).

    Checks ``d`` and ``seeds``; sorts ``times`` and rounds each to a whole number of steps of
    ``time_per_step``. Returns the ``(len(times), 2)`` bounds ``[previous, this]`` of each segment.
    """
    check_size(d, seeds)
    times = np.sort(np.atleast_1d(np.asarray([0.0, 1.0, 10.0] if times is None else times, float)))
    if np.any(times < 0):
        raise ValueError(f"times must be >= 0, got {times}")
    steps = np.rint(times / time_per_step).astype(np.int64)
    return np.stack([np.concatenate([[0], steps[:-1]]), steps], -1)


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
from . import bayes  # noqa: E402, F401  (registers GAMP for the Bayes-optimal GLM)
from . import spectral  # noqa: E402, F401  (registers the spectral method)
from . import committee  # noqa: E402, F401  (registers the committee-machine simulation)
from . import single_index  # noqa: E402, F401  (registers the single-index simulation)
from . import ssi  # noqa: E402, F401  (registers the sequence single-index simulation)
from . import spiked  # noqa: E402, F401  (registers AMP for the spiked Wigner and Wishart models)
from . import gcm  # noqa: E402, F401  (registers random features and kernel ridge regression)
from . import mixture  # noqa: E402, F401  (registers ERM on a Gaussian mixture)

__all__ = ["simulate", "SimulationResult"]
from . import multiclass  # noqa: E402, F401  (registers ERM on the multi-class teacher-student perceptron)
from . import resample  # noqa: E402, F401  (registers the bootstrap and subsampling of ERM)
from . import multi_index  # noqa: E402, F401  (registers GAMP for the multi-index model)
from . import power_law  # noqa: E402, F401  (registers online SGD for phase retrieval on power-law data)
from . import adversarial  # noqa: E402, F401  (registers adversarial training against l2 attacks)
from . import ensemble  # noqa: E402, F401  (registers ensembles of random-features learners)
from . import vi  # noqa: E402, F401  (registers the reverse-KL gradient flow of a Gaussian mixture)
from . import lora  # noqa: E402, F401  (registers LoRA fine-tuning of a pre-trained single-index model)
from . import learned_spectrum  # noqa: E402, F401  (registers one gradient step and the features' spectrum)
from . import masked_ssr  # noqa: E402, F401  (registers masked self-supervised ridge regression)
from . import sequential  # noqa: E402, F401  (registers the spectral estimator of sequential feature recovery)
from . import diagonal_network  # noqa: E402, F401  (registers the LASSO of a diagonal linear network)
from . import quadratic_network  # noqa: E402, F401  (registers nuclear-norm matrix compressed sensing)
from . import adaptive_kernel  # noqa: E402, F401  (registers kernel ridge with the data-adaptive kernel)
from . import random_field  # noqa: E402, F401  (registers exact enumeration for the Gaussian-random-field model)
