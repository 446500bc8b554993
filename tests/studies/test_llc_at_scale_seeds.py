"""llc_at_scale's seed stage: further default runs on independent keys, saved one at a
time (an interrupted stage resumes), and the spread-against-σ summary it feeds."""

import copy
import math
from types import SimpleNamespace

import jax
import numpy as np
import pytest


@pytest.fixture
def study(llc_at_scale):
    return llc_at_scale


def test_seed_summary_compares_spread_with_sigma_and_the_2x_run(study):
    row = {
        "llc": 10.0,
        "llc_sigma": 1.0,
        "llc_seeds": [12.0, 8.0, 10.0],
        "llc_sigma_seeds": [1.0, 3.0, 3.0],
        "llc_2x": 13.0,
        "llc_2x_sigma": 1.0,
    }
    out = study.seed_summary(row)
    sd = np.std([10.0, 12.0, 8.0, 10.0], ddof=1)
    assert out["seed_runs"] == 4
    assert out["seed_mean"] == pytest.approx(10.0)
    assert out["seed_sd"] == pytest.approx(sd)
    assert out["seed_mean_sigma"] == pytest.approx(2.0)
    assert out["seed_sd_over_sigma"] == pytest.approx(sd / 2.0)
    assert out["seed_mean_z_vs_2x"] == pytest.approx(-3.0 / math.hypot(sd / 2, 1.0))
    # fewer than two seed runs: nothing to summarise
    assert study.seed_summary({**row, "llc_seeds": [12.0]}) == {}


def test_seed_stage_resumes_and_uses_fresh_keys(study, monkeypatch):
    keys = []

    def fake_estimate(key, posterior, **kw):
        keys.append(int(jax.random.key_data(key).sum()))
        lam = float(len(keys))
        return SimpleNamespace(
            result=SimpleNamespace(llc=lam, llc_sigma=0.5), num_steps=100
        )

    monkeypatch.setattr(study, "estimate_llc", fake_estimate)
    saved = []
    model = SimpleNamespace(posterior=None)
    row = {"llc": 0.0, "llc_sigma": 0.5, "llc_seeds": [7.0], "llc_sigma_seeds": [0.5]}
    row["num_steps_seeds"], row["wall_seconds_seeds"] = [100], [1.0]
    key = jax.random.key(0)
    study.seed_stage(key, model, {}, row, 3, lambda r: saved.append(copy.deepcopy(r)))
    # the one finished seed is kept; two more run, each saved as it finishes
    assert row["llc_seeds"] == [7.0, 1.0, 2.0]
    assert [len(r["llc_seeds"]) for r in saved] == [2, 3]
    assert saved[-1]["seed_runs"] == 4
    # keys fold in 100 + index: seed 1 and 2, not the main run's key or seed 0's
    expect = [
        int(jax.random.key_data(jax.random.fold_in(key, 100 + i)).sum()) for i in (1, 2)
    ]
    assert keys == expect


