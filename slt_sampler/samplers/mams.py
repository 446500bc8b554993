"""Metropolis-adjusted microcanonical sampler (MAMS) on a :class:`TemperedPosterior`.

MAMS (Robnik, Cohn-Gordon & Seljak 2025, "Metropolis Adjusted Microcanonical
Hamiltonian Monte Carlo", arXiv:2503.01707) integrates the isokinetic (microcanonical)
dynamics with a fixed-speed velocity, draws a fresh unit velocity at every proposal and
accepts or rejects the trajectory with a Metropolis test, so it is exact up to
Monte-Carlo error like MALA, HMC and NUTS. This is BlackJAX's
``adjusted_mclmc_dynamic`` kernel (varied trajectory lengths, McLachlan integrator,
diagonal preconditioning) behind the project's sampler contract, tuned by BlackJAX's
``adjusted_mclmc_find_L_and_step_size``. It serves as the fast exact reference against
which stochastic-gradient LLC estimates are checked; ``benchmarks/exact_reference.py``
measures its effective samples of ``nL_n`` per second against MALA and NUTS.

**Trajectory lengths** vary from proposal to proposal around their average (which
avoids resonances), along a quasi-random Halton sequence in the step index (BlackJAX's
``trajectory_length``; the index restarts at every :func:`~slt_sampler.sample` call),
so at each step every chain integrates for the same number of steps. With independent
random lengths, chains vectorised by ``vmap`` run in lockstep until the longest of
them finishes: at 8 chains about 1.8 times the average length, and a step cost 1.7-1.9
times as much (measured on deep linear networks of 82,500 and 8,500 parameters at 32
steps per proposal). Each step is still a Metropolis-adjusted kernel that leaves the
target invariant, and the chains, sharing only the lengths, stay independent given
them.

**Rounding.** The energy error that the Metropolis test sees includes the kinetic
energy change of the isokinetic velocity updates, ``(d − 1)·(δ + log(1 −
(1 − p)(1 − ζ²)/2))`` per update (δ = ε·c·|∇log p|/(d − 1) for the update's
fraction c of the step ε, ζ = exp(−δ), p the velocity's projection on the gradient
direction, all in the preconditioned frame). BlackJAX (1.7) evaluates it as a
difference of two logs near log 2, with an unrounded δ beside a rounded ζ; in
float32 each is off by up to an ulp, and the factor d − 1 makes that up to ~0.003
per update at d ≈ 10⁵. Along a trajectory of hundreds of updates, whose
velocity and gradient change slowly, these errors add up to an energy error of order
one. On the 87,100-parameter depth-5 DLN of studies/llc_at_scale, in float32, three
of four chains near w* accepted 0.52-0.61 of their proposals at ε = 0.0062
(0.33-0.37 with twice the trajectory) but 0.91-1.00 at 0.0124, where float64
accepted 1.00 at both. The integrator here (:func:`_esh_momentum_update`) computes
the same change with ``log1p`` and with δ taken from the rounded ζ, within ~2·10⁻⁵
of float64 per update at that size, and those chains then accepted 0.99-1.00 at
0.0062 in float32.
"""

from __future__ import annotations

import dataclasses
import math

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.mcmc import adjusted_mclmc_dynamic as _amd
from blackjax.mcmc import integrators
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior
from ..types import Array, PRNGKey, PyTree
from .hmc import _Exact, _logdensity_fn
from .run import check_sampler_and_posterior


