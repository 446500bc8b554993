"""A multilayer perceptron on scikit-learn's handwritten digits, beyond linear models.

Softmax classification of the 8×8 digits of ``sklearn.datasets.load_digits`` (1797
images, 64 pixels scaled to [0, 1], 10 classes) by a tanh or ReLU MLP. No closed form
gives its learning coefficient: the ground truth is an exact sampler (MAMS, MALA or
NUTS) run at the same (n, β, γ, w*), against which stochastic-gradient estimates are
checked (Lau et al. 2023 estimate the LLC of trained networks the same way, at a
trained parameter with a localiser).

Where w* is. On these data a wide enough MLP reaches 100% training accuracy, and then
``L_n`` has no minimum at finite weights: scaling the last layer up lowers it forever
(a tanh MLP with 16 hidden units trains to ``L_n ≈ 2e-7`` at 100% accuracy; even on
the first 4 principal components of the images, where it reaches 89%, L-BFGS keeps
lowering ``L_n`` while the norm grows, 116 → 158, as hidden units sharpen into
steps). So ``w*`` is the minimiser of the weight-decayed objective
``L_n(w) + α/2 ‖w‖²`` (full-batch Adam, then L-BFGS until its gradient vanishes): a
true minimum of that objective, and a point where ``∇L_n = −α w*`` is small. The
posterior itself has a flat prior and the Gaussian localiser at w*, as for every zoo
model. How far w* is from a minimum of ``L_n``: the model's description gives
``‖∇L_n(w*)‖``, and the gradient-decrement check of ``estimate_llc`` (nats by which
one gradient step lowers ``nβL_n``; ``center_check``) gives 0.017 nats at the
defaults, against its threshold of 1.2.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..posterior.base import default_beta, tempered_posterior
from ..types import PRNGKey
from .models import ZooModel, minimise

NUM_DIGITS = 1797
NUM_PIXELS = 64
NUM_CLASSES = 10
ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def load_digits_data(rng_key: PRNGKey | None = None, n: int | None = None):
    """The digits as ``(x, y)``: ``x`` (n, 64) float32 pixels in [0, 1], ``y`` (n,)
    int32 labels. ``n`` < 1797 takes a random subset (drawn with ``rng_key``)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = np.asarray(x, np.float32) / 16.0
    y = np.asarray(y, np.int32)
    if n is not None and n < NUM_DIGITS:
        idx = np.asarray(jax.random.permutation(rng_key, NUM_DIGITS))[:n]
        x, y = x[np.sort(idx)], y[np.sort(idx)]
    return jnp.asarray(x), jnp.asarray(y)


def mlp_apply(params, x, activation: str = "tanh"):
    """Logits of the MLP ``params = [(W_1, b_1), …, (W_L, b_L)]`` (``W`` of shape
    (fan_in, fan_out)) at inputs ``x`` (…, 64); hidden layers use ``activation``."""
    act = ACTIVATIONS[activation]
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + jnp.reshape(b, (1,) * (h.ndim - 1) + b.shape)
        if i < len(params) - 1:
            h = act(h)
    return h


def mlp_loglik(activation: str = "tanh"):
    """Per-datum categorical log-likelihood ``log softmax(f(x; w))_y`` of a batch
    ``(x, y)``."""
    _check_activation(activation)

    def loglik(params, batch):
        x, y = batch
        logp = jax.nn.log_softmax(mlp_apply(params, x, activation), axis=-1)
        return jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]

    return loglik


def init_mlp(rng_key: PRNGKey, widths) -> list:
    """Glorot-normal weights and zero biases for layer widths ``[64, …, 10]``."""
    keys = jax.random.split(rng_key, len(widths) - 1)
    return [
        (
            jax.random.normal(k, (a, b)) * math.sqrt(2.0 / (a + b)),
            jnp.zeros((b,)),
        )
        for k, a, b in zip(keys, widths[:-1], widths[1:])
    ]


def train_mlp(
    rng_key: PRNGKey,
    loglik,
    data,
    widths,
    *,
    weight_decay: float,
    train_steps: int,
    learning_rate: float = 1e-2,
    lbfgs_steps: int = 5000,
):
    """Full-batch Adam for ``train_steps`` steps on ``L_n(w) + α/2‖w‖²`` from a
    Glorot initialisation, then L-BFGS (:func:`~slt_sampler.zoo.minimise`) until the
    objective's gradient norm is below 1e-6 or ``lbfgs_steps`` iterations."""
    import optax

    def objective(w):
        sq = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(w))
        return -jnp.mean(loglik(w, data)) + 0.5 * weight_decay * sq

    opt = optax.adam(learning_rate)

    @jax.jit
    def adam(w):
        def step(carry, _):
            w, state = carry
            g = jax.grad(objective)(w)
            updates, state = opt.update(g, state, w)
            return (optax.apply_updates(w, updates), state), None

        (w, _), _ = jax.lax.scan(step, (w, opt.init(w)), None, length=train_steps)
        return w

    w = adam(init_mlp(rng_key, widths))
    return minimise(objective, w, num_steps=lbfgs_steps, tol=1e-6)


