r"""Continuous variant: amortised recognition q(z|x) and a linear-Gaussian generative
model p(x|z) p(z), trained by minimising the variational free energy (= -ELBO).

.. math::
    p(z) = \mathcal N(0, I_k), \quad p(x \mid z) = \mathcal N(W z + b, \sigma^2 I_d),
    \quad q(z \mid x) = \mathcal N(M x + c, L L^\top).

Here log p(x) and p(z|x) are exact, so the identity

.. math::
    F(x) = \mathbb{E}_q[-\log p(x\mid z)] + \mathrm{KL}(q \,\|\, p(z))
         = \mathrm{KL}(q \,\|\, p(z \mid x)) - \log p(x)

can be checked term by term (:func:`gaussian_free_energy` returns every term, each
computed by its own closed form). The posterior covariance of this model does not
depend on x, so a full-covariance amortised q can reach KL = 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._checks import check_array, check_int, check_key, check_real, check_type

Array = jax.Array
_FIX_X = "Pass data of shape (n, d) with d = model.W.shape[0]."
_LOG_2PI = 1.8378770664093453


class LinearGaussianModel(NamedTuple):
    """p(x|z) = N(W z + b, exp(2 log_noise) I): ``W`` (d, k), ``b`` (d,),
    ``log_noise`` scalar."""

    W: Array
    b: Array
    log_noise: Array


class Recognition(NamedTuple):
    """Amortised q(z|x) = N(M x + c, L L^T): ``M`` (k, d), ``c`` (k,), ``L_raw`` (k, k)
    whose strict lower triangle is used as is and whose diagonal is ``exp`` -ed."""

    M: Array
    c: Array
    L_raw: Array


class GaussianFreeEnergy(NamedTuple):
    """Per-datum terms (shape ``(n,)``). ``free_energy = energy + complexity`` (the
    -ELBO); ``kl_to_posterior`` and ``log_evidence`` come from the exact posterior and
    marginal, so ``free_energy + log_evidence - kl_to_posterior`` should be 0."""

    free_energy: Array
    energy: Array
    complexity: Array
    kl_to_posterior: Array
    log_evidence: Array


def _check_model(fn: str, model, x) -> tuple[int, int]:
    """``model`` a finite :class:`LinearGaussianModel`, ``x`` finite ``(n, d)``."""
    check_type(
        fn,
        "model",
        model,
        LinearGaussianModel,
        "a LinearGaussianModel",
        "Build it as LinearGaussianModel(W, b, log_noise) or with fit_amortised.",
    )
    W = check_array(fn, "model.W", model.W, ndim=2, layout="(d, k)")
    d, k = W.shape
    check_array(fn, "model.b", model.b, shape=(d,))
    check_array(fn, "model.log_noise", model.log_noise, shape=())
    check_array(fn, "x", x, shape=(None, d), fix=_FIX_X)
    return d, k


def _check_recognition(fn: str, rec, d: int, k: int) -> None:
    check_type(
        fn,
        "rec",
        rec,
        Recognition,
        "a Recognition",
        "Build it as Recognition(M, c, L_raw) or with fit_amortised.",
    )
    check_array(fn, "rec.M", rec.M, shape=(k, d))
    check_array(fn, "rec.c", rec.c, shape=(k,))
    check_array(fn, "rec.L_raw", rec.L_raw, shape=(k, k))


def _scale_tril(rec: Recognition) -> Array:
    L = jnp.tril(rec.L_raw, -1)
    return L + jnp.diag(jnp.exp(jnp.diag(rec.L_raw)))


def linear_gaussian_posterior(model: LinearGaussianModel, x: Array):
    """Exact ``(mean (n, k), cov (k, k), log p(x) (n,))`` for data ``x`` (n, d).

    Raises ``TypeError``/``ValueError`` for a wrong model type, shapes that do not
    fit ``W`` (d, k), or non-finite values."""
    _check_model("linear_gaussian_posterior", model, x)
    d, k = model.W.shape
    var = jnp.exp(2.0 * model.log_noise)
    precision = jnp.eye(k) + model.W.T @ model.W / var
    cov = jnp.linalg.inv(precision)
    cov = 0.5 * (cov + cov.T)
    mean = (x - model.b[None, :]) @ model.W @ cov / var
    marg_cov = model.W @ model.W.T + var * jnp.eye(d)
    chol = jnp.linalg.cholesky(marg_cov)
    resid = jax.scipy.linalg.solve_triangular(
        chol, (x - model.b[None, :]).T, lower=True
    )
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    log_px = -0.5 * (d * _LOG_2PI + logdet + jnp.sum(resid**2, axis=0))
    return mean, cov, log_px


def gaussian_free_energy(rec: Recognition, model: LinearGaussianModel, x: Array):
    r"""Closed-form free energy of q(z|x) under the linear-Gaussian model, per datum.

    energy :math:`= \frac d2\log(2\pi\sigma^2) + \frac{\|x - W\mu - b\|^2
    + \mathrm{tr}(W\Sigma W^\top)}{2\sigma^2}`; complexity :math:`=
    \frac12(\mathrm{tr}\,\Sigma + \|\mu\|^2 - k - \log|\Sigma|)`.

    Raises ``TypeError``/``ValueError`` for wrong types, shapes that do not fit
    ``W`` (d, k) or non-finite values.
    """
    d, k = _check_model("gaussian_free_energy", model, x)
    _check_recognition("gaussian_free_energy", rec, d, k)
    d, k = model.W.shape
    var = jnp.exp(2.0 * model.log_noise)
    mu = x @ rec.M.T + rec.c[None, :]
    L = _scale_tril(rec)
    cov = L @ L.T
    logdet_q = 2.0 * jnp.sum(jnp.diag(rec.L_raw))
    resid = x - mu @ model.W.T - model.b[None, :]
    energy = 0.5 * d * (_LOG_2PI + 2.0 * model.log_noise) + (
        jnp.sum(resid**2, axis=1) + jnp.trace(model.W @ cov @ model.W.T)
    ) / (2.0 * var)
    complexity = 0.5 * (jnp.trace(cov) + jnp.sum(mu**2, axis=1) - k - logdet_q)
    post_mean, post_cov, log_px = linear_gaussian_posterior(model, x)
    post_prec = jnp.linalg.inv(post_cov)
    dm = post_mean - mu
    _, logdet_p = jnp.linalg.slogdet(post_cov)
    kl = 0.5 * (
        jnp.trace(post_prec @ cov)
        + jnp.sum((dm @ post_prec) * dm, axis=1)
        - k
        + logdet_p
        - logdet_q
    )
    return GaussianFreeEnergy(energy + complexity, energy, complexity, kl, log_px)


def fit_amortised(
    rng_key: Array,
    x: Array,
    *,
    latent_dim: int,
    num_steps: int = 2000,
    learning_rate: float = 1e-2,
) -> tuple[Recognition, LinearGaussianModel, Array]:
    """Learn and perceive by one objective: minimise the mean F over ``x`` (n, d) with
    Adam, jointly over the recognition q(z|x) (amortised perception) and the
    generative model (learning). Returns both and the F history ``(num_steps,)``.
    Call it under ``jax.jit`` with static ``latent_dim``/``num_steps`` if repeated.

    Raises ``TypeError``/``ValueError`` for a bad key, ``x`` not a finite non-empty
    ``(n, d)`` float array, ``latent_dim``/``num_steps`` not ints >= 1 or a
    ``learning_rate`` that is not finite and > 0."""
    fn = "fit_amortised"
    check_key(fn, "rng_key", rng_key)
    x = check_array(fn, "x", x, ndim=2, layout="(n, d)", fix="Stack the data rows.")
    check_int(fn, "latent_dim", latent_dim, fix="E.g. latent_dim=2.")
    check_int(fn, "num_steps", num_steps, fix="E.g. num_steps=2000.")
    check_real(
        fn, "learning_rate", learning_rate, low=0.0, low_open=True, fix="E.g. 1e-2."
    )
    x = jnp.asarray(x)
    d = x.shape[1]
    k1, k2 = jax.random.split(rng_key)
    gen = LinearGaussianModel(
        0.1 * jax.random.normal(k1, (d, latent_dim)), jnp.zeros(d), jnp.zeros(())
    )
    rec = Recognition(
        0.1 * jax.random.normal(k2, (latent_dim, d)),
        jnp.zeros(latent_dim),
        jnp.zeros((latent_dim, latent_dim)),
    )
    opt = optax.adam(learning_rate)
    params = (rec, gen)
    loss = lambda p: jnp.mean(gaussian_free_energy(p[0], p[1], x).free_energy)

    def step(carry, _):
        params, opt_state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), history = jax.lax.scan(
        step, (params, opt.init(params)), None, length=num_steps
    )
    return params[0], params[1], history
