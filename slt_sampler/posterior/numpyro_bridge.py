"""Build a :class:`TemperedPosterior` from a NumPyro model and its data.

The model is called as ``model(*data, **model_kwargs)``; every positional argument is a
data array with leading axis ``n`` (minibatches are slices of them). Then:

* observed sample sites (``obs=...``, not ``numpyro.factor``) give the per-datum
  log-likelihood: their log-probabilities, summed over any trailing event/plate axes,
  must lead with the data axis (use ``numpyro.plate("data", len(x))``);
* latent sites, with the log-|Jacobian| of the transform to unconstrained space, plus
  ``numpyro.factor`` sites, give the log prior.

Samplers move in NumPyro's *unconstrained* space; :func:`constrain` maps positions back.
These NumPyro utilities (``initialize_model``, ``potential_energy``, ``constrain_fn``,
``log_likelihood``) are marked EXPERIMENTAL upstream: the tests pin their behaviour.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.distributions import Unit
from numpyro.infer.util import (
    constrain_fn,
    initialize_model,
    log_likelihood,
    potential_energy,
    unconstrain_fn,
)

from .. import _validate
from .base import TemperedPosterior, tempered_posterior


def _is_data_site(site) -> bool:
    return (
        site["type"] == "sample"
        and site.get("is_observed", False)
        and not isinstance(site["fn"], Unit)
    )


def _model_sites(model, args, kwargs) -> tuple[list[str], list[str]]:
    """Names of the observed (data) sites and of the latent sites of ``model``.

    Raises ``ValueError`` for a discrete latent site: gradient-based samplers need
    continuous parameters."""
    tr = handlers.trace(handlers.seed(model, 0)).get_trace(*args, **kwargs)
    observed, latent = [], []
    for name, site in tr.items():
        if _is_data_site(site):
            observed.append(name)
        elif site["type"] == "sample" and not site.get("is_observed", False):
            if getattr(site["fn"].support, "is_discrete", False):
                raise ValueError(
                    f"latent site {name!r} is discrete ({type(site['fn']).__name__}); "
                    "the samplers here move continuous parameters by gradients. "
                    "Marginalise it out in the model (sum its values with "
                    "logsumexp into a numpyro.factor), or observe it."
                )
            latent.append(name)
    return observed, latent


def from_numpyro(
    rng_key,
    model,
    *data,
    model_kwargs: dict | None = None,
    beta: float | None = None,
    gamma: float = 0.0,
    center: dict | None = None,
) -> tuple[TemperedPosterior, dict]:
    """A tempered posterior of ``model`` given ``data``, in unconstrained coordinates.

    Parameters
    ----------
    rng_key
        Key for NumPyro's initialisation (uniform in (-2, 2) unconstrained).
    model
        NumPyro model called as ``model(*data, **model_kwargs)``.
    *data
        Data arrays, each with leading axis n.
    model_kwargs
        Non-data keyword arguments (static).
    beta, gamma
        Inverse temperature (default 1/log n) and localisation strength.
    center
        Localisation centre in the model's *constrained* space (dict of latent sites);
        converted to unconstrained coordinates.

    Returns
    -------
    posterior, init_position
        ``init_position`` is NumPyro's initial point (unconstrained), or the converted
        centre when one was given.
    """
    kwargs = dict(model_kwargs or {})
    if not callable(model):
        raise TypeError(
            f"model must be a NumPyro model function, got {type(model).__name__}."
        )
    if not data:
        raise ValueError(
            "from_numpyro needs the data as positional arguments: from_numpyro(key, "
            "model, x, y) for a model called as model(x, y)."
        )
    _validate.check_data(tuple(data))
    sites, latent = _model_sites(model, data, kwargs)
    if not sites:
        raise ValueError(
            "model has no observed sample site, so there is no likelihood to temper. "
            "Condition the model on data: numpyro.sample('y', dist, obs=y)."
        )
    info = initialize_model(rng_key, model, model_args=data, model_kwargs=kwargs)
    init = info.param_info.z
    prior_model = handlers.block(model, hide_fn=_is_data_site)

    def logprior_fn(u):
        return -potential_energy(prior_model, data, kwargs, u)

    def loglik_fn(u, batch):
        ll = _site_logliks(model, tuple(batch), kwargs, u)
        b = jax.tree.leaves(batch)[0].shape[0]
        return sum(jnp.reshape(ll[s], (b, -1)).sum(axis=1) for s in sites)

    _check_per_datum(model, data, kwargs, init, sites)
    u_center = None
    if center is not None:
        _check_center_sites(center, latent)
        _validate.check_finite_tree("center", center, "Pass finite site values.")
        try:
            u_center = unconstrain_fn(model, data, kwargs, center)
            outside = [
                k for k, v in u_center.items() if not np.all(np.isfinite(np.asarray(v)))
            ]
        except ValueError as err:
            outside = f"({err})"
        if outside:
            raise ValueError(
                f"center values lie outside the support of their sites {outside}, e.g. "
                "a negative scale: pass constrained values the model's distributions "
                "allow."
            )
        init = u_center
    post = tempered_posterior(
        loglik_fn,
        tuple(data),
        logprior_fn=logprior_fn,
        beta=beta,
        gamma=gamma,
        center=u_center,
    )
    return post, init


def _check_center_sites(center, latent: list[str]) -> None:
    if not isinstance(center, dict):
        raise TypeError(
            f"center must be a dict of the model's latent sites {latent} (constrained "
            f"values), got {type(center).__name__}."
        )
    missing = [s for s in latent if s not in center]
    extra = [s for s in center if s not in latent]
    if missing or extra:
        raise ValueError(
            f"center must give a value for every latent site of the model {latent}: "
            f"missing {missing}, unknown {extra}. Pass e.g. the constrained values "
            "of a fitted point, keyed by site name."
        )


def _site_logliks(model, batch: tuple, kwargs: dict, u: dict) -> dict:
    """Log-probabilities of every observed site at unconstrained ``u`` on ``batch``."""
    params = constrain_fn(model, batch, kwargs, u)
    return log_likelihood(model, params, *batch, batch_ndims=0, **kwargs)


def _check_per_datum(model, data, kwargs, init, sites) -> None:
    n = np.shape(data[0])[0]
    ll = _site_logliks(model, tuple(data), kwargs, init)
    for s in sites:
        shape = np.shape(ll[s])
        if len(shape) == 0 or shape[0] != n:
            raise ValueError(
                f"observed site {s!r} has log-probability shape {shape}, but a "
                f"per-datum log-likelihood needs a leading axis of size n = {n}. Wrap "
                "the observation in numpyro.plate('data', n) and pass data with leading "
                "axis n."
            )


def constrain(
    model, position: dict, *data, model_kwargs: dict | None = None, batch_ndims: int = 0
) -> dict:
    """Map unconstrained positions (with ``batch_ndims`` leading axes, e.g. 2 for
    ``(chain, draw)``) to the model's constrained latent values."""
    return constrain_fn(
        model, data, dict(model_kwargs or {}), position, batch_ndims=batch_ndims
    )
