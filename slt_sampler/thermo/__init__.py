"""Thermodynamic learning on the same JAX backend: equilibrium propagation
(:mod:`slt_sampler.thermo.ep`), a variational free-energy agent
(:mod:`slt_sampler.thermo.agent`) and reversible networks
(:mod:`slt_sampler.thermo.reversible`)."""
