"""Rows and result object of :func:`~slt_sampler.workflows.dictionary.thermodynamic_dictionary`.

Each row names a quantity, says what it means in singular learning theory and gives
the estimate with its standard error. The equations of state (Watanabe 2010) appear
as two residuals, ``n(B_g − B_t) − βV`` and ``n(G_g − G_t) − βV``, which vanish in
expectation for every model; each is O(1) for one dataset (its error bar is
Monte-Carlo only), so the identity shows in averages over datasets. The heat capacity
``C = β² Var_β[nL_n] = -dE_β[nL_n]/d(1/β)`` is the dataset's own reading of λ at β
(Watanabe 2013; Imai 2019 at β = 1/log n); ``λ = β(n G_t + ν)`` holds only in
expectation over datasets and is not reported per dataset.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..estimators import _mcse, energy, errors
from ..estimators.errors import Estimate

MEANING = {
    "F": "free energy F_n(β) = -log Z_n(β), thermodynamic integration from β = 0",
    "E_nL": "mean energy E_β[nL_n] (WBIC at β = 1/log n)",
    "U": "average energy n E[K_n] + E[-log φ]/β",
    "S": "posterior entropy E[-log φ] + nβ E[K_n] - F⁰_n(β)",
    "C": "heat capacity β² Var[nK_n] = -dE_β[nL_n]/d(1/β), the λ(β) of F_n",
    "G_t": "Gibbs training error E_w[K_n(w)]",
    "G_g": "Gibbs generalisation error E_w[K(w)]",
    "B_t": "Bayes training error (1/n) Σ log q/E_w p",
    "B_g": "Bayes generalisation error E_X log q/E_w p",
    "V": "functional variance Σ_i Var_w log p(X_i|w)",
    "nu": "singular fluctuation ν = βV/2",
    "WAIC": "WAIC loss T_n + βV/n (estimates the generalisation loss)",
    "LOO": "PSIS leave-one-out loss",
    "EOS_bayes": "n(B_g - B_t) - βV: mean 0 over datasets (equation of state)",
    "EOS_gibbs": "n(G_g - G_t) - βV: mean 0 over datasets (equation of state)",
}


class Row(NamedTuple):
    """One line of the dictionary."""

    quantity: str
    meaning: str
    beta: float
    estimate: float
    error: float


class RungData(NamedTuple):
    """What one β rung of the run provides to :func:`dictionary_rows`."""

    beta: float
    n: int
    observations: dict  # (chain, draw) arrays: n_loss, neg_log_prior[, kl]
    pointwise: object  # PointwiseStats (chain, n)
    free_energy: object  # TIResult or None
    loo: object  # PsisLoo or None
    log_q: object  # (n,) or None
    fresh: object  # (log_mean_lik (chain, m), log_q (m,)) or None
    has_prior: bool


def _combine(terms, what: str) -> Estimate:
    """Sum of ``(coefficient, Estimate)`` terms, errors in quadrature (the terms come
    from the same draws; their correlation is ignored)."""
    est = sum(c * e.estimate for c, e in terms)
    err = math.sqrt(sum((c * e.error) ** 2 for c, e in terms))
    return Estimate(float(est), err, np.empty(0), 0.0, what)


def _estimates(r: RungData) -> dict[str, Estimate]:
    b, n, obs, pw = r.beta, r.n, r.observations, r.pointwise
    nl = obs["n_loss"]
    out = {"E_nL": Estimate(float(nl.mean()), _mcse.mcse_mean(nl), nl.mean(axis=1))}
    n_sn = None if r.log_q is None else -float(np.sum(r.log_q))
    if r.free_energy is not None:
        ti = r.free_energy
        out["F"] = Estimate(ti.free_energy, ti.sigma, np.empty(0), 0.0, "TI")
    if r.has_prior:
        nlp = obs["neg_log_prior"]
        out["U"] = energy.average_energy(nl, nlp, b, n_empirical_entropy=n_sn or 0.0)
        if r.free_energy is not None:
            out["S"] = energy.entropy(nl, nlp, b, ti.free_energy, ti.sigma)
    out["C"] = energy.heat_capacity(nl, b)
    if n_sn is not None:
        out["G_t"] = errors.gibbs_training_error(nl, n, n_empirical_entropy=n_sn)
        out["B_t"] = errors.bayes_training_error(pw.log_mean_lik, r.log_q)
    if "kl" in obs:
        out["G_g"] = errors.gibbs_generalization_error(obs["kl"])
    if r.fresh is not None:
        out["B_g"] = errors.bayes_generalization_error(*r.fresh)
    draws = pw.num_draws
    out["V"] = errors.functional_variance(
        pw.var_loglik, pw.mean_loglik, num_draws=draws
    )
    out["nu"] = errors.singular_fluctuation(out["V"], b)
    out["WAIC"] = errors.waic(
        pw.log_mean_lik, pw.var_loglik, pw.mean_loglik, beta=b, num_draws=draws
    )
    if r.loo is not None:
        out["LOO"] = Estimate(r.loo.loss, r.loo.loss_mcse, np.empty(0), 0.0, "PSIS")
    for name, (g, t) in {"EOS_bayes": "BB", "EOS_gibbs": "GG"}.items():
        gen, train = f"{g}_g", f"{t}_t"
        if gen in out and train in out:
            terms = [(n, out[gen]), (-n, out[train]), (-2.0, out["nu"])]
            out[name] = _combine(terms, "equation of state")
    return out


def dictionary_rows(rung: RungData) -> list[Row]:
    """The rows of one β, in the order of :data:`MEANING`."""
    est = _estimates(rung)
    return [
        Row(q, MEANING[q], rung.beta, est[q].estimate, est[q].error)
        for q in MEANING
        if q in est
    ]


class ThermodynamicDictionary(NamedTuple):
    """The dictionary at each β, with the draws it came from.

    Attributes
    ----------
    betas : (B,) the requested inverse temperatures.
    rows : list (per β) of lists of :class:`Row`.
    observations : dict of (ladder β, chain, draw) arrays: n_loss, neg_log_prior, kl.
    ladder : every β rung that was sampled (the requested β and the TI rungs).
    pointwise : per-datum statistics (ladder β, chain, n).
    n : number of data.
    diverged : (ladder β, chain) chains that produced a non-finite state.
    notes : what was skipped and why (e.g. PSIS-LOO on too few draws).
    """

    betas: np.ndarray
    rows: list
    observations: dict
    ladder: np.ndarray
    pointwise: object
    n: int
    diverged: np.ndarray
    notes: tuple = ()

    def table(self):
        """A ``pandas.DataFrame`` with columns quantity, meaning, beta, estimate,
        error (one row per quantity and β)."""
        import pandas as pd

        flat = [r._asdict() for rows in self.rows for r in rows]
        return pd.DataFrame(flat, columns=list(Row._fields))

    def to_datatree(self):
        """An ``xarray.DataTree``: ``sample_stats`` (beta, chain, draw) per-draw
        observables over the whole ladder, ``pointwise`` (beta, chain, obs)
        per-datum statistics, ``dictionary`` (quantity, beta) estimates and errors."""
        import xarray as xr

        dims3 = ("beta", "chain", "draw")
        stats = xr.Dataset(
            {k: (dims3, np.asarray(v)) for k, v in self.observations.items()},
            coords={"beta": self.ladder},
        )
        pw_dims = ("beta", "chain", "obs")
        fields = ("log_mean_lik", "mean_loglik", "var_loglik")
        pointwise = xr.Dataset(
            {f: (pw_dims, np.asarray(getattr(self.pointwise, f))) for f in fields},
            coords={"beta": self.ladder},
        )
        tab = self.table()
        quantities = [q for q in MEANING if q in set(tab["quantity"])]
        grid = {
            c: tab.pivot(index="quantity", columns="beta", values=c).loc[quantities]
            for c in ("estimate", "error")
        }
        table = xr.Dataset(
            {c: (("quantity", "beta"), g.to_numpy()) for c, g in grid.items()},
            coords={"quantity": quantities, "beta": self.betas},
        )
        table["meaning"] = ("quantity", [MEANING[q] for q in quantities])
        tree = xr.DataTree.from_dict(
            {"sample_stats": stats, "pointwise": pointwise, "dictionary": table}
        )
        tree.attrs.update(n=self.n, num_diverged=int(np.sum(self.diverged)))
        if self.notes:
            tree.attrs["notes"] = "\n".join(self.notes)
        return tree

    def __repr__(self) -> str:
        head = f"ThermodynamicDictionary(n={self.n}, betas={np.round(self.betas, 4)})"
        cols = "".join(f"{f'β = {b:.4g}':>20}" for b in self.betas)
        lines = [head, f"{'quantity':<10}{cols}"]
        by_q: dict = {}
        for rows in self.rows:
            for r in rows:
                by_q.setdefault(r.quantity, {})[r.beta] = r
        for q, cells in by_q.items():
            txt = "".join(f"{_cell(cells.get(float(b))):>20}" for b in self.betas)
            lines.append(f"{q:<10}{txt}")
        if np.any(self.diverged):
            lines.append(f"WARNING: {int(np.sum(self.diverged))} chains diverged")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def _cell(row) -> str:
    if row is None:
        return "-"
    return f"{row.estimate:.4g} ± {row.error:.2g}"
