"""Equilibrium-propagation speed: compile time vs settling cap, and a 30-epoch run.

Targets (issue 3): jit compile time of one training step
<= 2 s and independent of the step cap T in {20, 100, 400}; a full 30-epoch digits
run <= 10 s on the 2-core CPU box. Prints measured numbers and ratios and writes
benchmarks/results/ep_speed.json. Timings depend on machine load, which is recorded.

Run:  python benchmarks/ep_speed.py
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import ep

OUT = Path(__file__).resolve().parent / "results" / "ep_speed.json"


def compile_time(net, opt, cap, variant, schedule, x, t, repeats=2):
    """Min over ``repeats`` fresh compilations of (wall s, process-CPU s), and the
    per-step run time (ms). CPU time is robust to other jobs sharing the cores."""
    walls, cpus = [], []
    state = ep.init(net.init_params_fn(jax.random.key(0)), opt)
    args = (jax.random.key(0), state, x, t, 0.5, 1.0, 1e-4)
    for _ in range(repeats):
        kernel = ep.build_kernel(
            net, opt, variant=variant, max_steps=cap, schedule=schedule
        )
        w0, c0 = time.perf_counter(), time.process_time()
        compiled = jax.jit(kernel).lower(*args).compile()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    jax.block_until_ready(compiled(*args))
    t1 = time.perf_counter()
    for i in range(20):
        out = compiled(jax.random.key(i), *args[1:])
    jax.block_until_ready(out)
    return min(walls), min(cpus), (time.perf_counter() - t1) / 20


def full_runs(data, n_runs=3):
    labels = ({"w": "0", "b": "0"}, {"w": "1", "b": "1"})
    specs = {
        "RestrictedHopfield-64 (centered 0.5, alternating)": (
            ep.RestrictedHopfield((64, 64, 10)),
            optax.multi_transform({"0": optax.sgd(0.1), "1": optax.sgd(0.05)}, labels),
            ep.EPConfig(
                variant="centered",
                nudge=0.5,
                step_size=1.0,
                schedule="alternating",
                max_steps=500,
                num_epochs=30,
            ),
        ),
        "ConditionalGaussian-64 (symmetric 0.1, fast init)": (
            ep.ConditionalGaussian((64, 64, 10)),
            optax.sgd(0.1, momentum=0.9),
            ep.EPConfig(
                variant="symmetric",
                nudge=0.1,
                step_size=0.5,
                schedule="alternating",
                init_mode="fast",
                max_steps=500,
                num_epochs=30,
            ),
        ),
    }
    out = {}
    for name, (net, opt, cfg) in specs.items():
        rows = []
        for seed in range(n_runs):
            c0 = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = ep.fit(
                    jax.random.key(seed),
                    net.init_params_fn(jax.random.key(seed)),
                    net,
                    opt,
                    data,
                    cfg,
                )
            cpu = time.process_time() - c0
            rows.append(
                {
                    "cpu_s": cpu,
                    "total_s": res.wall_time,
                    "compile_s": res.compile_time,
                    "run_s": res.wall_time - res.compile_time,
                    "best_acc": float(res.history.test_accuracy.max()),
                }
            )
            print(
                f"  {name} seed {seed}: total {res.wall_time:.2f}s (compile "
                f"{res.compile_time:.2f}s, run {rows[-1]['run_s']:.2f}s), best acc "
                f"{rows[-1]['best_acc']:.4f}, process CPU {cpu:.2f}s",
                flush=True,
            )
        out[name] = rows
    return out


def main():
    load = os.getloadavg()
    print(f"devices {jax.devices()}, cpus {os.cpu_count()}, load avg {load}")
    data = ep.load_digits_split()
    x = jnp.asarray(data.x_train[:20])
    t = jax.nn.one_hot(data.y_train[:20], 10)
    net = ep.RestrictedHopfield((64, 64, 10))
    opt = optax.sgd(0.1)
    comp = {}
    for variant in ("centered", "symmetric"):
        for schedule in ("alternating", "synchronous"):
            key = f"{variant}/{schedule}"
            comp[key] = {}
            for cap in (20, 100, 400):
                c, cpu, r = compile_time(net, opt, cap, variant, schedule, x, t)
                comp[key][cap] = {
                    "compile_s": c,
                    "compile_cpu_s": cpu,
                    "step_ms": 1e3 * r,
                }
                print(
                    f"compile {key:24s} T={cap:4d}: wall {c:.2f}s cpu {cpu:.2f}s  "
                    f"(step {1e3 * r:.2f} ms)",
                    flush=True,
                )
            cs = [v["compile_s"] for v in comp[key].values()]
            cc = [v["compile_cpu_s"] for v in comp[key].values()]
            comp[key]["max_over_min"] = max(cs) / min(cs)
            comp[key]["cpu_max_over_min"] = max(cc) / min(cc)
            print(
                f"  ratio max/min over T: wall {max(cs) / min(cs):.2f}, "
                f"cpu {max(cc) / min(cc):.2f}"
            )
    runs = full_runs(data)
    worst_compile = max(
        v[c]["compile_s"] for v in comp.values() for c in (20, 100, 400)
    )
    summary = {
        "worst_step_compile_s": worst_compile,
        "step_compile_target_s": 2.0,
        "worst_compile_ratio_over_T": max(v["max_over_min"] for v in comp.values()),
        "median_30_epoch_total_s": {
            k: float(np.median([r["total_s"] for r in v])) for k, v in runs.items()
        },
        "cold_30_epoch_total_s": {k: v[0]["total_s"] for k, v in runs.items()},
        "median_30_epoch_run_s": {
            k: float(np.median([r["run_s"] for r in v])) for k, v in runs.items()
        },
        "run_target_s": 10.0,
    }
    print(json.dumps(summary, indent=1))
    result = {
        "load_avg_start": load,
        "load_avg_end": os.getloadavg(),
        "devices": str(jax.devices()),
        "compile": comp,
        "runs": runs,
        "summary": summary,
    }
    write_json_atomic(OUT, result, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
