"""Training as a thermodynamic process: energy conservation of momentum optimisers and
learning-rate annealing against annealed Langevin dynamics.

Part 1 (energy drift). Momentum gradient descent integrates H = ½‖p‖² + L(w). Over
10⁴ full-batch steps, on a quadratic and on a deep-linear-network loss, the symplectic
leapfrog optimiser keeps H within an O(h²) band while explicit-Euler momentum drifts:
on a harmonic mode of frequency ω Euler multiplies the energy by exactly 1 + h²ω² per
step, and leapfrog conserves p² + ω²(1 − h²ω²/4)w², so H stays within a relative band
x/(1 − x), x = h²ω²/4 (Hairer, Lubich & Wanner 2006).

Part 2 (annealing). On a regular model, SGD whose learning rate decays geometrically
from η₀ to η₁ (fast and slow schedules) against SGLD at the matched β(η_t)
(Mandt, Hoffman & Blei 2017): the average excess energy U_t = E[n(L_n − L_n(w*))] of
both along the schedule, beside its quasi-static value d/(2β(η_t)), and the heat
released U_0 − U_T.

    python studies/annealing/run.py            # about 3 min on 2 cores
    python studies/annealing/run.py --quick    # about 1 min (CI)
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from slt_sampler import tempered_posterior
from slt_sampler.diagnostics._figure import save_figure
from slt_sampler.diagnostics._training_plots import plot_energy_drift
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.training import (
    euler_momentum,
    gradient_variance,
    leapfrog,
    loss_hessian,
    matched_beta,
    sgd_iterates,
    train,
)
from slt_sampler.zoo import models as zoo

HERE = Path(__file__).parent
STEPS = 10_000
A = np.array([0.25, 0.5, 1.0])


def _energy_error(post, w0, opt, every=10):
    tr = train(
        jax.random.key(0),
        post,
        w0,
        opt,
        batch_size=None,
        num_steps=STEPS,
        checkpoint_every=every,
    )
    return tr.steps, tr.hamiltonian - tr.hamiltonian[0]


def quadratic_panel() -> tuple[dict, dict]:
    a = jnp.asarray(A, jnp.float32)
    post = tempered_posterior(
        lambda w, b: -0.5 * jnp.sum(a * w**2) * jnp.ones(b.shape[0]),
        jnp.zeros((2, 1)),
    )
    h = 0.02
    steps, lf = _energy_error(post, jnp.ones(3), leapfrog(h))
    _, eu = _energy_error(post, jnp.ones(3), euler_momentum(h))
    euler_theory = (0.5 * A * ((1 + h**2 * A)[None] ** steps[:, None] - 1)).sum(1)
    x = h**2 * A.max() / 4
    band = 0.5 * A.sum() * x / (1 - x)
    panel = {
        "name": f"quadratic, ω² ∈ {A.tolist()}, h = {h}",
        "steps": steps,
        "curves": {"leapfrog": lf, "explicit Euler": eu},
        "theory": {"Euler theory H₀[(1+h²ω²)^t − 1]": euler_theory},
        "band": band,
    }
    row = {
        "h": h,
        "leapfrog_max_error": float(np.abs(lf).max()),
        "leapfrog_band_theory": band,
        "leapfrog_max_error_second_half": float(np.abs(lf[len(lf) // 2 :]).max()),
        "euler_final_error": float(eu[-1]),
        "euler_final_theory": float(euler_theory[-1]),
    }
    return panel, row


def dln_panel() -> tuple[dict, dict]:
    """DLN [3, 3, 3] plus 0.05/2 ‖w‖²: without it the energy shell is unbounded along
    the rescaling symmetry and the run drifts to where h·ω > 2."""
    model = zoo.deep_linear(jax.random.key(0), [3, 3, 3], 1, n=500)
    base = model.posterior

    def penalty(w):
        return 0.025 * sum(jnp.sum(x**2) for x in w)

    post = tempered_posterior(
        lambda w, b: base.loglik_fn(w, b) - penalty(w),
        base.data,
        full_loss_fn=lambda w, d: base.full_loss_fn(w, d) + penalty(w),
    )
    w0 = [w + 0.3 for w in model.w_star]
    h = 0.1 / math.sqrt(np.linalg.eigvalsh(loss_hessian(post, w0)).max())
    curves = {}
    for label, opt in (
        (f"leapfrog h = {h:.3f}", leapfrog(h)),
        ("leapfrog h/2", leapfrog(h / 2)),
        (f"explicit Euler h = {h:.3f}", euler_momentum(h)),
        ("explicit Euler h/10", euler_momentum(h / 10)),
    ):
        steps, curves[label] = _energy_error(post, w0, opt, every=50)
    lf, lf2, eu, eu10 = curves.values()
    row = {
        "h": h,
        "leapfrog_max_error": float(np.abs(lf).max()),
        "leapfrog_half_step_max_error": float(np.abs(lf2).max()),
        "leapfrog_order_ratio": float(np.abs(lf).max() / np.abs(lf2).max()),
        "leapfrog_max_error_second_half": float(np.abs(lf[len(lf) // 2 :]).max()),
        "euler_diverged_at_h": bool(not np.all(np.isfinite(eu))),
        "euler_h10_final_error": float(eu10[-1]),
    }
    panel = {
        "name": "DLN [3, 3, 3] + weight decay 0.05",
        "steps": steps,
        "curves": curves,
    }
    return panel, row


def _annealed_sgld(key, post, ws, etas, v, batch, chains):
    """Full-batch Langevin at β_t = β(η_t) with step ε_t = η_t / (nβ_t): the same
    drift per step as SGD and isotropic noise of SGD's size, sqrt(2ε_t) = η_t·sqrt(v/B).
    Returns the excess energy n(L_n − L_n(w*)) of every chain at every step."""
    n = post.n
    loss_star = post.full_loss_fn(ws, post.data)

    def excess(w):
        return n * (post.full_loss_fn(w, post.data) - loss_star)

    def step(w, inp):
        eta, k = inp
        grad = jax.grad(lambda u: post.full_loss_fn(u, post.data))(w)
        noise = jax.tree.map(
            lambda x, kk: jax.random.normal(kk, x.shape),
            w,
            list(jax.random.split(k, len(w))),
        )
        scale = eta * jnp.sqrt(v / batch)
        w = jax.tree.map(lambda x, g, z: x - eta * g + scale * z, w, grad, noise)
        return w, excess(w)

    def chain(k):
        keys = jax.random.split(k, len(etas))
        _, out = jax.lax.scan(step, ws, (jnp.asarray(etas, jnp.float32), keys))
        return out

    return np.asarray(jax.jit(jax.vmap(chain))(jax.random.split(key, chains)))


def annealing_part(quick: bool) -> tuple[dict, dict]:
    """Geometric learning-rate decay η₀ → η₁ (fast and slow) after an equilibration
    plateau at η₀, for SGD and for its Langevin twin at the matched β(η_t)."""
    d, n, batch = 4, 20_000, 10
    model = zoo.regular(jax.random.key(1), d, n=n)
    post, ws = model.posterior, model.w_star
    v = gradient_variance(post, ws)
    loss_star = float(post.full_loss_fn(ws, post.data))
    eta0, eta1, plateau = 0.1, 0.01, 300
    chains = 64 if quick else 256
    lengths = {"fast": 100, "slow": 2000 if quick else 5000}
    rows, curves = {}, {}
    for i, (name, length) in enumerate(lengths.items()):
        sched = optax.join_schedules(
            [
                optax.constant_schedule(eta0),
                optax.exponential_decay(eta0, length, eta1 / eta0, end_value=eta1),
            ],
            [plateau],
        )
        total = plateau + length + 200  # and 200 steps at η₁ after the ramp
        etas = np.array([float(sched(t)) for t in range(total)])
        it = sgd_iterates(
            jax.random.fold_in(jax.random.key(2), i),
            post,
            ws,
            optax.sgd(sched),
            batch_size=batch,
            num_chains=chains,
            num_steps=total,
        )
        sgd_u = n * (it.loss - loss_star)  # (chain, step), after each step
        sgld_u = _annealed_sgld(
            jax.random.fold_in(jax.random.key(3), i), post, ws, etas, v, batch, chains
        )
        beta_t = np.array(
            [matched_beta(e, batch, n, gradient_variance=v) for e in etas]
        )
        equilibrium = d / (2 * beta_t)
        t = np.arange(1, total + 1)
        curves[name] = (t, sgd_u, sgld_u, equilibrium, plateau, length)
        start, end, ramp_end = plateau - 1, total - 1, plateau + length - 1

        def se(u, k):
            return float(u[:, k].std(ddof=1) / np.sqrt(chains))

        def window(u, lo, hi):  # chain-and-time average over steps [lo, hi)
            return float(np.mean(u[..., lo:hi]))

        row = {
            "ramp_steps": length,
            "excess_energy_start_sgd": window(sgd_u, plateau - 100, plateau),
            "excess_energy_start_sgld": window(sgld_u, plateau - 100, plateau),
            "excess_energy_start_equilibrium": float(equilibrium[start]),
            "excess_energy_end_of_ramp_sgd": float(sgd_u[:, ramp_end].mean()),
            "excess_energy_end_of_ramp_se_sgd": se(sgd_u, ramp_end),
            "excess_energy_end_of_ramp_sgld": float(sgld_u[:, ramp_end].mean()),
            "excess_energy_end_of_ramp_se_sgld": se(sgld_u, ramp_end),
            "excess_energy_end_of_ramp_equilibrium": float(equilibrium[ramp_end]),
            "excess_energy_final_sgd": window(sgd_u, total - 50, total),
            "excess_energy_final_sgld": window(sgld_u, total - 50, total),
            "excess_energy_final_equilibrium": float(equilibrium[end]),
        }
        for kind in ("sgd", "sgld", "equilibrium"):
            row[f"heat_released_{kind}"] = (
                row[f"excess_energy_start_{kind}"] - row[f"excess_energy_final_{kind}"]
            )
        rows[name] = row
    return {
        "eta0": eta0,
        "eta1": eta1,
        "batch_size": batch,
        "chains": chains,
        "gradient_variance": v,
        **rows,
    }, curves


def _plot_annealing(curves: dict, path: Path) -> None:
    fig = Figure(figsize=(6 * len(curves), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(curves)))
    for ax, (name, (t, sgd_u, sgld_u, eq, plateau, length)) in zip(
        axes, curves.items()
    ):
        for u, label in (
            (sgd_u, "SGD, lr annealed"),
            (sgld_u, "Langevin at matched β(η_t)"),
        ):
            m = u.mean(0)
            se = u.std(0, ddof=1) / np.sqrt(u.shape[0])
            ax.plot(t, m, label=label + " (mean ± 2 SE)")
            ax.fill_between(t, m - 2 * se, m + 2 * se, alpha=0.3)
        ax.plot(t, eq, "k--", label="quasi-static d/(2β(η_t))")
        ax.axvspan(plateau, plateau + length, color="0.92", label="ramp η₀ → η₁")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("excess energy E[n(L_n − L_n(w*))]  (nats)")
        ax.set_title(f"{name} cooling: ramp of {length} steps", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(
        "Learning-rate annealing vs annealed Langevin dynamics (regular, d = 4)"
    )
    save_figure(fig, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (~1 min)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    args = parser.parse_args(argv)
    out = args.out or HERE / "out" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    results, t0 = {"quick": args.quick}, time.perf_counter()
    quad, results["quadratic"] = quadratic_panel()
    write_json_atomic(out / "results.json", results)
    dln, results["dln"] = dln_panel()
    write_json_atomic(out / "results.json", results)
    plot_energy_drift([quad, dln], path=out / "energy_drift.png")
    results["annealing"], curves = annealing_part(args.quick)
    _plot_annealing(curves, out / "annealing_energy.png")
    results["seconds"] = time.perf_counter() - t0
    write_json_atomic(out / "results.json", results)
    _summary(results)
    return results


def _summary(r: dict) -> None:
    q, d = r["quadratic"], r["dln"]
    print("Energy error over 10^4 full-batch steps")
    print(
        f"  quadratic: leapfrog max |ΔH| {q['leapfrog_max_error']:.2e} (theory band "
        f"{q['leapfrog_band_theory']:.2e}); Euler final {q['euler_final_error']:.3g} "
        f"(theory {q['euler_final_theory']:.3g})"
    )
    print(
        f"  DLN: leapfrog max |ΔH| {d['leapfrog_max_error']:.2e}, at h/2 "
        f"{d['leapfrog_half_step_max_error']:.2e} (ratio {d['leapfrog_order_ratio']:.2f}, "
        f"theory 4); Euler at h diverged: {d['euler_diverged_at_h']}; at h/10 final "
        f"{d['euler_h10_final_error']:.3g}"
    )
    a = r["annealing"]
    print(f"Annealing η {a['eta0']} → {a['eta1']} (excess energy n(L_n − L_n*), nats)")
    for name in ("fast", "slow"):
        x = a[name]
        print(
            f"  {name:>4} ({x['ramp_steps']} steps): end of ramp SGD "
            f"{x['excess_energy_end_of_ramp_sgd']:.3f}, Langevin "
            f"{x['excess_energy_end_of_ramp_sgld']:.3f}, quasi-static "
            f"{x['excess_energy_end_of_ramp_equilibrium']:.3f}; heat released SGD "
            f"{x['heat_released_sgd']:.3f}, Langevin {x['heat_released_sgld']:.3f}, "
            f"quasi-static {x['heat_released_equilibrium']:.3f}"
        )


if __name__ == "__main__":
    main()
