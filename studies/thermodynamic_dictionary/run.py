"""The thermodynamic dictionary of a regular and a singular model across β.

For each model, one call to ``thermodynamic_dictionary`` (MALA on a β ladder that
also carries the thermodynamic-integration rungs from β = 0) gives F, U, S, C, the
Bayes and Gibbs errors, V, ν, WAIC and PSIS-LOO at every β of the table. They are
compared with exact values where these exist:

* regular: conjugate Gaussian regression, d = 3, n = 400 (every quantity in closed
  form; λ = ν = d/2);
* singular: y = w1·w2·x + N(0, 0.5²) at the truth w1·w2 = 0 with a N(0, I) prior,
  n = 400 (λ = 1/2, m = 2); F_n(β), E_β[nL_n] and C exact by 1-D quadrature (w2 given
  w1 is Gaussian), the rest without ground truth.

Writes out/results.json (rows: model, beta, quantity, meaning, estimate, sigma, exact,
z), one DataTree and one figure per model, and prints a summary.

    python studies/thermodynamic_dictionary/run.py            # 6 β, ~5-10 min
    python studies/thermodynamic_dictionary/run.py --quick    # 2 β, short chains (CI)
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import argparse
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import MALA, tempered_posterior
from slt_sampler.diagnostics._dictionary_figure import plot_dictionary
from slt_sampler.diagnostics.arviz import save_datatree
from slt_sampler.diagnostics.results import read_rows, write_json_atomic
from slt_sampler.workflows.dictionary import DictionaryRun, thermodynamic_dictionary
from slt_sampler.zoo import monomial_regression
from slt_sampler.zoo.conjugate import (
    conjugate_exact,
    conjugate_regression,
    log_q,
    population_kl,
)

HERE = Path(__file__).parent
N = 400
SIGMA_SING = 0.5
EXACT_NAMES = {
    "F": "free_energy",
    "E_nL": "mean_energy",
    "U": "average_energy",
    "S": "entropy",
    "C": "heat_capacity",
    "G_t": "gibbs_training_error",
    "G_g": "gibbs_generalization_error",
    "B_t": "bayes_training_error",
    "B_g": "bayes_generalization_error",
    "V": "functional_variance",
    "nu": "singular_fluctuation",
}


def regular_model(key, fresh_m: int):
    """Conjugate regression with its exact dictionary at any β."""
    model = conjugate_regression(key, 3, N)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((fresh_m, 3)).astype(np.float32)
    y = (x @ model.w_true + rng.standard_normal(fresh_m)).astype(np.float32)
    lq = -0.5 * (y - x.astype(np.float64) @ model.w_true) ** 2 - 0.5 * math.log(
        2 * math.pi
    )

    def exact(beta):
        ex = conjugate_exact(model, beta)
        out = {q: float(getattr(ex, a)) for q, a in EXACT_NAMES.items()}
        out["WAIC"] = ex.bayes_training_loss + beta * ex.functional_variance / N
        gap = beta * ex.functional_variance
        out["EOS_bayes"] = N * (ex.bayes_generalization_error - out["B_t"]) - gap
        out["EOS_gibbs"] = N * (out["G_g"] - out["G_t"]) - gap
        return out

    kw = {
        "log_q": log_q(model),
        "population_kl": lambda w: population_kl(model, w),
        "fresh_data": ((jnp.asarray(x), jnp.asarray(y)), lq),
    }
    return model.posterior, 3, kw, exact, {"lam": 1.5, "nu": 1.5}, 1.0


def singular_model(key, fresh_m: int):
    """y = w1 w2 x + noise with a normalised N(0, I) prior; F, E_nL, C exact."""
    zm = monomial_regression(key, (1, 1), n=N, sigma=SIGMA_SING)
    x, y = zm.posterior.data
    s2 = SIGMA_SING**2
    const = 0.5 * math.log(2 * math.pi * s2)
    post = tempered_posterior(
        zm.posterior.loglik_fn,
        zm.posterior.data,
        logprior_fn=lambda w: -0.5 * jnp.sum(w**2) - math.log(2 * math.pi),
        beta=1.0,
        full_loss_fn=zm.posterior.full_loss_fn,
    )
    rng = np.random.default_rng(2)
    xf = rng.standard_normal(fresh_m).astype(np.float32)
    yf = (SIGMA_SING * rng.standard_normal(fresh_m)).astype(np.float32)
    y64 = np.asarray(y, np.float64)
    kw = {
        "log_q": -0.5 * y64**2 / s2 - const,
        "population_kl": lambda w: (w[0] * w[1]) ** 2 / (2 * s2),
        "fresh_data": (
            (jnp.asarray(xf), jnp.asarray(yf)),
            -0.5 * yf.astype(np.float64) ** 2 / s2 - const,
        ),
    }
    stats = (np.asarray(x, np.float64), y64)
    return post, 2, kw, lambda b: crossing_exact(*stats, b), {"lam": 0.5}, s2


def crossing_exact(x, y, beta):
    """F_n(β), E_β[nL_n] and C = β² Var_β[nL_n] of the w1·w2 model by quadrature over
    w1 (given w1, f = w1·w2 is Gaussian and nL_n is quadratic in f)."""
    s2, n = SIGMA_SING**2, x.size
    a = y @ y / (2 * s2) + 0.5 * n * math.log(2 * math.pi * s2)
    b, c = -(x @ y) / s2, (x @ x) / (2 * s2)
    w1 = np.linspace(-8.0, 8.0, 400_001)
    p = 1.0 + 2 * beta * c * w1**2
    log_wt = -0.5 * w1**2 - 0.5 * np.log(p) + beta**2 * b**2 * w1**2 / (2 * p)
    top = log_wt.max()
    wt = np.exp(log_wt - top)
    h = w1[1] - w1[0]
    z = wt.sum() * h / math.sqrt(2 * math.pi)
    wt /= wt.sum()
    mu, v = -beta * b * w1**2 / p, w1**2 / p  # mean and variance of f given w1
    m2, m3, m4 = mu**2 + v, mu**3 + 3 * mu * v, mu**4 + 6 * mu**2 * v + 3 * v**2
    g1 = b * mu + c * m2  # E[nL_n − a | w1]
    g2 = b**2 * m2 + 2 * b * c * m3 + c**2 * m4
    e = float(wt @ g1)
    return {
        "F": beta * a - top - math.log(z),
        "E_nL": a + e,
        "C": beta**2 * float(wt @ g2 - e**2),
    }


def rows_for(name, d, exact, theory, n) -> list[dict]:
    rows = []
    for b, table in zip(d.betas, d.rows):
        truth = exact(float(b))
        for r in table:
            ex = truth.get(r.quantity)
            z = None if ex is None or not r.error > 0 else (r.estimate - ex) / r.error
            rows.append(
                {
                    "model": name,
                    "beta": float(b),
                    "quantity": r.quantity,
                    "meaning": r.meaning,
                    "estimate": r.estimate,
                    "sigma": r.error if math.isfinite(r.error) else None,
                    "exact": ex,
                    "z": z,
                    "n": n,
                    **{k: v for k, v in theory.items()},
                }
            )
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 β, short chains (CI)")
    ap.add_argument("--out", type=Path, help="output directory (default: out/)")
    args = ap.parse_args(argv)
    out = args.out or HERE / "out" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    betas = (
        [1 / math.log(N), 1.0]
        if args.quick
        else [0.1, 0.2, 1 / math.log(N), 0.5, 1.0, 2.0]
    )
    run = (
        DictionaryRun(num_chains=4, num_steps=1500, num_warmup=500, ti_rungs=8)
        if args.quick
        else DictionaryRun(
            num_chains=8, num_steps=16_000, num_warmup=4000, thinning=8, ti_rungs=24
        )
    )
    fresh_m = 2000 if args.quick else 10_000
    all_rows = [
        r for r in read_rows(out / "results.json") if r.get("quick") != args.quick
    ]
    for i, (name, build) in enumerate(
        {"regular_d3": regular_model, "crossing_w1w2": singular_model}.items()
    ):
        post, dim, kw, exact, theory, s2 = build(jax.random.fold_in(key, i), fresh_m)
        d = thermodynamic_dictionary(
            jax.random.fold_in(key, 100 + i),
            post,
            lambda b, s2=s2: MALA(0.5 * s2 / (N * b + s2)),
            jnp.full(dim, 0.1),
            betas=betas,
            run=run,
            **kw,
        )
        print(f"\n== {name} ==\n{d!r}")
        rows = rows_for(name, d, exact, theory, N)
        for r in rows:
            r["quick"] = args.quick
        all_rows += rows
        write_json_atomic(out / "results.json", all_rows)
        save_datatree(d.to_datatree(), out / f"{name}.nc")
        plot_dictionary(rows, out / f"dictionary_{name}.png", title=f"{name}, n = {N}",
                        n=N, **theory)  # fmt: skip
    summary(all_rows)
    print(f"\nwrote {out / 'results.json'} and figures in {out}/")
    return all_rows


def summary(rows) -> None:
    zs = [r for r in rows if r["z"] is not None]
    worst = sorted(zs, key=lambda r: -abs(r["z"]))[:5]
    print(f"\n{len(zs)} estimates with exact values; |z| > 3: "
          f"{sum(abs(r['z']) > 3 for r in zs)}; largest:")  # fmt: skip
    for r in worst:
        print(f"  {r['model']:<14} β={r['beta']:<7.4g} {r['quantity']:<9} "
              f"{r['estimate']:.5g} ± {r['sigma']:.2g} vs {r['exact']:.5g} "
              f"(z = {r['z']:+.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
