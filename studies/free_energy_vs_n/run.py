"""How does the Bayes free energy grow with n? F_n − nL_n(w0) against λ log n − (m−1) log log n.

For three models with a normalised prior, at several n, the free energy
F_n = −log ∫ φ(w) Π p(X_i|w) dw is measured by thermodynamic integration (HMC chains on
a β ladder, exact prior draws at β = 0) and set beside its exact value where one exists
and beside Watanabe's (2009) expansion λ log n − (m − 1) log log n + O_p(1):

* ``conjugate_d2``: regular Gaussian regression, d = 2 (λ = 1, m = 1); F_n exact.
* ``crossing``: y = w1 w2 x + noise, N(0, I) prior (K ∝ (w1 w2)², λ = 1/2, m = 2);
  F_n exact by quadrature.
* ``rrr_2x1x2``: reduced-rank regression y = B A x + noise, M = N = 2, H = 1, true rank
  0, N(0, I) prior (Aoyagi & Watanabe 2005: λ = 1, m = 2); F_n unknown.

and λ four ways for three linear-Gaussian families with m = 1 (global posterior,
N(0, I) prior, no localisation; NUTS with one step size per β rung):

* ``regular_d4``: y = w·x + noise, d = 4 (λ = 2); F_n exact;
* ``rrr_3x2x3``: reduced rank, M = N = 3, H = 2, true rank 0 (λ = 5/2);
* ``dln_2x3x3x2``: deep linear network, widths [2, 3, 3, 2], true rank 1 (Aoyagi 2024:
  λ = 2).

For these, λ is read (1) from two temperatures, (2) from the slope of E_β[nL_n]
against 1/β, (3) from β² Var_β[nL_n] (all at n = 10⁴, β = c/log n, c ∈ [0.5, 2]) and
(4) from the slope of F_n − nL_n(ŵ) against log n (ŵ the maximum-likelihood point).
The table of the four against the truth goes to OUT/results.json under ``lambda``
and to OUT/lambda_four_ways.png.

Rows go to OUT/results.json (written atomically after every (model, n); a rerun skips
rows already there with the same settings), and a figure to OUT/free_energy_vs_n.png.

    python studies/free_energy_vs_n/run.py            # n = 1e2 … 1e5 (tens of minutes)
    python studies/free_energy_vs_n/run.py --quick    # three n, short chains, one
                                                      # λ-four-ways model (CI)
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

from slt_sampler import HMC, NUTS, sample, sample_ladder, tempered_posterior, zoo
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.estimators import learning_coefficient as lc
from slt_sampler.estimators.free_energy import beta_ladder, thermodynamic_integration
from slt_sampler.estimators.learning_coefficient import free_energy_slope
from slt_sampler.zoo import bayes_linear, coefficients
from slt_sampler.zoo.models import linear_network_loglik

HERE = Path(__file__).parent


class Problem:
    """One model at one n: its posterior, exact prior draws of nL_n, chain starts,
    nL_n(w0), the exact F_n (or None) and the true (λ, m)."""

    def __init__(self, name, posterior, prior_energy, starts, n_loss_w0, exact, true):
        self.name, self.posterior, self.prior_energy = name, posterior, prior_energy
        self.starts, self.n_loss_w0, self.exact, self.true = (
            starts,
            n_loss_w0,
            exact,
            true,
        )


def conjugate_problem(key, n, draws):
    model = zoo.conjugate_regression(key, 2, n=n)
    w = np.asarray(zoo.prior_sample(jax.random.fold_in(key, 1), model, draws))
    e = _conj_energy(model, w.astype(np.float64))

    def starts(k, b, chains):
        mean = zoo.conjugate_exact(model, b).post_mean
        noise = jax.random.normal(k, (chains, 2)) / math.sqrt(n * b + 1)
        return mean[None, :] + noise

    return Problem(
        "conjugate_d2",
        model.posterior,
        e,
        starts,
        -float(zoo.log_q(model).sum()),
        float(zoo.free_energy_exact(model, 1.0)),
        coefficients.regular(2),
    )


def _conj_energy(model, w):
    s2 = model.sigma**2
    q = model.y @ model.y - 2 * w @ model.xty
    q = q + np.einsum("ij,jk,ik->i", w, model.gram, w)
    return 0.5 * model.x.shape[0] * math.log(2 * math.pi * s2) + 0.5 * q / s2


def crossing_problem(key, n, draws):
    model = zoo.product_regression(key, n, prior="gaussian")
    w = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    w = w.standard_normal((draws, 2))
    f = w[:, 0] * w[:, 1]
    s2 = model.sigma**2
    e = 0.5 * n * math.log(2 * math.pi * s2) + (
        model.syy - 2 * f * model.sxy + f**2 * model.sxx
    ) / (2 * s2)
    f_hat = model.sxy / model.sxx

    def starts(k, b, chains):  # on the ridge w1 w2 = f̂, along both arms
        along = jax.random.normal(k, (chains,))
        on = jnp.stack([along, f_hat / along], axis=1)
        half = chains // 2
        return jnp.concatenate([on[:half], on[half:, ::-1]])

    ex = zoo.quadrature_exact(model, 1.0)
    return Problem(
        "crossing",
        model.posterior,
        e,
        starts,
        ex.n_loss_true,
        ex.free_energy,
        model.true,
    )


def rrr_problem(key, n, draws):
    """y = B A x + N(0, I), A: 1x2, B: 2x1, truth B A = 0, prior N(0, I) on (A, B)."""
    k_x, k_e, k_p = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (n, 2))
    y = jax.random.normal(k_e, (n, 2))
    loglik = linear_network_loglik(1.0)

    def logprior(ws):
        sq = sum(jnp.sum(w**2) for w in ws)
        return -0.5 * sq - 2.0 * math.log(2 * math.pi)  # 4 weights

    post = tempered_posterior(loglik, (x, y), logprior_fn=logprior, beta=1.0)
    xn, yn = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = np.asarray(jax.random.normal(k_p, (draws, 4)), np.float64)
    a, b = z[:, :2], z[:, 2:]
    # nL_n of each prior draw: W = b aᵀ (2x2)
    gram, cross, yy = xn.T @ xn, yn.T @ xn, np.sum(yn * yn)
    wmat = b[:, :, None] * a[:, None, :]
    quad = yy - 2 * np.einsum("sij,ij->s", wmat, cross)
    quad = quad + np.einsum("sij,jk,sik->s", wmat, gram, wmat)
    e = n * math.log(2 * math.pi) + 0.5 * quad

    def starts(k, b_, chains):
        k1, k2 = jax.random.split(k)
        scale = 1.0 / (n * b_ + 1) ** 0.25
        return [
            scale * jax.random.normal(k1, (chains, 1, 2)),
            scale * jax.random.normal(k2, (chains, 2, 1)),
        ]

    n_loss_w0 = n * math.log(2 * math.pi) + 0.5 * yy
    return Problem(
        "rrr_2x1x2",
        post,
        e,
        starts,
        n_loss_w0,
        None,
        coefficients.reduced_rank_regression(2, 2, 1, 0),
    )


PROBLEMS = {
    "conjugate_d2": conjugate_problem,
    "crossing": crossing_problem,
    "rrr_2x1x2": rrr_problem,
}


def free_energy_ti(key, prob: Problem, cfg):
    """F_n by thermodynamic integration over an HMC ladder."""
    n = prob.posterior.n
    betas = beta_ladder(cfg["rungs"], beta_min=1e-3 / n)
    keys = jax.random.split(key, betas.size)
    kept = cfg["steps"] - cfg["burn"]
    rows = [prob.prior_energy[: cfg["chains"] * kept].reshape(cfg["chains"], kept)]
    for k, b in zip(keys[1:], betas[1:]):
        k_init, k_run = jax.random.split(k)
        start = prob.starts(k_init, float(b), cfg["chains"])
        dim = sum(int(np.prod(s.shape[1:])) for s in jax.tree.leaves(start))
        res = sample(
            k_run,
            HMC(
                step_size=0.3 / math.sqrt(n * b + 10),
                inverse_mass_matrix=jnp.ones(dim),
                num_integration_steps=8,
            ),
            prob.posterior.replace(beta=float(b)),
            start,
            num_chains=cfg["chains"],
            num_steps=cfg["steps"],
            chains_axis=True,
            progress=False,
        )
        rows.append(n * res.losses[:, cfg["burn"] :].astype(np.float64))
    return thermodynamic_integration(betas, np.stack(rows))


# λ four ways: name -> (widths, true rank, NUTS step × sqrt(nβ + 1))
LAMBDA_MODELS = {
    "regular_d4": ([4, 1], 1, 0.5),
    "rrr_3x2x3": ([3, 2, 3], 0, 0.3),
    "dln_2x3x3x2": ([2, 3, 3, 2], 1, 0.25),
}
TEMPERATURE_CS = np.array([0.5, 0.7, 1.0, 1.4, 2.0])  # β = c / log n


def nuts_ladder(key, model, betas, eps, cfg):
    """``nL_n − energy_offset`` draws ``(rung, chain, draw)``: NUTS at every β with step
    ``eps / sqrt(nβ + 1)``, chains started at the truth (off the saddle for rank 0)."""
    n = model.posterior.n
    k_start, k_run = jax.random.split(key)
    start = [jnp.asarray(w, jnp.float32) for w in model.w_true]
    if all(not np.any(w) for w in model.w_true):
        start = [
            0.1 * jax.random.normal(jax.random.fold_in(k_start, i), w.shape)
            for i, w in enumerate(start)
        ]
    samplers = [
        NUTS(jnp.float32(eps / math.sqrt(n * b + 1)), jnp.ones(model.dim), 8)
        for b in betas
    ]
    res = sample_ladder(
        k_run,
        samplers,
        model.posterior,
        start,
        betas=np.asarray(betas),
        num_chains=cfg["chains"],
        num_steps=cfg["steps"],
        progress=False,
    )
    return n * np.asarray(res.losses[:, :, cfg["burn"] :], np.float64)


def free_energy_nuts(key, model, eps, cfg):
    """F_n − energy_offset by thermodynamic integration over a NUTS ladder spaced at
    equal thermodynamic length for the pilot ``Var_β ≈ (V0^{-1/2} + β (d/2)^{-1/2})^{-2}``
    (the prior's variance V0 at small nβ, the regular bound (d/2)/β² at large nβ)."""
    k_prior, k_run = jax.random.split(key)
    kept = cfg["steps"] - cfg["burn"]
    draws = bayes_linear.prior_sample(k_prior, model, cfg["chains"] * kept)
    e0 = bayes_linear.n_loss(model, draws) - model.energy_offset
    e0 = e0.reshape(cfg["chains"], kept)
    v0 = float(e0.var())
    pb = np.geomspace(1e-4 / math.sqrt(v0), 1.0, 64)
    pv = (1 / math.sqrt(v0) + pb / math.sqrt(model.dim / 2)) ** -2.0
    betas = beta_ladder(
        cfg["rungs"],
        beta_min=1e-2 / math.sqrt(v0),
        pilot_betas=pb,
        pilot_var_energy=pv,
    )
    e = nuts_ladder(k_run, model, betas[1:], eps, cfg)
    return thermodynamic_integration(betas, np.concatenate([e0[None], e]))


def lambda_problem_rows(key, model_key, name, n, cfg, tag):
    """One F_n row (``ti_nuts``) for a λ-four-ways model at one n; at the
    temperature n also the three temperature estimates of λ. ``model_key`` fixes the
    truth and the normalised noise ``XᵀE/√n``, the same at every n."""
    widths, r, eps = LAMBDA_MODELS[name]
    k_ti, k_temp = jax.random.split(key)
    model = bayes_linear.bayes_linear_network(
        model_key, widths, r, n=n, common_noise=jax.random.fold_in(model_key, 1)
    )
    t0 = time.time()
    ti = free_energy_nuts(k_ti, model, eps, cfg)
    lam, m = model.true
    exact = bayes_linear.regular_free_energy(model) if len(widths) == 2 else None
    rows = [
        {
            "model": name,
            "n": n,
            "method": "ti_nuts",
            "free_energy": ti.free_energy + model.energy_offset,
            "free_energy_sigma": ti.sigma,
            "free_energy_mcse": ti.mcse,
            "quadrature_error": ti.quadrature_error,
            "exact": exact,
            "n_loss_w0": model.n_loss_true,
            "n_loss_min": model.n_loss_min,
            "baseline": "n_loss_min",
            "lam": lam,
            "multiplicity": m,
            "theory": lam * math.log(n) - (m - 1) * math.log(math.log(n)),
            "seconds": time.time() - t0,
            "settings": tag,
        }
    ]
    if n == cfg["temperature_n"]:
        betas = TEMPERATURE_CS / math.log(n)
        tcfg = {k: cfg["temperature"][k] for k in ("chains", "steps", "burn")}
        e = nuts_ladder(k_temp, model, betas, eps, tcfg)
        two = lc.two_temperature(e[0], e[-1], betas[0], betas[-1])
        slope = lc.beta_slope(betas, e)
        mid = int(np.argmin(np.abs(TEMPERATURE_CS - 1.0)))
        var = lc.variance_lambda(e[mid], betas[mid])
        for way, est in (
            ("two_temperature", two),
            ("beta_slope", slope),
            ("variance", var),
        ):
            rows.append(
                {
                    "model": name,
                    "n": n,
                    "method": f"lambda_{way}",
                    "lam_hat": est.lam,
                    "lam_hat_se": est.se,
                    "lam": lam,
                    "multiplicity": m,
                    "settings": tag,
                }
            )
    return rows


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="three n, short chains (CI)")
    ap.add_argument("--out", type=Path, default=None, help="output directory")
    ap.add_argument(
        "--models",
        nargs="*",
        default=None,
        choices=list(PROBLEMS) + list(LAMBDA_MODELS),
        help="default: all (with --quick: the first three and the DLN)",
    )
    ap.add_argument("--fresh", action="store_true", help="recompute existing rows")
    return ap.parse_args(argv)


