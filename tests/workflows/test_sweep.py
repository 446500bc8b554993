"""Resumable sweeps: a killed sweep restarts where it stopped, with identical results."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from slt_sampler.workflows.sweep import cell_id, concat_cells, run_sweep

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys, time

    import jax, jax.numpy as jnp, xarray as xr

    from slt_sampler import MALA, sample, tempered_posterior
    from slt_sampler.workflows.sweep import run_sweep

    LOG, SLEEP = None, 0.0


    def loglik(w, b):
        return -0.5 * (b - w) ** 2 - 0.9189385


    POST = tempered_posterior(loglik, jnp.linspace(-1.0, 1.0, 16))
    CELLS = [
        {"model": "gauss", "beta": b, "seed": s} for b in (0.5, 1.0, 2.0) for s in (0, 1)
    ]


    def compute_cell(cell):
        with open(LOG, "a") as f:
            f.write(json.dumps(cell, sort_keys=True) + "\\n")
        res = sample(
            jax.random.key(cell["seed"]), MALA(jnp.asarray(0.05)),
            POST.replace(beta=cell["beta"]), jnp.zeros(()),
            num_chains=2, num_steps=20, progress=False,
        )
        time.sleep(SLEEP)
        return xr.Dataset({"loss": (("chain", "step"), res.losses)})


    if __name__ == "__main__":
        out, LOG, SLEEP = sys.argv[1], sys.argv[2], float(sys.argv[3])
        run_sweep(CELLS, compute_cell, out, progress=False)
    """
)


def _load(path):
    spec = importlib.util.spec_from_file_location("sweep_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished(out):
    return {p.stem for p in out.glob("*.nc") if not p.name.startswith(".")}


def _logged(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_killed_sweep_resumes_with_identical_results(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(SCRIPT)
    mod = _load(script)

    mod.LOG = tmp_path / "log_ref.txt"
    ref = run_sweep(mod.CELLS, mod.compute_cell, tmp_path / "ref", progress=False)
    assert len(ref.computed) == 6 and len(_logged(mod.LOG)) == 6

    out, log = tmp_path / "killed", tmp_path / "log_killed.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out), str(log), "0.5"], env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 240
        while len(_finished(out)) < 2:
            assert proc.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    finished = _finished(out)
    assert 2 <= len(finished) < 6  # killed midway

    mod.LOG = log
    resumed = run_sweep(mod.CELLS, mod.compute_cell, out, progress=False)
    assert not finished & set(resumed.computed)  # finished cells were not recomputed
    computed_where = [cell_id(c) for c in _logged(log)]
    for cid in finished:
        assert computed_where.count(cid) == 1
    assert set(resumed.computed) == set(resumed.ids) - finished
    assert resumed.ids == ref.ids
    for a, b in zip(resumed.results, ref.results):
        xr.testing.assert_identical(a, b)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files
    index = json.loads((out / "index.json").read_text())
    assert [row["id"] for row in index] == ref.ids

    # a third call recomputes nothing
    again = run_sweep(mod.CELLS, mod.compute_cell, out, progress=False)
    assert again.computed == [] and len(_logged(log)) == len(computed_where)


def _tiny(cell):
    x = np.arange(cell["n"], dtype=float) * cell["beta"]
    return xr.Dataset({"x": ("i", x)}, attrs={"note": "tiny"})


def test_concat_and_datatree(tmp_path):
    cells = [{"n": 3, "beta": 0.5}, {"n": 4, "beta": 1.0}]
    res = run_sweep(cells, _tiny, tmp_path, progress=False)
    both = concat_cells(res)
    assert both.sizes == {"cell": 2, "i": 4}
    assert both["beta"].values.tolist() == [0.5, 1.0]
    assert np.isnan(both["x"].values[0, 3]) and both["x"].values[1, 3] == 3.0

    def tree(cell):
        return xr.DataTree.from_dict(
            {"/": xr.Dataset(attrs={"n": cell["n"]}), "/a": _tiny(cell)}
        )

    res = run_sweep(cells, tree, tmp_path / "tree", progress=False)
    assert isinstance(res.results[1], xr.DataTree)
    np.testing.assert_array_equal(res.results[1]["a"]["x"].values, [0, 1, 2, 3])


def test_temporary_files_of_a_killed_write_are_removed(tmp_path):
    """A kill inside an atomic write leaves its temporary file (the kill test above
    hit one of the index's under load); the next run removes them."""
    cells = [{"n": 3, "beta": 0.5}]
    stale = [tmp_path / f".{cell_id(cells[0])}.nc.x1", tmp_path / ".index.json.x2"]
    for p in stale:
        p.write_text("partial")
    run_sweep(cells, _tiny, tmp_path, progress=False)
    assert not [p for p in stale if p.exists()]


@pytest.mark.parametrize(
    "cells, err, match",
    [
        (
            [{"n": 1}, {"n": 2}, {"n": 1}],
            ValueError,
            r"cells\[2\].*duplicates cells\[0\]",
        ),
        ([{"n": 1}, ("n", 2)], TypeError, r"cells\[1\] must be a dict"),
        ({"n": 1}, TypeError, "cells must be a list of dicts"),
        ([{"n": [1, 2]}], TypeError, "JSON scalars"),
        ([{1: 2}], TypeError, "str keys"),
    ],
)
def test_bad_cells(tmp_path, cells, err, match):
    with pytest.raises(err, match=match):
        run_sweep(cells, _tiny, tmp_path, progress=False)


def test_bad_compute_cell_and_mixed_directories(tmp_path):
    with pytest.raises(TypeError, match="compute_cell must be a function"):
        run_sweep([{"n": 1}], "f", tmp_path, progress=False)
    with pytest.raises(TypeError, match="must return an xarray.Dataset"):
        run_sweep([{"n": 1}], lambda c: {"x": 1}, tmp_path, progress=False)
    run_sweep([{"n": 2, "beta": 1.0}], _tiny, tmp_path, progress=False)
    cid = cell_id({"n": 2, "beta": 1.0})
    other = tmp_path / "other"
    run_sweep([{"n": 3, "beta": 1.0}], _tiny, other, progress=False)
    (tmp_path / f"{cid}.nc").write_bytes(
        (other / f"{cell_id({'n': 3, 'beta': 1.0})}.nc").read_bytes()
    )
    with pytest.raises(ValueError, match="mixes sweeps"):
        run_sweep([{"n": 2, "beta": 1.0}], _tiny, tmp_path, progress=False)
