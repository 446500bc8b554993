"""Tests for slt_sampler.estimators._mcse (R-hat, ESS, MCSE on (chain, draw) arrays).

The statistics themselves come from ``arviz_stats.base.array_stats``; these tests check
what can go wrong around it. Three tiers:

* ground truth: Gaussian AR(1) chains with coefficient φ have a known ESS
  ``S (1 - φ) / (1 + φ)``, MCSE of the mean ``σ / sqrt(ESS)`` and tail-indicator
  autocorrelation; R-hat is ~1 for chains of one law and clearly above 1.01 when one
  chain is shifted;
* the wrappers' contract: float / array returns, accepted input types, validation
  errors that name the argument, constant chains;
* per-chain MCSE: each chain's error bar uses that chain alone.

Ground-truth tolerances are ``4 * sd / sqrt(seeds)`` of the per-seed ratios
estimate / truth, plus an allowance for the estimator's own finite-sample bias,
measured over 200 seeds at these sizes: ESS and MCSE within 1.1%, tail ESS (the
minimum of two quantile ESS, so biased low) about -2.5%.
"""

import warnings

import numpy as np
import pytest
from scipy import signal, special, stats

from slt_sampler.estimators import _mcse

SEEDS = range(8)
BIAS = 0.02  # allowance for ESS / MCSE finite-sample bias (measured <= 1.1%)
TAIL_BIAS = 0.04  # tail ESS is a minimum of two noisy ESS (measured ~ -2.5%)


def ar1(rng, num_chains, num_draws, phi):
    """Stationary Gaussian AR(1) chains with unit innovations: sd 1/sqrt(1 - φ²)."""
    noise = rng.normal(size=(num_chains, num_draws))
    noise[:, 0] /= np.sqrt(1.0 - phi**2)
    return signal.lfilter([1.0], [1.0, -phi], noise, axis=1)


def ar1_ess(num_samples, phi):
    """Asymptotic ESS of the mean of an AR(1) chain: S (1 - φ) / (1 + φ)."""
    return num_samples * (1.0 - phi) / (1.0 + phi)


def assert_near_truth(ratios, bias):
    """Mean of per-seed estimate/truth ratios is 1 within 4 SE of the seeds + bias."""
    ratios = np.asarray(ratios)
    se = ratios.std(ddof=1) / np.sqrt(ratios.size)
    assert abs(ratios.mean() - 1.0) <= 4.0 * se + bias, (ratios.mean(), se)


# ------------------------------------------------------------------------ ground truth


@pytest.mark.parametrize("phi", [-0.3, 0.0, 0.5, 0.9])
def test_ess_and_mcse_of_ar1_match_theory(phi):
    num_chains, num_draws = 4, 4000
    ess_true = ar1_ess(num_chains * num_draws, phi)
    sigma = 1.0 / np.sqrt(1.0 - phi**2)
    ratios = {"ess_mean": [], "ess_bulk": [], "mcse_mean": [], "per_chain_mcse": []}
    for seed in SEEDS:
        x = ar1(np.random.default_rng(seed), num_chains, num_draws, phi)
        ratios["ess_mean"].append(_mcse.ess_mean(x) / ess_true)
        ratios["ess_bulk"].append(_mcse.ess_bulk(x) / ess_true)  # z-scale ~ identity
        ratios["mcse_mean"].append(_mcse.mcse_mean(x) / (sigma / np.sqrt(ess_true)))
        per_chain_true = sigma / np.sqrt(ar1_ess(num_draws, phi))
        ratios["per_chain_mcse"].extend(_mcse.per_chain_mcse(x) / per_chain_true)
    for name, r in ratios.items():
        print(f"phi={phi} {name}: {np.mean(r):.4f} ± {np.std(r, ddof=1):.4f}")
        assert_near_truth(r, BIAS)


