"""Reversible networks: memory, time, drift and accuracy against depth.

Compares plain backprop, per-block checkpointing (remat) and reversible backprop
(``slt_sampler.thermo.reversible``) on one JAX backend. See README.md.

    python studies/reversible_memory/run.py --quick      # CI, < 90 s
    python studies/reversible_memory/run.py              # full study
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import reversible as rev

MIB = 2.0**20


def _depth_axis(ax, depths):
    ax.set_xscale("log")
    ax.set_xticks(sorted(depths))
    ax.set_xticklabels([str(d) for d in sorted(depths)])
    ax.minorticks_off()
    ax.set_xlabel("depth (blocks)")


METHODS = ("plain", "checkpoint", "reversible", "reversible_k16")


def _stack(method, coupling):
    if method == "reversible_k16":
        return rev.reversible_stack(coupling, checkpoint_every=16)
    return rev.reversible_stack(coupling, backprop=method)


def _loss_fn(stack):
    def loss(params, x):
        y, logdet = rev.forward(stack, params, x)
        return jnp.mean(jnp.sin(y)) + jnp.mean(logdet)

    return loss


def _rel(a, b):
    la = [np.asarray(v, np.float64) for v in jax.tree.leaves(a)]
    lb = [np.asarray(v, np.float64) for v in jax.tree.leaves(b)]
    num = sum(np.sum((u - v) ** 2) for u, v in zip(la, lb))
    return float(np.sqrt(num / sum(np.sum(v**2) for v in lb)))


# ------------------------------------------------------------------ memory / time
def memory_and_time(seed, depths, dims, reps):
    """XLA temp memory (compile only) and wall time per grad step, per method."""
    dim, hidden, batch = dims
    coupling = rev.additive_coupling(rev.mlp_residual())
    rows = []
    for depth in tqdm(depths, desc="memory/time vs depth"):
        params = rev.init_coupling_mlp(jax.random.key(seed), depth, dim, hidden)
        x = jax.random.normal(jax.random.key(seed + 1), (batch, dim))
        for method in METHODS:
            if method == "reversible_k16" and depth % 16:
                continue
            grad = jax.grad(_loss_fn(_stack(method, coupling)))
            cost = rev.compiled_cost(grad, params, x)
            step = jax.jit(grad)
            jax.block_until_ready(step(params, x))
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                jax.block_until_ready(step(params, x))
                times.append(time.perf_counter() - start)
            rows.append(
                {
                    "depth": depth,
                    "method": method,
                    "temp_mib": cost.temp_bytes / MIB,
                    "param_mib": cost.argument_bytes / MIB,
                    "compile_s": cost.compile_seconds,
                    "step_ms": 1e3 * float(np.median(times)),
                }
            )
    return rows


# ----------------------------------------------------------------- drift vs depth
def drift(seed, depths, scales, dims):
    """Reconstruction and gradient error of reversible vs autodiff (float32)."""
    dim, hidden, batch = dims
    coupling = rev.additive_coupling(rev.mlp_residual())
    # per-block remat equals plain autodiff here and fits in memory at depth 1024
    ref_grad = jax.jit(
        jax.grad(_loss_fn(rev.reversible_stack(coupling, backprop="checkpoint")))
    )
    rev_grad = jax.jit(jax.grad(_loss_fn(rev.reversible_stack(coupling))))
    recon = jax.jit(
        lambda p, v: rev.reconstruction_error(
            rev.reversible_stack(coupling), p, v, threshold=np.inf
        )
    )
    rows = []
    grid = [(s, d) for s in scales for d in depths]
    for scale, depth in tqdm(grid, desc="drift vs depth x scale"):
        # scale None is the library default, 1/sqrt(depth)
        params = rev.init_coupling_mlp(
            jax.random.key(seed), depth, dim, hidden, scale=scale
        )
        x = jax.random.normal(jax.random.key(seed + 1), (batch, dim))
        y, _ = rev.forward(rev.reversible_stack(coupling), params, x)
        info = recon(params, x)
        rows.append(
            {
                "scale": scale,
                "branch_scale": rev.default_residual_scale(depth)
                if scale is None
                else scale,
                "depth": depth,
                "recon_rel": float(info.relative_error),
                "grad_rel": _rel(rev_grad(params, x), ref_grad(params, x)),
                "norm_ratio": float(jnp.linalg.norm(y) / jnp.linalg.norm(x)),
            }
        )
    return rows


# ------------------------------------------------------------------------ digits
def _digits(seed):
    data = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        data.data / 16.0,
        data.target,
        test_size=0.2,
        stratify=data.target,
        random_state=0,
    )
    return (
        jnp.asarray(xtr, jnp.float32),
        jnp.asarray(ytr),
        jnp.asarray(xte, jnp.float32),
        jnp.asarray(yte),
    )


def _init_net(key, kind, depth, width, hidden):
    k_in, k_body, k_out = jax.random.split(key, 3)
    net = {
        "w_in": jax.random.normal(k_in, (64, width)) / 8.0,
        "w_out": jax.random.normal(k_out, (width, 10)) / jnp.sqrt(width),
        "b_out": jnp.zeros((10,)),
    }
    if kind == "reversible":
        net["body"] = rev.init_coupling_mlp(k_body, depth, width, hidden)
    else:  # plain residual MLP: h <- h + W2 tanh(W1 h), same widths and parameter count
        # same init rule as init_coupling_mlp's default branch scale
        k1, k2 = jax.random.split(k_body)
        scale = rev.default_residual_scale(depth)
        net["body"] = {
            "w1": jax.random.normal(k1, (depth, width, hidden)) / jnp.sqrt(width),
            "b1": jnp.zeros((depth, hidden)),
            "w2": jax.random.normal(k2, (depth, hidden, width))
            * (scale / jnp.sqrt(hidden)),
            "b2": jnp.zeros((depth, width)),
        }
    return net


def _apply_net(kind, net, x):
    h = x @ net["w_in"]
    if kind == "reversible":
        stack = rev.reversible_stack(rev.additive_coupling(rev.mlp_residual()))
        h, _ = rev.forward(stack, net["body"], h)
    else:
        branch = rev.mlp_residual()
        h, _ = jax.lax.scan(lambda c, p: (c + branch(p, c, None), None), h, net["body"])
    return h @ net["w_out"] + net["b_out"]


def train_digits(seed, kind, depth, width, hidden, epochs, batch=64, lr=1e-3):
    xtr, ytr, xte, yte = _digits(seed)
    key = jax.random.key(seed)
    net = _init_net(key, kind, depth, width, hidden)
    n_batches = xtr.shape[0] // batch
    # cosine decay to 0: the final-epoch accuracy is then not a snapshot of lr noise
    opt = optax.adam(optax.cosine_decay_schedule(lr, epochs * n_batches))

    def loss(net, xb, yb):
        logits = _apply_net(kind, net, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def epoch(carry, key):
        net, state = carry
        perm = jax.random.permutation(key, xtr.shape[0])[: n_batches * batch]
        idx = perm.reshape(n_batches, batch)

        def step(c, i):
            n, s = c
            value, g = jax.value_and_grad(loss)(n, xtr[i], ytr[i])
            updates, s = opt.update(g, s, n)
            return (optax.apply_updates(n, updates), s), value

        (net, state), losses = jax.lax.scan(step, (net, state), idx)
        acc = jnp.mean(jnp.argmax(_apply_net(kind, net, xte), -1) == yte)
        return (net, state), (losses.mean(), acc)

    carry = (net, opt.init(net))
    accs = []
    for k in jax.random.split(jax.random.fold_in(key, 1), epochs):
        carry, (_, acc) = epoch(carry, k)
        accs.append(float(acc))
    return accs


def digits_parity(seeds, depth, width, hidden, epochs):
    out = {"reversible": [], "plain_residual": []}
    for seed in tqdm(seeds, desc="digits (reversible vs plain residual)"):
        out["reversible"].append(
            train_digits(seed, "reversible", depth, width, hidden, epochs)
        )
        out["plain_residual"].append(
            train_digits(seed, "plain", depth, width, hidden, epochs)
        )
    final = {k: [100 * a[-1] for a in v] for k, v in out.items()}
    diff = np.asarray(final["plain_residual"]) - np.asarray(final["reversible"])
    gap_se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
    last5 = {
        k: float(np.mean([100 * np.mean(a[-5:]) for a in v])) for k, v in out.items()
    }
    return {
        "curves": out,
        "final_acc_pct": final,
        "mean_final_pct": {k: float(np.mean(v)) for k, v in final.items()},
        "gap_pct": float(
            np.mean(final["plain_residual"]) - np.mean(final["reversible"])
        ),
        "gap_se_pct": gap_se,
        "mean_last5_epochs_pct": last5,
        "gap_last5_pct": last5["plain_residual"] - last5["reversible"],
    }


# --------------------------------------------------------------------------- plots
def plot_memory(rows, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method in METHODS:
        r = [row for row in rows if row["method"] == method]
        if not r:
            continue
        d = [row["depth"] for row in r]
        axes[0].plot(d, [row["temp_mib"] for row in r], "o-", label=method)
        axes[1].plot(d, [row["step_ms"] for row in r], "o-", label=method)
    params = {row["depth"]: row["param_mib"] for row in rows}
    axes[0].plot(
        list(params), list(params.values()), "k:", label="parameters (excluded)"
    )
    titles = [
        "training temp memory (XLA, MiB; params excluded)",
        "time per grad step (ms, wall clock)",
    ]
    for ax, title in zip(axes, titles):
        ax.set(yscale="log", title=title)
        _depth_axis(ax, params)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "memory_time_vs_depth.png", dpi=120)
    plt.close(fig)


def plot_drift(rows, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    scales = {row["scale"] for row in rows}
    for scale in [None, *sorted(scales - {None})] if None in scales else sorted(scales):
        r = [row for row in rows if row["scale"] == scale]
        d = [row["depth"] for row in r]
        label = "default 1/sqrt(depth)" if scale is None else f"scale {scale}"
        style = "ks-" if scale is None else "o-"
        axes[0].plot(d, [max(row["recon_rel"], 1e-12) for row in r], style, label=label)
        axes[1].plot(d, [max(row["grad_rel"], 1e-12) for row in r], style, label=label)
    targets = [
        (1e-4, "1e-4 target (depth 64, default init)"),
        (1e-5, "1e-5 target (depth 1024, scale <= 0.1)"),
    ]
    for value, label in targets:
        axes[1].axhline(value, color="gray", ls=":", lw=1)
        axes[1].text(
            min(row["depth"] for row in rows),
            value * 1.3,
            label,
            fontsize=7,
            color="gray",
        )
    axes[0].axhline(1e-4, color="gray", ls=":", lw=1)
    axes[0].text(
        min(row["depth"] for row in rows),
        1.3e-4,
        "1e-4 target (depth 64, default init)",
        fontsize=7,
        color="gray",
    )
    axes[0].set_title("reconstruction rel. error of the input (float32)")
    axes[1].set_title("gradient rel. error vs autodiff (float32)")
    for ax in axes:
        ax.set(yscale="log")
        _depth_axis(ax, {row["depth"] for row in rows})
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "drift_vs_depth.png", dpi=120)
    plt.close(fig)


def plot_digits(res, out):
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, color in [("reversible", "C0"), ("plain_residual", "C1")]:
        curves = 100 * np.asarray(res["curves"][kind])
        for c in curves:
            ax.plot(np.arange(1, len(c) + 1), c, color=color, alpha=0.3)
        ax.plot(
            np.arange(1, curves.shape[1] + 1),
            curves.mean(0),
            color=color,
            lw=2,
            label=f"{kind}: final {res['mean_final_pct'][kind]:.2f}%",
        )
    ax.set(
        xlabel="epoch",
        ylabel="test accuracy (%)",
        ylim=(80, 100),
        title="digits, depth-16 MLPs (thin: seeds, thick: mean)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "digits_accuracy.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small CI configuration")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore", rev.ReconstructionWarning)
    if args.quick:
        cfg = {
            "mem_depths": [4, 16, 64],
            "mem_dims": (128, 512, 256),
            "reps": 1,
            "drift_depths": [16, 64, 256],
            "scales": [None, 0.1, 1.0, 3.0],
            "drift_dims": (64, 256, 32),
            "seeds": [args.seed],
            "epochs": 10,
        }
    else:
        cfg = {
            "mem_depths": [4, 16, 64, 256],
            "mem_dims": (128, 512, 256),
            "reps": 5,
            "drift_depths": [16, 64, 256, 1024],
            "scales": [None, 0.1, 0.3, 1.0, 3.0],
            "drift_dims": (128, 512, 64),
            "seeds": [args.seed + i for i in range(10)],
            "epochs": 30,
        }
    start = time.perf_counter()
    results = {
        "config": {
            **cfg,
            "quick": args.quick,
            "seed": args.seed,
            "backend": jax.default_backend(),
        },
        "complete": False,
    }

    def save():  # after every stage, so an interrupted run keeps finished stages
        results["wall_seconds"] = time.perf_counter() - start
        write_json_atomic(args.out / "results.json", results, indent=1)

    mem = results["memory_time"] = memory_and_time(
        args.seed, cfg["mem_depths"], cfg["mem_dims"], cfg["reps"]
    )
    save()
    plot_memory(mem, args.out)
    dr = results["drift"] = drift(
        args.seed, cfg["drift_depths"], cfg["scales"], cfg["drift_dims"]
    )
    save()
    plot_drift(dr, args.out)
    dig = results["digits"] = digits_parity(
        cfg["seeds"], depth=16, width=64, hidden=64, epochs=cfg["epochs"]
    )
    results["complete"] = True
    save()
    plot_digits(dig, args.out)
    for row in mem:
        print("memory/time", row)
    for row in dr:
        print("drift", row)
    print("digits final acc % per seed:", dig["final_acc_pct"])
    print("digits mean final %:", dig["mean_final_pct"])
    print("digits gap (plain - rev) %:", dig["gap_pct"], "+-", dig["gap_se_pct"])
    print("digits mean of last 5 epochs %:", dig["mean_last5_epochs_pct"])
    print(f"wrote {args.out} in {results['wall_seconds']:.1f} s")


if __name__ == "__main__":
    main()
