"""Fixed-point theories, one module per family."""

from .erm import ERM, Overlaps

MODELS = {"erm": ERM}
"""The models by their command-line names."""

__all__ = ["ERM", "Overlaps", "MODELS"]
