"""Eager argument checks of the equilibrium-propagation entry points.

Private module used by :mod:`._ep_core`, :mod:`._ep_relax` and :mod:`._ep_train`.
Shapes and dtypes are checked on tracers too; values (finite, positive) only when
concrete -- a traced non-positive ``nudge`` still yields NaN gradients and a traced
bad ``step_size`` shows up as ``converged=False``.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ._checks import (
    FIX_FINITE,
    MSG_EMPTY,
    MSG_TYPE,
    check_array,
    check_callable,
    check_finite_tree,
    check_real,
    check_type,
    is_concrete,
)
from ._ep_energies import Energy, _check_layer_sizes

VARIANTS = ("one_sided", "symmetric", "centered")
INIT_MODES = ("zero", "fast")
_VARIANT_MSG = "variant must be one of {}, got {!r}."
_INIT_MSG = (
    "init_mode must be 'zero' or 'fast', got {!r}; 'fast' needs an energy with a "
    "feedforward_fn."
)
_NUDGE_MSG = (
    "nudge must be a positive float (its sign is set by variant={!r}), got {!r}; "
    "use e.g. nudge=0.5 for training or nudge=0.01 for gradient checks."
)
_STEPS_MSG = "{} must be a positive int, got {!r}."
_SHAPE_MSG = (
    "{}: {} must have shape (batch, {}) matching energy.layer_sizes={}, got shape "
    "{}; {}"
)
_ONE_HOT_HINT = "one-hot encode integer labels with jax.nn.one_hot(labels, {})."
_FIX_ENERGY = (
    "Build it with RestrictedHopfield(...), ConditionalGaussian(...) or Energy."
)
_FIX_OPTIMIZER = "Pass an optax GradientTransformation, e.g. optax.sgd(0.1)."
_FIX_PARAMS = "Pass params from energy.init_params_fn(rng_key) (or a trained copy)."
_MSG_PARAMS = (
    "{fn}: params do not match energy.init_params_fn's output: {detail}. {fix}"
)
_MSG_LAYERS = (
    "{fn}: layers must be a tuple of {n} arrays of shapes {want} (one per free layer "
    "of energy.layer_sizes={sizes}), got {got}. Build them with initial_layers."
)


def check_energy(fn: str, energy) -> None:
    """``TypeError`` unless ``energy`` is an :class:`Energy` with callables."""
    check_type(fn, "energy", energy, Energy, "an Energy", _FIX_ENERGY)
    check_callable(fn, "energy.energy_fn", energy.energy_fn, _FIX_ENERGY)
    check_callable(fn, "energy.init_params_fn", energy.init_params_fn, _FIX_ENERGY)
    _check_layer_sizes(energy.layer_sizes)


def check_optimizer(fn: str, optimizer) -> None:
    """``TypeError`` unless ``optimizer`` has optax's ``init`` and ``update``."""
    if not (
        callable(getattr(optimizer, "init", None))
        and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            MSG_TYPE.format(
                fn=fn,
                name="optimizer",
                want="an optax GradientTransformation",
                got=repr(optimizer)[:60],
                fix=_FIX_OPTIMIZER,
            )
        )


def check_options(energy, variant, init_mode, max_steps, max_nudged_steps) -> None:
    """Structural options of :func:`build_gradient_fn` and friends."""
    if variant not in VARIANTS:
        raise ValueError(_VARIANT_MSG.format(VARIANTS, variant))
    if init_mode not in INIT_MODES or (
        init_mode == "fast" and energy.feedforward_fn is None
    ):
        raise ValueError(_INIT_MSG.format(init_mode))
    for name, val in (("max_steps", max_steps), ("max_nudged_steps", max_nudged_steps)):
        if not isinstance(val, int | np.integer) or isinstance(val, bool):
            raise TypeError(_STEPS_MSG.format(name, val))
        if val < 1:
            raise ValueError(_STEPS_MSG.format(name, val))


