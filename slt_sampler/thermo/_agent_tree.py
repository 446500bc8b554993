"""Policy prefix trees: shared policy prefixes are evaluated once when planning.

Private module: the public names are re-exported by :mod:`slt_sampler.thermo.agent`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._agent_infer import safe_log
from ._agent_plan import PlanningArrays, check_plan_inputs, enumerate_policies
from ._agent_validate import check_policies
from ._checks import check_type, is_concrete

_MSG_TRACED = (
    "policy_tree: policies must be concrete (a numpy array), got a traced value; "
    "build the tree outside jit (it is static structure)."
)

Array = jax.Array


class PolicyTree(NamedTuple):
    """Prefix tree of a concrete policy set: shared prefixes are evaluated once.

    levels : tuple over depth of ``(parent, action, dense)`` -- for each unique prefix
        of length ``tau + 1`` its parent prefix (index at depth ``tau``) and its last
        joint action ``(n_tau, num_factors)`` (numpy); ``dense`` is the tuple of
        per-factor control counts when the level holds every joint action of every
        parent in :func:`enumerate_policies` order (then no gathers are needed), else
        None.
    leaf : ``(num_policies,)`` index of each policy among the full-length prefixes,
        or None when it is the identity.
    """

    levels: tuple
    leaf: np.ndarray | None


def _dense_counts(parent: np.ndarray, action: np.ndarray, n_prev: int):
    n, num_factors = action.shape
    if n % n_prev:
        return None
    counts = tuple(int(c) for c in action.max(axis=0) + 1)
    joint = enumerate_policies(counts, 1)[:, 0]
    if len(joint) * n_prev != n:
        return None
    dense = np.array_equal(parent, np.repeat(np.arange(n_prev), len(joint)))
    dense = dense and np.array_equal(action, np.tile(joint, (n_prev, 1)))
    return counts if dense else None


def policy_tree(policies) -> PolicyTree:
    """Build the :class:`PolicyTree` of a concrete ``(P, horizon, F)`` policy array.
    For the full enumeration of ``n`` joint actions over ``H`` steps this evaluates
    ``n + n**2 + ... + n**H`` nodes instead of ``H * n**H``.

    Raises ``ValueError``/``TypeError`` unless ``policies`` is a concrete,
    non-empty ``(P, horizon, F)`` array of non-negative integers.
    """
    if not is_concrete(policies):
        raise TypeError(_MSG_TRACED)
    policies = check_policies("policy_tree", policies)
    num_policies, horizon, _ = policies.shape
    prev = np.zeros(num_policies, dtype=np.int64)
    levels, n_prev = [], 1
    for tau in range(horizon):
        keys = policies[:, : tau + 1].reshape(num_policies, -1)
        _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        parent = prev[first].astype(np.int32)
        action = policies[first, tau].astype(np.int32)
        levels.append((parent, action, _dense_counts(parent, action, n_prev)))
        prev, n_prev = np.asarray(inv).reshape(-1), len(first)
    leaf = None if np.array_equal(prev, np.arange(num_policies)) else prev
    return PolicyTree(tuple(levels), None if leaf is None else leaf.astype(np.int32))


def _expand(x: Array, repeats: int) -> Array:
    """``x[repeat(arange(n), repeats)]`` without a gather."""
    return jnp.broadcast_to(x[:, None], (x.shape[0], repeats)).reshape(-1)


def _dense_step(q: tuple, B: tuple, counts: tuple) -> tuple:
    n_prev = q[0].shape[0]
    out = []
    for f, b in enumerate(B):
        qf = jnp.einsum("tsu,ns->nut", b[:, :, : counts[f]], q[f])
        shape = [n_prev] + [1] * len(B) + [b.shape[0]]
        shape[1 + f] = counts[f]
        full = (n_prev, *counts, b.shape[0])
        out.append(jnp.broadcast_to(qf.reshape(shape), full).reshape(-1, b.shape[0]))
    return tuple(out)


def tree_risk_ambiguity(qs: tuple, plan: PlanningArrays, B: tuple, tree: PolicyTree):
    """:func:`policies_risk_ambiguity` evaluated on a :class:`PolicyTree`.

    Raises ``ValueError``/``TypeError`` if the inputs do not fit together."""
    fn = "tree_risk_ambiguity"
    num_controls = check_plan_inputs(fn, qs, plan, B)
    check_type(fn, "tree", tree, PolicyTree, "a PolicyTree", "Use policy_tree(p).")
    for _, action, _ in tree.levels:
        check_policies(fn, action[None], num_controls, name="tree actions")
    q = tuple(qf[None, :] for qf in qs)
    risk = jnp.zeros(1, plan.a_cat.dtype)
    ambiguity = jnp.zeros(1, plan.a_cat.dtype)
    for parent, action, dense in tree.levels:
        n = parent.shape[0]
        if dense is not None:
            q = _dense_step(q, B, dense)
            risk = _expand(risk, n // risk.shape[0])
            ambiguity = _expand(ambiguity, n // ambiguity.shape[0])
        else:
            q = tuple(
                jnp.einsum("tsn,ns->nt", b[:, :, action[:, f]], q[f][parent])
                for f, b in enumerate(B)
            )
            risk, ambiguity = risk[parent], ambiguity[parent]
        qj = q[0]
        for qf in q[1:]:
            qj = (qj[:, :, None] * qf[:, None, :]).reshape(n, -1)
        qo = qj @ plan.a_cat.T
        risk = risk + jnp.sum(qo * (safe_log(qo) - plan.log_pref_cat[None, :]), axis=1)
        ambiguity = ambiguity + qj @ plan.h_joint
    if tree.leaf is not None:
        risk, ambiguity = risk[tree.leaf], ambiguity[tree.leaf]
    return risk + ambiguity, risk, ambiguity
