"""Plateaus of a training loss curve (saddle-to-saddle dynamics), found automatically.

Networks trained from a small initialisation learn in stages: the loss sits on a
plateau near a saddle, drops quickly, and sits on the next plateau (Saxe, McClelland &
Ganguli 2014; Jacot et al. 2021, "saddle-to-saddle"). On a log scale every drop is of
order one whatever the loss level, so the detector works on

.. math::

    y_t = \\log(L_t - L_{\\mathrm{floor}}), \\qquad
    r_t = \\Big|\\frac{d\\tilde y}{dt}\\Big|\\,
          \\frac{t_{\\mathrm{last}} - t_{\\mathrm{first}}}{\\max\\tilde y - \\min\\tilde y},

with :math:`\\tilde y` a running median of ``y`` (robust to minibatch noise), its
slope a least-squares fit over the same window, and :math:`r_t` its rate of change in units of "the whole drop over the whole run". A
plateau is a run of at least ``min_length`` consecutive checkpoints with
:math:`r_t` below ``threshold``. The rate is absolute, not relative to the fastest
drop, so a late, slow transition (a small singular value learnt last) still separates
two plateaus.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import median_filter

from .. import _validate

__all__ = ["Plateau", "find_plateaus"]

_ERR_CURVE = (
    "{name} must be a 1-D array of finite numbers with one value per checkpoint "
    "(at least 5), got {detail}."
)


class Plateau(NamedTuple):
    """One plateau of a loss curve.

    Attributes
    ----------
    start, stop : int
        Indices of its first and last checkpoint (inclusive).
    index : int
        Representative checkpoint: the middle of the plateau, or the last checkpoint
        for the final plateau of the run (the trained network).
    start_step, stop_step, step : float
        The training steps of ``start``, ``stop`` and ``index``.
    loss : float
        Median loss over the plateau.
    """

    start: int
    stop: int
    index: int
    start_step: float
    stop_step: float
    step: float
    loss: float


def _curve(name: str, values) -> np.ndarray:
    arr = _validate.as_numbers(name, values)
    if arr is None or arr.ndim != 1 or arr.size < 5 or not np.all(np.isfinite(arr)):
        detail = "None" if arr is None else f"shape {arr.shape}"
        if arr is not None and arr.ndim == 1 and not np.all(np.isfinite(arr)):
            detail = f"{int(np.sum(~np.isfinite(arr)))} NaN/inf values"
        raise ValueError(_ERR_CURVE.format(name=name, detail=detail))
    return arr.astype(np.float64)


def find_plateaus(
    steps,
    losses,
    *,
    floor: float | None = None,
    log: bool = True,
    threshold: float = 0.1,
    min_length: int | None = None,
    window: int | None = None,
) -> tuple[Plateau, ...]:
    """Plateaus of a loss curve recorded at checkpoints.

    Parameters
    ----------
    steps : array_like (k,)
        Training step of each checkpoint, strictly increasing (any spacing).
    losses : array_like (k,)
        Loss at each checkpoint.
    floor : float, optional
        Subtracted before taking logs: a value below every loss (for a Gaussian
        likelihood its entropy constant ``(d/2) log(2πσ²)``, so ``L − floor`` is the
        scaled squared error). Default 0.
    log : bool
        Detect on ``log(L − floor)`` (default) or on ``L`` itself.
    threshold : float
        Largest rate ``r_t`` (module docstring) on a plateau: 0.1 means the loss
        would take ten runs of this length to cover its whole range at that speed.
    min_length : int, optional
        Fewest checkpoints in a plateau (default ``max(3, k // 40)``).
    window : int, optional
        Running-median and slope window in checkpoints (odd; default
        ``max(5, k // 30)`` rounded up to odd).

    Returns
    -------
    tuple of Plateau
        In order of training step; empty if the curve has no flat stretch.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(200.0)
    >>> loss = 1 + 4 / (1 + np.exp((t - 60) / 2)) + 2 / (1 + np.exp((t - 140) / 2))
    >>> [(p.start_step, p.stop_step) for p in find_plateaus(t, loss)]
    [(0.0, 48.0), (74.0, 127.0), (155.0, 199.0)]
    """
    t = _curve("steps", steps)
    raw = _curve("losses", losses)
    y = raw
    if t.shape != y.shape:
        raise ValueError(
            f"steps and losses must have the same length, got {t.size} and {y.size}."
        )
    if np.any(np.diff(t) <= 0):
        raise ValueError(
            "steps must be strictly increasing (one training step per checkpoint), "
            f"got {t[:6].tolist()}…"
        )
    k = t.size
    _validate.check_positive("threshold", threshold, "e.g. 0.1.")
    min_length = max(3, k // 40) if min_length is None else min_length
    min_length = _validate.check_int("min_length", min_length, minimum=2)
    window = max(5, k // 30) if window is None else window
    window = _validate.check_int("window", window)
    window += 1 - window % 2
    if floor is not None:
        _validate.check_scalar("floor", floor)
        y = y - float(floor)
    if log:
        if np.any(y <= 0):
            raise ValueError(
                f"losses − floor must be > 0 to take logs, but its minimum is "
                f"{y.min():.4g}: pass floor below the smallest loss (for a Gaussian "
                "likelihood its constant (d/2)·log(2πσ²)), or log=False."
            )
        y = np.log(y)
    smooth = median_filter(y, size=window, mode="nearest")
    span = float(smooth.max() - smooth.min())
    if span <= 0:
        return (_plateau(t, raw, 0, k - 1, final=True),)
    rate = np.abs(_local_slope(t, smooth, window)) * (t[-1] - t[0]) / span
    flat = rate <= threshold
    out, i = [], 0
    while i < k:
        if not flat[i]:
            i += 1
            continue
        j = i
        while j + 1 < k and flat[j + 1]:
            j += 1
        if j - i + 1 >= min_length:
            out.append((i, j))
        i = j + 1
    return tuple(_plateau(t, raw, a, b, final=b == k - 1) for a, b in out)


def _local_slope(t: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of ``y`` against ``t`` over ``window`` checkpoints centred
    on each one (shifted inwards at the ends, not shrunk: a slope from two or three
    noisy points would cut the last plateau short of the trained network)."""
    half, k = window // 2, t.size
    out = np.empty(k)
    for i in range(k):
        a = max(0, min(i - half, k - window))
        b = min(k, a + window)
        tt, yy = t[a:b] - t[a:b].mean(), y[a:b]
        out[i] = np.dot(tt, yy - yy.mean()) / np.dot(tt, tt)
    return out


def _plateau(t, y, a: int, b: int, *, final: bool) -> Plateau:
    index = b if final else (a + b) // 2
    return Plateau(
        int(a),
        int(b),
        int(index),
        float(t[a]),
        float(t[b]),
        float(t[index]),
        float(np.median(y[a : b + 1])),
    )
