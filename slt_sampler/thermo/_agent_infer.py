"""Perception (variational free energy) and planning (expected free energy) for
discrete POMDPs with mean-field beliefs over several hidden-state factors.

Conventions
-----------
* ``A[m]`` has shape ``(num_obs[m], *num_states)``:
  ``A[m][o, s_0, s_1, ...] = p(o_m | s)``.
* ``B[f]`` has shape ``(num_states[f], num_states[f], num_controls[f])``:
  ``B[f][s', s, u] = p(s'_f | s_f, u_f)``.
* ``C[m]`` has shape ``(num_obs[m],)``: log-preferences up to a constant; the preferred
  outcome distribution is ``softmax(C[m])``.
* ``D[f]`` has shape ``(num_states[f],)``: initial beliefs.
* An observation is a tuple of integer indices, one per modality.
* ``G`` is the expected free energy (lower is better); ``-G`` is what pymdp calls
  ``neg_efe``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
_TINY = 1e-16  # floor inside logs, so that 0 * log 0 = 0 and log 0 stays finite


def safe_log(x: Array) -> Array:
    """``log(max(x, 1e-16))``: finite on exact zeros of A, B, D."""
    return jnp.log(jnp.maximum(x, _TINY))


# ------------------------------------------------------------------------- perception


class InferenceResult(NamedTuple):
    """Output of :func:`infer_states`.

    Attributes
    ----------
    beliefs : tuple of arrays, one ``(num_states[f],)`` per factor, final q(s_f).
    free_energy : scalar, F at the final beliefs.
    free_energy_trace : ``(num_iter + 1,)``, F at the initial beliefs (the prior) and
        after every iteration.
    beliefs_trace : tuple of ``(num_iter, num_states[f])`` arrays, q(s_f) after every
        iteration.
    """

    beliefs: tuple
    free_energy: Array
    free_energy_trace: Array
    beliefs_trace: tuple


def log_likelihood(A: tuple, observation: tuple) -> Array:
    """Joint log-likelihood ``sum_m log A[m][o_m, s]`` as a ``num_states`` tensor."""
    out = safe_log(A[0][observation[0]])
    for a, o in zip(A[1:], observation[1:]):
        out = out + safe_log(a[o])
    return out


def _contract_except(tensor: Array, qs: tuple, keep: int | None) -> Array:
    """Contract every factor axis of ``tensor`` with its belief, except ``keep``."""
    out = tensor
    for g in reversed(range(len(qs))):
        if g != keep:
            out = jnp.tensordot(out, qs[g], axes=([g], [0]))
    return out


def variational_free_energy(qs: tuple, log_prior: tuple, loglik: Array) -> Array:
    r"""Mean-field variational free energy.

    .. math::
        F[q] = \sum_f \mathbb{E}_{q_f}[\log q_f - \log p(s_f)]
               - \mathbb{E}_{\prod_f q_f}[\log p(o \mid s)]
             = \mathrm{KL}(q \,\|\, p(s \mid o)) - \log p(o).
    """
    complexity = sum(jnp.sum(q * (safe_log(q) - lp)) for q, lp in zip(qs, log_prior))
    accuracy = _contract_except(loglik, qs, None)
    return complexity - accuracy


def _fpi_sweep(qs: tuple, log_prior: tuple, loglik: Array) -> tuple:
    """One coordinate-ascent sweep: each factor set to its exact conditional optimum,
    so F cannot increase (the update is the argmin of F over q_f, others fixed)."""
    qs = list(qs)
    for f in range(len(qs)):
        qs[f] = jax.nn.softmax(log_prior[f] + _contract_except(loglik, tuple(qs), f))
    return tuple(qs)


def infer_states(
    observation: tuple,
    prior: tuple,
    A: tuple,
    *,
    num_iter: int = 8,
    method: str = "fpi",
    step_size: float | Array = 0.5,
) -> InferenceResult:
    r"""Perception: minimise the variational free energy over beliefs q(s).

    Parameters
    ----------
    observation : tuple of int arrays, one index per modality.
    prior : tuple of ``(num_states[f],)`` prior beliefs (``D`` or ``B q_{t-1}``).
    A : tuple of likelihood arrays.
    num_iter : number of iterations (static).
    method : ``"fpi"`` (mean-field fixed-point / coordinate ascent; exact in one
        iteration for one factor) or ``"gd"`` (gradient descent on F over the softmax
        logits of q, with ``step_size``).
    step_size : learning rate of ``"gd"`` (ignored by ``"fpi"``).

    Returns
    -------
    InferenceResult with beliefs and F at every iteration.
    """
    loglik = log_likelihood(A, observation)
    log_prior = tuple(safe_log(p) for p in prior)
    f0 = variational_free_energy(prior, log_prior, loglik)
    if method == "fpi":

        def body(qs, _):
            qs = _fpi_sweep(qs, log_prior, loglik)
            return qs, (qs, variational_free_energy(qs, log_prior, loglik))

        qs, (trace, fs) = jax.lax.scan(body, tuple(prior), None, length=num_iter)
    elif method == "gd":

        def f_of_logits(logits):
            qs = tuple(jax.nn.softmax(z) for z in logits)
            return variational_free_energy(qs, log_prior, loglik)

        def body(logits, _):
            grads = jax.grad(f_of_logits)(logits)
            logits = tuple(z - step_size * g for z, g in zip(logits, grads))
            qs = tuple(jax.nn.softmax(z) for z in logits)
            return logits, (qs, f_of_logits(logits))

        _, (trace, fs) = jax.lax.scan(body, log_prior, None, length=num_iter)
        qs = tuple(t[-1] for t in trace)
    else:
        raise ValueError(
            f"infer_states: method={method!r} is not supported; use 'fpi' or 'gd'."
        )
    return InferenceResult(
        tuple(qs), fs[-1], jnp.concatenate([f0[None], fs]), tuple(trace)
    )


def exact_posterior(observation: tuple, prior: tuple, A: tuple) -> tuple[Array, Array]:
    """Exact joint posterior p(s | o) (flattened over all factors) and log p(o)."""
    log_joint = log_likelihood(A, observation)
    for f, p in enumerate(prior):
        shape = [1] * len(prior)
        shape[f] = p.shape[0]
        log_joint = log_joint + safe_log(p).reshape(shape)
    flat = log_joint.reshape(-1)
    log_evidence = jax.scipy.special.logsumexp(flat)
    return jnp.exp(flat - log_evidence), log_evidence


def joint_beliefs(qs: tuple) -> Array:
    """Flattened outer product ``prod_f q_f`` (C order, factor 0 slowest)."""
    out = qs[0]
    for q in qs[1:]:
        out = (out[:, None] * q[None, :]).reshape(-1)
    return out


# ----------------------------------------------------------------------------- planning


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
    """
    a_flat, h_cols, log_pref = prepare_planning(A, C)
    return _efe_prepared(qs, a_flat, h_cols, log_pref, B, policy)


