"""llc_at_scale's seed stage: further default runs on independent keys, saved one at a
time (an interrupted stage resumes), and the spread-against-σ summary it feeds."""

import copy
import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

RUN = Path(__file__).resolve().parents[2] / "studies" / "llc_at_scale" / "run.py"


@pytest.fixture
def study():
    spec = importlib.util.spec_from_file_location("llc_at_scale_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
