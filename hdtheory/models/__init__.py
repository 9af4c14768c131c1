"""Fixed-point theories, one module per family."""

from .bayes import BayesGLM
from .clusters import SubspaceClustering
from .erm import ERM, Overlaps
from .gcm import GCM, RandomFeatures
from .krr import KRR
from .mixture import Mixture
from .multi_index import MultiIndex
from .multiclass import Multiclass, MulticlassBayes
from .spiked import Spiked

MODELS = {"erm": ERM, "bayes-glm": BayesGLM, "spiked": Spiked}
MODELS |= {"random-features": RandomFeatures, "krr": KRR, "subspace-clustering": SubspaceClustering}
MODELS |= {"mixture": Mixture, "multiclass": Multiclass, "multiclass-bayes": MulticlassBayes}
MODELS |= {"multi-index": MultiIndex}
"""The models by their command-line names."""

__all__ = ["ERM", "Overlaps", "BayesGLM", "Spiked", "MODELS"]
__all__ += ["GCM", "RandomFeatures", "KRR", "SubspaceClustering", "Mixture", "Multiclass", "MulticlassBayes", "MultiIndex"]
