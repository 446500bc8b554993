"""llc_at_scale continues a killed exact run from its saved state (runs of 10⁵
parameters take hours) and removes that state once the stage's row is saved."""

import json

import pytest

from slt_sampler.workflows import _exact_llc
from slt_sampler.workflows._run_state import RunStore

MODEL = "dln_8x6x5x7_r2"


class Killed(Exception):
    pass


@pytest.fixture
def study(llc_at_scale):
    return llc_at_scale


def test_a_killed_main_run_continues_and_leaves_no_state(study, tmp_path, monkeypatch):
    """Continued from its state in ``--state-dir`` by a process with a new, empty
    output directory (another machine, where only ``--state-dir`` was carried over),
    which also keeps the finished rows."""
    argv = ["--models", MODEL, "--skip-2x", "--state-dir", str(tmp_path / "carry")]
    block, calls = _exact_llc._block, []

    def killed(*args, **kwargs):
        calls.append(kwargs.get("phase"))
        if len(calls) > _exact_llc.WARM_BLOCKS + 3:
            raise Killed
        return block(*args, **kwargs)

    monkeypatch.setattr(_exact_llc, "_block", killed)
    with pytest.raises(Killed):
        study.main([*argv, "--out", str(tmp_path / "a")])
    assert not (tmp_path / "a" / "partial").exists()
    (state,) = (tmp_path / "carry").glob(f"{MODEL}-main-*.npz")
    done_before = len(calls) - 1
    # sampling seconds the killed process spent
    earlier = sum(RunStore.saved_meta(state)["counters"])

    def counting(*args, **kwargs):
        calls.append(kwargs.get("phase"))
        return block(*args, **kwargs)

    calls.clear()
    monkeypatch.setattr(_exact_llc, "_block", counting)
    (row,) = study.main([*argv, "--out", str(tmp_path / "b")])
    assert row["model"] == MODEL and row["sampler"] == "mams" and row["settled"]
    warm_and_prod = row["num_steps"] // _exact_llc.BLOCK
    gamma = len([p for p in calls if str(p).startswith("γ check")])
    assert len(calls) - gamma == warm_and_prod - done_before  # continued, not redone
    assert not state.exists()
    # the row's wall time counts the killed process's sampling too
    assert row["resumed_seconds"] == pytest.approx(earlier) and earlier > 0
    assert row["wall_seconds"] > earlier
    saved = json.loads((tmp_path / "b" / "results.json").read_text())
    assert [r["model"] for r in saved] == [MODEL]
    # the finished row is carried in --state-dir too: a third machine reuses it
    carried = json.loads((tmp_path / "carry" / "results.json").read_text())
    assert carried == saved
    calls.clear()
    (again,) = study.main([*argv, "--out", str(tmp_path / "c")])
    assert calls == [] and again["llc"] == row["llc"]
