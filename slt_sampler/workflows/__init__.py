"""One-call entry points a study uses, each composed of the floors below
(posterior, samplers, estimators, zoo, diagnostics)."""

from .llc import ChainDivergenceError as ChainDivergenceError
from .llc import LLCCheckError as LLCCheckError
from .llc import LLCEstimate as LLCEstimate
from .llc import estimate_llc as estimate_llc

__all__ = ["ChainDivergenceError", "LLCCheckError", "LLCEstimate", "estimate_llc"]
