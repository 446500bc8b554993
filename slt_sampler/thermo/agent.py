r"""A variational free-energy (active-inference) agent on discrete POMDPs, in JAX.

One functional, three uses:

.. math::
    F[q] = \mathbb{E}_q[\log q(s) - \log p(o, s)]
         = \mathrm{KL}(q(s) \,\|\, p(s \mid o)) - \log p(o) = -\mathrm{ELBO}.

* **perceive** -- minimise F over beliefs (:func:`infer_states`, fixed-point or
  gradient descent, F reported at every iteration);
* **learn** -- minimise F over the model: Dirichlet counts ``pA``/``pB`` grow by the
  expected sufficient statistics, with a ``forgetting`` rate that decays them back
  towards their prior (for changing worlds);
* **act** -- choose the policy with the least expected free energy
  ``G = risk + ambiguity = -(pragmatic + epistemic)`` (:func:`expected_free_energy`),
  ``q(pi) = softmax(-policy_precision * G)``; the next action is the argmax
  (``selection="deterministic"``) or a sample from ``softmax(action_precision *
  log p(u))`` of the action marginal p(u) (``selection="sampled"``).

Kernel contract (as every ``thermo`` module): :func:`init` builds an
:class:`AgentState`; :func:`build_kernel` returns ``kernel(rng_key, state,
observation, params) -> (AgentState, AgentInfo)``. :func:`rollout` is the jitted
driver: agent and environment step together in a ``lax.scan`` over time of a ``vmap``
over agents, compiled once per (shapes, policy set, static options); a second call
does not re-trace, and every number in :class:`AgentParams` can change without a
recompile.

Examples
--------
>>> import jax
>>> from slt_sampler.thermo import agent as ag
>>> task = ag.tmaze()
>>> state = ag.init(ag.generative_model(task.A, task.B, task.C, task.D))
>>> policies = ag.enumerate_policies((4, 1), 2)  # 16 two-step policies
>>> final, traj = ag.rollout(jax.random.key(0), state, task.env, ag.AgentParams(),
...                          policies, num_agents=4, num_steps=3)
>>> [int(x) for x in traj.env_state[:, 1, 0]]  # every agent visits the cue (1) first
[1, 1, 1, 1]

Reversal speed (documented and tested, ``tests/thermo/test_agent.py``), on
:func:`reversal_bandit` with contingencies 0.85 / 0.15:

* ``agent_model="contingency"`` (Dirichlet learning of A, learning rate 1, reversal
  after 500 trials): with ``forgetting=0.1``, 95% of agents switch to the newly better
  arm within **15 trials** and all within 25 (2048 agents: median 7, 95th percentile
  11, max 20); without forgetting the counts of the 500 pre-reversal trials must be
  outweighed first -- median > 150 trials (the sluggishness reported as pymdp #82);
* ``agent_model="context"`` (state inference, reversal after 100 trials): with context
  ``volatility=0.05`` in B, q(reversed context) passes 0.5 within **10 trials** for
  95% of agents and within 15 for all (2048 agents: median 1, 95th percentile 4, max
  9; the price is ~3% false alarms before the reversal); with volatility 0 it takes
  20-50 trials -- bounded only because beliefs are floored at 1e-16; exact Bayes would
  need about as many trials as preceded the switch.

Float32 is the default. F is computed in the arrays' dtype: with |F| of order 10 the
float32 spacing is ~1e-6, so monotonicity checks at 1e-6 need float64 for larger F
(pass float64 arrays inside a ``with jax.enable_x64(True):`` block).

Naming: ``G`` is the expected free energy (pymdp's ``neg_efe`` is ``-G``); precisions
are ``policy_precision`` (pymdp ``gamma``) and ``action_precision`` (pymdp ``alpha``).
The continuous (amortised, Gaussian) variant lives in :mod:`._agent_gaussian` and is
re-exported here.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._agent_envs import (
    Environment as Environment,
)
from ._agent_envs import (
    TaskSpec as TaskSpec,
)
from ._agent_envs import check_environment
from ._agent_envs import (
    env_reset as env_reset,
)
from ._agent_envs import (
    env_step as env_step,
)
from ._agent_envs import (
    maze5 as maze5,
)
from ._agent_envs import (
    reversal_bandit as reversal_bandit,
)
from ._agent_envs import (
    sample_categorical as sample_categorical,
)
from ._agent_envs import (
    tmaze as tmaze,
)
from ._agent_gaussian import (
    GaussianFreeEnergy as GaussianFreeEnergy,
)
from ._agent_gaussian import (
    LinearGaussianModel as LinearGaussianModel,
)
from ._agent_gaussian import (
    Recognition as Recognition,
)
from ._agent_gaussian import (
    fit_amortised as fit_amortised,
)
from ._agent_gaussian import (
    gaussian_free_energy as gaussian_free_energy,
)
from ._agent_gaussian import (
    linear_gaussian_posterior as linear_gaussian_posterior,
)
from ._agent_infer import METHODS
from ._agent_infer import (
    InferenceResult as InferenceResult,
)
from ._agent_infer import (
    exact_posterior as exact_posterior,
)
from ._agent_infer import (
    infer_states as infer_states,
)
from ._agent_infer import (
    joint_beliefs as joint_beliefs,
)
from ._agent_infer import (
    log_likelihood as log_likelihood,
)
from ._agent_infer import (
    variational_free_energy as variational_free_energy,
)
from ._agent_kernel import (
    AgentInfo as AgentInfo,
)
from ._agent_kernel import (
    AgentParams as AgentParams,
)
from ._agent_kernel import (
    AgentState as AgentState,
)
from ._agent_kernel import (
    GenerativeModel as GenerativeModel,
)
from ._agent_kernel import (
    Trajectory as Trajectory,
)
from ._agent_kernel import (
    build_kernel as build_kernel,
)
from ._agent_kernel import (
    check_params,
    check_state,
)
from ._agent_kernel import (
    generative_model as generative_model,
)
from ._agent_kernel import (
    init as init,
)
from ._agent_plan import (
    EFETerms as EFETerms,
)
from ._agent_plan import (
    PlanningArrays as PlanningArrays,
)
from ._agent_plan import (
    action_marginals as action_marginals,
)
from ._agent_plan import (
    all_policies_efe as all_policies_efe,
)
from ._agent_plan import (
    enumerate_policies as enumerate_policies,
)
from ._agent_plan import (
    expected_free_energy as expected_free_energy,
)
from ._agent_plan import (
    planning_arrays as planning_arrays,
)
from ._agent_plan import (
    policies_risk_ambiguity as policies_risk_ambiguity,
)
from ._agent_plan import (
    policy_posterior as policy_posterior,
)
from ._agent_tree import (
    PolicyTree as PolicyTree,
)
from ._agent_tree import (
    policy_tree as policy_tree,
)
from ._agent_tree import (
    tree_risk_ambiguity as tree_risk_ambiguity,
)
from ._agent_validate import check_policies
from ._checks import check_choice, check_int, check_key

__all__ = [
    "AgentInfo",
    "AgentParams",
    "AgentState",
    "EFETerms",
    "Environment",
    "GaussianFreeEnergy",
    "GenerativeModel",
    "InferenceResult",
    "LinearGaussianModel",
    "PlanningArrays",
    "PolicyTree",
    "Recognition",
    "TaskSpec",
    "Trajectory",
    "action_marginals",
    "all_policies_efe",
    "build_kernel",
    "enumerate_policies",
    "env_reset",
    "env_step",
    "exact_posterior",
    "expected_free_energy",
    "fit_amortised",
    "gaussian_free_energy",
    "generative_model",
    "infer_states",
    "init",
    "joint_beliefs",
    "linear_gaussian_posterior",
    "log_likelihood",
    "maze5",
    "planning_arrays",
    "policies_risk_ambiguity",
    "policy_posterior",
    "policy_tree",
    "reversal_bandit",
    "rollout",
    "sample_categorical",
    "tmaze",
    "tree_risk_ambiguity",
    "variational_free_energy",
]

Array = jax.Array


@partial(
    jax.jit,
    static_argnames=(
        "policies",
        "num_agents",
        "num_steps",
        "num_iter",
        "inference",
        "selection",
    ),
)
def _rollout(
    rng_key,
    state,
    env,
    params,
    policies,
    *,
    num_agents,
    num_steps,
    num_iter,
    inference,
    selection,
):
    kernel = build_kernel(
        np.asarray(policies),
        num_iter=num_iter,
        inference=inference,
        selection=selection,
    )

    def body(carry, xs):  # one time step for every agent: scan(vmap(step))
        agent_state, env_state, obs = carry
        t, k = xs
        ka, ke = jnp.split(jax.vmap(jax.random.split)(k), 2, axis=1)
        agent_state, info = jax.vmap(kernel, in_axes=(0, 0, 0, None))(
            ka[:, 0], agent_state, obs, params
        )
        nxt_state, nxt_obs = jax.vmap(env_step, in_axes=(0, None, 0, 0, None))(
            ke[:, 0], env, env_state, agent_state.action, t
        )
        rec = Trajectory(env_state, obs, agent_state.action, agent_state.beliefs, info)
        return (agent_state, nxt_state, nxt_obs), rec

    k0, kloop = jax.random.split(rng_key)
    env_state, obs = jax.vmap(env_reset, in_axes=(0, None))(
        jax.random.split(k0, num_agents), env
    )
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_agents,) + x.shape), state)
    keys = jax.random.split(kloop, (num_steps, num_agents))
    (final, _, _), traj = jax.lax.scan(
        body, (states, env_state, obs), (jnp.arange(num_steps), keys)
    )
    # time-major -> (agent, time, ...)
    return final, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj)


def rollout(
    rng_key: Array,
    state: AgentState,
    env: Environment,
    params: AgentParams,
    policies: Array,
    *,
    num_agents: int,
    num_steps: int,
    num_iter: int = 8,
    inference: str = "fpi",
    selection: str = "deterministic",
) -> tuple[AgentState, Trajectory]:
    """Run ``num_agents`` independent agent-environment loops for ``num_steps`` steps.

    Each step: observe, perceive, learn, plan, act, then the environment moves. All
    agents start from ``state`` (e.g. :func:`init`) and draw their own keys and
    hidden states. One ``jax.jit`` around a ``lax.scan`` over time whose body is the
    kernel and the environment step ``vmap``-ed over agents; compiled once per
    (shapes, policy set, static options). ``policies`` must be concrete (numpy): it is
    turned into a static prefix tree so shared policy prefixes are evaluated once.

    Returns the final (batched) :class:`AgentState` and a :class:`Trajectory`.

    Raises
    ------
    TypeError, ValueError
        Before anything is compiled, naming the argument: ``num_agents``,
        ``num_steps`` or ``num_iter`` not an int >= 1; unknown ``inference`` /
        ``selection``; ``params`` outside their ranges (e.g. a negative or NaN
        ``policy_precision``, ``forgetting`` outside [0, 1], a negative learning
        rate); policies outside ``[0, num_controls)``; an environment whose
        controls or outcomes do not match the agent's.
    """
    _check_rollout_options(num_agents, num_steps, num_iter, inference, selection)
    check_key("rollout", "rng_key", rng_key)
    check_params("rollout", params)
    _, nc = check_state("rollout", state)
    check_environment("rollout", env)
    policies = check_policies("rollout", policies, nc).astype(np.int32)
    env_nc = tuple(b.shape[2] for b in env.B)
    env_no = tuple(a.shape[0] for a in env.A)
    agent_no = tuple(a.shape[0] for a in state.pA)
    if env_nc != nc or env_no != agent_no:
        raise ValueError(
            f"rollout: env has controls {env_nc} / outcomes {env_no} but "
            f"the agent has {nc} / {agent_no} (B[f] axis 2 / A[m] axis 0); "
            "they must match (hidden-state counts may differ)."
        )
    params = AgentParams(
        *(jnp.asarray(p, jnp.float32) for p in params)
    )  # one cache key
    # Static (hashable) copy: equal policy sets hit the same compiled executable.
    policies = tuple(tuple(tuple(step) for step in pol) for pol in policies.tolist())
    return _rollout(
        rng_key,
        state,
        env,
        params,
        policies,
        num_agents=num_agents,
        num_steps=num_steps,
        num_iter=num_iter,
        inference=inference,
        selection=selection,
    )


def _check_rollout_options(num_agents, num_steps, num_iter, inference, selection):
    check_int("rollout", "num_agents", num_agents, fix="Use e.g. num_agents=16.")
    check_int("rollout", "num_steps", num_steps, fix="Run at least one step.")
    check_int("rollout", "num_iter", num_iter, fix="Use e.g. num_iter=8.")
    check_choice("rollout", "inference", inference, METHODS)
    check_choice("rollout", "selection", selection, ("deterministic", "sampled"))
