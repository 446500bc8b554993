"""Does λ̂'s run-length bias shrink with MAMS's trajectory length, and at what cost?

Default ``estimate_llc`` runs (the exact MAMS path) on small deep linear networks with
the integrator steps per proposal scaled ×1 (the library's), ×2 and ×4, against long
fixed runs of the same posterior (MAMS is exact at every trajectory length, so the
long runs are the reference whatever their length). Default runs start all chains at
w* and stop after ~1,000–2,000 steps, while λ̂ still rises from w* (a transient shared
by the chains, which R-hat cannot see); longer trajectories carry the chains further
per step. The scaling patches the exact path's module constants
(``INTEGRATION_STEPS``, ``MAX_INTEGRATION_STEPS``) for the duration of each run: it is
a measurement for choosing the next default, not a user option.

Per model and key the configurations alternate (×1, ×2, ×4, ×1, ...), each after one
untimed call that compiles it, so their wall times compare within one run; time them
on an idle machine. Rows are written atomically to
``benchmarks/results/llc_trajectory_length.json`` after every run, and a rerun
continues where the last one stopped.

Rows without ``burn_in`` (written before 2026-12-05) counted the warm-up twice in
``steps`` (it was ``num_steps + burn_in``, and ``num_steps`` already includes it).

Models: two of ``studies/llc_at_scale``'s DLNs (its model keys and seed keys) and the
``[10, 10, 10, 10]`` rank-3 DLN of ``benchmarks/llc_calibration.py`` (its seed 0).

    python benchmarks/llc_trajectory_length.py                 # 12 keys per model
    python benchmarks/llc_trajectory_length.py --keys 4 --models dln_10x10x10x10_r3
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import jax
import numpy as np

from slt_sampler import estimate_llc, zoo
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.workflows import _exact_llc

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "llc_trajectory_length.json"
SCALES = (1.0, 2.0, 4.0)
LONG_SCALE = 2.0  # the long reference runs' trajectory scale
LONG_STEPS = {"dln_8x6x5x7_r2": 60_000, "dln_10x10x10x10_r3": 30_000}
LONG_STEPS_DEFAULT = 20_000
LONG_RUNS = 2


def _study_models():
    spec = importlib.util.spec_from_file_location(
        "llc_at_scale_run", ROOT / "studies" / "llc_at_scale" / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    key = jax.random.key(0)
    return key, mod.build_models(key, False)


def models() -> dict:
    """name -> (posterior, key family of its runs)."""
    key, study = _study_models()
    out = {}
    for name in ("dln_8x6x5x7_r2", "dln_18x16x14x16x18_r4"):
        e = study[name]
        out[name] = (
            e["factory"]().posterior,
            jax.random.fold_in(key, 1000 + e["index"]),
        )
    ck = jax.random.key(0)  # llc_calibration.py's seed 0
    dln = zoo.deep_linear(
        jax.random.fold_in(ck, 0), [10, 10, 10, 10], 3, minimiser="balanced"
    )
    out["dln_10x10x10x10_r3"] = (dln.posterior, jax.random.fold_in(ck, 1000))
    return out


def run(posterior, key, scale: float, num_steps: int | None = None) -> dict:
    """One ``estimate_llc`` call with the trajectory length scaled by ``scale``."""
    saved = _exact_llc.INTEGRATION_STEPS, _exact_llc.MAX_INTEGRATION_STEPS
    _exact_llc.INTEGRATION_STEPS = saved[0] * scale
    _exact_llc.MAX_INTEGRATION_STEPS = saved[1] * scale
    try:
        t0 = time.perf_counter()
        est = estimate_llc(
            key, posterior, num_steps=num_steps, gamma_check=(), progress=False
        )
        wall = time.perf_counter() - t0
    finally:
        _exact_llc.INTEGRATION_STEPS, _exact_llc.MAX_INTEGRATION_STEPS = saved
    return {
        "llc": est.result.llc,
        "llc_sigma": est.result.llc_sigma,
        "steps": est.num_steps,  # warm-up included
        "burn_in": est.burn_in,
        "wall_seconds": wall,
    }


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == name]
        longs = [r["llc"] for r in mine if r["kind"] == "long"]
        ref = float(np.mean(longs)) if longs else None
        s = {"long_runs": longs, "reference": ref}
        base = {r["key"]: r["wall_seconds"] for r in mine if r["kind"] == "x1.0"}
        for scale in SCALES:
            rs = [r for r in mine if r["kind"] == f"x{scale}"]
            if not rs:
                continue
            lam = np.array([r["llc"] for r in rs])
            sigma = float(np.mean([r["llc_sigma"] for r in rs]))
            ratio = [r["wall_seconds"] / base[r["key"]] for r in rs if r["key"] in base]
            s[f"x{scale}"] = {
                "keys": len(rs),
                "mean_llc": float(lam.mean()),
                "se_llc": float(lam.std(ddof=1) / np.sqrt(len(lam)))
                if len(lam) > 1
                else None,
                "mean_sigma": sigma,
                "bias_over_sigma": (
                    float((lam.mean() - ref) / sigma) if ref is not None else None
                ),
                "median_wall_seconds": float(
                    np.median([r["wall_seconds"] for r in rs])
                ),
                "median_wall_ratio_to_x1": float(np.median(ratio)) if ratio else None,
                "mean_steps": float(np.mean([r["steps"] for r in rs])),
            }
        out[name] = s
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=None, help="default: all three")
    ap.add_argument("--keys", type=int, default=12, help="default runs per scale")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.keys < 2:
        ap.error("--keys must be >= 2 to measure a spread")
    table = models()
    names = args.models or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        ap.error(f"--models: unknown {unknown}; choose from {sorted(table)}")
    rows = read_rows(args.out, key="rows")
    done = {(r["model"], r["kind"], r["key"]) for r in rows}

    def save():
        write_json_atomic(args.out, {"summary": summarise(rows), "rows": rows})

    for name in names:
        posterior, key = table[name]
        for scale in SCALES:  # compile each configuration once, untimed
            run(posterior, jax.random.fold_in(key, 999), scale)
        for i in range(args.keys):
            for scale in SCALES:
                kind = f"x{scale}"
                if (name, kind, i) in done:
                    continue
                r = run(posterior, jax.random.fold_in(key, 100 + i), scale)
                rows.append({"model": name, "kind": kind, "key": i, **r})
                print(
                    f"{name} {kind} key {i}: λ̂ {r['llc']:.3f} ± {r['llc_sigma']:.3f}, "
                    f"{r['steps']} steps, {r['wall_seconds']:.2f} s",
                    flush=True,
                )
                save()
        for i in range(LONG_RUNS):
            if (name, "long", i) in done:
                continue
            steps = LONG_STEPS.get(name, LONG_STEPS_DEFAULT)
            r = run(posterior, jax.random.fold_in(key, 500 + i), LONG_SCALE, steps)
            rows.append({"model": name, "kind": "long", "key": i, **r})
            print(
                f"{name} long {i}: λ̂ {r['llc']:.3f} ± {r['llc_sigma']:.3f}, "
                f"{r['steps']} steps",
                flush=True,
            )
            save()
    summary = summarise(rows)
    save()
    for name, s in summary.items():
        print(name, f"reference {s['reference']}")
        for scale in SCALES:
            c = s.get(f"x{scale}")
            if c:
                print(
                    f"  x{scale}: λ̂ {c['mean_llc']:.3f} ± {c['se_llc']:.3f}, bias/σ "
                    f"{c['bias_over_sigma']}, wall ×{c['median_wall_ratio_to_x1']:.2f}"
                )
    return summary


if __name__ == "__main__":
    main()
