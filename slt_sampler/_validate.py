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


def as_numbers(name: str, value, *, placeholders: bool = False):
    """``value`` as a NumPy array when it is a concrete number or array; ``None`` for
    ``None`` and tracers (nothing to check). Strings, booleans and other non-numeric
    values raise ``TypeError``, except, with ``placeholders=True``, objects that are
    not numbers at all (JAX rebuilds pytrees with such leaves inside transforms)."""
    if value is None or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}."
        )
    if placeholders and not isinstance(
        value, (int, float, np.number, np.ndarray, jax.Array, list, tuple)
    ):
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = np.asarray(value, dtype=object)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise TypeError(f"{name} must be a number, got {value!r} (dtype {arr.dtype}).")
    return arr


def check_positive(name: str, value, fix: str = "", *, placeholders=False) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is finite and > 0."""
    v = as_numbers(name, value, placeholders=placeholders)
    if v is None:
        return
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(POSITIVE.format(name=name, value=_show(value), fix=fix))


def check_non_negative(name: str, value, fix: str = "", *, placeholders=False) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is finite and >= 0."""
    v = as_numbers(name, value, placeholders=placeholders)
    if v is None:
        return
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(NON_NEGATIVE.format(name=name, value=_show(value), fix=fix))


def check_scalar(name: str, value, fix: str = "") -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is a scalar (0-d)."""
    if as_numbers(name, value) is None:
        return
    shape = np.shape(value)
    if shape != ():
        raise ValueError(
            f"{name} must be a scalar, got an array of shape {shape}. {fix}".rstrip()
        )


def check_finite_tree(name: str, tree, fix: str = "") -> None:
    """Raise ``ValueError`` if a concrete pytree has a non-finite value in any leaf."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not _is_concrete(leaf):
            continue
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.number):
            raise TypeError(
                f"{name} leaf {jax.tree_util.keystr(path) or '<root>'} has dtype "
                f"{arr.dtype}; parameters must be numeric arrays. {fix}".rstrip()
            )
        bad = int(np.sum(~np.isfinite(arr)))
        if bad:
            where = jax.tree_util.keystr(path) or "<root>"
            raise ValueError(
                f"{name} has {bad} NaN/inf value(s) in leaf {where}. {fix}".rstrip()
            )


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


def check_same_tree(
    name: str, tree, other_name: str, other, leading_axes: int = 0
) -> None:
    """Raise unless ``tree`` matches ``other`` in structure and leaf shapes (ignoring
    ``leading_axes`` extra leading axes of ``tree``, e.g. a chain axis)."""
    s1, s2 = jax.tree.structure(tree), jax.tree.structure(other)
    if s1 != s2:
        raise ValueError(
            TREE_MISMATCH.format(name=name, other=other_name, detail=f"{s1} vs {s2}")
        )
    for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(other)):
        if np.shape(a)[leading_axes:] != np.shape(b):
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


def check_fields(obj, *, positive=(), non_negative=(), ints=(), optional_ints=()):
    """Check a sampler-like dataclass's fields by name (``__post_init__`` helper).

    Numeric fields are checked only when concrete (JAX rebuilds these objects with
    tracers and placeholders inside transformations); integer fields always."""
    kind = type(obj).__name__
    for f in positive:
        check_positive(f, getattr(obj, f), f"(in {kind}).", placeholders=True)
    for f in non_negative:
        check_non_negative(f, getattr(obj, f), f"(in {kind}).", placeholders=True)
    for f in ints:
        check_int(f, getattr(obj, f))
    for f in optional_ints:
        if getattr(obj, f) is not None:
            check_int(f, getattr(obj, f))


def check_key(name: str, key) -> None:
    """Raise unless a concrete ``key`` is a JAX PRNG key.

    Accepts typed keys (``jax.random.key(seed)``) and legacy raw ``uint32`` keys of
    shape ``(2,)`` (``jax.random.PRNGKey(seed)``); tracers pass through."""
    if isinstance(key, jax.core.Tracer):
        return
    fix = "Pass a PRNG key, e.g. jax.random.key(seed)."
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key
    ):
        if key.shape != ():
            raise ValueError(
                f"{name} must be a single PRNG key, got an array of {key.shape} keys. "
                f"Split it and pass one key, e.g. jax.random.split(key)[0]."
            )
        return
    if (
        isinstance(key, (jax.Array, np.ndarray))
        and key.dtype == np.uint32
        and key.shape == (2,)
    ):
        return
    shown = f"{type(key).__name__} {key!r}"
    if len(shown) > 120:
        shown = f"{type(key).__name__} of shape {np.shape(key)}"
    raise TypeError(f"{name} must be a JAX PRNG key, got {shown}. {fix}")


def check_unit_interval(name: str, value, fix: str = "", *, closed_low=False) -> None:
    """Raise unless a concrete ``value`` is a finite scalar in (0, 1) (or [0, 1) with
    ``closed_low``)."""
    check_scalar(name, value, fix)
    v = as_numbers(name, value)
    if v is None:
        return
    lo_ok = v >= 0 if closed_low else v > 0
    if not (np.isfinite(v) and lo_ok and v < 1):
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {_show(value)!r}. {fix}")
