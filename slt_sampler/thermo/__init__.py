"""Thermodynamic learning on the same JAX backend.

* :mod:`slt_sampler.thermo.ep` — equilibrium propagation (free and nudged phases,
  contrastive updates for optax, implicit-differentiation reference gradient);
* :mod:`slt_sampler.thermo.agent` — a variational free-energy (active inference) agent
  on discrete POMDPs, plus the amortised ELBO view on a linear-Gaussian model;
* :mod:`slt_sampler.thermo.reversible` — reversible networks with constant-memory
  backprop (``jax.custom_vjp`` reconstruction), usable as normalising flows.
"""

from . import agent as agent
from . import ep as ep
from . import reversible as reversible

__all__ = ["agent", "ep", "reversible"]