def digits_mlp(
    rng_key: PRNGKey,
    *,
    hidden=(16,),
    activation: str = "tanh",
    n: int | None = None,
    gamma: float = 1.0,
    beta: float | None = None,
    weight_decay: float = 1e-3,
    train_steps: int = 2000,
) -> ZooModel:
    """A tanh / ReLU MLP classifying scikit-learn's digits, localised at a trained w*.

    Layer widths are ``[64, *hidden, 10]``; the per-datum log-likelihood is the
    categorical ``log softmax(f(x; w))_y``; the posterior has β = 1/log n (default),
    a flat prior and the localiser ``γ/2‖w − w*‖²``. ``w*`` minimises
    ``L_n + α/2‖w‖²`` (``α = weight_decay``; see the module docstring for why the
    weight decay is needed and how close to a minimum of ``L_n`` this is).

    Parameters
    ----------
    rng_key
        Key for the subset (when ``n`` < 1797) and the initialisation.
    hidden
        Hidden-layer widths, each >= 1 (at least one hidden layer).
    activation
        ``"tanh"`` or ``"relu"``.
    n
        Number of digits (``None``: all 1797; otherwise a random subset).
    gamma, beta
        Localisation strength and inverse temperature (``None``: 1/log n).
    weight_decay
        α > 0 of the training objective.
    train_steps
        Full-batch Adam steps before L-BFGS.

    Returns
    -------
    ZooModel
        ``true`` and ``w_true`` are ``None``: λ is not known in closed form, the
        reference is an exact sampler at the same posterior. ``w_star`` is a list of
        ``(W, b)``.
    """
    hidden = _check_hidden(hidden)
    _check_activation(activation)
    if n is not None:
        n = _validate.check_int("n", n, minimum=2)
        if n > NUM_DIGITS:
            raise ValueError(
                f"n = {n} exceeds the {NUM_DIGITS} images of load_digits: pass "
                f"n <= {NUM_DIGITS}, or None for all of them."
            )
    _validate.check_non_negative("gamma", gamma, "0 switches localisation off.")
    _validate.check_positive("beta", beta, "None gives 1/log n.")
    _validate.check_positive(
        "weight_decay", weight_decay, "e.g. 1e-3: without it L_n has no minimum."
    )
    train_steps = _validate.check_int("train_steps", train_steps, minimum=0)
    k_data, k_init = jax.random.split(rng_key)
    data = load_digits_data(k_data, n)
    n = int(data[0].shape[0])
    widths = [NUM_PIXELS, *hidden, NUM_CLASSES]
    loglik = mlp_loglik(activation)
    w_star = train_mlp(
        k_init, loglik, data, widths, weight_decay=weight_decay, train_steps=train_steps
    )
    post = tempered_posterior(
        loglik,
        data,
        beta=beta if beta is not None else default_beta(n),
        gamma=gamma,
        center=w_star,
    )
    dim = sum(a * b + b for a, b in itertools.pairwise(widths))
    tag = "x".join(str(h) for h in widths)
    acc = float(
        jnp.mean(jnp.argmax(mlp_apply(w_star, data[0], activation), -1) == data[1])
    )
    loss = float(-jnp.mean(loglik(w_star, data)))
    grad = jax.grad(lambda w: -jnp.mean(loglik(w, data)))(w_star)
    grad_norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad))))
    desc = (
        f"{activation} MLP {widths} on sklearn digits (n = {n}), w* = argmin "
        f"L_n + {weight_decay:g}/2 |w|^2: L_n(w*) = {loss:.4f}, |grad L_n(w*)| = "
        f"{grad_norm:.2g}, train accuracy {acc:.3f}; lambda unknown (reference: an "
        "exact sampler)"
    )
    return ZooModel(
        f"digits_mlp_{tag}_{activation}", post, None, w_star, None, dim, desc
    )


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__len__"):
        raise TypeError(
            f"hidden must be a tuple of hidden-layer widths, e.g. (16,), got {hidden!r}."
        )
    if len(hidden) == 0:
        raise ValueError(
            "hidden must have at least one width, e.g. (16,); with none the model is "
            "multinomial logistic regression."
        )
    return tuple(_validate.check_int(f"hidden[{i}]", h) for i, h in enumerate(hidden))


def _check_activation(activation) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
        )


__all__ = ["digits_mlp", "load_digits_data", "mlp_apply", "mlp_loglik"]
