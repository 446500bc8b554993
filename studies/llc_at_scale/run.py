"""LLC at scale: λ̂ against Aoyagi's λ for deep linear networks from 10² to 10⁶
parameters, and a tanh MLP on scikit-learn's digits against an exact sampler.

Every model is estimated with ``estimate_llc(key, posterior)`` at the library's
*defaults* (whatever sampler, calibration and run budget they are; ``--sampler`` and
``--max-steps`` override them). Deep linear networks (depths 3 to 6, several ranks, not
only square widths; n = 10⁴, β = 1/log n, γ = 1) are localised at their balanced global
minimiser, a true minimum of L_n, so Aoyagi's λ (Aoyagi 2024; Furman & Lau 2024) is the
estimand. For each model the study records

* λ̂, its MCSE and total error σ_total, whether the adaptive run settled, the problems
  the checks found, wall time and the process's peak memory (resident set size);
* a second run at *twice* the first run's length (independent chains of the same key
  family): |Δλ̂| / σ_total says whether the estimate still moves with run length;
* with ``--seeds K``, K further default runs on independent keys: their spread against
  their σ_total, and their mean against the 2x run;
* for the ~10⁴-parameter DLN and the digits MLP, a comparison of calibrated SGLD,
  pSGLD and BAOAB with an exact sampler at the same (n, β, γ, w*). Where the default
  run is itself exact (MAMS, Robnik et al. 2025), it is the reference and
  ``estimate_llc(sampler="sgld")``, ``(sampler="psgld")`` and ``(sampler="baoab")``
  run beside it (rerun when the library's stochastic-gradient method changes); where it
  is not (``--sampler sgld``), the reference is MAMS tuned by
  BlackJAX's adjusted-MCLMC tuner, run until its MCSE is at most 1.5% of λ̂.

results.json (a list of rows) is written atomically after every stage of every model;
a rerun resumes where the last one stopped (stages already done with the same settings
are kept; ``--fresh`` recomputes the selected models). Within a stage, an exact (MAMS)
run saves its state after every 100-step block in out/partial/ (``estimate_llc``'s
``resume_file``), so a killed 10⁵ run continues from its last block; the file is
removed once the stage is saved. Quick runs write to out/quick/.

    python studies/llc_at_scale/run.py                   # 10² to 10⁵ and the MLP
    python studies/llc_at_scale/run.py --include-1e6 --max-steps 40000  # +10⁶, 1.5 h
    python studies/llc_at_scale/run.py --quick           # a 10² and a 10³ DLN (CI)
    python studies/llc_at_scale/run.py --models dln_60x50x50x60_r10 digits_mlp
"""

from __future__ import annotations

import os

# On CPU, expose every core as a JAX device so that chains, which the driver shards over
# all devices, run in parallel (GPU/TPU backends ignore this). Must precede importing jax.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import hashlib
import json
import math
import resource
import sys
import time
from pathlib import Path

import jax
import numpy as np

from slt_sampler import estimate_llc, full_loss, llc, sample
from slt_sampler.diagnostics._scale_figure import (
    plot_llc_vs_run_length,
    plot_scale_accuracy,
    plot_wall_time,
)
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.estimators import _mcse
from slt_sampler.samplers.hmc import EXACT_SAMPLERS
from slt_sampler.samplers.mams import tune_mams
from slt_sampler.workflows._exact_llc import resolve_sampler
from slt_sampler.workflows._run_state import RunStore
from slt_sampler.workflows.llc import estimate_llc_version
from slt_sampler.zoo import models as zoo
from slt_sampler.zoo.digits import digits_mlp

HERE = Path(__file__).parent
# the version of estimate_llc's calibrated stochastic-gradient path: it decides only the
# rows and checks run by those samplers, so it is kept out of a row's settings (a change
# reruns those, not the exact runs)
SG_METHOD = estimate_llc_version()["sgld_method"]

