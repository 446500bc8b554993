"""The λ̂-against-λ figure of the flagship study (see :func:`plot_llc_vs_truth`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._figure import save_figure as _save

_SETTLED, _UNSETTLED, _MISSING, _BAND = "#1f4e9c", "#e0701b", "0.35", "0.88"

_ERR_ROWS = (
    "`rows` must be a non-empty list of dicts with keys {keys}; {problem}. Example: "
    "[{{'model': 'RRR', 'true_lambda': 1.5, 'llc': 1.47, 'llc_mcse': 0.02}}]."
)
_ROW_KEYS = ("model", "true_lambda", "llc")
_ROW_FLOATS = ("true_lambda", "llc", "llc_mcse", "llc_sigma", "finite_nbeta_lambda")
_TARGET = {"marker": "_", "s": 150, "color": "black", "linewidths": 1.6, "zorder": 3}
_LABEL_GID = "llc-point-label"  # the number labels of plot_llc_vs_truth
_LOG_SPAN = 20.0  # log-log axes in plot_llc_vs_truth when values span more than this


def _row_float(row: Mapping, key: str, i: int, fail) -> float:
    value = row.get(key)
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise fail(f"rows[{i}][{key!r}] = {value!r} is not a number") from None


def _check_rows(rows) -> list[dict]:
    """Validated rows as floats (NaN for a missing optional key), sorted by true λ."""

    def fail(problem):
        return ValueError(_ERR_ROWS.format(keys=list(_ROW_KEYS), problem=problem))

    if isinstance(rows, Mapping | str) or not isinstance(rows, Sequence) or not rows:
        raise fail(f"got {type(rows).__name__} {rows!r:.60}")
    clean = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise fail(f"rows[{i}] is a {type(row).__name__}, not a dict")
        missing = [k for k in _ROW_KEYS if k not in row]
        if missing:
            raise fail(f"rows[{i}] is missing {missing}")
        vals = {k: _row_float(row, k, i, fail) for k in _ROW_FLOATS}
        if not (math.isfinite(vals["true_lambda"]) and vals["true_lambda"] > 0):
            raise fail(f"rows[{i}]['true_lambda'] = {row['true_lambda']!r} is not > 0")
        for key in ("llc_mcse", "llc_sigma"):
            if vals[key] < 0:
                raise fail(f"rows[{i}][{key!r}] = {row[key]!r} is negative")
        settled = row.get("settled")
        vals["settled"] = True if settled is None else bool(settled)
        clean.append({"model": str(row["model"]), **vals})
    return sorted(clean, key=lambda r: r["true_lambda"])


class _Points(NamedTuple):
    """Per-model arrays of the λ̂-vs-λ figure, sorted by λ (model k is numbered k+1)."""

    true: np.ndarray  # exact λ
    est: np.ndarray  # λ̂ (NaN: no estimate)
    half: np.ndarray  # error-bar half-width: 2σ_total, else 2 MCSE, else 0
    total: np.ndarray  # bool: the bar is from the total error σ (llc_sigma)
    settled: np.ndarray  # bool
    target: np.ndarray  # finite-nβ target λ − (m − 1)/log(nβ) (NaN: not given)


def _points(data: list[dict]) -> _Points:
    col = {k: np.array([r[k] for r in data]) for k in _ROW_FLOATS}
    total = np.isfinite(col["llc_sigma"])
    sigma = np.where(total, col["llc_sigma"], col["llc_mcse"])
    return _Points(
        true=col["true_lambda"],
        est=col["llc"],
        half=2.0 * np.nan_to_num(sigma),
        total=total,
        settled=np.array([r["settled"] for r in data], dtype=bool),
        target=col["finite_nbeta_lambda"],
    )


def _style(settled: bool) -> dict:
    """Filled markers for settled runs, hollow ones in another colour otherwise."""
    color = _SETTLED if settled else _UNSETTLED
    return {"edgecolors": color, "facecolors": color if settled else "white"}


def _limits(p: _Points, log: bool) -> tuple[float, float]:
    ok = np.isfinite(p.est)
    top = np.concatenate(
        [p.true, p.est[ok] + p.half[ok], p.target[np.isfinite(p.target)]]
    )
    bottom = np.concatenate([p.true, p.est[ok] - p.half[ok], p.est[ok]])
    if log:
        bottom = np.concatenate([p.true, p.est[ok & (p.est > 0)]])
        return bottom.min() / 1.6, top.max() * 1.6
    lo, hi = min(0.0, bottom.min()), top.max()
    return lo - 0.04 * (hi - lo), hi + 0.06 * (hi - lo)


def _errorbars(ax, x, y, half, *, settled, total, log=False, horizontal=False):
    """±half bars, solid for total error and dotted for MCSE-only."""
    if not x.size:
        return
    lower = np.minimum(half, y * (1 - 1e-3)) if log else half  # stay > 0 on log axes
    bars = ax.errorbar(
        x,
        y,
        **{"xerr" if horizontal else "yerr": [lower, half]},
        fmt="none",
        ecolor=_SETTLED if settled else _UNSETTLED,
        elinewidth=1.1,
        capsize=2.5,
        zorder=2,
    )
    bars[2][0].set_linestyle("-" if total else (0, (1.5, 1.5)))


def _draw_estimates(ax, p: _Points, log: bool, floor: float) -> np.ndarray:
    """Bars, markers and finite-nβ ticks on the λ̂-vs-λ axes; returns the drawn y.

    Estimates that a log axis cannot show (λ̂ <= 0) sit on the lower edge as ▽, and
    missing ones (NaN) as ×.
    """
    off = ~np.isfinite(p.est) | ((p.est <= 0) if log else np.zeros(p.est.shape, bool))
    y = np.where(off, floor, p.est)
    for settled in (True, False):
        mine = ~off & (p.settled == settled)
        for total in (True, False):
            sel = mine & (p.total == total)
            _errorbars(
                ax,
                p.true[sel],
                y[sel],
                p.half[sel],
                settled=settled,
                total=total,
                log=log,
            )
        low = off & np.isfinite(p.est) & (p.settled == settled)
        for marker, sel in (("o", mine), ("v", low)):
            ax.scatter(
                p.true[sel],
                y[sel],
                marker=marker,
                s=40,
                zorder=4,
                clip_on=False,
                linewidths=1.4,
                gid="settled" if settled else "unsettled",
                **_style(settled),
            )
    none = ~np.isfinite(p.est)
    ax.scatter(
        p.true[none],
        y[none],
        marker="x",
        s=40,
        color=_MISSING,
        zorder=4,
        clip_on=False,
        linewidths=1.4,
        gid="missing",
    )
    has = np.isfinite(p.target)
    ax.scatter(p.true[has], p.target[has], gid="target", **_TARGET)
    return y


def _legend_handles(p: _Points, log: bool) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    def mark(label, marker="o", settled=True, **kw):
        style = _style(settled)
        kw = {
            "markeredgecolor": style["edgecolors"],
            "markerfacecolor": style["facecolors"],
            "markeredgewidth": 1.4,
            "markersize": 6.5,
        } | kw
        return Line2D([], [], ls="none", marker=marker, label=label, **kw)

    handles = [
        Line2D([], [], color="0.25", ls="--", lw=1, label="exact: λ̂ = λ"),
        Patch(color=_BAND, label="±10% of λ"),
        mark("settled run"),
    ]
    if not p.settled.all():
        handles.append(mark("not settled (hollow)", settled=False))
    if np.isfinite(p.target).any():
        handles.append(
            mark(
                "finite-nβ target λ − (m−1)/log nβ",
                marker="_",
                markersize=13,
                color="black",
                markeredgecolor="black",
            )
        )
    for total, text in ((True, "±2σ, total error"), (False, "±2 MCSE (σ unknown)")):
        if (p.total == total).any():
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.3",
                    lw=1.1,
                    ls="-" if total else (0, (1.5, 1.5)),
                    label=text,
                )
            )
    if log and (p.est <= 0).any():
        handles.append(mark("λ̂ ≤ 0 (off the log scale)", marker="v"))
    if (~np.isfinite(p.est)).any():
        handles.append(
            mark("no finite λ̂", marker="x", color=_MISSING, markeredgecolor=_MISSING)
        )
    return handles


def _draw_relative(ax, p: _Points, names: list[str]) -> None:
    """Panel (b): λ̂/λ − 1 ± 2σ/λ per model, the ±10% band and finite-nβ targets."""
    from matplotlib.ticker import PercentFormatter

    n = len(names)
    ypos = np.arange(n)[::-1].astype(float)
    rel, err = p.est / p.true - 1, p.half / p.true
    target = p.target / p.true - 1
    reach = np.concatenate([(np.abs(rel) + err)[np.abs(rel) <= 1], np.abs(target)])
    lim = float(np.clip(1.12 * np.nanmax(reach, initial=0.0), 0.15, 1.0))
    ax.axvspan(-0.1, 0.1, color=_BAND, zorder=0)
    ax.axvline(0.0, color="0.25", ls="--", lw=1, zorder=1)
    inside = np.abs(rel) <= lim
    for settled in (True, False):
        for total in (True, False):
            sel = (p.settled == settled) & (p.total == total) & inside
            _errorbars(
                ax,
                rel[sel],
                ypos[sel],
                err[sel],
                settled=settled,
                total=total,
                horizontal=True,
            )
        sel = (p.settled == settled) & inside
        ax.scatter(
            rel[sel],
            ypos[sel],
            s=40,
            zorder=4,
            linewidths=1.4,
            gid="settled" if settled else "unsettled",
            **_style(settled),
        )
    has = np.isfinite(target) & (np.abs(target) > 1e-3)  # 0 is the dashed line
    ax.scatter(target[has], ypos[has], **(_TARGET | {"marker": "|", "s": 110}))
    _mark_off_panel(ax, p, rel, ypos, lim)
    ax.set_yticks(ypos, [f"{k + 1}  {name}" for k, name in enumerate(names)])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(-lim, lim)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_xlabel(r"relative error $\hat\lambda/\lambda - 1$  (±2σ/λ)")
    ax.set_title("(b) relative error per model", fontsize=10, loc="left")
    ax.grid(alpha=0.3, axis="x")


def _mark_off_panel(ax, p: _Points, rel, ypos, lim: float) -> None:
    """Estimates beyond ±lim as ◂/▸ at the edge with their value; missing ones as text."""
    for k in np.flatnonzero(np.isfinite(rel) & (np.abs(rel) > lim)):
        side = np.sign(rel[k])
        ax.scatter(
            [side * lim],
            [ypos[k]],
            marker=">" if side > 0 else "<",
            s=50,
            zorder=4,
            clip_on=False,
            linewidths=1.4,
            gid="settled" if p.settled[k] else "unsettled",
            **_style(p.settled[k]),
        )
        ax.annotate(
            f"{rel[k]:+.0%}",
            (side * lim, ypos[k]),
            xytext=(-side * 9, 0),
            textcoords="offset points",
            ha="right" if side > 0 else "left",
            va="center",
            fontsize=8,
            color="0.2",
        )
    for k in np.flatnonzero(~np.isfinite(rel)):
        ax.text(
            0.0,
            ypos[k],
            "no finite λ̂",
            ha="center",
            va="center",
            fontsize=8,
            color=_MISSING,
            zorder=5,
            bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round"},
        )


def _repel(anchors, sizes, obstacles, bounds, *, iters: int = 400) -> np.ndarray:
    """Centres for label boxes near their anchors that overlap neither each other nor
    the obstacle boxes, by simple pairwise repulsion (all in display pixels).

    ``anchors`` (n, 2), ``sizes`` (n, 2) label widths/heights, ``obstacles`` (m, 4)
    boxes ``(cx, cy, w, h)`` (markers, legend), ``bounds`` ``(x0, y0, x1, y1)``.
    """
    pad = 1.5
    pos = anchors + sizes / 2 + 3.0  # start up-right of the marker
    boxes = np.asarray(obstacles, dtype=float).reshape(-1, 4)
    half = sizes / 2
    order = np.arange(len(pos))
    tie = np.where(order[:, None] < order[None, :], -1.0, 1.0)  # coincident labels
    for _ in range(iters):
        d = pos[:, None, :] - pos[None, :, :]
        over = half[:, None, :] + half[None, :, :] + pad - np.abs(d)
        hit = (over > 0).all(-1) & ~np.eye(len(pos), dtype=bool)
        db = pos[:, None, :] - boxes[None, :, :2]
        over_b = half[:, None, :] + boxes[None, :, 2:] / 2 + pad - np.abs(db)
        hit_b = (over_b > 0).all(-1)
        if not hit.any() and not hit_b.any():
            break
        push = _push(d, over, hit, 0.5, tie) + _push(db, over_b, hit_b, 1.0, -1.0)
        pos = pos + push + 0.02 * (anchors + half - pos)  # weak pull back
        pos = np.clip(pos, np.array(bounds[:2]) + half, np.array(bounds[2:]) - half)
    return pos


def _push(d, over, hit, share: float, tie) -> np.ndarray:
    """Per-label shift out of each overlap, along the axis of the smaller overlap
    (``tie``: the direction, ±1, when two centres coincide)."""
    axis = np.argmin(np.where(hit[..., None], over, np.inf), axis=-1)
    sign = np.where(d == 0, np.asarray(tie)[..., None], np.sign(d))
    step = np.zeros(d.shape)
    for a in (0, 1):
        sel = hit & (axis == a)
        step[..., a] = np.where(sel, sign[..., a] * (share * over[..., a] + 0.5), 0.0)
    return step.sum(axis=1)


def _place_labels(ax, p: _Points, y: np.ndarray, legend) -> None:
    """Number each point (1 = smallest λ) with labels that do not overlap."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    anchors = ax.transData.transform(np.column_stack([p.true, y]))
    texts = [
        ax.text(
            0,
            0,
            str(k + 1),
            fontsize=8,
            fontweight="bold",
            ha="center",
            va="center",
            color=_SETTLED if p.settled[k] else _UNSETTLED,
            gid=_LABEL_GID,
            zorder=5,
        )
        for k in range(len(anchors))
    ]
    sizes = np.array(
        [[b.width, b.height] for b in (t.get_window_extent(renderer) for t in texts)]
    )
    marker = 7.5 * fig.dpi / 72  # a marker's box, in pixels
    obstacles = [(ax_, ay, marker, marker) for ax_, ay in anchors]
    has = np.isfinite(p.target)  # the finite-nβ ticks
    ticks = ax.transData.transform(np.column_stack([p.true[has], p.target[has]]))
    obstacles += [(tx, ty, 13 * fig.dpi / 72, 3.0) for tx, ty in ticks]
    lb = legend.get_window_extent(renderer)
    obstacles.append(((lb.x0 + lb.x1) / 2, (lb.y0 + lb.y1) / 2, lb.width, lb.height))
    box = ax.get_window_extent(renderer)
    centres = _repel(anchors, sizes, obstacles, (box.x0, box.y0, box.x1, box.y1))
    inverse = ax.transData.inverted()
    for k, text in enumerate(texts):
        text.set_position(inverse.transform(centres[k]))
        gap = np.abs(centres[k] - anchors[k]) - sizes[k] / 2
        if gap.max() > 6:  # far from its marker: draw a leader line
            ax.annotate(
                "",
                xy=(p.true[k], y[k]),
                xytext=inverse.transform(centres[k]),
                arrowprops={
                    "arrowstyle": "-",
                    "color": "0.55",
                    "lw": 0.6,
                    "shrinkA": 5,
                    "shrinkB": 4,
                },
                zorder=1,
            )


