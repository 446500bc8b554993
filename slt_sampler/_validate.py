"""Eager argument checks with messages that name the argument and the fix.

Only concrete (non-traced) values are checked here; traced failures become NaN plus an
``Info`` flag inside the samplers.
"""

from __future__ import annotations

import math

import jax
import numpy as np

POSITIVE = "{name} must be a finite number > 0, got {value!r}. {fix}"
NON_NEGATIVE = "{name} must be a finite number >= 0, got {value!r}. {fix}"
NAN_DATA = (
    "data contains NaN or inf in leaf {path} ({count} non-finite values). "
    "Drop or impute those rows before building the posterior."
)
LEADING_AXIS = (
    "data leaves must share one leading axis (the number of data n); leaf {path} has "
    "shape {shape} but the first leaf has n = {n}. Pass arrays of shape (n, ...)."
)
EMPTY_DATA = "data must hold at least one datum; the leading axis has size {n}."
TREE_MISMATCH = (
    "{name} must have the same structure and shapes as {other}: {detail}. "
    "Pass a pytree shaped like the model parameters."
)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_positive(name: str, value, fix: str = "") -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is finite and > 0."""
    if value is None or not _is_concrete(value):
        return
    v = np.asarray(value)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(POSITIVE.format(name=name, value=_show(value), fix=fix))


def check_non_negative(name: str, value, fix: str = "") -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is finite and >= 0."""
    if value is None or not _is_concrete(value):
        return
    v = np.asarray(value)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(NON_NEGATIVE.format(name=name, value=_show(value), fix=fix))


def check_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_data(data) -> int:
    """Check a data pytree: one shared leading axis n >= 1, all values finite.

    Returns n.
    """
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise ValueError(
            "data is empty: pass arrays (or a pytree of arrays) of shape (n, ...)."
        )
    n = None
    for path, leaf in leaves:
        shape = np.shape(leaf)
        where = jax.tree_util.keystr(path) or "<root>"
        if len(shape) == 0:
            raise ValueError(
                f"data leaf {where} is a scalar; every leaf needs a leading axis of size n."
            )
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise ValueError(LEADING_AXIS.format(path=where, shape=shape, n=n))
        if _is_concrete(leaf):
            arr = np.asarray(leaf)
            if np.issubdtype(arr.dtype, np.inexact):
                bad = int(np.sum(~np.isfinite(arr)))
                if bad:
                    raise ValueError(NAN_DATA.format(path=where, count=bad))
    if n == 0:
        raise ValueError(EMPTY_DATA.format(n=n))
    return int(n)


def check_same_tree(name: str, tree, other_name: str, other) -> None:
    """Raise unless ``tree`` matches ``other`` in structure and leaf shapes."""
    s1, s2 = jax.tree.structure(tree), jax.tree.structure(other)
    if s1 != s2:
        raise ValueError(
            TREE_MISMATCH.format(name=name, other=other_name, detail=f"{s1} vs {s2}")
        )
    for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(other)):
        if np.shape(a) != np.shape(b):
            raise ValueError(
                TREE_MISMATCH.format(
                    name=name,
                    other=other_name,
                    detail=f"shape {np.shape(a)} vs {np.shape(b)}",
                )
            )


def _show(value):
    try:
        v = float(np.asarray(value))
        return v if math.isfinite(v) else value
    except (TypeError, ValueError):
        return value
