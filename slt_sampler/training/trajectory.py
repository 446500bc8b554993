"""Training trajectories with checkpoints: any optax optimiser on ``L_n`` of a posterior.

:func:`train` minimises the empirical loss ``L_n(w) = −(1/n) Σ log p(x_i | w)`` of a
:class:`~slt_sampler.posterior.base.TemperedPosterior` with minibatches drawn from
``posterior.data`` uniformly with replacement (as the SGLD samplers do, so every step's
gradient is unbiased and its noise covariance is exactly ``C/B``, with ``C`` the
per-datum gradient covariance). The prior, β, γ and the localiser of the posterior are
*ignored*: training sees the likelihood only. Step ``t`` draws its minibatch with
``jax.random.fold_in(rng_key, t)``, so a run resumed from any checkpoint continues the
same random stream as an uninterrupted run.

Checkpoints go to a directory as ``ckpt_<step>.npz`` files, each written atomically
(a temporary file moved into place), plus ``meta.json`` recording what must not change
between a run and its resumption (parameter and optimiser-state structure, batch size,
checkpoint spacing, the key). Rerunning :func:`train` with the same ``path`` resumes
from the last checkpoint at or before ``num_steps``, and a larger ``num_steps``
continues a finished run.

:func:`sgd_iterates` runs many independent chains of the same optimiser at once
(``jit(vmap(scan))``) and keeps thinned iterates, to read SGD's stationary law as if
its iterates were posterior samples.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import (
    TemperedPosterior,
    batch_loss,
    check_posterior,
    full_loss,
    sample_batch,
)
from ..types import PRNGKey, PyTree
from ._checkpoints import (
    FORMAT,
    Store,
    check_meta,
    checkpoint_record,
    describe,
    key_data,
    unflat,
)
from .optimizers import HamiltonianState

__all__ = ["Iterates", "Trajectory", "sgd_iterates", "train"]


class Trajectory(NamedTuple):
    """A training run, recorded at its checkpoints.

    Attributes
    ----------
    steps : np.ndarray (k,)
        Step of each checkpoint: 0 (``params0``), ``checkpoint_every``,
        ``2·checkpoint_every``, ..., and ``num_steps``.
    params : pytree of np.ndarray, leading axis k
        Parameters at each checkpoint, stacked.
    loss : np.ndarray (k,)
        Full-data ``L_n`` at each checkpoint.
    batch_loss : np.ndarray (num_steps,)
        Minibatch loss at every step, at the parameters the step started from.
    hamiltonian : np.ndarray (k,) or None
        ``H = ½‖p‖² + L_n(w)`` at each checkpoint for an optimiser with a
        :class:`~slt_sampler.training.optimizers.HamiltonianState` (leapfrog, explicit
        Euler momentum), the synchronous momentum taken with the full-data gradient;
        ``None`` otherwise.
    """

    steps: np.ndarray
    params: PyTree
    loss: np.ndarray
    batch_loss: np.ndarray
    hamiltonian: np.ndarray | None


class Iterates(NamedTuple):
    """Thinned iterates of independent optimiser chains (:func:`sgd_iterates`).

    Attributes
    ----------
    positions : pytree of np.ndarray (chain, draw, ...)
    loss : np.ndarray (chain, draw)
        Full-data ``L_n`` at every kept position.
    """

    positions: PyTree
    loss: np.ndarray


def _hamiltonian_state(opt_state) -> HamiltonianState | None:
    found = [
        s
        for s in jax.tree.leaves(
            opt_state, is_leaf=lambda x: isinstance(x, HamiltonianState)
        )
        if isinstance(s, HamiltonianState)
    ]
    return found[0] if found else None


def _step_fn(posterior: TemperedPosterior, optimizer, batch_size: int | None):
    """One optimiser step ``(params, opt_state), key -> ((params, opt_state), loss)``."""

    def step(carry, key):
        params, opt_state = carry
        if batch_size is None:
            loss, grad = jax.value_and_grad(lambda w: full_loss(posterior, w))(params)
        else:
            batch = sample_batch(key, posterior, batch_size)
            loss, grad = jax.value_and_grad(lambda w: batch_loss(posterior, w, batch))(
                params
            )
        updates, opt_state = optimizer.update(grad, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step


def _record(posterior: TemperedPosterior, params, opt_state):
    """Full-data ``L_n`` and, for a Hamiltonian optimiser, ``H`` at a checkpoint."""
    loss, grad = jax.value_and_grad(lambda w: full_loss(posterior, w))(params)
    hs = _hamiltonian_state(opt_state)
    if hs is None:
        return loss, jnp.full_like(loss, jnp.nan)
    p = jax.tree.map(
        lambda m, g: hs.sync_scale * m - hs.sync_lag * g, hs.momentum, grad
    )
    kinetic = 0.5 * sum(jnp.sum(x**2) for x in jax.tree.leaves(p))
    return loss, kinetic + loss


_RECORD = jax.jit(_record)
_CHUNKS: dict = {}


def _compiled_chunk(optimizer, batch_size: int | None, size: int):
    """``chunk(carry, posterior, rng_key, start, stop)``: steps ``start..stop-1``
    (at most ``size``) in one compiled ``fori_loop`` whose bounds are traced, so every
    chunk of a run (and of later runs with the same optimiser object) reuses one
    executable. Step ``t`` uses the key ``fold_in(rng_key, t)``."""
    cache_key = (optimizer, batch_size, size)
    if cache_key in _CHUNKS:
        return _CHUNKS[cache_key]

    def chunk(carry, posterior, rng_key, start, stop):
        step = _step_fn(posterior, optimizer, batch_size)

        def body(t, c):
            carry, losses = c
            carry, loss = step(carry, jax.random.fold_in(rng_key, t))
            return carry, losses.at[t - start].set(loss)

        losses = jnp.zeros(size, jnp.result_type(float))
        return jax.lax.fori_loop(start, stop, body, (carry, losses))

    _CHUNKS[cache_key] = jax.jit(chunk)
    if len(_CHUNKS) > 32:
        _CHUNKS.pop(next(iter(_CHUNKS)))
    return _CHUNKS[cache_key]


def _check_args(posterior, params0, optimizer, batch_size):
    check_posterior(posterior)
    if not (
        callable(getattr(optimizer, "init", None))
        and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (optax.sgd(0.01), "
            f"leapfrog(0.1), ...), got {type(optimizer).__name__}."
        )
    if batch_size is not None:
        batch_size = _validate.check_int("batch_size", batch_size)
        if batch_size > posterior.n:
            raise ValueError(
                f"batch_size = {batch_size} is larger than the number of data "
                f"n = {posterior.n}. Pass batch_size <= n, or batch_size=None for "
                "full-data gradients."
            )
    check_point(posterior, params0, "params0")
    return batch_size


def train(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    params0: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int | None,
    num_steps: int,
    checkpoint_every: int,
    path=None,
    progress: bool | None = None,
) -> Trajectory:
    """Minimise ``L_n`` of ``posterior`` with ``optimizer``, checkpointing as it goes.

    Each step ``t`` draws a minibatch ``B_t`` of ``batch_size`` data uniformly with
    replacement (key ``fold_in(rng_key, t)``) and applies the optimiser to
    ``∇ L_{B_t}(w_t)``, ``L_B = −mean_{i∈B} log p(x_i | w)``. The posterior's prior,
    β, γ and localiser are ignored.

    Parameters
    ----------
    rng_key
        PRNG key of the minibatch stream.
    posterior
        Supplies ``loglik_fn``, ``data`` and ``n`` (and ``full_loss_fn`` if any).
    params0
        Initial parameters (any pytree of float arrays).
    optimizer
        Any ``optax.GradientTransformation``: ``optax.sgd``, ``optax.sgd(η,
        momentum=μ)``, ``optax.adam``, :func:`~slt_sampler.training.leapfrog`, ...
    batch_size
        Minibatch size ``B <= n``; ``None`` uses the full-data gradient.
    num_steps
        Total steps (a resumed run counts the steps already done).
    checkpoint_every
        Spacing of checkpoints, in steps (one also at ``num_steps``).
    path
        Directory for checkpoints (created). A rerun with the same path resumes from
        the last checkpoint and returns the same trajectory as an uninterrupted run.
        The structures, batch size, spacing, ``n`` and key are checked against the
        checkpoints; the data values and the optimiser's hyperparameters are not
        (pass the same ones). ``None`` keeps everything in memory.
    progress
        tqdm bar (default: on a terminal).

    Returns
    -------
    Trajectory

    Raises
    ------
    ValueError
        A ``batch_size`` > n, a ``num_steps`` or ``checkpoint_every`` < 1, non-finite
        ``params0``, or checkpoints in ``path`` written by a run with other
        parameters, optimiser state, batch size, spacing or key.
    """
    _validate.check_key("rng_key", rng_key)
    batch_size = _check_args(posterior, params0, optimizer, batch_size)
    num_steps = _validate.check_int("num_steps", num_steps)
    every = _validate.check_int("checkpoint_every", checkpoint_every)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a directory path (str or pathlib.Path) or None (keep "
            f"checkpoints in memory), got {type(path).__name__} {path!r}."
        )
    params0 = jax.tree.map(jnp.asarray, params0)
    opt_state0 = optimizer.init(params0)
    store = Store(path)
    if store.path is not None:
        store.path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "params": describe(params0),
            "opt_state": describe(opt_state0),
            "batch_size": batch_size,
            "checkpoint_every": every,
            "n": posterior.n,
            "rng_key": key_data(rng_key),
        }
        check_meta(store.path, meta)
    chunk = _compiled_chunk(optimizer, batch_size, every)
    grid = sorted(set(range(0, num_steps, every)) | {num_steps})
    done = [s for s in store.steps() if s <= num_steps]
    if done:
        start = done[-1]
        rec = store.load(start)
        carry = (unflat("p", rec, params0), unflat("o", rec, opt_state0))
    else:
        start, carry = 0, (params0, opt_state0)
        loss, ham = _RECORD(posterior, *carry)
        store.save(0, checkpoint_record(0, 0, carry, loss, ham, np.zeros(0)))
    bar = _progress_bar(num_steps, start, progress)
    for stop in (s for s in grid if s > start):
        carry, losses = chunk(carry, posterior, rng_key, start, stop)
        loss, ham = _RECORD(posterior, *carry)
        losses = np.asarray(losses)[: stop - start]
        store.save(stop, checkpoint_record(stop, start, carry, loss, ham, losses))
        if bar is not None:
            bar.update(stop - start)
            bar.set_postfix(loss=f"{float(loss):.4g}")
        start = stop
    if bar is not None:
        bar.close()
    return _assemble(store, grid, params0)


def _assemble(store: Store, grid: list[int], params0) -> Trajectory:
    recs = {s: store.load(s) for s in grid}
    pieces, s = [], grid[-1]
    while s > 0:  # follow each checkpoint back to the one its segment started from
        rec = recs[s] if s in recs else store.load(s)
        pieces.append(rec["batch_loss"])
        s = int(rec["start"])
    batch = np.concatenate(pieces[::-1]) if pieces else np.zeros(0)
    params = jax.tree.map(
        lambda *xs: np.stack(xs),
        *[jax.tree.map(np.asarray, unflat("p", recs[s], params0)) for s in grid],
    )
    ham = np.array([float(recs[s]["hamiltonian"]) for s in grid])
    return Trajectory(
        steps=np.asarray(grid),
        params=params,
        loss=np.array([float(recs[s]["loss"]) for s in grid]),
        batch_loss=batch,
        hamiltonian=None if np.all(np.isnan(ham)) else ham,
    )


def _progress_bar(total: int, start: int, show: bool | None):
    if not (show if show is not None else sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="train", unit="step", leave=False)


def sgd_iterates(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    params0: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int | None,
    num_chains: int,
    num_steps: int,
    burn_in: int = 0,
    thinning: int = 1,
) -> Iterates:
    """Iterates of ``num_chains`` independent runs of ``optimizer`` from ``params0``.

    Each chain is :func:`train`'s step with its own key; after ``burn_in`` steps every
    ``thinning``-th position is kept with its full-data ``L_n``. Read as samples, the
    kept iterates estimate SGD's stationary law (Mandt, Hoffman & Blei 2017).

    Returns
    -------
    Iterates
        ``positions`` (chain, draw, ...) and ``loss`` (chain, draw), ``draw =
        num_steps // thinning``.
    """
    _validate.check_key("rng_key", rng_key)
    batch_size = _check_args(posterior, params0, optimizer, batch_size)
    num_steps = _validate.check_int("num_steps", num_steps)
    thinning = _validate.check_int("thinning", thinning)
    if thinning > num_steps:
        raise ValueError(
            f"thinning = {thinning} exceeds num_steps = {num_steps}: no iterate would "
            f"be kept (num_steps // thinning draws). Pass num_steps >= thinning."
        )
    params0 = jax.tree.map(jnp.asarray, params0)
    num_chains = _validate.check_int("num_chains", num_chains)
    burn_in = _validate.check_int("burn_in", burn_in, minimum=0)
    num_draws = num_steps // thinning
    step = _step_fn(posterior, optimizer, batch_size)

    def one_draw(carry, key):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(key, thinning))
        return carry, (carry[0], full_loss(posterior, carry[0]))

    def chain(key):
        k_burn, k_draw = jax.random.split(key)
        carry = (params0, optimizer.init(params0))
        carry, _ = jax.lax.scan(step, carry, jax.random.split(k_burn, burn_in))
        _, out = jax.lax.scan(one_draw, carry, jax.random.split(k_draw, num_draws))
        return out

    pos, loss = jax.jit(jax.vmap(chain))(jax.random.split(rng_key, num_chains))
    return Iterates(jax.tree.map(np.asarray, pos), np.asarray(loss))