def check_nudge(nudge, variant) -> None:
    """A concrete ``nudge`` must be a finite number > 0."""
    if not is_concrete(nudge):
        return
    kind = np.asarray(nudge).dtype.kind if not isinstance(nudge, bool) else "b"
    if kind not in "iuf" or np.ndim(nudge) != 0:
        raise TypeError(_NUDGE_MSG.format(variant, nudge))
    value = float(nudge)
    if not (value > 0.0 and np.isfinite(value)):
        raise ValueError(_NUDGE_MSG.format(variant, nudge))


def check_numbers(fn: str, step_size, tol) -> None:
    """Relaxation ``step_size`` and ``tol``: finite and > 0 when concrete."""
    check_real(
        fn,
        "step_size",
        step_size,
        low=0.0,
        low_open=True,
        fix="A zero or negative step never moves the states; use e.g. 0.5.",
    )
    check_real(
        fn,
        "tol",
        tol,
        low=0.0,
        low_open=True,
        fix="Use e.g. 1e-4 (tol=0 can never be met).",
    )


def check_batch(fn: str, energy: Energy, x, target=None) -> None:
    """``x`` of shape ``(batch, n_0)`` and ``target`` ``(batch, n_L)``: floating,
    non-empty and (when concrete) finite."""
    sizes = energy.layer_sizes
    x = check_array(fn, "x", x, finite=False, nonempty=False)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(
            _SHAPE_MSG.format(fn, "x", sizes[0], sizes, x.shape, "flatten images.")
        )
    if x.shape[0] == 0:
        raise ValueError(
            MSG_EMPTY.format(
                fn=fn, name="x", shape=x.shape, fix="pass a batch of >= 1 example."
            )
        )
    check_array(fn, "x", x)
    if target is None:
        return
    target = check_array(
        fn, "target", target, kind="real", finite=False, nonempty=False
    )
    if target.shape != (x.shape[0], sizes[-1]):
        hint = _ONE_HOT_HINT.format(sizes[-1])
        raise ValueError(
            _SHAPE_MSG.format(fn, "target", sizes[-1], sizes, target.shape, hint)
            + f" The batch of x is {x.shape[0]}."
        )
    check_array(fn, "target", target, kind="real")


def check_layers(fn: str, energy: Energy, layers, batch: int) -> None:
    """Initial states: a tuple of ``(batch, n_i)`` arrays for ``i = 1..L``."""
    want = tuple((batch, n) for n in energy.layer_sizes[1:])
    ok = isinstance(layers, tuple | list) and len(layers) == len(want)
    got = repr(type(layers).__name__)
    if ok:
        got = tuple(tuple(np.shape(s)) for s in layers)
        ok = got == want
    if not ok:
        raise ValueError(
            _MSG_LAYERS.format(
                fn=fn, n=len(want), want=want, sizes=energy.layer_sizes, got=got
            )
        )
    for i, s in enumerate(layers):
        check_array(fn, f"layers[{i}]", s)


@functools.lru_cache(maxsize=32)
def _expected_params(energy: Energy):
    try:
        return jax.eval_shape(energy.init_params_fn, jax.random.key(0))
    except (TypeError, ValueError):  # an init that needs a raw key: skip the check
        return None


def check_params(fn: str, energy: Energy, params) -> None:
    """``params`` must have the structure and leaf shapes of
    ``energy.init_params_fn``'s output and (when concrete) finite leaves."""
    try:
        expected = _expected_params(energy)
    except TypeError:  # unhashable user energy (e.g. list layer_sizes)
        expected = _expected_params.__wrapped__(energy)
    if expected is not None:
        s1, s2 = jax.tree.structure(params), jax.tree.structure(expected)
        if s1 != s2:
            detail = f"structure {s1} vs {s2}"
            raise ValueError(_MSG_PARAMS.format(fn=fn, detail=detail, fix=_FIX_PARAMS))
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(expected)
        ):
            if tuple(np.shape(a)) != tuple(b.shape):
                where = jax.tree_util.keystr(path)
                detail = f"leaf {where} has shape {np.shape(a)}, expected {b.shape}"
                raise ValueError(
                    _MSG_PARAMS.format(fn=fn, detail=detail, fix=_FIX_PARAMS)
                )
    check_finite_tree(fn, "params", params, FIX_FINITE)
