"""Matplotlib figures for LLC runs: loss traces with rank plots, and λ̂ vs true λ.

Figures are built with the object-oriented API on an Agg canvas
(:class:`matplotlib.figure.Figure`, never ``pyplot``), so nothing touches global
backend state, nothing stays open, and it works headless. (ArviZ's matplotlib backend
makes its figures with ``pyplot``; :func:`plot_arviz_trace_rank` closes them.) Each function saves a PNG
to ``path`` (parent directories are created) and returns the ``Figure``.
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy import stats

from slt_sampler.estimators import _mcse

from ._figure import save_figure as _save
from ._llc_figure import (
    _LABEL_GID,  # noqa: F401 - the tests find labels by it
    plot_llc_vs_truth,
)

__all__ = ["plot_arviz_trace_rank", "plot_llc_vs_truth", "plot_loss_trace"]

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
_TRACE_POINTS = 5000  # at most this many draws a chain are drawn in a trace


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


def plot_arviz_trace_rank(dt, *, path, var_name: str = "L_n") -> Figure:
    """ArviZ density, trace and rank Δ-ECDF plots of ``var_name`` in one PNG.

    ``dt`` is a :func:`slt_sampler.diagnostics.arviz.to_datatree` tree (the variable is
    read from its ``sample_stats`` group); the title names ``dt.attrs["model"]`` when
    set. Drawn with ``arviz_plots.plot_trace_dist`` and ``arviz_plots.plot_rank``
    (ArviZ 1.x, matplotlib backend) on one grid, with R-hat and bulk/tail ESS below.

    ArviZ annotates the rank panel with the p-value of its multi-chain rank-uniformity
    test, which assumes independent draws: on long, autocorrelated chains it gives
    p ≈ 0 even when the chains agree. The rank panel therefore uses draws thinned by
    ArviZ's ESS-based factor (Säilynoja et al. 2022), which makes them close to
    independent, and the annotation says so.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp
    from matplotlib import pyplot as plt  # ArviZ's backend makes pyplot figures

    ds = dt["sample_stats"].to_dataset()[[var_name]]
    values = np.asarray(ds[var_name].values, dtype=np.float64)
    chains, draws = values.shape
    thin = _rank_thinning(values)
    stride = max(1, draws // _TRACE_POINTS)
    shown = ds.isel(draw=slice(None, None, stride))
    pc = azp.PlotCollection.grid(
        shown.expand_dims(column=3).assign_coords(column=["dist", "trace", "rank"]),
        cols=["column"],
        rows=["__variable__"],
        aes={"color": ["chain"], "overlay": ["chain"]},
        backend="matplotlib",
        figure_kwargs={"figsize": (13, 4.4), "layout": "constrained"},
    )
    kw = {"group": "sample_stats", "var_names": [var_name], "plot_collection": pc}
    azp.plot_trace_dist(xr.DataTree.from_dict({"sample_stats": shown}), **kw)
    fig = pc.viz["figure"].item()
    plt.close(fig)  # keep it out of pyplot's registry; the Figure stays usable
    ax_dist, ax_trace, ax_rank = fig.axes[:3]
    if thin is not None:
        pc.coords = {"column": "rank"}
        ranked = ds.isel(draw=slice(None, None, thin))
        azp.plot_rank(
            xr.DataTree.from_dict({"sample_stats": ranked}),
            visuals={"title": False},
            **kw,
        )
        pc.coords = None
        _explain_p_value(ax_rank, thin)
    else:
        ax_rank.text(
            0.5,
            0.5,
            "no rank plot: it needs >= 2 chains\nof >= 4 finite draws each",
            ha="center",
            va="center",
            transform=ax_rank.transAxes,
            color="0.4",
        )
        ax_rank.set(xticks=[], yticks=[])
    _label_arviz_axes(ax_dist, ax_trace, ax_rank, chains, stride, thin)
    model = dt.attrs.get("model")
    fig.suptitle(
        f"{model}: {var_name} diagnostics" if model else f"{var_name} diagnostics",
        fontsize=12,
    )
    fig.supxlabel(_arviz_caption(values, thin), fontsize=8.5, color="0.25")
    return _save(fig, path)


def _rank_thinning(values: np.ndarray) -> int | None:
    """ArviZ's ESS-based thinning factor (keeping >= 20 draws a chain), or None when
    no rank plot can be drawn (one chain, non-finite values, too few draws)."""
    from arviz_stats.base import array_stats

    chains, draws = values.shape
    if chains < 2 or draws < 4 or not np.isfinite(values).all():
        return None
    if np.ptp(values) == 0:
        return 1
    factor = array_stats.thin_factor(values)
    return int(np.clip(factor, 1, max(1, draws // 20)))


def _explain_p_value(ax, thin: int) -> None:
    """Reword ArviZ's bare 'p=0.42(α=0.01)' so the figure says what was tested."""
    for text in ax.texts:
        match = re.match(r"\s*p=([\d.]+)\(α=([\d.]+)\)", text.get_text())
        if match:
            p_value, alpha = match.groups()
            text.set_text(
                f"rank-uniformity test on draws thinned ×{thin} (≈ independent):\n"
                f"p = {p_value}  (α = {alpha}; small p ⇒ the chains differ)"
            )
            text.set_fontsize(8)
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":", zorder=0)


def _label_arviz_axes(ax_dist, ax_trace, ax_rank, chains, stride, thin) -> None:
    ax_dist.set_title("density per chain", fontsize=10)
    every = f", every {stride}th draw shown" if stride > 1 else ""
    ax_trace.set_title(f"trace{every}", fontsize=10)
    rank = f" (draws thinned ×{thin})" if thin and thin > 1 else ""
    ax_rank.set_title(f"rank Δ-ECDF per chain{rank}", fontsize=10)
    lines = ax_trace.get_lines()[:chains]
    if 1 < chains <= 10 and len(lines) == chains:
        ax_trace.legend(
            lines,
            [f"chain {c}" for c in range(chains)],
            fontsize=7,
            ncols=min(chains, 4),
            loc="upper right",
            framealpha=0.8,
        )


def _arviz_caption(values: np.ndarray, thin: int | None) -> str:
    chains, draws = values.shape
    stats_text = _diagnostics_text(values) or "R-hat / ESS not computable"
    head = f"{chains} chains × {draws} draws.  {stats_text}."
    if thin is None:
        return head
    return (
        f"{head}\nRank panel: each chain's ECDF of pooled fractional ranks minus the "
        "uniform CDF (flat if the chains agree). The p-value is ArviZ's multi-chain "
        "rank-uniformity test,\nwhich assumes independent draws: run on all draws of "
        "long autocorrelated chains it gives p ≈ 0 even when the chains agree, so it is "
        f"run on every {thin}th draw (≈ ESS).\nR-hat and ESS, which account for "
        "autocorrelation, are the convergence diagnostics to read."
    )
