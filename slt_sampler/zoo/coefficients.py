"""Exact learning coefficients (RLCT λ, multiplicity m) for the model zoo.

Pure Python, no JAX. Each function returns the *global* :class:`LearningCoefficient`
(minimum over the true set, prior positive there), so that for a realisable model
:math:`F_n = n S_n + \\lambda \\log n - (m - 1) \\log\\log n + O_p(1)`. A local
coefficient at one point of the true set can be larger (reference sheet §2.3).
Arithmetic is exact (:class:`fractions.Fraction`), so ties deciding m are never
broken by rounding; ``lam`` is the correctly rounded float. Also: closed-form free
energies of ``exp(-t K)`` with a uniform prior on ``[-1, 1]^d`` (sheet §4.1).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

__all__ = [
    "LearningCoefficient",
    "deep_linear_network",
    "monomial",
    "normal_crossing_free_energy",
    "normal_crossing_mean_energy",
    "power",
    "power_free_energy",
    "reduced_rank_regression",
    "regular",
    "tanh_network",
    "two_component_mixture",
]

# Message templates (one place, so tests and users see the same wording).
_MSG_INT = "`{name}` must be an integer >= {low}; got {value!r}. Pass {hint}."
_MSG_SEQ = "`{name}` must be a non-empty sequence of integers; got {value!r}. {hint}"
_MSG_RANK = (
    "`r` (true rank) must satisfy 0 <= r <= {bound_name} = {bound}; got r={r}. "
    "Pass a rank no larger than {bound_name}: a larger true rank is not "
    "realisable by the model, so the formula does not apply."
)
_MSG_T = (
    "`t` must be a finite number >= 10; got {value!r}. These closed forms are the "
    "large-t asymptotics (error O(exp(-t))); pass t = n*beta >= 10."
)

# c0 = γ_E / 2 + log 2, with γ_E the Euler-Mascheroni constant (§4.1).
_EULER_GAMMA = 0.57721566490153286061
_NC_C0 = _EULER_GAMMA / 2 + math.log(2.0)


class LearningCoefficient(NamedTuple):
    """Learning coefficient of a model at its true parameter set.

    Attributes
    ----------
    lam : float
        The (global) learning coefficient / real log canonical threshold λ.
    multiplicity : int
        Its multiplicity m >= 1 (the order of the pole of the zeta function).
    """

    lam: float
    multiplicity: int


def _as_int(value, name: str, low: int, hint: str) -> int:
    """Return ``value`` as a Python int >= ``low`` or raise an actionable ValueError."""
    msg = _MSG_INT.format(name=name, low=low, value=value, hint=hint)
    if isinstance(value, bool):
        raise ValueError(msg)  # noqa: TRY004 - the task contract is ValueError
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(msg) from None
    if out < low:
        raise ValueError(msg)
    return out


def _as_int_list(values, name: str, low: int, hint: str) -> list[int]:
    """Return ``values`` as a non-empty list of ints >= ``low``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(_MSG_SEQ.format(name=name, value=values, hint=hint))
    if len(values) == 0:
        raise ValueError(_MSG_SEQ.format(name=name, value=values, hint=hint))
    return [_as_int(v, f"{name}[{i}]", low, hint) for i, v in enumerate(values)]


def _result(lam: Fraction, m: int) -> LearningCoefficient:
    return LearningCoefficient(lam=float(lam), multiplicity=int(m))


def regular(d: int) -> LearningCoefficient:
    """Learning coefficient of a regular model with ``d`` parameters.

    .. math:: \\lambda = d / 2, \\qquad m = 1.

    Parameters
    ----------
    d : int
        Number of parameters, ``d >= 1`` (Fisher information positive definite).

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    S. Watanabe (2009), *Algebraic Geometry and Statistical Learning Theory*,
    Cambridge University Press.

    Examples
    --------
    >>> regular(5)
    LearningCoefficient(lam=2.5, multiplicity=1)
    """
    d = _as_int(d, "d", 1, "the number of parameters, e.g. d=5")
    return _result(Fraction(d, 2), 1)


def power(k: int) -> LearningCoefficient:
    """Learning coefficient of the one-dimensional potential ``K(w) = w^{2k}``.

    .. math:: \\lambda = \\frac{1}{2k}, \\qquad m = 1.

    Parameters
    ----------
    k : int
        Half the degree, ``k >= 1``.

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    Examples
    --------
    >>> power(2)
    LearningCoefficient(lam=0.25, multiplicity=1)
    """
    k = _as_int(k, "k", 1, "k >= 1 for K(w) = w**(2*k)")
    return _result(Fraction(1, 2 * k), 1)


