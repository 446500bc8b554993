"""Flagship study: estimate the LLC of models whose learning coefficient is known exactly.

Runs the model zoo at *default* settings (``sampler="auto"``, which is the exact MAMS
sampler for every model here; β* = 1/log n, γ = 1 at the minimiser w* of L_n, run until
λ̂'s total error is 3%) and compares λ̂ with the exact λ of Watanabe / Aoyagi. Prints a
table as it goes, writes results.json after every model (a rerun skips models already
done with the same settings and version of the exact sampler; --fresh recomputes them), an
ArviZ DataTree and an L_n trace plot per model, and a plot of λ̂ against λ.

results.json is replaced atomically, and rows whose model or settings this run does not
produce are kept, so neither an interrupted run, a run of a few models (--models) nor a
quick run loses finished rows. Quick runs write to out/quick/ by default.

    python studies/rlct_known_models/run.py            # full zoo (about 5 min on 2 cores)
    python studies/rlct_known_models/run.py --quick    # 3 models, < 3 min (CI)
    python studies/rlct_known_models/run.py --models regular_d2 rrr_M5_N5_H4_r0
"""

from __future__ import annotations

import os

# On CPU, expose every core as a JAX device so that chains, which the driver shards over
# all devices, run in parallel (GPU/TPU backends ignore this). Must precede importing jax.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import json
import math
import time
from functools import partial
from pathlib import Path

import jax

from slt_sampler import estimate_llc
from slt_sampler.diagnostics.arviz import save_datatree
from slt_sampler.diagnostics.plots import (
    plot_arviz_trace_rank,
    plot_llc_vs_truth,
    plot_loss_trace,
)
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.workflows.llc import estimate_llc_version
from slt_sampler.zoo import models as zoo

HERE = Path(__file__).parent


QUICK_MODELS = ("regular_d10", "rrr_M5_N5_H3_r0", "dln_10x10x10x10_r3")
QUICK_OVERRIDES = {"max_steps": 40_000}  # a smoke run: capped length, wider error bars
RRR_CONFIGS = [
    (5, 5, 4, 0),
    (5, 5, 3, 0),
    (6, 6, 4, 3),
    (2, 8, 2, 1),
    (8, 2, 2, 1),
    (3, 4, 8, 0),
    (4, 8, 3, 0),
]


def build_zoo(key) -> dict[str, tuple]:
    """Model name -> (factory, estimate_llc overrides); factories are lazy (data costs).

    The names are those the factories give their models (checked when a model is
    built). Model ``i`` (in this order) gets the same data and chain keys whichever
    models a run selects, so a run of a few models repeats the full run's estimates.
    """
    keys = iter(jax.random.split(key, 32))
    entries = {
        f"regular_d{d}": (partial(zoo.regular, next(keys), d), {}) for d in (2, 10, 50)
    }
    for m, n, h, r in RRR_CONFIGS:
        factory = partial(zoo.reduced_rank, next(keys), m, n, h, r)
        entries[f"rrr_M{m}_N{n}_H{h}_r{r}"] = (factory, {})
    for widths, r in [([10, 10, 10, 10], 3), ([50] * 5, 10)]:
        factory = partial(zoo.deep_linear, next(keys), widths, r)
        entries[f"dln_{'x'.join(map(str, widths))}_r{r}"] = (factory, {})
    return entries


def row_for(model, est, wall: float) -> dict:
    """One results.json row (the keys the issue asks for, and the evidence)."""
    lam, m = model.true.lam, model.true.multiplicity
    r = est.result
    corrected = lam - (m - 1) / math.log(est.n * est.beta)
    return {
        "model": model.name,
        "description": model.description,
        "d": model.dim,
        "true_lambda": lam,
        "multiplicity": m,
        "finite_nbeta_lambda": corrected,
        "llc": r.llc,
        "llc_mcse": r.llc_mcse,
        "llc_sigma": r.llc_sigma,
        "llc_raw": r.llc_raw,
        "llc_bias": r.llc_bias,
        "error_budget": est.error_budget._asdict() if est.error_budget else None,
        "llc_std_between_chains": r.llc_std,
        "rel_error": r.llc / lam - 1,
        "z_vs_finite_nbeta": (r.llc - corrected) / r.llc_sigma
        if r.llc_sigma > 0
        else None,
        "rhat": r.rhat,
        "settled": est.settled,
        "problems": [f"[{p.cause}] {p.message}" for p in est.problems],
        "center_gradient_decrement": est.center_check.decrement
        if est.center_check is not None
        else None,
        "end_configurational_temperature": est.end_configurational_temperature,
        "ess": r.ess,
        "sampler": est.sampler,
        "step_size": est.step_size,
        # how the step was chosen: SGLD's calibration, or the exact sampler's warm-up
        "calibration": est.calibration.reason
        if est.calibration
        else est.tuning or "user step size",
        "batch_size": est.batch_size,
        "n": est.n,
        "beta": est.beta,
        "gamma": est.gamma,
        "gamma_sensitivity": {f"{g:g}": v for g, v in est.gamma_sensitivity.items()},
        "num_chains": est.num_chains,
        "num_steps": est.num_steps,
        "burn_in": est.burn_in,
        "wall_time": wall,
        "steps_per_second": est.steps_per_second,
        "compile_seconds": est.compile_seconds,
    }


