"""Figures of training as a thermodynamic process: SGD against the matched posterior,
and the energy of momentum optimisers.

Each function takes plain arrays (NumPy), draws theory beside measurement, saves the
figure with :func:`~slt_sampler.diagnostics._figure.save_figure` and returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ._figure import save_figure

__all__ = [
    "plot_covariance_comparison",
    "plot_covariance_error_vs_lr",
    "plot_energy_drift",
    "plot_energy_histograms",
    "plot_llc_sgd_vs_posterior",
]


def _fro(m, ref) -> float:
    return float(np.linalg.norm(m - ref) / np.linalg.norm(ref))


def plot_covariance_comparison(
    measured, lyapunov, posterior, *, path, title: str = ""
) -> Figure:
    """Three heat maps (SGD iterates, Lyapunov prediction, matched posterior) on one
    colour scale, and a scatter of every entry measured against both predictions."""
    mats = [np.asarray(m, float) for m in (measured, lyapunov, posterior)]
    names = [
        "SGD iterates (measured)",
        "Lyapunov: AΣ + ΣA = (η/B)C",
        "posterior (nβA)⁻¹ at matched β",
    ]
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    axes = fig.subplots(1, 4)
    lim = max(np.abs(m).max() for m in mats)
    for ax, m, name in zip(axes[:3], mats, names):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        sub = "" if m is mats[0] else f"\nrel. Frobenius error {_fro(mats[0], m):.1%}"
        ax.set_title(name + sub, fontsize=9)
        ax.set_xlabel("parameter index j")
        ax.set_ylabel("parameter index i")
    fig.colorbar(im, ax=axes[2], label="Cov[w_i, w_j] (parameter units²)")
    ax = axes[3]
    for m, name, mk in zip(mats[1:], ("Lyapunov", "posterior"), ("o", "x")):
        ax.scatter(m.ravel(), mats[0].ravel(), marker=mk, s=22, label=name)
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="equality")
    ax.set_xlabel("predicted Cov[w_i, w_j]")
    ax.set_ylabel("measured Cov[w_i, w_j] (SGD)")
    ax.set_title("every entry: measured vs theory", fontsize=9)
    ax.ticklabel_format(style="sci", scilimits=(0, 0))
    ax.legend(fontsize=8)
    fig.suptitle(title or "Stationary covariance of SGD against theory")
    return save_figure(fig, path)


def plot_energy_histograms(
    panels: Sequence[Mapping], *, path, title: str = ""
) -> Figure:
    """Histograms of ``nβ(L_n − L_n(w*))`` under SGD iterates and under the matched
    posterior, one panel per model. Each panel mapping has ``name``, ``sgd``,
    ``posterior`` (1-d arrays), and optional ``lam`` (true λ, the posterior mean to
    leading order), ``half_dim`` (d/2, the regular value) and ``gamma_shape`` (draws
    the Gamma(shape, 1) density, the exact law of ``nβ(L_n − L_n(w*)) = ½χ²_d`` under
    a Gaussian posterior, with shape d/2)."""
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, p in zip(axes, panels):
        sgd, post = np.asarray(p["sgd"]).ravel(), np.asarray(p["posterior"]).ravel()
        hi = np.quantile(np.concatenate([sgd, post]), 0.995)
        bins = np.linspace(0, hi, 50)
        ax.hist(sgd, bins, density=True, alpha=0.55, label="SGD iterates")
        ax.hist(post, bins, density=True, alpha=0.55, label="posterior at matched β")
        ax.axvline(sgd.mean(), color="C0", lw=2, label=f"SGD mean {sgd.mean():.2f}")
        ax.axvline(
            post.mean(), color="C1", lw=2, label=f"posterior mean {post.mean():.2f}"
        )
        if p.get("lam") is not None:
            ax.axvline(p["lam"], color="k", ls="--", label=f"true λ = {p['lam']:g}")
        if p.get("gamma_shape") is not None:
            from scipy.stats import gamma

            grid = np.linspace(bins[0], bins[-1], 300)
            ax.plot(
                grid,
                gamma.pdf(grid, p["gamma_shape"]),
                "k-",
                lw=1.2,
                label=f"theory Gamma({p['gamma_shape']:g}, 1) = ½χ²_d",
            )
        if p.get("half_dim") is not None:
            ax.axvline(
                p["half_dim"], color="gray", ls=":", label=f"d/2 = {p['half_dim']:g}"
            )
        ax.set_xlabel("nβ (L_n(w) − L_n(w*))  (nats)")
        ax.set_ylabel("density (1/nat)")
        ax.set_title(p["name"], fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(title or "Energy distribution: SGD iterates vs tempered posterior")
    return save_figure(fig, path)


def plot_llc_sgd_vs_posterior(rows: Sequence[Mapping], *, path) -> Figure:
    """λ̂ computed from SGD iterates as if they were samples, λ̂ of the posterior at the
    same β, the exact λ and d/2, per model (``name``, ``llc_sgd``, ``llc_sgd_se``,
    ``llc_posterior``, ``llc_posterior_se``, ``lam``, ``dim``)."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    w = 0.35
    for k, (key, label) in enumerate(
        [("llc_sgd", "λ̂ from SGD iterates"), ("llc_posterior", "λ̂ of the posterior")]
    ):
        vals = [r[key] for r in rows]
        err = [2 * r.get(key + "_se", 0.0) for r in rows]
        ax.bar(
            x + (k - 0.5) * w, vals, w, yerr=err, capsize=4, label=label + " (±2 SE)"
        )
    for i, r in enumerate(rows):
        ax.hlines(r["lam"], i - 0.45, i + 0.45, colors="k", linestyles="--")
        ax.hlines(r["dim"] / 2, i - 0.45, i + 0.45, colors="gray", linestyles=":")
    ax.plot([], [], "k--", label="exact λ (Watanabe / Aoyagi)")
    ax.plot([], [], ls=":", color="gray", label="d/2 (regular value)")
    ax.set_xticks(x, [r["name"] for r in rows], fontsize=8)
    ax.set_xlabel("model (zoo name)")
    ax.set_ylabel("learning coefficient (dimensionless)")
    ax.set_title("LLC read from SGD iterates vs from the matched posterior")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_covariance_error_vs_lr(rows: Sequence[Mapping], *, path) -> Figure:
    """Relative Frobenius error of the SGD covariance against the continuous Lyapunov
    prediction, the exact discrete-time one and the matched posterior, over learning
    rates (``lr``, ``cov_rel_error_lyapunov``, ``cov_rel_error_lyapunov_discrete``,
    ``cov_rel_error_posterior``, ``cov_se``, ``lyapunov_discretisation``: the
    predicted gap between the continuous and the exact discrete-time covariance)."""
    rows = sorted(rows, key=lambda r: r["lr"])
    lr = np.array([r["lr"] for r in rows])
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    se = np.array([r["cov_se"] for r in rows])
    ax.fill_between(lr, 0, 2 * se, color="0.85", label="Monte-Carlo noise (2 × rms)")
    for key, label, mk in (
        ("cov_rel_error_lyapunov", "measured vs Lyapunov (continuous)", "o-"),
        ("cov_rel_error_lyapunov_discrete", "measured vs exact discrete-time Σ", "^-"),
        ("cov_rel_error_posterior", "measured vs matched posterior", "s-"),
    ):
        ax.plot(lr, [r[key] for r in rows], mk, label=label)
    ax.plot(
        lr,
        [r["lyapunov_discretisation"] for r in rows],
        "k--",
        label="theory: continuous vs exact discrete Σ",
    )
    ax.axhline(0.10, color="r", ls=":", label="10% target")
    ax.set_xscale("log")
    ax.set_ylim(0, 0.12)
    ax.set_xlabel("learning rate η (per step)")
    ax.set_ylabel("relative Frobenius error")
    ax.set_title("SGD stationary covariance: error against theory")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    return save_figure(fig, path)


def plot_energy_drift(panels: Sequence[Mapping], *, path) -> Figure:
    """Energy error ``H_t − H_0`` of momentum optimisers over training steps, one
    panel per loss. Each panel: ``name``, ``steps``, ``curves`` (label → array of
    ``H_t − H_0``) and optional ``band`` (theoretical bound for leapfrog, drawn as
    ±band) and ``theory`` (label → array, drawn dashed)."""
    fig = Figure(figsize=(6 * len(panels), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, p in zip(axes, panels):
        steps = np.asarray(p["steps"])
        for label, y in p["curves"].items():
            ax.plot(steps, np.abs(np.asarray(y)) + 1e-12, label=label)
        for label, y in p.get("theory", {}).items():
            ax.plot(steps, np.abs(np.asarray(y)) + 1e-12, "k--", lw=1, label=label)
        if p.get("band") is not None:
            ax.axhline(p["band"], color="gray", ls=":", label="leapfrog bound (theory)")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("|H_t − H_0|  (loss units)")
        ax.set_title(p["name"], fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("Energy error: symplectic leapfrog vs explicit-Euler momentum")
    return save_figure(fig, path)
