"""Resumable sweeps over cells such as (model, n, β, seed), one NetCDF file per cell.

:func:`run_sweep` calls ``compute_cell(cell)`` for every cell not yet on disk and
writes each result as soon as it is finished, atomically (temporary file, then
rename), to ``out_dir/<cell id>.nc`` (NetCDF through xarray's ``h5netcdf`` engine),
with ``out_dir/index.json`` listing the finished cells. A killed sweep loses at most
the cell it was computing: on restart every cell whose file exists is read back, not
recomputed. The file, not the index, is the record of a finished cell (the index is
rewritten from the files), and each file carries its cell in the ``sweep_cell``
attribute, checked on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..diagnostics.results import atomic_path, read_rows, write_json_atomic

INDEX = "index.json"
CELL_ATTR = "sweep_cell"
KIND_ATTR = "sweep_kind"


class SweepResult(NamedTuple):
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    cells : list of dict
        The cells, in the order given.
    results : list of xarray.Dataset or xarray.DataTree
        Each cell's result as read back from its file (so a resumed sweep returns
        exactly what an uninterrupted one does), in the order of ``cells``.
    ids : list of str
        Each cell's stable id (its file is ``out_dir/<id>.nc``).
    computed : list of str
        Ids computed by this call; the others were already on disk.
    """

    cells: list
    results: list
    ids: list
    computed: list