def monomial(
    powers: Sequence[int], prior_powers: Sequence[int] | None = None
) -> LearningCoefficient:
    """Learning coefficient of a normal-crossing potential.

    For :math:`K(w) = \\prod_j w_j^{2 k_j}` and prior
    :math:`\\varphi(w) \\propto \\prod_j |w_j|^{h_j}` near the origin,

    .. math::

        \\lambda = \\min_{j : k_j > 0} \\frac{h_j + 1}{2 k_j}, \\qquad
        m = \\#\\{ j : k_j > 0,\\ (h_j + 1)/(2k_j) = \\lambda \\}.

    Coordinates with ``k_j = 0`` do not constrain λ.

    Parameters
    ----------
    powers : sequence of int
        The ``k_j >= 0``; at least one must be positive.
    prior_powers : sequence of int, optional
        The ``h_j >= 0``, same length as ``powers``. Default: all zero (prior positive
        at the origin).

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    S. Watanabe (2009), *Algebraic Geometry and Statistical Learning Theory*
    (normal crossing form); Lau et al. (2023), arXiv:2308.12108 (toy potentials).

    Examples
    --------
    >>> monomial([1, 3])
    LearningCoefficient(lam=0.16666666666666666, multiplicity=1)
    >>> monomial([1, 1])
    LearningCoefficient(lam=0.5, multiplicity=2)
    """
    ks = _as_int_list(powers, "powers", 0, "e.g. powers=[1, 3] for w1**2 * w2**6")
    if prior_powers is None:
        hs = [0] * len(ks)
    else:
        hs = _as_int_list(
            prior_powers, "prior_powers", 0, "e.g. prior_powers=[0, 0] (flat prior)"
        )
        if len(hs) != len(ks):
            raise ValueError(
                f"`prior_powers` must have the same length as `powers` ({len(ks)}); "
                f"got length {len(hs)}. Pass one h_j per coordinate or None."
            )
    ratios = [Fraction(h + 1, 2 * k) for k, h in zip(ks, hs) if k > 0]
    if not ratios:
        raise ValueError(
            f"`powers` must contain at least one positive entry; got {list(ks)}. "
            "K would be constant, so no learning coefficient is defined."
        )
    lam = min(ratios)
    return _result(lam, sum(1 for q in ratios if q == lam))


def reduced_rank_regression(M: int, N: int, H: int, r: int) -> LearningCoefficient:
    """Learning coefficient of reduced-rank regression ``y = B A x + noise``.

    ``A`` is ``H x M``, ``B`` is ``N x H``, and the true product has rank ``r``.
    Aoyagi & Watanabe (2005), Theorem 1:

    * Case 1, :math:`N + r \\le M + H`, :math:`M + r \\le N + H`,
      :math:`H + r \\le M + N`: with :math:`s = H + r`,

      .. math::

          \\lambda = \\frac{2s(M+N) - (M-N)^2 - s^2 + \\epsilon}{8}, \\qquad
          m = 1 + \\epsilon,

      where :math:`\\epsilon = 0` if :math:`M+N+H+r` is even and 1 if odd.
    * Case 2, :math:`M + H < N + r`: :math:`\\lambda = (HM - Hr + Nr)/2`, m = 1.
    * Case 3, :math:`N + H < M + r`: :math:`\\lambda = (HN - Hr + Mr)/2`, m = 1.
    * Case 4, :math:`M + N < H + r`: :math:`\\lambda = MN/2`, m = 1.

    Parameters
    ----------
    M, N, H : int
        Input, output and inner dimensions, each ``>= 1``.
    r : int
        Rank of the true map, ``0 <= r <= min(M, N, H)``.

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    M. Aoyagi and S. Watanabe (2005), "Stochastic complexities of reduced rank
    regression in Bayesian estimation", Neural Networks 18(7):924-933.

    Examples
    --------
    >>> reduced_rank_regression(5, 5, 3, 0)
    LearningCoefficient(lam=6.5, multiplicity=2)
    >>> reduced_rank_regression(6, 6, 4, 3)
    LearningCoefficient(lam=15.0, multiplicity=2)
    """
    M = _as_int(M, "M", 1, "the input dimension, M >= 1")
    N = _as_int(N, "N", 1, "the output dimension, N >= 1")
    H = _as_int(H, "H", 1, "the inner (hidden) dimension, H >= 1")
    r = _as_int(r, "r", 0, "the rank of the true map, r >= 0")
    if r > min(M, N, H):
        raise ValueError(
            _MSG_RANK.format(bound_name="min(M, N, H)", bound=min(M, N, H), r=r)
        )
    if M + N < H + r:
        return _result(Fraction(M * N, 2), 1)
    if M + H < N + r:
        return _result(Fraction(H * M - H * r + N * r, 2), 1)
    if N + H < M + r:
        return _result(Fraction(H * N - H * r + M * r, 2), 1)
    s = H + r
    eps = (M + N + H + r) % 2
    return _result(Fraction(2 * s * (M + N) - (M - N) ** 2 - s * s + eps, 8), 1 + eps)


