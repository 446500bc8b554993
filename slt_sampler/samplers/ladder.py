"""Temperature ladders: many inverse temperatures β in one compiled run.

The ladder is a ``vmap`` axis beside the chains: ``num_betas × num_chains`` chains
run in the one compiled ``jit(scan(vmap(step)))`` chunk of
:func:`~slt_sampler.samplers.run.sample`, each chain reading its own β (and, with
per-rung samplers, its own step size) from a leading axis of the traced posterior and
sampler. The flat chain axis is sharded over devices like any other; results come
back with leading ``(beta, chain)`` axes. New β values (or step sizes) of the same
shapes reuse the compiled chunk.

Why a separate function rather than a ``betas=`` argument of ``sample``: the output
axes differ (``(beta, chain, ...)`` against ``(chain, ...)``) and the sampler argument
may be one sampler per rung, so one entry point per shape of result keeps each
signature honest (no flag that changes what comes back).

The per-rung step size matters: a Langevin or HMC step tuned for β sees a posterior
of width ∝ (nβ)^(-1/2), so a step fit for the coldest rung wastes the hot ones and a
step fit for the hottest diverges at the cold ones. Pass one sampler per rung, e.g.
``[MALA(c / (n * b)) for b in betas]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior
from ..types import PRNGKey, PyTree
from . import _spec, run
from ._accumulate import PointwiseStats

BETAS = (
    "betas must be a non-empty 1-D sequence of finite inverse temperatures > 0, got "
    "{value}. {fix}"
)
BETAS_FIX = (
    "β = 0 is the prior (sample it directly); for a ladder reaching towards it use a "
    "small positive β such as 1e-3, e.g. betas = np.geomspace(1e-3, 1, 16)."
)


def sample_ladder(
    rng_key: PRNGKey,
    sampler,
    posterior: TemperedPosterior,
    init_position: PyTree,
    *,
    betas,
    num_chains: int,
    num_steps: int,
    thinning: int = 1,
    keep_positions: bool = False,
    record_full_loss: bool = False,
    chunk_steps: int | None = None,
    progress: bool | None = None,
    on_chunk: Callable[[int, dict], None] | None = None,
    chains_axis: bool = False,
    observe: Callable[[PyTree], PyTree] | None = None,
    pointwise: bool = False,
    pointwise_chunk: int | None = None,
) -> run.SampleResult:
    """Run ``num_chains`` chains at each of the inverse temperatures ``betas``.

    Every rung samples ``posterior.replace(beta=betas[b])`` (``posterior.beta`` itself
    is not used); all rungs run in one compiled chunk, so the cost is that of
    ``len(betas) * num_chains`` chains at one β.

    Parameters
    ----------
    rng_key
        PRNG key; the same key gives the same numbers.
    sampler
        One sampler shared by every rung, or a sequence of ``len(betas)`` samplers of
        one type differing only in their numbers (per-rung step sizes).
    posterior
        The target at every rung except for β.
    init_position
        Start of every chain; with ``chains_axis=True`` one start per chain with
        leading ``(len(betas), num_chains)`` axes (e.g. a previous ladder's
        ``final_state.position``).
    betas
        1-D array of inverse temperatures, each > 0 (traced: new values of the same
        length do not recompile).
    num_chains
        Chains per rung.
    num_steps, thinning, keep_positions, record_full_loss, chunk_steps, progress, \
