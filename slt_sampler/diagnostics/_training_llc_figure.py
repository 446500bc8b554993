"""λ̂ and the loss against training step (see :func:`plot_llc_over_training`), and
the one-screen summary of an ``LLCOverTraining``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._figure import save_figure

_LLC, _LOSS, _REF, _SHADE, _SADDLE = "#1f4e9c", "#444444", "#c0392b", "0.92", "#e0701b"


def plot_llc_over_training(
    steps,
    loss,
    llc,
    llc_sigma,
    *,
    plateaus=(),
    below=None,
    reference: Mapping | None = None,
    title: str | None = None,
    loss_label: str = "L_n(w*) (nats per datum)",
    path=None,
) -> Figure:
    """Two panels on one training-step axis: λ̂ ± σ (top) and the loss (bottom).

    Plateaus of the loss are shaded in both; ``reference`` maps a plateau's position
    in ``plateaus`` to ``(label, λ)`` (e.g. Aoyagi's λ for the rank learnt there),
    drawn as a horizontal segment over that plateau. Checkpoints flagged in ``below``
    (chains settled below L_n(w*): not a minimum) are drawn hollow. When λ̂ reaches
    far below zero (saddles) the λ̂ axis is symmetric-log.
    """
    steps, loss = np.asarray(steps, float), np.asarray(loss, float)
    llc, sig = np.asarray(llc, float), np.asarray(llc_sigma, float)
    if not (steps.shape == loss.shape == llc.shape == sig.shape) or steps.ndim != 1:
        raise ValueError(
            "steps, loss, llc and llc_sigma must be 1-D arrays of one length, got "
            f"shapes {steps.shape}, {loss.shape}, {llc.shape}, {sig.shape}."
        )
    below = np.zeros(steps.shape, bool) if below is None else np.asarray(below, bool)
    fig = Figure(figsize=(8.0, 6.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_l, ax_loss = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for p in plateaus:
        for ax in (ax_l, ax_loss):
            ax.axvspan(p.start_step, p.stop_step, color=_SHADE, zorder=0)
    ok = ~below
    ax_l.errorbar(
        steps[ok],
        llc[ok],
        yerr=sig[ok],
        fmt="o",
        ms=3.5,
        color=_LLC,
        capsize=2,
        label="λ̂ ± σ (total error)",
    )
    if below.any():
        ax_l.errorbar(
            steps[below],
            llc[below],
            yerr=sig[below],
            fmt="o",
            ms=3.5,
            mfc="white",
            color=_SADDLE,
            capsize=2,
            label="λ̂ where chains fell below w* (saddle)",
        )
    for j, (label, lam) in (reference or {}).items():
        p = plateaus[j]
        ax_l.hlines(lam, p.start_step, p.stop_step, color=_REF, lw=2.2, zorder=4)
        ax_l.annotate(
            label,
            (0.5 * (p.start_step + p.stop_step), lam),
            textcoords="offset points",
            xytext=(0, 4 + 11 * (j % 2)),
            ha="center",
            fontsize=8,
            color=_REF,
        )
    if reference:
        ax_l.plot([], [], color=_REF, lw=2.2, label="theory λ at the plateau")
    positive = llc[np.isfinite(llc) & (llc > 0)]
    top = float(positive.max()) if positive.size else 1.0
    if np.nanmin(llc) < -2 * top:
        ax_l.set_yscale("symlog", linthresh=10 ** np.ceil(np.log10(top)))
    ax_l.axhline(0, color="0.6", lw=0.8)
    ax_l.set_ylabel("local learning coefficient λ̂")
    ax_l.legend(fontsize=8, loc="best")
    ax_loss.plot(steps, loss, "-", color=_LOSS, lw=1.4, label="training loss")
    if np.all(loss > 0) and loss.max() > 10 * loss.min():
        ax_loss.set_yscale("log")
    ax_loss.set_ylabel(loss_label)
    ax_loss.set_xlabel("training step")
    if plateaus:
        ax_loss.plot([], [], lw=6, color=_SHADE, label="plateau (found automatically)")
    ax_loss.legend(fontsize=8, loc="best")
    fig.suptitle(title or "Local learning coefficient over training")
    if path is not None:
        save_figure(fig, path)
    return fig


def training_llc_summary(res) -> str:
    """One screen: settings, the λ̂ curve at a glance, plateaus, refreshes."""
    s = res.settings
    k = len(res.steps)
    lines = [
        (
            f"LLCOverTraining  {k} checkpoints (steps {res.steps[0]:g}…{res.steps[-1]:g}), "
            f"{s['num_chains']} chains × {s['num_steps']} SGLD steps each, "
            f"sampler compiled {res.compiles}×, {res.seconds:.1f} s"
        ),
        (
            f"  target   n = {s['n']}, β = {s['beta']:.4g}, γ = {s['gamma']:g}, "
            f"batch {s['batch_size'] or 'full'}"
        ),
        (
            f"  λ̂        first {res.llc[0]:.4g} ± {res.llc_sigma[0]:.2g}, last "
            f"{res.llc[-1]:.4g} ± {res.llc_sigma[-1]:.2g} (min {np.min(res.llc):.4g}, "
            f"max {np.max(res.llc):.4g})"
        ),
        f"  loss     {res.loss[0]:.5g} → {res.loss[-1]:.5g}",
        f"  saddles  chains fell below w* at {int(res.below.sum())} of {k} checkpoints",
    ]
    for j, p in enumerate(res.plateaus):
        i = p.index
        lines.append(
            f"  plateau {j}: steps {p.start_step:g}–{p.stop_step:g}, loss {p.loss:.5g}, "
            f"λ̂ at step {p.step:g} = {res.llc[i]:.4g} ± {res.llc_sigma[i]:.2g}"
        )
    refreshes = [(i, r) for i, r in enumerate(res.refreshed) if r]
    lines.append(
        f"  step     ε = {res.step_size[0]:.3g} … {res.step_size[-1]:.3g}; "
        f"{len(refreshes)} checkpoint(s) changed it"
    )
    for i, r in refreshes[:4]:
        lines.append(f"    [{i}] {r[:140]}")
    return "\n".join(lines)
