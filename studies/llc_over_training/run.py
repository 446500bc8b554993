"""Study: the local learning coefficient over training (saddle-to-saddle dynamics).

Part 1, a deep linear network y = W_2 W_1 x (widths [5, 5, 5]) with a rank-3 truth
(singular values 3, 1, 1/3), trained by SGD from a 1e-5 initialisation: it learns its
singular values one at a time, so the loss falls in steps. ``llc_over_training``
estimates λ̂ at every checkpoint (one compiled sampler for all of them), the plateaus of
the loss are found automatically, and at each plateau the rank k of the end-to-end map
is counted and Aoyagi's (2024) λ of a rank-k truth is drawn beside λ̂.

Part 2, a small tanh MLP (64-16-10) on scikit-learn's digits, trained with SGD: λ̂ over
training (no closed form).

    python studies/llc_over_training/run.py           # full run (DLN part: 7 min, loaded 2 cores)
    python studies/llc_over_training/run.py --quick   # CI smoke run, a few minutes

Outputs in --out (default out/, or out/quick/): results.json (``checkpoints`` and
``plateaus`` of the DLN, ``mlp``), dln_llc.png, mlp_llc.png, DataTrees, and the
per-checkpoint results (resumable: a rerun skips finished checkpoints).
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import itertools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from slt_sampler import tempered_posterior
from slt_sampler.diagnostics.arviz import save_datatree
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.training import train
from slt_sampler.workflows.llc_over_training import llc_over_training
from slt_sampler.zoo import coefficients
from slt_sampler.zoo import models as zoo

HERE = Path(__file__).parent
WIDTHS = [5, 5, 5]
SINGULAR = (3.0, 1.0, 1 / 3)
SIGMA, N_DLN = 0.25, 4000
RANK_THRESHOLD = 0.1  # singular values of W_2 W_1 above this count (noise fit ~0.02)
FULL = {
    "train_steps": 6000,
    "every": 50,
    "num_steps": 30_000,
    "chains": 8,
    "refresh": 2.0,
}
# quick: one calibration (no refresh), short chains: a smoke run, not the numbers
QUICK = {
    "train_steps": 4000,
    "every": 100,
    "num_steps": 2000,
    "chains": 4,
    "refresh": None,
}


def dln_data(key):
    """x ~ N(0, I), y = W x + N(0, σ²) with W = U diag(3, 1, 1/3, 0, 0) Vᵀ."""
    k_u, k_v, k_x, k_e = jax.random.split(key, 4)
    d = WIDTHS[0]
    u, _ = jnp.linalg.qr(jax.random.normal(k_u, (d, d)))
    v, _ = jnp.linalg.qr(jax.random.normal(k_v, (d, d)))
    s = jnp.array(list(SINGULAR) + [0.0] * (d - len(SINGULAR)))
    w_true = (u * s[None, :]) @ v.T
    x = jax.random.normal(k_x, (N_DLN, d))
    y = x @ w_true.T + SIGMA * jax.random.normal(k_e, (N_DLN, d))
    return x, y


def dln_problem(k_data, k_init):
    """The DLN's posterior (γ = 1, centred at the start) and its small initialisation
    (1e-5), shared with benchmarks/llc_over_training.py."""
    x, y = dln_data(k_data)
    params0 = [
        1e-5 * jax.random.normal(jax.random.fold_in(k_init, i), (b, a))
        for i, (a, b) in enumerate(itertools.pairwise(WIDTHS))
    ]
    post = tempered_posterior(
        zoo.linear_network_loglik(SIGMA),
        (x, y),
        gamma=1.0,
        center=params0,
        full_loss_fn=zoo.linear_network_full_loss(SIGMA),
    )
    return post, params0


def run_dln(key, cfg, out: Path) -> dict:
    k_data, k_init, k_train, k_llc = jax.random.split(key, 4)
    post, params0 = dln_problem(k_data, k_init)
    t0 = time.perf_counter()
    traj = train(
        k_train,
        post,
        params0,
        optax.sgd(0.01 * SIGMA**2),  # 0.01 on the squared error / 2
        batch_size=200,
        num_steps=cfg["train_steps"],
        checkpoint_every=cfg["every"],
        path=out / "dln_train",
        progress=False,
    )
    train_s = time.perf_counter() - t0
    floor = 0.5 * WIDTHS[-1] * math.log(2 * math.pi * SIGMA**2)
    res = llc_over_training(
        k_llc,
        post,
        traj.params,
        steps=traj.steps,
        num_steps=cfg["num_steps"],
        num_chains=cfg["chains"],
        refresh=cfg["refresh"],
        path=out / "dln_llc",
        plateau_floor=floor,
    )
    print(res, flush=True)
    prods = np.asarray(traj.params[1]) @ np.asarray(traj.params[0])
    svals = np.linalg.svd(prods, compute_uv=False)
    plateaus, reference = [], {}
    for j, p in enumerate(res.plateaus):
        rank = int(np.sum(svals[p.index] > RANK_THRESHOLD))
        true = coefficients.deep_linear_network(WIDTHS, rank)
        final = p.stop == len(res.steps) - 1
        rel = res.llc[p.index] / true.lam - 1
        plateaus.append(
            {
                "step": float(p.step),
                "start_step": p.start_step,
                "stop_step": p.stop_step,
                "rank": rank,
                "llc": float(res.llc[p.index]),
                "llc_sigma": float(res.llc_sigma[p.index]),
                "aoyagi_lambda": float(true.lam),
                "multiplicity": true.multiplicity,
                "rel_error": float(rel),
                # if the chains fall from this saddle all the way to the trained
                # minimum: λ(final) − nβ (L_n(w*) − L_n(trained))
                "saddle_prediction": float(
                    coefficients.deep_linear_network(WIDTHS, len(SINGULAR)).lam
                    - res.settings["n"]
                    * res.settings["beta"]
                    * (res.loss[p.index] - res.loss[-1])
                ),
                "final": final,
                "chains_fell_below_w_star": bool(res.below[p.index]),
                # cold chains (T_conf well below 1) had not equilibrated: at a
                # saddle a step small enough for its stiff directions is too small
                # to explore the rest in the run, so λ̂ there is no LLC either
                "t_conf": float(res.t_conf[p.index]),
                "equilibrated": bool(
                    res.t_conf[p.index] >= 1 - 0.03 - 2 * res.t_conf_se[p.index]
                ),
                "singular_values": svals[p.index].round(4).tolist(),
            }
        )
        reference[j] = (f"rank {rank}: λ = {float(true.lam):g}", float(true.lam))
    res.plot(
        out / "dln_llc.png",
        reference=reference,
        title=f"Deep linear network {WIDTHS}, rank-3 truth, SGD from 1e-5 init",
    )
    save_datatree(res.to_datatree(), out / "dln_llc_datatree")
    rows = [
        {
            "step": float(s),
            "loss": float(lo),
            "llc": float(l),
            "llc_mcse": float(m),
            "llc_sigma": float(sg),
            "below": bool(b),
            "step_size": float(e),
            "t_conf": float(t),
            "rank": int(np.sum(sv > RANK_THRESHOLD)),
        }
        for s, lo, l, m, sg, b, e, t, sv in zip(
            res.steps,
            res.loss,
            res.llc,
            res.llc_mcse,
            res.llc_sigma,
            res.below,
            res.step_size,
            res.t_conf,
            svals,
        )
    ]
    return {
        "checkpoints": rows,
        "plateaus": plateaus,
        "settings": res.settings,
        "sampler_compiles": res.compiles,
        "llc_seconds": res.seconds,
        "train_seconds": train_s,
        "refreshed": [r for r in res.refreshed if r],
    }


def digits_mlp_loglik(params, batch):
    x, y = batch
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


def run_mlp(key, cfg, out: Path) -> dict:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x / 16.0, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    k_init, k_train, k_llc = jax.random.split(key, 3)
    k1, k2 = jax.random.split(k_init)
    params0 = {
        "w1": jax.random.normal(k1, (64, 16)) / 8.0,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(k2, (16, 10)) / 4.0,
        "b2": jnp.zeros(10),
    }
    post = tempered_posterior(digits_mlp_loglik, (x, y), gamma=1.0, center=params0)
    traj = train(
        k_train,
        post,
        params0,
        optax.sgd(0.1),
        batch_size=64,
        num_steps=cfg["train_steps"],
        checkpoint_every=cfg["every"] * 2,
        path=out / "mlp_train",
        progress=False,
    )
    res = llc_over_training(
        k_llc,
        post,
        traj.params,
        steps=traj.steps,
        num_steps=max(cfg["num_steps"] // 3, 2000),
        num_chains=cfg["chains"],
        refresh=cfg["refresh"],
        path=out / "mlp_llc",
    )
    print(res, flush=True)
    res.plot(
        out / "mlp_llc.png",
        title="tanh MLP 64-16-10 on scikit-learn digits (n = 1797), SGD",
    )
    save_datatree(res.to_datatree(), out / "mlp_llc_datatree")
    return {
        "checkpoints": [
            {
                "step": float(s),
                "loss": float(lo),
                "llc": float(l),
                "llc_sigma": float(sg),
            }
            for s, lo, l, sg in zip(res.steps, res.loss, res.llc, res.llc_sigma)
        ],
        "plateaus": [p._asdict() for p in res.plateaus],
        "sampler_compiles": res.compiles,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CI smoke run, in out/quick")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-mlp", action="store_true")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = args.out or (HERE / "out" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    k_dln, k_mlp = jax.random.split(jax.random.key(args.seed))
    results = {"quick": args.quick, "seed": args.seed, **run_dln(k_dln, cfg, out)}
    write_json_atomic(out / "results.json", results)
    if not args.skip_mlp:
        results["mlp"] = run_mlp(k_mlp, cfg, out)
        write_json_atomic(out / "results.json", results)
    print(
        "\nplateau  steps            rank  λ(Aoyagi)   λ̂ ± σ            rel.   "
        "below w*  T_conf"
    )
    for p in results["plateaus"]:
        print(
            f"{'final' if p['final'] else '':>7}  {p['start_step']:>6g}-{p['stop_step']:<7g}"
            f"  {p['rank']:>4}  {p['aoyagi_lambda']:>9g}   {p['llc']:>9.4g} ± "
            f"{p['llc_sigma']:<7.2g} "
            + (
                "    n/a  "  # a saddle or cold chains: λ̂ is not an LLC there
                if p["chains_fell_below_w_star"] or not p["equilibrated"]
                else f"{100 * p['rel_error']:>+7.1f}%  "
            )
            + f"{'yes' if p['chains_fell_below_w_star'] else 'no':>8}  "
            + f"{p['t_conf']:.3f}{'' if p['equilibrated'] else ' (cold)'}"
        )
    print(
        f"sampler compiled {results['sampler_compiles']}× for "
        f"{len(results['checkpoints'])} checkpoints; results in {out}"
    )
    return results


if __name__ == "__main__":
    main()
