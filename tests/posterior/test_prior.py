"""check_proper_prior: flat and non-normalisable priors are rejected, proper ones pass."""

from __future__ import annotations

import math

import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt_sampler import tempered_posterior
from slt_sampler.posterior._prior import check_proper_prior


def _post(logprior_fn, d=2):
    x = jnp.linspace(-1.0, 1.0, 8)
    return tempered_posterior(
        lambda w, b: -0.5 * (b - jnp.sum(w)) ** 2,
        x,
        logprior_fn=logprior_fn,
        center=jnp.zeros(d),
    )


def _gaussian(scale, d, mean=0.0):
    const = -0.5 * d * math.log(2 * math.pi * scale**2)
    return lambda w: -0.5 * jnp.sum((w - mean) ** 2) / scale**2 + const


def test_flat_prior_names_argument_and_fix():
    with pytest.raises(ValueError, match=r"posterior\.logprior_fn is None") as err:
        check_proper_prior(_post(None))
    assert "normalised" in str(err.value) and "jnp.log(2 * jnp.pi" in str(err.value)


@pytest.mark.parametrize(
    "logprior, d",
    [
        (lambda w: 0.1 * jnp.sum(w**2), 2),  # grows
        (lambda w: jnp.zeros(()), 3),  # constant: flat by another name
        (lambda w: -0.5 * w[0] ** 2, 5),  # proper in w[0] only
        (lambda w: -jnp.log1p(jnp.sum(w**2)) / 2, 2),  # r^-1 tail in 2-D
    ],
)
def test_non_normalisable_prior_is_named(logprior, d):
    with pytest.raises(ValueError, match="not normalisable") as err:
        check_proper_prior(_post(logprior, d), name="model")
    assert "model.logprior_fn" in str(err.value)


@pytest.mark.parametrize(
    "logprior, d",
    [
        (_gaussian(1.0, 1), 1),
        (_gaussian(1e-3, 1, mean=5.0), 1),  # narrow, away from 0
        (lambda w: -jnp.sum(jnp.log(math.pi * (1 + w**2))), 1),  # Cauchy
        (lambda w: jnp.where(jnp.abs(w[0]) <= 1, -math.log(2), -jnp.inf), 1),
        (lambda w: -jnp.sum(jnp.abs(w)) - w.size * math.log(2), 1),  # Laplace
        (_gaussian(1.0, 50), 50),
        (_gaussian(1e3, 3), 3),
    ],
)
def test_proper_priors_pass(logprior, d):
    check_proper_prior(_post(logprior, d))


def test_unnormalised_1d_prior_is_caught():
    with pytest.raises(ValueError, match=r"integrates to 2\.5066"):
        check_proper_prior(_post(lambda w: -0.5 * jnp.sum(w**2), 1))


def test_needs_a_parameter_template():
    x = jnp.linspace(-1.0, 1.0, 8)
    post = tempered_posterior(
        lambda w, b: -0.5 * (b - w) ** 2, x, logprior_fn=_gaussian(1.0, 1)
    )
    with pytest.raises(ValueError, match="params="):
        check_proper_prior(post)
    check_proper_prior(post, jnp.zeros(1))  # with a template it runs


@settings(max_examples=15, deadline=None)
@given(
    d=st.integers(2, 6),
    log_scale=st.floats(-3, 3),
    mean=st.floats(-10, 10),
    growth=st.floats(1e-3, 10),
)
def test_property_gaussians_pass_growing_fail(d, log_scale, mean, growth):
    check_proper_prior(_post(_gaussian(10.0**log_scale, d, mean), d))
    with pytest.raises(ValueError, match="not normalisable"):
        check_proper_prior(_post(lambda w: growth * jnp.sum((w - mean) ** 2), d))
