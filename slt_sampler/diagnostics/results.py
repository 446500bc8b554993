"""Results files that survive interruption: atomic JSON writes and a forgiving reader.

A study that rewrites ``results.json`` in place can leave a truncated file behind when
it is killed mid-write; every later run then dies on ``json.JSONDecodeError``.
:func:`write_json_atomic` writes a temporary file next to the target and moves it into
place with :func:`os.replace`, so the target is always either the old or the new
complete file. :func:`read_rows` reads a results file that is a JSON list of row dicts
(or a dict holding such a list under ``"rows"``) and, if the file is damaged anyway,
returns every complete row it can still read, with a ``RuntimeWarning``.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
>>> _ = write_json_atomic(path, [{"model": "a"}, {"model": "b"}])
>>> _ = path.write_text(path.read_text()[:-20])  # simulate a crash mid-write
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     rows = read_rows(path)
>>> rows, len(caught)
([{'model': 'a'}], 1)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "read_rows", "write_json_atomic"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_WARN_RECOVERED = (
    "results file {path!s} is truncated or corrupt ({error}); recovered {count} "
    "complete row(s). Finished rows are kept; the damaged tail is ignored and will be "
    "rewritten."
)
_ERR_SHAPE = (
    "results file {path!s} holds {kind}, not a JSON list of row dicts (or a dict with "
    "a list of row dicts under {key!r}). Check the path, or move the file aside."
)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success move it onto ``path``.

    The caller writes the temporary file (any writer that takes a path). On a clean
    exit it is flushed to disk and renamed onto ``path`` with :func:`os.replace`
    (atomic on POSIX and Windows within one file system); if the block raises, the
    temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path
        Final location; its parent directory is created if missing.
    suffix
        Suffix of the temporary file, for writers that choose a format by suffix.

    Yields
    ------
    pathlib.Path
        A fresh, empty temporary file in the same directory as ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open()
        # would (0666 less the umask), so results are readable like any other file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2
) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically and return the path.

    Parameters
    ----------
    path
        Target file; replaced only once the new content is complete and on disk.
    obj
        Any ``json.dump``-able object.
    indent
        Passed to :func:`json.dump`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError, ValueError
        If ``obj`` is not JSON-serialisable; ``path`` is then unchanged and no
        temporary file is left behind.
    """
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
    return Path(path)


def read_rows(path: str | os.PathLike, *, key: str = "rows") -> list[dict]:
    """Read a results file of row dicts, recovering what it can from a damaged file.

    Parameters
    ----------
    path
        A JSON file holding a list of dicts, or a dict with such a list under ``key``.
    key
        Name of the list in a dict-shaped file.

    Returns
    -------
    list of dict
        ``[]`` if the file does not exist. If the file is truncated or corrupt, every
        complete row before the damage, after a ``RuntimeWarning`` that names the file
        and the number of rows recovered.

    Raises
    ------
    ValueError
        If the file is valid JSON of another shape.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        rows = _recover_rows(text, key)
        warnings.warn(
            _WARN_RECOVERED.format(path=path, error=error.msg, count=len(rows)),
            RuntimeWarning,
            stacklevel=2,
        )
        return rows
    if isinstance(data, dict) and isinstance(data.get(key), list):
        data = data[key]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(
            _ERR_SHAPE.format(path=path, kind=type(data).__name__, key=key)
        )
    return data


def _recover_rows(text: str, key: str) -> list[dict]:
    """The complete dicts that open the top-level (or ``key``) list in ``text``."""
    start = _WHITESPACE.match(text).end()
    if text.startswith("{", start):
        found = re.search(rf'"{re.escape(key)}"\s*:\s*\[', text)
        start = found.end() if found else len(text)
    elif text.startswith("[", start):
        start += 1
    else:
        return []
    decoder, rows, i = json.JSONDecoder(), [], start
    while True:
        i = _WHITESPACE.match(text, i).end()
        try:
            row, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return rows
        if not isinstance(row, dict):
            return rows
        rows.append(row)
        i = _WHITESPACE.match(text, i).end()
        if not text.startswith(",", i):
            return rows
        i += 1
