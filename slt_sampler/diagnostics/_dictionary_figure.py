"""Figure of a thermodynamic dictionary across β: measurement beside theory.

Six panels against β (log axis): the free energy, the average energy and the entropy
(exact values drawn as lines where known), the heat capacity with the learning
coefficient λ, the four errors scaled by n with Watanabe's equations-of-state
predictions ``(λ − ν)/β ± ν`` and ``λ/β ± ν`` (when λ and ν are given), and the
singular fluctuation ν = βV/2. Built on a bare :class:`~matplotlib.figure.Figure`
(no pyplot); saved as PNG.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._figure import save_figure

__all__ = ["plot_dictionary"]

_ERRORS = {"G_t": "C0", "G_g": "C1", "B_t": "C2", "B_g": "C3"}


def _series(rows, quantity):
    sel = sorted(
        (r for r in rows if r["quantity"] == quantity), key=lambda r: r["beta"]
    )
    get = lambda k: np.array([np.nan if r[k] is None else r[k] for r in sel], float)
    return get("beta"), get("estimate"), get("sigma"), get("exact")


def _panel(ax, rows, quantity, label, scale=1.0, color="C0", exact_label="exact"):
    b, est, sig, exact = _series(rows, quantity)
    if b.size == 0:
        return
    ax.errorbar(b, scale * est, yerr=scale * sig, fmt="o", color=color, ms=4,
                capsize=3, label=label)  # fmt: skip
    if np.any(np.isfinite(exact)):
        ax.plot(b, scale * exact, "-", color=color, alpha=0.5, label=exact_label)


def plot_dictionary(rows, path, *, title: str, n: int, lam=None, nu=None) -> Figure:
    """Plot one model's dictionary rows (dicts with ``beta``, ``quantity``,
    ``estimate``, ``sigma`` and ``exact`` (None when unknown)).

    Parameters
    ----------
    rows
        The model's rows (as written to ``results.json``).
    path
        PNG file to write.
    title
        Figure title (the model).
    n
        Number of data (errors are drawn as n × error).
    lam, nu
        Learning coefficient and singular fluctuation for the theory lines (None:
        not drawn; ν = None with λ given draws only the C → λ line).
    """
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 3)
    specs = [
        ("F", "free energy $F_n(\\beta)$ (nats)"),
        ("U", "average energy $U$ (nats)"),
        ("S", "posterior entropy $S$ (nats)"),
    ]
    for ax, (q, ylabel) in zip(axes[0], specs):
        _panel(ax, rows, q, "estimate ± 1σ")
        ax.set_ylabel(ylabel)
        ax.set_title(q)
    ax = axes[1, 0]
    _panel(ax, rows, "C", "$C = \\beta^2 \\mathrm{Var}[nK_n]$ ± 1σ")
    if lam is not None:
        ax.axhline(lam, color="k", ls="--", lw=1, label=f"λ = {lam:g}")
    ax.set_ylabel("heat capacity (nats)")
    ax.set_title("heat capacity, the λ(β) of $F_n$")
    ax = axes[1, 1]
    for q, color in _ERRORS.items():
        _panel(ax, rows, q, f"n·{q}", scale=n, color=color, exact_label=None)
    if lam is not None and nu is not None:
        grid = np.geomspace(*_beta_range(rows), 100)
        theory = {
            "B_g": (lam - nu) / grid + nu,
            "B_t": (lam - nu) / grid - nu,
            "G_g": lam / grid + nu,
            "G_t": lam / grid - nu,
        }
        for q, y in theory.items():
            ax.plot(grid, y, ":", color=_ERRORS[q], lw=1.2)
        ax.plot([], [], "k:", label="equations of state (λ, ν)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("n × error (nats)")
    ax.set_title("Bayes and Gibbs errors (single dataset)")
    ax = axes[1, 2]
    _panel(ax, rows, "nu", "ν = βV/2 ± 1σ")
    if nu is not None:
        ax.axhline(nu, color="k", ls="--", lw=1, label=f"ν = {nu:g}")
    ax.set_ylabel("singular fluctuation ν")
    ax.set_title("singular fluctuation")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("inverse temperature β")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def _beta_range(rows):
    b = np.array([r["beta"] for r in rows], float)
    return float(b.min()), float(b.max())