@pytest.mark.parametrize("num_chains", [1, 2, 8])
def test_iid_normal_ess_is_the_number_of_draws(num_chains):
    num_draws = 2000
    ratios = {"ess_mean": [], "ess_bulk": [], "ess_tail": []}
    for seed in SEEDS:
        x = np.random.default_rng(seed).normal(3.0, 2.0, size=(num_chains, num_draws))
        for name, r in ratios.items():
            r.append(getattr(_mcse, name)(x) / x.size)
    for name, r in ratios.items():
        assert_near_truth(r, TAIL_BIAS if name == "ess_tail" else BIAS)


def indicator_ess(num_samples, phi, p):
    """ESS of 1[x <= Q(p)] for Gaussian AR(1): lag-k correlation of the indicator is
    (Φ₂(h, h; φᵏ) - p²) / (p(1 - p)), with Φ₂(h, h; r) = Φ(h) - 2 T(h, √((1-r)/(1+r)))
    (Owen's T)."""
    h = stats.norm.ppf(p)
    r = phi ** np.arange(1, 400)
    joint = p - 2.0 * special.owens_t(h, np.sqrt((1.0 - r) / (1.0 + r)))
    return num_samples / (1.0 + 2.0 * np.sum((joint - p * p) / (p * (1.0 - p))))


@pytest.mark.parametrize("prob", [(0.05, 0.95), (0.25, 0.75)])
def test_ess_tail_of_ar1_matches_theory(prob):
    """Also checks that ``prob`` is used: the two truths differ by ~30% at φ = 0.5."""
    phi, num_chains, num_draws = 0.5, 4, 4000
    truth = indicator_ess(num_chains * num_draws, phi, prob[0])
    ratios = [
        _mcse.ess_tail(ar1(np.random.default_rng(s), num_chains, num_draws, phi), prob)
        / truth
        for s in SEEDS
    ]
    assert_near_truth(ratios, TAIL_BIAS)


def test_ess_tail_default_is_vehtari_5_95():
    x = ar1(np.random.default_rng(1), 4, 1000, 0.5)
    assert _mcse.ess_tail(x) == _mcse.ess_tail(x, prob=(0.05, 0.95))
    assert _mcse.ess_tail(x) != _mcse.ess_tail(x, prob=(0.11, 0.89))  # ArviZ's


def test_rhat_is_one_for_chains_of_one_law():
    for seed in SEEDS:
        x = ar1(np.random.default_rng(seed), 4, 2000, 0.5)
        assert 0.995 < _mcse.rhat(x) < 1.01


@pytest.mark.parametrize("shift_sd", [2.0, 4.0])
def test_rhat_flags_one_chain_shifted_by_several_sd(shift_sd):
    phi = 0.5
    for seed in SEEDS:
        x = ar1(np.random.default_rng(seed), 4, 2000, phi)
        x[0] += shift_sd / np.sqrt(1.0 - phi**2)
        assert _mcse.rhat(x) > 1.2  # measured >= 1.28 at 2 sd, ~1.52 at 4 sd


def test_rhat_tail_flags_a_wider_chain():
    """Same location, one chain 3x wider: only the folded (tail) R-hat sees it."""
    for seed in SEEDS:
        x = np.random.default_rng(seed).normal(size=(4, 1000))
        x[0] *= 3.0
        assert _mcse.rhat(x) > 1.05  # measured >= 1.11


def test_split_rhat_flags_a_drift_shared_by_every_chain():
    for seed in SEEDS:
        x = np.random.default_rng(seed).normal(size=(4, 1000))
        assert _mcse.rhat(x + np.linspace(0.0, 3.0, 1000)) > 1.1  # measured >= 1.22


# --------------------------------------------------------------------------- contract

SCALAR_FNS = [
    _mcse.rhat,
    _mcse.ess_bulk,
    _mcse.ess_tail,
    _mcse.ess_mean,
    _mcse.mcse_mean,
]
ALL_FNS = [*SCALAR_FNS, _mcse.per_chain_mcse]


@pytest.mark.parametrize("fn", SCALAR_FNS, ids=lambda f: f.__name__)
def test_scalar_diagnostics_return_python_floats_for_any_array_type(fn):
    import jax.numpy as jnp

    x = ar1(np.random.default_rng(4), 3, 200, 0.5).astype(np.float32)
    reference = fn(x.astype(np.float64))
    assert type(reference) is float and np.isfinite(reference)
    for variant in (x, jnp.asarray(x), x.tolist()):
        out = fn(variant)
        assert type(out) is float and out == reference  # computed in float64


