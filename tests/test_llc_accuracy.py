"""Slow ground-truth tier: λ̂ at default settings against exact learning coefficients.

Tolerances are the issue's; each failure message carries λ̂, its MCSE and the target.
"""

import math

import jax
import jax.numpy as jnp
import pytest

from slt_sampler import MALA, estimate_llc, full_loss, llc, sample
from slt_sampler.zoo import models as zoo

pytestmark = pytest.mark.slow
long = pytest.mark.long  # minutes each on 2 CPU cores: run by hand with `-m long`


def _msg(model, est, target):
    r = est.result
    print(
        f"{model.name}: λ̂ = {r.llc:.3f} ± {r.llc_mcse:.3f} vs {target:.3f}"
    )  # -s / -rP
    return (
        f"{model.name}: λ̂ = {r.llc:.3f} ± {r.llc_mcse:.3f} (ε={est.step_size:.3g}, "
        f"{est.num_steps} steps, R-hat {r.rhat:.4f}) vs {target:.3f}"
    )


@pytest.mark.parametrize("d", [2, 10, 50])
@pytest.mark.parametrize("sampler", ["sgld", "psgld", "mala"])
def test_regular_models_within_5_percent(d, sampler):
    model = zoo.regular(jax.random.key(d), d)
    est = estimate_llc(
        jax.random.key(100 + d),
        model.posterior,
        sampler=sampler,
        gamma_check=(),
        progress=False,
    )
    msg = _msg(model, est, model.true.lam)
    assert abs(est.result.llc / model.true.lam - 1) <= 0.05, msg


# Cases 1 (even and odd M+N+H+r, and r > 0 with m = 2), 2, 3 and 4 of Aoyagi-Watanabe.
# For r = 0 in cases 2/3 (e.g. (4, 8, 3, 0)) the exact sampler itself gives +11-14% at
# nβ ≈ 1086: the estimand, localised at the noise-fitting minimiser, carries a β-sized
# noise-fit term there (see the issue notes); those configurations are not used here.
RRR = [
    (5, 5, 4, 0),
    (5, 5, 3, 0),
    (6, 6, 4, 3),
    (2, 8, 2, 1),
    (8, 2, 2, 1),
    (3, 4, 8, 0),
]


@long
@pytest.mark.parametrize("cfg", RRR, ids=lambda c: "M{}_N{}_H{}_r{}".format(*c))
def test_reduced_rank_regression(cfg):
    model = zoo.reduced_rank(jax.random.key(sum(cfg)), *cfg)
    est = estimate_llc(
        jax.random.key(7), model.posterior, gamma_check=(), progress=False
    )
    lam, m = model.true
    finite = lam - (m - 1) / math.log(float(model.posterior.nbeta))
    r = est.result
    close = abs(r.llc / lam - 1) <= 0.10
    within_mcse = abs(r.llc - finite) <= 2 * r.llc_mcse
    msg = _msg(model, est, lam) + f" (finite-nβ {finite:.3f})"
    assert close or within_mcse, msg


@pytest.fixture(scope="module")
def dln():
    return zoo.deep_linear(jax.random.key(0), [10, 10, 10, 10], 3)


_SGLD_RUNS = {}


def _dln_sgld(dln, gamma):
    """Calibrated-SGLD estimate (otherwise default settings) on the DLN at γ, shared
    by the tests that need it."""
    if gamma not in _SGLD_RUNS:
        _SGLD_RUNS[gamma] = estimate_llc(
            jax.random.key(1),
            dln.posterior.replace(gamma=gamma),
            sampler="sgld",
            gamma_check=(),
            progress=False,
        )
    return _SGLD_RUNS[gamma]


def _exact_mala(model, gamma):
    """Long MALA reference on the same (n, β, γ, w*): 4 × 200k steps after 50k."""
    post = model.posterior.replace(gamma=gamma)
    res = sample(
        jax.random.key(11),
        MALA(jnp.asarray(3e-6)),
        post,
        model.w_star,
        num_chains=4,
        num_steps=250_000,
        thinning=10,
        progress=False,
    )
    init = float(full_loss(post, model.w_star))
    return llc(res.losses[:, 50_000:], init, n=post.n, beta=float(post.beta))


@long
def test_dln_42_at_default_settings_at_a_true_minimum():
    """At the balanced minimiser (a true minimum; the aligned w* is a rank-r critical
    point where the exact value itself is 38.06 ± 0.18, −9.4%), the default estimate
    is within 10% of λ = 42 and within 3 σ_total of a long exact run there (41.22 ±
    0.15 by MAMS; NUTS 41.49 ± 0.17, benchmarks/exact_reference.py)."""
    model = zoo.deep_linear(
        jax.random.key(0), [10, 10, 10, 10], 3, minimiser="balanced"
    )
    assert model.true == (42.0, 3) and float(model.posterior.gamma) == 1.0
    est = estimate_llc(jax.random.key(1), model.posterior, progress=False)
    msg = _msg(model, est, 42)
    assert abs(est.result.llc / 42 - 1) <= 0.10, msg
    assert abs(est.result.llc - 41.22) <= 3 * float(
        math.hypot(est.result.llc_sigma, 0.15)
    ), msg


@long
@pytest.mark.parametrize("gamma", [1.0, 100.0])
def test_calibrated_sgld_agrees_with_exact_sampler(dln, gamma):
    exact = _exact_mala(dln, gamma)
    est = _dln_sgld(dln, gamma)
    msg = _msg(dln, est, exact.llc) + f" (exact MCSE {exact.llc_mcse:.3f})"
    print(f"gamma={gamma}: exact MALA λ̂ = {exact.llc:.3f} ± {exact.llc_mcse:.3f}")
    assert abs(est.result.llc / exact.llc - 1) <= 0.05, msg
    if gamma == 100.0:
        # strong localisation pulls the exact answer far below 42: an SGLD step that
        # reports 42 here is two biases cancelling and must not be chosen
        assert exact.llc < 0.85 * 42
        assert est.result.llc < 0.85 * 42, msg


@long
def test_dln_with_10k_parameters_within_15_percent():
    model = zoo.deep_linear(jax.random.key(3), [50, 50, 50, 50, 50], 10)
    assert model.dim >= 10_000
    est = estimate_llc(
        jax.random.key(4), model.posterior, gamma_check=(), progress=False
    )
    msg = _msg(model, est, model.true.lam)
    assert abs(est.result.llc / model.true.lam - 1) <= 0.15, msg
