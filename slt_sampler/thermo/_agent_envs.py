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

from ._agent_validate import check_dist, check_likelihood, check_transitions
from ._checks import (
    MSG_RANGE,
    MSG_SHAPE,
    check_array,
    check_choice,
    check_int,
    check_key,
    check_real,
    check_sequence,
    check_type,
    is_concrete,
)

Array = jax.Array
AGENT_MODELS = ("context", "contingency")
_FIX_ENV = "Build it with tmaze(), maze5() or reversal_bandit() (use task.env)."
_MSG_STATE_RANGE = (
    "{fn}: {name}[{f}] = {value} is outside [0, {n}) for factor {f}; pass valid "
    "indices (e.g. the state returned by env_reset / env_step)."
)

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
    draw, so a whole environment step costs one call to the PRNG (cheap to compile).

    Raises ``ValueError``/``TypeError`` unless concrete ``u`` lies in [0, 1] and
    ``probs`` is a finite, non-negative array with a positive sum.
    """
    fn = "sample_categorical"
    check_real(fn, "u", u, low=0.0, high=1.0, fix="Draw it with jax.random.uniform.")
    probs = check_array(fn, "probs", probs)
    if jnp.ndim(probs) < 1 or jnp.ndim(u) > jnp.ndim(probs) - 1:
        raise ValueError(
            MSG_SHAPE.format(
                fn=fn,
                name="probs",
                want="(..., num_outcomes) with u of shape (...)",
                shape=tuple(jnp.shape(probs)),
                fix=f"u has shape {jnp.shape(u)}.",
            )
        )
    if is_concrete(probs):
        p = np.asarray(probs, np.float64)
        if np.any(p < 0) or np.any(p.sum(-1) <= 0):
            raise ValueError(
                MSG_RANGE.format(
                    fn=fn,
                    name="probs",
                    want="non-negative with a positive sum",
                    value=f"min {p.min():.3g}, min sum {p.sum(-1).min():.3g}",
                    fix="Pass (unnormalised) probabilities.",
                )
            )
    return _sample(u, probs)


def _sample(u: Array, probs: Array) -> Array:
    cdf = jnp.cumsum(probs, axis=-1)
    idx = jnp.sum((cdf < u[..., None] * cdf[..., -1:]).astype(jnp.int32), axis=-1)
    return jnp.minimum(idx, probs.shape[-1] - 1)


def env_reset(rng_key: Array, env: Environment) -> tuple[Array, tuple]:
    """Sample the initial hidden state (int per factor) and the first observation.

    Raises ``TypeError``/``ValueError`` for a bad key or environment."""
    check_key("env_reset", "rng_key", rng_key)
    check_environment("env_reset", env)
    u = jax.random.uniform(rng_key, (len(env.D) + len(env.A),))
    state = jnp.stack([_sample(u[f], d) for f, d in enumerate(env.D)])
    return state, env_observe(u[len(env.D) :], env, state)


def env_observe(u: Array, env: Environment, state: Array) -> tuple:
    """Sample one outcome per modality from ``A[m][:, *state]`` with uniforms ``u``."""
    idx = tuple(state[f] for f in range(state.shape[0]))
    return tuple(_sample(u[m], a[(slice(None),) + idx]) for m, a in enumerate(env.A))


def env_step(rng_key: Array, env: Environment, state: Array, action: Array, t: Array):
    """Move the hidden state with ``action`` (int per factor) at time ``t`` -> the
    transition into time ``t + 1``; returns ``(new_state, observation)``.

    Raises ``TypeError``/``ValueError`` for a bad key or environment, or a concrete
    ``state``/``action`` outside its factor's range."""
    fn = "env_step"
    check_key(fn, "rng_key", rng_key)
    num_states, num_controls = check_environment(fn, env)
    _check_indices(fn, "state", state, num_states)
    _check_indices(fn, "action", action, num_controls)
    check_array(fn, "t", t, kind="int", shape=(), fix="Pass the integer time step.")
    num_factors = len(env.B)
    u = jax.random.uniform(rng_key, (num_factors + len(env.A),))
    switching = t + 1 == env.switch_time
    new = []
    for f, (b, sb) in enumerate(zip(env.B, env.switch_B)):
        probs = jnp.where(
            switching, sb[:, state[f], action[f]], b[:, state[f], action[f]]
        )
        new.append(_sample(u[f], probs))
    new_state = jnp.stack(new)
    return new_state, env_observe(u[num_factors:], env, new_state)


