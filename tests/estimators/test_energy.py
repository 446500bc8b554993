"""Average energy, entropy and heat capacity against the conjugate closed forms.

Exact posterior draws (default tier) and the project's MALA through ``sample`` (slow),
at β ∈ {0.1, 1/log n, 1}: each estimate within 3 of its own standard errors of the
exact value, and, over independent replicates, the z-scores have unit spread (the
error bars cover the truth and are not inflated).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from slt_sampler import MALA, sample
from slt_sampler.estimators.energy import average_energy, entropy, heat_capacity
from slt_sampler.zoo.conjugate import conjugate_exact, conjugate_regression

from ._conjugate_draws import exact_draws, n_loss, neg_log_prior

N = 400
BETAS = (0.1, 1.0 / math.log(N), 1.0)


@pytest.fixture(scope="module")
def model():
    return conjugate_regression(jax.random.key(11), 3, N)


def _estimates(model, w, beta, ex):
    nl, nlp = n_loss(model, w), neg_log_prior(model, w)
    return {
        "average_energy": average_energy(
            nl, nlp, beta, n_empirical_entropy=ex.n_empirical_entropy
        ),
        "entropy": entropy(nl, nlp, beta, ex.free_energy),
        "heat_capacity": heat_capacity(nl, beta),
    }


@pytest.mark.parametrize("beta", BETAS)
def test_exact_draws_match_closed_forms(model, beta):
    ex = conjugate_exact(model, beta)
    w = exact_draws(1, model, beta, chains=8, draws=500)
    for name, est in _estimates(model, w, beta, ex).items():
        truth = getattr(ex, name)
        z = (est.estimate - truth) / est.error
        assert abs(z) < 3, (name, beta, est.estimate, truth, est.error)
        assert est.per_chain.shape == (8,)


def test_error_bars_are_honest(model):
    """Over 60 independent replicates the z-scores have sd ≈ 1 (neither too narrow
    nor too wide) for each quantity."""
    beta = BETAS[1]
    ex = conjugate_exact(model, beta)
    zs = {k: [] for k in ("average_energy", "entropy", "heat_capacity")}
    for rep in range(60):
        w = exact_draws(100 + rep, model, beta, chains=4, draws=100)
        for name, est in _estimates(model, w, beta, ex).items():
            zs[name].append((est.estimate - getattr(ex, name)) / est.error)
    for name, z in zs.items():
        z = np.asarray(z)
        # sd of the sample sd of 60 unit normals is ~0.09
        assert 0.75 < np.std(z) < 1.3, (name, np.std(z))
        assert abs(np.mean(z)) < 0.45, (name, np.mean(z))


def test_free_energy_error_adds_in_quadrature(model):
    beta = 1.0
    ex = conjugate_exact(model, beta)
    w = exact_draws(2, model, beta, chains=4, draws=100)
    nl, nlp = n_loss(model, w), neg_log_prior(model, w)
    a = entropy(nl, nlp, beta, ex.free_energy)
    b = entropy(nl, nlp, beta, ex.free_energy, 0.5)
    assert b.estimate == a.estimate
    assert b.error == pytest.approx(math.hypot(a.error, 0.5))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: average_energy(x, x[:, :5], 1.0),
        lambda x: heat_capacity(x[0], 1.0),
        lambda x: heat_capacity(x, -1.0),
        lambda x: entropy(x, x, 1.0, float("nan")),
        lambda x: heat_capacity(np.where(x > 0, np.nan, x), 1.0),
    ],
)
def test_bad_input_names_the_argument(call):
    x = np.random.default_rng(0).normal(size=(2, 10))
    with pytest.raises(ValueError, match="n_loss|neg_log_prior|beta|free_energy"):
        call(x)


@pytest.mark.slow
@pytest.mark.parametrize("beta", BETAS)
def test_mala_draws_match_closed_forms(model, beta):
    """The project's MALA, started from exact draws (stationary), 8 chains × 2000
    kept draws: U, S, C within 3 autocorrelation-aware MCSE of the closed forms."""
    ex = conjugate_exact(model, beta)
    post = model.posterior.replace(beta=beta)
    step = float(np.linalg.eigvalsh(ex.post_cov).max())
    init = exact_draws(3, model, beta, chains=8, draws=1)[:, 0].astype(np.float32)
    res = sample(
        jax.random.key(4),
        MALA(step),
        post,
        init,
        num_chains=8,
        num_steps=4000,
        thinning=2,
        keep_positions=True,
        chains_axis=True,
    )
    assert not res.diverged.any()
    w = np.asarray(res.positions, np.float64)
    for name, est in _estimates(model, w, beta, ex).items():
        truth = getattr(ex, name)
        assert abs(est.estimate - truth) < 3 * est.error, (name, est, truth)
        # not absurdly wide: at most 4x the error of as many independent draws
        iid = _estimates(model, exact_draws(5, model, beta, 8, 2000), beta, ex)[name]
        assert est.error < 4 * iid.error, (name, est.error, iid.error)
