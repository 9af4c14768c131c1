"""hdtheory: the asymptotic theory of high-dimensional learning as differentiable JAX programs."""

import importlib
from typing import TYPE_CHECKING

from ._cache import disable_cache, enable_cache
from ._compilation import faster_compilation

# The names below are imported when first used (PEP 562), so that `import hdtheory` and the command
# line load only what they need: the ODE solvers (diffrax), the optimisers (optax) and the finite-size
# simulations (scipy) take longer to import than most answers take to compute.
_SUBMODULES = ("dynamics", "kernels", "models", "simulate", "plot")
_ATTRIBUTES = {
    "._fixed_point": ("Damped", "Newton", "Solution", "Status", "solve"),
    "._continuation": ("continuation", "spectral_radius"),
    "._integrate": ("ODEStatus", "Trajectory", "crossing", "integrate"),
    "._steady": ("Stationary", "steady_state"),
    "._sweep": ("sweep",),
    "._transitions": ("Threshold", "iterate", "threshold"),
    "._theory": ("FixedPointTheory", "Interval", "ODETheory", "ParameterError", "Theory"),
    "._tune": ("Identity", "Log", "Softplus", "Transform", "TuneResult", "tune"),
    ".dynamics": ("Committee", "LoRA", "PowerLawRetrieval", "SequenceSingleIndex", "VariationalMixture"),
    ".models": (
        "ERM", "BayesGLM", "Spiked", "GCM", "KRR", "RandomFeatures", "SubspaceClustering", "Mixture",
        "Multiclass", "MulticlassBayes", "DeepRandomFeatures", "Resample", "MultiIndex", "Gardner",
        "Adversarial", "AdversarialGCM",
        "Ensemble", "EnsembleGCM", "RandomFeatureEnsemble", "Spectral",
        "LinearMinimax", "KRRPowerLawData",
        "LearnedSpectrum", "OneStepRidge", "GiantStep", "AdaptiveKernel",
        "MaskedSSR", "MaskedSSRCovariance", "SequentialRecovery",
        "DiagonalNetwork", "HierarchicalMultiIndex", "QuadraticNetwork",
        "GiantSpectrum",
        "RandomField",
        "DeepRandomFeaturesLimit",
    ),
}
_WHERE = {name: module for module, names in _ATTRIBUTES.items() for name in names}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"plot"})


if TYPE_CHECKING:
    from . import dynamics, kernels, models, plot, simulate
    from ._continuation import continuation, spectral_radius
    from ._fixed_point import Damped, Newton, Solution, Status, solve
    from ._integrate import ODEStatus, Trajectory, crossing, integrate
    from ._steady import Stationary, steady_state
    from ._sweep import sweep
    from ._theory import FixedPointTheory, Interval, ODETheory, ParameterError, Theory
    from ._transitions import Threshold, iterate, threshold
    from ._tune import Identity, Log, Softplus, Transform, TuneResult, tune
    from .dynamics import Committee, LoRA, PowerLawRetrieval, SequenceSingleIndex, VariationalMixture
    from .models import ERM, GCM, KRR, BayesGLM, Mixture, Multiclass, MulticlassBayes, RandomFeatures, Spiked
    from .models import DeepRandomFeaturesLimit
    from .models import Adversarial, AdversarialGCM, DeepRandomFeatures, Gardner, MultiIndex, Resample, SubspaceClustering
    from .models import Ensemble, EnsembleGCM, RandomFeatureEnsemble, Spectral
    from .models import KRRPowerLawData, LinearMinimax
    from .models import MaskedSSR, MaskedSSRCovariance, SequentialRecovery
    from .models import AdaptiveKernel, GiantStep, LearnedSpectrum, OneStepRidge
    from .models import DiagonalNetwork
    from .models import HierarchicalMultiIndex
    from .models import QuadraticNetwork
    from .models import GiantSpectrum
    from .models import RandomField

__version__ = "0.1.0"

__all__ = [
    "dynamics",
    "kernels",
    "models",
    "simulate",
    "solve",
    "integrate",
    "crossing",
    "Trajectory",
    "ODEStatus",
    "sweep",
    "steady_state",
    "Stationary",
    "continuation",
    "tune",
    "TuneResult",
    "Transform",
    "Log",
    "Softplus",
    "Identity",
    "spectral_radius",
    "threshold",
    "Threshold",
    "iterate",
    "Solution",
    "Status",
    "Newton",
    "Damped",
    "Theory",
    "FixedPointTheory",
    "ODETheory",
    "Interval",
    "ParameterError",
    "ERM",
    "BayesGLM",
    "Spiked",
    "Committee",
    "LoRA",
    "PowerLawRetrieval",
    "SequenceSingleIndex",
    "VariationalMixture",
    "GCM",
    "RandomFeatures",
    "DeepRandomFeatures",
    "DeepRandomFeaturesLimit",
    "KRR",
    "SubspaceClustering",
    "MultiIndex",
    "HierarchicalMultiIndex",
    "Adversarial",
    "AdversarialGCM",
    "enable_cache",
    "disable_cache",
    "faster_compilation",
    "Mixture",
    "Multiclass",
    "MulticlassBayes",
    "Resample",
    "Gardner",
    "Ensemble",
    "EnsembleGCM",
    "RandomFeatureEnsemble",
    "LinearMinimax",
    "KRRPowerLawData",
    "RandomField",
]
