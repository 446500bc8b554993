"""Equilibrium propagation vs backprop on scikit-learn's digits.

Question: does EP (RestrictedHopfield and ConditionalGaussian energies) match a
backprop MLP of the same size in accuracy and wall time, and does its update align
with the true gradient as the nudge shrinks?

Run:  python studies/ep_vs_backprop/run.py [--quick] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from tqdm.auto import tqdm

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import ep

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------
# EP configurations (the recipes the slow tests check)
# ----------------------------------------------------------------------------------
def _layer_sgd(rates):
    labels = tuple({"w": str(i), "b": str(i)} for i in range(len(rates)))
    return optax.multi_transform(
        {str(i): optax.sgd(r) for i, r in enumerate(rates)}, labels
    )


def ep_configs(epochs):
    rh = {
        "variant": "centered",
        "nudge": 0.5,
        "step_size": 1.0,
        "schedule": "alternating",
        "max_steps": 500,
        "num_epochs": epochs,
    }
    cg = {
        "variant": "symmetric",
        "nudge": 0.1,
        "step_size": 0.5,
        "schedule": "alternating",
        "max_steps": 500,
        "init_mode": "fast",
        "num_epochs": epochs,
    }
    return {
        "EP RestrictedHopfield-64": (
            ep.RestrictedHopfield((64, 64, 10)),
            _layer_sgd((0.1, 0.05)),
            ep.EPConfig(**rh),
        ),
        "EP RestrictedHopfield-128": (
            ep.RestrictedHopfield((64, 128, 10)),
            _layer_sgd((0.1, 0.05)),
            ep.EPConfig(**rh),
        ),
        "EP RestrictedHopfield-64-64": (
            ep.RestrictedHopfield((64, 64, 64, 10)),
            _layer_sgd((0.1, 0.05, 0.02)),
            ep.EPConfig(**rh),
        ),
        "EP ConditionalGaussian-64": (
            ep.ConditionalGaussian((64, 64, 10)),
            optax.sgd(0.1, momentum=0.9),
            ep.EPConfig(**cg),
        ),
    }


# ----------------------------------------------------------------------------------
# Backprop baseline: tanh MLP of the same size, softmax cross-entropy, Adam
# ----------------------------------------------------------------------------------
def _mlp(params, x):
    h = jnp.tanh(x @ params[0]["w"] + params[0]["b"][None, :])
    return h @ params[1]["w"] + params[1]["b"][None, :]


def backprop_run(rng_key, data, hidden, epochs, batch_size=20, lr=1e-3):
    k_init, k_run = jax.random.split(rng_key)
    params = ep.glorot_params(k_init, (64, hidden, 10))
    opt = optax.adam(lr)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    xt, yt = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    nb = x.shape[0] // batch_size

    def loss(p, xb, yb):
        return jnp.mean(
            optax.softmax_cross_entropy_with_integer_labels(_mlp(p, xb), yb)
        )

    @jax.jit
    def epoch(key, p, s):
        perm = jax.random.permutation(key, x.shape[0])[: nb * batch_size]
        xb = x[perm].reshape(nb, batch_size, -1)
        yb = y[perm].reshape(nb, batch_size)

        def body(carry, inp):
            p, s = carry
            g = jax.grad(loss)(p, *inp)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(body, (p, s), (xb, yb))
        return p, s, jnp.mean(jnp.argmax(_mlp(p, xt), -1) == yt)

    state = opt.init(params)
    keys = jax.random.split(k_run, epochs)
    compiled = epoch.lower(keys[0], params, state).compile()  # time excludes compile
    t0 = time.perf_counter()
    accs = []
    for key in keys:
        params, state, acc = compiled(key, params, state)
        accs.append(float(acc))
    return np.asarray(accs), time.perf_counter() - t0


# ----------------------------------------------------------------------------------
# Gradient alignment as the nudge shrinks
# ----------------------------------------------------------------------------------
def _flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(tree)])


def _cos(a, b):
    a, b = _flat(a), _flat(b)
    return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def _layer_nrmse(est, ref):
    out = []
    for e, r in zip(jax.tree.leaves(est), jax.tree.leaves(ref)):
        out.append(float(jnp.sqrt(jnp.mean((e - r) ** 2)) / jnp.sqrt(jnp.mean(r**2))))
    return out


def gradient_alignment(rng_key, data, name, spec, nudges, warm_epochs):
    net, opt, cfg = spec
    params = net.init_params_fn(rng_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        params = ep.fit(
            rng_key, params, net, opt, data, cfg._replace(num_epochs=warm_epochs)
        ).state.params
    x = jnp.asarray(data.x_train[:64])
    t = jax.nn.one_hot(data.y_train[:64], 10)
    layers0 = ep.initial_layers(net, params, x, cfg.init_mode)
    ref, _ = jax.jit(
        lambda p: ep.reference_gradient(
            p,
            x,
            t,
            layers0,
            energy=net,
            step_size=cfg.step_size,
            tol=1e-7,
            max_steps=3000,
            schedule=cfg.schedule,
        )
    )(params)
    rows = []
    for variant in ("one_sided", "symmetric"):
        fn = jax.jit(
            ep.build_gradient_fn(
                net,
                variant=variant,
                init_mode=cfg.init_mode,
                max_steps=3000,
                schedule=cfg.schedule,
            )
        )
        for nudge in nudges:
            tol = min(1e-4, 1e-2 * nudge)  # settle well below the nudge's effect
            g, info = fn(jax.random.key(0), params, x, t, nudge, cfg.step_size, tol)
            rows.append(
                {
                    "variant": variant,
                    "nudge": nudge,
                    "tol": tol,
                    "cos": _cos(g, ref),
                    "layer_nrmse": _layer_nrmse(g, ref),
                    "converged": bool(info.converged),
                }
            )
    return rows


# ----------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------
def _plot(out, acc, cosines, walls):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    for name, curves in acc.items():
        c = np.asarray(curves)
        ep_ax = np.arange(1, c.shape[1] + 1)
        ax.plot(ep_ax, np.median(c, 0), label=name)
        ax.fill_between(ep_ax, c.min(0), c.max(0), alpha=0.2)
    ax.set(
        xlabel="epoch",
        ylabel="test accuracy",
        title="digits: median, min-max band",
        ylim=(0.85, 1.0),
    )
    ax.legend(fontsize=7)
    ax = axes[1]
    for name, rows in cosines.items():
        for variant, ls in (("one_sided", "-"), ("symmetric", "--")):
            r = [row for row in rows if row["variant"] == variant]
            ax.plot(
                [row["nudge"] for row in r],
                [1 - row["cos"] for row in r],
                ls,
                marker="o",
                label=f"{name} {variant}",
            )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="nudge",
        ylabel="1 - cos(EP, true grad)",
        title="gradient alignment (reference: implicit diff.)",
    )
    ax.legend(fontsize=7)
    ax = axes[2]
    names = list(walls)
    ax.barh(names, [np.median(walls[n]) for n in names])
    ax.set(xlabel="median wall time per run (s, excl. compile)", title="wall time")
    fig.tight_layout()
    fig.savefig(out / "ep_vs_backprop.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="CI smoke run (< 90 s)")
    p.add_argument("--out", type=Path, default=HERE / "out")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    epochs, n_seeds = (4, 1) if args.quick else (30, 5)
    nudges = [0.5, 0.1, 0.01] if args.quick else [1.0, 0.5, 0.2, 0.1, 0.05, 0.01, 0.001]
    data = ep.load_digits_split()
    configs = ep_configs(epochs)
    if args.quick:
        configs = {
            k: v
            for k, v in configs.items()
            if k in ("EP RestrictedHopfield-64", "EP ConditionalGaussian-64")
        }
    acc, walls, compile_times, diag = {}, {}, {}, {}
    for name, (net, opt, cfg) in configs.items():
        acc[name], walls[name], compile_times[name], diag[name] = [], [], [], []
        for s in tqdm(range(n_seeds), desc=name):
            key = jax.random.key(args.seed * 1000 + s)
            k_init, k_fit = jax.random.split(key)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                res = ep.fit(k_fit, net.init_params_fn(k_init), net, opt, data, cfg)
            h = res.history
            acc[name].append(h.test_accuracy.tolist())
            walls[name].append(res.wall_time - res.compile_time)
            compile_times[name].append(res.compile_time)
            diag[name].append(
                {
                    "converged_fraction": float(h.converged_fraction.min()),
                    "max_free_energy_increase": float(h.max_energy_increase.max()),
                    "max_abs_state": float(h.max_abs_state.max()),
                    "mean_free_steps": float(h.mean_free_steps.mean()),
                    "mean_nudged_steps": float(h.mean_nudged_steps.mean()),
                    "warnings": len(caught),
                }
            )
    for hidden in (64,) if args.quick else (64, 128):
        name = f"backprop MLP-{hidden} (tanh, CE, Adam)"
        acc[name], walls[name] = [], []
        for s in tqdm(range(n_seeds), desc=name):
            a, w = backprop_run(
                jax.random.key(args.seed * 1000 + s), data, hidden, epochs
            )
            acc[name].append(a.tolist())
            walls[name].append(w)
    cos_specs = {
        k: v
        for k, v in configs.items()
        if k in ("EP RestrictedHopfield-64", "EP ConditionalGaussian-64")
    }
    cosines = {
        name: gradient_alignment(
            jax.random.key(args.seed), data, name, spec, nudges, 1 if args.quick else 2
        )
        for name, spec in tqdm(cos_specs.items(), desc="gradient alignment")
    }
    summary = {
        name: {
            "best": [max(c) for c in curves],
            "median_best": float(np.median([max(c) for c in curves])),
            "min_best": float(np.min([max(c) for c in curves])),
            "median_wall_s": float(np.median(walls[name])),
        }
        for name, curves in acc.items()
    }
    results = {
        "seed": args.seed,
        "quick": args.quick,
        "epochs": epochs,
        "n_seeds": n_seeds,
        "summary": summary,
        "accuracy": acc,
        "wall_time_s": walls,
        "compile_time_s": compile_times,
        "diagnostics": diag,
        "cosines": cosines,
    }
    write_json_atomic(args.out / "results.json", results, indent=1)
    _plot(args.out, acc, cosines, walls)
    for name, s in summary.items():
        print(
            f"{name:38s} median best {s['median_best']:.4f}  min {s['min_best']:.4f}"
            f"  wall {s['median_wall_s']:.2f}s"
        )
    for name, rows in cosines.items():
        for r in rows:
            print(
                f"{name:28s} {r['variant']:9s} nudge {r['nudge']:<6g} cos {r['cos']:.6f}"
            )
    print(f"wrote {args.out / 'results.json'} and ep_vs_backprop.png")


if __name__ == "__main__":
    main()
