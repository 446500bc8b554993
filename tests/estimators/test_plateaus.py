"""Plateau detection on synthetic staircases (known plateau positions) and on a real
deep-linear-network trajectory trained from a small initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt_sampler import tempered_posterior
from slt_sampler.estimators.plateaus import find_plateaus
from slt_sampler.training import train
from slt_sampler.zoo import models as zoo


def staircase(t, centres, drops, width, floor=0.1):
    loss = np.full_like(t, floor)
    for c, d in zip(centres, drops):
        loss += d / (1 + np.exp((t - c) / width))
    return loss


@settings(max_examples=25, deadline=None)
@given(
    n_steps=st.integers(2, 4),
    ratio=st.floats(2.0, 30.0),
    width=st.floats(0.5, 3.0),
    noise=st.floats(0.0, 0.005),
    seed=st.integers(0, 2**16),
)
def test_staircase_plateaus_are_found_between_the_drops(
    n_steps, ratio, width, noise, seed
):
    """k sharp drops (sizes spanning a factor `ratio`, so the last one is slow in
    linear scale) give k + 1 plateaus, each lying between consecutive drops and
    covering the middle of the gap; multiplicative noise up to 0.5% is tolerated."""
    rng = np.random.default_rng(seed)
    t = np.arange(300.0)
    centres = np.linspace(300 / (n_steps + 1), 300 * n_steps / (n_steps + 1), n_steps)
    drops = np.geomspace(ratio, 1.0, n_steps)
    loss = staircase(t, centres, drops, width)
    loss *= np.exp(noise * rng.normal(size=t.size))
    found = find_plateaus(t, loss)
    assert len(found) == n_steps + 1
    edges = np.concatenate([[0.0], centres, [299.0]])
    for p, lo, hi in zip(found, edges[:-1], edges[1:]):
        assert lo <= p.start_step and p.stop_step <= hi
        mid = 0.5 * (lo + hi)
        assert p.start_step <= mid <= p.stop_step
    assert found[-1].index == t.size - 1  # the final plateau is the trained network


def test_uneven_step_spacing_and_floor():
    """Irregularly spaced checkpoints and a negative loss (a Gaussian NLL below 0)
    with its floor: the plateaus of the shifted curve."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.choice(np.arange(3000.0), size=150, replace=False))
    loss = staircase(t, [1000.0, 2000.0], [20.0, 4.0], 10.0, floor=1.0) - 5.0
    with pytest.raises(ValueError, match="floor"):
        find_plateaus(t, loss)
    found = find_plateaus(t, loss, floor=-5.0)
    assert len(found) == 3
    assert found[0].stop_step < 1000.0 < found[1].start_step
    assert found[1].stop_step < 2000.0 < found[2].start_step
    assert found[1].loss == pytest.approx(-5 + 1 + 4, abs=0.05)


def test_flat_and_steadily_falling_curves():
    t = np.arange(50.0)
    (only,) = find_plateaus(t, np.full(50, 2.0))
    assert (only.start, only.stop) == (0, 49)
    assert find_plateaus(t, np.exp(-t / 10)) == ()  # a steady exponential decay


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": np.arange(4.0), "losses": np.ones(4)}, "at least 5"),
        ({"steps": np.arange(6.0), "losses": np.ones(5)}, "same length"),
        ({"steps": np.zeros(6), "losses": np.ones(6)}, "strictly increasing"),
        ({"steps": np.arange(6.0), "losses": [1, 2, np.nan, 1, 1, 1]}, "NaN"),
        ({"steps": np.arange(6.0), "losses": np.ones(6), "threshold": 0}, "threshold"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        find_plateaus(**kwargs)


@pytest.mark.slow
def test_real_deep_linear_network_trajectory():
    """A [4, 4, 4] network from a 1e-4 initialisation, rank-3 truth with singular
    values 3, 1, 1/3 (SGD, batch 200): four plateaus (ranks 0, 1, 2, 3 of the
    end-to-end map), found without tuning."""
    sigma, n = 0.25, 2000
    k_w, k_x, k_e, k_0, k_t = jax.random.split(jax.random.key(0), 5)
    q1, _ = jnp.linalg.qr(jax.random.normal(k_w, (4, 4)))
    q2, _ = jnp.linalg.qr(jax.random.normal(jax.random.fold_in(k_w, 1), (4, 4)))
    w_true = (q1 * jnp.array([3.0, 1.0, 1 / 3, 0.0])[None, :]) @ q2.T
    x = jax.random.normal(k_x, (n, 4))
    y = x @ w_true.T + sigma * jax.random.normal(k_e, (n, 4))
    post = tempered_posterior(
        zoo.linear_network_loglik(sigma),
        (x, y),
        full_loss_fn=zoo.linear_network_full_loss(sigma),
    )
    w0 = [1e-4 * jax.random.normal(jax.random.fold_in(k_0, i), (4, 4)) for i in (0, 1)]
    traj = train(
        k_t,
        post,
        w0,
        optax.sgd(0.01 * sigma**2),
        batch_size=200,
        num_steps=3000,
        checkpoint_every=25,
        progress=False,
    )
    floor = 2 * np.log(2 * np.pi * sigma**2)
    found = find_plateaus(traj.steps, traj.loss, floor=floor)
    prods = np.asarray(traj.params[1]) @ np.asarray(traj.params[0])
    ranks = [int(np.sum(np.linalg.svd(prods[p.index])[1] > 0.1)) for p in found]
    assert ranks == [0, 1, 2, 3]
