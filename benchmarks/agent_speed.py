"""Benchmark: compiled active-inference rollout speed and absence of re-tracing.

Target (issue 4): 512 agents x 6 steps x 125 policies in
<= 100 ms on the 2-core CPU after warm-up (pymdp with an outer jit: 95 ms), and a
second call does not re-trace / re-compile.

Run:  .venv/bin/python benchmarks/agent_speed.py [--repeats 30]
Writes benchmarks/results/agent_speed.json. Not a test: numbers depend on machine load.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import jax
import numpy as np

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import agent as ag

PYMDP_JIT_MS = 95.0  # reference: pymdp rollout wrapped in jit, 512 agents x 6 steps
TARGET_MS = 100.0


class _CompileCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling") and "_rollout" in msg:
            self.messages.append(msg)


def bench(task, horizon, num_agents, num_steps, repeats, num_iter, selection):
    model = ag.generative_model(task.A, task.B, task.C, task.D)
    state = ag.init(model)
    policies = ag.enumerate_policies(tuple(b.shape[2] for b in task.B), horizon)
    params = ag.AgentParams(policy_precision=16.0, action_precision=16.0)

    def run(seed):
        out = ag.rollout(
            jax.random.key(seed),
            state,
            task.env,
            params,
            policies,
            num_agents=num_agents,
            num_steps=num_steps,
            num_iter=num_iter,
            selection=selection,
        )
        return jax.block_until_ready(out)

    counter = _CompileCounter()
    logging.getLogger("jax").addHandler(counter)
    with jax.log_compiles(True):
        t0 = time.perf_counter()
        run(0)
        first = time.perf_counter() - t0
        compiles_first = len(counter.messages)
        cache_before = ag._rollout._cache_size()
        times = []
        for i in range(repeats):
            t0 = time.perf_counter()
            run(i + 1)
            times.append(time.perf_counter() - t0)
    logging.getLogger("jax").removeHandler(counter)
    times_ms = 1e3 * np.asarray(times)
    return {
        "num_policies": len(policies),
        "num_agents": num_agents,
        "num_steps": num_steps,
        "num_iter": num_iter,
        "selection": selection,
        "first_call_s": round(first, 3),
        "median_ms": round(float(np.median(times_ms)), 2),
        "min_ms": round(float(times_ms.min()), 2),
        "p90_ms": round(float(np.percentile(times_ms, 90)), 2),
        "compiles_first_call": compiles_first,
        "compiles_later_calls": len(counter.messages) - compiles_first,
        "cache_growth_later_calls": ag._rollout._cache_size() - cache_before,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "agent_speed.json",
    )
    args = parser.parse_args()
    rows = {
        "maze5_h3_125pol_fpi8": bench(
            ag.maze5(), 3, 512, 6, args.repeats, 8, "deterministic"
        ),
        "maze5_h3_125pol_fpi8_sampled": bench(
            ag.maze5(), 3, 512, 6, args.repeats, 8, "sampled"
        ),
        "maze5_h3_125pol_fpi1": bench(
            ag.maze5(), 3, 512, 6, args.repeats, 1, "deterministic"
        ),
        "tmaze_h2_16pol_fpi8": bench(
            ag.tmaze(), 2, 512, 3, args.repeats, 8, "deterministic"
        ),
    }
    head = rows["maze5_h3_125pol_fpi8"]
    summary = {
        "target_ms": TARGET_MS,
        "pymdp_jit_ms": PYMDP_JIT_MS,
        "median_over_target": round(head["median_ms"] / TARGET_MS, 3),
        "median_over_pymdp": round(head["median_ms"] / PYMDP_JIT_MS, 3),
        "meets_target_median": head["median_ms"] <= TARGET_MS,
        "no_retrace": head["compiles_later_calls"] == 0
        and head["cache_growth_later_calls"] == 0,
        "load_average_at_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "jax_version": jax.__version__,
    }
    for name, row in rows.items():
        print(
            f"{name:32s} first call {row['first_call_s']:6.2f} s | median "
            f"{row['median_ms']:7.2f} ms (min {row['min_ms']:.2f}, p90 "
            f"{row['p90_ms']:.2f}) | re-compiles on later calls: "
            f"{row['compiles_later_calls']}"
        )
    print(
        f"512 agents x 6 steps x 125 policies: median {head['median_ms']} ms = "
        f"{summary['median_over_target']}x the 100 ms target, "
        f"{summary['median_over_pymdp']}x pymdp-with-jit (95 ms); load average "
        f"{summary['load_average_at_end']}"
    )
    write_json_atomic(args.out, {"rows": rows, "summary": summary}, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
