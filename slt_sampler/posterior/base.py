"""The tempered, localised posterior that samplers and estimators both read.

.. math::

    p_{\\beta,\\gamma}(w) \\propto \\varphi(w)\\,
        \\exp\\!\\Big(-n\\beta L_n(w) - \\tfrac{\\gamma}{2}\\lVert w - w^*\\rVert^2\\Big),
    \\qquad L_n(w) = -\\frac{1}{n}\\sum_{i=1}^n \\log p(x_i \\mid w).

``L_n`` is the mean *negative log-likelihood* including its normalising constants
(Watanabe 2009, 2013): with it, β = 1 is the Bayesian posterior and WBIC / free energies
keep their meaning. A minibatch ``B`` gives the unbiased estimate
``nβ · mean_{i∈B} ℓ_i(w)`` of ``nβ L_n(w)``.

β, γ, the centre ``w*`` and the data are pytree *leaves*: a grid of β is one
``jax.vmap`` over ``posterior.replace(beta=...)``, not a recompile. Only the callables
and ``n`` are static.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from .. import _validate
from ..types import Array, PyTree
from ._checks import check_point

LoglikFn = Callable[[PyTree, PyTree], Array]
"""``loglik_fn(params, batch) -> (b,)``: per-datum log-likelihood of a batch."""


@dataclasses.dataclass(frozen=True)
class TemperedPosterior:
    """A tempered (and optionally localised) posterior over a parameter pytree.

    Attributes
    ----------
    loglik_fn : callable
        ``loglik_fn(params, batch) -> Array[b]``, per-datum log-likelihood
        ``log p(x_i | w)`` of every datum in ``batch`` (a slice of ``data``).
    logprior_fn : callable or None
        ``logprior_fn(params) -> scalar`` log prior density φ (with any Jacobian).
        ``None`` is a flat prior, as in Lau et al.'s LLC where the localiser replaces it.
    data : pytree of arrays
        The data, every leaf with leading axis ``n``.
    n : int
        Number of data (static). Defaults for β use this ``n``, never a batch size.
    beta : Array
        Inverse temperature β > 0 (traced).
    gamma : Array
        Localisation strength γ >= 0 (traced). 0 disables localisation.
    center : pytree or None
        Localisation centre ``w*``, shaped like the parameters (traced).
    full_loss_fn : callable or None
        Optional exact shortcut ``full_loss_fn(params, data) -> L_n(params)``, e.g. from
        sufficient statistics of a linear-Gaussian model. Must equal the mean of
        ``-loglik_fn`` over ``data``; used for the baseline and full-data records.
    """

    loglik_fn: LoglikFn
    logprior_fn: Callable[[PyTree], Array] | None
    data: PyTree
    n: int
    beta: Array
    gamma: Array
    center: PyTree | None
    full_loss_fn: Callable[[PyTree, PyTree], Array] | None = None

    def replace(self, **changes) -> TemperedPosterior:
        """Return a copy with fields replaced (``beta``, ``gamma``, ``center``, ...).

        β and γ keep the posterior's dtype (a Python float would otherwise make a
        weakly-typed array and force a re-trace of every compiled sampler). Concrete
        values are checked as in :func:`tempered_posterior`; traced ones (inside
        ``jax.vmap``) are not."""
        if "beta" in changes:
            _check_beta(changes["beta"])
        if "gamma" in changes:
            _check_gamma(changes["gamma"])
        for name in ("beta", "gamma"):
            if name in changes:
                changes[name] = jnp.asarray(changes[name], dtype=self.beta.dtype)
        new = dataclasses.replace(self, **changes)
        if changes.get("center") is not None:
            _check_center(new, self.center)
        return new

    @property
    def nbeta(self) -> Array:
        """``n·β``, the inverse temperature multiplying ``L_n``."""
        return self.n * self.beta


jax.tree_util.register_dataclass(
    TemperedPosterior,
    data_fields=["data", "beta", "gamma", "center"],
    meta_fields=["loglik_fn", "logprior_fn", "n", "full_loss_fn"],
)


def default_beta(n: int) -> float:
    """The LLC / WBIC inverse temperature β* = 1 / log n (n = number of data)."""
    n = _validate.check_int("n", n, minimum=2)
    return 1.0 / math.log(n)


def tempered_posterior(
    loglik_fn: LoglikFn,
    data: PyTree,
    *,
    logprior_fn: Callable[[PyTree], Array] | None = None,
    beta: float | None = None,
    gamma: float = 0.0,
    center: PyTree | None = None,
    full_loss_fn: Callable[[PyTree, PyTree], Array] | None = None,
) -> TemperedPosterior:
    """Build a :class:`TemperedPosterior` from a per-datum log-likelihood.

    Parameters
    ----------
    loglik_fn
        ``loglik_fn(params, batch) -> Array[b]`` per-datum log-likelihood.
    data
        Pytree of arrays with a shared leading axis ``n`` (finite values).
    logprior_fn
        Log prior; ``None`` for a flat prior.
    beta
        Inverse temperature; defaults to β* = 1/log n.
    gamma
        Localisation strength γ >= 0; needs ``center`` when > 0.
    center
        Localisation centre w*.
    full_loss_fn
        Optional exact full-data ``L_n`` shortcut (see the class docstring).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> x = jnp.linspace(-1, 1, 8)
    >>> post = tempered_posterior(lambda w, b: -0.5 * (b - w) ** 2, x)
    >>> post.n, round(float(post.beta), 4)
    (8, 0.4809)
    """
    if not callable(loglik_fn):
        raise TypeError(
            f"loglik_fn must be a function (params, batch) -> per-datum "
            f"log-likelihoods, got {type(loglik_fn).__name__}."
        )
    if logprior_fn is not None and not callable(logprior_fn):
        raise TypeError(
            f"logprior_fn must be a function params -> log density, or None for a "
            f"flat prior; got {type(logprior_fn).__name__}."
        )
    n = _validate.check_data(data)
    if beta is None:
        beta = default_beta(n)
    _check_beta(beta)
    _check_gamma(gamma)
    if center is None and _concrete_positive(gamma):
        raise ValueError(
            f"gamma = {gamma} > 0 needs a localisation centre: pass center=w_star "
            "(a pytree shaped like the parameters), or gamma=0."
        )
    data = jax.tree.map(jnp.asarray, data)
    center = None if center is None else jax.tree.map(jnp.asarray, center)
    post = TemperedPosterior(
        loglik_fn=loglik_fn,
        logprior_fn=logprior_fn,
        data=data,
        n=n,
        beta=jnp.asarray(beta, dtype=jnp.result_type(float)),
        gamma=jnp.asarray(gamma, dtype=jnp.result_type(float)),
        center=center,
        full_loss_fn=full_loss_fn,
    )
    if center is not None:
        _check_center(post, None)
    return post


def _check_beta(beta) -> None:
    fix = "β is an inverse temperature; the LLC default is 1/log n."
    _validate.check_scalar(
        "beta", beta, "For a grid of β, jax.vmap over posterior.replace(beta=b)."
    )
    _validate.check_positive("beta", beta, fix)


def _check_gamma(gamma) -> None:
    _validate.check_scalar("gamma", gamma)
    _validate.check_non_negative(
        "gamma", gamma, "γ is the localisation strength; use 0 to switch it off."
    )


def _check_center(posterior: TemperedPosterior, old_center) -> None:
    """The centre: finite, shaped like ``old_center`` if any, and a point where
    ``loglik_fn`` gives finite per-datum values."""
    center = posterior.center
    if old_center is not None:
        _validate.check_same_tree("center", center, "the previous center", old_center)
    _validate.check_finite_tree(
        "center", center, "Pass a finite w* (a local minimum of L_n)."
    )
    check_point(posterior, center, "center")


def check_posterior(posterior) -> None:
    """Raise ``TypeError`` unless ``posterior`` is a :class:`TemperedPosterior`."""
    if not isinstance(posterior, TemperedPosterior):
        raise TypeError(
            f"posterior must be a TemperedPosterior (from tempered_posterior or "
            f"from_numpyro), got {type(posterior).__name__}."
        )


def _check_eager(posterior, params) -> None:
    """Argument checks of the public density functions when called eagerly (inside
    ``jit`` the parameters are tracers and nothing is checked)."""
    check_posterior(posterior)
    leaves = jax.tree.leaves(params)
    if not leaves or any(isinstance(x, jax.core.Tracer) for x in leaves):
        return
    if posterior.center is not None:
        _validate.check_same_tree(
            "params", params, "the posterior's center", posterior.center
        )


def _concrete_positive(x) -> bool:
    if isinstance(x, jax.core.Tracer):
        return False
    return float(x) > 0


def batch_loss(posterior: TemperedPosterior, params: PyTree, batch: PyTree) -> Array:
    """Mean negative log-likelihood of ``params`` on ``batch``."""
    return -jnp.mean(posterior.loglik_fn(params, batch))


def full_loss(
    posterior: TemperedPosterior, params: PyTree, *, chunk_size: int = 8192
) -> Array:
    """``L_n(params)`` on the full data, in chunks of ``chunk_size`` when n is large.

    Uses ``posterior.full_loss_fn`` when given. Chunks are summed in a ``lax.map`` so
    memory stays at one chunk; a ragged tail is handled exactly.
    """
    _check_eager(posterior, params)
    if posterior.full_loss_fn is not None:
        return posterior.full_loss_fn(params, posterior.data)
    n = posterior.n
    if n <= chunk_size:
        return batch_loss(posterior, params, posterior.data)
    num_full = n // chunk_size
    head = jax.tree.map(
        lambda x: x[: num_full * chunk_size].reshape(
            (num_full, chunk_size) + x.shape[1:]
        ),
        posterior.data,
    )
    sums = jax.lax.map(lambda b: jnp.sum(posterior.loglik_fn(params, b)), head)
    total = jnp.sum(sums)
    if n > num_full * chunk_size:
        tail = jax.tree.map(lambda x: x[num_full * chunk_size :], posterior.data)
        total = total + jnp.sum(posterior.loglik_fn(params, tail))
    return -total / n


def localization_term(posterior: TemperedPosterior, params: PyTree) -> Array:
    """``γ/2 ‖w − w*‖²`` (0 when there is no centre)."""
    if posterior.center is None:
        return jnp.zeros((), dtype=posterior.gamma.dtype)
    sq = jax.tree.map(lambda p, c: jnp.sum((p - c) ** 2), params, posterior.center)
    return 0.5 * posterior.gamma * sum(jax.tree.leaves(sq))


def log_prior(posterior: TemperedPosterior, params: PyTree) -> Array:
    """``log φ(w)`` (0 for a flat prior)."""
    if posterior.logprior_fn is None:
        return jnp.zeros((), dtype=posterior.gamma.dtype)
    return posterior.logprior_fn(params)


def logdensity(
    posterior: TemperedPosterior, params: PyTree, batch: PyTree | None = None
) -> Array:
    """Unnormalised log density; with a ``batch``, its unbiased minibatch estimate.

    .. math:: \\log\\varphi(w) - n\\beta\\,\\hat L(w) - \\tfrac{\\gamma}{2}\\lVert w-w^*\\rVert^2
    """
    _check_eager(posterior, params)
    return logdensity_and_loss(posterior, params, batch)[0]


def logdensity_and_loss(
    posterior: TemperedPosterior, params: PyTree, batch: PyTree | None = None
) -> tuple[Array, Array]:
    """Like :func:`logdensity` but also returns the (batch or full) loss, for ``has_aux``."""
    loss = (
        full_loss(posterior, params)
        if batch is None
        else batch_loss(posterior, params, batch)
    )
    lp = (
        log_prior(posterior, params)
        - posterior.nbeta * loss
        - localization_term(posterior, params)
    )
    return lp, loss


def sample_batch(rng_key, posterior: TemperedPosterior, batch_size: int) -> PyTree:
    """Draw a minibatch of ``batch_size`` data uniformly *with replacement*.

    With replacement keeps every step's gradient an unbiased estimate of the full
    gradient at O(batch) cost, whatever n.
    """
    idx = jax.random.randint(rng_key, (batch_size,), 0, posterior.n)
    return jax.tree.map(lambda x: x[idx], posterior.data)
