"""Benchmark: training memory, compile time and step time against depth.

Plain backprop vs per-block checkpointing vs reversible backprop
(``slt_sampler.thermo.reversible``), reference setup of issue 5:
additive coupling, F and G = MLP 64 -> 512 -> 64 (tanh) on a 128-wide state, batch 256.
Memory is XLA's compiled ``memory_analysis().temp_size_in_bytes`` (parameters and
gradients excluded), so the ratios hold on any backend. Compile time is ``lower`` +
``compile`` of ``jit(grad(loss))`` with a fresh function each time, minimum of 3.

    python benchmarks/reversible_memory.py [--quick]

Writes benchmarks/results/reversible_memory.json. Not a test: numbers are printed.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import reversible as rev

MIB = 2.0**20
DIM, HIDDEN, BATCH = 128, 512, 256
COMPILE_REPEATS = 3


def measure(method, depth, reps, timed):
    coupling = rev.additive_coupling(rev.mlp_residual())
    stack = rev.reversible_stack(coupling, backprop=method)
    params = rev.init_coupling_mlp(jax.random.key(0), depth, DIM, HIDDEN)
    x = jax.random.normal(jax.random.key(1), (BATCH, DIM))

    def make_grad():  # a fresh function per call: no compilation-cache hits
        def loss(p, v):
            return jnp.mean(jnp.sin(rev.forward(stack, p, v)[0]))

        return jax.grad(loss)

    # compile time: minimum over fresh compilations (robust to other jobs' load)
    costs = [rev.compiled_cost(make_grad(), params, x) for _ in range(COMPILE_REPEATS)]
    cost = min(costs, key=lambda c: c.compile_seconds)
    grad = make_grad()
    row = {
        "method": method,
        "depth": depth,
        "temp_mib": cost.temp_bytes / MIB,
        "param_mib": cost.argument_bytes / MIB,
        "grad_mib": cost.output_bytes / MIB,
        "compile_s": cost.compile_seconds,
        "compile_s_all": [c.compile_seconds for c in costs],
        "step_ms": None,
    }
    if timed:
        step = jax.jit(grad)
        jax.block_until_ready(step(params, x))
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            jax.block_until_ready(step(params, x))
            times.append(time.perf_counter() - start)
        row["step_ms"] = 1e3 * float(np.median(times))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "reversible_memory.json",
    )
    args = parser.parse_args(argv)
    depths = [4, 16, 64] if args.quick else [4, 16, 64, 256, 1024]
    timed_depths = {4, 16, 64} if args.quick else {4, 16, 64, 256}
    reps = 3
    rows = []
    for depth in depths:
        for method in rev.BACKPROP_MODES:
            row = measure(method, depth, reps, depth in timed_depths)
            rows.append(row)
            step = "-" if row["step_ms"] is None else f"{row['step_ms']:.0f}"
            print(
                f"depth {depth:5d} {method:11s} temp {row['temp_mib']:9.2f} MiB  "
                f"params {row['param_mib']:8.2f} MiB  compile {row['compile_s']:5.2f} s  "
                f"step {step} ms",
                flush=True,
            )
    get = {(r["method"], r["depth"]): r for r in rows}

    def ratio(method, key, d1, d0=4):
        if (method, d1) not in get or get[(method, d1)][key] is None:
            return None
        return get[(method, d1)][key] / get[(method, d0)][key]

    ratios = {
        f"{m}_temp_{d}_over_4": ratio(m, "temp_mib", d)
        for m in rev.BACKPROP_MODES
        for d in depths[1:]
    }
    ratios.update(
        {
            f"{m}_compile_{d}_over_4": ratio(m, "compile_s", d)
            for m in rev.BACKPROP_MODES
            for d in depths[1:]
        }
    )
    deepest = max(timed_depths)
    ratios.update(
        {
            f"{m}_step_over_plain_depth{deepest}": get[(m, deepest)]["step_ms"]
            / get[("plain", deepest)]["step_ms"]
            for m in rev.BACKPROP_MODES
        }
    )
    for name, value in ratios.items():
        if value is not None:
            print(f"{name:36s} {value:8.3f}")
    result = {
        "setup": {
            "dim": DIM,
            "hidden": HIDDEN,
            "batch": BATCH,
            "coupling": "additive",
            "dtype": "float32",
        },
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "machine": platform.machine(),
        "note": "wall-clock times on the machine named here; ratios are the portable numbers",
        "rows": rows,
        "ratios": ratios,
        "reversible_compile_s_at_256": get.get(("reversible", 256), {}).get(
            "compile_s"
        ),
    }
    write_json_atomic(args.out, result, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