# (widths, true rank, exact reference?) by size class; d = Σ H_s H_{s+1}
DLNS = {
    "1e2": [([8, 6, 5, 7], 2, False)],
    "1e3": [
        ([20, 15, 15, 20], 5, False),  # depth 3, d = 825
        ([18, 16, 14, 16, 18], 4, False),  # depth 4, d = 1024
        ([14, 12, 12, 10, 12, 12, 14], 1, False),  # depth 6, d = 864
    ],
    "1e4": [
        ([60, 50, 50, 60], 10, True),  # depth 3, d = 8500
        ([50, 45, 40, 45, 50], 5, False),  # depth 4, d = 8100
        ([40, 40, 36, 36, 36, 40, 40], 8, False),  # depth 6, d = 8672
    ],
    "1e5": [
        ([200, 150, 150, 200], 20, False),  # depth 3, d = 82,500
        ([160, 150, 140, 150, 160], 30, False),  # depth 4, d = 90,000
        ([140, 130, 130, 130, 130, 140], 10, False),  # depth 5, d = 87,100
    ],
    "1e6": [([500, 500, 500, 500, 500], 50, False)],  # depth 4, d = 10⁶
}
QUICK_MODELS = ("dln_8x6x5x7_r2", "dln_20x15x15x20_r5")
QUICK_MAX_STEPS = 20_000  # one adaptive chunk (its minimum): a smoke run
EXACT_REL_MCSE = 0.015
EXACT_MAX_STEPS = 40_000
EXACT_CHAINS = 4


def _dln_name(widths, r) -> str:
    return f"dln_{'x'.join(map(str, widths))}_r{r}"


