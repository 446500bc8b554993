"""Chain-steps/s of a 16-rung temperature ladder against the same chains at one β.

A ladder of ``--rungs`` inverse temperatures × ``--chains`` chains per rung
(``sample_ladder``, per-rung MALA step sizes) and ``rungs × chains`` chains at a single
β (``sample``) run the same number of chain-steps on the same posterior (the
regular-model zoo entry, full-data MALA). Each is compiled once, then timed
alternately A B A B ... (``--repeats`` pairs) so load drifts hit both alike; the
ratio of median chain-steps/s is the cost of putting β on a vmap axis (issue 10
asks for ≥ 0.8). Writes benchmarks/results/ladder_speed.json atomically. Run it on an
idle machine:

    python benchmarks/ladder_speed.py [--rungs 16] [--chains 4] [--steps 20000]
"""

from __future__ import annotations

import os

# On CPU, expose every core as a JAX device so that chains, which the driver shards over
# all devices, run in parallel (GPU/TPU backends ignore this). Must precede importing jax.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import MALA, sample
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.samplers.ladder import sample_ladder
from slt_sampler.zoo.models import regular


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rungs", type=int, default=16)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "ladder_speed.json")
    )
    args = ap.parse_args(argv)

    model = regular(jax.random.key(args.seed), args.dim, n=args.n)
    post = model.posterior
    beta0 = float(post.beta)
    betas = beta0 * np.geomspace(0.25, 4.0, args.rungs)
    # step ∝ 1/β keeps every rung's MALA acceptance alike (posterior width ∝ β^-1/2)
    base = 0.5 / (post.n * beta0)
    rung_samplers = [MALA(jnp.asarray(base * beta0 / b, jnp.float32)) for b in betas]
    single = MALA(jnp.asarray(base, jnp.float32))
    total_chains = args.rungs * args.chains
    common = {"num_steps": args.steps, "chunk_steps": args.steps, "progress": False}

    def run_ladder(key):
        return sample_ladder(
            key, rung_samplers, post, model.w_star, betas=betas,
            num_chains=args.chains, **common,
        )  # fmt: skip

    def run_single(key):
        return sample(
            key, single, post, model.w_star, num_chains=total_chains, **common
        )

    keys = iter(jax.random.split(jax.random.key(args.seed + 1), 2 * args.repeats + 2))
    first_ladder, first_single = run_ladder(next(keys)), run_single(next(keys))
    ladder_sps, single_sps = [], []
    for _ in range(args.repeats):  # A B A B: load drifts hit both alike
        ladder_sps.append(run_ladder(next(keys)).steps_per_second)
        single_sps.append(run_single(next(keys)).steps_per_second)
    ratio = float(np.median(ladder_sps) / np.median(single_sps))
    out = {
        "model": model.name,
        "devices": [str(d) for d in jax.devices()],
        "rungs": args.rungs,
        "chains_per_rung": args.chains,
        "single_beta_chains": total_chains,
        "num_steps": args.steps,
        "n": post.n,
        "ladder_compile_seconds": first_ladder.compile_seconds,
        "single_compile_seconds": first_single.compile_seconds,
        "ladder_chain_steps_per_second": ladder_sps,
        "single_chain_steps_per_second": single_sps,
        "ratio_median": ratio,
        "target_ratio": 0.8,
        "ladder_acceptance_by_rung": np.mean(
            first_ladder.stats["acceptance_rate"], axis=(1, 2)
        ).tolist(),
    }
    write_json_atomic(args.out, out, indent=2)
    print(
        f"ladder {args.rungs} rungs x {args.chains} chains: "
        f"{np.median(ladder_sps):,.0f} chain-steps/s; "
        f"{total_chains} chains at one β: {np.median(single_sps):,.0f} chain-steps/s"
    )
    print(f"ratio {ratio:.3f} (target >= 0.8); wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
