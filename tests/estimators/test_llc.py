import numpy as np
import pytest

from slt_sampler import llc


def test_llc_matches_definition_and_reports_errors():
    rng = np.random.default_rng(0)
    trace = 2.0 + 0.01 + 0.002 * rng.normal(size=(4, 2000))
    res = llc(trace, 2.0, n=1000, beta=0.5)
    assert res.nbeta == 500
    np.testing.assert_allclose(res.llc, 500 * (trace.mean() - 2.0))
    np.testing.assert_allclose(res.llc_per_chain, 500 * (trace.mean(axis=1) - 2.0))
    # iid draws: MCSE ≈ nβ·sd/sqrt(N)
    assert res.llc_mcse == pytest.approx(500 * 0.002 / np.sqrt(8000), rel=0.15)
    assert 0.99 < res.rhat < 1.01


def test_llc_refuses_diverged_chains_by_index():
    trace = np.ones((3, 100))
    trace[1, 50] = np.nan
    with pytest.raises(ValueError, match=r"chains \[1\]"):
        llc(trace, 1.0, n=10, beta=0.1)


def test_llc_rejects_bad_shapes_and_scalars():
    with pytest.raises(ValueError, match="chain, draw"):
        llc(np.ones(10), 1.0, n=10, beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        llc(np.ones((2, 10)), 1.0, n=10, beta=0.0)
