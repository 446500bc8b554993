"""SGLD throughput on the deep linear network of issue #2 (widths [10,10,10,10], r=3).

4 chains × 2,500 SGLD steps, batch 100, n = 10,000: prints compile time and steps/s of
``slt_sampler.sample`` (one jit(scan(vmap(step))) driver) and, as a baseline measured in
this same process, a per-step Python loop over chains calling a jitted step (the peer's
architecture: devinterp runs chains one after another with a Python loop per step).
Writes benchmarks/results/llc_speed.json.

    python benchmarks/llc_speed.py [--steps 2500] [--chains 4]
"""

from __future__ import annotations

import os

# On CPU, expose every core as a JAX device so that chains, which the driver shards over
# all devices, run in parallel (GPU/TPU backends ignore this). Must precede importing jax.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import SGLD, full_loss, llc, sample
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.zoo.models import deep_linear

PEER_STEPS_PER_SECOND = 1000.0  # devinterp 2.0.1 on this DLN (issue 2)


def python_loop_baseline(sgld, posterior, w_star, chains: int, steps: int) -> float:
    """Steps/s of a Python loop of jitted single steps, chains one after another."""
    step = jax.jit(sgld.step)
    key = jax.random.key(123)
    state = sgld.init(w_star, posterior)
    jax.block_until_ready(step(key, state, posterior))  # compile outside the timing
    t0 = time.perf_counter()
    for c in range(chains):
        state = sgld.init(w_star, posterior)
        for t in range(steps):
            state, _ = step(jax.random.fold_in(key, c * steps + t), state, posterior)
        jax.block_until_ready(state)
    return chains * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--step-size", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "llc_speed.json")
    )
    args = ap.parse_args()

    model = deep_linear(jax.random.key(args.seed), [10, 10, 10, 10], 3)
    post = model.posterior
    sgld = SGLD(jnp.asarray(args.step_size), batch_size=100)

    def run(key):
        return sample(
            key,
            sgld,
            post,
            model.w_star,
            num_chains=args.chains,
            num_steps=args.steps,
            chunk_steps=args.steps,
            progress=False,
        )

    res = run(jax.random.key(args.seed + 1))  # compiles
    # a second run reuses the compiled executable: pure sampling speed
    res2 = run(jax.random.key(args.seed + 2))
    init_loss = float(full_loss(post, model.w_star))
    trace = init_loss + res2.stats["loss_diff"]
    est = llc(trace[:, args.steps // 4 :], init_loss, n=post.n, beta=float(post.beta))
    base = python_loop_baseline(
        sgld, post, model.w_star, args.chains, min(args.steps, 500)
    )
    out = {
        "model": model.name,
        "devices": [str(d) for d in jax.devices()],
        "num_chains": args.chains,
        "num_steps": args.steps,
        "batch_size": 100,
        "step_size": args.step_size,
        "compile_seconds": res.compile_seconds,
        "run_seconds": res2.run_seconds,
        "steps_per_second": res2.steps_per_second,
        "python_loop_steps_per_second": base,
        "speedup_vs_python_loop": res2.steps_per_second / base,
        "speedup_vs_peer_reported": res2.steps_per_second / PEER_STEPS_PER_SECOND,
        "llc": est.llc,
        "llc_mcse": est.llc_mcse,
        "llc_note": "2,500 steps at a fixed step size: a speed run, not a converged estimate",
        "true_lambda": model.true.lam,
    }
    write_json_atomic(args.out, out, indent=2)
    print(f"compile: {out['compile_seconds']:.2f} s")
    print(
        f"sampling: {out['steps_per_second']:,.0f} steps/s "
        f"({args.chains} chains x {args.steps} steps in {out['run_seconds']:.3f} s)"
    )
    print(
        f"python-loop baseline (same process): {base:,.0f} steps/s -> "
        f"{out['speedup_vs_python_loop']:.1f}x"
    )
    print(
        f"vs peer's reported ~{PEER_STEPS_PER_SECOND:.0f} steps/s: "
        f"{out['speedup_vs_peer_reported']:.0f}x (target >= 50x)"
    )
    print(f"llc = {est.llc:.1f} ± {est.llc_mcse:.1f} (true {model.true.lam})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
