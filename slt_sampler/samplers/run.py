"""One driver for many chains: ``jit(scan(vmap(step)))``, sharded over all devices.

The Python loop runs over *chunks* of steps, never single steps: each chunk is one
compiled ``lax.scan``; between chunks the driver updates the progress bar, checks for
divergence and hands finished work to an optional ``on_chunk`` callback (for writing
results as they come). Chains are laid out along a leading axis that is sharded over
every device JAX sees (GPU when present; on CPU test with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``).

Inside the compiled run the driver can also record user observables at the kept draws
(``observe``) and stream per-datum accumulators over the full data (``pointwise``,
see :mod:`slt_sampler.samplers._accumulate`). With both off the compiled chunk is the
plain one, so the LLC path pays nothing for them. A temperature ladder
(:func:`slt_sampler.samplers.ladder.sample_ladder`) runs through the same chunk, its
β rungs flattened beside the chains.
"""

from __future__ import annotations

import dataclasses
import functools
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
from . import _accumulate
from ._accumulate import PointwiseStats, pool_pointwise
from ._spec import RunSpec, check_leading, check_spec

__all__ = [
    "PointwiseStats",
    "SampleResult",
    "broadcast_chains",
    "check_sampler_and_posterior",
    "pool_pointwise",
    "sample",
]


class SampleResult(NamedTuple):
    """Output of :func:`sample`; every per-step array leads with ``(chain, draw)``.

    From :func:`~slt_sampler.samplers.ladder.sample_ladder` every array (and the
    final state) leads with ``(beta, chain)`` instead of ``(chain,)``.

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
        ``num_chains * num_steps / run_seconds`` (chain-steps per second; a ladder
        counts every rung's chains).
    diverged : np.ndarray (chain,) of bool
        Whether each chain ever produced a non-finite state.
    observations : pytree of np.ndarray (chain, draw, ...) or None
        ``observe(position)`` at every kept position, when ``observe`` is given.
    pointwise : PointwiseStats or None
        Per-datum ``log E_w p(X_i|w)``, ``E_w log p(X_i|w)`` and
        ``Var_w log p(X_i|w)`` per chain over the kept draws, when ``pointwise``;
        pool the chains with :func:`pool_pointwise`.
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
    observations: PyTree | None = None
    pointwise: PointwiseStats | None = None


def broadcast_chains(position: PyTree, num_chains: int) -> PyTree:
    """Repeat a single position along a new leading chain axis."""
    return jax.tree.map(
        lambda x: jnp.broadcast_to(x, (num_chains,) + jnp.shape(x)), position
    )


def _chain_sharding(num_chains: int, max_devices: int | None = None):
    devices = jax.devices()[:max_devices]
    usable = max(d for d in range(1, len(devices) + 1) if num_chains % d == 0)
    mesh = Mesh(np.array(devices[:usable]), ("chain",))
    return NamedSharding(mesh, PartitionSpec("chain"))


def posterior_axes(posterior: TemperedPosterior) -> TemperedPosterior:
    """``vmap`` axes of a ladder posterior: β per chain, everything else shared."""
    return dataclasses.replace(posterior, data=None, beta=0, gamma=None, center=None)


def _vmapped_step(sampler, post, ladder):
    """The per-chain step over the leading axis; ``ladder`` says whether β (and, when
    ``"stacked"``, the sampler's numbers) vary along it."""
    if ladder is None:
        return lambda keys, state: jax.vmap(sampler.step, in_axes=(0, 0, None))(
            keys, state, post
        )
    axes = (0 if ladder == "stacked" else None, 0, 0, posterior_axes(post))
    step = jax.vmap(lambda s, k, st, p: s.step(k, st, p), in_axes=axes)
    return lambda keys, state: step(sampler, keys, state, post)


def _make_chunk(
    thinning: int,
    keep_positions: bool,
    record_full: bool,
    observe: Callable | None = None,
    pointwise_chunk: int | None = None,
    ladder: str | None = None,
):
    """Build ``chunk(state, acc, posterior, sampler, key, num_draws)``; the sampler and
    the posterior are arguments (their numbers traced), so new step sizes, β or γ
    reuse the compiled chunk. ``acc`` is ``None`` unless ``pointwise_chunk`` is set;
    ``observe`` and ``pointwise_chunk`` add work only at kept draws."""

    def one_step(carry, key):
        state, post, sampler = carry
        keys = jax.random.split(key, jax.tree.leaves(state)[0].shape[0])
        new, info = _vmapped_step(sampler, post, ladder)(keys, state)
        out = info._asdict()
        if record_full:
            out["full_loss"] = jax.vmap(lambda w: full_loss(post, w))(state.position)
        return (new, post, sampler), out

    def one_draw(carry, key):
        state, post, sampler, acc = carry
        keys = jax.random.split(key, thinning)
        (state, post, sampler), outs = jax.lax.scan(
            one_step, (state, post, sampler), keys
        )
        w = state.position
        pos = w if keep_positions else None
        obs = None if observe is None else jax.vmap(observe)(w)
        if pointwise_chunk is not None:
            loglik = jax.vmap(
                lambda p: _accumulate.pointwise_loglik(post, p, pointwise_chunk)
            )(w)
            acc = _accumulate.update(acc, loglik)
        return (state, post, sampler, acc), (outs, pos, obs)

    def chunk(state, acc, post, sampler, key, num_draws_static):
        keys = jax.random.split(key, num_draws_static)
        (state, _, _, acc), (outs, pos, obs) = jax.lax.scan(
            one_draw, (state, post, sampler, acc), keys
        )
        # (draw, thinning, chain) -> (chain, draw * thinning)
        outs = jax.tree.map(
            lambda x: jnp.moveaxis(x.reshape((-1,) + x.shape[2:]), 0, 1), outs
        )
        pos, obs = jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), (pos, obs))
        return state, acc, outs, pos, obs

    return chunk


