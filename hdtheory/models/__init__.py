"""Fixed-point theories, one module per family."""

from .bayes import BayesGLM
from .erm import ERM, Overlaps
from .spiked import Spiked

MODELS = {"erm": ERM, "bayes-glm": BayesGLM, "spiked": Spiked}
"""The models by their command-line names."""

__all__ = ["ERM", "Overlaps", "BayesGLM", "Spiked", "MODELS"]