def _dln_sigma(deltas: Sequence[int]) -> list[int]:
    """Indices Σ of Aoyagi's (2024) theorem for ``Δ_s = H_s - r``.

    Σ is the prefix of the indices sorted by Δ (ascending) that does not split ties,
    has ``|Σ| = ℓ + 1 >= 2`` and satisfies ``S >= ℓ max_Σ Δ`` and (unless Σ is
    everything) ``S < ℓ min_{∉Σ} Δ``, with ``S = Σ_{σ∈Σ} Δ_σ``.
    """
    order = sorted(range(len(deltas)), key=lambda i: deltas[i])
    sd = [deltas[i] for i in order]
    total = 0
    for size in range(1, len(sd) + 1):
        total += sd[size - 1]
        ell = size - 1
        # In this upward scan the tie rule is implied by (2) & (3), and (2) holds by
        # induction because (3) failed at the previous size; both are kept explicit
        # to mirror the theorem (uniqueness is checked by brute force in the tests).
        if ell < 1 or (size < len(sd) and sd[size] == sd[size - 1]):
            continue  # need ℓ >= 1, and Σ must not split a tie
        if total < ell * sd[size - 1]:
            continue  # condition (2)
        if size == len(sd) or total < ell * sd[size]:
            return sorted(order[:size])  # condition (3), vacuous for Σ = everything
    raise RuntimeError(  # pragma: no cover - excluded by Aoyagi's theorem
        f"no index set Σ found for Δ = {list(deltas)}; please report this input."
    )


