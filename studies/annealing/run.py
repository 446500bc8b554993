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

Part 3 (quasi-static thermodynamics along the schedule). On a conjugate regression
with a normalised prior (same d, n, B), one β ladder (MALA, thermodynamic-integration
rungs from β = 0 plus the schedule's stages β_k = β(η_k)) gives the dictionary's
average energy U(β_k), entropy S(β_k) (F from thermodynamic integration on the same
ladder) and the heat released between consecutive stages, Q_k = −Δ E_β[nK_n] (the
loss is the energy, the prior the reference measure; Sekimoto 2010), all beside their
closed forms; SGD's and Langevin's heat released per stage on the fast and slow ramps
beside it, the excess over quasi-static being the heat not yet released (dissipated
later, at η₁).

    python studies/annealing/run.py            # about 3 min on 2 cores
    python studies/annealing/run.py --quick    # about 1.5 min (CI)
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
from matplotlib.figure import Figure

from slt_sampler import MALA, tempered_posterior
from slt_sampler.diagnostics._figure import save_figure
from slt_sampler.diagnostics._training_plots import plot_energy_drift
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.estimators.energy import average_energy, entropy
from slt_sampler.estimators.free_energy import beta_ladder, thermodynamic_integration
from slt_sampler.posterior.base import full_loss, log_prior
from slt_sampler.samplers.ladder import sample_ladder
from slt_sampler.training import (
    euler_momentum,
    gradient_variance,
    leapfrog,
    loss_hessian,
    matched_beta,
    sgd_iterates,
    train,
)
from slt_sampler.zoo import conjugate
from slt_sampler.zoo import models as zoo

HERE = Path(__file__).parent
STEPS = 10_000
A = np.array([0.25, 0.5, 1.0])
STAGES = 5  # stages of the ramp at which heat and the quasi-static U, S are read


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
        row["stages"] = _stage_heat(sgd_u, sgld_u, beta_t, plateau, length, d)
        rows[name] = row
    return {
        "eta0": eta0,
        "eta1": eta1,
        "batch_size": batch,
        "chains": chains,
        "gradient_variance": v,
        **rows,
    }, curves


def _stage_heat(sgd_u, sgld_u, beta_t, plateau, length, d, half=5) -> dict:
    """Heat released per stage of the ramp, Q_k = ⟨E⟩(t_k) − ⟨E⟩(t_{k+1}) with
    E = n(L_n − L_n(w*)) averaged over the chains and a window of 2·half + 1 steps
    centred on t_k = plateau + k·length/K, the stages at η_k = η₀(η₁/η₀)^{k/K}; the
    last stage is the relaxation at η₁ after the ramp (to the final 50 steps). Errors
    from the per-chain differences (paired). Quasi-static: (d/2)(T_k − T_{k+1})."""
    total = sgd_u.shape[1]
    idx = [plateau + k * length // STAGES - 1 for k in range(STAGES + 1)]

    def level(u, i):  # (chain,)
        return u[:, max(i - half, 0) : i + half + 1].mean(1)

    out = {"temperature": [float(1 / beta_t[i]) for i in idx]}
    for kind, u in (("sgd", sgd_u), ("sgld", sgld_u)):
        lv = [level(u, i) for i in idx] + [u[:, total - 50 :].mean(1)]
        q = [a - b for a, b in itertools.pairwise(lv)]
        out[f"heat_{kind}"] = [float(x.mean()) for x in q]
        out[f"heat_{kind}_se"] = [float(x.std(ddof=1) / np.sqrt(x.size)) for x in q]
        out[f"excess_over_quasi_static_{kind}"] = [
            float(lv[k].mean() - d / (2 * beta_t[i])) for k, i in enumerate(idx)
        ]
    temps = out["temperature"] + [float(1 / beta_t[-1])]
    out["heat_quasi_static"] = [d / 2 * (a - b) for a, b in itertools.pairwise(temps)]
    return out


def quasi_static_part(quick: bool, eta0: float, eta1: float, batch: int) -> dict:
    """U(β), S(β) and the heat released per stage along the schedule, measured on one
    MALA β ladder of a conjugate regression (exact U, S, F) against closed forms.

    Stages β_k = β(η_k) (matched temperature) with η_k = η₀(η₁/η₀)^{k/K}; the ladder
    adds thermodynamic-integration rungs from β = 0 (prior draws at β = 10⁻⁶/n) so
    that F_n(β_k), hence S, comes from the same run."""
    d, n = 4, 20_000
    model = conjugate.conjugate_regression(jax.random.key(4), d, n=n)
    post = model.posterior
    w_ls = np.linalg.solve(model.gram, model.xty)
    v = gradient_variance(post, jnp.asarray(w_ls, jnp.float32))
    etas = eta0 * (eta1 / eta0) ** (np.arange(STAGES + 1) / STAGES)
    stage_betas = np.array(
        [matched_beta(e, batch, n, gradient_variance=v) for e in etas]
    )
    ti = beta_ladder(12 if quick else 20, beta_min=0.1 / n, beta_max=stage_betas.max())
    ladder = np.union1d(ti, stage_betas)
    rungs = np.maximum(ladder, 1e-6 / n)
    # MALA step ε = 0.4 × the posterior variance 1/(nβ + 1) per coordinate
    samplers = [MALA(jnp.float32(0.4 / (n * b + 1.0))) for b in rungs]
    chains, steps = (4, 1500) if quick else (8, 6000)

    def observe(w):
        return {
            "n_loss": n * full_loss(post, w),
            "neg_log_prior": -log_prior(post, w),
        }

    k_warm, k_run = jax.random.split(jax.random.key(5))
    common = {"betas": rungs, "num_chains": chains, "progress": False}
    warm = sample_ladder(
        k_warm, samplers, post, jnp.asarray(w_ls, jnp.float32), num_steps=500, **common
    )
    res = sample_ladder(
        k_run,
        samplers,
        post,
        warm.final_state.position,
        num_steps=steps,
        chains_axis=True,
        observe=observe,
        **common,
    )
    nl = np.asarray(res.observations["n_loss"], np.float64)
    nlp = np.asarray(res.observations["neg_log_prior"], np.float64)
    ex = [conjugate.conjugate_exact(model, float(b)) for b in stage_betas]
    n_sn = ex[0].n_empirical_entropy
    rows, u_est, s_est = [], [], []
    for b, e in zip(stage_betas, ex):
        k = int(np.searchsorted(ladder, b))
        u = average_energy(nl[k], nlp[k], b, n_empirical_entropy=n_sn)
        f = thermodynamic_integration(ladder[: k + 1], nl[: k + 1])
        s = entropy(nl[k], nlp[k], b, f.free_energy, f.sigma)
        u_est.append(u)
        s_est.append(s)
        for q, est, sig, exact in (
            ("average_energy", u.estimate, u.error, e.average_energy),
            ("entropy", s.estimate, s.error, e.entropy),
            ("free_energy", f.free_energy, f.sigma, e.free_energy),
        ):
            rows.append(_row(q, b, est, sig, exact))
    # heat released between stages: Q_k = E_{β_k}[nL_n] − E_{β_{k+1}}[nL_n]
    idx = [int(np.searchsorted(ladder, b)) for b in stage_betas]
    mean = [nl[k].mean() for k in idx]
    mcse = [average_energy(nl[k], 0 * nlp[k], 1.0).error for k in idx]
    e_exact, _ = conjugate.energy_moments(model, stage_betas)
    for k in range(STAGES):
        rows.append(
            _row(
                "heat_released",
                stage_betas[k + 1],
                mean[k] - mean[k + 1],
                math.hypot(mcse[k], mcse[k + 1]),
                e_exact[k] - e_exact[k + 1],
                beta_from=stage_betas[k],
            )
        )
    grid = np.geomspace(stage_betas.min() / 1.3, stage_betas.max() * 1.3, 60)
    exact_grid = [conjugate.conjugate_exact(model, float(b)) for b in grid]
    return {
        "model": model.name,
        "gradient_variance": v,
        "stage_etas": etas.tolist(),
        "stage_betas": stage_betas.tolist(),
        "ladder_rungs": int(ladder.size),
        "chains": chains,
        "steps": steps,
        "max_abs_z": float(
            max(abs(r["estimate"] - r["exact"]) / r["sigma"] for r in rows)
        ),
        "rows": rows,
        "_curves": {
            "grid": grid,
            "U_exact": np.array([e.average_energy for e in exact_grid]),
            "S_exact": np.array([e.entropy for e in exact_grid]),
        },
    }


def _row(quantity, beta, estimate, sigma, exact, **extra) -> dict:
    return {
        "quantity": quantity,
        "beta": float(beta),
        **{k: float(v) for k, v in extra.items()},
        "estimate": float(estimate),
        "sigma": float(sigma),
        "exact": float(exact),
        "z": float((estimate - exact) / sigma),
    }


def _plot_quasi_static(qs: dict, annealing: dict, path: Path) -> None:
    """U(β) and S(β) with exact curves; heat released per stage, slow vs fast."""
    c = qs["_curves"]
    fig = Figure(figsize=(17, 4.5), layout="constrained")
    ax_u, ax_s, ax_q = fig.subplots(1, 3)
    for ax, q, key, label in (
        (ax_u, "average_energy", "U_exact", "average energy U (nats)"),
        (ax_s, "entropy", "S_exact", "entropy S (nats)"),
    ):
        r = [x for x in qs["rows"] if x["quantity"] == q]
        b = np.array([x["beta"] for x in r])
        ax.plot(c["grid"], c[key], "k-", lw=1, label="exact (conjugate closed form)")
        ax.errorbar(
            b,
            [x["estimate"] for x in r],
            yerr=[2 * x["sigma"] for x in r],
            fmt="o",
            ms=4,
            capsize=3,
            label="MALA ladder + dictionary (± 2σ)",
        )
        ax.set_xscale("log")
        ax.set_xlabel("inverse temperature β = β(η_k)  (1/nats)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    ax_u.set_title("U = nE[K_n] + E[−log φ]/β at the schedule's stages", fontsize=10)
    ax_s.set_title("S = E[−log φ] + βE[nL_n] − F_n(β), F by TI", fontsize=10)
    r = [x for x in qs["rows"] if x["quantity"] == "heat_released"]
    k = np.arange(len(r))
    width = 0.16
    ax_q.bar(
        k - 2 * width,
        [x["estimate"] for x in r],
        width,
        yerr=[2 * x["sigma"] for x in r],
        capsize=2,
        label="quasi-static, ladder (conjugate)",
    )
    ax_q.plot(k - 2 * width, [x["exact"] for x in r], "k_", ms=14, mew=2, label="exact")
    for j, (name, kind, lab) in enumerate(
        (
            ("slow", "sgd", "SGD, slow ramp"),
            ("fast", "sgd", "SGD, fast ramp"),
            ("slow", "sgld", "Langevin, slow ramp"),
            ("fast", "sgld", "Langevin, fast ramp"),
        )
    ):
        st = annealing[name]["stages"]
        h, se = st[f"heat_{kind}"], st[f"heat_{kind}_se"]
        ax_q.bar(
            np.arange(len(h)) + (j - 1) * width,
            h,
            width,
            yerr=2 * np.asarray(se),
            capsize=2,
            label=lab,
            alpha=0.8,
        )
    qsr = annealing["slow"]["stages"]["heat_quasi_static"]
    ax_q.plot(
        np.arange(len(qsr)), qsr, "r_", ms=30, mew=1.5, label="(d/2)ΔT (regular model)"
    )
    temps = annealing["slow"]["stages"]["temperature"]
    ticks = [f"{a:.0f}→{b:.0f}" for a, b in itertools.pairwise(temps)]
    ax_q.set_xticks(range(len(ticks) + 1), ticks + ["relax\nat η₁"], fontsize=8)
    ax_q.set_xlabel("stage: temperature T = 1/β from → to  (nats)")
    ax_q.set_ylabel("heat released Q_k = −Δ⟨nK_n⟩  (nats)")
    ax_q.set_title(
        "Heat released per stage: fast cooling releases it late (at η₁)",
        fontsize=10,
    )
    ax_q.legend(fontsize=7)
    fig.suptitle(
        "Quasi-static thermodynamics along the learning-rate schedule (d = 4, "
        "n = 2·10⁴)"
    )
    save_figure(fig, path)


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
    write_json_atomic(out / "results.json", results)
    a = results["annealing"]
    qs = quasi_static_part(args.quick, a["eta0"], a["eta1"], a["batch_size"])
    _plot_quasi_static(qs, a, out / "annealing_thermodynamics.png")
    qs.pop("_curves")
    results["quasi_static"] = qs
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

    q = r["quasi_static"]
    print(
        f"Quasi-static along the schedule ({q['model']}, MALA ladder of "
        f"{q['ladder_rungs']} rungs; estimate ± σ vs exact; max |z| "
        f"{q['max_abs_z']:.2f})"
    )
    for row in q["rows"]:
        lab = row["quantity"]
        if lab == "heat_released":
            lab = f"Q  β {row['beta_from']:.3g}→"
        print(
            f"  {lab:>16} β={row['beta']:.4g}: {row['estimate']:10.2f} ± "
            f"{row['sigma']:6.2f}  exact {row['exact']:10.2f}  z {row['z']:+.2f}"
        )
    for name in ("fast", "slow"):
        st = a[name]["stages"]
        print(
            f"  {name} ramp heat per stage SGD "
            + " ".join(f"{x:.0f}" for x in st["heat_sgd"])
            + "; quasi-static (d/2)ΔT "
            + " ".join(f"{x:.0f}" for x in st["heat_quasi_static"])
        )


if __name__ == "__main__":
    main()
