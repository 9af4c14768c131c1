"""ODE theories: online SGD followed through a few summary statistics.

- :class:`Committee`: two-layer committee machines (Saad & Solla 1995; Goldt et al. 2019).
- :class:`SingleIndex`: single-index targets through Hermite coefficients (Arnaboldi et al. 2024).
- :class:`SequenceSingleIndex`: sequence single-index targets, tokens with a positional encoding
  (Arnaboldi et al. 2025).
- :class:`LoRA`: LoRA fine-tuning, any rank, of a pre-trained single-index model or two-layer student
  (Nwemadji et al. 2026).
- :class:`PowerLawRetrieval`: phase retrieval on power-law data, mode by mode (Braun et al. 2025).
- :class:`VariationalMixture`: the reverse-KL gradient flow of a Gaussian-mixture variational
  family, mode collapse and annealing (Soletskyi et al. 2024; Fogliani et al. 2026).

Each is an :class:`~hdtheory.ODETheory`, integrated by :func:`hdtheory.integrate`.
:mod:`hdtheory.dynamics.landscape` gives the Hessian of a committee machine's error in its weights
at a zero of ``Committee(flow="gradient")``, with the counts of its flat directions.
"""

from .committee import Committee, CommitteeState
from .lora import LoRA, LoRAState
from .power_law import PowerLawRetrieval
from .single_index import SingleIndex
from .ssi import SequenceOverlaps, SequenceSingleIndex
from .vi import VariationalMixture, VIState

DYNAMICS = {"committee": Committee, "single-index": SingleIndex, "ssi": SequenceSingleIndex}
DYNAMICS |= {"phase-retrieval-power-law": PowerLawRetrieval, "vi-mixture": VariationalMixture}
DYNAMICS |= {"lora": LoRA}
"""The ODE theories by their command-line names."""

__all__ = ["Committee", "CommitteeState", "SingleIndex", "SequenceSingleIndex", "SequenceOverlaps", "PowerLawRetrieval", "VariationalMixture", "VIState", "LoRA", "LoRAState", "DYNAMICS"]