def test_per_chain_mcse_returns_a_float64_array_per_chain():
    import jax.numpy as jnp

    x = ar1(np.random.default_rng(5), 3, 200, 0.5)
    out = _mcse.per_chain_mcse(jnp.asarray(x, dtype=jnp.float32))
    assert isinstance(out, np.ndarray) and out.shape == (3,) and out.dtype == np.float64
    assert np.all(out > 0)


@pytest.mark.parametrize("fn", ALL_FNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(100,), (2, 50, 3), ()])
def test_rejects_non_2d_naming_x_and_the_fix(fn, shape):
    msg = r"`x` must be a 2-D array shaped \(chain, draw\); got shape .*x\[None, :\]"
    with pytest.raises(ValueError, match=msg):
        fn(np.zeros(shape))


@pytest.mark.parametrize("fn", ALL_FNS, ids=lambda f: f.__name__)
def test_rejects_too_few_draws(fn):
    msg = r"`x` needs at least 4 draws per chain; got shape \(4, 3\).*more draws"
    with pytest.raises(ValueError, match=msg):
        fn(np.random.default_rng(0).normal(size=(4, 3)))


@pytest.mark.parametrize("fn", ALL_FNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_with_its_index(fn, bad):
    x = np.random.default_rng(0).normal(size=(2, 10))
    x[1, 7] = bad
    with pytest.raises(ValueError, match=r"`x` contains 1 non-finite.*index \(1, 7\)"):
        fn(x)


def test_rhat_needs_two_chains_but_ess_and_mcse_do_not():
    x = np.random.default_rng(0).normal(size=(1, 100))
    with pytest.raises(
        ValueError, match=r"`x` needs at least 2 chains.*num_chains >= 2"
    ):
        _mcse.rhat(x)
    for fn in ALL_FNS[1:]:
        assert np.all(fn(x) > 0), fn.__name__


@pytest.mark.parametrize("prob", [(0.95, 0.05), (0.0, 0.9), (0.1, 1.0), (0.5, 0.5)])
def test_ess_tail_rejects_bad_prob(prob):
    with pytest.raises(ValueError, match=r"`prob` must be two probabilities.*got"):
        _mcse.ess_tail(np.random.default_rng(0).normal(size=(2, 50)), prob=prob)


def test_constant_chains_give_full_ess_zero_mcse_and_no_warnings():
    x = np.full((3, 20), 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _mcse.ess_mean(x) == _mcse.ess_bulk(x) == _mcse.ess_tail(x) == x.size
        assert _mcse.mcse_mean(x) == 0.0
        np.testing.assert_array_equal(_mcse.per_chain_mcse(x), np.zeros(3))
        assert np.isnan(_mcse.rhat(x))  # W = B = 0
        assert _mcse.rhat(x + np.arange(3.0)[:, None]) == np.inf  # W = 0 < B


# -------------------------------------------------------------------- per-chain MCSE


def test_per_chain_mcse_uses_each_chain_alone():
    x = ar1(np.random.default_rng(6), 4, 4000, 0.5)
    per_chain = _mcse.per_chain_mcse(x)
    alone = [_mcse.per_chain_mcse(x[[c]])[0] for c in range(4)]
    np.testing.assert_allclose(per_chain, alone, rtol=1e-12)
    # the other chains cannot move chain 0's error bar
    y = x.copy()
    y[1:] = 10.0 * y[1:] + 100.0
    np.testing.assert_allclose(_mcse.per_chain_mcse(y)[0], per_chain[0], rtol=1e-12)
    # and it is the pooled MCSE of that chain alone, up to splitting (measured
    # within 4.5% over 200 chains; pooling 4 chains' ESS would halve it)
    single = [_mcse.mcse_mean(x[[c]]) for c in range(4)]
    np.testing.assert_allclose(per_chain, single, rtol=0.1)
