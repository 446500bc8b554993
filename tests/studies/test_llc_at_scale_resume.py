"""llc_at_scale continues a killed exact run from its saved state (runs of 10⁵
parameters take hours) and removes that state once the stage's row is saved."""

import json

import pytest

from slt_sampler.workflows import _exact_llc

MODEL = "dln_8x6x5x7_r2"


class Killed(Exception):
    pass


@pytest.fixture
def study(llc_at_scale):
    return llc_at_scale


def test_a_killed_main_run_continues_and_leaves_no_state(study, tmp_path, monkeypatch):
    argv = ["--models", MODEL, "--skip-2x", "--out", str(tmp_path)]
    block, calls = _exact_llc._block, []

    def killed(*args, **kwargs):
        calls.append(kwargs.get("phase"))
        if len(calls) > _exact_llc.WARM_BLOCKS + 3:
            raise Killed
        return block(*args, **kwargs)

    monkeypatch.setattr(_exact_llc, "_block", killed)
    with pytest.raises(Killed):
        study.main(argv)
    (state,) = (tmp_path / "partial").glob(f"{MODEL}-main-*.npz")
    done_before = len(calls) - 1

    def counting(*args, **kwargs):
        calls.append(kwargs.get("phase"))
        return block(*args, **kwargs)

    calls.clear()
    monkeypatch.setattr(_exact_llc, "_block", counting)
    (row,) = study.main(argv)
    assert row["model"] == MODEL and row["sampler"] == "mams" and row["settled"]
    warm_and_prod = row["num_steps"] // _exact_llc.BLOCK
    gamma = len([p for p in calls if str(p).startswith("γ check")])
    assert len(calls) - gamma == warm_and_prod - done_before  # continued, not redone
    assert not state.exists()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in saved] == [MODEL]