def deep_linear_network(widths: Sequence[int], r: int) -> LearningCoefficient:
    """Learning coefficient of a deep linear network ``f(x) = W_L ... W_1 x``.

    ``widths = [H_1, ..., H_{L+1}]`` (input first, output last), ``W_s`` is
    ``H_{s+1} x H_s``, and the true product has rank ``r``. With
    :math:`\\Delta_s = H_s - r`, let Σ (``|Σ| = ℓ + 1``) be the unique index set with
    :math:`\\max_\\Sigma \\Delta < \\min_{\\notin\\Sigma} \\Delta`,
    :math:`S := \\sum_\\Sigma \\Delta_\\sigma \\ge \\ell \\max_\\Sigma \\Delta` and
    :math:`S < \\ell \\min_{\\notin\\Sigma} \\Delta`. With
    :math:`a = S - (\\lceil S/\\ell \\rceil - 1)\\ell \\in \\{1, \\dots, \\ell\\}`,

    .. math::

        \\lambda = \\frac{-r^2 + r(H_1 + H_{L+1})}{2} + \\frac{a(\\ell - a)}{4\\ell}
            - \\frac{\\ell(\\ell - 1)}{4} \\Big(\\frac{S}{\\ell}\\Big)^2
            + \\frac12 \\sum_{i < j \\in \\Sigma} \\Delta_i \\Delta_j,
        \\qquad m = a(\\ell - a) + 1.

    Σ is found as a prefix of Δ sorted ascending that does not split ties. L = 1 gives
    ``MN/2`` and L = 2 reproduces :func:`reduced_rank_regression` exactly. The
    multiplicity formula is taken from Lau et al.'s code; it is verified for ℓ <= 2
    and scalar chains only.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``[input, hidden..., output]``, at least two entries, all ``>= 1``.
    r : int
        Rank of the true end-to-end map, ``0 <= r <= min(widths)``.

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    M. Aoyagi (2024), "Consideration on the learning efficiency of multiple-layered
    neural networks with linear units", Neural Networks 172:106132 (SSRN 4404877);
    restated as Theorem B.1 in Furman & Lau (2024), arXiv:2402.03698.

    Examples
    --------
    >>> deep_linear_network([10, 10, 10, 10], 3)
    LearningCoefficient(lam=42.0, multiplicity=3)
    >>> deep_linear_network([5, 3, 5], 0)  # = reduced_rank_regression(5, 5, 3, 0)
    LearningCoefficient(lam=6.5, multiplicity=2)
    """
    hs = _as_int_list(widths, "widths", 1, "e.g. widths=[10, 10, 10, 10]")
    if len(hs) < 2:
        raise ValueError(
            f"`widths` needs at least two entries (input and output); got {hs}. "
            "Pass [input, hidden..., output]."
        )
    r = _as_int(r, "r", 0, "the rank of the true map, r >= 0")
    if r > min(hs):
        raise ValueError(_MSG_RANK.format(bound_name="min(widths)", bound=min(hs), r=r))
    deltas = [h - r for h in hs]
    sigma = _dln_sigma(deltas)
    ell = len(sigma) - 1
    ds = [deltas[i] for i in sigma]
    S = sum(ds)
    a = S - (-(-S // ell) - 1) * ell  # ceil(S / ℓ) with integers
    pair_sum = (S * S - sum(d * d for d in ds)) // 2  # Σ_{i<j} Δ_i Δ_j
    lam = (
        Fraction(-r * r + r * (hs[0] + hs[-1]), 2)
        + Fraction(a * (ell - a), 4 * ell)
        - Fraction(ell * (ell - 1), 4) * Fraction(S, ell) ** 2
        + Fraction(pair_sum, 2)
    )
    return _result(lam, a * (ell - a) + 1)


def tanh_network(H: int) -> LearningCoefficient:
    """Learning coefficient of ``f(x) = Σ_{h=1}^H a_h tanh(b_h x)`` at truth ``f = 0``.

    One input, one output, no biases, Gaussian noise, inputs whose support contains
    an interval. With :math:`k = \\max\\{ j : j^2 \\le H \\}`,

    .. math::

        \\lambda = \\frac{H + k^2 + k}{4k + 2}, \\qquad
        m = \\begin{cases} 2 & H = k^2 \\\\ 1 & \\text{otherwise.} \\end{cases}

    Equivalently λ is the minimum over integers j >= 0 of ``(H + j^2 + j)/(4j + 2)``,
    attained twice exactly when H is a perfect square. Pre-asymptotics are very slow
    for H >= 2 (reference sheet §2.5): do not expect estimates at nβ ~ 1e4 to match.

    Parameters
    ----------
    H : int
        Number of hidden units, ``H >= 1``.

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    M. Aoyagi and S. Watanabe (2005), "Resolution of singularities and the
    generalization error with Bayesian estimation for layered neural network",
    IEICE Trans. (in Japanese), as implemented in suswei/RLCT ``trueRLCT``;
    equals M. Aoyagi (2019), Entropy 21:561, Vandermonde case N = 1, Q = 2.

    Examples
    --------
    >>> tanh_network(4)
    LearningCoefficient(lam=1.0, multiplicity=2)
    """
    H = _as_int(H, "H", 1, "the number of hidden tanh units, H >= 1")
    k = math.isqrt(H)
    return _result(Fraction(H + k * k + k, 4 * k + 2), 2 if k * k == H else 1)


def two_component_mixture() -> LearningCoefficient:
    """Learning coefficient of ``(1-a) N(0,1) + a N(b,1)`` at the truth ``N(0,1)``.

    The true set is ``{a = 0} ∪ {b = 0}``; near the origin
    :math:`K(a, b) \\approx a^2 b^2 / 2`, so (prior positive at (0, 0))

    .. math:: \\lambda = 1/2, \\qquad m = 2.

    At an identifiable truth (``0 < a0 < 1``, ``b0 != 0``) the model is regular and
    :func:`regular` ``(2)`` applies instead.

    Returns
    -------
    LearningCoefficient
        ``(lam, multiplicity)``.

    References
    ----------
    Derived from the local form of K and checked by 2-D quadrature (reference
    sheet §2.6); consistent with M. Aoyagi (2019), Entropy 21:561, Vandermonde case
    N = 1, Q = 1, H = 1.

    Examples
    --------
    >>> two_component_mixture()
    LearningCoefficient(lam=0.5, multiplicity=2)
    """
    return LearningCoefficient(lam=0.5, multiplicity=2)


def _check_t(t) -> float:
    try:
        tf = float(t)
    except (TypeError, ValueError):
        raise ValueError(_MSG_T.format(value=t)) from None
    if not (math.isfinite(tf) and tf >= 10.0):
        raise ValueError(_MSG_T.format(value=t))
    return tf


def power_free_energy(t: float, k: int) -> float:
    """Free energy ``-log Z(t)`` of ``K(w) = w^{2k}`` with a uniform prior on [-1, 1].

    With :math:`Z(t) = \\int_{-1}^{1} \\tfrac12 e^{-t w^{2k}} dw` (reference §4.1),

    .. math::

        F(t) = \\frac{\\log t}{2k} - \\log\\Gamma\\Big(1 + \\frac{1}{2k}\\Big),
        \\qquad t\\,E_t[K] = -\\frac{d \\log Z}{d \\log t} = \\frac{1}{2k},

    up to a relative error in Z of order :math:`e^{-t}`.

    Parameters
    ----------
    t : float
        ``t = nβ >= 10``. Measured errors: < 1e-5 in F and < 1e-4 in
        ``t E_t[K]`` at t = 10; < 1e-12 for t >= 30.
    k : int
        Half the degree, ``k >= 1``.

    Returns
    -------
    float
        ``F(t)``. The mean energy ``t E_t[K]`` is ``power(k).lam``.

    Examples
    --------
    >>> round(power_free_energy(1e4, 1), 6)
    4.725952
    """
    t = _check_t(t)
    k = _as_int(k, "k", 1, "k >= 1 for K(w) = w**(2*k)")
    return math.log(t) / (2 * k) - math.lgamma(1 + 1 / (2 * k))


def normal_crossing_free_energy(t: float) -> float:
    """Free energy of ``K = (w1 w2)^2`` with a uniform prior on ``[-1, 1]^2``.

    .. math::

        Z(t) = \\frac{\\sqrt\\pi}{2\\sqrt t}\\Big(\\tfrac12 \\log t + c_0\\Big),\\quad
        F(t) = \\tfrac12 \\log t - \\log\\Big(\\tfrac12 \\log t + c_0\\Big)
            + \\log\\frac{2}{\\sqrt\\pi},\\quad c_0 = \\frac{\\gamma_E}{2} + \\log 2,

    up to a relative error in Z of order :math:`e^{-t}` (reference §4.1). This is the
    ``λ log t - (m-1) log log t`` structure exactly, with λ = 1/2, m = 2.

    Parameters
    ----------
    t : float
        ``t = nβ >= 10``. Measured errors: < 1e-5 in F and < 1e-4 in
        ``t E_t[K]`` at t = 10; < 1e-12 for t >= 30.

    Returns
    -------
    float
        ``F(t) = -log Z(t)``.

    Examples
    --------
    >>> round(normal_crossing_free_energy(1e4), 6)
    3.005523
    """
    t = _check_t(t)
    log_t = math.log(t)
    return (
        0.5 * log_t - math.log(0.5 * log_t + _NC_C0) + math.log(2 / math.sqrt(math.pi))
    )


def normal_crossing_mean_energy(t: float) -> float:
    """Mean energy ``t E_t[K]`` of ``K = (w1 w2)^2``, uniform prior on ``[-1, 1]^2``.

    .. math:: t\\,E_t[K] = -\\frac{d \\log Z}{d \\log t}
        = \\frac12 - \\frac{1}{\\log t + 2 c_0},

    i.e. :math:`\\lambda - (m - 1)/\\log t + O(\\log^{-2} t)`: what an exact sampler of
    ``exp(-t K)`` should report at finite t, rather than λ = 1/2.

    Parameters
    ----------
    t : float
        ``t = nβ >= 10``. Measured errors: < 1e-5 in F and < 1e-4 in
        ``t E_t[K]`` at t = 10; < 1e-12 for t >= 30.

    Returns
    -------
    float
        ``t E_t[K]``.

    Examples
    --------
    >>> round(normal_crossing_mean_energy(1e4), 6)
    0.410505
    """
    t = _check_t(t)
    return 0.5 - 1.0 / (math.log(t) + 2 * _NC_C0)
