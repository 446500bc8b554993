"""Preconditioned SGLD: the kernel contract, its exact stationary law on a Gaussian
with a frozen preconditioner, and the preconditioned configurational temperature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from slt_sampler import full_loss, logdensity, sample
from slt_sampler.estimators._mcse import mcse_mean
from slt_sampler.samplers import run
from slt_sampler.samplers.calibrate import max_curvature
from slt_sampler.samplers.psgld import (
    PSGLD,
    PSGLDState,
    frozen_metric,
    preconditioned_configurational_temperature,
    rmsprop_preconditioner,
)
from tests.helpers import gaussian_law, mean_nll, regression_posterior

D, N, Z_MAX = 3, 500, 4.0


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_law(seed=3, n=N, d=D)


# ---------------------------------------------------------------- contract


def test_init_and_jitted_step_shapes():
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    s = PSGLD(jnp.asarray(1e-2), batch_size=32, adapt_steps=5)
    state = s.init(jnp.zeros(D), post)
    assert isinstance(state, PSGLDState)
    assert state.square_avg.shape == (D,) and not state.square_avg.any()
    assert state.count.dtype == jnp.int32 and int(state.count) == 0
    new, info = jax.jit(s.step)(jax.random.key(0), state, post)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert new.position.shape == (D,) and int(new.count) == 1
    assert set(info._fields) == {"loss", "loss_diff", "is_divergent", "acceptance_rate"}
    for field in info:
        assert field.shape == ()
    assert s.info_loss_kind == "batch"


def test_first_step_average_is_the_squared_gradient():
    # bias correction: weight (1-α)/(1-α¹) = 1, so V_1 = g_1² (full batch here)
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    w = jnp.asarray([0.3, -0.2, 0.1])
    s = PSGLD(jnp.asarray(1e-2), adapt_steps=5)
    new, _ = s.step(jax.random.key(0), s.init(w, post), post)
    g = jax.grad(lambda p: logdensity(post, p))(w)
    np.testing.assert_allclose(new.square_avg, g * g, rtol=1e-5)
    expected_g = 1 / (jnp.abs(g) + post.nbeta * 0.1)
    np.testing.assert_allclose(s.preconditioner(new, post), expected_g, rtol=1e-5)


def test_square_avg_is_bitwise_frozen_after_adapt_steps():
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    s = PSGLD(jnp.asarray(1e-2), batch_size=16, adapt_steps=10)
    step = jax.jit(s.step)
    state = s.init(jnp.zeros(D), post)
    avgs = []
    for key in jax.random.split(jax.random.key(1), 30):
        state, _ = step(key, state, post)
        avgs.append(np.asarray(state.square_avg))
    assert int(state.count) == 30
    assert not np.array_equal(avgs[8], avgs[9])  # the 10th step still adapts
    for later in avgs[10:]:
        np.testing.assert_array_equal(later, avgs[9])


def test_through_the_driver_with_several_chains():
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    s = PSGLD(jnp.asarray(1e-2), batch_size=32, adapt_steps=20)
    kw = {"num_chains": 3, "num_steps": 60, "thinning": 3, "keep_positions": True}
    res = sample(jax.random.key(0), s, post, jnp.zeros(D), progress=False, **kw)
    assert res.losses.shape == (3, 60) and res.positions.shape == (3, 20, D)
    assert set(res.stats) >= {"loss_diff", "is_divergent", "acceptance_rate"}
    assert not res.diverged.any()
    np.testing.assert_array_equal(res.final_state.count, [60, 60, 60])
    assert res.final_state.square_avg.shape == (3, D)
    # new step size / eps / alpha are traced: the compiled chunk is reused
    before = len(run._COMPILED)
    s2 = PSGLD(jnp.asarray(5e-3), 0.9, 0.05, batch_size=32, adapt_steps=20)
    sample(jax.random.key(0), s2, post, jnp.zeros(D), progress=False, **kw)
    assert len(run._COMPILED) == before


def test_handed_on_preconditioner_stays_frozen():
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    v = jnp.asarray([4.0, 100.0, 2500.0])
    s = PSGLD(jnp.asarray(1e-2), eps=1e-3, square_avg=v, batch_size=32, adapt_steps=0)
    res = sample(
        jax.random.key(2),
        s,
        post,
        jnp.zeros(D),
        num_chains=2,
        num_steps=20,
        progress=False,
    )
    np.testing.assert_array_equal(res.final_state.square_avg, np.stack([v, v]))
    state = jax.tree.map(lambda x: x[0], res.final_state)
    expected = 1 / (jnp.sqrt(v) + post.nbeta * 1e-3)
    np.testing.assert_allclose(s.preconditioner(state, post), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="square_avg"):
        PSGLD(1e-2, square_avg=jnp.ones(D + 1)).init(jnp.zeros(D), post)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -1e-3}, "step_size"),
        ({"step_size": 1e-3, "alpha": 0.0}, "alpha"),
        ({"step_size": 1e-3, "alpha": 1.0}, "alpha"),
        ({"step_size": 1e-3, "alpha": 1.5}, "alpha"),
        ({"step_size": 1e-3, "adapt_steps": -1}, "adapt_steps"),
        ({"step_size": 1e-3, "eps": 0.0}, "eps"),
        ({"step_size": 1e-3, "square_avg": -jnp.ones(D)}, "square_avg"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PSGLD(**kwargs)


# ------------------------------------------------------ exact stationary law

EPS = 0.02
V_FROZEN = np.array([1 / 0.05, 1 / 0.2, 1 / 0.3]) ** 2  # G ≈ (0.05, 0.2, 0.3)


def _psgld_cov(prec, eps, g):
    """w' = w - εGA(w - μ) + sqrt(2εG) ξ  =>  Σ = MΣMᵀ + 2εG, M = I - εGA."""
    m = np.eye(len(prec)) - eps * np.diag(g) @ prec
    assert max(abs(np.linalg.eigvals(m))) < 1, "no stationary law"
    return solve_discrete_lyapunov(m, 2 * eps * np.diag(g))


