"""Time to an answer: ``estimate_llc`` at defaults against devinterp's README settings.

Both tools estimate the LLC of the [10, 10, 10, 10] rank-3 deep linear network
(n = 10⁴, the zoo's data, w* the balanced minimiser, λ = 42), alternately
(ours, devinterp, ours, devinterp, ...) in one run so that machine load hits both alike.
devinterp runs in its own virtual environment with CPU torch, made here on first use
(the project never imports torch): ``benchmarks/.venv-devinterp`` with devinterp 2.0.1
and torch 2.13.0, driven through ``benchmarks/_devinterp_runner.py`` as a long-lived
subprocess, so its imports are paid once and not counted.

"Seconds to answer" is the wall time of one ``estimate_llc(key, posterior)`` call
(tuning, sampling, γ checks and the minimum check included; JAX imported beforehand)
against one devinterp ``llc()`` call. Repeat 0 also compiles the project's sampler
(a first call in a fresh process: ``seconds_first_call_project``); later repeats reuse
it, as every call after the first in a session does. Beside each answer: the exact
value at the project's (n, β, γ, w*), from a long run of the exact MAMS sampler on
its own key (after the repeats), and Aoyagi's λ. devinterp's README settings
(n_beta = 30, no localisation) estimate a different quantity; its answer is compared
with λ, as its users do. Writes ``benchmarks/results/compare_devinterp.json``.

    python benchmarks/compare_devinterp.py [--repeats 5]
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from slt_sampler import estimate_llc
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.zoo import deep_linear

HERE = Path(__file__).parent
VENV = HERE / ".venv-devinterp"
PINS = ["torch==2.13.0", "devinterp==2.0.1"]


def devinterp_python() -> Path:
    """The devinterp environment's interpreter, created on first use.

    torch 2.13.0's CPU build is available for Python 3.11 (pip would otherwise fetch
    a multi-GB CUDA build), so the environment is made with ``python3.11`` when
    present."""
    py = VENV / "bin" / "python"
    if py.exists():
        return py
    base = shutil.which("python3.11") or sys.executable
    print(f"making {VENV} with {base} and {' '.join(PINS)} (once) ...", flush=True)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    for pin in PINS:  # torch first, so devinterp's requirement is already met
        subprocess.run([str(py), "-m", "pip", "install", "-q", pin], check=True)
    return py


EXACT_STEPS = 20_000  # the reference's production steps (fixed, not adaptive)


def exact_llc(model, seed=123):
    """λ at the project's (n, β, γ, w*) from a long fixed run of the exact MAMS
    sampler on its own key (``EXACT_STEPS`` production steps). An adaptive stop at a
    total error of 0.4% of λ̂, as before, ended after a few thousand steps, inside
    the slow relaxation from w* that the default shares, and read 41.25 where long
    runs read 41.6-41.7 (benchmarks/llc_calibration.py)."""
    ref = estimate_llc(
        jax.random.key(seed),
        model.posterior,
        sampler="mams",
        num_steps=EXACT_STEPS,
        gamma_check=(),
        progress=False,
    )
    return ref.result.llc, ref.result.llc_sigma


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "compare_devinterp.json"))
    args = ap.parse_args()

    model = deep_linear(
        jax.random.key(args.seed), [10, 10, 10, 10], 3, minimiser="balanced"
    )
    post = model.posterior

    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "dln.npz"
        x, y = post.data
        np.savez(
            npz,
            x=np.asarray(x),
            y=np.asarray(y),
            num_layers=len(model.w_star),
            **{f"w{i}": np.asarray(w) for i, w in enumerate(model.w_star)},
        )
        peer = subprocess.Popen(
            [str(devinterp_python()), str(HERE / "_devinterp_runner.py"), str(npz)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert json.loads(peer.stdout.readline()).get("ready")
        rows = []
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            est = estimate_llc(jax.random.key(1000 + rep), post, progress=False)
            ours = time.perf_counter() - t0
            peer.stdin.write(json.dumps({"seed": rep}) + "\n")
            peer.stdin.flush()
            theirs = json.loads(peer.stdout.readline())
            rows.append(
                {
                    "repeat": rep,
                    "seconds_project": ours,
                    "llc_project": float(est.result.llc),
                    "llc_sigma_project": float(est.result.llc_sigma),
                    "sampler_project": est.sampler,
                    "compile_seconds_project": float(est.compile_seconds),
                    "problems_project": [p.cause for p in est.problems],
                    "seconds_devinterp": theirs["seconds"],
                    "llc_devinterp": theirs["llc"],
                }
            )
            print(
                f"repeat {rep}: ours {est.result.llc:6.2f} ± "
                f"{est.result.llc_sigma:4.2f} in {ours:6.1f} s | devinterp "
                f"{theirs['llc']:6.2f} in {theirs['seconds']:6.1f} s",
                flush=True,
            )
        peer.stdin.close()
        peer.wait(timeout=60)

    exact, exact_mcse = exact_llc(model)  # after the repeats: repeat 0 compiled (cold)
    print(f"exact λ at (n, β, γ = 1, balanced w*): {exact:.2f} ± {exact_mcse:.2f}")
    ratio = np.array([r["seconds_project"] / r["seconds_devinterp"] for r in rows])
    ours_llc = np.array([r["llc_project"] for r in rows])
    out = {
        "model": model.name,
        "true_lambda": model.true.lam,
        "exact_llc": exact,
        "exact_llc_mcse": exact_mcse,
        "exact_method": f"MAMS, {EXACT_STEPS} production steps",
        "seconds_first_call_project": rows[0]["seconds_project"],
        "note": "repeat 0 of the project includes compiling its sampler (a first call "
        "in a fresh process); later repeats reuse the compiled run",
        "seconds_to_answer_project": float(
            np.median([r["seconds_project"] for r in rows])
        ),
        "seconds_to_answer_devinterp": float(
            np.median([r["seconds_devinterp"] for r in rows])
        ),
        "time_ratio_median": float(np.median(ratio)),
        "time_ratio_range": [float(ratio.min()), float(ratio.max())],
        "llc_project_default": float(np.median(ours_llc)),
        "llc_devinterp_default": float(np.median([r["llc_devinterp"] for r in rows])),
        "project_within_5pct_of_exact": bool(
            np.all(np.abs(ours_llc - exact) <= 0.05 * exact)
        ),
        "devinterp_settings": "README: lr 1e-3, n_beta 30, 4 chains x 200 draws, "
        "batch 32, no localisation, no burn-in",
        "rows": rows,
        "devices": [str(d) for d in jax.devices()],
    }
    write_json_atomic(args.out, out, indent=2)
    print(
        f"median seconds to answer: ours {out['seconds_to_answer_project']:.1f}, "
        f"devinterp {out['seconds_to_answer_devinterp']:.1f} (ratio "
        f"{out['time_ratio_median']:.2f}, range {ratio.min():.2f}-{ratio.max():.2f})"
    )


if __name__ == "__main__":
    main()
