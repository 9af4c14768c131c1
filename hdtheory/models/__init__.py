"""Fixed-point theories, one module per family."""

from .bayes import BayesGLM
from .erm import ERM, Overlaps

MODELS = {"erm": ERM, "bayes-glm": BayesGLM}
"""The models by their command-line names."""

__all__ = ["ERM", "Overlaps", "BayesGLM", "MODELS"]
