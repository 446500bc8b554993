"""Eager checks of POMDP arrays, with messages that name the array, index and axis."""

from __future__ import annotations

import numpy as np

from ._checks import (
    MSG_NDIM as _MSG_NDIM_ARG,
)
from ._checks import (
    MSG_SHAPE as _MSG_SHAPE_ARG,
)
from ._checks import (
    as_array,
    check_array,
    check_sequence,
    is_concrete,
)

NORM_TOL = 1e-4
DIST_TOL = 1e-3  # normalisation slack of beliefs / likelihoods in float32

MSG_NOT_SEQUENCE = (
    "generative_model: {name} must be a list/tuple of arrays (one per {unit}); "
    "got {got}."
)
MSG_NOT_REAL = (
    "generative_model: {name}[{i}] has dtype {dtype}; pass real-valued "
    "probabilities (float arrays)."
)
MSG_NDIM = "generative_model: {name}[{i}] has {ndim} axes; expected {want} ({layout})."
MSG_NEGATIVE = (
    "generative_model: {name}[{i}] has negative or non-finite entries; probabilities "
    "must be finite and >= 0."
)
MSG_NOT_NORMALISED = (
    "generative_model: {name}[{i}] is not normalised over axis {axis} ({what}): sums "
    "range {lo:.4g}..{hi:.4g}, expected 1 (tolerance {tol:g}). Fix: divide by "
    "{name}[{i}].sum(axis={axis}, keepdims=True)."
)
MSG_SHAPE = (
    "generative_model: {name}[{i}] axis {axis} has size {got} but {what} has {want}; "
    "expected {name}[{i}] of shape {expected}."
)


def _as_list(name, xs, unit):
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise ValueError(MSG_NOT_SEQUENCE.format(name=name, unit=unit, got=type(xs)))
    out = []
    for i, x in enumerate(xs):
        arr = as_array("generative_model", f"{name}[{i}]", x)
        if arr.dtype.kind not in "iuf":
            raise TypeError(MSG_NOT_REAL.format(name=name, i=i, dtype=arr.dtype))
        out.append(np.asarray(arr, dtype=np.float64))
    return out


def _check_prob(name, i, x, axis, what):
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(MSG_NEGATIVE.format(name=name, i=i))
    sums = x.sum(axis=axis)
    if np.any(np.abs(sums - 1.0) > NORM_TOL):
        raise ValueError(
            MSG_NOT_NORMALISED.format(
                name=name,
                i=i,
                axis=axis,
                what=what,
                lo=sums.min(),
                hi=sums.max(),
                tol=NORM_TOL,
            )
        )


def validate_model(A, B, C, D):
    """Return numpy (A, B, C, D) lists after checking layout and normalisation.

    D[f]: ``(num_states[f],)`` summing to 1. B[f]: ``(num_states[f], num_states[f],
    num_controls[f])`` normalised over axis 0. A[m]: ``(num_obs[m], *num_states)``
    normalised over axis 0. C[m]: ``(num_obs[m],)`` finite log-preferences.
    """
    A = _as_list("A", A, "observation modality")
    B = _as_list("B", B, "hidden-state factor")
    C = _as_list("C", C, "observation modality")
    D = _as_list("D", D, "hidden-state factor")
    if len(B) != len(D):
        raise ValueError(
            f"generative_model: B has {len(B)} factors but D has {len(D)}; "
            "give one B[f] and one D[f] per hidden-state factor."
        )
    if len(C) != len(A):
        raise ValueError(
            f"generative_model: C has {len(C)} modalities but A has "
            f"{len(A)}; give one C[m] per observation modality."
        )
    ns = []
    for f, d in enumerate(D):
        if d.ndim != 1:
            raise ValueError(
                MSG_NDIM.format(
                    name="D", i=f, ndim=d.ndim, want=1, layout="(num_states,)"
                )
            )
        _check_prob("D", f, d, 0, "states")
        ns.append(d.shape[0])
    for f, b in enumerate(B):
        if b.ndim != 3:
            raise ValueError(
                MSG_NDIM.format(
                    name="B",
                    i=f,
                    ndim=b.ndim,
                    want=3,
                    layout="(next_state, state, control); add a trailing axis of "
                    "size 1"
                    " for an uncontrolled factor",
                )
            )
        for axis in (0, 1):
            if b.shape[axis] != ns[f]:
                raise ValueError(
                    MSG_SHAPE.format(
                        name="B",
                        i=f,
                        axis=axis,
                        got=b.shape[axis],
                        what=f"D[{f}]",
                        want=ns[f],
                        expected=(ns[f], ns[f], b.shape[2]),
                    )
                )
        _check_prob("B", f, b, 0, "next state")
    for m, a in enumerate(A):
        if a.ndim != 1 + len(ns):
            raise ValueError(
                MSG_NDIM.format(
                    name="A",
                    i=m,
                    ndim=a.ndim,
                    want=1 + len(ns),
                    layout=f"(num_obs, *num_states) with num_states={tuple(ns)}",
                )
            )
        for f, n in enumerate(ns):
            if a.shape[1 + f] != n:
                raise ValueError(
                    MSG_SHAPE.format(
                        name="A",
                        i=m,
                        axis=1 + f,
                        got=a.shape[1 + f],
                        what=f"factor {f} (D[{f}])",
                        want=n,
                        expected=(a.shape[0], *ns),
                    )
                )
        _check_prob("A", m, a, 0, "observations")
        c = C[m]
        if c.shape != (a.shape[0],) or not np.all(np.isfinite(c)):
            raise ValueError(
                f"generative_model: C[{m}] has shape {c.shape}; expected "
                f"finite log-preferences of shape ({a.shape[0]},) to match "
                f"A[{m}] axis 0."
            )
    return A, B, C, D


