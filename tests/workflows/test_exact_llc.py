"""estimate_llc's exact path (sampler="auto" → MAMS where full gradients are cheap):
closed-form accuracy within the reported total error, one compiled sampler per model
shape, the auto rule, and what the result reports."""

import dataclasses
import itertools
from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import estimate_llc
from slt_sampler.estimators.llc import group_convergence
from slt_sampler.posterior.base import full_loss
from slt_sampler.samplers import run as driver
from slt_sampler.workflows import _exact_llc
from slt_sampler.workflows import llc as llc_workflow
from slt_sampler.zoo import models as zoo


def closed_form(model) -> float:
    """λ at the localised regular posterior: ½ Σ h/(h + γ), h of nβ XᵀX/n (σ = 1)."""
    post = model.posterior
    x = np.asarray(post.data[0], np.float64)
    h = np.linalg.eigvalsh(float(post.nbeta) * x.T @ x / post.n)
    return float(0.5 * np.sum(h / (h + float(post.gamma))))


@pytest.fixture(scope="module")
def regular():
    return zoo.regular(jax.random.key(0), 10, n=5000)


def test_default_is_exact_and_within_its_total_error_of_the_closed_form(regular):
    """At a fixed seed λ̂ is within 3 σ_total of the closed form, and σ_total is the
    3% target or better (not wide enough to cover anything)."""
    est = estimate_llc(jax.random.key(1), regular.posterior, progress=False)
    exact = closed_form(regular)
    r = est.result
    assert est.sampler == "mams" and est.settled
    assert abs(r.llc - exact) < 3 * r.llc_sigma, (r.llc, r.llc_sigma, exact)
    assert r.llc_sigma <= 0.03 * r.llc and r.ess >= _exact_llc.MIN_ESS
    assert est.error_budget.bias == 0  # exact: no step-size bias to correct
    assert est.burn_in >= _exact_llc.WARM_BLOCKS * _exact_llc.BLOCK
    assert set(est.gamma_sensitivity) == {0.5, 1.0, 2.0}
    text = repr(est)
    assert "sampler  mams" in text and "MAMS warmed up" in text
    assert "no step-size bias (exact sampler)" in text
    assert est.to_datatree().attrs["tuning"] == est.tuning


def test_half_the_chains_start_from_a_hot_spread_and_their_gap_is_in_sigma(
    regular, monkeypatch
):
    """The first HOT_BLOCKS blocks sample β/HOT_FACTOR from w*; then the first half
    of the chains go back to w* and the second half keep their spread, and the
    error budget's bracket is half the groups' excess gap, inside σ_total."""
    block, seen = _exact_llc._block, []

    def spy(key, smp, posterior, start, *args, **kwargs):
        flat = jax.vmap(lambda w: jax.flatten_util.ravel_pytree(w)[0])(start)
        seen.append((float(posterior.beta), np.asarray(flat)))
        return block(key, smp, posterior, start, *args, **kwargs)

    monkeypatch.setattr(_exact_llc, "_block", spy)
    post = regular.posterior
    est = estimate_llc(jax.random.key(2), post, gamma_check=(), progress=False)
    beta, hot = float(post.beta), _exact_llc.HOT_BLOCKS
    assert [b for b, _ in seen[:hot]] == pytest.approx(
        [beta / _exact_llc.HOT_FACTOR] * hot
    )
    assert all(b == pytest.approx(beta) for b, _ in seen[hot:])
    w_star = np.asarray(jax.flatten_util.ravel_pytree(post.center)[0])
    first = seen[hot][1]  # the first block at β starts half at w*, half spread out
    np.testing.assert_array_equal(first[:4], np.broadcast_to(w_star, first[:4].shape))
    assert np.all(np.linalg.norm(first[4:] - w_star, axis=1) > 0)
    b = est.error_budget
    assert b.total == pytest.approx(np.sqrt(b.mcse**2 + b.drift**2 + b.bracket**2))
    kept = est.losses[:, est.burn_in :]
    gap = est.result.nbeta * (kept[4:].mean() - kept[:4].mean())
    assert b.bracket <= abs(gap) / 2 + 1e-12  # the excess over its MC error only
    assert "the first 200 at β/16, after which 4 of the 8 chains" in est.tuning
    assert "bracket" in repr(est)
    assert "4 chains at w*" in repr(est) and "4 hot-started" in repr(est)
    assert "still approaching" not in repr(est)
    # a trace whose chains from w* all still rise towards the others: the summary
    # says their group's R-hat is the unsplit one
    rng = np.random.default_rng(0)
    rising = 1.0 + 0.002 * rng.normal(size=(8, 2000))
    rising[4:] += 0.01
    rising[:4] += 0.004 * np.linspace(0, 1, 2000)
    shown = repr(est._replace(losses=rising, burn_in=0))
    assert "the chains at w* still approaching the other group" in shown
    hot = est.to_datatree()["sample_stats"]["hot_start"].values
    np.testing.assert_array_equal(hot, [0, 0, 0, 0, 1, 1, 1, 1])