def test_frozen_psgld_matches_its_exact_stationary_law(gaussian):
    post, x, y, prec, mu = gaussian
    s = PSGLD(
        jnp.asarray(EPS), eps=1e-6, square_avg=jnp.asarray(V_FROZEN), adapt_steps=0
    )
    g = np.asarray(s.preconditioner(s.init(jnp.zeros(D), post), post), np.float64)
    cov, target_cov = _psgld_cov(prec, EPS, g), np.linalg.inv(prec)
    num_steps, burn = 20_000, 2_000
    res = sample(
        jax.random.key(11),
        s,
        post,
        jnp.asarray(mu, jnp.float32),
        num_chains=4,
        num_steps=num_steps,
        keep_positions=True,
        progress=False,
    )
    assert not res.diverged.any()
    pos = np.asarray(res.positions, np.float64)[:, burn:]
    for j in range(D):
        z = (pos[..., j].mean() - mu[j]) / mcse_mean(pos[..., j])
        assert abs(z) < Z_MAX, (j, z)
    nll = N * np.asarray(res.losses, np.float64)[:, burn:]
    se = mcse_mean(nll)
    expected = mean_nll(x, y, mu, cov)
    assert abs(nll.mean() - expected) < Z_MAX * se, (nll.mean(), expected, se)
    np.testing.assert_allclose(pos.reshape(-1, D).var(0), np.diag(cov), rtol=0.1)
    # the test can tell the discretised law from the target (and from a sampler whose
    # noise forgot G): each differs by more than Z_MAX standard errors
    for wrong in (
        target_cov,
        solve_discrete_lyapunov(
            np.eye(D) - EPS * np.diag(g) @ prec, 2 * EPS * np.eye(D)
        ),
    ):
        bias = expected - mean_nll(x, y, mu, wrong)
        assert abs(bias) > Z_MAX * se, (bias, se)


# ------------------------------------------- preconditioned T_conf identity


@pytest.mark.parametrize("scale, expected", [(1.0, 1.0), (1.3, 1.3)])
def test_preconditioned_configurational_temperature(gaussian, scale, expected):
    # under N(μ, c A⁻¹): E[∇U·G∇U] = c tr(GA) and E[tr(G∇²U)] = tr(GA), so T_G = c
    post, _, _, prec, mu = gaussian
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(mu, scale * np.linalg.inv(prec), size=2000)
    g = jnp.asarray([0.3, 1.0, 4.0])
    t, se = preconditioned_configurational_temperature(
        jax.random.key(0), post, jnp.asarray(draws, jnp.float32), g, like=jnp.zeros(D)
    )
    assert se < 0.05
    assert abs(t - expected) < Z_MAX * se, (t, se)
    if scale > 1:
        assert t - 1 > Z_MAX * se