# ------------------------------------------------- perception / planning arguments

MSG_DIST = (
    "{fn}: {name} must hold probabilities (finite, >= 0, summing to 1 over axis "
    "{axis}); {problem}. Fix: normalise with x / x.sum(axis={axis}, keepdims=True)."
)
MSG_OBS = (
    "{fn}: observation[{m}] = {value} is outside [0, {n}) for modality {m} "
    "(A[{m}] has {n} outcomes). Pass one integer outcome index per modality."
)
MSG_COUNT = (
    "{fn}: {name} has {got} entries but {other} has {want}; pass one entry per {unit}."
)
MSG_POLICY_RANGE = (
    "{fn}: {name} has actions outside [0, num_controls) with num_controls={nc} "
    "(the last axis of each B[f]); got values in [{lo}, {hi}]. Build policies with "
    "enumerate_policies(num_controls, horizon)."
)
FIX_POLICIES = "Build policies with enumerate_policies(num_controls, horizon)."


def check_dist(fn: str, name: str, x, axis: int = 0) -> None:
    """``ValueError`` unless a concrete ``x`` is a distribution over ``axis``."""
    if not is_concrete(x):
        return
    v = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        problem = "it has negative or non-finite entries"
    else:
        sums = v.sum(axis=axis)
        if not np.any(np.abs(sums - 1.0) > DIST_TOL):
            return
        problem = f"its sums range {sums.min():.4g}..{sums.max():.4g}"
    raise ValueError(MSG_DIST.format(fn=fn, name=name, axis=axis, problem=problem))


def _count(fn, name, got, other, want, unit):
    if got != want:
        raise ValueError(
            MSG_COUNT.format(
                fn=fn, name=name, got=got, other=other, want=want, unit=unit
            )
        )


def check_beliefs(fn: str, name: str, qs, num_states=None) -> tuple:
    """Beliefs: a tuple of 1-D distributions, one per factor. Returns their sizes."""
    qs = check_sequence(fn, name, qs, "1-D belief arrays, one per hidden-state factor")
    if num_states is not None:
        _count(fn, name, len(qs), "A (axes 1..)", len(num_states), "factor")
    sizes = []
    for f, q in enumerate(qs):
        want = None if num_states is None else num_states[f]
        q = check_array(
            fn,
            f"{name}[{f}]",
            q,
            shape=(want,),
            fix="Give q(s_f) of shape (num_states[f],).",
        )
        check_dist(fn, f"{name}[{f}]", q)
        sizes.append(q.shape[0])
    return tuple(sizes)


