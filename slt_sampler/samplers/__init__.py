"""Samplers behind one contract (``init`` / ``step``), the one driver and calibration.

Stochastic-gradient: :class:`SGLD`, :class:`SGHMC`, :class:`PSGLD`. Unadjusted
underdamped Langevin (full data): :class:`BAOAB`. Exact (full data,
Metropolis-adjusted): :class:`MALA`, :class:`HMC`, :class:`NUTS`, :class:`MAMS`.
Driver: :func:`sample` (chains) and :func:`sample_ladder` (β rungs × chains), with
observables and per-datum accumulators (:class:`PointwiseStats`). Free energies from
samplers of their own: :func:`tempered_smc`, :func:`meanfield_vi`.
"""

from ._accumulate import PointwiseStats as PointwiseStats
from ._accumulate import pool_pointwise as pool_pointwise
from .calibrate import Calibration as Calibration
from .calibrate import CalibrationConfig as CalibrationConfig
from .calibrate import calibrate_sgld as calibrate_sgld
from .calibrate import configurational_temperature as configurational_temperature
from .hmc import HMC as HMC
from .hmc import MALA as MALA
from .hmc import NUTS as NUTS
from .hmc import window_adapt as window_adapt
from .ladder import sample_ladder as sample_ladder
from .mams import MAMS as MAMS
from .mams import tune_mams as tune_mams
from .psgld import PSGLD as PSGLD
from .psgld import frozen_metric as frozen_metric
from .psgld import rmsprop_preconditioner as rmsprop_preconditioner
from .run import SampleResult as SampleResult
from .run import sample as sample
from .sgld import SGHMC as SGHMC
from .sgld import SGLD as SGLD
from .smc import SMCResult as SMCResult
from .smc import tempered_smc as tempered_smc
from .underdamped import BAOAB as BAOAB
from .vi import VIResult as VIResult
from .vi import meanfield_vi as meanfield_vi

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
    "PointwiseStats",
    "SMCResult",
    "SampleResult",
    "VIResult",
    "calibrate_sgld",
    "configurational_temperature",
    "frozen_metric",
    "meanfield_vi",
    "pool_pointwise",
    "rmsprop_preconditioner",
    "sample",
    "sample_ladder",
    "tempered_smc",
    "tune_mams",
    "window_adapt",
]
