import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import full_loss
from slt_sampler.samplers.checks import check_local_minimum
from slt_sampler.zoo.digits import digits_mlp, load_digits_data, mlp_loglik


@pytest.fixture(scope="module")
def small():
    # a subset and few Adam steps; training (Adam, then L-BFGS to a vanishing gradient)
    # and its compilation take about 30 s under load, hence the slow tier
    return digits_mlp(jax.random.key(0), hidden=(6,), n=400, train_steps=300)


@pytest.mark.slow
def test_shapes_names_and_data(small):
    m = small
    assert m.name == "digits_mlp_64x6x10_tanh"
    assert m.true is None and m.w_true is None
    assert [(w.shape, b.shape) for w, b in m.w_star] == [
        ((64, 6), (6,)),
        ((6, 10), (10,)),
    ]
    assert (
        m.dim
        == 64 * 6 + 6 + 6 * 10 + 10
        == sum(np.size(x) for x in jax.tree.leaves(m.w_star))
    )
    x, y = m.posterior.data
    assert x.shape == (400, 64) and y.shape == (400,) and m.posterior.n == 400
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert set(np.unique(np.asarray(y))) <= set(range(10))
    np.testing.assert_allclose(float(m.posterior.beta), 1 / np.log(400), rtol=1e-6)
    ll = m.posterior.loglik_fn(m.w_star, (x[:5], y[:5]))
    assert ll.shape == (5,) and bool(jnp.all(ll <= 0))


def test_loglik_is_the_categorical_log_likelihood():
    x, y = load_digits_data()
    assert x.shape == (1797, 64)
    params = [(jnp.zeros((64, 3)), jnp.zeros(3)), (jnp.zeros((3, 10)), jnp.zeros(10))]
    # all-zero weights: uniform over 10 classes
    np.testing.assert_allclose(
        mlp_loglik("relu")(params, (x[:7], y[:7])), np.full(7, -np.log(10)), rtol=1e-6
    )


@pytest.mark.slow
def test_w_star_is_a_trained_minimum_that_passes_the_local_minimum_check(small):
    m = small
    post = m.posterior
    x, y = post.data
    check = check_local_minimum(jax.random.key(1), post)
    assert check.is_minimum, check
    assert check.decrement < 0.1 * check.threshold
    # w* minimises L_n + α/2|w|²: its gradient vanishes, so ∇L_n = −α w*
    grad = jax.grad(lambda w: full_loss(post, w))(m.w_star)
    for g, w in zip(jax.tree.leaves(grad), jax.tree.leaves(m.w_star)):
        np.testing.assert_allclose(g, -1e-3 * w, atol=2e-5)
    # and it has learnt the task
    from slt_sampler.zoo.digits import mlp_apply

    acc = float(jnp.mean(jnp.argmax(mlp_apply(m.w_star, x), -1) == y))
    assert acc > 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": (8, 0)}, "hidden\\[1\\]"),
        ({"hidden": (-3,)}, "hidden\\[0\\]"),
        ({"hidden": ()}, "at least one width"),
        ({"hidden": 16}, "tuple of hidden-layer widths"),
        ({"activation": "sigmoid"}, "activation must be one of"),
        ({"n": 1798}, "exceeds the 1797"),
        ({"n": 1}, "n"),
        ({"weight_decay": 0.0}, "weight_decay"),
        ({"gamma": -1.0}, "gamma"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        digits_mlp(jax.random.key(0), **kwargs)