def _efe_prepared(qs, a_flat, h_cols, log_pref, B, policy) -> EFETerms:
    def step(q, u):
        q = tuple(b[:, :, u[f]] @ q[f] for f, b in enumerate(B))
        qj = joint_beliefs(q)
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
    ``(num_policies,)``."""
    prepared = prepare_planning(A, C)
    return jax.vmap(lambda p: _efe_prepared(qs, *prepared, B, p))(policies)


class PlanningArrays(NamedTuple):
    """Model arrays pre-arranged for fast planning: all modalities stacked."""

    a_cat: Array  # (sum_m num_obs[m], S) stacked flattened likelihoods
    log_pref_cat: Array  # (sum_m num_obs[m],) stacked log softmax(C[m])
    h_joint: Array  # (S,) sum_m H[p(o_m | s)]


def planning_arrays(A: tuple, C: tuple) -> PlanningArrays:
    """Stack the modalities once per step (see :func:`policies_risk_ambiguity`)."""
    a_flat, h_cols, log_pref = prepare_planning(A, C)
    return PlanningArrays(
        jnp.concatenate(a_flat, axis=0), jnp.concatenate(log_pref), sum(h_cols)
    )


def policies_risk_ambiguity(qs: tuple, plan: PlanningArrays, B: tuple, policies: Array):
    """Fast path used by the agent: ``(G, risk, ambiguity)``, each ``(num_policies,)``.

    Equal to :func:`all_policies_efe` (tested), but batched over policies explicitly,
    with the horizon unrolled (it is static) and modalities stacked into one matrix.
    """
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
    ``n + n**2 + ... + n**H`` nodes instead of ``H * n**H``."""
    policies = np.asarray(policies)
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
    """:func:`policies_risk_ambiguity` evaluated on a :class:`PolicyTree`."""
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


def policy_posterior(G: Array, policy_precision: float | Array) -> Array:
    """``q(pi) = softmax(-policy_precision * G)``."""
    return jax.nn.softmax(-policy_precision * G)


def action_marginals(q_pi: Array, policies: Array, num_controls: tuple) -> tuple:
    """Probability of each first action per factor: ``sum_pi q(pi) [pi_0f == u]``."""
    return tuple(
        jax.nn.one_hot(policies[:, 0, f], n, dtype=q_pi.dtype).T @ q_pi
        for f, n in enumerate(num_controls)
    )


def enumerate_policies(num_controls: tuple[int, ...], horizon: int) -> np.ndarray:
    """Every sequence of ``horizon`` joint actions, shape ``(P, horizon, num_factors)``
    with ``P = prod(num_controls) ** horizon``, in lexicographic order."""
    if horizon < 1:
        raise ValueError(f"enumerate_policies: horizon={horizon} must be >= 1.")
    joint = np.stack(
        np.meshgrid(*[np.arange(n) for n in num_controls], indexing="ij"), -1
    ).reshape(-1, len(num_controls))
    idx = np.stack(
        np.meshgrid(*[np.arange(len(joint))] * horizon, indexing="ij"), -1
    ).reshape(-1, horizon)
    return joint[idx].astype(np.int32)
