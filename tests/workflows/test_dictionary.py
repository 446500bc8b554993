"""The one-call thermodynamic dictionary: shape of its outputs, and (slow) every row
against the conjugate regression's closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import MALA
from slt_sampler.workflows.dictionary import DictionaryRun, thermodynamic_dictionary
from slt_sampler.zoo.conjugate import (
    conjugate_exact,
    conjugate_regression,
    log_q,
    population_kl,
)

from ..estimators._conjugate_draws import exact_loo_loss


def _fresh(model, m, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, model.dim)).astype(np.float32)
    y = (x @ model.w_true + model.sigma * rng.standard_normal(m)).astype(np.float32)
    lq = -0.5 * (y - x.astype(np.float64) @ model.w_true) ** 2 / model.sigma**2
    lq -= 0.5 * math.log(2 * math.pi * model.sigma**2)
    return (jnp.asarray(x), jnp.asarray(y)), lq


def _run(model, betas, run, fresh_m):
    n = model.posterior.n
    return thermodynamic_dictionary(
        jax.random.key(1),
        model.posterior,
        lambda b: MALA(1.0 / (n * b + 1.0)),
        jnp.zeros(model.dim),
        betas=betas,
        run=run,
        log_q=log_q(model),
        population_kl=lambda w: population_kl(model, w),
        fresh_data=_fresh(model, fresh_m),
    )


@pytest.mark.slow
def test_outputs_have_the_promised_shape():
    model = conjugate_regression(jax.random.key(0), 2, 100)
    run = DictionaryRun(num_chains=2, num_steps=100, num_warmup=50, ti_rungs=4)
    d = _run(model, [0.5, 1.0], run, 200)
    tab = d.table()
    assert list(tab.columns) == ["quantity", "meaning", "beta", "estimate", "error"]
    expected = {"F", "E_nL", "U", "S", "C", "G_t", "G_g", "B_t", "B_g", "V", "nu"}
    expected |= {"WAIC", "LOO", "EOS_bayes", "EOS_gibbs"}
    assert set(tab.quantity) == expected
    assert len(tab) == 2 * len(expected)
    assert np.all(np.isfinite(tab.estimate))
    tree = d.to_datatree()
    stats = tree["sample_stats"].dataset
    assert stats["n_loss"].dims == ("beta", "chain", "draw")
    assert stats.sizes["chain"] == 2 and stats.sizes["draw"] == 100
    assert tree["dictionary"].dataset["estimate"].shape == (len(expected), 2)
    text = repr(d)
    assert len(text.splitlines()) <= 25 and "WAIC" in text


@pytest.mark.slow
def test_flat_prior_gives_only_prior_free_rows():
    model = conjugate_regression(jax.random.key(0), 2, 100)
    post = model.posterior.replace(logprior_fn=None)
    d = thermodynamic_dictionary(
        jax.random.key(2),
        post,
        MALA(0.005),
        jnp.zeros(2),
        betas=1.0,
        run=DictionaryRun(num_chains=2, num_steps=60, num_warmup=20),
    )
    assert set(d.table().quantity) == {"E_nL", "C", "V", "nu", "WAIC", "LOO"}


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"betas": [0.0, 1.0]}, ValueError, "betas"),
        ({"betas": "1"}, TypeError, "betas"),
    ],
)
def test_bad_betas(kwargs, err, match):
    model = conjugate_regression(jax.random.key(0), 2, 50)
    with pytest.raises(err, match=match):
        thermodynamic_dictionary(
            jax.random.key(0), model.posterior, MALA(0.01), jnp.zeros(2), **kwargs
        )


def test_rejects_a_non_posterior():
    with pytest.raises(TypeError, match="TemperedPosterior"):
        thermodynamic_dictionary(
            jax.random.key(0), object(), MALA(0.01), jnp.zeros(2), betas=[1.0]
        )


@pytest.mark.slow
def test_every_row_matches_the_closed_forms():
    """Conjugate regression (d = 3, n = 400) at β ∈ {0.1, 1/log n, 1}, MALA 8 chains
    × 3000 draws: every row within 3.5 of its own error of the exact value."""
    model = conjugate_regression(jax.random.key(0), 3, 400)
    betas = [0.1, 1 / math.log(400), 1.0]
    run = DictionaryRun(num_chains=8, num_steps=3000, num_warmup=500, ti_rungs=16)
    d = _run(model, betas, run, 5000)
    names = {
        "F": "free_energy",
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
    zs = []
    for b, rows in zip(d.betas, d.rows):
        ex = conjugate_exact(model, b)
        truth = {q: getattr(ex, a) for q, a in names.items()}
        truth["E_nL"] = ex.mean_energy
        truth["WAIC"] = ex.bayes_training_loss + b * ex.functional_variance / 400
        truth["LOO"] = exact_loo_loss(model, b)
        for r in rows:
            if r.quantity in truth:
                zs.append((r.quantity, b, (r.estimate - truth[r.quantity]) / r.error))
    bad = [z for z in zs if abs(z[2]) > 3.5]
    assert not bad, bad
    assert len(zs) == 3 * 13


def test_a_rung_whose_chains_do_not_move_is_flagged():
    # one step size for every rung: far too large at β = 1 (acceptance ~0), so
    # energies there (and F, S through the ladder) would describe the start point
    model = conjugate_regression(jax.random.key(0), 2, 100)
    run = DictionaryRun(num_chains=2, num_steps=40, num_warmup=0, ti_rungs=0)
    with pytest.warns(RuntimeWarning, match=r"acceptance below .*β=1: 0\.0"):
        d = thermodynamic_dictionary(
            jax.random.key(1),
            model.posterior,
            MALA(jnp.asarray(1.0)),
            jnp.zeros(model.dim),
            betas=[1.0],
            run=run,
        )
    assert any("acceptance below" in note for note in d.notes)
