"""Checkpoint files of :func:`slt_sampler.training.train`: atomic ``.npz`` per
checkpoint, and a ``meta.json`` that a resumed run must match."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics.results import atomic_path, write_json_atomic

_CKPT = re.compile(r"^ckpt_(\d+)\.npz$")
FORMAT = 1
_MISMATCH = (
    "{arg} does not match the checkpoints in path={path!s}: they were written with "
    "{key} = {old}, this call has {new}. Resume with the same {arg}, or pass a new "
    "(empty) path."
)


class Store:
    """Checkpoints in memory (``path=None``) or as atomic ``.npz`` files."""

    def __init__(self, path):
        self.path = None if path is None else Path(path)
        self.mem: dict[int, dict] = {}

    def steps(self) -> list[int]:
        if self.path is None:
            return sorted(self.mem)
        if not self.path.is_dir():
            return []
        found = (_CKPT.match(f.name) for f in self.path.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, step: int, record: dict) -> None:
        if self.path is None:
            self.mem[step] = record
            return
        target = self.path / f"ckpt_{step:010d}.npz"
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, **record)

    def load(self, step: int) -> dict:
        if self.path is None:
            return self.mem[step]
        with np.load(self.path / f"ckpt_{step:010d}.npz") as f:
            return {k: f[k] for k in f.files}


def flat(prefix: str, tree) -> dict:
    return {f"{prefix}{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def unflat(prefix: str, record: dict, like):
    leaves, treedef = jax.tree.flatten(like)
    return jax.tree.unflatten(
        treedef, [jnp.asarray(record[f"{prefix}{i}"]) for i in range(len(leaves))]
    )


def describe(tree) -> dict:
    leaves, treedef = jax.tree.flatten(tree)
    return {
        "treedef": str(treedef),
        "shapes": [[list(np.shape(x)), str(jnp.result_type(x))] for x in leaves],
    }


def key_data(rng_key) -> list:
    if jnp.issubdtype(jnp.asarray(rng_key).dtype, jax.dtypes.prng_key):
        rng_key = jax.random.key_data(rng_key)
    return np.asarray(rng_key).ravel().tolist()


def check_meta(path: Path, meta: dict) -> None:
    """Write ``meta.json`` on a fresh path; on a used one, compare field by field."""
    file = path / "meta.json"
    if not file.exists():
        write_json_atomic(file, meta)
        return
    old = json.loads(file.read_text())
    names = {
        "params": "params0",
        "opt_state": "optimizer",
        "batch_size": "batch_size",
        "checkpoint_every": "checkpoint_every",
        "n": "posterior",
        "rng_key": "rng_key",
    }
    for key, arg in names.items():
        if old.get(key) != meta[key]:
            raise ValueError(
                _MISMATCH.format(
                    arg=arg, path=path, key=key, old=old.get(key), new=meta[key]
                )
            )


def checkpoint_record(step, start, carry, loss, ham, losses) -> dict:
    return {
        "step": np.asarray(step),
        "start": np.asarray(start),
        "loss": np.asarray(loss),
        "hamiltonian": np.asarray(ham),
        "batch_loss": np.asarray(losses),
        **flat("p", carry[0]),
        **flat("o", carry[1]),
    }
