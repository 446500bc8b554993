"""``llc_over_training``: λ̂ at every checkpoint of a training run, one compile.

The local learning coefficient as a function of training time (Chen et al. 2023;
Hoogland et al. 2024, "The developmental landscape of in-context learning") is
``estimate_llc`` at each checkpoint w*_k. Here the centre w* is a traced value of the
one compiled sampler, so all checkpoints share one executable, and the SGLD step is
calibrated once and reused while the geometry allows.

**Refresh rule.** The step ε is calibrated by the configurational temperature (the rule
of :func:`~slt_sampler.calibrate_sgld`, with every trial a full checkpoint run of the
one compiled sampler) at checkpoint ``calibrate_at``; with it we record the
curvature ρ_ref (spectral radius of ∇²U at that checkpoint). At each checkpoint k the
spectral radius ρ_k is measured before sampling: if ``ρ_k / ρ_ref`` leaves
``[1/refresh, refresh]`` the step is recalibrated there (if that is impossible, at a
saddle whose dominant curvature is negative, ε is rescaled to ``ε ρ_ref / ρ_k`` when
the curvature grew, which keeps the leading term of ``T_conf − 1 ≈ (ε/2) Σh²/Σh``
fixed, and kept when it fell: an untested step is never enlarged). After sampling, if the
chains behaved as at a minimum (none settled below ``L_n(w*)``) and their
configurational temperature is hot, ``T_conf − 1 > tolerance + 2 se``, ε is shrunk as
in the calibration (by ``clip(0.8 tol/(T−1), 0.1, 0.7)``) and the checkpoint is run
again, once; if it is cold, ``T_conf − 1 < −(tolerance + 2 se)`` (a step shrunk at
earlier saddles, too small for the chains to equilibrate in the run), the step is
calibrated afresh there. At a saddle (a plateau of saddle-to-saddle training) the chains descend
below w* and are not in equilibrium, so ``T_conf`` is not a test of the step there.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..diagnostics.results import atomic_path, write_json_atomic
from ..estimators.plateaus import Plateau, find_plateaus
from ..posterior.base import TemperedPosterior, check_posterior
from ..samplers import run as _driver
from ..samplers.calibrate import CalibrationConfig, check_config, shrink_factor
from ..types import PRNGKey, PyTree
from ._checkpoint_llc import KEPT, CheckpointLLC, checkpoint_llc, curvature_and_gradient
from .llc import ChainDivergenceError

_ROW_FIELDS = (
    "step",
    "loss",
    "llc",
    "llc_mcse",
    "llc_sigma",
    "llc_raw",
    "rhat",
    "step_size",
    "curvature",
    "grad_norm",
    "t_conf",
    "t_conf_se",
    "below",
    "refreshed",
    "seconds",
    "rho_ref",
)


class LLCOverTraining(NamedTuple):
    """λ̂ at every checkpoint (arrays of length k, one per checkpoint).

    ``loss`` is ``L_n(w*_k)``; ``llc_sigma`` the total error (MCSE, step-size bias,
    drift); ``below`` marks checkpoints where chains settled below ``L_n(w*_k)``
    (w*_k is not a minimum, e.g. a saddle: λ̂ there is not an LLC); ``refreshed`` why
    the step changed there ("" if it did not); ``checkpoint_seconds`` the sampling
    time of each; ``losses`` the ``(checkpoint, chain,
    draw)`` L_n traces after burn-in; ``plateaus`` those of the loss curve
    (:func:`~slt_sampler.estimators.plateaus.find_plateaus`); ``compiles`` the sampler
    executables compiled during the call: 1 on a fresh process (calibration trials,
    reruns and every checkpoint share it), 0 when an earlier call of the same shapes
    compiled it.
    """

    steps: np.ndarray
    loss: np.ndarray
    llc: np.ndarray
    llc_mcse: np.ndarray
    llc_sigma: np.ndarray
    llc_raw: np.ndarray
    rhat: np.ndarray
    step_size: np.ndarray
    curvature: np.ndarray
    grad_norm: np.ndarray
    t_conf: np.ndarray
    t_conf_se: np.ndarray
    below: np.ndarray
    refreshed: tuple
    checkpoint_seconds: np.ndarray
    losses: np.ndarray
    plateaus: tuple
    settings: dict
    compiles: int
    seconds: float

    def __repr__(self) -> str:
        from ..diagnostics._training_llc_figure import training_llc_summary

        return training_llc_summary(self)

    __str__ = __repr__

    def to_datatree(self):
        """An ``xarray.DataTree``: ``sample_stats/L_n`` over ``(checkpoint, chain,
        draw)``, per-checkpoint results in ``checkpoints``, the settings as attrs."""
        import xarray as xr

        k, c, d = self.losses.shape
        coords = {
            "checkpoint": np.arange(k),
            "chain": np.arange(c),
            "draw": np.arange(d),
        }
        stats = xr.Dataset(
            {"L_n": (("checkpoint", "chain", "draw"), self.losses)},
            coords=coords,
        )
        per = {
            f: ("checkpoint", np.asarray(getattr(self, f)))
            for f in _ROW_FIELDS
            if f not in ("step", "refreshed", "rho_ref", "seconds")
        }
        per["step"] = ("checkpoint", self.steps)
        per["below"] = ("checkpoint", self.below.astype(np.int8))
        ckpts = xr.Dataset(per, coords={"checkpoint": np.arange(k)})
        attrs = {
            key: v
            for key, v in self.settings.items()
            if isinstance(v, int | float | str)
        }
        attrs["plateaus"] = json.dumps([p._asdict() for p in self.plateaus])
        attrs["compiles"] = self.compiles
        dt = xr.DataTree.from_dict({"/sample_stats": stats, "/checkpoints": ckpts})
        dt.attrs = attrs
        return dt

    def plot(self, path=None, *, reference=None, title: str | None = None):
        """λ̂ ± σ and the loss against training step (shared step axis), plateaus
        shaded; ``reference``: ``{plateau index: (label, λ)}`` drawn at plateaus."""
        from ..diagnostics._training_llc_figure import plot_llc_over_training

        return plot_llc_over_training(
            self.steps,
            self.loss,
            self.llc,
            self.llc_sigma,
            plateaus=self.plateaus,
            below=self.below,
            reference=reference,
            title=title,
            path=path,
        )


def _check_checkpoints(posterior: TemperedPosterior, checkpoints) -> int:
    like = posterior.center
    if like is None:
        raise ValueError(
            "llc_over_training needs the parameter structure: build the posterior "
            "with center=<any parameter point> (e.g. the last checkpoint) and gamma > 0."
        )
    if jax.tree.structure(checkpoints) != jax.tree.structure(like):
        raise ValueError(
            f"checkpoints must be the stacked parameters (the pytree of the posterior's "
            f"center, each leaf with a leading checkpoint axis), got structure "
            f"{jax.tree.structure(checkpoints)} against {jax.tree.structure(like)}. "
            "Pass Trajectory.params from slt_sampler.training.train, or "
            "jax.tree.map(lambda *xs: jnp.stack(xs), *list_of_params)."
        )
    leads = set()
    for a, b in zip(jax.tree.leaves(checkpoints), jax.tree.leaves(like)):
        if np.ndim(a) != np.ndim(b) + 1 or np.shape(a)[1:] != np.shape(b):
            raise ValueError(
                f"checkpoints leaves must be the parameter shapes with one leading "
                f"checkpoint axis: got a leaf of shape {np.shape(a)} for a parameter "
                f"of shape {np.shape(b)}."
            )
        leads.add(np.shape(a)[0])
    if len(leads) != 1 or 0 in leads:
        raise ValueError(
            f"checkpoints leaves must share one leading axis (the number of "
            f"checkpoints), got {sorted(leads)}."
        )
    _validate.check_finite_tree(
        "checkpoints", checkpoints, "A diverged training run? Drop those checkpoints."
    )
    return leads.pop()


def _key_data(key):
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _fingerprint(w) -> str:
    h = hashlib.sha1()
    for x in jax.tree.leaves(w):
        h.update(np.ascontiguousarray(np.asarray(x, np.float32)).tobytes())
    return h.hexdigest()[:16]


class _Store:
    """Per-checkpoint results as atomically written ``.npz`` files in a directory."""

    def __init__(self, path, settings: dict):
        self.path = None if path is None else Path(path)
        if self.path is None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / "settings.json"
        if meta.exists():
            old = json.loads(meta.read_text())
            if old != settings:
                diff = {
                    k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v
                }
                raise ValueError(
                    f"path {self.path} holds LLC-over-training results of other "
                    f"settings {diff} (old, new): pass another path or delete it."
                )
        else:
            write_json_atomic(meta, settings)

    def load(self, i: int, fingerprint: str):
        if self.path is None or not (f := self.path / f"ckpt_{i:05d}.npz").exists():
            return None
        with np.load(f) as z:
            if str(z["fingerprint"]) != fingerprint:
                raise ValueError(
                    f"{f} was computed at other parameters than checkpoint {i}: the "
                    "checkpoints changed. Pass another path or delete it."
                )
            return {k: z[k] for k in z.files}

    def save(self, i: int, fingerprint: str, row: dict, trace: np.ndarray) -> None:
        if self.path is None:
            return
        with atomic_path(self.path / f"ckpt_{i:05d}.npz", suffix=".npz") as tmp:
            np.savez(tmp, fingerprint=fingerprint, trace=trace, **row)


def llc_over_training(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    checkpoints: PyTree,
    *,
    steps=None,
    step_size: float | None = None,
    batch_size: int | None = 100,
    num_chains: int = 8,
    num_steps: int = 20_000,
    calibrate_at: int = -1,
    refresh: float | None = 2.0,
    calibration: CalibrationConfig | None = None,
    path=None,
    plateau_floor: float | None = None,
    progress: bool | None = None,
) -> LLCOverTraining:
    """Estimate λ̂ at every checkpoint of a training run.

    .. math:: \\hat\\lambda(w^*_k) = n\\beta\\,(\\mathbb{E}_{w\\mid w^*_k}[L_n(w)]
              - L_n(w^*_k)), \\qquad k = 1, \\dots, K

    Parameters
    ----------
    rng_key
        PRNG key; checkpoint k uses ``fold_in(rng_key, k)`` (a resumed run gives the
        numbers of an uninterrupted one).
    posterior
        The localised posterior (β, γ, data); its centre only gives the parameter
        structure and is replaced by each checkpoint.
    checkpoints
        The parameters at each checkpoint, stacked: the pytree of
        ``posterior.center`` with a leading axis K (``Trajectory.params``).
    steps
        Training step of each checkpoint (default ``0, 1, …, K−1``).
    step_size
        SGLD step (BlackJAX convention) for checkpoint ``calibrate_at``; ``None``
        calibrates it there.
    batch_size, num_chains, num_steps
        SGLD minibatch, chains, and steps per chain at each checkpoint (a quarter
        burn-in; rounded down to a multiple of 100).
    calibrate_at
        Checkpoint index of the calibration (default the last: the trained network,
        nearest to a minimum).
    refresh
        Curvature ratio beyond which the step is recalibrated (module docstring);
        ``None`` keeps one step for all checkpoints (no refresh, no rerun).
    calibration
        :class:`~slt_sampler.CalibrationConfig` of every calibration (its
        ``tolerance``, ``max_trials`` and ``init_step_size``; each trial is a full
        checkpoint run of ``num_steps``, so ``num_steps`` of the config is unused).
    path
        Directory for per-checkpoint results, written atomically as each finishes;
        a rerun with the same path and settings skips finished checkpoints.
    plateau_floor
        ``floor`` of :func:`~slt_sampler.estimators.plateaus.find_plateaus` on the loss
        curve (e.g. the entropy constant of a Gaussian likelihood).
    progress
        tqdm bar over checkpoints (default: on a terminal).

    Returns
    -------
    LLCOverTraining

    Raises
    ------
    ValueError, TypeError
        Bad arguments, naming the argument and the fix.
    ChainDivergenceError
        Chains at a checkpoint produced NaN/inf.
    """
    _validate.check_key("rng_key", rng_key)
    check_posterior(posterior)
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a directory (str or pathlib.Path) or None, got "
            f"{type(path).__name__} {path!r}."
        )
    k = _check_checkpoints(posterior, checkpoints)
    steps = _check_steps(steps, k)
    num_chains = _validate.check_int("num_chains", num_chains)
    num_steps = _validate.check_int("num_steps", num_steps, minimum=2 * KEPT)
    num_steps -= num_steps % KEPT
    _validate.check_scalar("step_size", step_size, "or None to calibrate.")
    _validate.check_positive("step_size", step_size, "or None to calibrate.")
    _validate.check_scalar("refresh", refresh, "A curvature ratio > 1, e.g. 2.")
    _validate.check_positive("refresh", refresh, "A curvature ratio > 1, e.g. 2.")
    if refresh is not None and refresh <= 1:
        raise ValueError(f"refresh must be > 1 (a curvature ratio), got {refresh}.")
    if batch_size is not None:
        batch_size = min(_validate.check_int("batch_size", batch_size), posterior.n)
    if (
        isinstance(calibrate_at, bool)
        or not isinstance(calibrate_at, int | np.integer)
        or not -k <= calibrate_at < k
    ):
        raise ValueError(
            f"calibrate_at must be a checkpoint index in [-{k}, {k}), got "
            f"{calibrate_at!r}."
        )
    requested_at, calibrate_at = int(calibrate_at), int(calibrate_at) % k
    calibration = calibration if calibration is not None else CalibrationConfig()
    check_config(calibration)
    settings = {
        "n": posterior.n,
        "beta": float(posterior.beta),
        "gamma": float(posterior.gamma),
        "num_chains": num_chains,
        "num_steps": num_steps,
        "burn_in": num_steps // 4,
        "batch_size": batch_size if batch_size is not None else 0,
        "step_size": float(step_size) if step_size is not None else 0.0,
        "calibrate_at": requested_at,  # as given: -1 survives a longer trajectory
        "refresh": float(refresh) if refresh is not None else 0.0,
        "key": _fingerprint(_key_data(rng_key)),
        # 2: calibration trials are checkpoint runs (results of 1 are not comparable)
        "method": 2,
    }
    store = _Store(path, settings)
    at = [jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), checkpoints) for i in range(k)]
    runner = _Runner(
        rng_key,
        posterior,
        at,
        {**settings, "calibrate_at": calibrate_at},
        calibration,
        step_size,
    )
    before = set(_driver._COMPILED)
    t0 = time.perf_counter()
    rows, traces = [], []
    for i in _progress(range(k), progress):
        fp = _fingerprint(at[i])
        saved = store.load(i, fp)
        if saved is None:
            row, trace = runner.run(i)
            row["step"] = float(steps[i])
            store.save(i, fp, row, trace)
        else:
            trace = saved.pop("trace")
            row = {f: saved[f].item() for f in _ROW_FIELDS}
            runner.resume_from(row)
        rows.append(row)
        traces.append(trace[:, settings["burn_in"] :])
    compiles = len(set(_driver._COMPILED) - before)
    return _package(rows, traces, steps, settings, plateau_floor, compiles, t0)


def _check_steps(steps, k: int) -> np.ndarray:
    if steps is None:
        return np.arange(k, dtype=np.float64)
    arr = _validate.as_numbers("steps", steps)
    if arr is None or arr.shape != (k,) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"steps must hold one finite training step per checkpoint ({k}), got "
            f"{np.shape(steps)}."
        )
    if k > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError("steps must be strictly increasing (Trajectory.steps).")
    return arr.astype(np.float64)


def _progress(it, show):
    import sys

    show = show if show is not None else sys.stderr.isatty()
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="llc over training", unit="checkpoint")


class _Runner:
    """Holds the current step and its reference curvature; runs one checkpoint."""

    def __init__(self, key, posterior, at, settings, calibration, step_size):
        self.key, self.posterior, self.at = key, posterior, at
        self.s, self.cfg = settings, calibration
        self.eps, self.rho_ref = step_size, None
        self.trial = None  # (checkpoint, CheckpointLLC) of the accepted calibration
        self.notes = {}  # calibration notes for checkpoints not yet run

    def _post(self, i):
        return self.posterior.replace(center=self.at[i])

    def _rho(self, i):
        key = jax.random.fold_in(jax.random.fold_in(self.key, i), 7)
        return float(curvature_and_gradient(self._post(i), self.at[i], key)[0])

    def _calibrate(self, i) -> str:
        """Shrink ε at checkpoint ``i`` until ``T_conf − 1 <= tolerance``.

        Every trial is a full checkpoint run (:func:`checkpoint_llc`, the same shape
        as the production runs), so calibrating compiles nothing new: the trial starts
        at ``2·tolerance/ρ_i`` (or ``calibration.init_step_size``) and shrinks as in
        :func:`~slt_sampler.calibrate_sgld`. The accepted trial is kept and becomes
        checkpoint ``i``'s result if ``i`` is the one being run with this step."""
        tol, cfg = self.cfg.tolerance, self.cfg
        rho = self._rho(i)
        eps = cfg.init_step_size if cfg.init_step_size is not None else 2 * tol / rho
        key = jax.random.fold_in(self.key, i)  # the checkpoint's own key: a trial at
        tried = []  # the step finally used is exactly checkpoint i's production run
        for t in range(cfg.max_trials):
            try:
                out = self._one(key, i, eps)
            except ChainDivergenceError:
                tried.append(f"{eps:.3g} diverged")
                eps *= 0.1
                continue
            if out.below:  # a saddle: chains descend, T_conf is no test of ε here
                return f"calibration impossible at checkpoint {i} (not a minimum)"
            excess = out.t_conf - 1
            tried.append(f"{eps:.3g}: T_conf {out.t_conf:.3f}")
            if excess <= tol:
                self.eps, self.trial = eps, (i, out)
                return (
                    f"calibrated at checkpoint {i}: ε {eps:.3g}, T_conf "
                    f"{out.t_conf:.3f} ± {out.t_conf_se:.3f} (trial {t + 1})"
                )
            eps *= shrink_factor(out.t_conf, tol)
        self.eps = eps if self.eps is None else min(self.eps, eps)
        return (
            f"calibration at checkpoint {i} found no step with T_conf − 1 <= {tol} in "
            f"{cfg.max_trials} trials ({'; '.join(tried)}); using the next smaller "
            f"step {self.eps:.3g}"
        )

    def _ensure_step(self, i) -> str:
        reason = ""
        if self.rho_ref is None:
            c = self.s["calibrate_at"]
            if self.eps is None:
                reason = self._calibrate(c)
                if self.eps is None:
                    raise ValueError(
                        f"could not calibrate the step at checkpoint {c}: {reason}. "
                        "Choose another calibrate_at (a trained checkpoint) or pass "
                        "step_size."
                    )
            self.rho_ref = self._rho(c)
            if c != i:
                self.notes[c], reason = reason, ""
        if not self.s["refresh"]:
            return reason
        rho = self._rho(i)
        ratio = rho / self.rho_ref
        if 1 / self.s["refresh"] <= ratio <= self.s["refresh"]:
            return reason
        old = self.eps
        why = self._calibrate(i)
        if self.eps == old and ratio > 1:  # never enlarge an untested step
            self.eps = old / ratio
        self.rho_ref = rho
        return f"curvature ×{ratio:.3g} since the last calibration; " + why

    def run(self, i):
        why = self._ensure_step(i)
        key = jax.random.fold_in(self.key, i)
        why = "; ".join(w for w in (self.notes.pop(i, ""), why) if w)
        trial = self.trial
        reuse = trial is not None and trial[0] == i and trial[1].step_size == self.eps
        out = trial[1] if reuse else self._one(key, i, self.eps)
        tol = self.cfg.tolerance
        hot = out.t_conf - 1 > tol + 2 * out.t_conf_se
        cold = out.t_conf - 1 < -(tol + 2 * out.t_conf_se)
        if self.s["refresh"] and not out.below and cold:
            # a step inherited from saddles can be too small to equilibrate here
            why += f"; T_conf {out.t_conf:.3f} cold: " + self._calibrate(i)
            trial = self.trial
            if trial is not None and trial[0] == i and trial[1].step_size == self.eps:
                out = trial[1]
            elif self.eps != out.step_size:
                out = self._one(key, i, self.eps)
            self.rho_ref = out.curvature
        elif self.s["refresh"] and not out.below and hot:
            shrink = shrink_factor(out.t_conf, tol)
            why += f"; T_conf {out.t_conf:.3f} hot: ε ×{shrink:.2g}, rerun"
            self.eps *= shrink
            self.rho_ref = out.curvature
            out = self._one(key, i, self.eps)
        row = _row(out, why.strip("; "))
        row["rho_ref"] = float(self.rho_ref)
        return row, out.trace

    def _one(self, key, i, eps) -> CheckpointLLC:
        return checkpoint_llc(
            key,
            self._post(i),
            eps,
            batch_size=self.s["batch_size"] or None,
            num_chains=self.s["num_chains"],
            num_steps=self.s["num_steps"],
            burn_in=self.s["burn_in"],
        )

    def resume_from(self, row: dict) -> None:
        """Continue with the step (and reference curvature) of a finished checkpoint."""
        self.eps, self.rho_ref = float(row["step_size"]), float(row["rho_ref"])


