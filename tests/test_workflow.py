import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import (
    CalibrationConfig,
    ChainDivergenceError,
    estimate_llc,
    tempered_posterior,
)
from slt_sampler.diagnostics.arviz import load_datatree, save_datatree
from slt_sampler.workflows import llc as llc_workflow
from slt_sampler.zoo import models as zoo


@pytest.fixture(scope="module")
def small():
    return zoo.regular(jax.random.key(0), 3, n=2000)


def test_estimate_llc_is_reproducible_and_reports_its_choices(small):
    kw = dict(
        step_size=2e-5, num_steps=4000, num_chains=4, gamma_check=(2.0,), progress=False
    )
    a = estimate_llc(jax.random.key(1), small.posterior, **kw)
    b = estimate_llc(jax.random.key(1), small.posterior, **kw)
    assert a.result.llc == b.result.llc
    assert a.sampler == "sgld" and a.step_size == pytest.approx(2e-5)
    assert a.losses.shape == (4, 4000) and a.burn_in == 1000
    assert set(a.gamma_sensitivity) == {1.0, 2.0}
    assert 0.5 < a.result.llc < 3.0  # λ = 1.5; precision is the slow tier's job


# a 1000-step run; only plumbing tested
@pytest.mark.filterwarnings("ignore:\\[rhat\\]")
def test_calibration_settings_reach_the_calibration(small):
    cfg = CalibrationConfig(
        num_steps=500, tolerance=0.2, max_trials=2, init_step_size=1e-5
    )
    est = estimate_llc(
        jax.random.key(2),
        small.posterior,
        num_steps=1000,
        num_chains=2,
        gamma_check=(),
        progress=False,
        calibration=cfg,
    )
    cal = est.calibration
    assert cal.tolerance == 0.2 and 1 <= len(cal.trials) <= 2
    assert cal.trials[0].step_size == pytest.approx(1e-5)
    assert est.step_size == pytest.approx(cal.step_size)


def test_hot_step_is_flagged_by_the_end_of_run_temperature(small):
    kw = dict(num_steps=4000, num_chains=4, gamma_check=(), progress=False)
    with pytest.warns(RuntimeWarning, match="configurational temperature at the end"):
        hot = estimate_llc(jax.random.key(1), small.posterior, step_size=1e-3, **kw)
    t_conf, t_se = hot.end_configurational_temperature
    assert t_conf - 1 > 0.3 and 0 < t_se < 0.2  # measured 1.63 ± 0.07
    assert hot.to_datatree().attrs["end_configurational_temperature"] == t_conf
    mala = estimate_llc(jax.random.key(1), small.posterior, sampler="mala", **kw)
    assert mala.end_configurational_temperature is None  # exact sampler: not needed


def test_datatree_round_trip(tmp_path, small):
    est = estimate_llc(
        jax.random.key(1),
        small.posterior,
        step_size=2e-5,
        num_steps=1000,
        gamma_check=(),
        progress=False,
    )
    path = save_datatree(est.to_datatree(), tmp_path / "run.nc")
    dt = load_datatree(path)
    np.testing.assert_allclose(dt["sample_stats"]["L_n"].values, est.losses)
    assert dt.attrs["llc"] == pytest.approx(est.result.llc)
    assert dt.attrs["sampler"] == "sgld"


