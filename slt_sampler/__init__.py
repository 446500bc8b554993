"""slt_sampler: singular learning theory as statistical mechanics, in JAX.

The public API a study needs; everything else lives in its submodule.
"""

from . import training as training
from . import zoo as zoo
from .estimators.free_energy import (
    thermodynamic_integration as thermodynamic_integration,
)
from .estimators.free_energy import wbic as wbic
from .estimators.llc import LLCResult as LLCResult
from .estimators.llc import llc as llc
from .posterior._prior import check_proper_prior as check_proper_prior
from .posterior.base import TemperedPosterior as TemperedPosterior
from .posterior.base import default_beta as default_beta
from .posterior.base import full_loss as full_loss
from .posterior.base import logdensity as logdensity
from .posterior.base import tempered_posterior as tempered_posterior
from .posterior.numpyro_bridge import from_numpyro as from_numpyro
from .posterior.subsample import nested_subsamples as nested_subsamples
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
from .samplers.ladder import sample_ladder as sample_ladder
from .samplers.mams import MAMS as MAMS
from .samplers.mams import tune_mams as tune_mams
from .samplers.psgld import PSGLD as PSGLD
from .samplers.psgld import (
    preconditioned_configurational_temperature as preconditioned_configurational_temperature,
)
from .samplers.run import SampleResult as SampleResult
from .samplers.run import sample as sample
from .samplers.sgld import SGHMC as SGHMC
from .samplers.sgld import SGLD as SGLD
from .samplers.smc import tempered_smc as tempered_smc
from .samplers.underdamped import BAOAB as BAOAB
from .samplers.vi import meanfield_vi as meanfield_vi
from .workflows import ChainDivergenceError as ChainDivergenceError
from .workflows import DictionaryRun as DictionaryRun
from .workflows import LLCCheckError as LLCCheckError
from .workflows import LLCEstimate as LLCEstimate
from .workflows import estimate_llc as estimate_llc
from .workflows import llc_over_training as llc_over_training
from .workflows import run_sweep as run_sweep
from .workflows import thermodynamic_dictionary as thermodynamic_dictionary

__all__ = [
    "BAOAB",
    "HMC",
    "MALA",
    "MAMS",
    "NUTS",
    "PSGLD",
    "SGHMC",
    "SGLD",
    "Calibration",
    "CalibrationConfig",
    "ChainDivergenceError",
    "DictionaryRun",
    "LLCCheckError",
    "LLCEstimate",
    "LLCResult",
    "SampleResult",
    "TemperedPosterior",
    "calibrate_sgld",
    "check_proper_prior",
    "configurational_temperature",
    "default_beta",
    "estimate_llc",
    "from_numpyro",
    "full_loss",
    "llc",
    "llc_over_training",
    "logdensity",
    "meanfield_vi",
    "nested_subsamples",
    "preconditioned_configurational_temperature",
    "run_sweep",
    "sample",
    "sample_ladder",
    "tempered_posterior",
    "tempered_smc",
    "thermodynamic_dictionary",
    "thermodynamic_integration",
    "training",
    "tune_mams",
    "wbic",
    "window_adapt",
    "zoo",
]
