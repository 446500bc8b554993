"""Pure array estimators of the thermodynamic dictionary: they never sample.

* λ̂ (the LLC): :func:`llc`; λ from temperatures and free energies:
  :func:`two_temperature`, :func:`beta_slope`, :func:`variance_lambda`,
  :func:`free_energy_slope`.
* Free energy: :func:`thermodynamic_integration`, :func:`integrate_energy`,
  :func:`wbic`, :func:`beta_ladder`.
* Errors and fluctuation: :func:`gibbs_training_error`,
  :func:`gibbs_generalization_error`, :func:`bayes_training_error`,
  :func:`bayes_generalization_error`, :func:`functional_variance`, :func:`waic`,
  :func:`singular_fluctuation`, :func:`psis_loo`, :func:`pointwise_stats`.
* Energy, entropy, heat capacity: :func:`average_energy`, :func:`entropy`,
  :func:`heat_capacity`.
* Plateaus of a loss curve: :func:`find_plateaus`.
"""

from .energy import average_energy as average_energy
from .energy import entropy as entropy
from .energy import heat_capacity as heat_capacity
from .errors import Estimate as Estimate
from .errors import PsisLoo as PsisLoo
from .errors import bayes_generalization_error as bayes_generalization_error
from .errors import bayes_training_error as bayes_training_error
from .errors import functional_variance as functional_variance
from .errors import gibbs_generalization_error as gibbs_generalization_error
from .errors import gibbs_training_error as gibbs_training_error
from .errors import pointwise_stats as pointwise_stats
from .errors import psis_loo as psis_loo
from .errors import singular_fluctuation as singular_fluctuation
from .errors import waic as waic
from .free_energy import TIResult as TIResult
from .free_energy import WBICResult as WBICResult
from .free_energy import beta_ladder as beta_ladder
from .free_energy import integrate_energy as integrate_energy
from .free_energy import thermodynamic_integration as thermodynamic_integration
from .free_energy import wbic as wbic
from .learning_coefficient import FreeEnergySlopeResult as FreeEnergySlopeResult
from .learning_coefficient import SlopeResult as SlopeResult
from .learning_coefficient import TwoTemperatureResult as TwoTemperatureResult
from .learning_coefficient import VarianceLambdaResult as VarianceLambdaResult
from .learning_coefficient import beta_slope as beta_slope
from .learning_coefficient import free_energy_slope as free_energy_slope
from .learning_coefficient import two_temperature as two_temperature
from .learning_coefficient import variance_lambda as variance_lambda
from .llc import ErrorBudget as ErrorBudget
from .llc import LLCResult as LLCResult
from .llc import llc as llc
from .plateaus import Plateau as Plateau
from .plateaus import find_plateaus as find_plateaus

__all__ = [
    "ErrorBudget",
    "Estimate",
    "FreeEnergySlopeResult",
    "LLCResult",
    "Plateau",
    "PsisLoo",
    "SlopeResult",
    "TIResult",
    "TwoTemperatureResult",
    "VarianceLambdaResult",
    "WBICResult",
    "average_energy",
    "bayes_generalization_error",
    "bayes_training_error",
    "beta_ladder",
    "beta_slope",
    "entropy",
    "find_plateaus",
    "free_energy_slope",
    "functional_variance",
    "gibbs_generalization_error",
    "gibbs_training_error",
    "heat_capacity",
    "integrate_energy",
    "llc",
    "pointwise_stats",
    "psis_loo",
    "singular_fluctuation",
    "thermodynamic_integration",
    "two_temperature",
    "variance_lambda",
    "waic",
    "wbic",
]