def test_the_step_search_keeps_a_rejected_step_and_its_bracket():
    """A step rejected near w* stays an upper bound (only an accepted one is
    forgotten), and a new preconditioner keeps a bracket and tries its midpoint;
    with only a good step it tries that step again."""
    search = _exact_llc._StepSearch(0.02)
    search.update(0.5)  # rejected: halved, 0.02 the upper end
    search.forget_good()
    assert (search.lo, search.hi, search.eps) == (None, 0.02, 0.01)
    search.update(0.99)  # accepted: the midpoint next
    assert search.eps == pytest.approx(np.sqrt(0.01 * 0.02))
    search.restart()
    assert (search.lo, search.hi) == (0.01, 0.02)
    assert search.eps == pytest.approx(np.sqrt(0.01 * 0.02))
    good = _exact_llc._StepSearch(0.02)
    good.update(0.99)  # accepted: doubled, no upper end
    good.forget_good()
    assert (good.lo, good.hi, good.eps) == (None, None, 0.04)
    good.update(0.95)
    good.restart()  # a new metric: the good step again, not its double
    assert (good.lo, good.hi, good.eps) == (None, None, 0.04)


class _Block(NamedTuple):
    losses: np.ndarray
    stats: dict


def _cooling_block(fall, lam, acceptance=1.0, chains=4):
    """A block of ``chains`` hot-started chains (nβ = 1, L_n(w*) = 0) whose λ̂ is
    ``lam`` over the last quarter, ``lam + fall`` over the third and far higher over
    the first half (which the test leaves to the fast fall)."""
    q = _exact_llc.BLOCK // 4
    trace = np.concatenate(
        [
            np.full(2 * q, lam + 100.0 * (fall + lam)),
            np.full(q, lam + fall),
            np.full(q, lam),
        ]
    )
    acc = np.full((chains, 4 * q), acceptance)
    return _Block(np.tile(trace, (chains, 1)), {"acceptance_rate": acc})


def test_the_hot_chains_have_cooled_when_their_lambda_stops_falling():
    """Cooled: they accept at least COOL_MIN_ACCEPTANCE and λ̂ fell from the block's
    third quarter to its last by at most COOL_TOL of itself plus the noise floor
    2·sqrt(λ̂/k), however far it fell in the first half."""
    hot = np.ones(4, bool)
    floor = 2.0 * np.sqrt(800.0 / 4)  # λ̂ 800 on 4 chains: 28.3
    tol = _exact_llc.COOL_TOL * 800.0 + floor
    cooled = _exact_llc._cooled
    assert cooled(_cooling_block(0.0, 800.0), hot, 1.0, 0.0)
    assert cooled(_cooling_block(0.95 * tol, 800.0), hot, 1.0, 0.0)
    assert not cooled(_cooling_block(1.05 * tol, 800.0), hot, 1.0, 0.0)
    assert not cooled(_cooling_block(1743.0, 800.0), hot, 1.0, 0.0)  # measured
    low = _exact_llc.COOL_MIN_ACCEPTANCE - 0.01
    assert not cooled(_cooling_block(0.0, 800.0, acceptance=low), hot, 1.0, 0.0)
    # the same fall is large against a small λ̂, small against a large one
    assert not cooled(_cooling_block(150.0, 100.0), hot, 1.0, 0.0)
    assert cooled(_cooling_block(150.0, 2000.0), hot, 1.0, 0.0)
    # judged in units of nβ(L_n − L_n(w*))
    for block in (_cooling_block(150.0, 100.0), _cooling_block(150.0, 2000.0)):
        scaled = block._replace(losses=block.losses / 10 + 5.0)
        assert cooled(scaled, hot, 10.0, 5.0) == cooled(block, hot, 1.0, 0.0)
    # only the hot-started chains count
    mixed = _cooling_block(1743.0, 800.0, chains=8)
    mixed.losses[4:] = 800.0
    assert cooled(mixed, np.arange(8) >= 4, 1.0, 0.0)
    assert not cooled(mixed, np.arange(8) < 4, 1.0, 0.0)