def build_models(key, include_1e6: bool) -> dict[str, dict]:
    """Model name -> entry (lazy ``factory``, size ``scale``, ``exact`` reference?).

    Models are in order of size, so the process's peak memory, which only grows, is
    close to each model's own. A model's ``index`` (its place in the full list) fixes
    its keys, so it gets the same data and chains whichever models a run selects."""
    keys = iter(jax.random.split(key, 32))
    entries = {}
    index = iter(range(32))
    for scale, configs in DLNS.items():
        for widths, r, exact in configs:
            k, i = next(keys), next(index)
            if scale == "1e6" and not include_1e6:
                continue
            entries[_dln_name(widths, r)] = {
                "index": i,
                "factory": (
                    lambda k=k, w=widths, r=r: zoo.deep_linear(
                        k, w, r, minimiser="balanced"
                    )
                ),
                "scale": scale,
                "exact": exact,
                # the 10⁶ run alone is about an hour: its 2x rerun only on request
                "two_x": scale != "1e6",
                "depth": len(widths) - 1,
                "widths": widths,
                "rank": r,
            }
    k = next(keys)
    entries["digits_mlp"] = {
        "index": next(index),
        "factory": lambda k=k: digits_mlp(k),
        "scale": "mlp",
        "exact": True,
        "two_x": True,
        "depth": 2,
        "widths": [64, 16, 10],
        "rank": None,
    }
    return entries


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: KiB; macOS:
    bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def llc_vs_steps(est) -> list[list[float]]:
    """Raw λ̂ and its MCSE from the first ``t`` steps of the run's trace (burn-in
    ``t/2``) on a geometric grid of ``t``: how the estimate moves with run length."""
    trace = np.asarray(est.losses, np.float64)
    total = trace.shape[1]
    grid = np.unique(np.geomspace(min(1000, total), total, 12).astype(int))
    out = []
    for t in grid:
        if t // 2 < 4:
            continue
        r = llc(trace[:, t // 2 : t], est.result.init_loss, n=est.n, beta=est.beta)
        out.append([int(t), r.llc, r.llc_mcse])
    return out


def _earlier_seconds(resume_file) -> float:
    """Sampling seconds (compile and run) that earlier processes spent on the run
    saved in ``resume_file`` (0 for a fresh run): a resumed run's wall time is this
    process's plus theirs."""
    return float(sum(RunStore.saved_meta(resume_file).get("counters", [0.0])))


def main_stage(key, model, options: dict, resume_file=None) -> dict:
    """λ̂ at the library's defaults (plus ``options``); a MAMS run saves its state in
    ``resume_file`` as it goes and continues from it (``wall_seconds`` then adds the
    sampling seconds of the earlier processes, ``resumed_seconds``)."""
    earlier = _earlier_seconds(resume_file)
    t0 = time.perf_counter()
    est = estimate_llc(key, model.posterior, **options, resume_file=resume_file)
    wall = time.perf_counter() - t0 + earlier
    r = est.result
    return {
        "llc": r.llc,
        "llc_mcse": r.llc_mcse,
        "llc_sigma": r.llc_sigma,
        "llc_raw": r.llc_raw,
        "llc_bias": r.llc_bias,
        "rhat": r.rhat,
        "ess": r.ess,
        "settled": bool(est.settled),
        "problems": [f"[{p.cause}] {p.message}" for p in est.problems],
        "center_gradient_decrement": est.center_check.decrement
        if est.center_check is not None
        else None,
        "end_configurational_temperature": est.end_configurational_temperature,
        "sampler": est.sampler,
        "step_size": est.step_size,
        "batch_size": est.batch_size,
        "n": est.n,
        "beta": est.beta,
        "gamma": est.gamma,
        "num_chains": est.num_chains,
        "num_steps": est.num_steps,
        "burn_in": est.burn_in,
        "gamma_sensitivity": {f"{g:g}": v for g, v in est.gamma_sensitivity.items()},
        "wall_seconds": wall,
        "resumed_seconds": earlier,
        "compile_seconds": est.compile_seconds,
        "steps_per_second": est.steps_per_second,
        "peak_rss_mb": _peak_rss_mb(),
        "llc_vs_steps": llc_vs_steps(est),
        "sg_method": SG_METHOD,
    }


def double_stage(key, model, options: dict, row: dict, resume_file=None) -> dict:
    """A fixed run of twice the main run's length, on independent chains (without
    the γ checks: the main run has them, and at 10⁵ parameters they are a third of a
    run's sampling); ``resume_file`` as in :func:`main_stage`."""
    earlier = _earlier_seconds(resume_file)
    t0 = time.perf_counter()
    est = estimate_llc(
        jax.random.fold_in(key, 2),
        model.posterior,
        **{**options, "num_steps": 2 * row["num_steps"], "gamma_check": ()},
        resume_file=resume_file,
    )
    r = est.result
    delta = r.llc - row["llc"]
    return {
        "llc_2x": r.llc,
        "llc_2x_mcse": r.llc_mcse,
        "llc_2x_sigma": r.llc_sigma,
        "num_steps_2x": est.num_steps,
        "wall_seconds_2x": time.perf_counter() - t0 + earlier,
        "run_length_z": abs(delta) / row["llc_sigma"] if row["llc_sigma"] > 0 else None,
        "run_length_z_combined": abs(delta) / math.hypot(row["llc_sigma"], r.llc_sigma),
        "peak_rss_mb": _peak_rss_mb(),
    }


def seed_stage(key, model, options: dict, row: dict, seeds: int, save) -> None:
    """Default estimates on ``seeds`` further independent keys, appended to
    ``row["llc_seeds"]`` (and saved) one at a time, so an interrupted run resumes.

    Their spread, beside the runs' own σ_total, says whether the error bar's size is
    honest; their mean against the 2x run, whether λ̂ still moves with run length."""
    for field in (
        "llc_seeds",
        "llc_sigma_seeds",
        "num_steps_seeds",
        "wall_seconds_seeds",
    ):
        row.setdefault(field, [])
    for i in range(len(row["llc_seeds"]), seeds):
        t0 = time.perf_counter()
        est = estimate_llc(jax.random.fold_in(key, 100 + i), model.posterior, **options)
        row["llc_seeds"].append(est.result.llc)
        row["llc_sigma_seeds"].append(est.result.llc_sigma)
        row["num_steps_seeds"].append(est.num_steps)
        row["wall_seconds_seeds"].append(time.perf_counter() - t0)
        save(finish_row(row))


def seed_summary(row: dict) -> dict:
    """The spread of λ̂ over the main run and the seed runs against their mean
    σ_total (``seed_sd_over_sigma`` ≈ 1 when the error bar's size is honest), and the
    seeds' mean against the 2x run (``seed_mean_z_vs_2x``: a λ̂ that still moves with
    run length shows here even when each run's σ_total is honest about its own noise)."""
    if len(row.get("llc_seeds") or []) < 2 or row.get("llc") is None:
        return {}
    lams = np.array([row["llc"], *row["llc_seeds"]])
    sigma = float(np.mean([row["llc_sigma"], *row["llc_sigma_seeds"]]))
    sd = float(lams.std(ddof=1))
    out = {
        "seed_runs": len(lams),
        "seed_mean": float(lams.mean()),
        "seed_sd": sd,
        "seed_mean_sigma": sigma,
        "seed_sd_over_sigma": sd / sigma,
    }
    if row.get("llc_2x") is not None:
        se = math.hypot(sd / math.sqrt(len(lams)), row["llc_2x_sigma"])
        out["seed_mean_z_vs_2x"] = (out["seed_mean"] - row["llc_2x"]) / se
    return out


# calibrated samplers checked against an exact main run: key fold
CHECKED = {"sgld": 4, "psgld": 5, "baoab": 6}


def _settings(row: dict) -> dict:
    """A row's settings without the stochastic-gradient version (rows written before
    it was split off carry it there)."""
    return {k: v for k, v in (row.get("settings") or {}).items() if k != "sgld_method"}


def _sg_method(row: dict):
    """The stochastic-gradient version a row's main run used (None if unknown)."""
    return row.get("sg_method", (row.get("settings") or {}).get("sgld_method"))


def sgld_stage(key, model, options: dict, sampler: str = "sgld") -> dict:
    """Calibrated SGLD or pSGLD (``estimate_llc(sampler=...)``, its own defaults
    otherwise) at the same (n, β, γ, w*) as the exact main run, on independent
    chains; columns prefixed with the sampler's name."""
    t0 = time.perf_counter()
    opts = {**options, "sampler": sampler}
    est = estimate_llc(
        jax.random.fold_in(key, CHECKED[sampler]), model.posterior, **opts
    )
    r = est.result
    out = {
        "llc": r.llc,
        "llc_sigma": r.llc_sigma,
        "llc_mcse": r.llc_mcse,
        "settled": bool(est.settled),
        "step_size": est.step_size,
        "num_steps": est.num_steps,
        "end_configurational_temperature": est.end_configurational_temperature,
        "problems": [f"[{p.cause}] {p.message}" for p in est.problems],
        "wall_seconds": time.perf_counter() - t0,
        "sg_method": SG_METHOD,
    }
    return {
        **{f"{sampler}_{k}": v for k, v in out.items()},
        "peak_rss_mb": _peak_rss_mb(),
    }


def exact_reference(key, posterior) -> dict:
    """λ̂ from MAMS (tuned per chain by BlackJAX's adjusted-MCLMC tuner, pooled),
    extended in doublings until its MCSE is at most 1.5% of λ̂ and the two halves of
    the kept trace agree within 2 MCSE (burn-in: the first half of every run), or
    ``EXACT_MAX_STEPS`` steps per chain."""
    t0 = time.perf_counter()
    steps, max_steps = 5000, EXACT_MAX_STEPS
    k_tune, k_run = jax.random.split(key)
    smp, start = tune_mams(
        k_tune, posterior, posterior.center, num_chains=EXACT_CHAINS, num_steps=steps
    )
    init_loss = float(full_loss(posterior, posterior.center))
    nbeta = float(posterior.nbeta)
    traces = []
    while True:
        k_run, k = jax.random.split(k_run)
        res = sample(
            k,
            smp,
            posterior,
            start,
            num_chains=EXACT_CHAINS,
            num_steps=steps,
            chains_axis=True,
            progress=None,
        )
        if res.diverged.any():
            raise RuntimeError("the MAMS reference diverged; no reference recorded")
        traces.append(np.asarray(res.losses, np.float64))
        trace = np.concatenate(traces, axis=1)
        kept = trace[:, trace.shape[1] // 2 :]
        lam = nbeta * (kept.mean() - init_loss)
        mcse = nbeta * _mcse.mcse_mean(kept)
        total = trace.shape[1]
        half = kept.shape[1] // 2  # the chains share a start: R-hat misses a transient
        drift = nbeta * abs(kept[:, :half].mean() - kept[:, half:].mean())
        stationary = drift <= 2 * nbeta * math.hypot(
            _mcse.mcse_mean(kept[:, :half]), _mcse.mcse_mean(kept[:, half:])
        )
        if (mcse <= EXACT_REL_MCSE * abs(lam) and stationary) or total >= max_steps:
            break
        start, steps = res.final_state.position, min(total, max_steps - total)
    return {
        "exact_llc": lam,
        "exact_llc_mcse": mcse,
        "exact_sampler": "mams",
        "exact_num_chains": EXACT_CHAINS,
        "exact_num_steps": int(total),
        "exact_rhat": _mcse.rhat(kept),
        "exact_stationary": bool(stationary),
        "exact_acceptance": float(np.mean(res.stats["acceptance_rate"])),
        "exact_wall_seconds": time.perf_counter() - t0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def finish_row(row: dict) -> dict:
    """Derived columns (relative errors, z-scores); stages not run are null."""
    for k in ("llc_2x", "llc_2x_sigma", "run_length_z", "exact_llc", "exact_llc_mcse"):
        row.setdefault(k, None)
    lam = row.get("true_lambda")
    sigma = row.get("llc_sigma") or float("nan")
    if lam and row.get("llc") is not None:
        row["rel_error"] = row["llc"] / lam - 1
        row["z_vs_true"] = (row["llc"] - lam) / sigma
    if row.get("exact_llc") is not None and row.get("llc") is not None:
        ref = row["exact_llc"]
        row["rel_error_vs_exact"] = row["llc"] / ref - 1
        row["z_vs_exact"] = (row["llc"] - ref) / math.hypot(
            sigma, row["exact_llc_mcse"]
        )
    for smp in CHECKED:
        if row.get(f"{smp}_llc") is None or row.get("sampler") not in EXACT_SAMPLERS:
            continue
        ref, ref_sigma = row["llc"], row["llc_sigma"]
        row[f"rel_error_{smp}_vs_exact"] = row[f"{smp}_llc"] / ref - 1
        both = math.hypot(row[f"{smp}_llc_sigma"], ref_sigma)
        row[f"z_{smp}_vs_exact"] = (row[f"{smp}_llc"] - ref) / both if both else None
    row.update(seed_summary(row))
    return row


def print_header() -> None:
    print(
        f"{'model':<34} {'d':>9} {'λ':>8} {'λ̂ ± σ_total':>18} {'err':>7} "
        f"{'set':>3} {'2x z':>5} {'exact (or SGLD)':>20} {'vs ex':>6} "
        f"{'wall':>7} {'RSS MB':>7}",
        flush=True,
    )


def print_row(row: dict) -> None:
    def num(key, fmt, width):
        v = row.get(key)
        return f"{v:{fmt}}".rjust(width) if v is not None else "—".rjust(width)

    lam = row.get("true_lambda")
    exact, vs_ex = "—", row.get("rel_error_vs_exact")
    if row.get("exact_llc") is not None:
        exact = f"{row['exact_llc']:.1f} ± {row['exact_llc_mcse']:.1f}"
    elif row.get("rel_error_sgld_vs_exact") is not None:  # the main run is exact
        exact = f"SGLD {row['sgld_llc']:.1f} ± {row['sgld_llc_sigma']:.1f}"
        vs_ex = row["rel_error_sgld_vs_exact"]
    err = row.get("rel_error", row.get("rel_error_vs_exact"))
    print(
        f"{row['model']:<34} {row['d']:>9,} "
        f"{(f'{lam:.1f}' if lam else '—'):>8} "
        f"{row.get('llc', float('nan')):>9.1f} ± {row.get('llc_sigma', 0):<6.1f} "
        f"{(f'{100 * err:+.1f}%' if err is not None else '—'):>7} "
        f"{('yes' if row.get('settled') else 'NO'):>3} "
        f"{num('run_length_z', '.2f', 5)} {exact:>20} "
        f"{(f'{100 * vs_ex:+.1f}%' if vs_ex is not None else '—'):>6} "
        f"{num('wall_seconds', '.0f', 6)}s {num('peak_rss_mb', '.0f', 7)}",
        flush=True,
    )
    for smp, label in (("psgld", "pSGLD"), ("baoab", "BAOAB")):
        if row.get(f"rel_error_{smp}_vs_exact") is None:  # set only with {smp}_llc
            continue
        print(
            f"{'':<4}{label} {row[f'{smp}_llc']:.1f} ± {row[f'{smp}_llc_sigma']:.1f} "
            f"({100 * row[f'rel_error_{smp}_vs_exact']:+.1f}% vs the exact run, "
            f"{'settled' if row[f'{smp}_settled'] else 'NOT settled'}, "
            f"{row[f'{smp}_wall_seconds']:.0f} s)",
            flush=True,
        )
    if row.get("seed_runs"):
        vs_2x = row.get("seed_mean_z_vs_2x")
        print(
            f"{'':<4}{row['seed_runs']} independent default runs: λ̂ sd "
            f"{row['seed_sd']:.2f} against mean σ_total {row['seed_mean_sigma']:.2f} "
            f"(ratio {row['seed_sd_over_sigma']:.2f}); mean {row['seed_mean']:.2f}"
            + (f", {vs_2x:+.1f} σ from the 2x run" if vs_2x is not None else ""),
            flush=True,
        )


def parse_args(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 small DLNs, capped (CI)")
    ap.add_argument("--models", nargs="+", metavar="MODEL", help="models to run")
    ap.add_argument(
        "--include-1e6",
        action="store_true",
        help="also the 10⁶-parameter DLN (about an hour or more on 2 cores)",
    )
    ap.add_argument(
        "--sampler", default=None, help="estimate_llc's sampler (default: its own)"
    )
    ap.add_argument(
        "--max-steps", type=int, default=None, help="estimate_llc's max_steps"
    )
    ap.add_argument("--skip-2x", action="store_true", help="skip the 2x-length runs")
    ap.add_argument(
        "--seeds",
        type=int,
        default=0,
        help="further default runs on independent keys per model (error-bar check)",
    )
    ap.add_argument(
        "--with-2x-1e6",
        action="store_true",
        help="also rerun the 10⁶ DLN at twice its length (off by default: hours)",
    )
    ap.add_argument("--out", type=Path, help="output dir (default out/ or out/quick/)")
    ap.add_argument(
        "--state-dir",
        type=Path,
        help="where unfinished exact runs save their state (default OUT/partial/), "
        "and a copy of results.json: a directory that outlives OUT carries a run of "
        "hours over machines",
    )
    ap.add_argument(
        "--fresh", action="store_true", help="recompute the selected models"
    )
    return ap.parse_args(argv)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with each row of ``new`` replacing the same model and settings."""

    def key(row):
        return row.get("model"), json.dumps(_settings(row), sort_keys=True)

    fresh = {key(r): r for r in new}
    merged = [fresh.pop(key(r), r) for r in old]
    return merged + list(fresh.values())


def _check_missing(row: dict, smp: str) -> bool:
    """The check by sampler ``smp`` has not run, or ran at another SG version."""
    return row.get(f"{smp}_llc") is None or row.get(f"{smp}_sg_method") != SG_METHOD


def run_model(key, name, entry, row, options, args, save, partial=None) -> dict:
    """Run the stages of one model that ``row`` does not hold yet, saving after each
    (the model is built only if a stage is missing). ``partial(name, stage)`` is the
    file where an exact run of that stage saves its state as it goes (a killed run
    continues from it; deleted once the stage's row is saved)."""
    two_x = (entry["two_x"] or args.with_2x_1e6) and not args.skip_2x
    exact_main = row.get("sampler") in EXACT_SAMPLERS
    todo = {
        "main": row.get("llc") is None,
        "2x": two_x and row.get("llc_2x") is None,
        # an exact main run is the reference of the SGLD and pSGLD checks; else an
        # exact reference is run
        "exact": entry["exact"]
        and (
            any(_check_missing(row, s) for s in CHECKED)
            if exact_main
            else row.get("exact_llc") is None
        ),
        "seeds": len(row.get("llc_seeds") or []) < args.seeds,
    }
    if not any(todo.values()):
        return finish_row(row)
    model = entry["factory"]()
    row.update(
        model=name,
        d=model.dim,
        scale=entry["scale"],
        depth=entry["depth"],
        widths=entry["widths"],
        rank=entry["rank"],
        true_lambda=model.true.lam if model.true is not None else None,
        multiplicity=model.true.multiplicity if model.true is not None else None,
        description=model.description,
    )
    exact = partial is not None and (
        resolve_sampler(
            options.get("sampler", "auto"),
            model.posterior,
            model.posterior.center,
            False,
        )
        == "mams"
    )

    def state(stage):
        return partial(name, stage) if exact else None

    if todo["main"]:
        path = state("main")
        row.update(main_stage(key, model, options, path))
        save(finish_row(row))
        _remove(path)
    if todo["2x"]:
        path = state("2x")
        row.update(double_stage(key, model, options, row, path))
        save(finish_row(row))
        _remove(path)
    if todo["exact"]:
        if row["sampler"] in EXACT_SAMPLERS:
            # the main run is itself exact (Metropolis-adjusted): it is the
            # reference, and calibrated SGLD and pSGLD at the same posterior are
            # checked against it
            for smp in CHECKED:
                if _check_missing(row, smp):
                    row.update(sgld_stage(key, model, options, smp))
                    save(finish_row(row))
        else:
            row.update(exact_reference(jax.random.fold_in(key, 3), model.posterior))
            save(finish_row(row))
    if todo["seeds"]:
        seed_stage(key, model, options, row, args.seeds, save)
    return finish_row(row)


def _remove(path) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def main(argv=None) -> list[dict]:
    """Run the selected models; return their rows (merged into results.json)."""
    args = parse_args(argv)
    key = jax.random.key(args.seed)
    entries = build_models(key, args.include_1e6 or bool(args.models))
    if args.models:
        unknown = sorted(set(args.models) - set(entries))
        if unknown:
            sys.exit(f"unknown models {unknown}; choose from {list(entries)}")
    selected = set(args.models or (QUICK_MODELS if args.quick else entries))
    out = args.out or HERE / "out" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    options = {}
    if args.sampler is not None:
        options["sampler"] = args.sampler
    max_steps = QUICK_MAX_STEPS if args.quick else args.max_steps
    if max_steps is not None:
        options["max_steps"] = max_steps
    version = estimate_llc_version()
    version.pop("sgld_method")  # SG_METHOD, judged per row and check
    settings = {
        "seed": args.seed,
        "quick": args.quick,
        **options,
        # estimate_llc's defaults and exact-path version: a change of either reruns
        **version,
    }
    # rows carried in --state-dir (finished stages of a run spanning machines); this
    # out/'s own rows win where both have a model
    carried = args.state_dir / "results.json" if args.state_dir else None
    old = merge_rows(read_rows(carried) if carried else [], read_rows(results_path))
    done = (
        {}
        if args.fresh
        else {
            r["model"]: r
            for r in old
            if _settings(r) == settings
            # a main run by a stochastic-gradient sampler of another version reruns
            and (r.get("sampler") in EXACT_SAMPLERS or _sg_method(r) == SG_METHOD)
        }
    )
    rows: list[dict] = []
    # the state of unfinished exact runs, named by the settings (a change of them
    # starts afresh instead of continuing a run of other settings)
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]

    def partial(name, stage):
        path = (args.state_dir or out / "partial") / f"{name}-{stage}-{tag}.npz"
        if args.fresh:  # recompute: no continuing an old run either
            path.unlink(missing_ok=True)
        return path

    def write(merged):
        for path in (results_path, carried) if carried else (results_path,):
            write_json_atomic(path, merged)

    def save(row):
        write(merge_rows(old, [*rows, row]))

    print_header()
    for name, entry in entries.items():
        if name not in selected:
            continue
        row = dict(done.get(name, {}), settings=settings)
        row = run_model(
            jax.random.fold_in(key, 1000 + entry["index"]),
            name,
            entry,
            row,
            options,
            args,
            save,
            partial,
        )
        rows.append(row)
        print_row(row)
    merged = merge_rows(old, rows)
    write(merged)
    # the figures show every finished row of these settings, not only this run's
    if rows:
        shown = [
            r for r in merged if _settings(r) == settings and r.get("llc") is not None
        ]
        plot_scale_accuracy(shown, path=out / "llc_vs_lambda.png")
        plot_llc_vs_run_length(shown, path=out / "llc_vs_run_length.png")
        plot_wall_time(shown, path=out / "wall_time.png")
    print(f"\nwrote {results_path} and plots in {out}/")
    return rows


if __name__ == "__main__":
    main()
