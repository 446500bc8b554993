"""slt_sampler: singular learning theory as statistical mechanics, in JAX.

The public API a study needs; everything else lives in its submodule.
"""

from . import zoo as zoo
from .estimators.llc import LLCResult as LLCResult
from .estimators.llc import llc as llc
from .posterior.base import TemperedPosterior as TemperedPosterior
from .posterior.base import default_beta as default_beta
from .posterior.base import full_loss as full_loss
from .posterior.base import logdensity as logdensity
from .posterior.base import tempered_posterior as tempered_posterior
from .posterior.numpyro_bridge import from_numpyro as from_numpyro
from .samplers.calibrate import Calibration as Calibration
from .samplers.calibrate import CalibrationConfig as CalibrationConfig
from .samplers.calibrate import calibrate_sgld as calibrate_sgld
from .samplers.calibrate import (
    configurational_temperature as configurational_temperature,
)
from .samplers.hmc import HMC as HMC
from .samplers.hmc import MALA as MALA
from .samplers.hmc import NUTS as NUTS
from .samplers.hmc import window_adapt as window_adapt
from .samplers.psgld import PSGLD as PSGLD
from .samplers.psgld import (
    preconditioned_configurational_temperature as preconditioned_configurational_temperature,
)
from .samplers.run import SampleResult as SampleResult
from .samplers.run import sample as sample
from .samplers.sgld import SGHMC as SGHMC
from .samplers.sgld import SGLD as SGLD
from .workflows import ChainDivergenceError as ChainDivergenceError
from .workflows import LLCCheckError as LLCCheckError
from .workflows import LLCEstimate as LLCEstimate
from .workflows import estimate_llc as estimate_llc

__all__ = [
    "HMC",
    "MALA",
    "NUTS",
    "PSGLD",
    "SGHMC",
    "SGLD",
    "Calibration",
    "CalibrationConfig",
    "ChainDivergenceError",
    "LLCCheckError",
    "LLCEstimate",
    "LLCResult",
    "SampleResult",
    "TemperedPosterior",
    "calibrate_sgld",
    "configurational_temperature",
    "default_beta",
    "estimate_llc",
    "from_numpyro",
    "full_loss",
    "llc",
    "logdensity",
    "preconditioned_configurational_temperature",
    "sample",
    "tempered_posterior",
    "window_adapt",
    "zoo",
]