def test_diverging_chains_raise_with_a_suggested_step(small):
    with pytest.raises(ChainDivergenceError, match="diverged") as err:
        estimate_llc(
            jax.random.key(1),
            small.posterior,
            step_size=1.0,
            num_steps=200,
            gamma_check=(),
            progress=False,
        )
    assert err.value.chains == list(range(8))  # every chain, by index
    assert err.value.suggested_step_size == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step_size": -1.0}, "step_size"),
        ({"num_steps": 0}, "num_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"sampler": "gibbs"}, "sampler"),
        ({"num_steps": 100, "burn_in": 99}, "burn_in"),
    ],
)
def test_bad_arguments_name_themselves(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_llc(jax.random.key(0), small.posterior, progress=False, **kwargs)


def test_needs_a_centre():
    post = tempered_posterior(lambda w, b: -((b - w) ** 2), jnp.zeros(10))
    with pytest.raises(ValueError, match="center"):
        estimate_llc(jax.random.key(0), post)


def test_adaptive_run_warns_when_it_hits_its_cap(small):
    with pytest.warns(RuntimeWarning, match="max_steps"):
        est = estimate_llc(
            jax.random.key(3),
            small.posterior,
            step_size=2e-5,
            max_steps=40_000,
            target_rel_mcse=1e-9,
            num_chains=2,
            gamma_check=(),
            progress=False,
        )
    assert not est.settled and est.num_steps == 40_000


@pytest.mark.filterwarnings("ignore:\\[not_settled\\]")
def test_long_sgld_runs_logged_to_a_file_print_plain_progress_lines(
    small, capsys, monkeypatch
):
    """stderr is no terminal here (captured): a run shorter than LOG_INTERVAL prints
    nothing; a longer one prints its steps, step size and λ̂ as it goes, and every
    stopping check (patched interval, so the lines come at once)."""
    kw = {
        "step_size": 2e-5,
        "max_steps": 40_000,
        "target_rel_mcse": 1e-9,  # never precise: two checks, the second at the cap
        "num_chains": 2,
        "gamma_check": (),
    }
    estimate_llc(jax.random.key(3), small.posterior, **kw)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(llc_workflow, "LOG_INTERVAL", 0.0)
    est = estimate_llc(jax.random.key(3), small.posterior, **kw)
    lines = capsys.readouterr().err.splitlines()
    checks = [line for line in lines if "stationary and precise" in line]
    assert checks[0].startswith("sgld: 20,000 steps, λ̂ = ")
    assert checks[0].endswith("not yet stationary and precise; continuing to 40,000")
    assert checks[1].startswith("sgld: 40,000 steps")
    chunks = [line for line in lines if "of the last chunk" in line]
    assert len(chunks) >= 10 and all("eps=2e-05" in line for line in chunks)
    # the logged λ̂ is the run's: the last check's equals λ̂ from the kept half
    raw = float(checks[1].split("λ̂ = ")[1].split(" ")[0])
    assert raw == pytest.approx(est.result.llc_raw, rel=1e-3)


def test_estimate_prints_one_screen_and_its_datatree_carries_the_evidence(small):
    est = estimate_llc(
        jax.random.key(1),
        small.posterior,
        step_size=1e-4,
        num_steps=4000,
        num_chains=4,
        gamma_check=(2.0,),
        progress=False,
    )
    text = repr(est)
    assert text == str(est) and len(text.splitlines()) <= 24
    assert "λ̂ = " in text and "problems none" in text and "a minimum" in text
    assert "[" not in text.splitlines()[0]  # no loss array dumped
    assert set(est.gamma_sensitivity_mcse) == {1.0, 2.0}
    assert all(v > 0 for v in est.gamma_sensitivity_mcse.values())
    dt = est.to_datatree(name=small.name)
    assert dt.attrs["model"] == small.name and dt.attrs["settled"] == 1
    np.testing.assert_allclose(
        dt["sample_stats"]["llc_per_chain"].values, est.result.llc_per_chain
    )
    assert dt.attrs["llc_mcse_at_gamma_2"] == est.gamma_sensitivity_mcse[2.0]


def test_positions_to_keep_fits_the_memory_budget():
    from slt_sampler.samplers.calibrate import POSITION_BYTES, positions_to_keep

    assert positions_to_keep(jnp.zeros(100), 4, 200) == 200
    # 10⁵ float32 parameters, 4 chains: 1.6 MB a position across chains
    assert positions_to_keep(jnp.zeros(10**5), 4, 200) == POSITION_BYTES // 1_600_000
    # 10⁶ parameters: the budget would allow 4; the floor of 10 holds
    assert positions_to_keep({"w": jnp.zeros((1000, 1000))}, 4, 200) == 10


def test_calibration_trials_keep_positions_within_the_budget(monkeypatch):
    """A large model's trial measures T_conf on fewer, further-thinned positions (same
    number of steps) and still calibrates. (d = 500: ten positions a chain measure
    T_conf to the precision a trial needs, as on a 10⁶-parameter network.)"""
    from slt_sampler.samplers import calibrate

    post = zoo.regular(jax.random.key(1), 500, n=2000).posterior
    kwargs = {"batch_size": None, "num_chains": 4, "num_steps": 2000, "max_trials": 4}
    free = calibrate.calibrate_sgld(jax.random.key(5), post, post.center, **kwargs)
    seen = []
    real = calibrate.configurational_temperature

    def spy(key, posterior, positions, **kw):
        seen.append(jax.tree.leaves(positions)[0].shape[:2])
        return real(key, posterior, positions, **kw)

    monkeypatch.setattr(calibrate, "configurational_temperature", spy)
    monkeypatch.setattr(calibrate, "POSITION_BYTES", 1)
    capped = calibrate.calibrate_sgld(jax.random.key(5), post, post.center, **kwargs)
    assert seen and all(s == (4, 10) for s in seen)
    assert free.passed and capped.passed
    assert capped.step_size == pytest.approx(free.step_size, rel=0.5)
