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
_BLOCK = 5_000_000  # log-likelihoods held at once for the fresh-data B_g


class DictionaryRun(NamedTuple):
    """Run settings of :func:`thermodynamic_dictionary`.

    Attributes
    ----------
    num_chains : chains per β rung.
    num_steps : kept steps per chain (after warm-up).
    num_warmup : steps discarded first (same ladder, same kernels).
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

    Returns
    -------
    ThermodynamicDictionary
        ``.table()``, ``.to_datatree()``, and a one-screen ``repr``.
    """
    check_posterior(posterior)
    run = DictionaryRun() if run is None else run
    if _validate.as_numbers("betas", betas) is None:
        raise TypeError(f"betas must be concrete numbers > 0, got {betas!r}.")
    betas = np.sort(np.atleast_1d(np.asarray(betas, np.float64)))
    _validate.check_positive("betas", betas, "Inverse temperatures are > 0.")
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
    common = {"betas": rungs, "num_chains": run.num_chains, "thinning": run.thinning}
    warm = sample_ladder(
        k_warm, samplers, posterior, init_position, **common, num_steps=run.num_warmup
    )
    res = sample_ladder(
        k_run,
        samplers,
        posterior,
        warm.final_state.position,
        **common,
        num_steps=run.num_steps,
        chains_axis=True,
        keep_positions=True,
        observe=observe,
        pointwise=True,
    )
    obs = {k: np.asarray(v, np.float64) for k, v in res.observations.items()}
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
        if obs["n_loss"][k].size * posterior.n <= _LOO_MAX:
            ll = _loglik_draws(posterior, w_k, posterior.data)
            loo = errors.psis_loo(ll, beta=b)
        sl = {name: v[k] for name, v in obs.items()}
        rung = RungData(float(b), posterior.n, sl, pw, ti, loo, log_q, fresh, has_prior)
        per_beta.append(dictionary_rows(rung))
    return ThermodynamicDictionary(
        betas, per_beta, obs, ladder, res.pointwise, posterior.n, res.diverged
    )