def check_environment(fn: str, env) -> tuple:
    """``TypeError`` unless an :class:`Environment`; ``ValueError`` unless its arrays
    are distributions of matching shapes. Returns ``(num_states, num_controls)``."""
    check_type(fn, "env", env, Environment, "an Environment", _FIX_ENV)
    D = check_sequence(fn, "env.D", env.D, "initial-state distributions")
    if len(D) != len(env.B):
        raise ValueError(
            f"{fn}: env.D has {len(D)} factors but env.B has {len(env.B)}; give one "
            f"D[f] and B[f] per hidden-state factor. {_FIX_ENV}"
        )
    for f, d in enumerate(D):
        check_array(fn, f"env.D[{f}]", d, ndim=1, layout="(num_states,)")
        check_dist(fn, f"env.D[{f}]", d)
    num_states = tuple(jnp.shape(d)[0] for d in D)
    check_likelihood(fn, env.A, num_states, name="env.A")
    num_controls = check_transitions(fn, env.B, num_states, name="env.B")
    switch = check_transitions(fn, env.switch_B, num_states, name="env.switch_B")
    if switch != num_controls:
        raise ValueError(f"{fn}: env.switch_B must have the shapes of env.B.")
    check_array(fn, "env.switch_time", env.switch_time, kind="int", shape=())
    return num_states, num_controls


def _check_indices(fn, name, value, sizes):
    arr = check_array(fn, name, value, kind="int", shape=(len(sizes),))
    if not is_concrete(arr):
        return
    for f, (v, n) in enumerate(zip(np.asarray(arr).tolist(), sizes)):
        if not 0 <= v < n:
            raise ValueError(
                _MSG_STATE_RANGE.format(fn=fn, name=name, f=f, value=v, n=n)
            )


def _check_task_options(fn, cue_validity, reward_probability, preferences):
    for name, value in (
        ("cue_validity", cue_validity),
        ("reward_probability", reward_probability),
    ):
        check_real(fn, name, value, low=0.0, high=1.0, fix="It is a probability.")
    check_array(
        fn,
        "preferences",
        preferences,
        shape=(2,),
        fix="Give (reward, punishment) log-preferences, e.g. (2.0, -3.0).",
    )


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
    drawn uniformly per episode. Raises ``ValueError``/``TypeError`` for
    probabilities outside [0, 1] or non-finite preferences."""
    _check_task_options("tmaze", cue_validity, reward_probability, preferences)
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
    reward after visiting the cue. Actions: "go to location u" (5 actions).
    Raises like :func:`tmaze`."""
    _check_task_options("maze5", cue_validity, reward_probability, preferences)
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

    Raises ``ValueError``/``TypeError`` for probabilities or ``volatility`` outside
    [0, 1], ``switch_time`` not an int >= -1, an unknown ``agent_model`` or
    non-finite preferences.
    """
    fn = "reversal_bandit"
    check_choice(fn, "agent_model", agent_model, AGENT_MODELS)
    probs = check_array(fn, "reward_probabilities", reward_probabilities, shape=(2,))
    check_real(fn, "reward_probabilities", probs, low=0.0, high=1.0)
    check_int(fn, "switch_time", switch_time, minimum=-1, fix="-1 means never.")
    check_real(fn, "volatility", volatility, low=0.0, high=1.0)
    check_array(fn, "preferences", preferences, shape=(2,))
    p_hi, p_lo = (float(p) for p in np.asarray(probs))
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
    else:  # "contingency"
        A = (np.eye(2)[:, :, None], np.full((2, 2, 1), 0.5))
        B, D = (b_loc, np.ones((1, 1, 1))), (start, np.ones(1))
        pA = (jnp.asarray(A[0], jnp.float32), jnp.ones((2, 2, 1), jnp.float32))
    f32 = lambda xs: tuple(jnp.asarray(x, jnp.float32) for x in xs)
    return TaskSpec(
        f32(A), f32(B), f32(C), f32(D), env, {"left": 0, "right": 1}, (0, 1), pA
    )