observe, pointwise, pointwise_chunk
        As in :func:`~slt_sampler.samplers.run.sample`; ``on_chunk`` receives arrays
        with leading ``(beta, chain)`` axes.

    Returns
    -------
    SampleResult
        Every array, the final state and the pointwise statistics lead with
        ``(beta, chain)``; ``steps_per_second`` counts chain-steps over all rungs.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from slt_sampler import MALA, tempered_posterior
    >>> post = tempered_posterior(lambda w, b: -0.5 * (b - w) ** 2, jnp.zeros(20))
    >>> res = sample_ladder(jax.random.key(0), MALA(0.05), post, jnp.zeros(()),
    ...                     betas=[0.5, 1.0, 2.0], num_chains=2, num_steps=10)
    >>> res.losses.shape
    (3, 2, 10)
    """
    _validate.check_key("rng_key", rng_key)
    run.check_posterior(posterior)
    num_chains = _validate.check_int("num_chains", num_chains)
    betas = check_betas(betas, posterior)
    num_betas = betas.shape[0]
    sampler, mode = stack_samplers(sampler, num_betas)
    run.check_sampler_and_posterior(sampler, posterior)
    lead = (num_betas, num_chains)
    if chains_axis:
        _spec.check_leading("init_position", init_position, lead, "betas, chains")
    check_point(posterior, init_position, "init_position", leading_axes=2 * chains_axis)
    if chains_axis:
        flat = jax.tree.map(
            lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), init_position
        )
    else:
        flat = run.broadcast_chains(init_position, num_betas * num_chains)
    spec = _spec.check_spec(
        posterior,
        init_position,
        2 * int(chains_axis),
        num_steps=num_steps,
        thinning=thinning,
        keep_positions=keep_positions,
        record_full_loss=record_full_loss,
        chunk_steps=chunk_steps,
        progress=progress,
        on_chunk=on_chunk,
        observe=observe,
        pointwise=pointwise,
        pointwise_chunk=pointwise_chunk,
    )

    def unflatten(x):
        return np.reshape(x, lead + np.shape(x)[1:])

    spec = spec._replace(ladder=mode, reshape=unflatten)
    per_chain = jnp.repeat(betas, num_chains)
    if mode == "stacked":
        sampler = jax.tree.map(lambda x: jnp.repeat(x, num_chains, axis=0), sampler)
    ladder_post = dataclasses.replace(posterior, beta=per_chain)
    res = run.drive(rng_key, sampler, ladder_post, flat, spec)
    return _unflatten_result(res, lead)


def check_betas(betas, posterior: TemperedPosterior) -> jax.Array:
    """``betas`` as a 1-D array in the posterior's float dtype, or ``ValueError``."""
    arr = _validate.as_numbers("betas", betas)
    if arr is None:
        raise TypeError(
            "betas must be concrete numbers (sample_ladder is the driver; do not call "
            "it under jit or vmap)."
        )
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            BETAS.format(
                value=f"shape {arr.shape}",
                fix="Pass e.g. betas = np.geomspace(0.1, 10, 16) / np.log(n).",
            )
        )
    bad = ~np.isfinite(arr) | (arr <= 0)
    if np.any(bad):
        raise ValueError(
            BETAS.format(
                value=f"{arr.tolist()} (bad at index {np.flatnonzero(bad).tolist()})",
                fix=BETAS_FIX,
            )
        )
    return jnp.asarray(arr, dtype=posterior.beta.dtype)


def stack_samplers(sampler, num_betas: int):
    """A sequence of per-rung samplers stacked into one with leading ``(num_betas,)``
    leaves (``"stacked"``); a single sampler is shared (``"shared"``)."""
    if isinstance(sampler, (str, bytes)):
        raise TypeError(
            f"sampler must be a sampler object (e.g. MALA(1e-3), SGLD(1e-5, 100)) or "
            f"a list of one per rung, got the string {sampler!r}."
        )
    if not isinstance(sampler, Sequence):
        return sampler, "shared"
    samplers = list(sampler)
    if len(samplers) != num_betas:
        raise ValueError(
            f"sampler: got a sequence of {len(samplers)} samplers for {num_betas} "
            "betas; pass one sampler per rung (same order as betas), or one sampler "
            "shared by every rung."
        )
    structures = {jax.tree.structure(s) for s in samplers}
    if len(structures) != 1:
        raise ValueError(
            "sampler: the per-rung samplers must be of one type with the same "
            "structural options (batch size, integration steps, ...), differing only "
            f"in their numbers; got {len(structures)} different structures: "
            f"{sorted(map(str, structures))[:2]}."
        )
    for s in samplers:
        run.check_sampler(s)

    def stack(*leaves):
        arr = jnp.stack([jnp.asarray(x) for x in leaves])
        return jnp.asarray(arr, dtype=arr.dtype)  # not weakly typed

    return jax.tree.map(stack, *samplers), "stacked"


def _unflatten_result(res: run.SampleResult, lead: tuple) -> run.SampleResult:
    def host(x):
        return np.reshape(x, lead + np.shape(x)[1:])

    def device(x):
        return jnp.reshape(x, lead + jnp.shape(x)[1:])

    pw = res.pointwise
    if pw is not None:
        pw = PointwiseStats(
            host(pw.log_mean_lik),
            host(pw.mean_loglik),
            host(pw.var_loglik),
            pw.num_draws,
        )
    return res._replace(
        losses=host(res.losses),
        stats={k: host(v) for k, v in res.stats.items()},
        positions=None if res.positions is None else jax.tree.map(host, res.positions),
        final_state=jax.tree.map(device, res.final_state),
        diverged=host(res.diverged),
        observations=None
        if res.observations is None
        else jax.tree.map(host, res.observations),
        pointwise=pw,
    )