_COMPILED: dict = {}


def _compiled_chunk(config: tuple, args: tuple):
    """AOT-compile a chunk once per (config, argument structure, shapes, shardings).

    Lets :func:`sample` report compile time apart from run time while repeated calls
    with new numbers (step size, β, γ, data values) reuse the executable. ``config``
    is ``(thinning, keep, record_full, observe, pointwise_chunk, ladder, size)``.
    """
    leaves, treedef = jax.tree.flatten(args)
    sig = tuple(
        (jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)) for x in leaves
    )
    cache_key = (config, treedef, sig)
    if cache_key not in _COMPILED:
        *structure, size = config
        fn = jax.jit(_make_chunk(*structure), static_argnums=(5,))
        _COMPILED[cache_key] = fn.lower(*args, size).compile()
        if len(_COMPILED) > 64:
            _COMPILED.pop(next(iter(_COMPILED)))
    return _COMPILED[cache_key]


@functools.partial(jax.jit, static_argnames=("ladder",))
def _init_states(sampler, positions, posterior, ladder=None):
    """Every chain's initial state (module-level, so repeated runs reuse it)."""
    if ladder is None:
        return jax.vmap(lambda w: sampler.init(w, posterior))(positions)
    axes = (0 if ladder == "stacked" else None, 0, posterior_axes(posterior))
    return jax.vmap(lambda s, w, p: s.init(w, p), in_axes=axes)(
        sampler, positions, posterior
    )


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
    observe: Callable[[PyTree], PyTree] | None = None,
    pointwise: bool = False,
    pointwise_chunk: int | None = None,
    max_devices: int | None = None,
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
        Keep every ``thinning``-th position (losses are recorded at every step);
        observables and pointwise accumulators use the same kept draws.
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
    chains_axis
        ``init_position`` carries a leading ``(num_chains,)`` axis.
    observe
        ``observe(position) -> pytree of arrays``, evaluated inside the compiled run at
        every kept draw; returned as ``result.observations`` with leading
        ``(chain, draw)`` axes. Pass the same function object again to reuse the
        compiled run.
    pointwise
        Stream per-datum ``log p(X_i | w)`` statistics over the kept draws and the
        full data (``result.pointwise``; memory O(chains × n), not × draws).
    pointwise_chunk
        Data per block of the per-datum log-likelihood (default 8192); only with
        ``pointwise=True``.
    max_devices
        Shard the chains over at most this many of the devices JAX sees (default:
        all). On CPU, for small models the per-step synchronisation of sharded
        chains costs more than the parallelism gains.
    """
    _validate.check_key("rng_key", rng_key)
    if max_devices is not None:
        max_devices = _validate.check_int("max_devices", max_devices)
    check_sampler_and_posterior(sampler, posterior)
    num_chains = _validate.check_int("num_chains", num_chains)
    check_point(
        posterior, init_position, "init_position", leading_axes=int(chains_axis)
    )
    if chains_axis:
        check_leading("init_position", init_position, (num_chains,), "num_chains")
        positions0 = init_position
    else:
        positions0 = broadcast_chains(init_position, num_chains)
    spec = check_spec(
        posterior,
        init_position,
        int(chains_axis),
        num_steps=num_steps,
        thinning=thinning,
        keep_positions=keep_positions,
        record_full_loss=record_full_loss,
        chunk_steps=chunk_steps,
        progress=progress,
        on_chunk=on_chunk,
        observe=observe,
        pointwise=pointwise,
        pointwise_chunk=pointwise_chunk,
    )
    spec = spec._replace(max_devices=max_devices)
    return drive(rng_key, sampler, posterior, positions0, spec)


def drive(rng_key, sampler, posterior, positions0, spec: RunSpec) -> SampleResult:
    """Run the chunks of ``spec`` from ``positions0`` (leading chain axis, already
    checked) and collect the results; the engine behind :func:`sample` and
    :func:`~slt_sampler.samplers.ladder.sample_ladder`."""
    num_chains = jax.tree.leaves(positions0)[0].shape[0]
    thinning = spec.thinning
    draws_total = spec.num_steps // thinning
    if spec.chunk_steps is None:
        chunk_draws = max(1, math.ceil(draws_total / 20))
    else:
        chunk_draws = max(1, spec.chunk_steps // thinning)
    chunk_draws = min(chunk_draws, draws_total)

    sharding = _chain_sharding(num_chains, spec.max_devices)
    positions0 = jax.device_put(positions0, sharding)
    if spec.ladder is not None:
        posterior = dataclasses.replace(
            posterior, beta=jax.device_put(posterior.beta, sharding)
        )
        if spec.ladder == "stacked":
            sampler = jax.device_put(sampler, sharding)
    state = _init_states(sampler, positions0, posterior, ladder=spec.ladder)
    # every state field on the chain sharding (fields not computed from the position,
    # e.g. a preconditioner handed on, would otherwise come out unsharded and the
    # second chunk would not match the executable compiled for the first)
    state = jax.device_put(state, sharding)
    acc = None
    if spec.pointwise_chunk is not None:
        dtype = jnp.result_type(float)
        acc = _accumulate.init_accumulator(num_chains, posterior.n, dtype)
        acc = jax.device_put(acc, sharding)

    sizes = [chunk_draws] * (draws_total // chunk_draws)
    if draws_total % chunk_draws:
        sizes.append(draws_total % chunk_draws)
    keys = jax.random.split(rng_key, len(sizes))
    config = (
        thinning,
        spec.keep_positions,
        spec.record_full_loss,
        spec.observe,
        spec.pointwise_chunk,
        spec.ladder,
    )
    show = spec.progress
    if show is None:
        show = len(sizes) > 1 and sys.stderr.isatty()
    bar = _progress(spec.num_steps, sampler, show)
    outs_all, pos_all, obs_all = [], [], []
    compile_s = 0.0
    t_run = 0.0
    done = 0
    for i, (size, key) in enumerate(zip(sizes, keys)):
        if i == 0 or size != sizes[0]:
            t0 = time.perf_counter()
            runner = _compiled_chunk(
                config + (size,), (state, acc, posterior, sampler, key)
            )
            compile_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        state, acc, outs, pos, obs = runner(state, acc, posterior, sampler, key)
        outs, pos, obs = jax.device_get((outs, pos, obs))
        t_run += time.perf_counter() - t0
        outs_all.append(outs)
        pos_all.append(pos)
        obs_all.append(obs)
        done += size * thinning
        if bar is not None:
            n_div = int(np.any(outs["is_divergent"], axis=1).sum())
            bar.set_postfix(
                loss=f"{np.nanmean(outs['loss'][:, -1]):.4g}", diverged=n_div
            )
            bar.update(size * thinning)
        if spec.on_chunk is not None:
            reshape = spec.reshape or (lambda x: x)
            spec.on_chunk(done, {k: reshape(v) for k, v in outs.items()})
    if bar is not None:
        bar.close()

    merged = {k: np.concatenate([o[k] for o in outs_all], axis=1) for k in outs_all[0]}
    losses = merged.pop("loss")

    def along_draws(parts):
        return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *parts)

    diverged = np.any(merged["is_divergent"], axis=1) | ~np.all(
        np.isfinite(losses), axis=1
    )
    return SampleResult(
        losses=losses,
        loss_kind=getattr(sampler, "info_loss_kind", "batch"),
        stats=merged,
        positions=along_draws(pos_all) if spec.keep_positions else None,
        final_state=state,
        compile_seconds=compile_s,
        run_seconds=t_run,
        steps_per_second=num_chains * spec.num_steps / max(t_run, 1e-12),
        diverged=diverged,
        observations=along_draws(obs_all) if spec.observe is not None else None,
        pointwise=None if acc is None else _accumulate.finalize(acc),
    )


def check_sampler_and_posterior(sampler, posterior) -> None:
    """Raise ``TypeError`` unless ``sampler`` follows the ``init`` / ``step`` contract
    and ``posterior`` is a :class:`TemperedPosterior`."""
    check_sampler(sampler)
    check_posterior(posterior)


def check_sampler(sampler) -> None:
    """Raise ``TypeError`` unless ``sampler`` has callable ``init`` and ``step``."""
    if not (
        callable(getattr(sampler, "init", None))
        and callable(getattr(sampler, "step", None))
    ):
        raise TypeError(
            f"sampler must be a sampler object with init and step (e.g. SGLD(1e-5, "
            f"100), MALA(1e-3), NUTS(...)), got {type(sampler).__name__}."
        )


def _progress(total: int | None, sampler, show: bool, interval: float = 0.5):
    """A tqdm bar of ``total`` steps (``None``: open-ended) named after ``sampler``,
    redrawn at most every ``interval`` seconds; ``None`` when not ``show``."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=f"{getattr(sampler, 'name', 'sampler')}",
        unit="step",
        leave=False,
        mininterval=interval,
    )
