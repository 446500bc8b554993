"""Atomic results files and row recovery from truncated ones (issue 12)."""

import json
import os
import stat
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt_sampler.diagnostics.arviz import load_datatree, save_datatree, to_datatree
from slt_sampler.diagnostics.results import atomic_path, read_rows, write_json_atomic

ROWS = [
    {"model": "regular_d2", "llc": 1.01, "settings": {"seed": 0, "quick": False}},
    {"model": "rrr_M5_N5_H4_r0", "llc": 8.48, "gamma": {"0.5": 8.1, "2": 8.6}},
    {"model": "dln_10x10x10x10_r3", "llc": 37.87, "tags": ["a", "b,c", "]}"]},
]


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_write_json_atomic_round_trip_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "results.json"
    assert write_json_atomic(path, ROWS) == path
    write_json_atomic(path, ROWS[:1], indent=None)  # replaces
    assert json.loads(path.read_text()) == ROWS[:1]
    assert read_rows(path) == ROWS[:1]
    assert _leftovers(path.parent) == []


def test_written_file_has_the_mode_a_plain_open_gives(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = write_json_atomic(tmp_path / "atomic.json", {})
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_failed_serialisation_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, ROWS)
    before = path.read_bytes()
    bad = [*ROWS, {"model": "broken", "value": object()}]  # fails after 3 rows
    with pytest.raises(TypeError):
        write_json_atomic(path, bad)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "new.json", bad)
    assert not (tmp_path / "new.json").exists()
    assert _leftovers(tmp_path) == []


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    path = tmp_path / "run.nc"
    with pytest.raises(RuntimeError), atomic_path(path, suffix=".nc") as tmp:
        tmp.write_text("partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_gives_no_rows(tmp_path):
    assert read_rows(tmp_path / "absent.json") == []


def _row_ends(wrap, indent):
    """Text of ``ROWS`` (a list, or a dict with it under "rows") and where each row
    ends in it (just after its closing brace)."""

    def dump(rows):
        return json.dumps(
            {"rows": rows, "summary": {}} if wrap else rows, indent=indent
        )

    ends = []
    for k in range(1, len(ROWS) + 1):
        a, b = dump(ROWS[:k]), dump([*ROWS[:k], {}])
        ends.append(len(os.path.commonprefix([a, b])))
    return dump(ROWS), ends


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("wrap", [False, True])
def test_truncated_file_keeps_complete_rows(tmp_path, indent, wrap):
    path = tmp_path / "results.json"
    text, ends = _row_ends(wrap, indent)
    cuts = [(0, 0), (5, 0), (ends[0] - 1, 0), (ends[0], 1), (ends[1] + 1, 2)]
    for cut, expected in [*cuts, (ends[2] - 3, 2), (len(text) - 1, 3)]:
        path.write_text(text[:cut])
        with pytest.warns(RuntimeWarning, match=r"results\.json.*recovered") as rec:
            assert read_rows(path) == ROWS[:expected]
        message = str(rec[0].message)
        assert str(path) in message
        assert f"recovered {expected} complete row" in message


@settings(max_examples=80, deadline=None)
@given(data=st.data(), indent=st.sampled_from([None, 1]), wrap=st.booleans())
def test_any_truncation_recovers_every_complete_row(
    tmp_path_factory, data, indent, wrap
):
    text, ends = _row_ends(wrap, indent)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)), label="cut")
    path = tmp_path_factory.mktemp("rows") / "results.json"
    path.write_text(text[:cut])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_rows(path)
    assert rows == ROWS[: sum(end <= cut for end in ends)]
    assert len(caught) == (cut < len(text))


def test_corrupt_tail_and_wrong_shape(tmp_path):
    path = tmp_path / "results.json"
    text = json.dumps(ROWS)
    path.write_text(text[: text.index("rrr")] + "\x00garbage")
    with pytest.warns(RuntimeWarning, match="recovered 1 complete row"):
        assert read_rows(path) == ROWS[:1]
    path.write_text(json.dumps({"model": "a"}))
    with pytest.raises(ValueError, match="results.json"):
        read_rows(path)


@pytest.mark.parametrize("name", ["run.nc", "run"])
def test_save_datatree_replaces_atomically(tmp_path, name):
    path = tmp_path / name
    save_datatree(to_datatree(np.zeros((2, 5)), attrs={"llc": 1.0}), path)
    new = to_datatree(np.ones((2, 3)), attrs={"llc": 2.0})
    save_datatree(new, path)
    back = load_datatree(path)
    assert back.attrs["llc"] == 2.0 and back["sample_stats"]["L_n"].shape == (2, 3)
    assert _leftovers(tmp_path) == []
    if name == "run":  # a write that fails half-way leaves the old tree in place
        bad = new.copy()
        bad["sample_stats"].attrs["bad"] = {1, 2}  # not JSON-serialisable
        with pytest.raises(TypeError):
            save_datatree(bad, path)
        assert load_datatree(path).attrs["llc"] == 2.0
        assert _leftovers(tmp_path) == []
