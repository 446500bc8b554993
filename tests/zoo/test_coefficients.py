"""Tests for slt_sampler.zoo.coefficients (reference sheet §2.1-2.6 and §4.1)."""

import doctest
import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate

from slt_sampler.zoo import coefficients as C
from slt_sampler.zoo.coefficients import (
    LearningCoefficient,
    deep_linear_network,
    monomial,
    normal_crossing_free_energy,
    normal_crossing_mean_energy,
    power,
    power_free_energy,
    reduced_rank_regression,
    regular,
    tanh_network,
    two_component_mixture,
)

# All (M, N, H, r) with 1 <= M, N, H <= 8 and 0 <= r <= min(M, N, H) (sheet §2.3).
RRR_CONFIGS = [
    (M, N, H, r)
    for M, N, H in itertools.product(range(1, 9), repeat=3)
    for r in range(min(M, N, H) + 1)
]


def _exact(value: Fraction | float, expected: Fraction) -> bool:
    """``value`` is the correctly rounded float of the exact rational ``expected``."""
    return value == float(expected)


def test_doctests():
    result = doctest.testmod(C, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 12
    assert result.failed == 0


# ---------------------------------------------------------------- §2.1, §2.2


@pytest.mark.parametrize("d", [1, 2, 5, 100])
def test_regular(d):
    assert regular(d) == LearningCoefficient(d / 2, 1)
    # A regular model is an L = 1 linear map with a full-rank (generic) truth.
    assert deep_linear_network([d, 1], 1) == regular(d)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_power(k):
    assert power(k) == LearningCoefficient(1 / (2 * k), 1)
    assert monomial([k]) == power(k)


@pytest.mark.parametrize(
    "powers, prior_powers, lam, m",
    [
        ([1, 1], None, Fraction(1, 2), 2),  # (w1 w2)^2
        ([1, 3], None, Fraction(1, 6), 1),  # w1^2 w2^6 = (w1 w2^3)^2, sheet: 1/6
        ([1, 2], None, Fraction(1, 4), 1),  # (w1 w2^2)^2
        ([0, 1], None, Fraction(1, 2), 1),  # w2^2 (k_1 = 0 does not constrain)
        ([1, 0], None, Fraction(1, 2), 1),  # w1^2
        ([0, 2], None, Fraction(1, 4), 1),  # devinterp Polynomial [0, 2]
        ([2, 2], None, Fraction(1, 4), 2),  # devinterp Polynomial [2, 2]
        ([3, 3], None, Fraction(1, 6), 2),  # devinterp Polynomial [3, 3]
        ([2, 3], None, Fraction(1, 6), 1),  # devinterp Polynomial [2, 3]
        ([1, 1], [0, 1], Fraction(1, 2), 1),  # prior |w2| pushes w2's ratio to 1
        ([2, 1], [1, 0], Fraction(1, 2), 2),  # (1+1)/4 = (0+1)/2
        ([1, 1, 1], [2, 0, 0], Fraction(1, 2), 2),
        ([3, 0, 2], [0, 5, 0], Fraction(1, 6), 1),
    ],
)
def test_monomial(powers, prior_powers, lam, m):
    out = monomial(powers, prior_powers)
    assert _exact(out.lam, lam) and out.multiplicity == m


def test_monomial_matches_brute_force_definition():
    rng = random.Random(0)
    for _ in range(200):
        d = rng.randint(1, 5)
        ks = [rng.randint(0, 4) for _ in range(d)]
        if not any(ks):
            ks[0] = 1
        hs = [rng.randint(0, 3) for _ in range(d)]
        ratios = [Fraction(h + 1, 2 * k) for k, h in zip(ks, hs) if k]
        out = monomial(ks, hs)
        assert _exact(out.lam, min(ratios))
        assert out.multiplicity == ratios.count(min(ratios))


# ---------------------------------------------------------------- §2.3 RRR

RRR_TABLE = [
    ((6, 6, 3, 3), Fraction(27, 2), 1),
    ((6, 6, 4, 3), Fraction(15), 2),
    ((6, 6, 5, 3), Fraction(16), 1),
    ((6, 6, 6, 3), Fraction(17), 2),
    ((5, 5, 3, 0), Fraction(13, 2), 2),
    ((5, 5, 4, 0), Fraction(8), 1),
    ((4, 8, 3, 0), Fraction(6), 1),
    ((8, 4, 3, 0), Fraction(6), 1),
    ((3, 4, 8, 0), Fraction(6), 1),
    ((1, 1, 1, 0), Fraction(1, 2), 2),
    ((2, 2, 2, 0), Fraction(3, 2), 1),
    ((2, 2, 2, 1), Fraction(2), 2),
    ((10, 10, 5, 2), Fraction(29), 2),
]


@pytest.mark.parametrize("args, lam, m", RRR_TABLE)
def test_rrr_worked_examples(args, lam, m):
    out = reduced_rank_regression(*args)
    assert _exact(out.lam, lam) and out.multiplicity == m


@pytest.mark.parametrize(
    "MHNr, lam",
    [
        ((1, 1, 1, 0), 0.5),
        ((2, 1, 2, 0), 1.0),
        ((2, 2, 2, 0), 1.5),
        ((3, 2, 1, 0), 1.0),
        ((1, 2, 1, 0), 0.5),
        ((2, 1, 2, 1), 1.5),
        ((2, 2, 2, 1), 2.0),
    ],
)
def test_rrr_brute_force_table_formula_column(MHNr, lam):
    """The 'formula' column of the sheet's brute-force table, given as (M, H, N, r)."""
    M, H, N, r = MHNr
    assert reduced_rank_regression(M, N, H, r).lam == lam


def test_rrr_structural_checks():
    assert len(RRR_CONFIGS) == 1808  # as stated in the sheet
    for M, N, H, r in RRR_CONFIGS:
        out = reduced_rank_regression(M, N, H, r)
        assert 0 < out.lam <= H * (M + N) / 2, (M, N, H, r)
        assert out.multiplicity in (1, 2)
        assert reduced_rank_regression(N, M, H, r) == out, (M, N, H, r)
        if r < min(M, N, H):
            assert reduced_rank_regression(M, N, H, r + 1).lam >= out.lam
        if r == H:
            assert out == LearningCoefficient(H * (M + N - H) / 2, 1), (M, N, H, r)
        if r == min(M, N):
            assert out.lam == M * N / 2, (M, N, H, r)


# ---------------------------------------------------------------- §2.4 DLN

DLN_TABLE = [
    (
        [100, 89, 467, 95, 231, 59, 159, 36, 225, 210, 342, 457, 495, 366, 186],
        36,
        Fraction(4500),
        1,
    ),
    ([10, 20, 20, 10], 10, Fraction(50), 1),
    ([5, 3, 5], 0, Fraction(13, 2), 2),
    ([5, 4, 3, 5], 0, Fraction(11, 2), 3),
    ([5, 4, 3, 5], 2, Fraction(9), 1),
    ([10] * 5, 0, Fraction(63, 2), 5),
    ([10] * 5, 5, Fraction(91, 2), 4),
    ([100, 50, 50, 100], 10, Fraction(1750), 1),
    ([10, 10, 10, 10], 3, Fraction(42), 3),  # sheet §5.7 / §6 DLN target
    ([1, 1, 1, 1], 0, Fraction(1, 2), 3),  # "formula" column of the brute-force list
    ([2, 2, 2, 2], 0, Fraction(3, 2), 3),
    ([2, 2, 2, 2], 1, Fraction(2), 3),
]


@pytest.mark.parametrize("widths, r, lam, m", DLN_TABLE)
def test_dln_worked_examples(widths, r, lam, m):
    out = deep_linear_network(widths, r)
    assert _exact(out.lam, lam) and out.multiplicity == m


def test_dln_42_by_hand():
    """[10,10,10,10], r=3 from the theorem's terms: Δ = 7 (x4), Σ = all, ℓ = 3."""
    r, ell, S = 3, 3, 28
    a = S - (math.ceil(S / ell) - 1) * ell
    lam = (
        Fraction(-(r**2) + r * 20, 2)
        + Fraction(a * (ell - a), 4 * ell)
        - Fraction(ell * (ell - 1), 4) * Fraction(S, ell) ** 2
        + Fraction(6 * 49, 2)
    )
    assert (a, lam, a * (ell - a) + 1) == (1, 42, 3)
    assert deep_linear_network([10, 10, 10, 10], 3) == (float(lam), 3)


def test_dln_two_layers_equals_rrr():
    for M, N, H, r in RRR_CONFIGS:
        assert deep_linear_network([M, H, N], r) == reduced_rank_regression(M, N, H, r)


@pytest.mark.parametrize("M, N", [(1, 1), (3, 5), (8, 2), (13, 13)])
def test_dln_one_layer(M, N):
    for r in range(min(M, N) + 1):
        assert deep_linear_network([M, N], r) == LearningCoefficient(M * N / 2, 1)


@pytest.mark.parametrize("L", [1, 2, 3, 4, 6, 9])
def test_dln_scalar_chains(L):
    assert deep_linear_network([1] * (L + 1), 0) == LearningCoefficient(0.5, L)
    assert deep_linear_network([1] * (L + 1), 1) == LearningCoefficient(0.5, 1)


def _random_widths(rng):
    L = rng.randint(1, 7)
    hi = rng.choice([3, 6, 12, 40])
    widths = [rng.randint(1, hi) for _ in range(L + 1)]
    return widths, rng.randint(0, min(widths))


def _brute_force_sigmas(deltas):
    """Every index set satisfying conditions (1)-(3) of Aoyagi's theorem."""
    found = []
    idx = range(len(deltas))
    for size in range(1, len(deltas) + 1):
        for sig in itertools.combinations(idx, size):
            ell = size - 1
            sub = [deltas[i] for i in sig]
            rest = [deltas[i] for i in idx if i not in sig]
            S = sum(sub)
            if rest and not max(sub) < min(rest):
                continue
            if not S >= ell * max(sub):
                continue
            if rest and not S < ell * min(rest):
                continue
            found.append(list(sig))
    return found


def test_dln_sigma_unique_and_prefix_brute_force():
    rng = random.Random(1234)
    for _ in range(400):
        widths, r = _random_widths(rng)
        deltas = [h - r for h in widths]
        sigmas = _brute_force_sigmas(deltas)
        assert len(sigmas) == 1, (widths, r, sigmas)
        assert C._dln_sigma(deltas) == sigmas[0], (widths, r)


def test_dln_random_properties():
    rng = random.Random(99)
    for _ in range(400):
        widths, r = _random_widths(rng)
        out = deep_linear_network(widths, r)
        d = sum(a * b for a, b in itertools.pairwise(widths))
        assert 0 < out.lam <= d / 2, (widths, r)
        assert out.multiplicity >= 1
        assert deep_linear_network(widths[::-1], r) == out, (widths, r)


# ---------------------------------------------------------------- §2.5, §2.6

TANH_TABLE = [
    (1, Fraction(1, 2), 2),
    (2, Fraction(2, 3), 1),
    (3, Fraction(5, 6), 1),
    (4, Fraction(1), 2),
    (5, Fraction(11, 10), 1),
    (6, Fraction(6, 5), 1),
    (7, Fraction(13, 10), 1),
    (8, Fraction(7, 5), 1),
    (9, Fraction(3, 2), 2),
]


@pytest.mark.parametrize("H, lam, m", TANH_TABLE)
def test_tanh_table(H, lam, m):
    out = tanh_network(H)
    assert _exact(out.lam, lam) and out.multiplicity == m


def test_tanh_equals_min_over_j_and_vandermonde():
    for H in range(1, 200):
        values = [Fraction(H + j * j + j, 4 * j + 2) for j in range(H + 2)]
        lam = min(values)
        out = tanh_network(H)
        assert _exact(out.lam, lam) and out.multiplicity == values.count(lam)
        assert 0 < out.lam <= H  # d/2 = H
        # Aoyagi (2019) Vandermonde N = 1 with M = 1, Q = 2; k = floor(sqrt(H)).
        k = math.isqrt(H)
        assert _exact(out.lam, Fraction(2 * k * (k + 1) + 2 * H, 4 * (1 + 2 * k)))


def test_two_component_mixture():
    assert two_component_mixture() == LearningCoefficient(0.5, 2)
    # Locally K ~ a^2 b^2 / 2: the normal-crossing monomial (a b)^2.
    assert two_component_mixture() == monomial([1, 1])


# ---------------------------------------------------------------- §4.1 closed forms


def _quad(f, a, b, points):
    pts = [p for p in points if a < p < b]
    val, err = integrate.quad(f, a, b, points=pts or None, limit=500, epsabs=0.0)
    assert err <= 1e-7 * abs(val)
    return val


# (t, tolerance on F, tolerance on t E_t[K]): the documented accuracy of the forms.
T_TOL = [
    (10.0, 1e-5, 1e-4),
    (30.0, 1e-12, 1e-12),
    (1e4, 1e-12, 1e-12),
    (1e8, 1e-12, 1e-12),
]


@pytest.mark.parametrize("t, tol_f, tol_e", T_TOL)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_power_free_energy_vs_quadrature(t, tol_f, tol_e, k):
    s = t ** (-1 / (2 * k))  # posterior width
    pts = [s, 3 * s, 10 * s, 30 * s]
    Z = _quad(lambda w: math.exp(-t * w ** (2 * k)), 0.0, 1.0, pts)  # = ∫ ½ e^{-tK}
    tK = _quad(lambda w: t * w ** (2 * k) * math.exp(-t * w ** (2 * k)), 0, 1, pts) / Z
    assert power_free_energy(t, k) == pytest.approx(-math.log(Z), abs=tol_f)
    assert power(k).lam == pytest.approx(tK, abs=tol_e)


def _normal_crossing_quadrature(t):
    """Nested adaptive quadrature of Z and t E_t[K] for K = (xy)^2 on [0, 1]^2."""
    st = math.sqrt(t)

    def inner(y, weight):
        c = t * y * y
        pts = [1 / math.sqrt(c) * f for f in (1, 3, 10)] if c > 1 else []
        return _quad(lambda x: (c * x * x) ** weight * math.exp(-c * x * x), 0, 1, pts)

    pts = [f / st for f in (1, 3, 10, 100, 1000)]
    Z = _quad(lambda y: inner(y, 0), 0.0, 1.0, pts)
    tK = _quad(lambda y: inner(y, 1), 0.0, 1.0, pts) / Z
    return Z, tK


@pytest.mark.parametrize("t, tol_f, tol_e", T_TOL)
def test_normal_crossing_vs_quadrature(t, tol_f, tol_e):
    Z, tK = _normal_crossing_quadrature(t)
    assert normal_crossing_free_energy(t) == pytest.approx(-math.log(Z), abs=tol_f)
    assert normal_crossing_mean_energy(t) == pytest.approx(tK, abs=tol_e)


def test_normal_crossing_mean_energy_is_dF_dlogt():
    for t in [1e2, 1e4, 1e12]:
        h = 1e-4
        dF = (
            normal_crossing_free_energy(t * math.exp(h))
            - normal_crossing_free_energy(t * math.exp(-h))
        ) / (2 * h)
        assert dF == pytest.approx(normal_crossing_mean_energy(t), abs=1e-7)
    # Sheet §4.1: t E_t[K] vs λ - (m-1)/log t at t = 1e12 (0.4662 vs 0.4638).
    assert normal_crossing_mean_energy(1e12) == pytest.approx(0.4662, abs=5e-5)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "fn, args, name",
    [
        (regular, (0,), "`d`"),
        (regular, (2.5,), "`d`"),
        (regular, (True,), "`d`"),
        (power, (0,), "`k`"),
        (monomial, ([0, 0],), "`powers`"),
        (monomial, ([],), "`powers`"),
        (monomial, ([1, -1],), r"`powers\[1\]`"),
        (monomial, ("12",), "`powers`"),
        (monomial, ([1, 1], [0]), "`prior_powers`"),
        (monomial, ([1, 1], [0, -1]), r"`prior_powers\[1\]`"),
        (reduced_rank_regression, (3, 3, 2, 3), "`r`"),
        (reduced_rank_regression, (3, 3, 2, -1), "`r`"),
        (reduced_rank_regression, (0, 3, 2, 0), "`M`"),
        (reduced_rank_regression, (3, 0, 2, 0), "`N`"),
        (reduced_rank_regression, (3, 3, 0, 0), "`H`"),
        (deep_linear_network, ([5], 0), "`widths`"),
        (deep_linear_network, ([5, 0, 4], 0), r"`widths\[1\]`"),
        (deep_linear_network, ([5, 2, 4], 3), "`r`"),
        (tanh_network, (0,), "`H`"),
        (power_free_energy, (0.5, 1), "`t`"),
        (power_free_energy, (5.0, 2), "`t`"),
        (power_free_energy, (float("inf"), 1), "`t`"),
        (power_free_energy, (1e4, 0), "`k`"),
        (normal_crossing_free_energy, (0.0,), "`t`"),
        (normal_crossing_mean_energy, ("x",), "`t`"),
    ],
)
def test_invalid_inputs_raise_actionable_errors(fn, args, name):
    with pytest.raises(ValueError, match=name):
        fn(*args)


def test_accepts_numpy_integers():
    assert reduced_rank_regression(*np.array([5, 5, 3, 0])) == (6.5, 2)
    assert deep_linear_network(np.array([10, 10, 10, 10]), np.int64(3)) == (42.0, 3)
    assert isinstance(deep_linear_network(np.array([4, 4]), 0).multiplicity, int)