def test_the_hot_chains_cool_down_at_a_small_step_before_the_step_search(
    regular, monkeypatch
):
    """After the hot blocks, cool-down blocks at β run at the hot step over
    COOL_FACTOR, halved after a block in which the hot-started chains accept less
    than COOL_MIN_ACCEPTANCE, at most MAX_COOL_BLOCKS; the step search then starts
    afresh from EPS_GUESS / sqrt(ρ) with every chain, the cool-down in place of its
    first block."""
    block, calls = _exact_llc._block, []

    def spy(key, smp, posterior, start, num_chains, *args, **kwargs):
        res = block(key, smp, posterior, start, num_chains, *args, **kwargs)
        calls.append((kwargs["phase"], float(smp.step_size), float(posterior.beta)))
        cooling = [c for c in calls if "cool-down" in c[0]]
        if "cool-down" in kwargs["phase"] and len(cooling) <= 2:  # hot ones stuck
            acc = np.asarray(res.stats["acceptance_rate"]).copy()
            acc[num_chains // 2 :] = 0.0
            res = res._replace(stats={**res.stats, "acceptance_rate": acc})
        return res

    monkeypatch.setattr(_exact_llc, "_block", spy)
    run = _fixed_run(regular.posterior, 200)
    hot = _exact_llc.HOT_BLOCKS
    phases = [c[0] for c in calls]
    assert phases[:hot] == ["warm-up (hot start)"] * hot
    cool = [c for c in calls if c[0] == "warm-up (cool-down)"]
    assert phases[hot : hot + len(cool)] == ["warm-up (cool-down)"] * len(cool)
    assert 3 <= len(cool) == run.cool_blocks <= _exact_llc.MAX_COOL_BLOCKS
    assert all(beta == float(regular.posterior.beta) for _, _, beta in cool)
    eps_hot = calls[hot - 1][1]  # the hot blocks only shrink ε: at most their last
    steps = [eps for _, eps, _ in cool]
    assert steps[0] <= eps_hot / _exact_llc.COOL_FACTOR + 1e-9
    assert steps[1:3] == pytest.approx([steps[0] / 2, steps[0] / 4])  # the stuck two
    k_h = jax.random.split(jax.random.key(5))[0]  # run_mams's key for ρ
    post = regular.posterior
    rho = abs(_exact_llc.max_curvature(k_h, post, post.center))
    first_search = calls[hot + len(cool)]
    assert first_search[0] == "warm-up"
    assert first_search[1] == pytest.approx(_exact_llc.EPS_GUESS / np.sqrt(rho), 1e-5)
    # the cool-down takes the place of the first search block
    assert (
        run.warmup_steps == (_exact_llc.WARM_BLOCKS + len(cool) - 1) * _exact_llc.BLOCK
    )
    assert f"cooled down at β over {len(cool) * _exact_llc.BLOCK} steps" in run.tuning


def test_one_compiled_sampler_for_warmup_production_and_gamma_checks(monkeypatch):
    """Warm-up, production and γ checks share one driver executable, and a new
    dataset of the same shapes (another seed's model) compiles nothing."""
    monkeypatch.setattr(driver, "_COMPILED", {})
    a = zoo.regular(jax.random.key(3), 4, n=1000)
    b = zoo.regular(jax.random.key(4), 4, n=1000)
    estimate_llc(jax.random.key(0), a.posterior, num_chains=4, progress=False)
    assert len(driver._COMPILED) == 1
    est = estimate_llc(jax.random.key(0), b.posterior, num_chains=4, progress=False)
    assert len(driver._COMPILED) == 1 and est.compile_seconds < 0.5


def test_progress_bar_shows_phase_and_estimate_only_when_asked(capsys, monkeypatch):
    """``progress=True`` draws a bar through warm-up, production (with λ̂ and its
    relative total error) and the γ checks; ``None`` off a terminal draws nothing."""
    monkeypatch.setattr(_exact_llc, "BAR_INTERVAL", 0.0)  # every block redrawn
    m = zoo.regular(jax.random.key(5), 3, n=500)
    estimate_llc(jax.random.key(0), m.posterior, num_chains=2, progress=True)
    err = capsys.readouterr().err
    for part in ("mams", "phase=warm-up", "phase=production", "llc=", "γ check 2"):
        assert part in err, (part, err[-500:])
    estimate_llc(jax.random.key(0), m.posterior, num_chains=2, progress=None)
    assert "mams" not in capsys.readouterr().err


def test_small_models_run_on_one_device_larger_ones_on_all():
    small = {"a": jnp.zeros((8, 10, 10)), "b": jnp.zeros((8, 5))}
    large = {"a": jnp.zeros((8, 40, 25))}
    assert _exact_llc._max_devices(small) == 1
    assert _exact_llc._max_devices(large) is None


def test_auto_rule():
    dln = zoo.deep_linear(jax.random.key(0), [4, 4, 4], 1, n=500)
    post, w = dln.posterior, dln.w_star
    assert _exact_llc.resolve_sampler("auto", post, w, False) == "mams"
    assert _exact_llc.resolve_sampler("auto", post, w, True) == "sgld"
    assert _exact_llc.resolve_sampler("nuts", post, w, False) == "nuts"
    big = [jnp.zeros((200, 100)), jnp.zeros((4, 200))]  # 20,800 parameters
    # with a full_loss_fn shortcut (this model has one) MAMS up to 200,000
    assert _exact_llc.resolve_sampler("auto", post, big, False) == "mams"
    huge = [jnp.zeros((500, 400)), jnp.zeros((4, 500))]  # 202,000 parameters
    assert _exact_llc.resolve_sampler("auto", post, huge, False) == "sgld"
    no_shortcut = dataclasses.replace(post, full_loss_fn=None)  # n·d = 500·16
    assert _exact_llc.resolve_sampler("auto", no_shortcut, w, False) == "mams"
    assert _exact_llc.resolve_sampler("auto", no_shortcut, big, False) == "sgld"
    est = estimate_llc(
        jax.random.key(0), post, step_size=1e-5, num_steps=400, gamma_check=()
    )
    assert est.sampler == "sgld"  # a step size is an SGLD setting


def test_trajectory_length_grows_with_size_and_is_reported():
    """4 integrator steps per proposal up to D_REF parameters, then sqrt(d / D_REF)
    times that to D_KNEE (300 parameters: 8), then (d / D_KNEE)^0.71 times 8 (8,100
    parameters: 83, where the creep was measured to shrink), capped; the summary
    reports the length."""
    steps = _exact_llc._integration_steps
    assert steps(10) == steps(_exact_llc.D_REF) == _exact_llc.INTEGRATION_STEPS
    assert steps(200) == pytest.approx(4 * np.sqrt(200 / 75))
    assert steps(300) == pytest.approx(8.0)
    assert steps(8100) == pytest.approx(83, abs=0.5)
    assert steps(10**6) == _exact_llc.MAX_INTEGRATION_STEPS
    smp = _exact_llc._mams(0.1, jnp.ones(800), jnp.float32)
    assert float(smp.num_integration_steps) == pytest.approx(steps(800))
    dln = zoo.deep_linear(jax.random.key(0), [20, 20, 20], 2, n=500)  # d = 800
    est = estimate_llc(jax.random.key(0), dln.posterior, num_steps=200, gamma_check=())
    assert f"{steps(800):.3g} integrator steps per proposal" in est.tuning


def test_fixed_length_and_an_unsettled_adaptive_run(regular):
    fixed = estimate_llc(
        jax.random.key(2),
        regular.posterior,
        sampler="mams",
        num_steps=250,
        num_chains=2,
        gamma_check=(),
        progress=False,
    )
    assert fixed.losses.shape[1] - fixed.burn_in == 300  # rounded up to whole blocks
    with pytest.warns(RuntimeWarning, match="not_settled|not yet stationary"):
        capped = estimate_llc(
            jax.random.key(2),
            regular.posterior,
            sampler="mams",
            target_rel_error=1e-4,
            max_steps=400,
            num_chains=2,
            gamma_check=(),
            progress=False,
        )
    assert not capped.settled


def test_bad_target_rel_error_names_the_argument(regular):
    for bad in (0.0, 1.5, None, "3%"):
        with pytest.raises((ValueError, TypeError), match="target_rel_error"):
            estimate_llc(jax.random.key(0), regular.posterior, target_rel_error=bad)


def _warm_steps(run) -> int:
    """The warm-up's steps without production restarts (a cool-down takes the place
    of the first search block)."""
    return (_exact_llc.WARM_BLOCKS + max(0, run.cool_blocks - 1)) * _exact_llc.BLOCK


def _fixed_run(post, num_steps):
    """``run_mams`` of 4 chains, ``num_steps`` production steps, from w*."""
    return _exact_llc.run_mams(
        jax.random.key(5),
        post,
        post.center,
        num_chains=4,
        num_steps=num_steps,
        max_steps=num_steps,
        target_rel_error=0.03,
        init_loss=float(full_loss(post, post.center)),
        raise_if_nan=None,
        progress=_exact_llc._Progress(False),
    )


def _first_production_block_with_a_stuck_chain(calls):
    """``_exact_llc._block`` whose first production block has chain 0 at 0.1."""
    block = _exact_llc._block

    def fake(*args, **kwargs):
        res = block(*args, **kwargs)
        calls.append(kwargs.get("phase"))
        if kwargs.get("phase") == "production" and calls.count("production") == 1:
            acc = np.asarray(res.stats["acceptance_rate"]).copy()
            acc[0] = 0.1
            res = res._replace(stats={**res.stats, "acceptance_rate": acc})
        return res

    return fake


def test_a_chain_stuck_at_a_too_large_step_restarts_production_smaller(
    regular, monkeypatch
):
    """One chain rejecting most proposals (the others fine) is enough to halve ε and
    restart production, what ran counting as warm-up; so is a low mean."""
    assert _exact_llc.step_too_large([0.95] * 7 + [0.3])
    assert _exact_llc.step_too_large([0.75] * 8)
    assert not _exact_llc.step_too_large([0.85] * 7 + [0.6])
    monkeypatch.setattr(_exact_llc, "MAX_GROWS", 0)  # the halving alone
    calls = []
    monkeypatch.setattr(
        _exact_llc, "_block", _first_production_block_with_a_stuck_chain(calls)
    )
    post = regular.posterior
    run = _fixed_run(post, 200)
    warm = _warm_steps(run)
    assert run.warmup_steps == warm + _exact_llc.BLOCK  # the stuck block is warm-up
    assert run.trace.shape[1] == warm + 3 * _exact_llc.BLOCK
    assert any(str(p).startswith("production (restarted") for p in calls)
    assert "production restarted 1×" in run.tuning and run.stuck_blocks == 0


def _search_blocks_at(calls, acceptance):
    """``_exact_llc._block`` whose search blocks at β (phase "warm-up") report the
    given per-chain ``acceptance`` (a list, one per chain, every step)."""
    block = _exact_llc._block

    def fake(*args, **kwargs):
        res = block(*args, **kwargs)
        calls.append((kwargs.get("phase"), float(args[1].step_size)))
        if kwargs.get("phase") == "warm-up":
            acc = np.asarray(res.stats["acceptance_rate"]).copy()
            acc[:] = np.asarray(acceptance, dtype=acc.dtype)[:, None]
            res = res._replace(stats={**res.stats, "acceptance_rate": acc})
        return res

    return fake


@pytest.mark.parametrize(
    "acceptance, tested",
    [([0.85] * 4, True), ([0.95, 0.95, 0.95, 0.4], False), ([0.7] * 4, False)],
)
def test_a_search_that_never_meets_the_target_ends_at_a_step_production_keeps(
    regular, monkeypatch, acceptance, tested
):
    """When no search block reaches the target acceptance, the search ends at its
    last tested step if production would keep it (mean ≥ MIN_ACCEPTANCE, no chain
    below MIN_CHAIN_ACCEPTANCE), and at the untested half of it otherwise."""
    monkeypatch.setattr(_exact_llc, "MAX_GROWS", 0)
    calls = []
    monkeypatch.setattr(_exact_llc, "_block", _search_blocks_at(calls, acceptance))
    run = _fixed_run(regular.posterior, 100)
    search = [eps for phase, eps in calls if phase == "warm-up"]
    prod = [eps for phase, eps in calls if str(phase).startswith("production")]
    assert len(search) >= 2 and all(b < a for a, b in itertools.pairwise(search))
    expected = search[-1] if tested else search[-1] / 2
    assert prod[0] == pytest.approx(expected, rel=1e-6)
    assert ("ended at the last step it tested" in run.tuning) == tested
    if tested:
        assert f"acceptance {np.mean(acceptance):.2f}" in run.tuning


def test_the_stop_judges_rhat_within_each_group_of_starts():
    """Two groups of chains whose means differ (R-hat over all chains far above
    RHAT_MAX) stop once each group has mixed and the total error, bracket included,
    meets the target; a target below the bracket does not stop."""
    rng = np.random.default_rng(0)
    trace = 1.0 + 0.1 + 0.002 * rng.normal(size=(8, 2000))
    trace[4:] += 0.004  # λ̂ 2 apart between the groups, at λ̂ ≈ 50 (nβ = 500)
    dispersed = np.arange(8) >= 4
    done, status = _exact_llc._done(trace, 1.0, 1000, 0.5, 0.05, dispersed)
    assert done and float(status["rhat"]) < _exact_llc.RHAT_MAX
    assert not _exact_llc._done(trace, 1.0, 1000, 0.5, 0.05, None)[0]  # pooled
    assert not _exact_llc._done(trace, 1.0, 1000, 0.5, 0.01, dispersed)[0]


def test_the_stop_does_not_wait_for_a_group_still_approaching_the_other():
    """Chains from w* that all still rise towards the hot-started ones (split-R-hat
    within their group above RHAT_MAX: the trend) stop once the total error, whose
    bracket counts the remaining gap, meets the target; one chain drifting the same
    way among stationary ones holds the run by its R-hat, and a target below the
    bracket does not stop."""
    rng = np.random.default_rng(0)
    trace = 1.0 + 0.1 + 0.002 * rng.normal(size=(8, 2000))
    trace[4:] += 0.004  # λ̂ 2 apart between the groups, at λ̂ ≈ 50 (nβ = 500)
    dispersed = np.arange(8) >= 4
    rising = trace.copy()
    rising[:4] += 0.002 * np.linspace(0, 1, 2000)
    assert group_convergence(rising, dispersed)[0] > _exact_llc.RHAT_MAX
    done, status = _exact_llc._done(rising, 1.0, 1000, 0.5, 0.05, dispersed)
    assert done and status["approaching"] == "w*"
    assert float(status["rhat"]) < _exact_llc.RHAT_MAX
    assert not _exact_llc._done(rising, 1.0, 1000, 0.5, 0.01, dispersed)[0]
    one = trace.copy()
    one[0] += 0.008 * np.linspace(0, 1, 2000)
    done, status = _exact_llc._done(one, 1.0, 1000, 0.5, 0.05, dispersed)
    assert not done and float(status["rhat"]) > _exact_llc.RHAT_MAX
    assert "approaching" not in status


def _production_blocks_accepting_everything(calls, count, first=1):
    """``_exact_llc._block`` whose production blocks ``first`` to ``count`` (from 1)
    report every proposal accepted (a step far below the target acceptance), and
    those before ``first`` the target acceptance."""
    block = _exact_llc._block

    def fake(*args, **kwargs):
        res = block(*args, **kwargs)
        calls.append((kwargs.get("phase"), float(args[1].step_size)))
        production = [c for c in calls if str(c[0]).startswith("production")]
        if production and len(production) <= count:
            acc = np.ones_like(np.asarray(res.stats["acceptance_rate"]))
            if len(production) < first:
                acc *= _exact_llc.TARGET_ACCEPTANCE
            res = res._replace(stats={**res.stats, "acceptance_rate": acc})
        return res

    return fake


def test_a_step_accepting_everything_grows_and_production_restarts(
    regular, monkeypatch
):
    """Until a production block is kept, a block whose acceptance is far above the
    target (the warm-up tuned ε among chains still cooling from the hot start) grows
    ε towards the target rejection rate, at most MAX_GROWS times and by at most
    MAX_GROW_FACTOR, what ran counting as warm-up; a lower mean or one lower chain
    keeps ε."""
    assert _exact_llc.step_too_small([0.9] * 8) == 1.0
    assert _exact_llc.step_too_small([0.98] * 8) == 1.0
    assert _exact_llc.step_too_small([1.0] * 7 + [0.97]) == 1.0  # one chain lower
    assert _exact_llc.step_too_small([0.995] * 8) == _exact_llc.MAX_GROW_FACTOR
    monkeypatch.setattr(_exact_llc, "MAX_ACCEPTANCE", 0.97)
    monkeypatch.setattr(_exact_llc, "MIN_GROW_CHAIN_ACCEPTANCE", 0.9)
    assert _exact_llc.step_too_small([0.975] * 8) == pytest.approx(2.0)  # √(.1/.025)
    assert _exact_llc.step_too_small([0.98] * 8) == pytest.approx(2.0)  # capped
    calls = []
    monkeypatch.setattr(
        _exact_llc, "_block", _production_blocks_accepting_everything(calls, 10)
    )
    post = regular.posterior
    run = _fixed_run(post, 200)
    grows = _exact_llc.MAX_GROWS
    warm = _warm_steps(run)
    assert run.warmup_steps == warm + grows * _exact_llc.BLOCK
    assert run.trace.shape[1] == warm + (grows + 2) * _exact_llc.BLOCK
    prod = [eps for phase, eps in calls if str(phase).startswith("production")]
    factor = _exact_llc.MAX_GROW_FACTOR
    assert prod[1:] == pytest.approx([prod[0] * factor**k for k in (1, 2, 3, 3)])
    assert float(run.sampler.step_size) == pytest.approx(prod[0] * factor**grows)
    assert f"production restarted {grows}× at a larger step" in run.tuning
    # once a production block was kept, ε no longer grows
    monkeypatch.setattr(
        _exact_llc, "_block", _production_blocks_accepting_everything([], 10, first=2)
    )
    run = _fixed_run(post, 300)
    assert run.warmup_steps == warm and "larger step" not in run.tuning


def test_a_stuck_chain_after_the_last_restart_is_reported(regular, monkeypatch):
    monkeypatch.setattr(_exact_llc, "MAX_RESTARTS", 0)
    monkeypatch.setattr(
        _exact_llc, "_block", _first_production_block_with_a_stuck_chain([])
    )
    with pytest.warns(RuntimeWarning, match="low_acceptance"):
        est = estimate_llc(
            jax.random.key(5),
            regular.posterior,
            sampler="mams",
            num_steps=200,
            num_chains=4,
            gamma_check=(),
            progress=False,
        )
    assert [p.cause for p in est.problems] == ["low_acceptance"]


def test_slow_runs_logged_to_a_file_print_plain_progress_lines(capsys, monkeypatch):
    # stderr is not a terminal here (captured): slow blocks give a plain line at most
    # every LOG_INTERVAL seconds, carrying the latest status; fast blocks print nothing
    fast = _exact_llc._Progress(None)
    for _ in range(5):
        fast.update(0.01, phase="warm-up")
    assert capsys.readouterr().err == ""
    slow = _exact_llc._Progress(None)
    slow.update(3.0, phase="warm-up", eps="0.0646", acceptance="0.91")
    slow.update(3.0, phase="warm-up", eps="0.05", acceptance="0.92")  # too soon
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"MAMS: {_exact_llc.BLOCK} steps, phase=warm-up, eps=0.0646, acceptance=0.91"
    ]
    # the one LOG_INTERVAL of every sampler's logged lines
    monkeypatch.setattr(llc_workflow, "LOG_INTERVAL", 0.0)
    slow.update(3.0, phase="production", llc="1234.5", acceptance="0.95")
    (line,) = capsys.readouterr().err.splitlines()
    # the block's own status only: no warm-up ε left over beside the production's
    assert line == (
        f"MAMS: {3 * _exact_llc.BLOCK} steps, phase=production, llc=1234.5, "
        "acceptance=0.95"
    )
    # an explicit show=False stays silent whatever the block time
    quiet = _exact_llc._Progress(False)
    quiet.update(30.0, phase="warm-up")
    assert capsys.readouterr().err == ""


