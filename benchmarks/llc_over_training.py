"""LLC over training: one ``llc_over_training`` call against separate ``estimate_llc``
calls, at the same checkpoints, in the same process (issue 11).

The deep linear network of studies/llc_over_training (widths [5, 5, 5], rank-3 truth,
SGD from a 1e-5 initialisation) is trained once; its checkpoints (default 51) are then
measured (a) by one ``llc_over_training`` call (one calibration, reused, one compiled
sampler) and (b) by one ``estimate_llc`` per checkpoint with the same chains, steps per
chain and batch (``gamma_check=()``, everything else at its defaults: a calibration
and a pre-run minimum check each). Prints wall times, the ratio and the number of
sampler compilations, and writes benchmarks/results/llc_over_training.json atomically.

    python benchmarks/llc_over_training.py                  # 51 checkpoints (idle machine)
    python benchmarks/llc_over_training.py --checkpoints 6 --steps 1000   # plumbing check
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import time
import warnings
from pathlib import Path

import jax
import optax

from slt_sampler import estimate_llc
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.samplers import run as driver
from slt_sampler.training import train
from slt_sampler.workflows.llc_over_training import llc_over_training

HERE = Path(__file__).parent
SIGMA = 0.25


def trajectory(key, num_checkpoints: int):
    """The study's DLN trained for 4000 SGD steps, ``num_checkpoints`` checkpoints."""
    import sys

    sys.path.insert(0, str(HERE.parent / "studies" / "llc_over_training"))
    from run import dln_problem  # the study's data and start, one definition

    k_data, k_init, k_train = jax.random.split(key, 3)
    post, params0 = dln_problem(k_data, k_init)
    steps = 4000
    every = max(1, steps // (num_checkpoints - 1))
    traj = train(
        k_train,
        post,
        params0,
        optax.sgd(0.01 * SIGMA**2),
        batch_size=200,
        num_steps=every * (num_checkpoints - 1),
        checkpoint_every=every,
        progress=False,
    )
    return post, traj


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoints", type=int, default=51)
    ap.add_argument("--steps", type=int, default=20_000, help="SGLD steps per chain")
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=HERE / "results" / "llc_over_training.json"
    )
    args = ap.parse_args(argv)
    key = jax.random.key(args.seed)
    post, traj = trajectory(key, args.checkpoints)
    k = len(traj.steps)
    warnings.simplefilter("ignore", RuntimeWarning)  # saddles warn; timing only here

    before = len(driver._COMPILED)
    t0 = time.perf_counter()
    res = llc_over_training(
        jax.random.fold_in(key, 1),
        post,
        traj.params,
        steps=traj.steps,
        num_steps=args.steps,
        num_chains=args.chains,
        progress=False,
    )
    one_call = time.perf_counter() - t0

    t0 = time.perf_counter()
    separate = []
    for i in range(k):
        w = jax.tree.map(lambda x, i=i: x[i], traj.params)
        try:
            est = estimate_llc(
                jax.random.fold_in(key, 100 + i),
                post.replace(center=w),
                num_steps=args.steps,
                num_chains=args.chains,
                gamma_check=(),
                progress=False,
            )
            separate.append(est.result.llc)
        except ValueError:  # calibration impossible at a saddle: the cost is paid
            separate.append(float("nan"))
    many_calls = time.perf_counter() - t0
    out = {
        "checkpoints": k,
        "sgld_steps_per_chain": args.steps,
        "chains": args.chains,
        "llc_over_training_seconds": one_call,
        "separate_estimate_llc_seconds": many_calls,
        "ratio_separate_over_one_call": many_calls / one_call,
        "sampler_compiles_llc_over_training": res.compiles,
        "driver_cache_entries_added": len(driver._COMPILED) - before,
        "llc_final_one_call": float(res.llc[-1]),
        "llc_final_separate": float(separate[-1]),
        "device": str(jax.devices()[0]),
        "machine_note": "run on an idle machine for the numbers to mean anything",
    }
    write_json_atomic(args.out, out)
    print(
        f"{k} checkpoints × {args.chains} chains × {args.steps} steps: "
        f"llc_over_training {one_call:.1f} s ({res.compiles} sampler compiles), "
        f"{k} × estimate_llc {many_calls:.1f} s, ratio {many_calls / one_call:.2f}"
    )
    return out


if __name__ == "__main__":
    main()