def cell_id(cell: dict) -> str:
    """A stable, readable file name for ``cell``: ``key=value`` pairs (sorted by key,
    at most 80 characters) and 10 hex digits of the SHA-1 of its canonical JSON.

    ``1`` and ``1.0`` are different cells; use one type per key.
    """
    text = _canonical(cell)
    readable = "_".join(f"{k}={cell[k]}" for k in sorted(cell))
    readable = re.sub(r"[^A-Za-z0-9.=+-]+", "-", readable)[:80].strip("-")
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def run_sweep(
    cells: Sequence[dict],
    compute_cell: Callable,
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
) -> SweepResult:
    """Compute every cell not yet in ``out_dir`` and return all cells' results.

    Parameters
    ----------
    cells
        Dicts of JSON scalars (str, int, float, bool, None), e.g.
        ``{"model": "rrr", "n": 1000, "beta": 0.5, "seed": 0}``; no two alike.
    compute_cell
        ``compute_cell(cell) -> xarray.Dataset`` (or ``xarray.DataTree``). It should
        be deterministic in the cell (seed from the cell) for a resumed sweep to
        equal an uninterrupted one.
    out_dir
        Directory of the per-cell ``.nc`` files and ``index.json`` (created).
    progress
        Show a tqdm bar over the cells.
    """
    cells, ids = _check_cells(cells)
    if not callable(compute_cell):
        raise TypeError(
            "compute_cell must be a function cell -> xarray.Dataset, got "
            f"{type(compute_cell).__name__}."
        )
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(
            f"out_dir must be a directory path (str or pathlib.Path), got "
            f"{type(out_dir).__name__} {out_dir!r}. Pass e.g. Path('results/sweep')."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # temporary files of a write killed midway (a cell's or the index's)
    for name in [f"{cid}.nc" for cid in ids] + [INDEX]:
        for stale in out.glob(f".{name}.*"):
            stale.unlink(missing_ok=True)
    seconds = {r.get("id"): r.get("seconds") for r in read_rows(out / INDEX)}
    todo = [i for i, cid in enumerate(ids) if not (out / f"{cid}.nc").exists()]
    bar = _bar(len(cells), len(cells) - len(todo), progress)
    for i in todo:
        if bar is not None:
            bar.set_postfix_str(ids[i][:40])
        t0 = time.perf_counter()
        result = compute_cell(dict(cells[i]))
        _write(out / f"{ids[i]}.nc", result, cells[i])
        seconds[ids[i]] = time.perf_counter() - t0
        _write_index(out, cells, ids, seconds)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    _write_index(out, cells, ids, seconds)
    results = [_read(out / f"{cid}.nc", cell) for cid, cell in zip(ids, cells)]
    return SweepResult(cells, results, ids, [ids[i] for i in todo])


def concat_cells(result: SweepResult, dim: str = "cell"):
    """The cells' Datasets concatenated along a new ``dim``, with one coordinate per
    cell key (``model``, ``n``, ``beta``, ...); arrays of different sizes are padded
    with NaN (xarray's outer join)."""
    import xarray as xr

    parts = []
    for i, (cell, ds) in enumerate(zip(result.cells, result.results)):
        if not isinstance(ds, xr.Dataset):
            raise TypeError(
                f"concat_cells needs Datasets; cell {i} holds {type(ds).__name__}. "
                "Concatenate DataTree results node by node."
            )
        # integer labels on unlabelled dimensions, so that sizes may differ
        labels = {d: np.arange(k) for d, k in ds.sizes.items() if d not in ds.indexes}
        ds = ds.assign_coords(labels).expand_dims({dim: [i]})
        parts.append(ds.assign_coords({k: (dim, [v]) for k, v in cell.items()}))
    return xr.concat(parts, dim=dim, join="outer")


def _canonical(cell: dict) -> str:
    """Sorted, compact JSON of a cell (NumPy scalars as Python numbers)."""
    return json.dumps(
        cell, sort_keys=True, separators=(",", ":"), default=lambda v: v.item()
    )


def _check_cells(cells) -> tuple[list, list]:
    if isinstance(cells, (dict, str, bytes)) or not isinstance(cells, Sequence):
        raise TypeError(
            f"cells must be a list of dicts (one per cell), got {type(cells).__name__}."
        )
    seen: dict = {}
    ids = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not all(isinstance(k, str) for k in cell):
            raise TypeError(
                f"cells[{i}] must be a dict with str keys, e.g. {{'n': 100, 'seed': 0}};"
                f" got {cell!r}."
            )
        for v in cell.values():
            if not isinstance(v, (str, int, float, bool, type(None), np.generic)):
                raise TypeError(
                    f"cells[{i}] values must be JSON scalars (str, int, float, bool,"
                    f" None); got {v!r} of type {type(v).__name__}. Put arrays in "
                    "compute_cell, keyed by a scalar in the cell."
                )
        cid = cell_id(cell)
        if cid in seen:
            raise ValueError(
                f"cells[{i}] = {cell!r} duplicates cells[{seen[cid]}]; every cell must "
                "differ (add a seed or replicate key to repeat a computation)."
            )
        seen[cid] = i
        ids.append(cid)
    return [dict(c) for c in cells], ids


def _write(path: Path, result, cell: dict) -> None:
    import xarray as xr

    if not isinstance(result, (xr.Dataset, xr.DataTree)):
        raise TypeError(
            f"compute_cell must return an xarray.Dataset or DataTree; for cell {cell!r}"
            f" it returned {type(result).__name__}."
        )
    result = result.copy()
    result.attrs = dict(result.attrs)
    result.attrs[CELL_ATTR] = _canonical(cell)
    result.attrs[KIND_ATTR] = type(result).__name__
    with atomic_path(path, suffix=".nc") as tmp:
        result.to_netcdf(tmp, engine="h5netcdf")


def _read(path: Path, cell: dict):
    import xarray as xr

    result = xr.load_dataset(path, engine="h5netcdf")
    if result.attrs.get(KIND_ATTR) == "DataTree":
        result = xr.load_datatree(path, engine="h5netcdf")
    if result.attrs.get(CELL_ATTR) != _canonical(cell):
        raise ValueError(
            f"{path} holds cell {result.attrs.get(CELL_ATTR)}, not {_canonical(cell)};"
            " the directory mixes sweeps. Move the file aside or use another out_dir."
        )
    return result


def _write_index(out: Path, cells, ids, seconds) -> None:
    rows = [
        {"id": cid, "file": f"{cid}.nc", "cell": cell, "seconds": seconds.get(cid)}
        for cid, cell in zip(ids, cells)
        if (out / f"{cid}.nc").exists()
    ]
    write_json_atomic(out / INDEX, rows)


def _bar(total: int, done: int, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="cell", leave=False)
