"""The prior of a Bayes-optimal model's signal: one named in :data:`~hdtheory.kernels.PRIORS` with
second moment ``rho``, or ``discrete``, given by its atoms (``values``, ``probabilities``), whose
second moment ``sum_k p_k v_k^2`` takes the place of ``rho``. On the command line the atoms are
comma-separated numbers: ``prior=discrete values=-1,0,2 probabilities=0.2,0.5,0.3``."""

import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import Interval, ParameterError, check_in, is_concrete, parameter

PRIORS = {**kernels.PRIORS, "discrete": kernels.Discrete}
"""The priors a model's ``prior`` field names."""


def values_field(prior: str = "prior"):
    """The atoms of the prior that the field called ``prior`` names."""
    return parameter((), Interval(), f"atoms v_1..v_K of the prior ({prior}=discrete only)")


def probabilities_field(prior: str = "prior"):
    return parameter(
        (), Interval(0.0, 1.0), f"probabilities p_1..p_K of the atoms, summing to 1 ({prior}=discrete only)"
    )


def build(name: str, rho, values, probabilities) -> kernels.Prior:
    """The prior called ``name``: ``PRIORS[name](rho)``, or the discrete prior of the atoms."""
    if name == "discrete":
        return kernels.Discrete(values, probabilities)
    return kernels.PRIORS[name](rho)


def check(name: str, rho, values, probabilities, suffix: str = "") -> None:
    """Raise :class:`ParameterError` for atoms given to a prior that is not ``discrete``, and for
    atoms that are not a law with a positive second moment: at least two distinct finite values, as
    many probabilities, summing to one within 1e-9 (in float32, within its rounding). ``rho`` is a
    density in ``(0, 1]`` for the sparse priors. The fields are ``prior``, ``rho``, ``values`` and
    ``probabilities``, each followed by ``suffix`` (``_u``: a second factor's prior)."""
    prior = "prior" + suffix
    values, probabilities = jnp.asarray(values), jnp.asarray(probabilities)
    if name in ("gauss-bernoulli", "sparse-rademacher"):
        check_in("rho" + suffix, rho, Interval(0.0, 1.0, low_open=True), f" for {prior}={name}")
    if name != "discrete":
        for field, value in (("values", values), ("probabilities", probabilities)):
            if value.size:
                raise ParameterError(
                    f"parameter {field + suffix!r} is for {prior}=discrete only, got {prior}={name}"
                )
        return
    if not (is_concrete(values) and is_concrete(probabilities)):
        return
    v, p = np.asarray(values, float), np.asarray(probabilities, float)
    # 1e-9, or the rounding of the sum in the probabilities' own precision (float32).
    tolerance = max(1e-9, 10 * p.size * float(jnp.finfo(probabilities.dtype).eps))
    if v.ndim != 1 or v.size < 2 or np.unique(v).size != v.size:
        raise ParameterError(
            f"parameter {'values' + suffix!r} must be at least two distinct numbers for {prior}=discrete, got {v}"
        )
    if p.shape != v.shape or abs(p.sum() - 1) > tolerance:
        raise ParameterError(
            f"parameter {'probabilities' + suffix!r} must be {v.size} numbers in [0, 1] summing to 1 "
            f"(one per value), got {p}"
        )
    if not np.sum(p * v**2) > 0:
        raise ParameterError(
            f"parameter {'values' + suffix!r} must have a positive second moment (an atom at 0 alone is no signal)"
        )