def settings(quick: bool) -> dict:
    if quick:
        return {
            "ns": [100, 1000, 10_000],
            "rungs": 24,
            "chains": 4,
            "steps": 300,
            "burn": 100,
            "lambda_ns": [100, 1000, 10_000],
            "lambda": {"rungs": 12, "chains": 2, "steps": 200, "burn": 50},
            "temperature_n": 10_000,
            "temperature": {"chains": 2, "steps": 300, "burn": 100},
        }
    return {
        "ns": [100, 316, 1000, 3162, 10_000, 31_623, 100_000],
        "rungs": 32,
        "chains": 8,
        "steps": 4000,
        "burn": 1000,
        "lambda_ns": [100, 316, 1000, 3162, 10_000, 31_623, 100_000],
        "lambda": {"rungs": 24, "chains": 4, "steps": 2000, "burn": 500},
        "temperature_n": 10_000,
        "temperature": {"chains": 8, "steps": 4000, "burn": 800},
    }


def classic_row(key, name, n, cfg, tag):
    """One ``ti_hmc`` row for the conjugate / crossing / small-RRR problems."""
    t0 = time.time()
    kept = cfg["chains"] * (cfg["steps"] - cfg["burn"])
    prob = PROBLEMS[name](jax.random.fold_in(key, 0), n, kept)
    ti = free_energy_ti(jax.random.fold_in(key, 1), prob, cfg)
    lam, m = prob.true
    return {
        "model": name,
        "n": n,
        "method": "ti_hmc",
        "free_energy": ti.free_energy,
        "free_energy_sigma": ti.sigma,
        "free_energy_mcse": ti.mcse,
        "quadrature_error": ti.quadrature_error,
        "exact": prob.exact,
        "n_loss_w0": prob.n_loss_w0,
        "lam": lam,
        "multiplicity": m,
        "theory": lam * math.log(n) - (m - 1) * math.log(math.log(n)),
        "seconds": time.time() - t0,
        "settings": tag,
    }


