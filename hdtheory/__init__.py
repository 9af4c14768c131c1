"""hdtheory: the asymptotic theory of high-dimensional learning as differentiable JAX programs."""

from . import dynamics, kernels, models, simulate
from ._fixed_point import Damped, Newton, Solution, Status, solve
from ._continuation import continuation, spectral_radius
from ._integrate import ODEStatus, Trajectory, crossing, integrate
from ._sweep import sweep
from ._transitions import Threshold, iterate, threshold
from ._theory import FixedPointTheory, Interval, ODETheory, ParameterError, Theory
from ._tune import Identity, Log, Softplus, Transform, TuneResult, tune
from .dynamics import Committee
from .models import ERM, BayesGLM, Spiked
from .models import GCM, KRR, Mixture, RandomFeatures, SubspaceClustering

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
    "GCM",
    "RandomFeatures",
    "KRR",
    "SubspaceClustering",
    "Mixture",
]
