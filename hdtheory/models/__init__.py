"""Fixed-point theories, one module per family."""

from .adaptive_kernel import AdaptiveKernel
from .adversarial import Adversarial, AdversarialGCM
from .bayes import BayesGLM
from .clusters import SubspaceClustering
from .deep_rf import DeepRandomFeatures
from .deep_rf import DeepRandomFeaturesLimit
from .diagonal_network import DiagonalNetwork
from .ensemble import Ensemble, EnsembleGCM, RandomFeatureEnsemble
from .erm import ERM, Overlaps
from .gardner import Gardner
from .gcm import GCM, RandomFeatures
from .giant_step import GiantStep
from .giant_spectrum import GiantSpectrum
from .hierarchical import HierarchicalMultiIndex
from .krr import KRR, KRRPowerLawData, LinearMinimax
from .learned_spectrum import LearnedSpectrum, OneStepRidge
from .masked_ssr import MaskedSSR
from .masked_ssr_covariance import MaskedSSRCovariance
from .mixture import Mixture
from .multi_index import MultiIndex
from .quadratic_network import QuadraticNetwork
from .random_field import RandomField
from .multiclass import Multiclass, MulticlassBayes
from .resample import Resample
from .sequential import SequentialRecovery
from .spectral import Spectral
from .spiked import Spiked

MODELS = {"erm": ERM, "bayes-glm": BayesGLM, "spiked": Spiked}
MODELS |= {"random-features": RandomFeatures, "krr": KRR, "subspace-clustering": SubspaceClustering}
MODELS |= {"deep-random-features": DeepRandomFeatures}
MODELS |= {"deep-random-features-limit": DeepRandomFeaturesLimit}
MODELS |= {"mixture": Mixture, "multiclass": Multiclass, "multiclass-bayes": MulticlassBayes}
MODELS |= {"resample": Resample, "multi-index": MultiIndex, "gardner": Gardner}
MODELS |= {"adversarial": Adversarial}
MODELS |= {"ensemble": RandomFeatureEnsemble}
MODELS |= {"spectral": Spectral}
MODELS |= {"linear-minimax": LinearMinimax, "krr-power-law-data": KRRPowerLawData}
MODELS |= {"learned-spectrum": LearnedSpectrum, "one-step-ridge": OneStepRidge}
MODELS |= {"giant-step": GiantStep}
MODELS |= {"giant-spectrum": GiantSpectrum}
MODELS |= {"adaptive-kernel": AdaptiveKernel}
MODELS |= {"masked-ssr": MaskedSSR}
MODELS |= {"sequential-recovery": SequentialRecovery}
MODELS |= {"diagonal-network": DiagonalNetwork}
MODELS |= {"hierarchical-multi-index": HierarchicalMultiIndex}
MODELS |= {"quadratic-network": QuadraticNetwork}
MODELS |= {"random-field": RandomField}
"""The models by their command-line names."""

__all__ = ["ERM", "Overlaps", "BayesGLM", "Spiked", "MODELS"]
__all__ += ["GCM", "RandomFeatures", "DeepRandomFeatures", "KRR", "SubspaceClustering", "Mixture", "Multiclass"]
__all__ += ["MulticlassBayes", "Resample", "MultiIndex", "Gardner", "Adversarial", "AdversarialGCM"]
__all__ += ["Ensemble", "EnsembleGCM", "RandomFeatureEnsemble", "Spectral"]
__all__ += ["LinearMinimax", "KRRPowerLawData"]
__all__ += ["LearnedSpectrum", "OneStepRidge"]
__all__ += ["GiantStep"]
__all__ += ["GiantSpectrum"]
__all__ += ["MaskedSSR", "MaskedSSRCovariance"]
__all__ += ["AdaptiveKernel"]
__all__ += ["SequentialRecovery"]
__all__ += ["DiagonalNetwork"]
__all__ += ["HierarchicalMultiIndex"]
__all__ += ["QuadraticNetwork"]
__all__ += ["RandomField"]
__all__ += ["DeepRandomFeaturesLimit"]