def baseline(row) -> float:
    """The nL_n the free energy is measured from: nL_n(ŵ) where recorded, else
    nL_n(w0)."""
    return (
        row["n_loss_min"] if row.get("baseline") == "n_loss_min" else row["n_loss_w0"]
    )


def lambda_table(rows, tag) -> list[dict]:
    """λ four ways (three from temperatures, one from the F_n slope) per model."""
    rows = [r for r in rows if r.get("settings") == tag]
    table = []
    for name in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == name]
        ests = [
            (r["method"].removeprefix("lambda_"), r["lam_hat"], r["lam_hat_se"])
            for r in rs
            if r["method"].startswith("lambda_")
        ]
        ti = sorted(
            (r for r in rs if r["method"].startswith("ti_")), key=lambda r: r["n"]
        )
        lam, m = rs[0]["lam"], rs[0]["multiplicity"]
        if len(ti) >= 3:
            n = np.array([r["n"] for r in ti], float)
            y = np.array([r["free_energy"] - baseline(r) for r in ti])
            s = np.array([r["free_energy_sigma"] for r in ti])
            fit = free_energy_slope(n, y, s, np.zeros_like(y), int(m))
            ests.append(("free_energy_slope", fit.lam, fit.se))
        for way, est, se in ests:
            table.append(
                {
                    "model": name,
                    "way": way,
                    "lam_hat": est,
                    "se": se,
                    "lam": lam,
                    "multiplicity": m,
                    "rel_error": est / lam - 1,
                    "z": (est - lam) / se if se > 0 else float("nan"),
                }
            )
    return table


