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

Rows go to OUT/results.json (written atomically after every (model, n); a rerun skips
rows already there with the same settings), and a figure to OUT/free_energy_vs_n.png.

    python studies/free_energy_vs_n/run.py            # n = 1e2 … 1e5 (tens of minutes)
    python studies/free_energy_vs_n/run.py --quick    # three n, short chains (CI)
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

from slt_sampler import HMC, sample, tempered_posterior, zoo
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.estimators.free_energy import beta_ladder, thermodynamic_integration
from slt_sampler.estimators.learning_coefficient import free_energy_slope
from slt_sampler.zoo import coefficients
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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="three n, short chains (CI)")
    ap.add_argument("--out", type=Path, default=None, help="output directory")
    ap.add_argument(
        "--models", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS)
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
        }
    return {
        "ns": [100, 316, 1000, 3162, 10_000, 31_623, 100_000],
        "rungs": 32,
        "chains": 8,
        "steps": 4000,
        "burn": 1000,
    }


def main(argv=None):
    args = parse_args(argv)
    cfg = settings(args.quick)
    out = args.out or (HERE / "out" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tag = {k: cfg[k] for k in ("rungs", "chains", "steps", "burn")} | {
        "seed": args.seed
    }
    rows = [] if args.fresh else read_rows(path)
    done = {(r["model"], r["n"], r["method"]) for r in rows if r.get("settings") == tag}
    key = jax.random.key(args.seed)
    print(
        f"{'model':>13} {'n':>7} {'method':>7} {'F_n - nL_n(w0)':>15} {'±σ':>7} "
        f"{'exact':>9} {'theory':>8}"
    )
    for mi, name in enumerate(args.models):
        for ni, n in enumerate(cfg["ns"]):
            if (name, n, "ti_hmc") in done:
                continue
            k = jax.random.fold_in(jax.random.fold_in(key, mi), ni)
            t0 = time.time()
            kept = cfg["chains"] * (cfg["steps"] - cfg["burn"])
            prob = PROBLEMS[name](jax.random.fold_in(k, 0), n, kept)
            ti = free_energy_ti(jax.random.fold_in(k, 1), prob, cfg)
            lam, m = prob.true
            theory = lam * math.log(n) - (m - 1) * math.log(math.log(n))
            rel = prob.n_loss_w0
            row = {
                "model": name,
                "n": n,
                "method": "ti_hmc",
                "free_energy": ti.free_energy,
                "free_energy_sigma": ti.sigma,
                "free_energy_mcse": ti.mcse,
                "quadrature_error": ti.quadrature_error,
                "exact": prob.exact,
                "n_loss_w0": rel,
                "lam": lam,
                "multiplicity": m,
                "theory": theory,
                "seconds": time.time() - t0,
                "settings": tag,
            }
            rows = [
                r
                for r in rows
                if (r["model"], r["n"], r["method"]) != (name, n, "ti_hmc")
            ]
            rows.append(row)
            write_json_atomic(path, {"rows": rows})
            ex = "—" if prob.exact is None else f"{prob.exact - rel:9.3f}"
            print(
                f"{name:>13} {n:>7} {'TI':>7} {ti.free_energy - rel:15.3f} "
                f"{ti.sigma:7.3f} {ex:>9} {theory:8.3f}"
            )
    summarise(rows, tag, out)


def summarise(rows, tag, out):
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("settings") == tag]
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6))
    axes = np.atleast_1d(axes)
    print("\nλ from a fit of F_n − nL_n(w0) = λ log n − (m−1) log log n + c (m known):")
    for ax, name in zip(axes, models):
        rs = sorted((r for r in rows if r["model"] == name), key=lambda r: r["n"])
        n = np.array([r["n"] for r in rs], float)
        y = np.array([r["free_energy"] - r["n_loss_w0"] for r in rs])
        s = np.array([r["free_energy_sigma"] for r in rs])
        lam, m = rs[0]["lam"], rs[0]["multiplicity"]
        ax.errorbar(np.log(n), y, 2 * s, fmt="o", ms=4, label="TI (HMC), ±2σ")
        exact = [r["exact"] for r in rs]
        if all(e is not None for e in exact):
            base = np.array([r["n_loss_w0"] for r in rs])
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
        if len(n) >= 3:
            fit = free_energy_slope(n, y, s, np.zeros_like(y), int(m))
            print(
                f"  {name:>13}: λ̂ = {fit.lam:.3f} ± {fit.se:.3f}  (λ = {lam:g}, m = {m})"
            )
        ax.set_title(name)
        ax.set_xlabel("log n")
        ax.set_ylabel("F_n − nL_n(w0)  [nats]")
        ax.legend(fontsize=7)
    fig.suptitle("Bayes free energy against log n: measurement, exact value, theory")
    fig.tight_layout()
    fig.savefig(out / "free_energy_vs_n.png", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    main()