def check_likelihood(fn: str, A, num_states=None, name: str = "A") -> tuple:
    """``A[m]`` of shape ``(num_obs[m], *num_states)``, normalised over axis 0.

    Returns ``(num_obs, num_states)``."""
    A = check_sequence(fn, name, A, "likelihood arrays, one per modality")
    num_obs = []
    for m, a in enumerate(A):
        a = check_array(fn, f"{name}[{m}]", a)
        layout = "(num_obs, *num_states)"
        if a.ndim < 2:
            raise ValueError(
                _MSG_NDIM_ARG.format(
                    fn=fn,
                    name=f"{name}[{m}]",
                    want=">= 2",
                    layout=layout,
                    shape=tuple(a.shape),
                    fix="",
                )
            )
        if num_states is None:
            num_states = tuple(a.shape[1:])
        if tuple(a.shape[1:]) != tuple(num_states):
            raise ValueError(
                _MSG_SHAPE_ARG.format(
                    fn=fn,
                    name=f"{name}[{m}]",
                    want=("num_obs", *num_states),
                    shape=tuple(a.shape),
                    fix="Every A[m] shares the state axes.",
                )
            )
        check_dist(fn, f"{name}[{m}]", a)
        num_obs.append(a.shape[0])
    return tuple(num_obs), tuple(num_states)


def check_transitions(fn: str, B, num_states=None, name: str = "B") -> tuple:
    """``B[f]`` of shape ``(ns, ns, nc)``, normalised over axis 0. Returns the
    control counts."""
    B = check_sequence(fn, name, B, "transition arrays, one per factor")
    if num_states is not None:
        _count(fn, name, len(B), "the beliefs", len(num_states), "factor")
    controls = []
    for f, b in enumerate(B):
        ns = None if num_states is None else num_states[f]
        b = check_array(
            fn,
            f"{name}[{f}]",
            b,
            shape=(ns, ns, None),
            fix="B[f] is (next_state, state, control).",
        )
        if b.shape[0] != b.shape[1]:
            raise ValueError(
                _MSG_SHAPE_ARG.format(
                    fn=fn,
                    name=f"{name}[{f}]",
                    want=("ns", "ns", "nc"),
                    shape=tuple(b.shape),
                    fix="B[f] is (next_state, state, control).",
                )
            )
        check_dist(fn, f"{name}[{f}]", b)
        controls.append(b.shape[2])
    return tuple(controls)


def check_preferences(fn: str, C, num_obs) -> None:
    """``C[m]``: finite log-preferences of shape ``(num_obs[m],)``."""
    C = check_sequence(fn, "C", C, "log-preference arrays, one per modality")
    _count(fn, "C", len(C), "A", len(num_obs), "modality")
    for m, c in enumerate(C):
        check_array(
            fn,
            f"C[{m}]",
            c,
            shape=(num_obs[m],),
            fix=f"C[{m}] holds one log-preference per outcome of A[{m}].",
        )


def check_observation(fn: str, observation, num_obs) -> None:
    """One integer outcome index per modality, each in ``[0, num_obs[m])``."""
    obs = check_sequence(fn, "observation", observation, "outcome indices")
    _count(fn, "observation", len(obs), "A", len(num_obs), "modality")
    for m, o in enumerate(obs):
        o = check_array(
            fn,
            f"observation[{m}]",
            o,
            kind="int",
            shape=(),
            fix="Pass a scalar integer outcome index.",
        )
        if is_concrete(o) and not 0 <= int(o) < num_obs[m]:
            raise ValueError(MSG_OBS.format(fn=fn, m=m, value=int(o), n=num_obs[m]))


def check_policies(fn: str, policies, num_controls=None, *, name="policies", ndim=3):
    """Integer policies ``(num_policies, horizon, num_factors)`` (or one policy,
    ``ndim=2``) with actions in range. Returns the array (numpy if concrete)."""
    layout = "(num_policies, horizon, num_factors)"
    layout = layout if ndim == 3 else "(horizon, num_factors)"
    arr = check_array(
        fn, name, policies, kind="int", ndim=ndim, layout=layout, fix=FIX_POLICIES
    )
    if num_controls is not None and arr.shape[-1] != len(num_controls):
        raise ValueError(
            _MSG_SHAPE_ARG.format(
                fn=fn,
                name=name,
                want=layout,
                shape=tuple(arr.shape),
                fix="The last axis holds one action per factor "
                f"(len(num_controls) = {len(num_controls)}). {FIX_POLICIES}",
            )
        )
    if not is_concrete(arr):
        return arr
    arr = np.asarray(arr)
    upper = np.asarray(num_controls if num_controls is not None else [np.inf])
    if np.any(arr < 0) or np.any(arr >= upper):
        raise ValueError(
            MSG_POLICY_RANGE.format(
                fn=fn,
                name=name,
                nc=tuple(num_controls or ()),
                lo=arr.min(),
                hi=arr.max(),
            )
        )
    return arr
