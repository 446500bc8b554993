"""Generative processes (environments) for the active-inference agent: the T-maze, a
5-location maze that needs a 3-step horizon, and a two-armed reversal-learning task.

An :class:`Environment` is the true POMDP: the same array layout as the agent's model
(``A``, ``B``, ``D``), plus an optional switch: at time ``switch_time`` the hidden state
moves with ``switch_B`` instead of ``B`` (a context reversal). ``switch_time = -1``
disables it. Environments are pure pytrees, so they ``vmap`` and ``jit``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Outcome indices shared by every task built here.
NULL, REWARD, PUNISHMENT = 0, 1, 2
CUE_LEFT, CUE_RIGHT = 1, 2


class Environment(NamedTuple):
    """True generative process. ``A``/``B``/``D`` follow the agent's conventions."""

    A: tuple
    B: tuple
    D: tuple
    switch_time: Array
    switch_B: tuple


class TaskSpec(NamedTuple):
    """A ready-made task: the agent's model arrays, the environment and metadata.

    ``labels`` names the location indices (``"cue"``, ``"left"``, ``"right"``, ...);
    ``correct_arm`` maps a context index to its rewarded location. ``pA`` (or None)
    are initial Dirichlet counts for tasks whose agent must learn A.
    """

    A: tuple
    B: tuple
    C: tuple
    D: tuple
    env: Environment
    labels: dict
    correct_arm: tuple
    pA: tuple | None = None


def sample_categorical(u: Array, probs: Array) -> Array:
    """Inverse-CDF draw from ``probs`` (last axis) with a uniform ``u``: one uniform per
    draw, so a whole environment step costs one call to the PRNG (cheap to compile)."""
    cdf = jnp.cumsum(probs, axis=-1)
    idx = jnp.sum((cdf < u[..., None] * cdf[..., -1:]).astype(jnp.int32), axis=-1)
    return jnp.minimum(idx, probs.shape[-1] - 1)


def env_reset(rng_key: Array, env: Environment) -> tuple[Array, tuple]:
    """Sample the initial hidden state (int per factor) and the first observation."""
    u = jax.random.uniform(rng_key, (len(env.D) + len(env.A),))
    state = jnp.stack([sample_categorical(u[f], d) for f, d in enumerate(env.D)])
    return state, env_observe(u[len(env.D) :], env, state)


def env_observe(u: Array, env: Environment, state: Array) -> tuple:
    """Sample one outcome per modality from ``A[m][:, *state]`` with uniforms ``u``."""
    idx = tuple(state[f] for f in range(state.shape[0]))
    return tuple(
        sample_categorical(u[m], a[(slice(None),) + idx]) for m, a in enumerate(env.A)
    )


def env_step(rng_key: Array, env: Environment, state: Array, action: Array, t: Array):
    """Move the hidden state with ``action`` (int per factor) at time ``t`` -> the
    transition into time ``t + 1``; returns ``(new_state, observation)``."""
    num_factors = len(env.B)
    u = jax.random.uniform(rng_key, (num_factors + len(env.A),))
    switching = t + 1 == env.switch_time
    new = []
    for f, (b, sb) in enumerate(zip(env.B, env.switch_B)):
        probs = jnp.where(
            switching, sb[:, state[f], action[f]], b[:, state[f], action[f]]
        )
        new.append(sample_categorical(u[f], probs))
    new_state = jnp.stack(new)
    return new_state, env_observe(u[num_factors:], env, new_state)


# --------------------------------------------------------------------------- builders


def _maze(
    num_locations: int,
    adjacency: list[tuple[int, int]],
    cue_location: int,
    arms: tuple[int, int],
    cue_validity: float,
    reward_probability: float,
    preferences: tuple[float, float],
) -> tuple:
    """Location x context maze; action ``u`` = "go to location u" if adjacent (or the
    current one), else stay. Arms are absorbing. Returns A, B, C, D (numpy)."""
    adj = np.eye(num_locations, dtype=bool)
    for i, j in adjacency:
        adj[i, j] = adj[j, i] = True
    b_loc = np.zeros((num_locations, num_locations, num_locations))
    for s in range(num_locations):
        for u in range(num_locations):
            target = s if (s in arms or not adj[s, u]) else u
            b_loc[target, s, u] = 1.0
    b_ctx = np.eye(2)[:, :, None]
    a_loc = np.eye(num_locations)[:, :, None] * np.ones((1, 1, 2))
    a_rew = np.zeros((3, num_locations, 2))
    a_rew[NULL] = 1.0
    for ctx, arm in enumerate(arms):
        for c in range(2):
            p = reward_probability if c == ctx else 1.0 - reward_probability
            a_rew[:, arm, c] = [0.0, p, 1.0 - p]
    a_cue = np.zeros((3, num_locations, 2))
    a_cue[NULL] = 1.0
    a_cue[:, cue_location, 0] = [0.0, cue_validity, 1.0 - cue_validity]
    a_cue[:, cue_location, 1] = [0.0, 1.0 - cue_validity, cue_validity]
    C = (np.zeros(num_locations), np.array([0.0, *preferences]), np.zeros(3))
    D = (np.eye(num_locations)[0], np.full(2, 0.5))
    return (a_loc, a_rew, a_cue), (b_loc, b_ctx), C, D


