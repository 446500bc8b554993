"""The recording options of one driver run (:class:`RunSpec`) and their eager checks,
shared by :func:`~slt_sampler.samplers.run.sample` and
:func:`~slt_sampler.samplers.ladder.sample_ladder`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from .. import _validate
from . import _accumulate


class RunSpec(NamedTuple):
    """What :func:`~slt_sampler.samplers.run.drive` records and how (checked by the
    public entry points)."""

    num_steps: int
    thinning: int = 1
    keep_positions: bool = False
    record_full_loss: bool = False
    chunk_steps: int | None = None
    progress: bool | None = None
    on_chunk: Callable | None = None
    observe: Callable | None = None
    pointwise_chunk: int | None = None  # None: no per-datum accumulators
    ladder: str | None = None  # None, "shared" or "stacked" sampler numbers
    reshape: Callable | None = None  # flat chain axis -> caller's axes (on_chunk)
    max_devices: int | None = None  # shard chains over at most this many devices


def check_leading(name, tree, lead: tuple, what: str) -> None:
    """Raise unless every leaf of ``tree`` starts with the axes ``lead``."""
    found = {tuple(np.shape(x)[: len(lead)]) for x in jax.tree.leaves(tree)}
    if found != {lead}:
        raise ValueError(
            f"every leaf of {name} needs leading axes {lead} ({what}); got leading "
            f"sizes {sorted(found)}."
        )


def check_spec(posterior, point, leading_axes: int, **kw) -> RunSpec:
    """Check the recording options of :func:`sample` and return a :class:`RunSpec`."""
    num_steps = _validate.check_int("num_steps", kw["num_steps"])
    thinning = _validate.check_int("thinning", kw["thinning"])
    if num_steps % thinning:
        raise ValueError(
            f"num_steps = {num_steps} must be a multiple of thinning = {thinning}; "
            f"use num_steps = {thinning * math.ceil(num_steps / thinning)}."
        )
    if kw["chunk_steps"] is not None:
        _validate.check_int("chunk_steps", kw["chunk_steps"])
    observe = kw.pop("observe")
    if observe is not None:
        check_observe(observe, point, leading_axes)
    pointwise, chunk = kw.pop("pointwise"), kw.pop("pointwise_chunk")
    if not isinstance(pointwise, (bool, np.bool_)):
        raise TypeError(f"pointwise must be True or False, got {pointwise!r}.")
    if chunk is not None and not pointwise:
        raise ValueError(
            f"pointwise_chunk = {chunk!r} was given but pointwise=False; pass "
            "pointwise=True to stream per-datum statistics, or drop pointwise_chunk."
        )
    if pointwise:
        chunk = _accumulate.DEFAULT_CHUNK if chunk is None else chunk
        chunk = min(_validate.check_int("pointwise_chunk", chunk), posterior.n)
    kw.update(num_steps=num_steps, thinning=thinning)
    return RunSpec(observe=observe, pointwise_chunk=chunk, **kw)


def check_observe(observe, point, leading_axes: int) -> None:
    """``observe`` must be callable and map one position to a pytree of numeric
    arrays (checked abstractly with ``jax.eval_shape``, nothing is computed)."""
    if not callable(observe):
        raise TypeError(
            f"observe must be a function position -> pytree of arrays (e.g. "
            f"lambda w: {{'norm': jnp.sum(w**2)}}), got {type(observe).__name__}."
        )
    one = jax.tree.map(lambda x: x[(0,) * leading_axes], point)
    try:
        out = jax.eval_shape(observe, one)
    except Exception as err:
        raise type(err)(
            f"observe(position) failed on one chain's position: {err}. It must map "
            "a single position (no chain axis) to a pytree of arrays."
        ) from err
    leaves = jax.tree.leaves(out)
    bad = [x for x in leaves if not hasattr(x, "dtype")]
    if not leaves or bad:
        raise TypeError(
            f"observe(position) must return a non-empty pytree of arrays, got {out!r}."
        )
