"""Linear-Gaussian networks with a proper Gaussian prior: the global tempered posterior.

The zoo's :func:`~slt_sampler.zoo.models.linear_network` is built for the *local*
learning coefficient (flat prior, localiser at ``w*``). Free energies and the
learning coefficient read from temperatures need the *global* posterior instead
(Watanabe 2009, 2013):

.. math::

    p_\\beta(w) \\propto \\varphi(w)\\, e^{-n\\beta L_n(w)},\\qquad
    \\varphi = N(0, s^2 I),\\qquad
    F_n(\\beta) = -\\log \\int \\varphi\\, e^{-n\\beta L_n},

with the normalised prior (so ``F_n(0) = 0``) and no localisation; the global λ of
Aoyagi & Watanabe (2005, reduced rank) and Aoyagi (2024, deep linear) is the one
these quantities see, since the prior is positive on the whole true set.

For ``y = W_L ⋯ W_1 x + N(0, σ² I)`` the loss depends on the data only through
``C = XᵀX / n`` and the least-squares map ``Ŵ = (XᵀX)⁻¹ Xᵀ Y``:

.. math::

    L_n(w) = L_n(\\hat W) + \\frac{1}{2\\sigma^2}
        \\operatorname{tr}\\big((W - \\hat W) C (W - \\hat W)^\\top\\big),
    \\qquad W = W_L \\cdots W_1 .

The posterior here uses the *shifted* loss ``L_n(w) − L_n(Ŵ)`` (the per-datum
log-likelihood raised by the constant ``L_n(Ŵ)``): the law at every β is unchanged,
but float32 keeps the O(1/n) part of the loss that every thermodynamic quantity is
about (at n = 10⁵ the unshifted ``nL_n`` has a float32 resolution of about 0.03).
Add ``energy_offset = nL_n(Ŵ)`` (float64) back to ``n ×`` the recorded loss to get
``nL_n``. ``full_loss_fn`` is the O(d²) formula above (the data's statistics are
constants of its closure, so each data set compiles its own sampler).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..posterior.base import TemperedPosterior, tempered_posterior
from ..types import PRNGKey
from . import coefficients
from .models import _check_widths, _product, balanced_minimiser, true_network

__all__ = [
    "BayesLinearNetwork",
    "bayes_linear_network",
    "n_loss",
    "prior_sample",
    "regular_free_energy",
]


class BayesLinearNetwork(NamedTuple):
    """A linear-Gaussian network with an N(0, s² I) prior and its data.

    Attributes
    ----------
    name : str
    posterior : TemperedPosterior
        Shifted per-datum log-likelihood (see the module docstring), normalised
        Gaussian prior, the given β, γ = 0, no centre; params are the list of layers
        ``[W_1 (H_2×H_1), …, W_L]``.
    widths : list of int
        ``[input, …, output]``.
    w_true : list of numpy.ndarray
        The true layers (:func:`~slt_sampler.zoo.models.aligned_low_rank`, every layer
        of rank exactly ``r``; for two widths a generic regular regression).
    true : LearningCoefficient
        Exact global (λ, m).
    sigma, prior_scale : float
    dim : int
        Number of parameters d.
    energy_offset : float
        ``nL_n(Ŵ)`` at the unconstrained least-squares map (float64); the recorded
        loss is ``L_n − energy_offset / n``.
    n_loss_true : float
        ``nL_n(w0)`` at the true parameter (``n S_n``, the realisable baseline).
    n_loss_min : float
        ``min_w nL_n(w)`` over the model (the rank-``min(widths)`` least-squares map;
        equals ``energy_offset`` for regular regression).
    gram, ols : numpy.ndarray
        ``C = XᵀX / n`` and ``Ŵ`` (float64).
    """

    name: str
    posterior: TemperedPosterior
    widths: list
    w_true: list
    true: coefficients.LearningCoefficient
    sigma: float
    prior_scale: float
    dim: int
    energy_offset: float
    n_loss_true: float
    n_loss_min: float
    gram: np.ndarray
    ols: np.ndarray


def bayes_linear_network(
    rng_key: PRNGKey,
    widths,
    r: int,
    *,
    n: int,
    sigma: float = 1.0,
    prior_scale: float = 1.0,
    beta: float = 1.0,
    name: str | None = None,
    common_noise: PRNGKey | None = None,
) -> BayesLinearNetwork:
    """Data, global posterior and exact (λ, m) of ``y = W_L ⋯ W_1 x + N(0, σ² I)``.

    ``x ~ N(0, I)``; the truth is a rank-``r`` product of aligned layers (two widths:
    regular regression ``W ~ N(0, 1/d)``, λ = d/2). Prior ``N(0, s² I)`` on every
    weight, ``s = prior_scale``, normalised.

    ``common_noise`` (a key) fixes the data's sufficient statistics up to their
    scale in n: the inputs are whitened (``XᵀX / n = I``) and the normalised noise
    ``Z = XᵀE / √n`` is drawn from this key, the rest of ``E`` from ``rng_key``. The
    same key at several n then gives data sets whose least-squares map is
    ``Ŵ = W_0 + Zᵀ/√n`` with one ``Z``: the posterior at every n is the same
    function of the same limiting noise, so the O_p(1) remainder of
    ``F_n − nL_n(ŵ)`` (Watanabe 2009) is common to all n instead of scattering
    between them (common random numbers for a study of the n-dependence).

    Examples
    --------
    >>> import jax
    >>> m = bayes_linear_network(jax.random.key(0), [3, 2, 3], 0, n=100)
    >>> m.true.lam, m.dim, float(m.posterior.gamma)
    (2.5, 12, 0.0)
    """
    widths = _check_widths(widths)
    r = _validate.check_int("r", r, minimum=0)
    n = _validate.check_int("n", n, minimum=max(widths) + 1)
    _validate.check_positive("sigma", sigma, "The noise standard deviation.")
    _validate.check_positive("prior_scale", prior_scale, "The prior's std s.")
    _validate.check_positive("beta", beta, "β = 1 is the Bayes posterior.")
    if len(widths) > 2 and r > min(widths):
        raise ValueError(
            f"r = {r} exceeds the smallest width {min(widths)} of {widths}: the true "
            "rank is at most min(widths)."
        )
    k_true, k_x, k_e = jax.random.split(rng_key, 3)
    w_true, true = true_network(k_true, widths, r)
    x = jax.random.normal(k_x, (n, widths[0]))
    noise = sigma * jax.random.normal(k_e, (n, widths[-1]))
    if common_noise is not None:
        x, noise = _common_noise(x, noise, common_noise, sigma)
    y = x @ _product(w_true).T + noise
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    gram = x64.T @ x64 / n
    ols = np.linalg.solve(x64.T @ x64, x64.T @ y64).T  # (out, in)
    const = 0.5 * widths[-1] * math.log(2 * math.pi * sigma**2)

    def n_loss64(wmat):
        r_ = y64 - x64 @ wmat.T
        return float(0.5 * np.sum(r_ * r_) / sigma**2 + n * const)

    offset = n_loss64(ols)
    w_true64 = [np.asarray(w, np.float64) for w in w_true]
    if len(widths) == 2:
        n_min = offset
    else:
        layers = balanced_minimiser(x64, y64, widths)
        n_min = n_loss64(np.linalg.multi_dot(layers[::-1]))
    shift = offset / n
    c32, ols32 = jnp.asarray(gram, jnp.float32), jnp.asarray(ols, jnp.float32)

    def loglik(params, batch):
        xb, yb = batch
        h = xb
        for w in params:
            h = h @ w.T
        res = yb - h
        return -0.5 * jnp.sum(res**2, axis=-1) / sigma**2 - const + shift

    def full(params, data):
        del data
        diff = _product(params) - ols32
        return 0.5 * jnp.sum((diff @ c32) * diff) / sigma**2

    dim = sum(a * b for a, b in itertools.pairwise(widths))
    log_norm = -0.5 * dim * math.log(2 * math.pi * prior_scale**2)

    def logprior(params):
        sq = sum(jnp.sum(w**2) for w in params)
        return -0.5 * sq / prior_scale**2 + log_norm

    post = tempered_posterior(
        loglik, (x, y), logprior_fn=logprior, beta=beta, full_loss_fn=full
    )
    label = name or f"bayes_linear{widths}_r{r}_n{n}"
    return BayesLinearNetwork(
        label,
        post,
        widths,
        w_true64,
        true,
        float(sigma),
        float(prior_scale),
        dim,
        offset,
        n_loss64(
            np.linalg.multi_dot(w_true64[::-1]) if len(w_true64) > 1 else w_true64[0]
        ),
        n_min,
        gram,
        ols,
    )


def _common_noise(x, noise, key, sigma):
    """Whitened inputs and noise whose projection on them is ``X Z / √n`` with
    ``Z ~ N(0, σ²)`` drawn from ``key`` (float64 algebra, float32 result)."""
    x64, e64 = np.asarray(x, np.float64), np.asarray(noise, np.float64)
    n = x64.shape[0]
    evals, evecs = np.linalg.eigh(x64.T @ x64 / n)
    x64 = x64 @ (evecs / np.sqrt(evals)) @ evecs.T
    z = sigma * np.asarray(
        jax.random.normal(key, (x64.shape[1], e64.shape[1])), np.float64
    )
    e64 = e64 - x64 @ (x64.T @ e64) / n + x64 @ z / math.sqrt(n)
    return jnp.asarray(x64, jnp.float32), jnp.asarray(e64, jnp.float32)


def prior_sample(rng_key: PRNGKey, model: BayesLinearNetwork, num: int) -> list:
    """``num`` independent prior draws: a list of layers with leading axis ``num``."""
    num = _validate.check_int("num", num)
    keys = jax.random.split(rng_key, len(model.widths) - 1)
    return [
        model.prior_scale * jax.random.normal(k, (num, b, a))
        for k, (a, b) in zip(keys, itertools.pairwise(model.widths))
    ]


def n_loss(model: BayesLinearNetwork, params) -> np.ndarray:
    """``nL_n`` (float64, unshifted) at parameters with one leading axis, e.g. prior
    draws for the β = 0 rung of thermodynamic integration."""
    layers = [np.asarray(w, np.float64) for w in params]
    wmat = layers[0]
    for w in layers[1:]:
        wmat = np.einsum("sij,sjk->sik", w, wmat)
    diff = wmat - model.ols[None]
    n = model.posterior.n
    quad = np.einsum("sij,jk,sik->s", diff, model.gram, diff)
    return model.energy_offset + 0.5 * n * quad / model.sigma**2


def regular_free_energy(model: BayesLinearNetwork, beta: float = 1.0) -> float:
    """Exact ``F_n(β)`` of a one-layer (regular) network, float64.

    With ``A = nβ C / σ²`` and ``Ŵ`` the least-squares map, every output row ``ŵ_j``
    contributes a Gaussian integral against the ``N(0, s² I)`` prior
    (Bishop 2006, §3.5):

    .. math::

        F_n(\\beta) = \\beta\\, nL_n(\\hat W) + \\sum_j \\Big[\\tfrac12
            \\log\\det(I + s^2 A) + \\tfrac12\\, \\hat w_j^\\top A (I + s^2 A)^{-1}
            \\hat w_j\\Big].
    """
    if len(model.widths) != 2:
        raise ValueError(
            f"regular_free_energy needs a one-layer network (widths [input, output]), "
            f"got widths {model.widths}; deeper networks have no closed form."
        )
    _validate.check_positive("beta", beta, "β = 1 is the Bayes free energy.")
    n = model.posterior.n
    a = n * beta * model.gram / model.sigma**2
    m = np.eye(a.shape[0]) + model.prior_scale**2 * a
    logdet = np.linalg.slogdet(m)[1]
    quad = np.einsum("ji,ik,jk->", model.ols, a, np.linalg.solve(m, model.ols.T).T)
    return float(
        beta * model.energy_offset + 0.5 * model.ols.shape[0] * logdet + 0.5 * quad
    )
