"""One-screen text summaries of results (what ``print(estimate)`` shows)."""

from __future__ import annotations

import numpy as np

from ..samplers.hmc import EXACT_SAMPLERS


def _fmt_chains(values, limit: int = 8) -> str:
    vals = [f"{v:.4g}" for v in np.asarray(values)[:limit]]
    more = len(values) - limit
    return " ".join(vals) + (f" … (+{more})" if more > 0 else "")


def llc_summary(est) -> str:
    """A one-screen summary of an ``LLCEstimate``: λ̂ with its errors and diagnostics,
    the choices made, the checks and every problem found."""
    r = est.result
    lines = [
        (
            f"LLCEstimate  λ̂ = {r.llc:.4g} ± {r.llc_sigma:.2g} (total; MCSE "
            f"{r.llc_mcse:.2g})   R-hat {r.rhat:.3f}   ESS {r.ess:.0f}   "
            f"settled: {'yes' if est.settled else 'NO'}"
        ),
        (
            f"  target   n = {est.n}, β = {est.beta:.4g} (nβ = {r.nbeta:.4g}), "
            f"γ = {est.gamma:g};  L_n(w*) = {r.init_loss:.6g}, "
            f"E[L_n] = {r.mean_loss:.6g}"
        ),
        f"  sampler  {est.sampler}, ε = {est.step_size:.3g}"
        + (f", batch {est.batch_size}" if est.batch_size else "")
        + f";  {est.num_chains} chains × {est.num_steps} steps, burn-in {est.burn_in}",
    ]
    b = getattr(est, "error_budget", None)
    if b is not None:
        exact = est.sampler in EXACT_SAMPLERS
        bias = (
            "no step-size bias (exact sampler)"
            if exact
            else f"step-size bias {b.bias:+.2g} ± {b.bias_sd:.2g} (subtracted; raw "
            f"λ̂ {r.llc_raw:.4g})"
        )
        lines.append(
            f"  error    MCSE {b.mcse:.2g}, {bias}, drift {b.drift:.2g}"
            + (f", bracket {b.bracket:.2g}" if exact else "")
            + f" → total {b.total:.2g} ({100 * b.total / abs(r.llc):.2g}% of λ̂)"
        )
    if est.calibration is not None:
        lines.append(f"  step     {est.calibration.reason}")
    if getattr(est, "tuning", None):
        lines.append(f"  step     {est.tuning}")
    lines.append(
        f"  chains   λ̂ per chain: {_fmt_chains(r.llc_per_chain)}  (sd {r.llc_std:.3g})"
    )
    hot = getattr(est, "dispersed", None)
    if hot is not None and hot.any() and not hot.all():
        from ..estimators.llc import approaching, group_convergence

        per = np.asarray(r.llc_per_chain)
        kept = est.losses[:, est.burn_in :]
        flags = approaching(kept, hot)
        rhat = group_convergence(kept, hot, moving=flags)[0]
        moving = [name for name, a in zip(("at w*", "hot-started"), flags) if a]
        still = (
            f"; the chains {' and '.join(moving)} still approaching the other "
            "group, judged by unsplit R-hat"
            if moving
            else ""
        )
        lines.append(
            f"  starts   {int((~hot).sum())} chains at w*: λ̂ {per[~hot].mean():.4g}; "
            f"{int(hot.sum())} hot-started: {per[hot].mean():.4g}  (R-hat within "
            f"each group {rhat:.3f}{still}; half their gap is the bracket)"
        )
    if est.end_configurational_temperature is not None:
        t, se = est.end_configurational_temperature
        lines.append(
            f"  T_conf   at the end of the run {t:.3f} ± {se:.3f} (1 at the target)"
        )
    if len(est.gamma_sensitivity) > 1:
        mcse = getattr(est, "gamma_sensitivity_mcse", {}) or {}
        parts = [
            f"γ={g:g}: {v:.4g}" + (f" ± {mcse[g]:.2g}" if g in mcse else "")
            for g, v in est.gamma_sensitivity.items()
        ]
        lines.append("  γ check  raw λ̂ " + ", ".join(parts))
    if est.center_check is not None:
        c = est.center_check
        verdict = "a minimum" if c.is_minimum else "NOT a minimum"
        lines.append(
            f"  w*       gradient decrement {c.decrement:.3g} nats "
            f"(threshold {c.threshold:.3g}): {verdict}"
        )
    lines.append(
        f"  time     compile {est.compile_seconds:.1f} s, run {est.run_seconds:.1f} s "
        f"({est.steps_per_second:,.0f} steps/s)"
    )
    if est.problems:
        lines.append(f"  PROBLEMS ({len(est.problems)}):")
        for p in est.problems:
            text = p.message if len(p.message) <= 150 else p.message[:147] + "…"
            lines.append(f"    [{p.cause}] {text}")
    else:
        lines.append("  problems none")
    return "\n".join(lines)
