"""The total error bar of λ̂: parts, their arithmetic, and their theory."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt_sampler.estimators import _mcse
from slt_sampler.estimators.llc import (
    approaching,
    error_budget,
    group_convergence,
    llc,
    with_error_budget,
)


def _trace(seed=0, chains=4, draws=4000, drift=0.0):
    rng = np.random.default_rng(seed)
    t = 1.0 + 0.01 + 0.002 * rng.normal(size=(chains, draws))
    return t + drift * np.linspace(0, 1, draws)[None, :]


def test_exact_sampler_budget_is_the_mcse():
    trace = _trace()
    r = llc(trace, 1.0, n=1000, beta=0.5)
    b = error_budget(r, trace, None)
    assert b.bias == 0 and b.bias_sd == 0
    assert b.drift < 0.5 * r.llc_mcse  # stationary: the excess is ~0
    assert b.total == pytest.approx(np.hypot(r.llc_mcse, b.drift))
    assert r.llc_sigma == pytest.approx(r.llc_mcse) and r.llc_raw == r.llc


@pytest.mark.parametrize("t", [1.02, 1.08])
def test_hot_chain_is_corrected_by_half_its_excess_with_that_as_sigma(t):
    trace = _trace()
    r = llc(trace, 1.0, n=1000, beta=0.5)
    b = error_budget(r, trace, (t, 0.0))
    assert b.bias == pytest.approx(r.llc * (t - 1) / 2)
    assert b.bias_sd == pytest.approx(r.llc * (t - 1) / 2)
    c = with_error_budget(r, b)
    assert c.llc == pytest.approx(r.llc - b.bias) and c.llc_raw == r.llc
    assert c.llc_sigma == pytest.approx(b.total) and c.llc_sigma > r.llc_mcse


@pytest.mark.parametrize("t", [0.9, 1.3])
def test_cold_or_nonlinear_temperature_is_not_corrected_but_widens_sigma(t):
    trace = _trace()
    r = llc(trace, 1.0, n=1000, beta=0.5)
    b = error_budget(r, trace, (t, 0.01))
    assert b.bias == 0
    assert b.bias_sd == pytest.approx(r.llc * np.hypot(t - 1, 0.005))


def test_a_drifting_trace_gets_a_drift_term_the_mcse_misses():
    trace = _trace(drift=0.004)  # λ̂ moves by about nβ·0.002 between halves
    r = llc(trace, 1.0, n=1000, beta=0.5)
    b = error_budget(r, trace, None)
    assert b.drift > 1.5 * r.llc_mcse  # the trend also inflates the MCSE a little
    assert b.drift == pytest.approx(500 * 0.002 / 2, rel=0.2)


def test_groups_started_apart_get_a_bracket_of_half_their_excess_gap():
    trace = _trace(chains=8)
    trace[4:] += 0.008  # the dispersed half reads nβ·0.008 = 4 higher in λ̂
    dispersed = np.arange(8) >= 4
    r = llc(trace, 1.0, n=1000, beta=0.5)
    b = error_budget(r, trace, None, dispersed=dispersed)
    # the gap is far outside the groups' Monte-Carlo error (the pooled MCSE counts
    # it as between-chain variance, so it is large too)
    assert b.bracket > 2 * r.llc_mcse
    assert b.bracket == pytest.approx(500 * 0.008 / 2, rel=0.05)
    assert b.total == pytest.approx(np.sqrt(r.llc_mcse**2 + b.drift**2 + b.bracket**2))
    assert error_budget(r, trace, None).bracket == 0  # no groups, no bracket


def test_groups_of_one_law_get_a_bracket_within_their_monte_carlo_error():
    brackets = []
    for seed in range(40):
        trace = _trace(seed=seed, chains=8)
        r = llc(trace, 1.0, n=1000, beta=0.5)
        brackets.append(error_budget(r, trace, dispersed=np.arange(8) >= 4).bracket)
        mcse = r.llc_mcse
    # the excess over the gap's own error is zero in about half the seeds, small else
    assert 0.2 < np.mean(np.array(brackets) == 0) < 0.8
    assert np.mean(brackets) < 0.6 * mcse


def test_groups_started_apart_converge_within_themselves_but_not_pooled():
    """R-hat over all chains sees the gap between the groups (the bracket's job);
    within each group the chains agree, and the ESS is the groups' sum."""
    trace = _trace(chains=8)
    trace[4:] += 0.008
    dispersed = np.arange(8) >= 4
    pooled_rhat, pooled_ess = group_convergence(trace)
    rhat, ess = group_convergence(trace, dispersed)
    assert pooled_rhat > 1.5 and rhat < 1.01
    assert ess == pytest.approx(
        group_convergence(trace[:4])[1] + group_convergence(trace[4:])[1]
    )
    assert ess > 10 * pooled_ess
    # one drifting chain inside a group is still seen
    trace[0] += 0.004 * np.linspace(0, 1, trace.shape[1])
    assert group_convergence(trace, dispersed)[0] > 1.05
    with pytest.raises(ValueError, match="dispersed must be a boolean array"):
        group_convergence(trace, [0, 1] * 4)


def _two_groups(seed, rise=0.0, fall=0.0, one_chain=0.0, common=0.0, flip=False):
    """Chains at w* (0-3) below hot-started ones (4-7), or above with ``flip``; over
    the trace the w* group rises by ``rise``, the hot group falls by ``fall``, chain
    0 alone rises by ``one_chain``, every chain by ``common``."""
    trace = _trace(seed, chains=8, draws=2000)
    trace[4:] += -0.008 if flip else 0.008
    ramp = np.linspace(0, 1, trace.shape[1])
    trace[:4] += rise * ramp
    trace[4:] -= fall * ramp
    trace[0] += one_chain * ramp
    trace += common * ramp
    return trace, np.arange(8) >= 4


def test_a_group_moving_together_towards_the_other_is_approaching():
    """Every chain from w* rising towards the hot-started ones (or every hot-started
    chain falling towards w*), the gap shrinking, is an approach; a drift that every
    chain shares, groups the wrong way round, one drifting chain among stationary
    ones, or stationary groups are not (the last two by chance only)."""
    seeds = range(40)

    def rate(group, **kw):
        return np.mean([approaching(*_two_groups(s, **kw))[group] for s in seeds])

    assert rate(0, rise=0.004) == 1 and rate(1, rise=0.004) < 0.1
    assert rate(1, fall=0.004) == 1 and rate(0, fall=0.004) < 0.1
    assert rate(0, rise=0.004, fall=0.004) == rate(1, rise=0.004, fall=0.004) == 1
    assert rate(0, common=0.004) == rate(1, common=0.004) == 0  # the gap stays
    # w* above the hot group, moving apart: the gap (hot − w*) "shrinks" too
    assert rate(0, rise=0.004, flip=True) == rate(1, fall=0.004, flip=True) == 0
    assert rate(0, one_chain=0.004) < 0.2
    assert rate(0) < 0.1 and rate(1) < 0.1
    assert approaching(*_two_groups(0)[:1], np.arange(8) >= 7) == (False, False)


def test_an_approaching_group_is_judged_by_unsplit_rhat():
    """The shared rise of the chains from w* holds split-R-hat within their group
    above 1.05; unsplit, it is what the hot group's alone is. One chain drifting
    among stationary ones is seen either way."""
    trace, dispersed = _two_groups(0, rise=0.004)
    assert group_convergence(trace, dispersed)[0] > 1.05  # the trend, within w*
    rhat, ess = group_convergence(trace, dispersed, allow_approach=True)
    assert rhat < 1.01 and ess == group_convergence(trace, dispersed)[1]
    assert rhat == pytest.approx(
        max(_mcse.rhat_unsplit(trace[:4]), _mcse.rhat(trace[4:]))
    )
    # the flags a caller already has give the same answer, and are what is used
    flags = approaching(trace, dispersed)
    assert group_convergence(trace, dispersed, moving=flags)[0] == rhat
    assert group_convergence(trace, dispersed, moving=(False, False))[0] > 1.05
    for seed in range(10):
        trace, dispersed = _two_groups(seed, one_chain=0.004)
        assert group_convergence(trace, dispersed, allow_approach=True)[0] > 1.05


@pytest.mark.parametrize(
    "mask", [np.ones(8, bool), np.zeros(8, bool)], ids=["all", "none"]
)
def test_one_group_only_has_no_bracket(mask):
    trace = _trace(chains=8)
    r = llc(trace, 1.0, n=1000, beta=0.5)
    assert error_budget(r, trace, dispersed=mask).bracket == 0


@pytest.mark.parametrize(
    "mask", [np.ones(3, bool), [0, 1] * 4], ids=["wrong length", "not boolean"]
)
def test_a_bad_dispersed_mask_is_named(mask):
    trace = _trace(chains=8)
    r = llc(trace, 1.0, n=1000, beta=0.5)
    with pytest.raises(ValueError, match="dispersed must be a boolean array"):
        error_budget(r, trace, dispersed=mask)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    h=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=30),
    x=st.floats(1e-4, 0.2),
)
def test_unlocalised_gaussian_bias_lies_in_the_temperature_bracket(h, x):
    """Exact stationary law of full-batch SGLD on a Gaussian (variance
    1/(h(1 − εh/2))): the relative bias of λ̂ is within [0, T − 1]."""
    h = np.asarray(h)
    eps = x / h.max()
    var = 1 / (h * (1 - eps * h / 2))
    rel_bias = np.sum(h * var) / len(h) - 1
    t_minus_1 = np.sum(h**2 * var) / np.sum(h) - 1
    assert 0 <= rel_bias <= t_minus_1 * (1 + 1e-9) + 1e-12
