"""The thermodynamic dictionary of a model at (n, β): one call, one table.

One β ladder run (every rung in one compiled chunk) records ``nL_n``, ``-log φ`` and
optionally ``K(w)`` at every kept draw and streams the per-datum statistics of
``log p(X_i|w)``; the estimators of :mod:`slt_sampler.estimators.errors`,
:mod:`~slt_sampler.estimators.energy` and :mod:`~slt_sampler.estimators.free_energy`
turn them into the free energy, energy, entropy, heat capacity, Bayes and Gibbs
errors, functional variance, singular fluctuation, WAIC and PSIS-LOO (Watanabe 2009,
2010, 2013). The ladder holds the requested β plus, when the prior is proper, rungs
from β = 0 for thermodynamic integration, so ``F_n(β)`` (and with it the entropy)
comes from the same run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..estimators import errors
from ..estimators.free_energy import beta_ladder, thermodynamic_integration
from ..posterior.base import check_posterior, full_loss, log_prior
from ..samplers.ladder import sample_ladder
from ..types import PRNGKey, PyTree
from ._dictionary_result import RungData, ThermodynamicDictionary, dictionary_rows

__all__ = ["DictionaryRun", "ThermodynamicDictionary", "thermodynamic_dictionary"]

_PER_DATUM = ("log_mean_lik", "mean_loglik", "var_loglik")
_PRIOR_BETA = 1e-6
_LOO_MAX = 20_000_000  # draws × n above which PSIS-LOO (a full loglik array) is skipped
_LOO_MIN_DRAWS = 25  # PSIS fits a Pareto tail of >= 5 of each chain's draws (S / 5)
_MIN_ACCEPTANCE = 0.2  # mean Metropolis acceptance below which a rung is flagged
_BLOCK = 5_000_000  # log-likelihoods held at once for the fresh-data B_g


class DictionaryRun(NamedTuple):
    """Run settings of :func:`thermodynamic_dictionary`.

    Attributes
    ----------
    num_chains : chains per β rung.
    num_steps : kept steps per chain (after warm-up).
    num_warmup : steps discarded first (same ladder, same kernels; 0: none).
    thinning : keep every ``thinning``-th step.
    ti_rungs : rungs of the thermodynamic-integration ladder from β = 0 (0: no F, S).
    """

    num_chains: int = 4
    num_steps: int = 2000
    num_warmup: int = 1000
    thinning: int = 1
    ti_rungs: int = 16


def _loglik_draws(posterior, positions: PyTree, data: PyTree) -> np.ndarray:
    """``log p(X_j | w)`` for positions ``(chain, draw, ...)``: ``(chain, draw, m)``."""
    flat = jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), positions)
    out = jax.jit(lambda w, d: jax.lax.map(lambda p: posterior.loglik_fn(p, d), w))(
        flat, data
    )
    lead = jax.tree.leaves(positions)[0].shape[:2]
    return np.asarray(out, np.float64).reshape(lead + (-1,))


def _log_mean_lik(posterior, positions: PyTree, data: PyTree) -> np.ndarray:
    """Per-chain ``log (1/S) Σ_s p(X_j | w_s)``, ``(chain, m)``, in blocks of data so
    that memory stays at about ``_BLOCK`` log-likelihoods."""
    draws = int(np.prod(jax.tree.leaves(positions)[0].shape[:2]))
    m = jax.tree.leaves(data)[0].shape[0]
    step = max(1, _BLOCK // draws)
    out = []
    for start in range(0, m, step):
        block = jax.tree.map(lambda x, s=start: x[s : s + step], data)
        out.append(errors.pointwise_stats(_loglik_draws(posterior, positions, block)))
    return np.concatenate([o.log_mean_lik for o in out], axis=1)


def _acceptance_notes(res, rungs) -> list[str]:
    """Warn (and note) when a rung's Metropolis acceptance is so low that its chains
    barely move: every estimate built on that rung (and F, S through the ladder) would
    then describe the starting point, not p_β."""
    acc = np.asarray(res.stats.get("acceptance_rate", np.ones(1)), np.float64)
    if acc.ndim < 3:
        return []
    per_rung = acc.reshape(acc.shape[0], -1).mean(axis=1)
    low = np.flatnonzero(per_rung < _MIN_ACCEPTANCE)
    if low.size == 0:
        return []
    listing = ", ".join(f"β={rungs[i]:.3g}: {per_rung[i]:.2f}" for i in low)
    msg = (
        f"acceptance below {_MIN_ACCEPTANCE} on {low.size} rung(s) ({listing}): those "
        "chains barely move, so their energies, and F and S through the ladder, are "
        "not those of p_β. Give each rung its own step size, e.g. sampler=lambda b: "
        "MALA(c / (n * b + 1)) with c chosen for acceptance 0.5-0.9."
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return [msg]


def thermodynamic_dictionary(
    rng_key: PRNGKey,
    posterior,
    sampler,
    init_position: PyTree,
    *,
    betas,
    run: DictionaryRun | None = None,
    log_q=None,
    population_kl: Callable | None = None,
    fresh_data: tuple | None = None,
) -> ThermodynamicDictionary:
    """Every thermodynamic quantity of ``posterior`` at each β in ``betas``.

    Parameters
    ----------
    rng_key
        PRNG key (split for warm-up and sampling).
    posterior
        A :class:`~slt_sampler.TemperedPosterior` with γ = 0 and a *normalised* prior
        for F, U, S (a flat prior: only the prior-free rows).
    sampler
        A sampler, or ``beta -> sampler`` giving each rung its own (e.g. a step size
        scaled with ``1/(nβ)``).
    init_position
        Start of every chain.
    betas
        Inverse temperatures of the table.
    run
        :class:`DictionaryRun` settings (default ``DictionaryRun()``).
    log_q
        ``log q(X_i)`` at the training data ``(n,)`` (B_t, G_t, λ); None if unknown.
    population_kl
        ``K(w)`` as a jnp function of the parameters (G_g); None if unknown.
    fresh_data
        ``(data, log_q_fresh)``: fresh data from q and ``log q`` there (B_g).

    All arguments are checked before anything is sampled. PSIS-LOO needs at least
    25 kept draws per chain (a Pareto tail of 5); with fewer, or with more than
    2·10⁷ log-likelihoods, the LOO row is left out and ``notes`` says why.

    Returns
    -------
    ThermodynamicDictionary
        ``.table()``, ``.to_datatree()``, and a one-screen ``repr``.
    """
    _validate.check_key("rng_key", rng_key)
    check_posterior(posterior)
    run = _check_run(DictionaryRun() if run is None else run)
    if _validate.as_numbers("betas", betas) is None:
        raise TypeError(f"betas must be concrete numbers > 0, got {betas!r}.")
    betas = np.sort(np.atleast_1d(np.asarray(betas, np.float64)))
    _validate.check_positive("betas", betas, "Inverse temperatures are > 0.")
    if population_kl is not None and not callable(population_kl):
        raise TypeError(
            "population_kl must be a function params -> K(w) (a jnp scalar) or None, "
            f"got {type(population_kl).__name__} {population_kl!r}."
        )
    if log_q is not None:
        log_q = _check_log_q("log_q", log_q, posterior.n, "the training data")
    if fresh_data is not None:
        fresh_data = _check_fresh_data(fresh_data, posterior)
    has_prior = posterior.logprior_fn is not None
    ladder = betas
    if has_prior and run.ti_rungs > 1:
        ti = beta_ladder(run.ti_rungs, beta_min=0.1 / posterior.n, beta_max=betas[-1])
        ladder = np.union1d(ti, betas)
    # the β = 0 rung (the prior) is sampled at β = 1e-6/n: exp(-nβL_n) differs from 1
    # by ~1e-6 L_n there, far below any Monte-Carlo error
    rungs = np.maximum(ladder, _PRIOR_BETA / posterior.n)
    samplers = [sampler(float(b)) for b in rungs] if callable(sampler) else sampler

    def observe(w):
        out = {"n_loss": posterior.n * full_loss(posterior, w)}
        out["neg_log_prior"] = -log_prior(posterior, w)
        if population_kl is not None:
            out["kl"] = population_kl(w)
        return out

    k_warm, k_run = jax.random.split(rng_key)
    common = {"betas": rungs, "num_chains": run.num_chains}
    start = init_position
    if run.num_warmup > 0:
        warm = sample_ladder(
            k_warm,
            samplers,
            posterior,
            init_position,
            **common,
            num_steps=run.num_warmup,
        )
        start = warm.final_state.position
    res = sample_ladder(
        k_run,
        samplers,
        posterior,
        start,
        **common,
        num_steps=run.num_steps,
        thinning=run.thinning,
        chains_axis=run.num_warmup > 0,
        keep_positions=True,
        observe=observe,
        pointwise=True,
    )
    obs = {k: np.asarray(v, np.float64) for k, v in res.observations.items()}
    draws_per_chain = obs["n_loss"].shape[-1]
    notes = _acceptance_notes(res, rungs)
    do_loo = draws_per_chain >= _LOO_MIN_DRAWS
    if not do_loo:
        notes.append(
            f"LOO skipped: PSIS needs >= {_LOO_MIN_DRAWS} kept draws per chain, the "
            f"run kept {draws_per_chain} (raise run.num_steps or lower run.thinning)."
        )
    elif obs["n_loss"][0].size * posterior.n > _LOO_MAX:
        do_loo = False
        notes.append(
            f"LOO skipped: draws × n exceeds {_LOO_MAX:.0e} log-likelihoods (WAIC, "
            "from streamed statistics, estimates the same loss)."
        )
    per_beta = []
    for b in betas:
        k = int(np.searchsorted(ladder, b))
        w_k = jax.tree.map(lambda x, k=k: x[k], res.positions)
        pw = res.pointwise._replace(
            **{f: np.asarray(getattr(res.pointwise, f)[k]) for f in _PER_DATUM}
        )
        fresh = None
        if fresh_data is not None:
            fresh = (_log_mean_lik(posterior, w_k, fresh_data[0]), fresh_data[1])
        ti = None
        if has_prior and ladder[0] == 0:
            ti = thermodynamic_integration(ladder[: k + 1], obs["n_loss"][: k + 1])
        loo = None
        if do_loo:
            ll = _loglik_draws(posterior, w_k, posterior.data)
            try:
                loo = errors.psis_loo(ll, beta=b)
            except ValueError as err:  # e.g. chains that never moved: no Pareto tail
                notes.append(f"LOO skipped at β={b:.3g}: PSIS failed ({err}).")
        sl = {name: v[k] for name, v in obs.items()}
        rung = RungData(float(b), posterior.n, sl, pw, ti, loo, log_q, fresh, has_prior)
        per_beta.append(dictionary_rows(rung))
    return ThermodynamicDictionary(
        betas,
        per_beta,
        obs,
        ladder,
        res.pointwise,
        posterior.n,
        res.diverged,
        tuple(notes),
    )


def _check_run(run) -> DictionaryRun:
    """Every field of ``run`` an int in range (``run`` itself a DictionaryRun)."""
    if not isinstance(run, DictionaryRun):
        raise TypeError(
            f"run must be a DictionaryRun, got {type(run).__name__} {run!r}. Pass e.g. "
            "DictionaryRun(num_chains=4, num_steps=2000), or DictionaryRun(**settings)."
        )
    minimum = {"num_warmup": 0, "ti_rungs": 0}
    for field in DictionaryRun._fields:
        _validate.check_int(f"run.{field}", getattr(run, field), minimum.get(field, 1))
    if run.num_steps % run.thinning:
        raise ValueError(
            f"run.num_steps ({run.num_steps}) must be a multiple of run.thinning "
            f"({run.thinning}); use num_steps = "
            f"{run.thinning * -(-run.num_steps // run.thinning)}."
        )
    return run


def _check_log_q(name: str, log_q, n: int, what: str) -> np.ndarray:
    """``log_q`` as a finite float64 array of shape ``(n,)``."""
    arr = _validate.as_numbers(name, log_q)
    if arr is None:
        raise TypeError(f"{name} must be concrete numbers, got {log_q!r}.")
    if arr.shape != (n,):
        raise ValueError(
            f"{name} must hold log q(X_i) at each of the {n} data of {what}: shape "
            f"({n},), got shape {arr.shape}."
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{name} has {bad.size} NaN/inf value(s) (first at index {bad[0]}); log q "
            "of data drawn from q is finite. Check the true density."
        )
    return arr.astype(np.float64)


def _check_fresh_data(fresh_data, posterior) -> tuple:
    """``(data, log_q_fresh)``: data shaped like the posterior's (per datum), with
    one finite ``log q`` per fresh datum."""
    if not isinstance(fresh_data, (tuple, list)) or len(fresh_data) != 2:
        raise TypeError(
            "fresh_data must be a pair (data, log_q_fresh): fresh data from q, shaped "
            "like posterior.data, and log q at each fresh datum; got "
            f"{type(fresh_data).__name__}."
        )
    data, lq = fresh_data
    try:
        m = _validate.check_data(data)
    except ValueError as err:
        raise ValueError(f"fresh_data[0]: {err}") from err
    per_datum = jax.tree.map(lambda x: np.shape(x)[1:], data)
    expected = jax.tree.map(lambda x: np.shape(x)[1:], posterior.data)
    if jax.tree.structure(data) != jax.tree.structure(
        posterior.data
    ) or jax.tree.leaves(
        per_datum, is_leaf=lambda x: isinstance(x, tuple)
    ) != jax.tree.leaves(expected, is_leaf=lambda x: isinstance(x, tuple)):
        raise ValueError(
            "fresh_data[0] must have the structure and per-datum shapes of "
            f"posterior.data: got {per_datum}, expected {expected} (leading axes "
            "dropped). Draw the fresh data the way the training data were drawn."
        )
    return data, _check_log_q("fresh_data[1]", lq, m, "fresh_data[0]")
