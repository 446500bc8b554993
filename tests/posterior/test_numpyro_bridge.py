import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC
from numpyro.infer import NUTS as NumPyroNUTS

from slt_sampler import NUTS, from_numpyro, sample, window_adapt
from slt_sampler.estimators._mcse import mcse_mean
from slt_sampler.posterior.base import log_prior
from slt_sampler.posterior.numpyro_bridge import constrain
from slt_sampler.samplers.hmc import default_inverse_mass_matrix


def _data(n=200):
    x = jax.random.normal(jax.random.key(0), (n, 2))
    y = (
        x @ jnp.array([1.0, -0.5])
        + 0.3
        + 0.8 * jax.random.normal(jax.random.key(1), (n,))
    )
    return x, y


def model(x, y, beta=1.0):
    w = numpyro.sample("w", dist.Normal(0, 1).expand([2]).to_event(1))
    b = numpyro.sample("b", dist.Normal(0, 1))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    with numpyro.plate("data", x.shape[0]):
        with numpyro.handlers.scale(
            scale=beta
        ):  # NumPyro's own tempering, for the check
            numpyro.sample("y", dist.Normal(x @ w + b, s), obs=y)


def test_observed_sites_are_the_per_datum_likelihood_latents_the_prior():
    x, y = _data()
    post, init = from_numpyro(jax.random.key(2), model, x, y)
    assert post.n == 200
    ll = post.loglik_fn(init, (x, y))
    assert ll.shape == (200,)
    c = constrain(model, init, x, y)
    expected_ll = dist.Normal(x @ c["w"] + c["b"], c["s"]).log_prob(y)
    np.testing.assert_allclose(ll, expected_ll, rtol=1e-5)
    # prior with the log|Jacobian| of s = exp(u)
    expected_lp = (
        dist.Normal(0, 1).log_prob(c["w"]).sum()
        + dist.Normal(0, 1).log_prob(c["b"])
        + dist.HalfNormal(1.0).log_prob(c["s"])
        + init["s"]
    )
    np.testing.assert_allclose(log_prior(post, init), expected_lp, rtol=1e-5)


def test_model_without_observed_site_is_rejected():
    def prior_only(x):
        numpyro.sample("w", dist.Normal(0, 1))

    with pytest.raises(ValueError, match="no observed sample site"):
        from_numpyro(jax.random.key(0), prior_only, jnp.zeros((5,)))


def test_non_per_datum_observation_is_rejected():
    def pooled(x, y):
        m = numpyro.sample("m", dist.Normal(0, 1))
        numpyro.sample("ybar", dist.Normal(m, 1), obs=jnp.mean(y))

    with pytest.raises(ValueError, match="leading axis of size n"):
        from_numpyro(jax.random.key(0), pooled, jnp.zeros((5,)), jnp.zeros((5,)))


@pytest.mark.slow
def test_nuts_mean_loss_agrees_with_numpyro_mcmc():
    """Same tempered posterior, two NUTS implementations: E[L_n] within 3 MCSE."""
    x, y = _data()
    post, init = from_numpyro(jax.random.key(2), model, x, y)
    beta = float(post.beta)
    tuned, starts = window_adapt(
        jax.random.key(3),
        NUTS(1.0, default_inverse_mass_matrix(init)),
        post,
        init,
        num_chains=4,
        num_steps=500,
    )
    ours = sample(
        jax.random.key(4),
        tuned,
        post,
        starts,
        num_chains=4,
        num_steps=2000,
        chains_axis=True,
        progress=False,
    ).losses

    mcmc = MCMC(
        NumPyroNUTS(model),
        num_warmup=1000,
        num_samples=2000,
        num_chains=2,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(5), x, y, beta=beta)
    s = mcmc.get_samples(group_by_chain=True)
    nll = lambda w, b, sd: -jnp.mean(dist.Normal(x @ w + b, sd).log_prob(y))
    theirs = np.asarray(jax.vmap(jax.vmap(nll))(s["w"], s["b"], s["s"]))
    se = np.hypot(mcse_mean(ours), mcse_mean(theirs))
    assert abs(ours.mean() - theirs.mean()) <= 3 * se, (ours.mean(), theirs.mean(), se)


# --- issue 12: each of these surfaced as a bare AssertionError or NumPyro internals


def test_center_missing_a_site_is_named():
    x, y = _data()
    with pytest.raises(ValueError, match=r"missing \['b', 's'\]"):
        from_numpyro(
            jax.random.key(0), model, x, y, gamma=1.0, center={"w": jnp.ones(2)}
        )


def test_center_outside_the_support_is_named():
    x, y = _data()
    c = {"w": jnp.ones(2), "b": 0.0, "s": -1.0}
    with pytest.raises(ValueError, match="outside the support"):
        from_numpyro(jax.random.key(0), model, x, y, gamma=1.0, center=c)


@pytest.mark.parametrize(
    "case, match",
    [
        ("n = 0", "at least one datum"),
        ("length mismatch", "share one leading axis"),
        ("NaN in y", "NaN or inf"),
    ],
)
def test_bad_data_is_named_before_numpyro_sees_it(case, match):
    x, y = _data()
    if case == "n = 0":
        x, y = x[:0], y[:0]
    elif case == "length mismatch":
        y = y[:-5]
    else:
        y = y.at[3].set(jnp.nan)
    with pytest.raises(ValueError, match=match):
        from_numpyro(jax.random.key(0), model, x, y)


def test_discrete_latent_site_is_named():
    def mixture(x, y):
        z = numpyro.sample("z", dist.Bernoulli(0.5))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("y", dist.Normal(z * x[:, 0], 1.0), obs=y)

    x, y = _data()
    with pytest.raises(ValueError, match="latent site 'z' is discrete"):
        from_numpyro(jax.random.key(0), mixture, x, y)
