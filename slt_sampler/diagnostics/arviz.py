"""ArviZ 1.x layer: LLC sampling traces as an ``xarray.DataTree``, saved to disk.

Schema (ArviZ 1.x, ``arviz_base`` conventions; every variable leads with
``(chain, draw)``):

* ``sample_stats`` -- the per-draw loss ``L_n`` (the empirical negative log-likelihood
  per datum at each draw) plus sampler statistics under ArviZ's names (``lp``,
  ``acceptance_rate``, ``diverging``, ``step_size``, ...). ``L_n`` is a per-draw
  scalar summary of the chain, like ``lp``, so it belongs here; ArviZ's
  ``log_likelihood`` group is reserved for *pointwise* (per-observation) values.
* ``posterior`` -- optional positions ``w`` (``(chain, draw, *shape)``).
* root ``attrs`` -- run metadata and results (``llc``, ``llc_mcse``, ``n``, ``beta``,
  ``gamma``, ``sampler``, ...).

ArviZ functions then work directly, e.g.
``arviz_stats.ess(dt, group="sample_stats", var_names="L_n")``.

Storage: a path ending in ``.nc`` is written as one NetCDF4 file by
``DataTree.to_netcdf`` (needs ``h5netcdf`` or ``netCDF4``); any other path is written
as a directory of NetCDF3 files (one per group, SciPy backend, always available) with a
``manifest.json`` that restores group paths, attribute types and integer dtypes.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr
from arviz_base import from_dict

from slt_sampler.diagnostics.results import atomic_path

__all__ = ["LOSS_NAME", "load_datatree", "save_datatree", "to_datatree"]

LOSS_NAME = "L_n"
_MANIFEST = "manifest.json"
_FORMAT = "slt_sampler.datatree.netcdf3-dir/1"

_ERR_LOSSES = (
    "`losses` must be a 2-D array shaped (chain, draw) with at least one draw; got "
    "shape {shape}. For a single chain pass losses[None, :]."
)
_ERR_LEADING = (
    "`{arg}[{key!r}]` must lead with the (chain, draw) shape of `losses` {expected}; "
    "got shape {shape}. Record one value per chain and draw (sampler outputs from "
    "`sample` already do)."
)
_ERR_MAPPING = "`{arg}` must be a dict of name -> array; got {kind}."
_ERR_DUP = (
    "`sample_stats` must not contain {key!r}: the loss trace is passed once, as "
    "`losses`. Remove it from `sample_stats`."
)
_ERR_ATTR = (
    "`attrs[{key!r}]` must be a scalar number, bool or string; got {kind}. "
    "Store arrays "
    "in `sample_stats` or `posterior` instead, or convert with float(...)/str(...)."
)
_ERR_NO_ENGINE = (
    "`path` {path!s} ends with '.nc', which needs the 'h5netcdf' or 'netCDF4' package "
    "(not installed). Install h5netcdf, or pass a directory path without the '.nc' "
    "suffix to use the NetCDF3 directory format."
)
_ERR_NOT_FOUND = (
    "`path` {path!s} is neither a '.nc' file nor a directory written by "
    "save_datatree (no {manifest}). Check the path."
)


def _leading_ok(arr: np.ndarray, shape: tuple[int, int]) -> bool:
    return arr.ndim >= 2 and arr.shape[:2] == shape


def _as_arrays(arg: str, values, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise TypeError(_ERR_MAPPING.format(arg=arg, kind=type(values).__name__))
    out = {}
    for key, value in values.items():
        arr = np.asarray(value)
        if not _leading_ok(arr, shape):
            raise ValueError(
                _ERR_LEADING.format(arg=arg, key=key, expected=shape, shape=arr.shape)
            )
        out[str(key)] = arr
    return out


def _as_attrs(attrs) -> dict:
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise TypeError(_ERR_MAPPING.format(arg="attrs", kind=type(attrs).__name__))
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic) or (
            not isinstance(value, str | numbers.Number) and hasattr(value, "shape")
        ):
            arr = np.asarray(value)  # NumPy / JAX scalars and 0-d arrays
            value = arr.item() if arr.ndim == 0 and arr.dtype.kind in "biuf" else value
        if not isinstance(value, str | numbers.Number) or isinstance(value, complex):
            raise TypeError(_ERR_ATTR.format(key=key, kind=type(value).__name__))
        out[str(key)] = value
    return out


def to_datatree(
    losses,
    *,
    sample_stats: Mapping | None = None,
    posterior: Mapping | None = None,
    attrs: Mapping | None = None,
) -> xr.DataTree:
    """Package an LLC sampling run as an ArviZ 1.x ``DataTree``.

    Parameters
    ----------
    losses : array_like, shape (chain, draw)
        Per-draw loss ``L_n(w_t)``; stored as ``sample_stats["L_n"]``. NaNs (diverged
        draws) are kept.
    sample_stats : dict of str -> array_like (chain, draw, ...), optional
        Other per-draw sampler statistics, ideally under ArviZ's names: ``lp``,
        ``acceptance_rate``, ``diverging``, ``step_size``, ``n_steps``, ``energy``.
    posterior : dict of str -> array_like (chain, draw, ...), optional
        Positions (parameters) per draw.
    attrs : dict of str -> scalar or str, optional
        Root attributes, e.g. ``llc``, ``llc_mcse``, ``n``, ``beta``, ``gamma``,
        ``sampler``. 0-d NumPy/JAX arrays are converted to Python scalars.

    Returns
    -------
    xarray.DataTree
        Groups ``sample_stats`` (always) and ``posterior`` (if given), coordinates
        ``chain`` and ``draw`` starting at 0, and ArviZ creation metadata.

    Examples
    --------
    >>> import numpy as np
    >>> dt = to_datatree(np.zeros((2, 10)), attrs={"llc": 1.5, "sampler": "sgld"})
    >>> dt["sample_stats"]["L_n"].dims, dt.attrs["llc"]
    (('chain', 'draw'), 1.5)
    """
    loss = np.asarray(losses)
    if loss.ndim != 2 or loss.shape[1] < 1:
        raise ValueError(_ERR_LOSSES.format(shape=loss.shape))
    stats = _as_arrays("sample_stats", sample_stats, loss.shape)
    if LOSS_NAME in stats:
        raise ValueError(_ERR_DUP.format(key=LOSS_NAME))
    positions = _as_arrays("posterior", posterior, loss.shape)
    groups = {"posterior": positions} if positions else {}
    groups["sample_stats"] = {LOSS_NAME: loss, **stats}
    root_attrs = _as_attrs(attrs)
    return from_dict(
        groups, index_origin=0, attrs={"/": root_attrs} if root_attrs else None
    )


def _has_netcdf4_engine() -> bool:
    return bool({"h5netcdf", "netcdf4"} & set(xr.backends.list_engines()))


def save_datatree(dt: xr.DataTree, path) -> Path:
    """Write ``dt`` to ``path`` atomically and return the path.

    Parameters
    ----------
    dt : xarray.DataTree
        E.g. from :func:`to_datatree`.
    path : str or os.PathLike
        ``*.nc``: a single NetCDF4 file (needs ``h5netcdf`` or ``netCDF4``). Anything
        else: a directory of NetCDF3 files plus ``manifest.json`` (SciPy backend; no
        extra dependency). An existing file or directory is replaced.

    Returns
    -------
    pathlib.Path

    Notes
    -----
    The tree is written to a temporary file (or directory) next to ``path`` and then
    renamed onto it, so an interrupted write never leaves a partial file at ``path``:
    a file is replaced atomically; a directory is swapped in with two renames (the old
    one is removed afterwards).
    """
    if not isinstance(dt, xr.DataTree):
        raise TypeError(f"`dt` must be an xarray.DataTree; got {type(dt).__name__}.")
    path = Path(path)
    if path.suffix == ".nc":
        if not _has_netcdf4_engine():
            raise ValueError(_ERR_NO_ENGINE.format(path=path))
        with atomic_path(path, suffix=".nc") as tmp:
            if "h5netcdf" in xr.backends.list_engines():
                # booleans (e.g. ``diverging``) are HDF5-valid but not strict NetCDF4
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "You are writing invalid netcdf")
                    dt.to_netcdf(tmp, mode="w", engine="h5netcdf", invalid_netcdf=True)
            else:
                dt.to_netcdf(tmp, mode="w")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    )
    try:
        entries = []
        for index, node in enumerate(dt.subtree):
            ds = node.to_dataset(inherit=False)
            file = f"group{index:03d}.nc"
            entries.append(
                {
                    "path": node.path,
                    "file": file,
                    "attrs": ds.attrs,
                    "var_attrs": {str(k): v.attrs for k, v in ds.variables.items()},
                    "dtypes": {str(k): v.dtype.str for k, v in ds.variables.items()},
                }
            )
            ds = ds.copy()
            ds.attrs = {}
            for var in ds.variables.values():
                var.attrs = {}
            ds.to_netcdf(tmp / file, mode="w", engine="scipy")
        manifest = {"format": _FORMAT, "groups": entries}
        text = json.dumps(manifest, indent=1, default=_json_default)
        (tmp / _MANIFEST).write_text(text)
        old = tmp.with_suffix(".old")
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():
                os.replace(old, path)  # put the previous tree back
            raise
        shutil.rmtree(old, ignore_errors=True)
        old.unlink(missing_ok=True)  # if it was a file
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"attribute value {value!r} is not JSON-serialisable")


def load_datatree(path) -> xr.DataTree:
    """Read a ``DataTree`` written by :func:`save_datatree` (fully loaded in memory).

    Parameters
    ----------
    path : str or os.PathLike
        A ``*.nc`` file or a directory written by :func:`save_datatree`.

    Returns
    -------
    xarray.DataTree
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".nc":
        if not _has_netcdf4_engine():
            raise ValueError(_ERR_NO_ENGINE.format(path=path))
        with xr.open_datatree(path) as tree:
            return tree.load()
    manifest_file = path / _MANIFEST
    if not manifest_file.is_file():
        raise ValueError(_ERR_NOT_FOUND.format(path=path, manifest=_MANIFEST))
    manifest = json.loads(manifest_file.read_text())
    datasets = {}
    for entry in manifest["groups"]:
        with xr.open_dataset(path / entry["file"], engine="scipy") as raw:
            ds = raw.load()
        for name, dtype in entry["dtypes"].items():
            if ds[name].dtype != np.dtype(dtype):
                ds[name] = ds[name].astype(np.dtype(dtype))
        for name, var_attrs in entry["var_attrs"].items():
            ds[name].attrs = var_attrs
        ds.attrs = entry["attrs"]
        datasets[entry["path"]] = ds
    return xr.DataTree.from_dict(datasets)
