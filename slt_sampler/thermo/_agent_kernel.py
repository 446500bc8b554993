"""Agent kernel: model container, state, learning and the perceive-learn-plan-act step.

Public names are re-exported by :mod:`slt_sampler.thermo.agent`; see its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._agent_envs import _sample
from ._agent_infer import METHODS, infer_states
from ._agent_plan import action_marginals, planning_arrays, policy_posterior
from ._agent_tree import policy_tree, tree_risk_ambiguity
from ._agent_validate import check_observation, check_policies, validate_model
from ._checks import (
    check_array,
    check_choice,
    check_int,
    check_key,
    check_real,
    check_type,
    is_concrete,
)

Array = jax.Array
_SELECTIONS = ("deterministic", "sampled")
# (low, high, fix) of every AgentParams field; values are checked when concrete.
PARAM_RANGES = {
    "policy_precision": (0.0, None, "Use e.g. 16.0 (0 = uniform over policies)."),
    "action_precision": (0.0, None, "Use e.g. 16.0 (0 = uniform actions)."),
    "learning_rate_A": (0.0, None, "Use 0 (no learning) or e.g. 1.0."),
    "learning_rate_B": (0.0, None, "Use 0 (no learning) or e.g. 1.0."),
    "forgetting": (0.0, 1.0, "It is a per-step decay rate: 0 (none) .. 1."),
    "inference_step_size": (0.0, None, "Use e.g. 0.5 (must be > 0)."),
}
_MSG_COUNTS = (
    "init: {name}[{i}] must be finite, non-negative Dirichlet counts with a positive "
    "sum over axis 0 for every column; fix the entries of {name}[{i}]."
)
_MSG_COUNTS_LEN = (
    "init: {name} has {got} arrays but the model has {want}; give one count array "
    "per {unit}."
)


class GenerativeModel(NamedTuple):
    """Validated POMDP arrays (float32); see :mod:`._agent_infer` for the layout."""

    A: tuple
    B: tuple
    C: tuple
    D: tuple


class AgentParams(NamedTuple):
    """Numbers the kernel takes as traced arguments (``vmap``-able, no recompiles).

    policy_precision : inverse temperature of ``q(pi) = softmax(-precision * G)``.
    action_precision : sharpness of sampled actions, ``p(u) ∝ p_marginal(u) **
        action_precision`` (ignored by deterministic selection).
    learning_rate_A, learning_rate_B : scale of the Dirichlet count updates (0 = no
        learning).
    forgetting : per-step decay ``ω`` of counts towards their prior,
        ``p <- p0 + (1 - ω) (p - p0)``: memory of about ``1/ω`` steps (0 = static
        world).
    inference_step_size : step size of gradient-descent perception
        (``inference="gd"``; unused by the fixed-point iteration).
    """

    policy_precision: float | Array = 16.0
    action_precision: float | Array = 16.0
    learning_rate_A: float | Array = 0.0
    learning_rate_B: float | Array = 0.0
    forgetting: float | Array = 0.0
    inference_step_size: float | Array = 0.5


class AgentState(NamedTuple):
    """beliefs: posterior q(s_f) at the last observation; prior: predicted q(s_f) for
    the next observation; pA/pB: Dirichlet counts of the current model (A = pA
    normalised over axis 0); pA_prior/pB_prior: counts that forgetting decays to;
    C: log-preferences; action: last action per factor (int32); step: number of
    observations processed."""

    beliefs: tuple
    prior: tuple
    pA: tuple
    pB: tuple
    pA_prior: tuple
    pB_prior: tuple
    C: tuple
    action: Array
    step: Array


class AgentInfo(NamedTuple):
    """Per-step diagnostics: F at the posterior and at every inference iteration; the
    expected free energy ``G = risk + ambiguity`` of every policy (the pragmatic /
    epistemic split is in :func:`all_policies_efe`); q(pi); the action marginals."""

    free_energy: Array
    free_energy_trace: Array
    G: Array
    risk: Array
    ambiguity: Array
    q_pi: Array
    action_probs: tuple


class Trajectory(NamedTuple):
    """Output of :func:`rollout`, every field leading with ``(agent, time)``.

    env_state : ``(agents, T, num_factors)`` true hidden state at each observation.
    observation : tuple per modality of ``(agents, T)`` outcome indices.
    action : ``(agents, T, num_factors)`` action taken after each observation.
    beliefs : tuple per factor of ``(agents, T, num_states[f])`` posteriors.
    info : :class:`AgentInfo` with ``(agents, T, ...)`` leaves.
    """

    env_state: Array
    observation: tuple
    action: Array
    beliefs: tuple
    info: AgentInfo


def generative_model(A, B, C, D) -> GenerativeModel:
    """Check and convert a POMDP: normalised distributions, matching factor shapes.

    Raises ``ValueError`` naming the array, its index and the axis at fault.

    >>> A = [[[0.9, 0.2], [0.1, 0.8]]]
    >>> B = [[[[1.0], [0.0]], [[0.0], [1.0]]]]
    >>> m = generative_model(A, B,
    ...                      [[1.0, 0.0]], [[0.5, 0.5]])
    >>> m.A[0].shape, m.B[0].shape
    ((2, 2), (2, 2, 1))
    """
    A, B, C, D = validate_model(A, B, C, D)
    f32 = lambda xs: tuple(jnp.asarray(x, jnp.float32) for x in xs)
    return GenerativeModel(f32(A), f32(B), f32(C), f32(D))


def init(model: GenerativeModel, *, pA=None, pB=None) -> AgentState:
    """Initial agent state: beliefs and prior = D; counts pA/pB default to A/B
    themselves (so a learning rate of 1 would weigh one observation like the whole
    prior; pass explicit concentrations to learn).

    Raises ``TypeError`` unless ``model`` is a :class:`GenerativeModel` and
    ``ValueError`` for counts of the wrong shape, negative or non-finite."""
    check_type(
        "init",
        "model",
        model,
        GenerativeModel,
        "a GenerativeModel",
        "Build it with generative_model(A, B, C, D) (a TaskSpec is not a model).",
    )
    pA = model.A if pA is None else _check_counts("pA", pA, model.A)
    pB = model.B if pB is None else _check_counts("pB", pB, model.B)
    return AgentState(
        beliefs=tuple(model.D),
        prior=tuple(model.D),
        pA=pA,
        pB=pB,
        pA_prior=pA,
        pB_prior=pB,
        C=tuple(model.C),
        action=jnp.zeros(len(model.B), jnp.int32),
        step=jnp.zeros((), jnp.int32),
    )


def _check_counts(name, counts, ref):
    check_type("init", name, counts, tuple | list, "a tuple of arrays", "")
    if len(counts) != len(ref):
        unit = "modality" if name == "pA" else "factor"
        raise ValueError(
            _MSG_COUNTS_LEN.format(name=name, got=len(counts), want=len(ref), unit=unit)
        )
    counts = tuple(
        jnp.asarray(check_array("init", f"{name}[{i}]", c, finite=False), jnp.float32)
        for i, c in enumerate(counts)
    )
    for i, (c, r) in enumerate(zip(counts, ref, strict=True)):
        if c.shape != r.shape:
            raise ValueError(
                f"init: {name}[{i}] has shape {c.shape}; it must match the "
                f"model's {name[1]}[{i}] shape {r.shape}."
            )
        v = np.asarray(c)
        if not (np.all(np.isfinite(v)) and np.all(v >= 0) and np.all(v.sum(0) > 0)):
            raise ValueError(_MSG_COUNTS.format(name=name, i=i))
    return counts


def check_params(fn: str, params) -> None:
    """``TypeError`` unless an :class:`AgentParams`; ``ValueError`` for a concrete
    field outside its range (negative precision, ``forgetting`` outside [0, 1], ...)."""
    check_type(
        fn,
        "params",
        params,
        AgentParams,
        "an AgentParams",
        "Build it with AgentParams(policy_precision=..., ...).",
    )
    for field, (low, high, fix) in PARAM_RANGES.items():
        check_real(
            fn,
            f"params.{field}",
            getattr(params, field),
            low=low,
            high=high,
            low_open=field == "inference_step_size",
            fix=fix,
        )


def check_state(fn: str, state) -> tuple:
    """``TypeError`` unless an :class:`AgentState`; returns ``(num_obs,
    num_controls)`` read from its count arrays."""
    check_type(fn, "state", state, AgentState, "an AgentState", "Use init(model).")
    num_obs = tuple(a.shape[0] for a in state.pA)
    return num_obs, tuple(b.shape[2] for b in state.pB)


def _normalise(counts: tuple) -> tuple:
    return tuple(c / jnp.sum(c, axis=0, keepdims=True) for c in counts)


def _forget(p, p0, omega):
    return p0 + (1.0 - omega) * (p - p0)


def _learn_A(state: AgentState, observation, qs, params: AgentParams) -> tuple:
    qj = qs[0]
    for q in qs[1:]:
        qj = qj[..., None] * q.reshape((1,) * qj.ndim + q.shape)
    out = []
    for p, p0, o in zip(state.pA, state.pA_prior, observation):
        onehot = jax.nn.one_hot(o, p.shape[0], dtype=p.dtype)
        counts = onehot.reshape(onehot.shape + (1,) * qj.ndim) * qj[None]
        out.append(_forget(p, p0, params.forgetting) + params.learning_rate_A * counts)
    return tuple(out)


def _learn_B(state: AgentState, qs, params: AgentParams) -> tuple:
    has_prev = (state.step > 0).astype(qs[0].dtype)
    out = []
    for f, (p, p0) in enumerate(zip(state.pB, state.pB_prior)):
        u = jax.nn.one_hot(state.action[f], p.shape[2], dtype=p.dtype)
        counts = (qs[f][:, None] * state.beliefs[f][None, :])[:, :, None] * u[
            None, None
        ]
        rate = params.learning_rate_B * has_prev
        out.append(_forget(p, p0, params.forgetting) + rate * counts)
    return tuple(out)


def build_kernel(
    policies: Array,
    *,
    num_iter: int = 8,
    inference: str = "fpi",
    selection: str = "deterministic",
):
    """Agent kernel for a fixed policy set ``(num_policies, horizon, num_factors)``.

    ``kernel(rng_key, state, observation, params) -> (AgentState, AgentInfo)`` does
    perceive (``num_iter`` iterations of ``inference`` = "fpi" | "gd"), learn (Dirichlet
    updates of pA/pB with ``params`` rates and forgetting), plan (G of every policy)
    and act (``selection`` = "deterministic" | "sampled"). Never jits.

    Raises ``ValueError``/``TypeError`` for a bad policy array or option here, and,
    from ``kernel``, for a wrong state type, an out-of-range concrete observation or
    concrete ``params`` outside their ranges (traced values are not checked).
    """
    fn = "build_kernel"
    if not is_concrete(policies):
        raise TypeError(f"{fn}: policies must be concrete (numpy), got a tracer.")
    policies = check_policies(fn, policies)
    check_int(fn, "num_iter", num_iter, fix="Use e.g. num_iter=8.")
    check_choice(fn, "inference", inference, METHODS)
    check_choice(fn, "selection", selection, _SELECTIONS)
    tree = policy_tree(policies)

    def kernel(rng_key, state: AgentState, observation, params: AgentParams):
        check_key("kernel", "rng_key", rng_key)
        num_obs, num_controls = check_state("kernel", state)
        check_policies("kernel", policies, num_controls)
        check_observation("kernel", observation, num_obs)
        check_params("kernel", params)
        A, B = _normalise(state.pA), _normalise(state.pB)
        res = infer_states(
            observation,
            state.prior,
            A,
            num_iter=num_iter,
            method=inference,
            step_size=params.inference_step_size,
        )
        qs = res.beliefs
        G, risk, ambiguity = tree_risk_ambiguity(
            qs, planning_arrays(A, state.C), B, tree
        )
        q_pi = policy_posterior(G, params.policy_precision)
        marg = action_marginals(q_pi, policies, tuple(b.shape[2] for b in B))
        if selection == "deterministic":
            action = jnp.stack([jnp.argmax(m) for m in marg])
        else:
            u = jax.random.uniform(rng_key, (len(marg),))
            action = jnp.stack(
                [
                    _sample(
                        u[f],
                        jax.nn.softmax(
                            params.action_precision * jnp.log(jnp.maximum(m, 1e-16))
                        ),
                    )
                    for f, m in enumerate(marg)
                ]
            )
        action = action.astype(jnp.int32)
        new = state._replace(
            beliefs=qs,
            prior=tuple(b[:, :, action[f]] @ qs[f] for f, b in enumerate(B)),
            pA=_learn_A(state, observation, qs, params),
            pB=_learn_B(state, qs, params),
            action=action,
            step=state.step + 1,
        )
        info = AgentInfo(
            res.free_energy, res.free_energy_trace, G, risk, ambiguity, q_pi, marg
        )
        return new, info

    return kernel
