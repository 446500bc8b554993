"""Which exact sampler is the fastest reference for λ̂? MAMS against MALA and NUTS.

For each deep linear network, localised at its balanced minimiser (n = 10⁴, β = 1/log n,
γ = 1), every sampler is tuned by its own routine (MALA: acceptance in [0.5, 0.9];
NUTS: Stan window adaptation; MAMS: BlackJAX's adjusted-MCLMC tuner), then runs the same
number of chains. Reported per sampler: λ̂ ± MCSE (they must agree: all three are exact),
the effective sample size of the nL_n trace (the quantity λ̂ averages), gradient
evaluations, run seconds (compile and tuning excluded, tuning reported apart), and
effective samples per second and per 1000 gradients. Run on an idle machine; the
samplers alternate model by model in one process.

    python benchmarks/exact_reference.py            # d = 300 and d ≈ 10⁴
    python benchmarks/exact_reference.py --quick    # smoke run (tiny budgets)
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import MALA, NUTS, full_loss, sample, window_adapt
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.estimators import _mcse
from slt_sampler.samplers.calibrate import max_curvature
from slt_sampler.samplers.hmc import default_inverse_mass_matrix
from slt_sampler.samplers.mams import tune_mams
from slt_sampler.workflows.llc import _tune_mala
from slt_sampler.zoo import deep_linear, param_count

MODELS = {
    "dln_10x10x10x10_r3": ([10, 10, 10, 10], 3),
    "dln_50x60x60x50_r10": ([50, 60, 60, 50], 10),
}


def _tune(name, key, post, w_star, chains, tune_steps):
    t0 = time.perf_counter()
    if name == "mala":
        h_max = max_curvature(key, post, w_star)
        smp, start, axis = (
            MALA(jnp.asarray(_tune_mala(key, post, w_star, h_max, chains))),
            w_star,
            False,
        )
    elif name == "nuts":
        nuts = NUTS(jnp.asarray(1.0), default_inverse_mass_matrix(w_star))
        smp, start = window_adapt(
            key, nuts, post, w_star, num_chains=chains, num_steps=tune_steps
        )
        axis = True
    else:
        smp, start = tune_mams(
            key, post, w_star, num_chains=chains, num_steps=5 * tune_steps
        )
        axis = True
    jax.block_until_ready(start)
    return smp, start, axis, time.perf_counter() - t0


def measure(name, key, post, w_star, init_loss, chains, steps, tune_steps):
    k_tune, k_run = jax.random.split(key)
    smp, start, axis, tune_s = _tune(name, k_tune, post, w_star, chains, tune_steps)
    res = sample(
        k_run,
        smp,
        post,
        start,
        num_chains=chains,
        num_steps=steps,
        chains_axis=axis,
        progress=False,
    )
    trace = post.n * np.asarray(res.losses, np.float64)[:, steps // 5 :]
    nbeta = float(post.nbeta)
    lam = float(post.beta) * (trace.mean() - post.n * init_loss)
    ess = _mcse.ess_mean(trace)
    grads = float(np.sum(res.stats["num_integration_steps"][:, steps // 5 :]))
    return {
        "sampler": name,
        "llc": lam,
        "llc_mcse": float(post.beta) * _mcse.mcse_mean(trace),
        "ess": ess,
        "gradient_evaluations": grads,
        "acceptance_rate": float(np.mean(res.stats["acceptance_rate"])),
        "tune_seconds": tune_s,
        "compile_seconds": res.compile_seconds,
        "run_seconds": res.run_seconds * 0.8,
        "ess_per_second": ess / (res.run_seconds * 0.8),
        "ess_per_1000_gradients": 1000 * ess / grads,
        "nbeta": nbeta,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "exact_reference.json")
    )
    args = ap.parse_args()
    budgets = {"mala": 20_000, "nuts": 1_000, "mams": 5_000}
    tune_steps = 500
    if args.quick:
        budgets = {k: v // 20 for k, v in budgets.items()}
        tune_steps = 100
    rows = []
    for i, (label, (widths, r)) in enumerate(MODELS.items()):
        if args.quick and i or label not in args.models:
            continue
        model = deep_linear(jax.random.key(args.seed), widths, r, minimiser="balanced")
        post, w_star = model.posterior, model.w_star
        init_loss = float(full_loss(post, w_star))
        for name in ("mala", "nuts", "mams"):
            row = measure(
                name,
                jax.random.key(args.seed + 1 + i),
                post,
                w_star,
                init_loss,
                args.chains,
                budgets[name],
                tune_steps,
            )
            row.update(model=label, d=param_count(w_star), true_lambda=model.true.lam)
            rows.append(row)
            print(
                f"{label:22s} {name:5s} λ̂ {row['llc']:8.2f} ± {row['llc_mcse']:5.2f}  "
                f"ESS {row['ess']:7.0f}  {row['ess_per_second']:8.1f} ESS/s  "
                f"{row['ess_per_1000_gradients']:6.2f} ESS/1k grads  "
                f"acc {row['acceptance_rate']:.2f}  tune {row['tune_seconds']:.0f} s",
                flush=True,
            )
            write_json_atomic(
                args.out,
                {"devices": [str(d) for d in jax.devices()], "rows": rows},
                indent=2,
            )


if __name__ == "__main__":
    main()
