"""Singular regressions whose free energy is an exact one-dimensional quadrature.

Model ``y = f(w)·x + N(0, σ²)`` with ``x ~ N(0, 1)`` and either ``f(w) = w^k`` (one
parameter; at the truth ``f = 0`` the potential is ``K ∝ w^{2k}``, λ = 1/(2k)) or
``f(w) = w1·w2`` (two parameters; ``K ∝ (w1 w2)²`` at ``f = 0``, λ = 1/2, m = 2).
The loss depends on w only through ``f`` and the sufficient statistics
``(Σx², Σxy, Σy²)``:

.. math::

    nL_n(w) = nL_{\\min} + A\\,(f(w) - \\hat f)^2,\\qquad
    A = \\frac{\\sum x_i^2}{2\\sigma^2},\\quad \\hat f = \\frac{\\sum x_i y_i}{\\sum x_i^2},

so with ``p_f`` the law of ``f(w)`` under the prior φ (the push-forward density),

.. math::

    Z_n(\\beta) = e^{-\\beta n L_{\\min}} \\int p_f(f)\\, e^{-\\beta A (f - \\hat f)^2}\\,df,

and ``E_β[nL_n]``, ``Var_β[nL_n]`` are ratios of the same one-dimensional integrals
with ``(f − f̂)²`` and ``(f − f̂)⁴``. The push-forward densities are elementary:
``|f|^{1/k−1}`` for a power of a uniform or Gaussian weight, ``log(a²/|f|)/(2a²)`` for
the product of two uniforms on ``[−a, a]`` and ``K₀(|f|/s²)/(π s²)`` for the product
of two ``N(0, s²)``. Adaptive Gauss–Kronrod quadrature (QUADPACK, with break points at
the singularity ``f = 0`` and at the peak ``f̂``) gives F to ~1e-10 nats, with an
error estimate (Watanabe 2009 §1 for the free energy; Lau et al. 2023 for the toy
monomial models).

**Free energies need a normalised prior**: both priors here integrate to one, so
``F_n(0) = 0`` and thermodynamic integration from β = 0 is meaningful.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate, special

from .. import _validate
from ..posterior.base import TemperedPosterior, tempered_posterior
from ..types import PRNGKey
from . import coefficients

__all__ = [
    "QuadratureExact",
    "QuadratureModel",
    "power_regression",
    "product_regression",
    "quadrature_exact",
    "regression_from_data",
    "wbic_quadrature",
]

_PRIORS = ("uniform", "gaussian")
_KINDS = ("power", "product")
_WINDOW = 40.0  # half-width of the integration window in posterior sd: e^{-1600}
_GAUSS_TAIL = 12.0  # Gaussian prior truncated at 12 sd (mass e^{-72} outside)


class QuadratureModel(NamedTuple):
    """A one- or two-parameter singular regression with exact free energies.

    Attributes
    ----------
    name : str
    posterior : TemperedPosterior
        Per-datum ``log N(y_i | f(w) x_i, σ²)``, normalised prior, the given β,
        γ = 0; params are a ``(dim,)`` array.
    x, y : numpy.ndarray, (n,)
        The data (float32 values stored as float64).
    kind : str
        ``"power"`` (``f = w^k``) or ``"product"`` (``f = w1 w2``).
    k : int
        The power (1 for ``"product"``).
    prior : str
        ``"uniform"`` on ``[−a, a]^dim`` or ``"gaussian"`` ``N(0, a² I)``.
    prior_scale : float
        ``a``.
    sigma : float
    f_true : float
        ``f(w0)`` of the data-generating law.
    dim : int
    true : LearningCoefficient
        Exact (λ, m) at the truth.
    sxx, sxy, syy : float
        ``Σx², Σxy, Σy²`` (float64).
    """

    name: str
    posterior: TemperedPosterior
    x: np.ndarray
    y: np.ndarray
    kind: str
    k: int
    prior: str
    prior_scale: float
    sigma: float
    f_true: float
    dim: int
    true: coefficients.LearningCoefficient
    sxx: float
    sxy: float
    syy: float


class QuadratureExact(NamedTuple):
    """Exact quantities of a :class:`QuadratureModel` at inverse temperature β.

    Attributes
    ----------
    beta : float
    free_energy : ``F_n(β) = −log ∫ φ exp(−nβ L_n)``.
    mean_energy : ``E_β[n L_n]``.
    var_energy : ``Var_β[n L_n]``.
    n_loss_min : ``min_f n L_n`` over the range of f (= ``nL_n(ŵ)``).
    n_loss_true : ``n L_n(w0)`` at the true parameter (= ``n S_n``).
    error : estimated absolute error of ``free_energy`` (quadrature + truncation).
    """

    beta: float
    free_energy: float
    mean_energy: float
    var_energy: float
    n_loss_min: float
    n_loss_true: float
    error: float


def _f_of(kind: str, k: int):
    if kind == "power":
        return lambda w: w[..., 0] ** k
    return lambda w: w[..., 0] * w[..., 1]


def _logprior_fn(prior: str, scale: float, dim: int):
    if prior == "uniform":
        const = -dim * math.log(2.0 * scale)

        def uniform(w):
            inside = jnp.all(jnp.abs(w) <= scale)
            return jnp.where(inside, const, -jnp.inf)

        return uniform
    const = -0.5 * dim * math.log(2.0 * math.pi * scale**2)

    def gaussian(w):
        return -0.5 * jnp.sum(w**2) / scale**2 + const

    return gaussian


def _check_choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")
    return value


def _true_coefficient(kind, k, f_true) -> coefficients.LearningCoefficient:
    if f_true != 0.0:
        return coefficients.regular(1)  # f'(w0) ≠ 0 along some direction
    return coefficients.power(k) if kind == "power" else coefficients.monomial([1, 1])


def regression_from_data(
    x,
    y,
    *,
    kind: str,
    k: int = 1,
    f_true: float = 0.0,
    sigma: float = 1.0,
    prior: str = "uniform",
    prior_scale: float = 1.0,
    beta: float = 1.0,
) -> QuadratureModel:
    """Build a :class:`QuadratureModel` on given data ``(x, y)`` (1-D arrays).

    ``kind="power"`` fits ``y ≈ w^k x`` (one parameter), ``kind="product"`` fits
    ``y ≈ w1 w2 x``. ``f_true`` only labels the truth (for ``n_loss_true`` and the
    learning coefficient); it does not change the data. The data are rounded to
    float32, and every exact value refers to the rounded data.
    """
    kind = _check_choice("kind", kind, _KINDS)
    prior = _check_choice("prior", prior, _PRIORS)
    k = _validate.check_int("k", k)
    if kind == "product" and k != 1:
        raise ValueError(f"k must be 1 for kind='product', got {k}.")
    for name, value, fix in [
        ("sigma", sigma, "The noise standard deviation."),
        ("prior_scale", prior_scale, "a of the prior."),
        ("beta", beta, "beta = 1 is the Bayes posterior."),
    ]:
        _validate.check_scalar(name, value, fix)
        _validate.check_positive(name, value, fix)
    _check_f_true(f_true)
    for name, value in (("x", x), ("y", y)):
        if _validate.as_numbers(name, value) is None:
            raise TypeError(f"{name} must be concrete numbers, got {value!r}.")
    x32 = np.asarray(x, np.float32)
    y32 = np.asarray(y, np.float32)
    if x32.ndim != 1 or x32.shape != y32.shape:
        raise ValueError(
            f"x and y must be 1-D arrays of one length n, got shapes {x32.shape} and "
            f"{y32.shape}."
        )
    _validate.check_data((x32, y32))
    sigma, a = float(sigma), float(prior_scale)
    dim = 1 if kind == "power" else 2
    f = _f_of(kind, k)
    const = 0.5 * math.log(2.0 * math.pi * sigma**2)

    def loglik(w, batch):
        xb, yb = batch
        return -0.5 * (yb - f(w) * xb) ** 2 / sigma**2 - const

    def full(w, data):
        xb, yb = data
        return 0.5 * jnp.mean((yb - f(w) * xb) ** 2) / sigma**2 + const

    post = tempered_posterior(
        loglik,
        (jnp.asarray(x32), jnp.asarray(y32)),
        logprior_fn=_logprior_fn(prior, a, dim),
        beta=beta,
        gamma=0.0,
        full_loss_fn=full,
    )
    xd, yd = x32.astype(np.float64), y32.astype(np.float64)
    tag = f"w^{k}" if kind == "power" else "w1w2"
    return QuadratureModel(
        name=f"{tag}_{prior}_n{xd.size}",
        posterior=post,
        x=xd,
        y=yd,
        kind=kind,
        k=k,
        prior=prior,
        prior_scale=a,
        sigma=sigma,
        f_true=float(f_true),
        dim=dim,
        true=_true_coefficient(kind, k, float(f_true)),
        sxx=float(xd @ xd),
        sxy=float(xd @ yd),
        syy=float(yd @ yd),
    )


def _check_f_true(f_true) -> None:
    fix = "The true coefficient f of the data (0: the singular truth)."
    _validate.check_scalar("f_true", f_true, fix)
    if not math.isfinite(float(f_true)):
        raise ValueError(f"f_true must be a finite number, got {f_true!r}. {fix}")


def _draw(rng_key, n, f_true, sigma):
    _validate.check_key("rng_key", rng_key)
    n = _validate.check_int("n", n, minimum=2)
    _check_f_true(f_true)
    _validate.check_scalar("sigma", sigma, "The noise standard deviation.")
    k_x, k_e = jax.random.split(rng_key)
    x = np.asarray(jax.random.normal(k_x, (n,)), np.float64)
    e = np.asarray(jax.random.normal(k_e, (n,)), np.float64)
    return x, float(f_true) * x + float(sigma) * e


def power_regression(
    rng_key: PRNGKey,
    k: int,
    n: int = 10_000,
    *,
    f_true: float = 0.0,
    sigma: float = 1.0,
    prior: str = "uniform",
    prior_scale: float = 1.0,
    beta: float = 1.0,
) -> QuadratureModel:
    """``y = w^k x + N(0, σ²)``, ``x ~ N(0, 1)``, data from ``f = f_true``.

    At ``f_true = 0``: ``K(w) ∝ w^{2k}``, λ = 1/(2k), m = 1.

    Examples
    --------
    >>> import jax
    >>> m = power_regression(jax.random.key(0), 2, n=1000)
    >>> m.true.lam, m.dim
    (0.25, 1)
    """
    _validate.check_positive("sigma", sigma, "The noise standard deviation.")
    x, y = _draw(rng_key, n, f_true, sigma)
    return regression_from_data(
        x,
        y,
        kind="power",
        k=k,
        f_true=f_true,
        sigma=sigma,
        prior=prior,
        prior_scale=prior_scale,
        beta=beta,
    )


def product_regression(
    rng_key: PRNGKey,
    n: int = 10_000,
    *,
    f_true: float = 0.0,
    sigma: float = 1.0,
    prior: str = "uniform",
    prior_scale: float = 1.0,
    beta: float = 1.0,
) -> QuadratureModel:
    """``y = w1 w2 x + N(0, σ²)``, ``x ~ N(0, 1)``, data from ``f = f_true``.

    At ``f_true = 0``: ``K(w) ∝ (w1 w2)²``, λ = 1/2, m = 2 (Watanabe 2009's normal
    crossing; Lau et al. 2023's toy ``w1 w2``).

    Examples
    --------
    >>> import jax
    >>> m = product_regression(jax.random.key(0), n=1000)
    >>> m.true
    LearningCoefficient(lam=0.5, multiplicity=2)
    """
    _validate.check_positive("sigma", sigma, "The noise standard deviation.")
    x, y = _draw(rng_key, n, f_true, sigma)
    return regression_from_data(
        x,
        y,
        kind="product",
        f_true=f_true,
        sigma=sigma,
        prior=prior,
        prior_scale=prior_scale,
        beta=beta,
    )


def _support(model) -> tuple[float, float]:
    """Integration range: of f (product) or of w (power) under the prior; Gaussian
    priors are truncated where the neglected mass is below e^{-72}."""
    a = model.prior_scale
    if model.kind == "product":
        hi = a * a if model.prior == "uniform" else 80.0 * a * a  # K0(80) ~ e^{-80}
    else:
        hi = a if model.prior == "uniform" else _GAUSS_TAIL * a
    return -hi, hi


def _product_density(model):
    """Push-forward density of ``f = w1 w2`` under the prior (vectorised)."""
    a2 = model.prior_scale**2
    if model.prior == "uniform":
        return lambda f: np.log(a2 / np.abs(f)) / (2 * a2)
    return lambda f: special.k0(np.abs(f) / a2) / (math.pi * a2)


def _power_density(model):
    """Prior density of the single weight w (f = w^k is integrated in w-space,
    where the integrand is smooth)."""
    a = model.prior_scale
    if model.prior == "uniform":
        return lambda w: 0.5 / a
    return lambda w: math.exp(-0.5 * (w / a) ** 2) / math.sqrt(2 * math.pi * a * a)


def _f_range(model) -> tuple[float, float]:
    """Range of f over the (truncated) prior support."""
    lo, hi = _support(model)
    if model.kind == "power":
        k = model.k
        return (-(hi**k), hi**k) if k % 2 else (0.0, hi**k)
    return lo, hi


def _gap2(model, f_hat) -> float:
    """``min_f (f − f̂)²`` over the range of f (0 unless f̂ lies outside it)."""
    flo, fhi = _f_range(model)
    return (f_hat - min(max(f_hat, flo), fhi)) ** 2


def _break_points(model, q, f_hat) -> list[float]:
    """The window where ``e^{-q (u² − gap²)}`` exceeds e^{-1600} (u = f − f̂), with
    break points at the origin (the singularity) and at the peak(s) and their 1 and
    4 posterior widths."""
    lo, hi = _support(model)
    if q <= 0:
        return sorted({lo, hi, *([0.0] if lo < 0.0 < hi else [])})
    gap = math.sqrt(_gap2(model, f_hat))
    scales = [s / math.sqrt(q) for s in (1.0, 4.0)]
    scales.append(math.sqrt(gap**2 + (_WINDOW / math.sqrt(q)) ** 2))
    if model.kind == "product":
        pts = [f_hat + sign * s for s in scales for sign in (-1, 1)]
        pts += [0.0, f_hat]
        left, right = f_hat - scales[-1], f_hat + scales[-1]
    else:
        k = model.k
        root = abs(f_hat) ** (1 / k)
        roots = [math.copysign(root, f_hat)] if k % 2 else [-root, root]
        pts = [sign * (abs(f_hat) + s) ** (1 / k) for s in scales for sign in (-1, 1)]
        pts += [0.0, *roots]
        right = (abs(f_hat) + scales[-1]) ** (1 / k)
        left = -right
    lo, hi = max(lo, left), min(hi, right)
    return sorted({lo, hi, *(p for p in pts if lo < p < hi)})


def _integrals(model, beta) -> tuple[np.ndarray, float, float]:
    """``I_j = ∫ p_f(f) u^j e^{−βA (u² − gap²)} df`` for j = 0, 2, 4 (u = f − f̂;
    the power model is integrated over w), the summed absolute error estimate of
    I_0, and ``βA gap²`` (the shift, so that a peak outside the prior's range of f
    does not underflow)."""
    amp = model.sxx / (2.0 * model.sigma**2)
    f_hat = model.sxy / model.sxx
    q = beta * amp
    gap2 = _gap2(model, f_hat)
    pts = _break_points(model, q, f_hat)
    if model.kind == "product":
        dens, to_f = _product_density(model), (lambda v: v)
    else:
        dens, to_f = _power_density(model), (lambda v, k=model.k: v**k)
    out, err = np.zeros(3), 0.0
    for j_idx, j in enumerate((0, 2, 4)):
        for left, right in itertools.pairwise(pts):
            val, e = integrate.quad(
                lambda v, j=j: (
                    dens(v)
                    * (to_f(v) - f_hat) ** j
                    * math.exp(-q * ((to_f(v) - f_hat) ** 2 - gap2))
                ),
                left,
                right,
                epsabs=0.0,
                epsrel=1e-12,
                limit=400,
            )
            out[j_idx] += val
            if j == 0:
                err += e
    return out, err, q * gap2


def quadrature_exact(model: QuadratureModel, beta: float) -> QuadratureExact:
    """Exact ``F_n(β)``, ``E_β[nL_n]``, ``Var_β[nL_n]`` by 1-D adaptive quadrature.

    .. math::

        F_n(\\beta) = \\beta n L_{\\min} - \\log I_0,\\quad
        E_\\beta[nL_n] = nL_{\\min} + A\\frac{I_2}{I_0},\\quad
        \\operatorname{Var}_\\beta[nL_n] = A^2\\Big(\\frac{I_4}{I_0}
            - \\frac{I_2^2}{I_0^2}\\Big),

    with :math:`I_j = \\int p_f(f)\\,(f - \\hat f)^j e^{-\\beta A (f - \\hat f)^2} df`
    (module docstring). ``beta = 0`` is allowed (the prior). Float64.

    Examples
    --------
    >>> import jax
    >>> m = product_regression(jax.random.key(0), n=1000)
    >>> ex = quadrature_exact(m, 1.0)
    >>> bool(ex.n_loss_min < ex.mean_energy < ex.n_loss_min + 1.0)
    True
    """
    if not isinstance(model, QuadratureModel):
        raise TypeError(
            f"model must be a QuadratureModel (power_regression, product_regression), "
            f"got {type(model).__name__}."
        )
    _validate.check_scalar("beta", beta)
    _validate.check_non_negative("beta", beta, "beta = 0 is the prior.")
    beta = float(beta)
    n = model.x.size
    s2 = model.sigma**2
    amp = model.sxx / (2.0 * s2)
    f_hat = model.sxy / model.sxx
    base = 0.5 * n * math.log(2 * math.pi * s2)
    n_loss_min = base + (model.syy - model.sxy**2 / model.sxx) / (2 * s2)
    lo, hi = _f_range(model)
    f_best = min(max(f_hat, lo), hi)
    (i0, i2, i4), err, shift = _integrals(model, beta)
    m2, m4 = i2 / i0, i4 / i0
    trunc = math.exp(-0.5 * _GAUSS_TAIL**2) if model.prior == "gaussian" else 0.0
    return QuadratureExact(
        beta=beta,
        free_energy=beta * n_loss_min + shift - math.log(i0),
        mean_energy=n_loss_min + amp * m2,
        var_energy=amp**2 * (m4 - m2 * m2),
        n_loss_min=n_loss_min + amp * (f_best - f_hat) ** 2,
        n_loss_true=n_loss_min + amp * (model.f_true - f_hat) ** 2,
        error=err / i0 + trunc,
    )


def wbic_quadrature(model: QuadratureModel) -> float:
    """Exact WBIC ``E_β[n L_n]`` at ``β = 1/log n`` (Watanabe 2013)."""
    return quadrature_exact(model, 1.0 / math.log(model.x.size)).mean_energy
