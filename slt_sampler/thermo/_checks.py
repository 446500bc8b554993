"""Eager argument checks shared by the ``thermo`` modules.

Every failure is a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong value) whose message names the function, the argument, the value received and
the fix. Shapes and dtypes are static, so they are checked on jax tracers too; values
(finite, in range) are checked only when concrete -- inside ``jit``/``vmap`` they are
left to the ``Info`` flags. Checks run in Python, once per call, before any compile.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from .._validate import _is_concrete

MSG_TYPE = "{fn}: {name} must be {want}, got {got}. {fix}"
MSG_INT = "{fn}: {name} must be an int >= {minimum}, got {value!r}. {fix}"
MSG_RANGE = "{fn}: {name} must be {want}, got {value}. {fix}"
MSG_CHOICE = "{fn}: {name} must be one of {choices}, got {value!r}."
MSG_NDIM = "{fn}: {name} must have {want} axes ({layout}), got shape {shape}. {fix}"
MSG_SHAPE = "{fn}: {name} must have shape {want}, got shape {shape}. {fix}"
MSG_EMPTY = "{fn}: {name} is empty (shape {shape}); {fix}"
MSG_DTYPE = "{fn}: {name} must have a {want} dtype, got {dtype}. {fix}"
MSG_FINITE = "{fn}: {name} contains {count} NaN or inf value(s) (shape {shape}). {fix}"
MSG_KEY = (
    "{fn}: {name} must be a PRNG key, got {got}. Pass jax.random.key(seed) "
    "(split it for several calls)."
)
FIX_FINITE = "Drop or impute the non-finite entries before the call."

_KINDS = {
    "float": ("floating", "fc"),
    "real": ("real (int or float)", "iuf"),
    "int": ("integer", "iu"),
    "bool": ("bool", "b"),
}


def is_concrete(x) -> bool:
    """True unless ``x`` is a jax tracer (inside ``jit``/``vmap``/``grad``)."""
    return _is_concrete(x)


def _got(value) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)} ({value.dtype})"
    text = repr(value)
    return text if len(text) <= 80 else f"{type(value).__name__} {text[:60]}..."


def check_type(fn: str, name: str, value, cls, want: str, fix: str = "") -> None:
    """Raise ``TypeError`` unless ``isinstance(value, cls)``."""
    if not isinstance(value, cls):
        raise TypeError(
            MSG_TYPE.format(fn=fn, name=name, want=want, got=_got(value), fix=fix)
        )


def check_callable(fn: str, name: str, value, fix: str = "") -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(
            MSG_TYPE.format(fn=fn, name=name, want="callable", got=_got(value), fix=fix)
        )


def check_choice(fn: str, name: str, value, choices) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            MSG_CHOICE.format(fn=fn, name=name, choices=tuple(choices), value=value)
        )


def check_int(fn: str, name: str, value, minimum: int = 1, fix: str = "") -> int:
    """Return ``value`` as an int; ``TypeError`` unless an int, ``ValueError`` if
    below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            MSG_INT.format(fn=fn, name=name, minimum=minimum, value=value, fix=fix)
        )
    if value < minimum:
        raise ValueError(
            MSG_INT.format(fn=fn, name=name, minimum=minimum, value=value, fix=fix)
        )
    return int(value)


def _show(v: np.ndarray):
    if v.size == 1:
        return repr(float(v.reshape(())))
    bad = v[~np.isfinite(v)] if not np.all(np.isfinite(v)) else v
    return f"array of shape {v.shape} (e.g. {float(bad.reshape(-1)[0])!r})"


def check_real(
    fn: str,
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    fix: str = "",
) -> None:
    """Check a real scalar (or array of them) lies in ``[low, high]`` and is finite.

    ``TypeError`` for non-numbers; ``ValueError`` for NaN, inf (unless
    ``allow_inf``) or values out of range. Traced values are skipped.
    """
    if not is_concrete(value):
        return
    want = _interval(low, high, low_open, high_open, allow_inf)
    try:
        v = np.asarray(value)
    except (TypeError, ValueError):
        v = np.asarray(None)
    if isinstance(value, bool) or v.dtype.kind not in "iuf":
        raise TypeError(
            MSG_RANGE.format(fn=fn, name=name, want=want, value=_got(value), fix=fix)
        )
    v = v.astype(np.float64)
    ok = v.size > 0 and not np.any(np.isnan(v))
    ok = ok and (allow_inf or bool(np.all(np.isfinite(v))))
    if ok and low is not None:
        ok = bool(np.all(v > low if low_open else v >= low))
    if ok and high is not None:
        ok = bool(np.all(v < high if high_open else v <= high))
    if not ok:
        value_text = _show(v) if v.size else f"an empty array {v.shape}"
        raise ValueError(
            MSG_RANGE.format(fn=fn, name=name, want=want, value=value_text, fix=fix)
        )


