"""Metropolis-adjusted samplers (MALA, HMC, NUTS) on a :class:`TemperedPosterior`.

These use the full data every step and are exact up to Monte-Carlo error: they are the
reference the stochastic-gradient samplers are calibrated against. Same contract as
:mod:`slt_sampler.samplers.sgld`; ``info.loss`` is the full-data ``L_n`` at the
pre-step position, recovered from the cached log density at no extra cost:

.. math:: L_n(w) = \\big(\\log\\varphi(w) - \\tfrac{\\gamma}{2}\\lVert w-w^*\\rVert^2
          - \\log p(w)\\big) / (n\\beta).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior, localization_term, log_prior, logdensity
from ..types import Array, PRNGKey, PyTree
from .run import check_sampler_and_posterior


class ExactInfo(NamedTuple):
    """Per-step information of a Metropolis-adjusted step.

    Attributes
    ----------
    loss : full-data L_n at the pre-step position.
    is_divergent : HMC/NUTS energy error above BlackJAX's threshold, or a non-finite
        state.
    acceptance_rate : Metropolis acceptance probability of the proposal.
    energy : Hamiltonian at the new state (0 for MALA).
    num_integration_steps : leapfrog steps taken (1 for MALA).
    """

    loss: Array
    is_divergent: Array
    acceptance_rate: Array
    energy: Array
    num_integration_steps: Array


def _logdensity_fn(posterior: TemperedPosterior):
    return lambda w: logdensity(posterior, w)


def _loss_from_logdensity(posterior, position, lp):
    rest = log_prior(posterior, position) - localization_term(posterior, position)
    return (rest - lp) / posterior.nbeta


EXACT_SAMPLERS = frozenset({"mams", "mala", "nuts", "hmc"})
"""Names of the Metropolis-adjusted samplers (no step-size bias), as results record them."""


class _Exact:
    """Shared init for BlackJAX samplers whose state caches the log density."""

    _blackjax = blackjax.hmc
    info_loss_kind = "full"

    def init(self, position: PyTree, posterior: TemperedPosterior, rng_key=None):
        del rng_key
        return self._blackjax.init(position, _logdensity_fn(posterior))

    def _trajectory_step(self, kernel, rng_key, state, posterior, trajectory_arg):
        """One HMC / NUTS step (their kernels differ only in the trajectory argument)."""
        new, info = kernel(
            rng_key,
            state,
            _logdensity_fn(posterior),
            self.step_size,
            self.inverse_mass_matrix,
            trajectory_arg,
        )
        return self._finish(
            state,
            new,
            info,
            posterior,
            info.energy,
            info.num_integration_steps,
            info.is_divergent,
        )

    def _finish(self, state, new, info, posterior, energy, steps, divergent):
        loss = _loss_from_logdensity(posterior, state.position, state.logdensity)
        bad = divergent | ~jnp.isfinite(new.logdensity) | ~jnp.isfinite(loss)
        out = ExactInfo(
            loss,
            bad,
            jnp.asarray(info.acceptance_rate, loss.dtype),
            jnp.asarray(energy, loss.dtype),
            jnp.asarray(steps, jnp.int32),
        )
        return new, out


@dataclasses.dataclass(frozen=True)
class MALA(_Exact):
    """Metropolis-adjusted Langevin (BlackJAX ``mala``); ``step_size`` as in SGLD."""

    step_size: Array
    name = "mala"
    _blackjax = blackjax.mala

    def __post_init__(self):
        _validate.check_fields(self, positive=["step_size"])

    def step(self, rng_key: PRNGKey, state, posterior: TemperedPosterior):
        kernel = blackjax.mala.build_kernel()
        new, info = kernel(rng_key, state, _logdensity_fn(posterior), self.step_size)
        return self._finish(state, new, info, posterior, 0.0, 1, jnp.asarray(False))


@dataclasses.dataclass(frozen=True)
class HMC(_Exact):
    """Hamiltonian Monte Carlo with a fixed number of leapfrog steps (BlackJAX ``hmc``).

    ``inverse_mass_matrix`` is a flat vector (diagonal) over the raveled parameters.
    """

    step_size: Array
    inverse_mass_matrix: Array
    num_integration_steps: int = 16
    name = "hmc"

    def __post_init__(self):
        _validate.check_fields(
            self,
            positive=["step_size", "inverse_mass_matrix"],
            ints=["num_integration_steps"],
        )

    def step(self, rng_key: PRNGKey, state, posterior: TemperedPosterior):
        kernel = blackjax.hmc.build_kernel()
        return self._trajectory_step(
            kernel, rng_key, state, posterior, self.num_integration_steps
        )


@dataclasses.dataclass(frozen=True)
class NUTS(_Exact):
    """The No-U-Turn sampler (BlackJAX ``nuts``); tune it with :func:`window_adapt`."""

    step_size: Array
    inverse_mass_matrix: Array
    max_num_doublings: int = 10
    name = "nuts"
    _blackjax = blackjax.nuts

    def __post_init__(self):
        _validate.check_fields(
            self,
            positive=["step_size", "inverse_mass_matrix"],
            ints=["max_num_doublings"],
        )

    def step(self, rng_key: PRNGKey, state, posterior: TemperedPosterior):
        kernel = blackjax.nuts.build_kernel()
        return self._trajectory_step(
            kernel, rng_key, state, posterior, self.max_num_doublings
        )


for _cls, _data in (
    (MALA, ["step_size"]),
    (HMC, ["step_size", "inverse_mass_matrix"]),
    (NUTS, ["step_size", "inverse_mass_matrix"]),
):
    jax.tree_util.register_dataclass(
        _cls,
        data_fields=_data,
        meta_fields=[f.name for f in dataclasses.fields(_cls) if f.name not in _data],
    )


def window_adapt(
    rng_key: PRNGKey,
    sampler: HMC | NUTS,
    posterior: TemperedPosterior,
    position: PyTree,
    *,
    num_chains: int,
    num_steps: int = 1000,
    target_acceptance_rate: float = 0.8,
):
    """Stan-style window adaptation (BlackJAX ``window_adaptation``), one run per chain.

    Each chain adapts independently from ``position``; the chains' step sizes are pooled
    by their median and their diagonal inverse mass matrices by their mean, so every
    chain then samples the same kernel. Returns ``(tuned_sampler, positions)`` with
    ``positions`` carrying a leading chain axis (the adapted end points).
    """
    if not isinstance(sampler, (HMC, NUTS)):
        raise TypeError(
            f"window_adapt tunes HMC or NUTS, got {type(sampler).__name__}; for MALA "
            "use estimate_llc(sampler='mala'), which tunes its step size."
        )
    check_sampler_and_posterior(sampler, posterior)
    check_point(posterior, position, "position")
    num_chains = _validate.check_int("num_chains", num_chains)
    num_steps = _validate.check_int("num_steps", num_steps)
    if not 0 < target_acceptance_rate < 1:
        raise ValueError(
            "target_acceptance_rate must be in (0, 1), got "
            f"{target_acceptance_rate!r}; 0.8 is the usual choice."
        )
    algo = blackjax.nuts if isinstance(sampler, NUTS) else blackjax.hmc
    extra = {}
    if isinstance(sampler, HMC):
        extra["num_integration_steps"] = sampler.num_integration_steps
    else:
        extra["max_num_doublings"] = sampler.max_num_doublings

    def one(key):
        adapt = blackjax.window_adaptation(
            algo,
            _logdensity_fn(posterior),
            target_acceptance_rate=target_acceptance_rate,
            **extra,
        )
        (state, params), _ = adapt.run(key, position, num_steps=num_steps)
        return state.position, params["step_size"], params["inverse_mass_matrix"]

    keys = jax.random.split(rng_key, num_chains)
    positions, step_sizes, imms = jax.jit(jax.vmap(one))(keys)
    tuned = dataclasses.replace(
        sampler,
        step_size=jnp.median(step_sizes),
        inverse_mass_matrix=jnp.mean(imms, axis=0),
    )
    return tuned, positions


def default_inverse_mass_matrix(position: PyTree) -> Array:
    """A unit diagonal inverse mass matrix for the raveled ``position``."""
    flat, _ = ravel_pytree(position)
    return jnp.ones_like(flat)