def test_configurational_temperature_rejects_bad_metric(gaussian):
    post = gaussian[0]
    w = jnp.zeros((5, D))
    with pytest.raises(ValueError, match="G"):
        preconditioned_configurational_temperature(
            jax.random.key(0), post, w, -jnp.ones(D)
        )
    with pytest.raises(ValueError, match="G"):
        preconditioned_configurational_temperature(
            jax.random.key(0), post, w, jnp.ones(D + 1)
        )


def test_full_loss_is_unchanged_by_the_sampler(gaussian):
    # info.loss is the loss at the pre-step position (full batch: L_n)
    post, _, _, _, mu = gaussian
    s = PSGLD(jnp.asarray(1e-3), adapt_steps=3)
    w = jnp.asarray(mu, jnp.float32)
    _, info = s.step(jax.random.key(0), s.init(w, post), post)
    np.testing.assert_allclose(info.loss, full_loss(post, w), rtol=1e-5)


# ------------------------------------------------- adapted, frozen, calibrated


def test_max_curvature_in_a_metric_is_that_of_the_scaled_hessian(gaussian):
    post, _, _, prec, mu = gaussian
    g = np.array([0.02, 0.5, 3.0])
    expected = np.linalg.eigvalsh(np.sqrt(g)[:, None] * prec * np.sqrt(g)[None]).max()
    got = max_curvature(
        jax.random.key(0),
        post,
        jnp.asarray(mu, jnp.float32),
        metric=jnp.asarray(g, jnp.float32),
        num_iters=200,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    # and the metric matters: the unscaled Hessian's largest eigenvalue differs
    assert abs(np.linalg.eigvalsh(prec).max() / expected - 1) > 0.5


def test_rmsprop_preconditioner_measures_the_gradient_scale_and_freezes(gaussian):
    # at the target E[g g^T] = P Σ P = P (g = -P(w - μ)), so V ≈ diag(P); the mean
    # over 8 chains of an EMA of ~100 steps scatters by ~20% (six seeds: 0.81-1.45)
    post, _, _, prec, mu = gaussian
    s = rmsprop_preconditioner(
        jax.random.key(0), post, jnp.asarray(mu, jnp.float32), batch_size=None
    )
    assert s.adapt_steps == 0 and s.batch_size is None
    ratio = np.asarray(s.square_avg, np.float64) / np.diag(prec)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    g = np.asarray(frozen_metric(s, post))
    np.testing.assert_allclose(
        g, 1 / (np.sqrt(np.asarray(s.square_avg)) + float(post.nbeta) * 0.1), rtol=1e-5
    )
    assert float(s.step_size) > 0


def test_frozen_metric_rejects_an_adapting_sampler(gaussian):
    post = gaussian[0]
    with pytest.raises(ValueError, match="adapt_steps=0 and square_avg set"):
        frozen_metric(PSGLD(jnp.asarray(1e-2), adapt_steps=10), post)
    with pytest.raises(ValueError, match="rmsprop_preconditioner"):
        frozen_metric(PSGLD(jnp.asarray(1e-2), adapt_steps=0), post)


def test_temperature_se_by_chain_counts_correlated_positions(gaussian):
    """Positions that repeat within a chain (a chain that hardly moved) carry one
    draw's information, not 50: ``by_chain`` takes the SE from the chains' own means,
    which is then the larger one; with independent draws the two agree."""
    from slt_sampler.samplers.calibrate import configurational_temperature

    post, _, _, prec, mu = gaussian
    rng = np.random.default_rng(1)
    draws = rng.multivariate_normal(mu, np.linalg.inv(prec), size=(8, 50))
    stuck = np.repeat(draws[:, :1], 50, axis=1)  # each chain one repeated position
    k = jax.random.key(0)
    for pos, ratio in ((draws, (0.7, 1.5)), (stuck, (3.0, 50.0))):
        w = jnp.asarray(pos, jnp.float32)
        t, se = configurational_temperature(k, post, w, like=jnp.zeros(D))
        t_c, se_c = configurational_temperature(
            k, post, w, like=jnp.zeros(D), by_chain=True
        )
        assert t_c == t and ratio[0] < se_c / se < ratio[1], (se, se_c)
