"""Cost of a preconditioned SGLD step against a plain SGLD step (issue 9: ≤ 1.3×).

Same model (a deep linear network; default the 10⁴-parameter [60, 50, 50, 60] one of
studies/llc_at_scale, and the [10, 10, 10, 10] DLN), chains, steps, batch and step
size; the two samplers alternate (SGLD, pSGLD, SGLD, pSGLD, ...) in one process so that
machine load hits both alike. Each run's compile is excluded (both are compiled before
timing); the ratio of run seconds is reported per pair, with its median and range.
pSGLD adapts its RMSProp metric during the first quarter and is frozen afterwards, as
``estimate_llc`` would run it. Writes benchmarks/results/psgld_cost.json atomically.

    python benchmarks/psgld_cost.py [--repeats 5] [--steps 4000]
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import PSGLD, SGLD, sample
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.zoo import deep_linear

HERE = Path(__file__).parent
MODELS = {
    "dln_60x50x50x60_r10": ([60, 50, 50, 60], 10),
    "dln_10x10x10x10_r3": ([10] * 4, 3),
}


def _seconds(sampler, post, w, chains, steps, key) -> float:
    res = sample(
        key, sampler, post, w, num_chains=chains, num_steps=steps, progress=False
    )
    return res.run_seconds


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "psgld_cost.json")
    args = ap.parse_args(argv)
    out = {
        "steps": args.steps,
        "chains": args.chains,
        "batch": args.batch,
        "models": {},
    }
    for name, (widths, r) in MODELS.items():
        model = deep_linear(jax.random.key(0), widths, r, minimiser="balanced")
        post, w = model.posterior, model.w_star
        sgld = SGLD(jnp.asarray(1e-7), args.batch)
        psgld = PSGLD(
            jnp.asarray(1e-3), batch_size=args.batch, adapt_steps=args.steps // 4
        )
        for s in (sgld, psgld):  # compile both outside the timing
            _seconds(s, post, w, args.chains, args.steps, jax.random.key(0))
        pairs = []
        for rep in range(args.repeats):
            a = _seconds(sgld, post, w, args.chains, args.steps, jax.random.key(rep))
            b = _seconds(psgld, post, w, args.chains, args.steps, jax.random.key(rep))
            pairs.append((a, b))
            print(
                f"{name} repeat {rep}: SGLD {a:.3f} s, pSGLD {b:.3f} s, ratio {b / a:.3f}"
            )
        ratio = np.array([b / a for a, b in pairs])
        out["models"][name] = {
            "d": model.dim,
            "sgld_seconds": [a for a, _ in pairs],
            "psgld_seconds": [b for _, b in pairs],
            "ratio_median": float(np.median(ratio)),
            "ratio_range": [float(ratio.min()), float(ratio.max())],
        }
        print(
            f"{name} (d = {model.dim}): pSGLD/SGLD step cost, median {np.median(ratio):.3f}"
        )
    out["devices"] = [str(d) for d in jax.devices()]
    out["machine_note"] = "run on an idle machine for the numbers to mean anything"
    write_json_atomic(args.out, out, indent=2)
    return out


if __name__ == "__main__":
    main()