def _as_task(A, B, C, D, env_D, labels, arms, switch_time=-1, switch_B=None):
    f32 = lambda xs: tuple(jnp.asarray(x, jnp.float32) for x in xs)
    env = Environment(
        f32(A),
        f32(B),
        f32(env_D),
        jnp.asarray(switch_time, jnp.int32),
        f32(B if switch_B is None else switch_B),
    )
    return TaskSpec(f32(A), f32(B), f32(C), f32(D), env, labels, arms)


def tmaze(
    *,
    cue_validity: float = 0.95,
    reward_probability: float = 0.98,
    preferences: tuple[float, float] = (2.0, -3.0),
) -> TaskSpec:
    """The T-maze. Locations 0 centre (start), 1 cue, 2 left arm, 3 right arm (arms
    absorbing, any move allowed in one step); contexts 0 = left rewarded, 1 = right.
    Modalities: location (4), reward (null, reward, punishment), cue (null, left,
    right). ``preferences`` are C for (reward, punishment), null = 0. The context is
    drawn uniformly per episode."""
    edges = [(i, j) for i in range(4) for j in range(4) if i < j]
    A, B, C, D = _maze(
        4, edges, 1, (2, 3), cue_validity, reward_probability, preferences
    )
    labels = {"centre": 0, "cue": 1, "left": 2, "right": 3}
    return _as_task(A, B, C, D, D, labels, (2, 3))


def maze5(
    *,
    cue_validity: float = 0.95,
    reward_probability: float = 0.98,
    preferences: tuple[float, float] = (2.0, -3.0),
) -> TaskSpec:
    """5-location maze with adjacent moves only: centre(0)-cue(1),
    centre(0)-junction(2),
    junction(2)-left(3), junction(2)-right(4). From the cue an arm is 3 moves away
    (cue -> centre -> junction -> arm), so a 2-step planning horizon cannot see any
    reward after visiting the cue. Actions: "go to location u" (5 actions)."""
    edges = [(0, 1), (0, 2), (2, 3), (2, 4)]
    A, B, C, D = _maze(
        5, edges, 1, (3, 4), cue_validity, reward_probability, preferences
    )
    labels = {"centre": 0, "cue": 1, "junction": 2, "left": 3, "right": 4}
    return _as_task(A, B, C, D, D, labels, (3, 4))


def reversal_bandit(
    *,
    reward_probabilities: tuple[float, float] = (0.85, 0.15),
    switch_time: int = -1,
    agent_model: str = "context",
    volatility: float = 0.0,
    preferences: tuple[float, float] = (2.0, -3.0),
) -> TaskSpec:
    """Two-armed reversal-learning task.

    World: locations 0 left arm, 1 right arm (action u = go to arm u, free moves);
    context 0 (left pays with ``reward_probabilities[0]``, right with ``[1]``) then, at
    ``switch_time`` (-1: never), context 1 (swapped). Modalities: location (2),
    outcome (0 reward, 1 no reward). The agent starts at the left arm.

    ``agent_model="context"``: the agent knows both contexts' contingencies, starts
    with a uniform context belief and assumes context volatility ``volatility``
    (``B_ctx = [[1-v, v], [v, 1-v]]``): reversal = state inference.
    ``agent_model="contingency"``: the agent has one context and must learn the
    outcome likelihood from flat Dirichlet counts ``TaskSpec.pA`` (ones): reversal =
    parameter learning, where :class:`AgentParams` ``forgetting`` sets the speed.
    """
    p_hi, p_lo = reward_probabilities
    a_loc = np.eye(2)[:, :, None] * np.ones((1, 1, 2))
    a_out = np.zeros((2, 2, 2))
    for ctx in range(2):
        for arm in range(2):
            p = p_hi if arm == ctx else p_lo
            a_out[:, arm, ctx] = [p, 1.0 - p]
    b_loc = np.zeros((2, 2, 2))
    for u in range(2):
        b_loc[u, :, u] = 1.0
    C = (np.zeros(2), np.asarray(preferences, float))
    start = np.array([1.0, 0.0])
    env = Environment(
        *(
            tuple(jnp.asarray(x, jnp.float32) for x in xs)
            for xs in (
                (a_loc, a_out),
                (b_loc, np.eye(2)[:, :, None]),
                (start, np.eye(2)[0]),
            )
        ),
        jnp.asarray(switch_time, jnp.int32),
        (
            jnp.asarray(b_loc, jnp.float32),
            jnp.asarray([[[0.0], [1.0]], [[1.0], [0.0]]]),
        ),
    )
    if agent_model == "context":
        v = volatility
        b_ctx = np.array([[1 - v, v], [v, 1 - v]])[:, :, None]
        A, B, D, pA = (a_loc, a_out), (b_loc, b_ctx), (start, np.full(2, 0.5)), None
    elif agent_model == "contingency":
        A = (np.eye(2)[:, :, None], np.full((2, 2, 1), 0.5))
        B, D = (b_loc, np.ones((1, 1, 1))), (start, np.ones(1))
        pA = (jnp.asarray(A[0], jnp.float32), jnp.ones((2, 2, 1), jnp.float32))
    else:
        raise ValueError(
            f"reversal_bandit: agent_model={agent_model!r}; use "
            "'context' or 'contingency'."
        )
    f32 = lambda xs: tuple(jnp.asarray(x, jnp.float32) for x in xs)
    return TaskSpec(
        f32(A), f32(B), f32(C), f32(D), env, {"left": 0, "right": 1}, (0, 1), pA
    )