def main(argv=None):
    args = parse_args(argv)
    if args.models is None:
        lam_models = ["dln_2x3x3x2"] if args.quick else list(LAMBDA_MODELS)
        args.models = list(PROBLEMS) + lam_models
    cfg = settings(args.quick)
    out = args.out or (HERE / "out" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tag = {k: cfg[k] for k in ("rungs", "chains", "steps", "burn")} | {
        "seed": args.seed,
        "lambda": cfg["lambda"],
        "temperature": cfg["temperature"],
    }
    rows = [] if args.fresh else read_rows(path)
    done = {(r["model"], r["n"], r["method"]) for r in rows if r.get("settings") == tag}
    key = jax.random.key(args.seed)
    lam_cfg = cfg["lambda"] | {k: cfg[k] for k in ("temperature_n", "temperature")}
    print(
        f"{'model':>13} {'n':>7} {'method':>7} {'F_n - baseline':>15} {'±σ':>7} "
        f"{'exact':>9} {'theory':>8}"
    )
    for mi, name in enumerate(args.models):
        classic = name in PROBLEMS
        method = "ti_hmc" if classic else "ti_nuts"
        for ni, n in enumerate(cfg["ns"] if classic else cfg["lambda_ns"]):
            if (name, n, method) in done:
                continue
            k = jax.random.fold_in(jax.random.fold_in(key, mi), ni)
            if classic:
                new = [classic_row(k, name, n, cfg, tag)]
            else:
                model_key = jax.random.fold_in(jax.random.fold_in(key, mi), 10**6)
                new = lambda_problem_rows(k, model_key, name, n, lam_cfg, tag)
            keys = {(r["model"], r["n"], r["method"]) for r in new}
            rows = [r for r in rows if (r["model"], r["n"], r["method"]) not in keys]
            rows += new
            write_json_atomic(path, {"rows": rows, "lambda": lambda_table(rows, tag)})
            row, rel = new[0], baseline(new[0])
            ex = "—" if row["exact"] is None else f"{row['exact'] - rel:9.3f}"
            print(
                f"{name:>13} {n:>7} {method:>7} {row['free_energy'] - rel:15.3f} "
                f"{row['free_energy_sigma']:7.3f} {ex:>9} {row['theory']:8.3f}"
            )
    summarise(rows, tag, out)


def summarise(rows, tag, out):
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("settings") == tag]
    ti_rows = [r for r in rows if r["method"].startswith("ti_")]
    models = list(dict.fromkeys(r["model"] for r in ti_rows))
    cols = min(3, len(models))
    nrow = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(4.2 * cols, 3.6 * nrow))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    for ax, name in zip(axes, models):
        rs = sorted((r for r in ti_rows if r["model"] == name), key=lambda r: r["n"])
        n = np.array([r["n"] for r in rs], float)
        base = np.array([baseline(r) for r in rs])
        y = np.array([r["free_energy"] for r in rs]) - base
        s = np.array([r["free_energy_sigma"] for r in rs])
        lam, m = rs[0]["lam"], rs[0]["multiplicity"]
        label = "TI (HMC)" if rs[0]["method"] == "ti_hmc" else "TI (NUTS)"
        ax.errorbar(np.log(n), y, 2 * s, fmt="o", ms=4, label=f"{label}, ±2σ")
        exact = [r["exact"] for r in rs]
        if all(e is not None for e in exact):
            ax.plot(np.log(n), np.array(exact) - base, "k-", lw=1, label="exact F_n")
        shape = lam * np.log(n) - (m - 1) * np.log(np.log(n))
        c = float(np.sum((y - shape) / s**2) / np.sum(1 / s**2))  # best constant
        grid = np.linspace(np.log(n).min(), np.log(n).max(), 50)
        ax.plot(
            grid,
            lam * grid - (m - 1) * np.log(grid) + c,
            "--",
            color="C3",
            label=f"λ log n − (m−1) log log n + c\n(λ = {lam:g}, m = {m}, c fitted)",
        )
        which = "nL_n(ŵ)" if rs[0].get("baseline") == "n_loss_min" else "nL_n(w0)"
        ax.set_title(name)
        ax.set_xlabel("log n")
        ax.set_ylabel(f"F_n − {which}  [nats]")
        ax.legend(fontsize=7)
    fig.suptitle(
        "Bayes free energy against log n:\nmeasurement, exact value, theory",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out / "free_energy_vs_n.png", dpi=150)
    plt.close(fig)

    table = lambda_table(rows, tag)
    print("\nλ four ways (F_n slope with m known; the others at n = 10⁴):")
    print(f"{'model':>13} {'way':>18} {'λ̂':>7} {'±se':>6} {'λ':>5} {'rel':>7}")
    for t in table:
        print(
            f"{t['model']:>13} {t['way']:>18} {t['lam_hat']:7.3f} {t['se']:6.3f} "
            f"{t['lam']:5g} {t['rel_error']:+7.1%}"
        )
    four = [t for t in table if t["model"] in LAMBDA_MODELS]
    if four:
        plot_lambda_table(four, out)


def plot_lambda_table(table, out):
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(t["model"] for t in table))
    ways = ["two_temperature", "beta_slope", "variance", "free_energy_slope"]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, name in enumerate(models):
        lam = next(t["lam"] for t in table if t["model"] == name)
        ax.fill_between([i - 0.4, i + 0.4], 0.9, 1.1, color="0.9", lw=0)
        for j, way in enumerate(ways):
            hit = [t for t in table if t["model"] == name and t["way"] == way]
            if hit:
                x = i - 0.3 + 0.2 * j
                ax.errorbar(
                    x,
                    hit[0]["lam_hat"] / lam,
                    2 * hit[0]["se"] / lam,
                    fmt="os^D"[j],
                    color=f"C{j}",
                    label=way.replace("_", " ") if i == 0 else None,
                )
    ax.axhline(1.0, color="k", lw=1, label="exact λ (Aoyagi; d/2)")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("λ̂ / λ  (±2 se; band: ±10%)")
    ax.set_title("Learning coefficient four ways against the exact value")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "lambda_four_ways.png", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    main()