def _row(out: CheckpointLLC, why: str) -> dict:
    r = out.result
    return {
        "loss": out.init_loss,
        "llc": r.llc,
        "llc_mcse": r.llc_mcse,
        "llc_sigma": r.llc_sigma,
        "llc_raw": r.llc_raw,
        "rhat": r.rhat,
        "step_size": out.step_size,
        "curvature": out.curvature,
        "grad_norm": out.grad_norm,
        "t_conf": out.t_conf,
        "t_conf_se": out.t_conf_se,
        "below": out.below,
        "refreshed": why,
        "seconds": out.seconds,
    }


def _package(rows, traces, steps, settings, floor, compiles, t0) -> LLCOverTraining:
    col = {f: np.array([r[f] for r in rows]) for f in _ROW_FIELDS if f != "refreshed"}
    plateaus = ()
    if len(steps) >= 5:
        loss = col["loss"] - (0.0 if floor is None else floor)
        plateaus = find_plateaus(
            steps, col["loss"], floor=floor, log=bool(loss.min() > 0)
        )
    return LLCOverTraining(
        steps=steps,
        loss=col["loss"],
        llc=col["llc"],
        llc_mcse=col["llc_mcse"],
        llc_sigma=col["llc_sigma"],
        llc_raw=col["llc_raw"],
        rhat=col["rhat"],
        step_size=col["step_size"],
        curvature=col["curvature"],
        grad_norm=col["grad_norm"],
        t_conf=col["t_conf"],
        t_conf_se=col["t_conf_se"],
        below=col["below"].astype(bool),
        refreshed=tuple(str(r["refreshed"]) for r in rows),
        checkpoint_seconds=col["seconds"],
        losses=np.stack(traces),
        plateaus=tuple(plateaus),
        settings=settings,
        compiles=compiles,
        seconds=time.perf_counter() - t0,
    )


__all__ = ["LLCOverTraining", "Plateau", "llc_over_training"]