def test_burn_blocks_discards_a_trend_in_either_group_and_little_of_a_flat_trace():
    """MSER on each group's block means: a transient in one group (rising from w*, or
    falling from the hot start) is discarded, at most half of production and never
    leaving fewer than MIN_BLOCKS; a stationary trace keeps most of its blocks."""
    dispersed = np.arange(8) >= 4
    for group in (slice(0, 4), slice(4, 8)):
        for seed in range(5):
            rng = np.random.default_rng(seed)
            blocks = [0.3 * rng.normal(size=(8, 100)) for _ in range(12)]
            for j in range(5):  # the first 5 blocks approach their level
                blocks[j][group] += (5 - j) * 0.2 * (1 if group.start else -1)
            assert 4 <= _exact_llc.burn_blocks(blocks, dispersed) <= 6
    kept = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        m = int(rng.integers(1, 30))
        blocks = [rng.normal(size=(8, 100)) for _ in range(m)]
        k = _exact_llc.burn_blocks(blocks, dispersed)
        assert 0 <= k <= m // 2 and (k == 0 or m - k >= _exact_llc.MIN_BLOCKS)
        kept.append(1 - k / m)
    assert np.mean(kept) > 0.8  # MSER's minimum falls at a random early block
    trend = [np.full((1, 100), 10.0 - j) for j in range(10)]  # one chain, one group
    assert _exact_llc.burn_blocks(trend, np.zeros(1, bool)) == 5


