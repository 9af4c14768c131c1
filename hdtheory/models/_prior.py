"""The prior of a Bayes-optimal model's signal: one named in :data:`~hdtheory.kernels.PRIORS` with
second moment ``rho``, or ``discrete``, given by its atoms (``values``, ``probabilities``), whose
second moment ``sum_k p_k v_k^2`` takes the place of ``rho``. On the command line the atoms are
comma-separated numbers: ``prior=discrete values=-1,0,2 probabilities=0.2,0.5,0.3``."""

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from .. import kernels
from .._theory import NONNEGATIVE, POSITIVE, Interval, ParameterError, check_in, choice, is_concrete, parameter

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


def check(name: str, rho, values, probabilities, suffix: str = "", field: str = "prior") -> None:
    """Raise :class:`ParameterError` for atoms given to a prior that is not ``discrete``, and for
    atoms that are not a law with a positive second moment: at least two distinct finite values, as
    many probabilities, summing to one within 1e-9 (in float32, within its rounding). ``rho`` is a
    density in ``(0, 1]`` for the sparse priors. The fields are ``prior``, ``rho``, ``values`` and
    ``probabilities``, each followed by ``suffix`` (``_u``: a second factor's prior); the prior's own
    field is ``field`` (``latent``: a generative prior's latent)."""
    prior = field + suffix
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


class Layers(Mapping):
    """The names of generative layers (:data:`~hdtheory.kernels.GENERATIVE_ACTIVATIONS`) and their
    compositions, comma-separated, first layer first: ``"relu,sign"`` is ``sign(W_2 relu(W_1 z))``."""

    def __getitem__(self, key):
        return tuple(kernels.GENERATIVE_ACTIVATIONS[name] for name in key.split(","))

    def __contains__(self, key):
        return isinstance(key, str) and all(name in kernels.GENERATIVE_ACTIVATIONS for name in key.split(","))

    def __iter__(self):
        return iter(kernels.GENERATIVE_ACTIVATIONS)

    def __len__(self):
        return len(kernels.GENERATIVE_ACTIVATIONS)


def activation_field():
    return choice(
        "linear",
        Layers(),
        "activations of x = phi_L(W_L ... phi_1(W_1 z)), comma-separated, first layer first (prior=generative only)",
    )


def beta_field():
    return parameter(
        1.0,
        POSITIVE,
        "ratio k_l / k_(l-1) of each layer's output to its input, one per layer or one for all (prior=generative only)",
        vector=True,
    )


def layer_noise_field():
    return parameter(
        0.0,
        NONNEGATIVE,
        "variance Delta_l of the Gaussian noise added to each layer's output, one per layer or one for all "
        "(prior=generative only)",
        vector=True,
    )


def check_layers(activation: str, beta, layer_noise=0.0) -> None:
    """Raise :class:`ParameterError` unless ``beta`` and ``layer_noise`` are each one value, or one
    per layer of ``activation``."""
    layers = len(activation.split(","))
    for name, value, what in (("beta", beta, "one ratio > 0"), ("layer_noise", layer_noise, "one variance >= 0")):
        if is_concrete(value) and (np.ndim(value) > 1 or np.size(value) not in (1, layers)):
            raise ParameterError(
                f"parameter {name!r} must be {what}, or one per layer ({layers} for activation={activation!r}), "
                f"got {np.shape(value)}"
            )


def latent_field():
    return choice(
        "gaussian",
        PRIORS,
        "prior of the latent z's entries, with rho (values, probabilities) as its parameters (prior=generative only)",
    )


def layers(
    activation: str, beta, order: int = 8, panel_order: int = 8, layer_noise=0.0, latent: kernels.Prior | None = None
) -> kernels.Generative:
    """The stack of generative layers named by ``activation`` on the latent prior ``latent``
    (:func:`~hdtheory.kernels.generative.compose`)."""
    return kernels.compose(activation, beta, order, panel_order, layer_noise, latent)


def layer_observables(layer: kernels.Generative, latents) -> dict:
    """``q_z`` and ``mmse_z = rho_z - q_z`` of the latent and, for a stack, ``q_h{l}`` and
    ``mmse_h{l}`` of the output of layer ``l < L`` (per entry, ``rho_l - q_l``)."""
    rhos = layer.rhos
    out = {"q_z": latents[0], "mmse_z": rhos[0] - latents[0]}
    for l in range(1, layer.depth):
        out[f"q_h{l}"], out[f"mmse_h{l}"] = latents[l], rhos[l] - latents[l]
    return out
