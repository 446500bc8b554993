"""One-call entry points a study uses, each composed of the floors below
(posterior, samplers, estimators, zoo, diagnostics)."""

from .dictionary import DictionaryRun as DictionaryRun
from .dictionary import ThermodynamicDictionary as ThermodynamicDictionary
from .dictionary import thermodynamic_dictionary as thermodynamic_dictionary
from .llc import ChainDivergenceError as ChainDivergenceError
from .llc import LLCCheckError as LLCCheckError
from .llc import LLCEstimate as LLCEstimate
from .llc import estimate_llc as estimate_llc
from .llc_over_training import LLCOverTraining as LLCOverTraining
from .llc_over_training import llc_over_training as llc_over_training
from .sweep import SweepResult as SweepResult
from .sweep import cell_id as cell_id
from .sweep import concat_cells as concat_cells
from .sweep import run_sweep as run_sweep

__all__ = [
    "ChainDivergenceError",
    "DictionaryRun",
    "LLCCheckError",
    "LLCEstimate",
    "LLCOverTraining",
    "SweepResult",
    "ThermodynamicDictionary",
    "cell_id",
    "concat_cells",
    "estimate_llc",
    "llc_over_training",
    "run_sweep",
    "thermodynamic_dictionary",
]