def _esh_momentum_update(inverse_mass_matrix=1.0):
    """BlackJAX's ESH momentum update (``esh_dynamics_momentum_update_one_step``,
    diagonal preconditioner) with its kinetic-energy change computed without
    cancellation (module docstring, **Rounding**).

    With unit velocity u, unit gradient direction e (whitened), p = u·e,
    δ = ε·c·|g|/(d − 1) and ζ = exp(−δ), the update's kinetic-energy change is
    ``(d − 1)·(δ + log(1 − (1 − p)(1 − ζ²)/2))``. BlackJAX evaluates it as
    ``(d − 1)·(δ − log 2 + log(s₊(1 − ζ²) + 2ζ²))``: the difference of two logs near
    log 2 and an unrounded δ beside a rounded ζ, each off by up to a float32 ulp,
    times d − 1. Here δ is recomputed from the rounded ζ (``−log1p(−(1 − ζ))``,
    ``1 − ζ`` exact), so the energy matches the kick actually applied, and the log
    is a ``log1p`` of a small number."""
    sqrt_imm = jnp.sqrt(inverse_mass_matrix)

    def update(
        momentum,
        logdensity_grad,
        step_size,
        coef,
        previous_kinetic_energy_change=None,
        is_last_call=False,
    ):
        del is_last_call
        flat_grad, unravel_fn = ravel_pytree(logdensity_grad)
        flat_grad = flat_grad * sqrt_imm
        flat_momentum, _ = ravel_pytree(momentum)
        dims = flat_momentum.shape[0]
        e, grad_norm = integrators._normalized_flatten_array(flat_grad)
        proj = jnp.dot(flat_momentum, e)
        zeta = jnp.exp(-step_size * coef * grad_norm / (dims - 1))
        one_minus_zeta = 1 - zeta  # exact in floating point (Sterbenz)
        delta = -jnp.log1p(-one_minus_zeta)  # the δ of the rounded ζ
        raw = e * one_minus_zeta * (1 + zeta + proj * one_minus_zeta) + 2 * zeta * (
            flat_momentum
        )
        new_momentum, _ = integrators._normalized_flatten_array(raw)
        one_minus_zeta2 = one_minus_zeta * (1 + zeta)
        kinetic = (delta + jnp.log1p(-0.5 * (1 - proj) * one_minus_zeta2)) * (dims - 1)
        if previous_kinetic_energy_change is not None:
            kinetic += previous_kinetic_energy_change
        return (
            unravel_fn(new_momentum),
            unravel_fn(new_momentum * sqrt_imm),
            kinetic,
        )

    return update


def _isokinetic_mclachlan(logdensity_fn, inverse_mass_matrix=1.0):
    """BlackJAX's ``isokinetic_mclachlan`` with :func:`_esh_momentum_update`."""
    return integrators.generalized_two_stage_integrator(
        _esh_momentum_update(inverse_mass_matrix),
        integrators.euclidean_position_update_fn(logdensity_fn),
        integrators.mclachlan_coefficients,
        format_output_fn=integrators.format_isokinetic_state_output,
    )


# BlackJAX's tuner draws its own (random) lengths; sampling uses the shared sequence
_TUNING_KERNEL = _amd.build_kernel(
    integration_steps_fn=_amd.make_random_trajectory_length_fn(True),
    integrator=_isokinetic_mclachlan,
)
_KERNEL = _amd.build_kernel(
    integration_steps_fn=_amd.trajectory_length,  # Halton in the step index
    next_random_arg_fn=lambda i: i + 1,
    integrator=_isokinetic_mclachlan,
)


@dataclasses.dataclass(frozen=True)
class MAMS(_Exact):
    """Metropolis-adjusted microcanonical sampler; tune it with :func:`tune_mams`.

    Attributes
    ----------
    step_size : Array
        Integrator step (in the units of the preconditioned parameters).
    num_integration_steps : Array
        *Average* number of integrator steps per proposal, L / step_size; the
        lengths vary around it along a Halton sequence in the step index, the same
        for every chain (module docstring). Traced, so a retuned sampler reuses the
        compiled run.
    inverse_mass_matrix : Array
        Diagonal preconditioner over the raveled parameters (1 = none).

    ``info.num_integration_steps`` counts gradient evaluations per step (McLachlan's
    integrator costs two per integrator step).
    """

    step_size: Array
    num_integration_steps: Array
    inverse_mass_matrix: Array
    name = "mams"

    def __post_init__(self):
        _validate.check_fields(
            self, positive=["step_size", "num_integration_steps", "inverse_mass_matrix"]
        )

    def init(self, position: PyTree, posterior: TemperedPosterior, rng_key=None):
        del rng_key  # the lengths follow the step index, which starts at 0
        _check_mass_matrix(self.inverse_mass_matrix, position)
        return _amd.init(position, _logdensity_fn(posterior), jnp.zeros((), jnp.int32))

    def step(self, rng_key: PRNGKey, state, posterior: TemperedPosterior):
        new, info = _KERNEL(
            rng_key,
            state,
            _logdensity_fn(posterior),
            self.step_size,
            inverse_mass_matrix=self.inverse_mass_matrix,
            integration_steps_params=(self.num_integration_steps,),
        )
        return self._finish(
            state,
            new,
            info,
            posterior,
            info.energy,
            2 * info.num_integration_steps,
            info.is_divergent,
        )


