"""Perception (variational free energy) for discrete POMDPs with mean-field beliefs
over several hidden-state factors; planning lives in :mod:`._agent_plan`.

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

from ._agent_validate import (
    check_beliefs,
    check_likelihood,
    check_observation,
)
from ._checks import (
    check_array,
    check_choice,
    check_int,
    check_real,
    check_sequence,
)

Array = jax.Array
METHODS = ("fpi", "gd")
_FIX_LOG_PRIOR = "Use safe_log(prior) (floored at 1e-16): log(0) = -inf makes F NaN."
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
    """Joint log-likelihood ``sum_m log A[m][o_m, s]`` as a ``num_states`` tensor.

    Raises
    ------
    ValueError, TypeError
        If ``A`` is not a tuple of likelihood arrays or an observation index is not
        an integer in ``[0, num_obs[m])``.
    """
    num_obs, _ = check_likelihood("log_likelihood", A)
    check_observation("log_likelihood", observation, num_obs)
    return _loglik(A, observation)


def _loglik(A: tuple, observation: tuple) -> Array:
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

    Raises
    ------
    ValueError, TypeError
        If ``qs`` are not distributions, ``log_prior`` does not match them or is
        not finite, or ``loglik`` is not a finite ``num_states`` tensor.
    """
    _check_vfe_inputs(qs, log_prior, loglik)
    return _vfe(qs, log_prior, loglik)


def _check_vfe_inputs(qs, log_prior, loglik) -> None:
    fn = "variational_free_energy"
    sizes = check_beliefs(fn, "qs", qs)
    lp = check_sequence(fn, "log_prior", log_prior, "log-prior arrays, one per factor")
    if len(lp) != len(sizes):
        raise ValueError(
            f"{fn}: log_prior has {len(lp)} factors but qs has {len(sizes)}; "
            "pass one log-prior per factor."
        )
    for f, (p, n) in enumerate(zip(lp, sizes)):
        check_array(fn, f"log_prior[{f}]", p, shape=(n,), fix=_FIX_LOG_PRIOR)
    check_array(
        fn, "loglik", loglik, shape=sizes, fix="Build it with log_likelihood(A, o)."
    )


def _vfe(qs: tuple, log_prior: tuple, loglik: Array) -> Array:
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

    Raises
    ------
    ValueError, TypeError
        If an observation index is outside ``[0, num_obs[m])`` (JAX indexing would
        clamp it silently), ``prior`` or ``A`` are not distributions of matching
        shapes, ``num_iter < 1``, ``method`` is unknown or (``"gd"``) ``step_size``
        is not a finite positive number.
    """
    fn = "infer_states"
    check_choice(fn, "method", method, METHODS)
    check_int(fn, "num_iter", num_iter, fix="Use e.g. num_iter=8.")
    if method == "gd":  # "fpi" ignores it
        check_real(fn, "step_size", step_size, low=0.0, low_open=True, fix="E.g. 0.5.")
    num_obs, num_states = check_likelihood(fn, A)
    check_observation(fn, observation, num_obs)
    check_beliefs(fn, "prior", prior, num_states)
    loglik = _loglik(A, observation)
    log_prior = tuple(safe_log(p) for p in prior)
    f0 = _vfe(prior, log_prior, loglik)
    if method == "fpi":

        def body(qs, _):
            qs = _fpi_sweep(qs, log_prior, loglik)
            return qs, (qs, _vfe(qs, log_prior, loglik))

        qs, (trace, fs) = jax.lax.scan(body, tuple(prior), None, length=num_iter)
    elif method == "gd":

        def f_of_logits(logits):
            qs = tuple(jax.nn.softmax(z) for z in logits)
            return _vfe(qs, log_prior, loglik)

        def body(logits, _):
            grads = jax.grad(f_of_logits)(logits)
            logits = tuple(z - step_size * g for z, g in zip(logits, grads))
            qs = tuple(jax.nn.softmax(z) for z in logits)
            return logits, (qs, f_of_logits(logits))

        _, (trace, fs) = jax.lax.scan(body, log_prior, None, length=num_iter)
        qs = tuple(t[-1] for t in trace)
    return InferenceResult(
        tuple(qs), fs[-1], jnp.concatenate([f0[None], fs]), tuple(trace)
    )


def exact_posterior(observation: tuple, prior: tuple, A: tuple) -> tuple[Array, Array]:
    """Exact joint posterior p(s | o) (flattened over all factors) and log p(o).

    Raises ``ValueError``/``TypeError`` on bad input, as :func:`infer_states`.
    """
    num_obs, num_states = check_likelihood("exact_posterior", A)
    check_observation("exact_posterior", observation, num_obs)
    check_beliefs("exact_posterior", "prior", prior, num_states)
    log_joint = _loglik(A, observation)
    for f, p in enumerate(prior):
        shape = [1] * len(prior)
        shape[f] = p.shape[0]
        log_joint = log_joint + safe_log(p).reshape(shape)
    flat = log_joint.reshape(-1)
    log_evidence = jax.scipy.special.logsumexp(flat)
    return jnp.exp(flat - log_evidence), log_evidence


def joint_beliefs(qs: tuple) -> Array:
    """Flattened outer product ``prod_f q_f`` (C order, factor 0 slowest).

    Raises ``ValueError``/``TypeError`` unless ``qs`` is a tuple of 1-D
    distributions.
    """
    check_beliefs("joint_beliefs", "qs", qs)
    return _joint(qs)


def _joint(qs: tuple) -> Array:
    out = qs[0]
    for q in qs[1:]:
        out = (out[:, None] * q[None, :]).reshape(-1)
    return out
