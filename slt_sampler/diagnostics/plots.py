"""Matplotlib figures for LLC runs: loss traces with rank plots, and λ̂ vs true λ.

Figures are built with the object-oriented API on an Agg canvas
(:class:`matplotlib.figure.Figure`, never ``pyplot``), so nothing touches global
backend state, nothing stays open, and it works headless. Each function saves a PNG
to ``path`` (parent directories are created) and returns the ``Figure``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from slt_sampler.estimators import _mcse

__all__ = ["plot_llc_vs_truth", "plot_loss_trace"]

_DPI = 130
_ERR_LOSSES = (
    "`losses` must be a 2-D array shaped (chain, draw) with at least 2 draws; got "
    "shape {shape}. For a single chain pass losses[None, :]."
)
_ERR_BURN_IN = (
    "`burn_in` must be an integer with 0 <= burn_in <= draw - 2 = {max_burn}; got "
    "{value!r}. Lower it or sample more draws."
)
_ERR_INIT = (
    "`init_loss` must be a scalar or have shape (chain,) = ({chains},); got shape "
    "{shape}. Pass L_n(w*) once, or once per chain."
)
_ERR_ROWS = (
    "`rows` must be a non-empty list of dicts with keys {keys}; {problem}. Example: "
    "[{{'model': 'RRR', 'true_lambda': 1.5, 'llc': 1.47, 'llc_mcse': 0.02}}]."
)
_ROW_KEYS = ("model", "true_lambda", "llc", "llc_mcse")


def _save(fig: Figure, path) -> Figure:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI)
    return fig


def _check_trace_args(losses, init_loss, burn_in):
    loss = np.asarray(losses, dtype=np.float64)
    if loss.ndim != 2 or loss.shape[1] < 2:
        raise ValueError(_ERR_LOSSES.format(shape=loss.shape))
    max_burn = loss.shape[1] - 2
    if not isinstance(burn_in, numbers.Integral) or not 0 <= burn_in <= max_burn:
        raise ValueError(_ERR_BURN_IN.format(max_burn=max_burn, value=burn_in))
    init = None
    if init_loss is not None:
        init = np.asarray(init_loss, dtype=np.float64)
        if init.shape not in ((), (loss.shape[0],)):
            raise ValueError(_ERR_INIT.format(chains=loss.shape[0], shape=init.shape))
    return loss, init, int(burn_in)


def _diagnostics_text(kept: np.ndarray) -> str:
    """R-hat / ESS summary of the post-burn-in draws, or '' when not computable."""
    if kept.shape[1] < 4 or not np.isfinite(kept).all():
        return ""
    parts = [f"mean {kept.mean():.4g} ± {_mcse.mcse_mean(kept):.2g} (MCSE)"]
    if kept.shape[0] >= 2:
        parts.append(f"R-hat {_mcse.rhat(kept):.3f}")
    parts.append(
        f"ESS bulk {_mcse.ess_bulk(kept):.0f} / tail {_mcse.ess_tail(kept):.0f}"
    )
    return "   ".join(parts)


def _draw_ranks(ax, kept: np.ndarray, colors) -> None:
    """Vehtari et al. (2021) rank plot: per-chain histograms of pooled ranks."""
    chains, draws = kept.shape
    ax.set_title("rank plot (uniform if mixed; band = 99%)", fontsize=9)
    if chains < 2:
        ax.text(
            0.5,
            0.5,
            "rank plot needs\n>= 2 chains",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ranks = stats.rankdata(kept, method="average", nan_policy="omit").reshape(
        kept.shape
    )
    bins = int(np.clip(round(draws / 10), 5, 20))
    edges = np.linspace(0.5, np.isfinite(kept).sum() + 0.5, bins + 1)
    expected = draws / bins
    lo, hi = stats.binom.interval(0.99, draws, 1.0 / bins) if draws > 0 else (0, 0)
    height = 1.6 * max(hi, expected)
    for c in range(chains):
        base = (chains - 1 - c) * height
        counts, _ = np.histogram(ranks[c][np.isfinite(ranks[c])], bins=edges)
        ax.bar(
            edges[:-1],
            counts,
            width=np.diff(edges),
            bottom=base,
            align="edge",
            color=colors[c],
            alpha=0.75,
            edgecolor="white",
            linewidth=0.5,
        )
        ax.axhspan(base + lo, base + hi, color="0.6", alpha=0.25, linewidth=0)
        ax.axhline(base + expected, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_yticks([(chains - 1 - c) * height + expected for c in range(chains)])
    ax.set_yticklabels([str(c) for c in range(chains)])
    ax.set_ylim(0, chains * height)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("pooled rank of L_n")
    ax.set_ylabel("chain")


def plot_loss_trace(
    losses,
    *,
    path,
    title: str | None = None,
    init_loss=None,
    burn_in: int = 0,
) -> Figure:
    """Per-chain trace of ``L_n`` with a per-chain rank plot, saved as a PNG.

    Parameters
    ----------
    losses : array_like, shape (chain, draw)
        Loss ``L_n(w_t)`` per draw (NaNs are drawn as gaps).
    path : str or os.PathLike
        Output PNG file.
    title : str, optional
        Figure title.
    init_loss : float or array_like (chain,), optional
        ``L_n(w*)`` at the localisation centre, drawn as dashed line(s).
    burn_in : int, default 0
        Leading draws to shade and to exclude from the rank plot and diagnostics.

    Returns
    -------
    matplotlib.figure.Figure
    """
    loss, init, burn_in = _check_trace_args(losses, init_loss, burn_in)
    chains, draws = loss.shape
    kept = loss[:, burn_in:]
    colors = _chain_colors(chains)
    fig = Figure(figsize=(11, 0.6 * max(chains, 4) + 2.2), layout="constrained")
    ax_trace, ax_rank = fig.subplots(1, 2, width_ratios=(3, 1))
    steps = np.arange(draws)
    for c in range(chains):
        ax_trace.plot(
            steps,
            loss[c],
            color=colors[c],
            linewidth=0.7,
            alpha=0.85,
            label=f"chain {c}" if chains <= 10 else None,
        )
    if burn_in:
        ax_trace.axvspan(-0.5, burn_in - 0.5, color="0.85", zorder=0, label="burn-in")
    _draw_init_loss(ax_trace, init, colors)
    ax_trace.set_xlim(-0.5, draws - 0.5)
    ax_trace.set_xlabel("draw")
    ax_trace.set_ylabel(r"$L_n(w)$")
    ax_trace.grid(alpha=0.3)
    ax_trace.legend(fontsize=8, ncols=min(chains + 2, 6), loc="upper right")
    ax_trace.set_title(_diagnostics_text(kept), fontsize=9)
    _draw_ranks(ax_rank, kept, colors)
    fig.suptitle(title or r"$L_n$ trace", fontsize=12)
    return _save(fig, path)


def _chain_colors(chains: int):
    cmap = colormaps["tab10" if chains <= 10 else "viridis"]
    return [cmap(c if chains <= 10 else c / max(chains - 1, 1)) for c in range(chains)]


def _draw_init_loss(ax, init, colors) -> None:
    if init is None:
        return
    if init.ndim == 0:
        ax.axhline(
            float(init),
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=r"$L_n(w^*)$",
        )
        return
    for c, value in enumerate(init):
        ax.axhline(
            value,
            color=colors[c],
            linestyle="--",
            linewidth=1.0,
            label=r"$L_n(w^*)$ per chain" if c == 0 else None,
        )


def _check_rows(rows) -> list[dict]:
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
        vals = {k: float(row[k]) for k in _ROW_KEYS[1:]}
        if not (math.isfinite(vals["true_lambda"]) and vals["true_lambda"] > 0):
            raise fail(f"rows[{i}]['true_lambda'] = {row['true_lambda']!r} is not > 0")
        if not math.isfinite(vals["llc"]):
            raise fail(f"rows[{i}]['llc'] = {row['llc']!r} is not finite")
        if not (vals["llc_mcse"] >= 0 or math.isnan(vals["llc_mcse"])):
            raise fail(f"rows[{i}]['llc_mcse'] = {row['llc_mcse']!r} is negative")
        clean.append({"model": str(row["model"]), **vals})
    return clean


def plot_llc_vs_truth(rows: Sequence[Mapping], *, path) -> Figure:
    """Estimated λ̂ ± 2 MCSE against the true λ (log-log, y = x), saved as a PNG.

    The left panel shows λ̂ against λ on log-log axes with the line y = x and a ±10%
    band; estimates ``<= 0`` cannot be shown on a log axis and are drawn as open
    triangles on the lower edge. The right panel shows the relative error
    ``(λ̂ - λ) / λ`` ± 2 MCSE / λ per model.

    Parameters
    ----------
    rows : list of dict
        One dict per model with keys ``model`` (label), ``true_lambda`` (> 0),
        ``llc`` (finite) and ``llc_mcse`` (>= 0, or NaN when unknown).
    path : str or os.PathLike
        Output PNG file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = _check_rows(rows)
    true = np.array([r["true_lambda"] for r in data])
    est = np.array([r["llc"] for r in data])
    err = 2.0 * np.nan_to_num(np.array([r["llc_mcse"] for r in data]))
    colors = _chain_colors(len(data))
    fig = Figure(figsize=(11, 5), layout="constrained")
    ax, ax_rel = fig.subplots(1, 2, width_ratios=(3, 2))
    shown = est[est > 0]
    lo = 0.6 * min(true.min(), shown.min() if shown.size else true.min())
    hi = 1.6 * max(true.max(), (est + err).max())
    grid = np.geomspace(lo, hi, 50)
    ax.fill_between(grid, 0.9 * grid, 1.1 * grid, color="0.85", label="±10%")
    ax.plot(grid, grid, color="0.3", linestyle="--", linewidth=1, label="y = x")
    for i, r in enumerate(data):
        _draw_estimate(ax, r, err[i], colors[i], lo)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    ax.set_xlabel(r"true $\lambda$")
    ax.set_ylabel(r"estimated $\hat\lambda$ (± 2 MCSE)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=9)
    ypos = np.arange(len(data))[::-1]
    ax_rel.axvline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax_rel.axvspan(-0.1, 0.1, color="0.85")
    ax_rel.errorbar(
        (est - true) / true, ypos, xerr=err / true, fmt="none", ecolor="0.4", capsize=3
    )
    ax_rel.scatter((est - true) / true, ypos, c=colors, zorder=3, s=36)
    ax_rel.set_yticks(ypos, [r["model"] for r in data])
    ax_rel.set_xlabel(r"relative error $(\hat\lambda-\lambda)/\lambda$")
    ax_rel.grid(alpha=0.3, axis="x")
    fig.suptitle(r"LLC estimates $\hat\lambda$ vs true $\lambda$", fontsize=12)
    return _save(fig, path)


def _draw_estimate(ax, row: dict, err: float, color, floor: float) -> None:
    x, y = row["true_lambda"], row["llc"]
    if y <= 0:
        ax.scatter(
            [x],
            [floor],
            marker="v",
            s=60,
            facecolors="none",
            edgecolors=color,
            clip_on=False,
            zorder=3,
        )
        label = f"{row['model']} (λ̂={y:.3g})"
        ax.annotate(
            label,
            (x, floor),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            color=color,
        )
        return
    lower = min(err, y - 1e-3 * y)  # keep the lower bar end positive on a log axis
    ax.errorbar(
        [x],
        [y],
        yerr=[[lower], [err]],
        fmt="o",
        color=color,
        capsize=3,
        markersize=6,
        zorder=3,
    )
    ax.annotate(
        row["model"],
        (x, y),
        xytext=(6, -10),
        textcoords="offset points",
        fontsize=8,
        color=color,
    )


def plot_arviz_trace_rank(dt, *, path, var_name: str = "L_n"):
    """ArviZ's own trace+distribution and rank-ECDF plots of ``var_name`` (default the
    L_n trace) from a :func:`slt_sampler.diagnostics.arviz.to_datatree` tree, stacked
    in one PNG. Returns the path.

    Uses ``arviz_plots.plot_trace_dist`` and ``arviz_plots.plot_rank_dist`` (ArviZ 1.x,
    matplotlib backend) on the ``sample_stats`` group.
    """
    import arviz_plots as azp

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = [out.with_name(out.stem + f".part{i}.png") for i in range(2)]
    kw = dict(group="sample_stats", var_names=[var_name], backend="matplotlib")
    azp.plot_trace_dist(dt, **kw).savefig(tmp[0], dpi=110)
    azp.plot_rank_dist(dt, **kw).savefig(tmp[1], dpi=110)
    images = [plt_imread(p) for p in tmp]
    width = max(im.shape[1] for im in images)
    padded = [
        np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)), constant_values=1.0)
        for im in images
    ]
    from matplotlib import image as mpimg

    mpimg.imsave(out, np.concatenate(padded, axis=0))
    for p in tmp:
        p.unlink()
    return out


def plt_imread(path):
    """Read a PNG as float RGBA in [0, 1]."""
    from matplotlib import image as mpimg

    im = mpimg.imread(path)
    if im.shape[-1] == 3:
        im = np.concatenate([im, np.ones(im.shape[:2] + (1,), im.dtype)], axis=-1)
    return im