def _interval(low, high, low_open, high_open, allow_inf) -> str:
    kind = "a number" if allow_inf else "a finite number"
    if low is not None and high is not None:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        return f"{kind} in {lb}{low:g}, {high:g}{rb}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind


def as_array(fn: str, name: str, value, fix: str = ""):
    """``value`` if it has a shape and dtype (jax/numpy array, tracer), else the
    numpy conversion of a nested list; ``TypeError`` for non-numeric objects."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            MSG_TYPE.format(
                fn=fn, name=name, want="a numeric array", got=_got(value), fix=fix
            )
        )
    return arr


def check_array(
    fn: str,
    name: str,
    value,
    *,
    kind: str = "float",
    ndim: int | None = None,
    layout: str = "",
    shape: tuple | None = None,
    nonempty: bool = True,
    finite: bool = True,
    fix: str = "",
):
    """Check an array's dtype kind, rank, shape (``None`` = any size), emptiness and
    (when concrete) finiteness. Returns the array (numpy for nested lists)."""
    arr = as_array(fn, name, value, fix)
    want, kinds = _KINDS[kind]
    if np.dtype(arr.dtype).kind not in kinds:
        raise TypeError(
            MSG_DTYPE.format(fn=fn, name=name, want=want, dtype=arr.dtype, fix=fix)
        )
    shp = tuple(arr.shape)
    if ndim is not None and len(shp) != ndim:
        raise ValueError(
            MSG_NDIM.format(
                fn=fn, name=name, want=ndim, layout=layout, shape=shp, fix=fix
            )
        )
    if shape is not None and (
        len(shp) != len(shape)
        or any(w is not None and w != s for w, s in zip(shape, shp))
    ):
        want_shape = tuple("?" if w is None else w for w in shape)
        raise ValueError(
            MSG_SHAPE.format(fn=fn, name=name, want=want_shape, shape=shp, fix=fix)
        )
    if nonempty and math.prod(shp) == 0:
        raise ValueError(
            MSG_EMPTY.format(
                fn=fn, name=name, shape=shp, fix=fix or "pass a non-empty array."
            )
        )
    if finite and kind in ("float", "real") and is_concrete(arr):
        count = int(np.sum(~np.isfinite(np.asarray(arr))))
        if count:
            raise ValueError(
                MSG_FINITE.format(
                    fn=fn, name=name, count=count, shape=shp, fix=FIX_FINITE
                )
            )
    return arr


def check_finite_tree(fn: str, name: str, tree, fix: str = "") -> None:
    """Raise ``ValueError`` if a concrete floating leaf of ``tree`` has NaN/inf."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not is_concrete(leaf) or not hasattr(leaf, "dtype"):
            continue
        if np.dtype(leaf.dtype).kind not in "fc":
            continue
        count = int(np.sum(~np.isfinite(np.asarray(leaf))))
        if count:
            where = f"{name}{jax.tree_util.keystr(path)}"
            raise ValueError(
                MSG_FINITE.format(
                    fn=fn,
                    name=where,
                    count=count,
                    shape=tuple(leaf.shape),
                    fix=fix or FIX_FINITE,
                )
            )


def check_key(fn: str, name: str, key, *, allow_none: bool = False) -> None:
    """Raise ``TypeError`` unless ``key`` is a typed PRNG key or a raw uint32 key."""
    if key is None and allow_none:
        return
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype == np.uint32 and tuple(key.shape)[-1:] == (2,):
        return
    raise TypeError(MSG_KEY.format(fn=fn, name=name, got=_got(key)))


def check_sequence(fn: str, name: str, value, what: str, fix: str = "") -> list:
    """Return ``list(value)`` of a non-empty tuple/list, else raise."""
    if not isinstance(value, list | tuple):
        raise TypeError(
            MSG_TYPE.format(
                fn=fn, name=name, want=f"a tuple of {what}", got=_got(value), fix=fix
            )
        )
    if len(value) == 0:
        raise ValueError(
            MSG_EMPTY.format(fn=fn, name=name, shape="()", fix=fix or f"pass {what}.")
        )
    return list(value)