def plot_llc_vs_truth(rows: Sequence[Mapping], *, path) -> Figure:
    """Estimated λ̂ against the exact λ, and the relative error per model, as a PNG.

    Panel (a) shows λ̂ ± 2σ against λ with the line λ̂ = λ and a ±10% band, on log-log
    axes when the values span more than a factor 20. Points are numbered from the
    smallest λ; the numbers key the model names in panel (b), and labels are pushed
    apart so they never overlap. Unsettled runs are hollow and orange; the finite-nβ
    target λ − (m − 1)/log(nβ) is a black tick at the same λ. Panel (b) shows
    λ̂/λ − 1 ± 2σ/λ per model with the ±10% band.

    Parameters
    ----------
    rows : list of dict
        One dict per model with keys ``model`` (label), ``true_lambda`` (> 0) and
        ``llc`` (NaN: no estimate, drawn as ×), and optionally ``llc_mcse``,
        ``llc_sigma`` (total error; the bars use it when given, else the MCSE),
        ``settled`` (bool, default True) and ``finite_nbeta_lambda``. Other keys
        (``rel_error``, ...) are ignored; the relative error is recomputed.
    path : str or os.PathLike
        Output PNG file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = _check_rows(rows)
    p = _points(data)
    n = len(data)
    fig = Figure(figsize=(12.5, max(5.4, 0.3 * n + 2.2)), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax_rel = fig.subplots(1, 2, width_ratios=(1.15, 1))
    finite = np.concatenate([p.true, p.est[np.isfinite(p.est) & (p.est > 0)]])
    log = finite.max() / finite.min() > _LOG_SPAN
    lo, hi = _limits(p, log)
    grid = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 64)
    ax.fill_between(grid, 0.9 * grid, 1.1 * grid, color=_BAND, lw=0, zorder=0)
    ax.plot(grid, grid, color="0.25", ls="--", lw=1, zorder=1)
    y = _draw_estimates(ax, p, log, lo)
    scale = "log" if log else "linear"
    ax.set(xscale=scale, yscale=scale, xlim=(lo, hi), ylim=(lo, hi))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(r"exact learning coefficient $\lambda$ (RLCT)")
    ax.set_ylabel(r"estimated LLC $\hat\lambda$  (±2σ)")
    ax.set_title(
        "(a) estimate vs exact value" + (" (log–log)" if log else ""),
        fontsize=10,
        loc="left",
    )
    ax.grid(alpha=0.3, which="major")
    legend = ax.legend(
        handles=_legend_handles(p, log), loc="upper left", fontsize=8, framealpha=0.95
    )
    _draw_relative(ax_rel, p, [r["model"] for r in data])
    fig.suptitle(
        r"Local learning coefficient: estimate $\hat\lambda$ vs exact "
        r"$\lambda$",
        fontsize=12,
    )
    fig.canvas.draw()  # run the layout once, then freeze it for the label placement
    fig.set_layout_engine("none")
    _place_labels(ax, p, y, legend)
    return _save(fig, path)