def print_row(row: dict) -> None:
    print(
        f"{row['model']:<28} {row['d']:>6} {row['true_lambda']:>8.2f} "
        f"{row['multiplicity']:>2} {row['llc']:>9.2f} ± {row.get('llc_sigma', row['llc_mcse']):<6.2f} "
        f"{100 * row['rel_error']:>+7.1f}% {row['sampler']:>5} "
        f"{row['wall_time']:>7.1f}s {row['steps_per_second']:>9,.0f}",
        flush=True,
    )


def parse_args(argv, names: list[str]) -> argparse.Namespace:
    """Command-line options; ``--models`` must be among ``names``."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="capped runs of 3 models (CI), in out/quick",
    )
    ap.add_argument(
        "--models",
        nargs="+",
        choices=names,
        metavar="MODEL",
        help="models to run (default: all, or 3 with --quick); one of: "
        + ", ".join(names),
    )
    ap.add_argument(
        "--sampler", default="auto", choices=["auto", "mams", "sgld", "mala", "nuts"]
    )
    ap.add_argument(
        "--out", type=Path, help="output directory (default: out/, or out/quick/)"
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="recompute the selected models (other rows of results.json are kept)",
    )
    return ap.parse_args(argv)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with each row of ``new`` replacing the same model and settings.

    Rows of ``new`` without a match are appended; rows of ``old`` this run does not
    recompute (other models, other settings) are kept.
    """

    def key(row):
        return row.get("model"), json.dumps(row.get("settings"), sort_keys=True)

    fresh = {key(r): r for r in new}
    merged = [fresh.pop(key(r), r) for r in old]
    return merged + list(fresh.values())


def run_model(key, model, overrides: dict, sampler: str, out: Path) -> dict:
    """Estimate one model's LLC, save its DataTree and plots, return its row."""
    t0 = time.perf_counter()
    est = estimate_llc(
        key, model.posterior, sampler=sampler, progress=None, **overrides
    )
    row = row_for(model, est, time.perf_counter() - t0)
    dt = est.to_datatree(name=model.name)
    save_datatree(dt, out / f"{model.name}.nc")
    plot_arviz_trace_rank(
        dt.isel(draw=slice(est.burn_in, None)), path=out / f"arviz_{model.name}.png"
    )
    thin = max(1, est.num_steps // 4000)
    plot_loss_trace(
        est.losses[:, ::thin],
        path=out / f"trace_{model.name}.png",
        title=f"{model.name}: L_n trace ({est.sampler}, "
        f"ε={est.step_size:.2g}, γ={est.gamma:g}, every "
        f"{thin} steps)",
        init_loss=est.result.init_loss,
        burn_in=est.burn_in // thin,
    )
    return row


def main(argv=None) -> list[dict]:
    """Run the selected models; return their rows (merged into results.json)."""
    key = jax.random.key(0)  # the names do not depend on the key
    args = parse_args(argv, list(build_zoo(key)))
    key = jax.random.key(args.seed)
    entries = build_zoo(key)
    selected = set(args.models or (QUICK_MODELS if args.quick else entries))
    out = args.out or HERE / "out" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    settings = {
        "seed": args.seed,
        "quick": args.quick,
        "sampler": args.sampler,
        # estimate_llc's defaults and exact-path version: a change of either reruns
        **estimate_llc_version(),
    }
    old = read_rows(results_path)
    done = (
        {}
        if args.fresh
        else {r.get("model"): r for r in old if r.get("settings") == settings}
    )

    print(
        f"{'model':<28} {'d':>6} {'true λ':>8} {'m':>2} {'λ̂ ± σ_total':>18} "
        f"{'rel err':>8} {'smp':>5} {'wall':>8} {'steps/s':>9}"
    )
    rows = []
    for i, (name, (factory, overrides)) in enumerate(entries.items()):
        if name not in selected:
            continue
        if name in done:
            rows.append(done[name])
            print_row(rows[-1])
            continue
        model = factory()
        if model.name != name:
            raise RuntimeError(f"zoo entry {name!r} built model {model.name!r}")
        if args.quick:
            overrides = {**overrides, **QUICK_OVERRIDES}
        row = run_model(
            jax.random.fold_in(key, 1000 + i), model, overrides, args.sampler, out
        )
        row["settings"] = settings
        rows.append(row)
        print_row(row)
        write_json_atomic(results_path, merge_rows(old, rows))
    write_json_atomic(results_path, merge_rows(old, rows))
    plot_llc_vs_truth(rows, path=out / "llc_vs_truth.png")
    print(f"\nwrote {results_path} and plots in {out}/")
    return rows


if __name__ == "__main__":
    main()
