"""Planning (expected free energy) for discrete POMDPs: EFE of policies, the
policy posterior, action marginals and the policy enumeration.

Private module: the public names are re-exported by :mod:`slt_sampler.thermo.agent`;
array conventions are those of :mod:`._agent_infer`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._agent_infer import _TINY, _joint, safe_log
from ._agent_validate import (
    check_beliefs,
    check_dist,
    check_likelihood,
    check_policies,
    check_preferences,
    check_transitions,
)
from ._checks import (
    check_array,
    check_int,
    check_real,
    check_sequence,
    check_type,
)

Array = jax.Array
MAX_POLICIES = 10**7
_MSG_TOO_MANY = (
    "enumerate_policies: num_controls={nc} and horizon={h} give {n:.3g} policies "
    "(more than {cap:.0e}); shorten the horizon or pass a hand-made policy subset."
)


class EFETerms(NamedTuple):
    r"""Expected free energy of a policy and its two decompositions (summed over the
    horizon and over modalities).

    ``G = risk + ambiguity = -(pragmatic + epistemic)``, with
    ``risk = KL(q(o) || softmax(C))``, ``ambiguity = E_q(s) H[p(o|s)]``,
    ``pragmatic = E_q(o) log softmax(C)`` and
    ``epistemic = E_q(o) KL(q(s|o) || q(s))`` (per-modality information gain).
    """

    G: Array
    risk: Array
    ambiguity: Array
    pragmatic: Array
    epistemic: Array


def _modality_terms(a_flat: Array, h_cols: Array, log_pref: Array, qj: Array):
    qo = a_flat @ qj
    log_qo = safe_log(qo)
    risk = jnp.sum(qo * (log_qo - log_pref))
    ambiguity = jnp.dot(h_cols, qj)
    pragmatic = jnp.dot(qo, log_pref)
    # Bayesian route, on purpose not the algebraic shortcut H[q(o)] - ambiguity:
    post = a_flat * qj[None, :] / jnp.maximum(qo, _TINY)[:, None]
    kl_o = jnp.sum(post * (safe_log(post) - safe_log(qj)[None, :]), axis=1)
    epistemic = jnp.dot(qo, kl_o)
    return jnp.stack([risk, ambiguity, pragmatic, epistemic])


def prepare_planning(A: tuple, C: tuple) -> tuple:
    """Per-modality flattened A, column entropies H[p(o|s)] and log softmax(C)."""
    a_flat = tuple(a.reshape(a.shape[0], -1) for a in A)
    h_cols = tuple(-jnp.sum(a * safe_log(a), axis=0) for a in a_flat)
    log_pref = tuple(jax.nn.log_softmax(c) for c in C)
    return a_flat, h_cols, log_pref


def expected_free_energy(
    qs: tuple, A: tuple, B: tuple, C: tuple, policy: Array
) -> EFETerms:
    r"""Expected free energy of one policy (``(horizon, num_factors)`` int array).

    .. math::
        G(\pi) = \sum_{\tau} \sum_m \mathrm{KL}(q(o_{m\tau}\mid\pi)\,\|\,\tilde p(o_m))
                 + \mathbb{E}_{q(s_\tau\mid\pi)} H[p(o_{m\tau} \mid s_\tau)].

    Raises ``ValueError``/``TypeError`` if the arrays do not fit together or the
    policy has actions outside ``[0, num_controls)``.
    """
    _check_efe_inputs("expected_free_energy", qs, A, B, C, policy, ndim=2)
    a_flat, h_cols, log_pref = prepare_planning(A, C)
    return _efe_prepared(qs, a_flat, h_cols, log_pref, B, policy)


def _efe_prepared(qs, a_flat, h_cols, log_pref, B, policy) -> EFETerms:
    def step(q, u):
        q = tuple(b[:, :, u[f]] @ q[f] for f, b in enumerate(B))
        qj = _joint(q)
        terms = sum(
            _modality_terms(a, h, lp, qj) for a, h, lp in zip(a_flat, h_cols, log_pref)
        )
        return q, terms

    _, terms = jax.lax.scan(step, tuple(qs), policy)
    risk, ambiguity, pragmatic, epistemic = jnp.sum(terms, axis=0)
    return EFETerms(risk + ambiguity, risk, ambiguity, pragmatic, epistemic)


def all_policies_efe(
    qs: tuple, A: tuple, B: tuple, C: tuple, policies: Array
) -> EFETerms:
    """:func:`expected_free_energy` for every policy, ``policies`` of shape
    ``(num_policies, horizon, num_factors)``; each field has shape
    ``(num_policies,)``. Raises like :func:`expected_free_energy`."""
    _check_efe_inputs("all_policies_efe", qs, A, B, C, policies, ndim=3)
    prepared = prepare_planning(A, C)
    return jax.vmap(lambda p: _efe_prepared(qs, *prepared, B, p))(policies)


def _check_efe_inputs(fn, qs, A, B, C, policies, ndim):
    num_obs, num_states = check_likelihood(fn, A)
    check_beliefs(fn, "qs", qs, num_states)
    num_controls = check_transitions(fn, B, num_states)
    check_preferences(fn, C, num_obs)
    name = "policy" if ndim == 2 else "policies"
    check_policies(fn, policies, num_controls, name=name, ndim=ndim)


class PlanningArrays(NamedTuple):
    """Model arrays pre-arranged for fast planning: all modalities stacked."""

    a_cat: Array  # (sum_m num_obs[m], S) stacked flattened likelihoods
    log_pref_cat: Array  # (sum_m num_obs[m],) stacked log softmax(C[m])
    h_joint: Array  # (S,) sum_m H[p(o_m | s)]


def planning_arrays(A: tuple, C: tuple) -> PlanningArrays:
    """Stack the modalities once per step (see :func:`policies_risk_ambiguity`).

    Raises ``ValueError``/``TypeError`` unless ``A`` and ``C`` fit together."""
    num_obs, _ = check_likelihood("planning_arrays", A)
    check_preferences("planning_arrays", C, num_obs)
    a_flat, h_cols, log_pref = prepare_planning(A, C)
    return PlanningArrays(
        jnp.concatenate(a_flat, axis=0), jnp.concatenate(log_pref), sum(h_cols)
    )


def policies_risk_ambiguity(qs: tuple, plan: PlanningArrays, B: tuple, policies: Array):
    """Fast path used by the agent: ``(G, risk, ambiguity)``, each ``(num_policies,)``.

    Equal to :func:`all_policies_efe` (tested), but batched over policies explicitly,
    with the horizon unrolled (it is static) and modalities stacked into one matrix.
    Raises ``ValueError``/``TypeError`` if the inputs do not fit together.
    """
    num_controls = check_plan_inputs("policies_risk_ambiguity", qs, plan, B)
    check_policies("policies_risk_ambiguity", policies, num_controls)
    num_policies, horizon, _ = policies.shape
    q = tuple(jnp.broadcast_to(qf[None, :], (num_policies, qf.shape[0])) for qf in qs)
    risk = jnp.zeros(num_policies, plan.a_cat.dtype)
    ambiguity = jnp.zeros(num_policies, plan.a_cat.dtype)
    for tau in range(horizon):
        q = tuple(
            jnp.einsum("tsp,ps->pt", b[:, :, policies[:, tau, f]], q[f])
            for f, b in enumerate(B)
        )
        qj = q[0]
        for qf in q[1:]:
            qj = (qj[:, :, None] * qf[:, None, :]).reshape(num_policies, -1)
        qo = qj @ plan.a_cat.T
        risk = risk + jnp.sum(qo * (safe_log(qo) - plan.log_pref_cat[None, :]), axis=1)
        ambiguity = ambiguity + qj @ plan.h_joint
    return risk + ambiguity, risk, ambiguity


def check_plan_inputs(fn: str, qs, plan, B) -> tuple:
    """Beliefs, :class:`PlanningArrays` and ``B`` of matching sizes; returns the
    control counts."""
    check_type(
        fn,
        "plan",
        plan,
        PlanningArrays,
        "a PlanningArrays",
        "Build it with planning_arrays(A, C).",
    )
    a_cat = check_array(fn, "plan.a_cat", plan.a_cat, ndim=2, finite=False)
    num_states = check_beliefs(fn, "qs", qs)
    if int(np.prod(num_states)) != a_cat.shape[1]:
        raise ValueError(
            f"{fn}: qs has factor sizes {num_states} ({int(np.prod(num_states))} "
            f"joint states) but plan.a_cat has {a_cat.shape[1]} columns; pass one "
            "belief per hidden-state factor of the model the plan was built from."
        )
    return check_transitions(fn, B, num_states)


def policy_posterior(G: Array, policy_precision: float | Array) -> Array:
    """``q(pi) = softmax(-policy_precision * G)``.

    Raises
    ------
    ValueError, TypeError
        If ``G`` is not a finite 1-D array or ``policy_precision`` is negative or
        not finite (a negative precision would prefer the worst policies).
    """
    fn = "policy_posterior"
    check_array(fn, "G", G, ndim=1, layout="(num_policies,)")
    check_real(
        fn,
        "policy_precision",
        policy_precision,
        low=0.0,
        fix="Use e.g. 16.0 (0 gives a uniform q(pi)).",
    )
    return jax.nn.softmax(-policy_precision * G)


def action_marginals(q_pi: Array, policies: Array, num_controls: tuple) -> tuple:
    """Probability of each first action per factor: ``sum_pi q(pi) [pi_0f == u]``.

    Raises ``ValueError``/``TypeError`` if ``q_pi`` is not a distribution over the
    policies or ``policies`` does not fit ``num_controls``.
    """
    fn = "action_marginals"
    num_controls = _check_controls(fn, num_controls)
    pol = check_policies(fn, policies, num_controls)
    q = check_array(fn, "q_pi", q_pi, shape=(pol.shape[0],))
    check_dist(fn, "q_pi", q)
    return tuple(
        jax.nn.one_hot(policies[:, 0, f], n, dtype=q_pi.dtype).T @ q_pi
        for f, n in enumerate(num_controls)
    )


def enumerate_policies(num_controls: tuple[int, ...], horizon: int) -> np.ndarray:
    """Every sequence of ``horizon`` joint actions, shape ``(P, horizon, num_factors)``
    with ``P = prod(num_controls) ** horizon``, in lexicographic order.

    Raises ``ValueError``/``TypeError`` unless ``num_controls`` holds positive
    ints, ``horizon >= 1`` and the set has at most ``10**7`` policies.
    """
    fn = "enumerate_policies"
    num_controls = _check_controls(fn, num_controls)
    horizon = check_int(fn, "horizon", horizon, fix="Use e.g. horizon=2.")
    total = float(np.prod(num_controls, dtype=np.float64)) ** horizon
    if total > MAX_POLICIES:
        raise ValueError(
            _MSG_TOO_MANY.format(nc=num_controls, h=horizon, n=total, cap=MAX_POLICIES)
        )
    joint = np.stack(
        np.meshgrid(*[np.arange(n) for n in num_controls], indexing="ij"), -1
    ).reshape(-1, len(num_controls))
    idx = np.stack(
        np.meshgrid(*[np.arange(len(joint))] * horizon, indexing="ij"), -1
    ).reshape(-1, horizon)
    return joint[idx].astype(np.int32)


def _check_controls(fn: str, num_controls) -> tuple:
    counts = check_sequence(fn, "num_controls", num_controls, "ints, one per factor")
    fix = "Give one control count per factor, e.g. (4, 1)."
    return tuple(
        check_int(fn, f"num_controls[{f}]", n, fix=fix) for f, n in enumerate(counts)
    )
