"""Eager checks of a parameter point against a posterior's model functions.

A user's ``loglik_fn`` is only ever seen through its outputs, so the checks *probe* it:
one eager call on the first few data at the point in question, before anything is
compiled. Mistakes that would otherwise surface as a confident wrong number (a mean
instead of per-datum values, a ``(b, b)`` broadcast) or as an error from deep inside
the user's function (a centre shaped unlike the parameters) are reported here with the
argument's name and the fix.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import _validate

PROBE_SIZE = 3  # data in the probe batch (3: a (b, b) broadcast cannot hide as (b,))

LOGLIK_SHAPE = (
    "loglik_fn must return one log-likelihood per datum: on a batch of {b} data it "
    "returned shape {shape}, expected ({b},). Return the per-datum values (sum over "
    "trailing output axes, e.g. jnp.sum(..., axis=-1)), not their mean or sum over "
    "the batch; a shape (b, b) usually means y of shape (n,) met predictions of shape "
    "(n, 1)."
)
LOGLIK_FAILED = (
    "loglik_fn(params, batch) raised {err} when called on {name} and the first {b} "
    "data: {msg}. Check that {name} has the structure and shapes of the parameters "
    "loglik_fn expects (got {structure})."
)
LOGPRIOR_SHAPE = (
    "logprior_fn must return a scalar log density, got shape {shape} at {name}. Sum "
    "the per-parameter log densities."
)
NOT_FINITE_AT = (
    "{fn} is {value} at {name}: the model's log density must be finite at the point "
    "chains start from. Check {name} (a valid parameter value?) and {fn} (logs of "
    "non-positive numbers, divisions by zero)."
)


def _describe(tree) -> str:
    shapes = jax.tree.map(lambda x: tuple(np.shape(x)), tree)
    text = str(shapes)
    return text if len(text) <= 200 else text[:200] + "…"


def _first(tree, leading_axes: int):
    """The first point along ``leading_axes`` leading (e.g. chain) axes."""
    index = (0,) * leading_axes
    return jax.tree.map(lambda x: x[index], tree)


def check_point(posterior, params, name: str, *, leading_axes: int = 0) -> None:
    """Check a concrete parameter point (or points) against ``posterior``.

    Structure and shapes against the centre, finite values, and a probe call of the
    log-likelihood (per-datum shape, finite) and the log prior (scalar) at the first
    point. Traced values are skipped: the checks run once, eagerly, before compiling.

    Raises
    ------
    ValueError, TypeError
        Naming ``name`` (the argument), the value and the fix.
    """
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError(f"{name} is an empty pytree; pass the parameters (arrays).")
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return
    if posterior.center is not None and params is not posterior.center:
        _validate.check_same_tree(
            name, params, "the posterior's center", posterior.center, leading_axes
        )
    _validate.check_finite_tree(name, params, "Start chains from finite parameters.")
    point = _first(params, leading_axes)
    probe_loglik(posterior.loglik_fn, posterior.data, point, name)
    if posterior.logprior_fn is not None:
        lp = np.asarray(posterior.logprior_fn(point))
        if lp.shape != ():
            raise ValueError(LOGPRIOR_SHAPE.format(shape=lp.shape, name=name))
        if not np.isfinite(lp):
            raise ValueError(
                NOT_FINITE_AT.format(fn="logprior_fn", value=float(lp), name=name)
            )


def probe_loglik(loglik_fn, data, params, name: str) -> None:
    """Call ``loglik_fn(params, first data)`` once and check its output."""
    n = jax.tree.leaves(data)[0].shape[0]
    b = min(n, PROBE_SIZE)
    batch = jax.tree.map(lambda x: x[:b], data)
    try:
        out = loglik_fn(params, batch)
    except Exception as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(
            LOGLIK_FAILED.format(
                err=type(err).__name__,
                name=name,
                b=b,
                msg=str(err).splitlines()[0] if str(err) else "",
                structure=_describe(params),
            )
        ) from err
    shape = np.shape(out)
    if shape != (b,):
        raise ValueError(LOGLIK_SHAPE.format(b=b, shape=shape))
    arr = np.asarray(out)
    if not np.all(np.isfinite(arr)):
        bad = np.where(~np.isfinite(arr))[0].tolist()
        raise ValueError(
            NOT_FINITE_AT.format(
                fn="loglik_fn", value=f"non-finite on data {bad}", name=name
            )
        )