def test_production_blocks_still_trending_are_burn_in(regular, monkeypatch):
    """Production's first blocks, made to trend, are discarded: the estimate's
    burn-in is the warm-up plus what burn_blocks truncates, and λ̂ is computed
    after it."""
    block, seen = _exact_llc._block, []

    def trending(*args, **kwargs):
        res = block(*args, **kwargs)
        if str(kwargs.get("phase")).startswith("production"):
            seen.append(1)
            if len(seen) <= 3:  # L_n falls to its level over three blocks
                res = res._replace(losses=res.losses + 0.01 * (4 - len(seen)))
        return res

    monkeypatch.setattr(_exact_llc, "_block", trending)
    est = estimate_llc(
        jax.random.key(3), regular.posterior, gamma_check=(), progress=False
    )
    warm = int(est.tuning.split("warmed up over ")[1].split()[0])
    prod = np.split(est.losses[:, warm:], (est.num_steps - warm) // 100, axis=1)
    k = _exact_llc.burn_blocks(prod, est.dispersed)
    assert k >= 3 and est.burn_in == warm + k * _exact_llc.BLOCK
    assert f"the first {k * _exact_llc.BLOCK} production steps were discarded" in (
        est.tuning
    )
    kept = np.asarray(est.losses[:, est.burn_in :], np.float64)
    assert est.result.llc_raw == pytest.approx(
        float(est.result.nbeta) * (kept.mean() - float(est.result.init_loss)), rel=1e-9
    )
