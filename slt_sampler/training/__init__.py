"""Training as a thermodynamic process: optimisers, checkpointed trajectories and the
temperature of SGD.

* :func:`train` runs any optax optimiser on ``L_n`` of a posterior, with atomic,
  resumable checkpoints, and returns a :class:`Trajectory`;
  :func:`sgd_iterates` runs many chains of it to read SGD's stationary law.
* :func:`leapfrog` (symplectic Störmer–Verlet) and :func:`euler_momentum` integrate
  ``H = ½‖p‖² + L(w)``; :func:`train` records ``H`` at every checkpoint.
* :func:`matched_beta` is the inverse temperature of the posterior matched to
  SGD(η, B) (Mandt, Hoffman & Blei 2017); :func:`sgd_stationary_covariance` solves the
  Lyapunov equation of SGD's stationary covariance.
"""

from .optimizers import HamiltonianState as HamiltonianState
from .optimizers import adam as adam
from .optimizers import euler_momentum as euler_momentum
from .optimizers import leapfrog as leapfrog
from .optimizers import sgd as sgd
from .temperature import gradient_covariance as gradient_covariance
from .temperature import gradient_variance as gradient_variance
from .temperature import loss_hessian as loss_hessian
from .temperature import matched_beta as matched_beta
from .temperature import sgd_stationary_covariance as sgd_stationary_covariance
from .trajectory import Iterates as Iterates
from .trajectory import Trajectory as Trajectory
from .trajectory import sgd_iterates as sgd_iterates
from .trajectory import train as train

__all__ = [
    "HamiltonianState",
    "Iterates",
    "Trajectory",
    "adam",
    "euler_momentum",
    "gradient_covariance",
    "gradient_variance",
    "leapfrog",
    "loss_hessian",
    "matched_beta",
    "sgd",
    "sgd_iterates",
    "sgd_stationary_covariance",
    "train",
]
