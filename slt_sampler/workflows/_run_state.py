"""The saved state of a long exact LLC run, so that a run that is stopped (a killed
process, a machine restart) continues where it was instead of starting again:
``estimate_llc(..., resume_file=path)``.

The file is one ``.npz`` written atomically (a temporary file, then ``os.replace``)
after every block of the run. It holds a *fingerprint* of the run's settings (the
key, the posterior's n, β, γ and L_n(w*), the number of parameters and chains, the
run-length arguments and the version of the exact path); a file written with other
settings is refused, naming the difference, rather than silently continued.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..diagnostics.results import atomic_path


def _normal(obj):
    """``obj`` as JSON reads it back (tuples become lists), for comparison."""
    return json.loads(json.dumps(obj))


class RunStore:
    """State of one run in ``path``: ``meta`` (JSON-able scalars) and ``arrays``."""

    def __init__(self, path, fingerprint: dict):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"resume_file must be a path (str or os.PathLike), got "
                f"{type(path).__name__}; e.g. resume_file='out/run.npz'."
            )
        self.path = Path(path)
        if self.path.suffix != ".npz":
            raise ValueError(
                f"resume_file = {str(path)!r} must end in .npz (it is a NumPy archive)."
            )
        self.fingerprint = _normal(fingerprint)
        self.meta: dict = {}
        self.arrays: dict = {}

    def load(self) -> bool:
        """Read the saved state if the file exists (``True``); a file of another run
        raises ``ValueError``."""
        if not self.path.exists():
            return False
        with np.load(self.path) as z:
            saved = json.loads(str(z["__fingerprint__"]))
            if saved != self.fingerprint:
                diff = sorted(
                    k
                    for k in set(saved) | set(self.fingerprint)
                    if saved.get(k) != self.fingerprint.get(k)
                )
                raise ValueError(
                    f"resume_file = {str(self.path)!r} holds a run with other "
                    f"settings (differing: {', '.join(diff)}); delete the file to "
                    "start afresh, or pass another path."
                )
            self.meta = json.loads(str(z["__meta__"]))
            self.arrays = {k: z[k] for k in z.files if not k.startswith("__")}
        return True

    @staticmethod
    def saved_meta(path) -> dict:
        """The meta saved in ``path`` whatever the run's settings (``{}`` if there is
        no such file): for a caller that reports on a run, e.g. the seconds that
        earlier processes spent on it (``meta["counters"]``), without continuing it."""
        if path is None or not Path(path).exists():
            return {}
        with np.load(path) as z:
            return json.loads(str(z["__meta__"]))

    def save(self, meta: dict, arrays: dict) -> None:
        """Replace the saved state by ``meta`` and ``arrays``, atomically."""
        self.meta, self.arrays = _normal(meta), dict(arrays)
        self._write()

    def put(self, **items) -> None:
        """Add ``items`` to the saved meta (the arrays unchanged)."""
        self.meta.update(_normal(items))
        self._write()

    def _write(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                __fingerprint__=json.dumps(self.fingerprint),
                __meta__=json.dumps(self.meta),
                **{k: np.asarray(v) for k, v in self.arrays.items()},
            )
