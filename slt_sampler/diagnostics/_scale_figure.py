"""Figures of the LLC-at-scale study: λ̂ against λ over decades of parameters, λ̂
against run length, and wall time against the number of parameters.

Rows are the study's results.json rows (dicts with ``model``, ``d``, ``true_lambda``
(``None`` where λ is unknown), ``llc``, ``llc_sigma``, ``settled`` and, where measured,
``exact_llc``, ``exact_llc_mcse``, ``sgld_llc``, ``sgld_llc_sigma``, ``sgld_settled``,
``llc_2x``, ``llc_vs_steps``, ``wall_seconds``).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._figure import save_figure

_SETTLED, _UNSETTLED, _EXACT = "#1f4e9c", "#e0701b", "#2a8c4a"


def _reference(row) -> tuple[float, bool]:
    """(λ the row is judged against, whether it is Aoyagi's closed form)."""
    if row.get("true_lambda"):
        return float(row["true_lambda"]), True
    if row.get("exact_llc") is not None:
        return float(row["exact_llc"]), False
    return math.nan, False


def _point(row) -> tuple[float, bool, float, float, bool] | None:
    """(reference λ, closed form?, estimate, its σ_total, settled) to plot for a row:
    the default estimate against Aoyagi's λ or an exact reference (``exact_llc``),
    or, where neither exists, calibrated SGLD (``sgld_llc``) against the default
    estimate (the study runs that check only where the default run is exact)."""
    if row.get("llc") is None:
        return None
    lam, closed = _reference(row)
    if math.isfinite(lam):
        sigma = float(row.get("llc_sigma") or row.get("llc_mcse") or 0.0)
        return lam, closed, float(row["llc"]), sigma, bool(row.get("settled", True))
    if row.get("sgld_llc") is not None:
        return (
            float(row["llc"]),
            False,
            float(row["sgld_llc"]),
            float(row.get("sgld_llc_sigma") or 0.0),
            bool(row.get("sgld_settled", True)),
        )
    return None


def plot_scale_accuracy(rows, *, path=None, band: float = 0.10) -> Figure:
    """Log-log λ̂ against λ (Aoyagi's, or the exact sampler's where λ is unknown) with
    ``y = x``, a ±``band`` relative band, ±2σ_total bars and hollow markers for
    unsettled runs; a right panel shows the relative error against d. A row with
    neither gets its SGLD check against its exact default run (:func:`_point`)."""
    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    refs = [(p, r) for r in rows if (p := _point(r)) is not None]
    if not refs:
        ax.text(0.5, 0.5, "no finished rows", ha="center", transform=ax.transAxes)
        return save_figure(fig, path) if path else fig
    lams = np.array([p[0] for p, _ in refs])
    lo, hi = lams.min() / 2, lams.max() * 2
    grid = np.geomspace(lo, hi, 50)
    ax.plot(grid, grid, color="black", lw=1, label="λ̂ = λ")
    ax.fill_between(
        grid, grid * (1 - band), grid * (1 + band), color="0.88", label=f"±{band:.0%}"
    )
    for (lam, closed, est, sigma, settled), r in refs:
        color = _SETTLED if closed else _EXACT
        kw = {"mfc": color if settled else "white", "mec": color, "color": color}
        marker = "o" if closed else "s"
        ax.errorbar(lam, est, yerr=2 * sigma, fmt=marker, ms=6, capsize=3, **kw)
        rel = est / lam - 1
        ax2.errorbar(
            r["d"], 100 * rel, yerr=200 * sigma / lam, fmt=marker, ms=6, capsize=3, **kw
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(lo, hi),
        xlabel="reference λ (Aoyagi 2024; squares: exact MAMS sampler)",
        ylabel="λ̂ (estimate_llc at defaults), ±2σ_total",
        title=f"λ̂ against λ, {_sizes([r['d'] for _, r in refs])} parameters",
    )
    handles = [
        ax.plot([], [], "o", color=_SETTLED, label="DLN vs Aoyagi's λ, settled")[0],
        ax.plot([], [], "o", mfc="white", mec=_SETTLED, label="unsettled")[0],
    ]
    if not all(p[1] for p, _ in refs):
        label = "MLP vs exact (SGLD where the default is exact)"
        handles.append(ax.plot([], [], "s", color=_EXACT, label=label)[0])
    ax.legend(handles=[*ax.get_legend_handles_labels()[0][:2], *handles], loc="best")
    ax2.axhspan(-100 * band, 100 * band, color="0.88")
    ax2.axhline(0, color="black", lw=1)
    ax2.set(
        xscale="log",
        xlabel="parameters d",
        ylabel="relative error of λ̂ (%), ±2σ_total",
        title="relative error against model size",
    )
    fig.tight_layout()
    return save_figure(fig, path) if path else fig


def _answers(row) -> list[tuple[float, float, float]]:
    """``(steps, λ̂, σ_total)`` of each default run of ``row`` that reported one: the
    main run, then the ``--seeds`` runs on independent keys."""
    runs = [(row.get("num_steps"), row.get("llc"), row.get("llc_sigma"))]
    runs += zip(
        row.get("num_steps_seeds") or [],
        row.get("llc_seeds") or [],
        row.get("llc_sigma_seeds") or [],
    )
    return [
        (float(t), float(v), float(e))
        for t, v, e in runs
        if t is not None and v is not None and e is not None
    ]


def plot_llc_vs_run_length(rows, *, path=None) -> Figure:
    """Per model, raw λ̂ (burn-in half) from the first t steps of the default run
    against t, the answers the default runs reported (λ̂ ± 2σ_total at their length:
    the main run and any ``--seeds`` runs, hollow), its 2x-length rerun, and λ
    (Aoyagi's) or the exact reference, each divided by that reference."""
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(rows))]
    for color, r in zip(colors, rows):
        lam, _ = _reference(r)
        curve = r.get("llc_vs_steps") or []
        if not curve or not math.isfinite(lam):
            continue
        t, v, e = (np.array(c, float) for c in zip(*curve))
        ax.plot(t, v / lam, color=color, lw=1.2, label=f"{r['model']} (d={r['d']:,})")
        ax.fill_between(
            t, (v - 2 * e) / lam, (v + 2 * e) / lam, color=color, alpha=0.15
        )
        answers = _answers(r)
        if answers:
            steps, value, sigma = (np.array(c, float) for c in zip(*answers))
            ax.errorbar(
                steps,
                value / lam,
                yerr=2 * sigma / lam,
                fmt="o",
                mfc="none",
                ms=4,
                color=color,
                capsize=2,
                lw=0.8,
            )
        if r.get("llc_2x") is not None:
            ax.errorbar(
                r["num_steps_2x"],
                r["llc_2x"] / lam,
                yerr=2 * (r.get("llc_2x_sigma") or 0) / lam,
                fmt="D",
                color=color,
                capsize=3,
            )
    ax.axhline(1, color="black", lw=1)
    ax.axhspan(0.9, 1.1, color="0.9", zorder=0)
    ax.set(
        xscale="log",
        xlabel="run length t (steps per chain; burn-in t/2)",
        ylabel="λ̂ / λ",
        title="λ̂ against run length\n"
        "line: raw λ̂ of the first t steps ± 2 MCSE; circles: default runs' answers, "
        "diamonds: 2x runs, ± 2σ_total",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, path) if path else fig


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sizes(ds) -> str:
    """``"10² to 10⁵"``: the decades (rounded) of the smallest and largest d shown."""
    lo, hi = (round(math.log10(f(ds))) for f in (min, max))
    power = lambda k: "10" + str(k).translate(_SUPERSCRIPT)
    return power(lo) if lo == hi else f"{power(lo)} to {power(hi)}"


