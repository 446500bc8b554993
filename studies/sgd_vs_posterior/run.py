"""SGD against the posterior: the stationary law of SGD iterates beside the tempered
posterior at the matched temperature (Mandt, Hoffman & Blei 2017).

Two models of the zoo, both trained from their minimiser w* with constant-rate SGD
(minibatches drawn with replacement):

* regular linear regression (d = 4, whitened inputs, unit noise): the covariance of
  the SGD iterates against the Lyapunov prediction ``AΣ + ΣA = (η/B)C`` and against
  the posterior ``(nβA)⁻¹`` at the matched β = 2B/(nη·tr(C)/d), over learning rates;
* reduced-rank regression (M = N = 3, H = 2, true rank 1; λ = 3.5, d = 12), a singular
  model: the distribution of ``nβ(L_n − L_n(w*))`` under SGD and under the posterior
  at the matched β (NUTS), and λ̂ = nβ(E[L_n] − L_n(w*)) read from each.

Every part's numbers go to out/results.json (atomically, after each part; a rerun with
the same settings skips finished parts, --fresh recomputes), with plots beside it.

    python studies/sgd_vs_posterior/run.py            # about 5 min on 2 cores
    python studies/sgd_vs_posterior/run.py --quick    # about 1-2 min (CI)
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import NUTS, llc, sample, window_adapt
from slt_sampler.diagnostics._training_plots import (
    plot_covariance_comparison,
    plot_covariance_error_vs_lr,
    plot_energy_histograms,
    plot_llc_sgd_vs_posterior,
)
from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.training import (
    gradient_covariance,
    gradient_variance,
    loss_hessian,
    matched_beta,
    sgd,
    sgd_iterates,
    sgd_stationary_covariance,
)
from slt_sampler.zoo import models as zoo

HERE = Path(__file__).parent
BATCH = 10
MAIN_LR = 0.02


def _fro(m, ref) -> float:
    return float(np.linalg.norm(m - ref) / np.linalg.norm(ref))


def _settings(quick: bool) -> dict:
    if quick:
        return {
            "regular_chains": 32,
            "regular_steps": 8000,
            "lrs": [0.02, 0.08],
            "rrr_chains": 8,
            "rrr_steps": 8000,
            "nuts_chains": 2,
            "nuts_adapt": 300,
            "nuts_steps": 800,
        }
    return {
        "regular_chains": 64,
        "regular_steps": 20_000,
        "lrs": [0.005, 0.01, 0.02, 0.05, 0.1],
        "rrr_chains": 16,
        "rrr_steps": 40_000,
        "nuts_chains": 4,
        "nuts_adapt": 500,
        "nuts_steps": 3000,
    }


def _chain_covariances(positions, d: int) -> np.ndarray:
    """Per-chain covariance matrices (chain, d, d) about the pooled mean."""
    z = np.concatenate(
        [
            np.asarray(x, np.float64).reshape(x.shape[0], x.shape[1], -1)
            for x in positions
        ],
        axis=-1,
    )
    z = z - z.mean((0, 1))
    return np.einsum("cti,ctj->cij", z, z) / z.shape[1]


def regular_part(key, cfg: dict, out: Path) -> dict:
    """Covariance of SGD iterates against Lyapunov and the matched posterior."""
    d, n = 4, 20_000
    model = zoo.regular(jax.random.fold_in(key, 0), d, n=n)
    post, ws = model.posterior, model.w_star
    hess, noise = loss_hessian(post, ws), gradient_covariance(post, ws)
    v = gradient_variance(post, ws)
    loss_star = float(post.full_loss_fn(ws, post.data))
    rows, keep = [], None
    for i, lr in enumerate(cfg["lrs"]):
        cont = sgd_stationary_covariance(hess, noise, lr, BATCH)
        exact = sgd_stationary_covariance(hess, noise, lr, BATCH, discrete=True)
        beta = matched_beta(lr, BATCH, n, gradient_variance=v)
        post_cov = np.linalg.inv(n * beta * hess)
        # about half a relaxation time 1/(ηa) between kept draws, at every rate
        thin = max(1, round(0.5 / lr))
        steps = cfg["regular_steps"] // thin * thin
        it = sgd_iterates(
            jax.random.fold_in(key, 10 + i),
            post,
            ws,
            sgd(lr),
            batch_size=BATCH,
            num_chains=cfg["regular_chains"],
            num_steps=steps,
            burn_in=int(5 / lr),
            thinning=thin,
        )
        per = _chain_covariances(it.positions, d)
        measured = per.mean(0)
        se = float(
            np.linalg.norm(per.std(0, ddof=1) / np.sqrt(len(per)))
            / np.linalg.norm(exact)
        )
        energy = n * beta * (it.loss - loss_star)
        est = llc(it.loss, loss_star, n=n, beta=beta)
        rows.append(
            {
                "lr": lr,
                "batch_size": BATCH,
                "matched_beta": beta,
                "cov_rel_error_lyapunov": _fro(measured, cont),
                "cov_rel_error_lyapunov_discrete": _fro(measured, exact),
                "cov_rel_error_posterior": _fro(measured, post_cov),
                "cov_se": se,
                "lyapunov_discretisation": _fro(cont, exact),
                "posterior_vs_lyapunov": _fro(post_cov, cont),
                "llc_sgd": float(est.llc),
                "llc_sgd_se": float(est.llc_mcse),
                "llc_sgd_theory": float(n * beta * 0.5 * np.trace(hess @ exact)),
            }
        )
        if lr == MAIN_LR:
            keep = (measured, cont, post_cov, energy, beta, hess)
    measured, cont, post_cov, energy, beta, hess = keep
    np.savez(
        out / "regular_covariances.npz",
        measured=measured,
        lyapunov=cont,
        posterior=post_cov,
    )
    # the matched posterior is exactly Gaussian here (flat prior, quadratic L_n)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(np.zeros(d), post_cov, size=energy.size)
    post_energy = 0.5 * n * beta * np.einsum("ti,ij,tj->t", draws, hess, draws)
    main = next(r for r in rows if r["lr"] == MAIN_LR)
    return {
        "model": model.name,
        "dim": d,
        "n": n,
        "lam": model.true.lam,
        "gradient_variance": v,
        "cov_rel_error_lyapunov": main["cov_rel_error_lyapunov"],
        "cov_rel_error_posterior": main["cov_rel_error_posterior"],
        "cov_se": main["cov_se"],
        "llc_sgd": main["llc_sgd"],
        "llc_sgd_se": main["llc_sgd_se"],
        "llc_posterior": float(post_energy.mean()),
        "llc_posterior_se": float(post_energy.std() / np.sqrt(post_energy.size)),
        "lr_sweep": rows,
        "_energies": (energy.ravel(), post_energy),
    }


def singular_part(key, cfg: dict) -> dict:
    """RRR: SGD energy and λ̂ against the matched posterior sampled with NUTS."""
    model = zoo.reduced_rank(jax.random.fold_in(key, 1), 3, 3, 2, 1, n=10_000)
    post, ws = model.posterior, model.w_star
    v = gradient_variance(post, ws)
    beta = matched_beta(MAIN_LR, BATCH, post.n, gradient_variance=v)
    loss_star = float(post.full_loss_fn(ws, post.data))
    it = sgd_iterates(
        jax.random.fold_in(key, 20),
        post,
        ws,
        sgd(MAIN_LR),
        batch_size=BATCH,
        num_chains=cfg["rrr_chains"],
        num_steps=cfg["rrr_steps"],
        burn_in=500,
        thinning=20,
    )
    energy = post.n * beta * (it.loss - loss_star)
    est_sgd = llc(it.loss, loss_star, n=post.n, beta=beta)
    # the posterior at the matched β, localised as in the zoo (γ = 1 at w*)
    target = post.replace(beta=beta)
    nuts, starts = window_adapt(
        jax.random.fold_in(key, 21),
        NUTS(jnp.asarray(0.01), jnp.ones(model.dim)),
        target,
        ws,
        num_chains=cfg["nuts_chains"],
        num_steps=cfg["nuts_adapt"],
    )
    res = sample(
        jax.random.fold_in(key, 22),
        nuts,
        target,
        starts,
        num_chains=cfg["nuts_chains"],
        num_steps=cfg["nuts_steps"],
        chains_axis=True,
    )
    post_energy = post.n * beta * (res.losses - loss_star)
    est_post = llc(res.losses, loss_star, n=post.n, beta=beta)
    return {
        "model": model.name,
        "dim": model.dim,
        "n": post.n,
        "lam": model.true.lam,
        "lr": MAIN_LR,
        "batch_size": BATCH,
        "gradient_variance": v,
        "matched_beta": beta,
        "llc_sgd": float(est_sgd.llc),
        "llc_sgd_se": float(est_sgd.llc_mcse),
        "llc_sgd_rhat": float(est_sgd.rhat),
        "llc_posterior": float(est_post.llc),
        "llc_posterior_se": float(est_post.llc_mcse),
        "llc_posterior_rhat": float(est_post.rhat),
        "_energies": (energy.ravel(), post_energy.ravel()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (1-2 min)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="recompute every part")
    args = parser.parse_args(argv)
    out = args.out or HERE / "out" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    cfg = _settings(args.quick)
    key = jax.random.key(args.seed)
    path = out / "results.json"
    results = {} if args.fresh or not path.exists() else json.loads(path.read_text())
    if results.get("settings") != {**cfg, "seed": args.seed}:
        results = {"settings": {**cfg, "seed": args.seed}}
    energies = {}
    for name, part in (
        ("regular", lambda: regular_part(key, cfg, out)),
        ("singular", lambda: singular_part(key, cfg)),
    ):
        files = [out / f"{name}_energies.npz"]
        if name == "regular":
            files.append(out / "regular_covariances.npz")
        if name in results and all(f.exists() for f in files):
            with np.load(out / f"{name}_energies.npz") as f:
                energies[name] = (f["sgd"], f["posterior"])
            continue
        t0 = time.perf_counter()
        row = part()
        sgd_e, post_e = row.pop("_energies")
        np.savez(out / f"{name}_energies.npz", sgd=sgd_e, posterior=post_e)
        energies[name] = (sgd_e, post_e)
        row["seconds"] = time.perf_counter() - t0
        results[name] = row
        # the two headline numbers at the top level, for CI and readers
        if name == "regular":
            results["cov_rel_error_lyapunov"] = row["cov_rel_error_lyapunov"]
            results["cov_rel_error_posterior"] = row["cov_rel_error_posterior"]
        write_json_atomic(path, results)
    panels = [
        {
            "name": f"{results[k]['model']} (λ = {results[k]['lam']:g}, "
            f"d = {results[k]['dim']})",
            "sgd": energies[k][0],
            "posterior": energies[k][1],
            "lam": results[k]["lam"],
            "half_dim": results[k]["dim"] / 2,
            "gamma_shape": results[k]["dim"] / 2 if k == "regular" else None,
        }
        for k in ("regular", "singular")
    ]
    plot_energy_histograms(panels, path=out / "energy_histograms.png")
    with np.load(out / "regular_covariances.npz") as f:
        reg = results["regular"]
        plot_covariance_comparison(
            f["measured"],
            f["lyapunov"],
            f["posterior"],
            path=out / "regular_covariance.png",
            title=f"Regular model (d = {reg['dim']}, n = {reg['n']}): SGD "
            f"η = {MAIN_LR}, B = {BATCH}",
        )
    plot_covariance_error_vs_lr(
        results["regular"]["lr_sweep"], path=out / "regular_cov_error_vs_lr.png"
    )
    plot_llc_sgd_vs_posterior(
        [{**results[k], "name": results[k]["model"]} for k in ("regular", "singular")],
        path=out / "llc_sgd_vs_posterior.png",
    )
    _summary(results)
    return results


def _summary(results: dict) -> None:
    reg, sing = results["regular"], results["singular"]
    print(f"SGD vs posterior (B = {BATCH}, main η = {MAIN_LR})")
    print(
        f"{'η':>7} {'β matched':>10} {'err Lyap':>9} {'err post':>9} {'±SE':>6}"
        f" {'λ̂ SGD':>8}"
    )
    for r in reg["lr_sweep"]:
        print(
            f"{r['lr']:7.3g} {r['matched_beta']:10.4g} {r['cov_rel_error_lyapunov']:9.1%}"
            f" {r['cov_rel_error_posterior']:9.1%} {r['cov_se']:6.1%} {r['llc_sgd']:8.3f}"
        )
    for r in (reg, sing):
        print(
            f"{r['model']:>22}: λ = {r['lam']:g}, d/2 = {r['dim'] / 2:g}; λ̂ from SGD "
            f"iterates {r['llc_sgd']:.2f} ± {r['llc_sgd_se']:.2f}, posterior "
            f"{r['llc_posterior']:.2f} ± {r['llc_posterior_se']:.2f}"
        )


if __name__ == "__main__":
    main()
