"""Eager checks of POMDP arrays, with messages that name the array, index and axis."""

from __future__ import annotations

import numpy as np

NORM_TOL = 1e-4

MSG_NOT_SEQUENCE = (
    "generative_model: {name} must be a list/tuple of arrays (one per {unit}); "
    "got {got}."
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
    return [np.asarray(x, dtype=np.float64) for x in xs]


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
