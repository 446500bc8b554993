"""One driver for many chains: ``jit(scan(vmap(step)))``, sharded over all devices.

The Python loop runs over *chunks* of steps, never single steps: each chunk is one
compiled ``lax.scan``; between chunks the driver updates the progress bar, checks for
divergence and hands finished work to an optional ``on_chunk`` callback (for writing
results as they come). Chains are laid out along a leading axis that is sharded over
every device JAX sees (GPU when present; on CPU test with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior, check_posterior, full_loss
from ..types import PRNGKey, PyTree


class SampleResult(NamedTuple):
    """Output of :func:`sample`; every per-step array leads with ``(chain, draw)``.

    Attributes
    ----------
    losses : np.ndarray (chain, step)
        The loss recorded at every step (see ``loss_kind``).
    loss_kind : str
        ``"batch"`` (minibatch mean NLL at the pre-step position) or ``"full"`` (L_n).
    stats : dict of np.ndarray (chain, step)
        Every ``Info`` field per step (``is_divergent``, ``acceptance_rate``, ...).
    positions : pytree of np.ndarray (chain, draw, ...) or None
        Kept positions (every ``thinning``-th step), only when requested.
    final_state : the samplers' state after the last step (leading chain axis).
    compile_seconds, run_seconds : float
        Time of the first chunk's compilation and of the sampling proper.
    steps_per_second : float
        ``num_chains * num_steps / run_seconds``.
    diverged : np.ndarray (chain,) of bool
        Whether each chain ever produced a non-finite state.
    """

    losses: np.ndarray
    loss_kind: str
    stats: dict
    positions: PyTree | None
    final_state: PyTree
    compile_seconds: float
    run_seconds: float
    steps_per_second: float
    diverged: np.ndarray


def broadcast_chains(position: PyTree, num_chains: int) -> PyTree:
    """Repeat a single position along a new leading chain axis."""
    return jax.tree.map(
        lambda x: jnp.broadcast_to(x, (num_chains,) + jnp.shape(x)), position
    )


def _chain_sharding(num_chains: int):
    devices = jax.devices()
    usable = max(d for d in range(1, len(devices) + 1) if num_chains % d == 0)
    mesh = Mesh(np.array(devices[:usable]), ("chain",))
    return NamedSharding(mesh, PartitionSpec("chain"))


def _make_chunk(thinning: int, keep_positions: bool, record_full: bool):
    """Build ``chunk(state, posterior, sampler, key, num_draws)``; the sampler and the
    posterior are arguments (their numbers traced), so new step sizes, β or γ reuse
    the compiled chunk."""

    def one_step(carry, key):
        state, post, sampler = carry
        keys = jax.random.split(key, jax.tree.leaves(state)[0].shape[0])
        step = jax.vmap(sampler.step, in_axes=(0, 0, None))
        new, info = step(keys, state, post)
        out = info._asdict()
        if record_full:
            out["full_loss"] = jax.vmap(lambda w: full_loss(post, w))(state.position)
        return (new, post, sampler), out

    def one_draw(carry, key):
        keys = jax.random.split(key, thinning)
        carry, outs = jax.lax.scan(one_step, carry, keys)
        pos = carry[0].position if keep_positions else None
        return carry, (outs, pos)

    def chunk(state, post, sampler, key, num_draws_static):
        keys = jax.random.split(key, num_draws_static)
        (state, _, _), (outs, pos) = jax.lax.scan(
            one_draw, (state, post, sampler), keys
        )
        # (draw, thinning, chain) -> (chain, draw * thinning)
        outs = jax.tree.map(
            lambda x: jnp.moveaxis(x.reshape((-1,) + x.shape[2:]), 0, 1), outs
        )
        if pos is not None:
            pos = jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), pos)
        return state, outs, pos

    return chunk


_COMPILED: dict = {}


def _compiled_chunk(config: tuple, args: tuple):
    """AOT-compile a chunk once per (config, argument structure, shapes, shardings).

    Lets :func:`sample` report compile time apart from run time while repeated calls
    with new numbers (step size, β, γ, data values) reuse the executable.
    """
    leaves, treedef = jax.tree.flatten(args)
    sig = tuple(
        (jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)) for x in leaves
    )
    cache_key = (config, treedef, sig)
    if cache_key not in _COMPILED:
        thinning, keep, record_full, size = config
        fn = jax.jit(_make_chunk(thinning, keep, record_full), static_argnums=(4,))
        _COMPILED[cache_key] = fn.lower(*args, size).compile()
        if len(_COMPILED) > 64:
            _COMPILED.pop(next(iter(_COMPILED)))
    return _COMPILED[cache_key]


def sample(
    rng_key: PRNGKey,
    sampler,
    posterior: TemperedPosterior,
    init_position: PyTree,
    *,
    num_chains: int,
    num_steps: int,
    thinning: int = 1,
    keep_positions: bool = False,
    record_full_loss: bool = False,
    chunk_steps: int | None = None,
    progress: bool | None = None,
    on_chunk: Callable[[int, dict], None] | None = None,
    chains_axis: bool = False,
) -> SampleResult:
    """Run ``num_chains`` chains of ``sampler`` for ``num_steps`` steps each.

    Parameters
    ----------
    rng_key
        PRNG key; the same key gives the same numbers.
    sampler
        Any sampler object with ``init`` / ``step`` (SGLD, SGHMC, MALA, HMC, NUTS).
    posterior
        The target.
    init_position
        Start of every chain (or, with ``chains_axis=True``, one start per chain along a
        leading axis).
    num_chains, num_steps
        Chains and steps per chain; ``num_steps`` must be a multiple of ``thinning``.
    thinning
        Keep every ``thinning``-th position (losses are recorded at every step).
    keep_positions
        Return positions (memory: chains × num_steps/thinning × dim).
    record_full_loss
        Also record the full-data L_n at every step (costs a full forward pass per step
        for stochastic-gradient samplers).
    chunk_steps
        Steps per compiled chunk (default: about 20 chunks). Progress is reported and
        divergence checked once per chunk.
    progress
        Show a tqdm bar (default: on a terminal, when there is more than one chunk).
    on_chunk
        ``on_chunk(steps_done, arrays)`` after every chunk, e.g. to write partial results.
    """
    check_sampler_and_posterior(sampler, posterior)
    num_chains = _validate.check_int("num_chains", num_chains)
    num_steps = _validate.check_int("num_steps", num_steps)
    thinning = _validate.check_int("thinning", thinning)
    check_point(
        posterior, init_position, "init_position", leading_axes=int(chains_axis)
    )
    if chains_axis:
        lead = {
            np.shape(x)[0] if np.ndim(x) else None
            for x in jax.tree.leaves(init_position)
        }
        if lead != {num_chains}:
            raise ValueError(
                f"with chains_axis=True every leaf of init_position needs a leading "
                f"axis of num_chains = {num_chains}; got leading sizes {sorted(lead, key=str)}."
            )
    if num_steps % thinning:
        raise ValueError(
            f"num_steps = {num_steps} must be a multiple of thinning = {thinning}; "
            f"use num_steps = {thinning * math.ceil(num_steps / thinning)}."
        )
    draws_total = num_steps // thinning
    if chunk_steps is None:
        chunk_draws = max(1, math.ceil(draws_total / 20))
    else:
        chunk_draws = max(
            1, _validate.check_int("chunk_steps", chunk_steps) // thinning
        )
    chunk_draws = min(chunk_draws, draws_total)

    sharding = _chain_sharding(num_chains)
    if chains_axis:
        positions0 = init_position
    else:
        positions0 = broadcast_chains(init_position, num_chains)
    positions0 = jax.device_put(positions0, sharding)
    state = jax.jit(jax.vmap(lambda w: sampler.init(w, posterior)))(positions0)
    # every state field on the chain sharding (fields not computed from the position,
    # e.g. a preconditioner handed on, would otherwise come out unsharded and the
    # second chunk would not match the executable compiled for the first)
    state = jax.device_put(state, sharding)

    sizes = [chunk_draws] * (draws_total // chunk_draws)
    if draws_total % chunk_draws:
        sizes.append(draws_total % chunk_draws)
    keys = jax.random.split(rng_key, len(sizes))

    show = progress if progress is not None else len(sizes) > 1 and sys.stderr.isatty()
    bar = _progress(num_steps, sampler, show)
    outs_all, pos_all = [], []
    compile_s = 0.0
    t_run = 0.0
    done = 0
    for i, (size, key) in enumerate(zip(sizes, keys)):
        if i == 0 or size != sizes[0]:
            t0 = time.perf_counter()
            runner = _compiled_chunk(
                (thinning, keep_positions, record_full_loss, size),
                (state, posterior, sampler, key),
            )
            compile_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        state, outs, pos = runner(state, posterior, sampler, key)
        outs = jax.device_get(outs)
        t_run += time.perf_counter() - t0
        outs_all.append(outs)
        if keep_positions:
            pos_all.append(jax.device_get(pos))
        done += size * thinning
        if bar is not None:
            n_div = int(np.any(outs["is_divergent"], axis=1).sum())
            bar.set_postfix(
                loss=f"{np.nanmean(outs['loss'][:, -1]):.4g}", diverged=n_div
            )
            bar.update(size * thinning)
        if on_chunk is not None:
            on_chunk(done, outs)
    if bar is not None:
        bar.close()

    merged = {k: np.concatenate([o[k] for o in outs_all], axis=1) for k in outs_all[0]}
    losses = merged.pop("loss")
    positions = None
    if keep_positions:
        positions = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *pos_all)
    diverged = np.any(merged["is_divergent"], axis=1) | ~np.all(
        np.isfinite(losses), axis=1
    )
    return SampleResult(
        losses=losses,
        loss_kind=getattr(sampler, "info_loss_kind", "batch"),
        stats=merged,
        positions=positions,
        final_state=state,
        compile_seconds=compile_s,
        run_seconds=t_run,
        steps_per_second=num_chains * num_steps / max(t_run, 1e-12),
        diverged=diverged,
    )


def check_sampler_and_posterior(sampler, posterior) -> None:
    """Raise ``TypeError`` unless ``sampler`` follows the ``init`` / ``step`` contract
    and ``posterior`` is a :class:`TemperedPosterior`."""
    if not (
        callable(getattr(sampler, "init", None))
        and callable(getattr(sampler, "step", None))
    ):
        raise TypeError(
            f"sampler must be a sampler object with init and step (e.g. SGLD(1e-5, "
            f"100), MALA(1e-3), NUTS(...)), got {type(sampler).__name__}."
        )
    check_posterior(posterior)


def _progress(total: int, sampler, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=f"{getattr(sampler, 'name', 'sampler')}",
        unit="step",
        leave=False,
        mininterval=0.5,
    )