def _decades(values) -> tuple[float, float]:
    """The whole decades enclosing the finite positive ``values``."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 1.0, 10.0
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    return 10.0**lo, 10.0 ** max(hi, lo + 1)


def plot_wall_time(rows, *, path=None) -> Figure:
    """Wall time of the default run (and peak memory) against d, log-log."""
    fig = Figure(figsize=(8, 4.2))
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2)
    rows = [r for r in rows if r.get("wall_seconds") is not None]
    d = np.array([r["d"] for r in rows], float)
    ax.loglog(d, [r["wall_seconds"] for r in rows], "o", color=_SETTLED)
    for r in rows:
        ax.annotate(
            r["model"],
            (r["d"], r["wall_seconds"]),
            fontsize=6,
            alpha=0.7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set(
        xlabel="parameters d",
        ylabel="wall time of estimate_llc (s)",
        title="wall time",
    )
    ax2.loglog(d, [r.get("peak_rss_mb") or np.nan for r in rows], "s", color=_EXACT)
    ax2.set(
        xlabel="parameters d",
        ylabel="peak resident memory of the process (MiB)",
        title="peak memory (process, so far)",
    )
    peaks = [r.get("peak_rss_mb") or np.nan for r in rows]
    for a, ys in ((ax, [r["wall_seconds"] for r in rows]), (ax2, peaks)):
        if len(d):  # whole decades, so that every axis carries labelled ticks
            a.set_xlim(*_decades(d))
            a.set_ylim(*_decades(ys))
        a.xaxis.set_minor_formatter(NullFormatter())
        a.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    return save_figure(fig, path) if path else fig


__all__ = ["plot_llc_vs_run_length", "plot_scale_accuracy", "plot_wall_time"]
