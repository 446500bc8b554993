"""Checks that a posterior's prior is proper, as every free energy needs.

A free energy ``F_n(β) = -log Z_n(β)`` with ``Z_n(β) = ∫ φ(w) exp(-nβ L_n(w)) dw`` is only
defined up to an additive constant unless the prior φ is a normalised density
(``∫ φ = 1``, so that ``F_n(0) = 0``; Watanabe 2009, §1; Watanabe 2013, §2). The LLC
does not need this (Lau et al. 2023 use a flat prior and a localiser), which is why
:class:`~slt_sampler.posterior.base.TemperedPosterior` allows ``logprior_fn=None``;
the free-energy estimators (tempered SMC, thermodynamic integration, variational
bounds) call :func:`check_proper_prior` first.

What can and cannot be checked
------------------------------
* A flat prior (``logprior_fn=None``) is rejected outright.
* *Normalisability* is probed, best effort: along several fixed directions ``u`` from
  the origin, a normalisable density must satisfy ``log φ(r u) + d log r → -∞`` as
  ``r → ∞`` (the radial integrand ``φ(r u) r^{d-1}`` must be integrable). A log prior
  that is constant or grows along a direction (an improper flat or "inverted
  Gaussian" prior) fails at radii ``r = 10 … 10¹²`` and is rejected. A density that is
  improper only in a thin set of directions, or only beyond ``r = 10¹²``, passes; a
  proper prior so wide that it has not started to decay by ``r = 10¹⁰`` is (wrongly)
  reported as not normalisable.
* *Normalisation* (``∫ φ = 1``, not merely finite) cannot be checked in general: it is
  the user's responsibility. Only in one dimension is it checked, by adaptive
  quadrature over the real line. A Gaussian ``N(μ, Σ)`` written with its
  ``-½ log|2πΣ|`` constant is normalised; a prior given "up to a constant" is not, and
  would shift every free energy by that constant.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..types import PyTree
from .base import check_posterior

RADII = tuple(10.0**k for k in range(1, 13))  # 10 … 10¹²
NUM_RANDOM_DIRECTIONS = 8
MAX_AXIS_DIRECTIONS = 32  # ± coordinate axes, for the first 16 coordinates
NORMALISATION_RTOL = 1e-2

FLAT_PRIOR = (
    "{name}.logprior_fn is None (a flat prior), but a free energy F_n(β) = -log Z_n(β) "
    "needs a proper, normalised prior φ: with a flat prior Z_n is not defined (or is "
    "defined only up to an arbitrary constant). Build the posterior with "
    "tempered_posterior(..., logprior_fn=log_phi), where log_phi(params) is a "
    "normalised log density, e.g. an isotropic Gaussian "
    "lambda w: -0.5 * jnp.sum(w**2) / s**2 - 0.5 * d * jnp.log(2 * jnp.pi * s**2)."
)
NOT_NORMALISABLE = (
    "{name}.logprior_fn is not normalisable: along the direction u = {direction} "
    "log φ(r u) + d log r (d = {dim}) does not fall as r grows (values {values} at "
    "r = {radii}), so ∫ φ = ∞. A free energy needs a proper, normalised prior: use a "
    "density that decays in every direction, e.g. a Gaussian "
    "-0.5 * jnp.sum(w**2) / s**2 - 0.5 * d * jnp.log(2 * jnp.pi * s**2), not a "
    "constant or a growing function of w."
)
NOT_NORMALISED = (
    "{name}.logprior_fn integrates to {integral:.6g}, not 1 (adaptive quadrature over "
    "the real line): free energies would be shifted by log({integral:.6g}) = "
    "{shift:.4g}. Normalise the prior, e.g. subtract {shift:.4g} from logprior_fn."
)
NO_TEMPLATE = (
    "check_proper_prior needs the parameters' structure to probe {name}.logprior_fn: "
    "pass params= (a pytree shaped like the parameters) or build the posterior with "
    "a center."
)


def check_proper_prior(
    posterior, params: PyTree | None = None, *, name: str = "posterior"
) -> None:
    """Raise ``ValueError`` unless ``posterior`` has a (plausibly) proper prior.

    Parameters
    ----------
    posterior : TemperedPosterior
        The posterior whose ``logprior_fn`` is checked.
    params : pytree, optional
        A parameter point giving the structure and shapes of ``w``; defaults to
        ``posterior.center``.
    name : str
        The argument name used in error messages.

    Raises
    ------
    ValueError
        For a flat prior (``logprior_fn=None``), for a log prior that does not decay
        along one of the probed directions (not normalisable), and, in one
        dimension, for a prior whose integral differs from 1 by more than 1 %.
    ValueError, TypeError
        For ``params`` that are not finite numbers, not shaped like
        ``posterior.center`` (when there is one), or not accepted by ``logprior_fn``.

    Notes
    -----
    Normalisability is probed along ``NUM_RANDOM_DIRECTIONS`` fixed random directions
    and up to ``MAX_AXIS_DIRECTIONS`` signed coordinate axes: ``log φ(r u) + d log r``
    must be non-finite (outside a bounded support) or strictly decreasing over
    ``r = 10¹⁰, 10¹¹, 10¹²``. This is a necessary condition only; normalisation
    (``∫ φ = 1``) is the caller's responsibility in more than one dimension.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from slt_sampler import tempered_posterior
    >>> x = jnp.linspace(-1.0, 1.0, 8)
    >>> flat = tempered_posterior(lambda w, b: -0.5 * (b - w) ** 2, x, center=0.0)
    >>> check_proper_prior(flat)
    Traceback (most recent call last):
    ...
    ValueError: posterior.logprior_fn is None (a flat prior), ...
    """
    check_posterior(posterior)
    if posterior.logprior_fn is None:
        raise ValueError(FLAT_PRIOR.format(name=name))
    template = posterior.center if params is None else params
    if template is None or not jax.tree.leaves(template):
        raise ValueError(NO_TEMPLATE.format(name=name))
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(template)):
        return
    if params is not None:
        _check_params(posterior, params)
    flat, unravel = ravel_pytree(template)
    dim = flat.size
    dtype = flat.dtype if jnp.issubdtype(flat.dtype, jnp.floating) else jnp.float32

    def logprior_flat(v):
        return posterior.logprior_fn(unravel(v.astype(dtype)))

    _check_tails(logprior_flat, dim, dtype, name)
    if dim == 1:
        _check_normalised_1d(logprior_flat, name)


def _check_params(posterior, params) -> None:
    """``params``: numeric, finite, shaped like the centre, accepted by the prior."""
    fix = "Pass a parameter point (a pytree shaped like the model parameters)."
    _validate.check_finite_tree("params", params, fix)
    if posterior.center is not None:
        _validate.check_same_tree(
            "params", params, "the posterior's center", posterior.center
        )
    try:
        lp = np.shape(posterior.logprior_fn(params))
    except Exception as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        first = str(err).splitlines()[0] if str(err) else ""
        raise kind(
            f"logprior_fn(params) raised {type(err).__name__}: {first}. {fix}"
        ) from err
    if lp != ():
        raise ValueError(
            f"logprior_fn(params) must return a scalar log density, got shape {lp}. "
            "Sum the per-parameter log densities."
        )


def _directions(dim: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    random = rng.normal(size=(NUM_RANDOM_DIRECTIONS, dim))
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    k = min(dim, MAX_AXIS_DIRECTIONS // 2)
    axes = np.concatenate([np.eye(dim)[:k], -np.eye(dim)[:k]])
    return np.concatenate([random, axes])


def _check_tails(logprior_flat, dim: int, dtype, name: str) -> None:
    dirs = _directions(dim)
    radii = np.asarray(RADII)
    points = (radii[None, :, None] * dirs[:, None, :]).reshape(-1, dim)
    with np.errstate(all="ignore"):
        lp = np.asarray(jax.vmap(logprior_flat)(jnp.asarray(points, dtype)))
        lp = lp.reshape(len(dirs), len(radii)).astype(np.float64)
        g = lp + dim * np.log(radii)[None, :]
    for i, row in enumerate(g):
        tail = row[-3:]
        if np.any(np.isnan(tail)) or np.any(tail == -np.inf):
            continue  # outside a bounded support (or undefined there): cannot tell
        if not np.all(np.diff(tail) < 0):
            raise ValueError(
                NOT_NORMALISABLE.format(
                    name=name,
                    direction=_short(dirs[i]),
                    dim=dim,
                    values=_short(row),
                    radii=_short(radii),
                )
            )


def _check_normalised_1d(logprior_flat, name: str) -> None:
    """``∫ φ = 1`` on the real line, by adaptive quadrature (``scipy.integrate.quad``).

    The mode is found on a log-spaced grid and refined by Newton steps; the integral
    is split at ``mode ± 10 s`` (``s`` the curvature scale, or the grid's bracket of
    the mode) so that a narrow prior away from 0 is not missed. The check is skipped
    whenever quadrature reports trouble."""
    from scipy import integrate

    lp1 = jax.jit(lambda v: logprior_flat(jnp.reshape(v, (1,))).astype(jnp.float32))
    d1 = jax.jit(jax.grad(lp1))
    d2 = jax.jit(jax.grad(jax.grad(lp1)))
    grid = np.concatenate([-np.logspace(6, -6, 241), [0.0], np.logspace(-6, 6, 241)])
    vals = np.asarray(jax.vmap(lp1)(jnp.asarray(grid, jnp.float32)), np.float64)
    finite = np.isfinite(vals)
    if not np.any(finite):
        return
    i = int(np.argmax(np.where(finite, vals, -np.inf)))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    mode = float(grid[i])
    for _ in range(50):  # Newton, kept inside the grid bracket
        g, h = float(d1(mode)), float(d2(mode))
        if not (math.isfinite(g) and math.isfinite(h)) or h >= 0:
            break
        mode = min(max(mode - g / h, lo), hi)
    h = float(d2(mode))
    scale = 1.0 / math.sqrt(-h) if math.isfinite(h) and h < 0 else (hi - lo)
    a, b = mode - 10.0 * scale, mode + 10.0 * scale

    def density(v):
        return math.exp(float(lp1(jnp.asarray(v, jnp.float32))))

    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            parts = [
                integrate.quad(density, -np.inf, a, limit=200),
                integrate.quad(density, a, b, points=[mode], limit=200),
                integrate.quad(density, b, np.inf, limit=200),
            ]
    except Exception:  # noqa: BLE001 — quadrature trouble means "cannot tell"
        return
    total = sum(p[0] for p in parts)
    err = sum(p[1] for p in parts)
    if not (math.isfinite(total) and total > 0) or err > 1e-3 * total:
        return
    if abs(total - 1.0) > NORMALISATION_RTOL:
        raise ValueError(
            NOT_NORMALISED.format(name=name, integral=total, shift=math.log(total))
        )


def _short(arr) -> str:
    arr = np.asarray(arr)
    text = np.array2string(arr[:6], precision=3, separator=", ")
    return text if arr.size <= 6 else text[:-1] + ", …]"