def _check_mass_matrix(inverse_mass_matrix, position) -> None:
    """Shapes only (static, so this also runs on tracers): a scalar or a diagonal of
    one entry per raveled parameter."""
    d = sum(int(np.size(x)) for x in jax.tree.leaves(position))
    shape = np.shape(inverse_mass_matrix)
    if shape not in ((), (d,)):
        raise ValueError(
            f"inverse_mass_matrix (in MAMS) must be a scalar or a diagonal of shape "
            f"({d},), one entry per raveled parameter, got shape {shape}. Tune it "
            f"with tune_mams or pass jnp.ones({d})."
        )


jax.tree_util.register_dataclass(
    MAMS,
    data_fields=["step_size", "num_integration_steps", "inverse_mass_matrix"],
    meta_fields=[],
)


def tune_mams(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    position: PyTree,
    *,
    num_chains: int,
    num_steps: int = 2000,
    target_acceptance_rate: float = 0.9,
    num_integration_steps: float = 2.0,
):
    """Tune step size, trajectory length and diagonal preconditioner of :class:`MAMS`.

    Runs BlackJAX's ``adjusted_mclmc_find_L_and_step_size`` (dual averaging of the
    step towards ``target_acceptance_rate``, preconditioner from the chain's variance)
    independently in each chain from ``position``. As in
    :func:`~slt_sampler.samplers.hmc.window_adapt`, step sizes are pooled by their
    median and preconditioners by their mean, so every chain samples one kernel.
    ``num_steps`` is the length of the run the tuning is sized for; the tuner itself
    spends a fraction (about a fifth) of it. ``num_integration_steps`` is the average
    trajectory length in steps (BlackJAX's recommended 2 for high dimension).

    Returns ``(sampler, positions)``, positions with a leading chain axis (each
    chain's state after tuning, a warm start for :func:`~slt_sampler.sample` with
    ``chains_axis=True``).
    """
    _validate.check_key("rng_key", rng_key)
    check_sampler_and_posterior(MAMS(1.0, 1.0, 1.0), posterior)
    check_point(posterior, position, "position")
    num_chains = _validate.check_int("num_chains", num_chains)
    num_steps = _validate.check_int("num_steps", num_steps, minimum=100)
    _validate.check_unit_interval(
        "target_acceptance_rate",
        target_acceptance_rate,
        "0.9 is the MAMS authors' choice.",
    )
    _validate.check_scalar(
        "num_integration_steps", num_integration_steps, "2 is the robust default."
    )
    if not 1.1 < float(num_integration_steps) < math.inf:
        raise ValueError(
            "num_integration_steps must be finite and exceed 1.1 (BlackJAX's tuner "
            f"floor), got "
            f"{num_integration_steps!r}; 2 is the robust default."
        )
    logdensity = _logdensity_fn(posterior)

    def one(key):
        k_init, k_tune = jax.random.split(key)
        state = _amd.init(position, logdensity, k_init)
        state, params, _ = blackjax.adjusted_mclmc_find_L_and_step_size(
            mclmc_kernel=_TUNING_KERNEL,
            logdensity_fn=logdensity,
            num_steps=num_steps,
            state=state,
            rng_key=k_tune,
            target=target_acceptance_rate,
            diagonal_preconditioning=True,
            target_num_integration_steps=num_integration_steps,
        )
        return state.position, params.step_size, params.inverse_mass_matrix

    keys = jax.random.split(rng_key, num_chains)
    positions, steps, imms = jax.jit(jax.vmap(one))(keys)
    dtype = jnp.result_type(posterior.beta)
    sampler = MAMS(
        step_size=jnp.median(steps).astype(dtype),
        num_integration_steps=jnp.asarray(num_integration_steps, dtype),
        inverse_mass_matrix=jnp.mean(imms, axis=0).astype(dtype),
    )
    return sampler, positions
