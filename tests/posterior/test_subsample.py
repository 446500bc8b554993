"""Sample-size grids: nested subsamples of one dataset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import default_beta, full_loss
from slt_sampler.posterior.subsample import nested_subsamples
from tests.helpers import regression_posterior


def test_nested_first_n_keep_beta_and_the_rest():
    post, x, y = regression_posterior(n=50, d=2, beta=0.3, gamma=1.0)
    subs = nested_subsamples(post, [10, 50, 25])
    assert [p.n for p in subs] == [10, 50, 25]
    for p in subs:
        np.testing.assert_array_equal(p.data[0], x[: p.n])
        np.testing.assert_array_equal(p.data[1], y[: p.n])
        assert float(p.beta) == pytest.approx(0.3)  # β is not re-defaulted
        assert float(p.gamma) == 1.0 and p.loglik_fn is post.loglik_fn
    # L_n of a subsample is the mean NLL over exactly its data
    w = jnp.array([0.3, -0.2])
    want = -np.mean(post.loglik_fn(w, (x[:25], y[:25])))
    assert float(full_loss(subs[2], w)) == pytest.approx(float(want), rel=1e-6)
    # explicit per-size 1/log n
    wbic = [p.replace(beta=default_beta(p.n)) for p in subs]
    assert float(wbic[0].beta) == pytest.approx(1 / np.log(10), rel=1e-6)


def test_shuffled_subsamples_are_nested_and_a_permutation():
    post, x, _ = regression_posterior(n=40, d=2)
    small, large = nested_subsamples(post, [15, 40], rng_key=jax.random.key(7))
    np.testing.assert_array_equal(small.data[0], large.data[0][:15])
    assert not np.array_equal(large.data[0], x)  # shuffled
    rows = {tuple(r) for r in np.asarray(x)}
    assert {tuple(r) for r in np.asarray(large.data[0])} == rows


@pytest.mark.parametrize(
    "ns, err, match",
    [
        ([10, 41], ValueError, r"ns.*n <= 40.*\[41\].*Drop sizes above 40"),
        ([1, 10], ValueError, r"ns.*2 <= n.*\[1\]"),
        ([], ValueError, "ns is empty"),
        (10, TypeError, "sequence of sample sizes"),
        ([10.5], TypeError, "ints"),
    ],
)
def test_bad_sizes(ns, err, match):
    post, _, _ = regression_posterior(n=40, d=2)
    with pytest.raises(err, match=match):
        nested_subsamples(post, ns)
