"""Sample-size grids from one dataset: posteriors on nested subsamples.

``nested_subsamples(posterior, [100, 1000, 10000])`` gives posteriors on the first
100, 1000 and 10000 data of one (optionally shuffled) dataset, so every smaller
dataset is contained in every larger one. Along such a grid the data noise is shared,
which is what a study of ``E_β[n L_n]`` or the free energy against ``n`` wants: the
differences between sizes then measure the dependence on ``n`` rather than the luck
of independent draws (for independent datasets build fresh zoo models instead).

β keeps its meaning: every subsample inherits the parent posterior's β unchanged. It
is *not* re-defaulted to 1/log n, because a modelling choice hidden in a default is
easy to miss (a parent at β = 1/log N would silently become a grid at varying β). For
WBIC-style β = 1/log n at every size say so explicitly::

    subs = [p.replace(beta=default_beta(p.n)) for p in nested_subsamples(post, ns)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from .. import _validate
from ..types import PRNGKey
from .base import TemperedPosterior, check_posterior

NS_RANGE = (
    "ns must hold sample sizes 2 <= n <= {total} (the data the posterior holds); "
    "got {bad} in ns = {ns}. {fix}"
)


def nested_subsamples(
    posterior: TemperedPosterior,
    ns: Sequence[int],
    *,
    rng_key: PRNGKey | None = None,
) -> list[TemperedPosterior]:
    """Posteriors on the first ``n`` data, for every ``n`` in ``ns``.

    Parameters
    ----------
    posterior
        The posterior on the full data (``posterior.n`` data); its β, γ, centre,
        prior and likelihood carry over unchanged.
    ns
        Sample sizes, each an int with ``2 <= n <= posterior.n``, in any order
        (the output follows it).
    rng_key
        If given, the data are first shuffled by one permutation drawn from this key
        (then every subsample is a uniformly random subset, still nested); if
        ``None``, the first ``n`` data in their stored order.

    Returns
    -------
    list of TemperedPosterior
        One per entry of ``ns``, with ``n`` and ``data`` replaced. ``n`` is static, so
        each size compiles its own sampler.

    Raises
    ------
    ValueError
        An ``n`` below 2 or above ``posterior.n``, or an empty ``ns``.
    TypeError
        A non-integer size.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slt_sampler import tempered_posterior
    >>> post = tempered_posterior(lambda w, b: -0.5 * (b - w) ** 2, jnp.arange(10.0))
    >>> [p.n for p in nested_subsamples(post, [4, 8])]
    [4, 8]
    >>> nested_subsamples(post, [4])[0].data.tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    check_posterior(posterior)
    ns = check_ns(ns, posterior.n)
    data = posterior.data
    if rng_key is not None:
        _validate.check_key("rng_key", rng_key)
        order = jax.random.permutation(rng_key, posterior.n)
        data = jax.tree.map(lambda x: x[order], data)
    return [_first(posterior, data, n) for n in ns]


def _first(posterior: TemperedPosterior, data, n: int) -> TemperedPosterior:
    """``posterior`` on the first ``n`` rows of ``data``."""
    return dataclasses.replace(posterior, data=jax.tree.map(lambda x: x[:n], data), n=n)


def check_ns(ns, total: int) -> list[int]:
    """``ns`` as a list of ints in ``[2, total]``, or an error naming the fix."""
    if isinstance(ns, (int, np.integer)) or not isinstance(ns, (Sequence, np.ndarray)):
        raise TypeError(
            f"ns must be a sequence of sample sizes (ints), e.g. [100, 1000]; got "
            f"{ns!r}."
        )
    values = list(np.asarray(ns).ravel()) if isinstance(ns, np.ndarray) else list(ns)
    if not values:
        raise ValueError("ns is empty; pass at least one sample size, e.g. [100].")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(
                f"ns must hold ints (sample sizes); got {v!r} of type "
                f"{type(v).__name__} in ns = {values}."
            )
    values = [int(v) for v in values]
    big = [v for v in values if v > total]
    if big:
        raise ValueError(
            NS_RANGE.format(
                total=total,
                bad=big,
                ns=values,
                fix=f"Drop sizes above {total}, or build the posterior on more data "
                "(e.g. a zoo model with a larger n).",
            )
        )
    small = [v for v in values if v < 2]
    if small:
        raise ValueError(
            NS_RANGE.format(
                total=total,
                bad=small,
                ns=values,
                fix="n >= 2 is needed for β = 1/log n and for any variance over data.",
            )
        )
    return values