def test_calibrated_checks_run_once_each_against_the_exact_main_run(study, monkeypatch):
    # an exact main run is the reference of the checks; a row holding SGLD's check at
    # the current stochastic-gradient version runs only pSGLD's and BAOAB's (resume),
    # each with its own key and columns, and each is judged
    calls = []

    def fake_estimate(key, posterior, sampler, **kw):
        calls.append((sampler, int(jax.random.key_data(key).sum())))
        return SimpleNamespace(
            result=SimpleNamespace(llc=105.0, llc_sigma=3.0, llc_mcse=1.0),
            settled=True,
            step_size=1e-3,
            num_steps=1000,
            end_configurational_temperature=(1.0, 0.01),
            problems=[],
        )

    monkeypatch.setattr(study, "estimate_llc", fake_estimate)
    entry = {
        "two_x": False,
        "exact": True,
        "factory": lambda: SimpleNamespace(
            posterior=None, dim=10, true=None, description="fake"
        ),
        "scale": "1e1",
        "depth": 2,
        "widths": [2, 2],
        "rank": 1,
    }
    row = {"llc": 100.0, "llc_sigma": 4.0, "sampler": "mams", "sgld_llc": 90.0}
    row["sgld_llc_sigma"], row["sgld_sg_method"] = 3.0, study.SG_METHOD
    args = SimpleNamespace(with_2x_1e6=False, skip_2x=True, seeds=0)
    saved = []
    key = jax.random.key(0)
    out = study.run_model(key, "m", entry, copy.deepcopy(row), {}, args, saved.append)

    def fold(i):
        return int(jax.random.key_data(jax.random.fold_in(key, i)).sum())

    assert calls == [("psgld", fold(5)), ("baoab", fold(6))]
    for smp in ("psgld", "baoab"):
        assert out[f"{smp}_llc"] == 105.0 and out[f"{smp}_settled"] is True
        assert out[f"{smp}_sg_method"] == study.SG_METHOD
        assert out[f"rel_error_{smp}_vs_exact"] == pytest.approx(0.05)
        assert out[f"z_{smp}_vs_exact"] == pytest.approx(5.0 / 5.0)
    assert out["rel_error_sgld_vs_exact"] == pytest.approx(-0.1)
    assert len(saved) == 2
    # nothing left to do: a second call runs nothing
    study.run_model(key, "m", entry, out, {}, args, saved.append)
    assert len(calls) == 2
    # a check run by an older stochastic-gradient version (or by one before versions
    # were recorded) is run again
    calls.clear()
    stale = {**out, "sgld_sg_method": study.SG_METHOD - 1}
    stale.pop("baoab_sg_method")
    study.run_model(key, "m", entry, stale, {}, args, saved.append)
    assert calls == [("sgld", fold(4)), ("baoab", fold(6))]


def test_rows_match_settings_without_the_sg_version_and_sg_rows_rerun_when_it_changes(
    study, tmp_path, monkeypatch
):
    # rows written while the SG version was part of the settings still match; an exact
    # main run is kept whatever the SG version, a calibrated-SGLD one only at the
    # current version
    ran = []

    def fake_run_model(key, name, entry, row, options, args, save, partial=None):
        ran.append((name, row.get("llc")))
        row.setdefault("llc", 1.0)
        row.setdefault("model", name)
        row.setdefault("d", 10)
        return row

    monkeypatch.setattr(study, "run_model", fake_run_model)
    monkeypatch.setattr(study, "plot_scale_accuracy", lambda *a, **k: None)
    monkeypatch.setattr(study, "plot_llc_vs_run_length", lambda *a, **k: None)
    monkeypatch.setattr(study, "plot_wall_time", lambda *a, **k: None)
    version = study.estimate_llc_version()
    base = {"seed": 0, "quick": False, **version}
    old = [
        {"model": "dln_8x6x5x7_r2", "llc": 18.0, "sampler": "mams",
         "settings": {**base, "sgld_method": version["sgld_method"] - 1}},
        {"model": "dln_20x15x15x20_r5", "llc": 130.0, "sampler": "sgld",
         "settings": {**base, "sgld_method": version["sgld_method"] - 1}},
        {"model": "dln_18x16x14x16x18_r4", "llc": 109.0, "sampler": "sgld",
         "settings": {**base, "sgld_method": version["sgld_method"]}},
    ]  # fmt: skip
    study.write_json_atomic(tmp_path / "results.json", old)
    models = [r["model"] for r in old]
    study.main(["--out", str(tmp_path), "--models", *models])
    assert ran == [
        ("dln_8x6x5x7_r2", 18.0),
        ("dln_20x15x15x20_r5", None),
        ("dln_18x16x14x16x18_r4", 109.0),
    ]
    rows = study.read_rows(tmp_path / "results.json")
    assert sorted(r["model"] for r in rows) == sorted(models)  # replaced, not added
