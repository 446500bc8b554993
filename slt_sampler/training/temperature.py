"""The temperature of SGD: its stationary law near a minimum and the matched posterior.

Near a minimum ``w*`` of ``L_n`` with Hessian ``A``, SGD with learning rate η and
minibatches of ``B`` data drawn with replacement,
``w_{t+1} = w_t − η ∇L_B(w_t)``, has gradient noise of covariance ``C/B``, where
``C = Cov_i[∇ℓ_i(w*)]`` is the per-datum gradient covariance
(``ℓ_i = −log p(x_i | w)``). Treating the noise as Gaussian and η as small, the
iterates follow the Ornstein–Uhlenbeck process ``dw = −A(w − w*)dt + (η/B)^{1/2}
C^{1/2} dW`` in time ``t = ηk`` (Mandt, Hoffman & Blei 2017), whose stationary law is
Gaussian with covariance Σ solving the Lyapunov equation

.. math:: A\\Sigma + \\Sigma A = \\frac{\\eta}{B}\\, C.

(The exact discrete-time equation of SGD on a quadratic adds ``−ηAΣA`` on the left;
its relative effect is of order ``ηa/2`` for curvature ``a``.)

The tempered posterior ``p_β ∝ exp(−nβ L_n)`` is near ``w*`` Gaussian with covariance
``(nβA)^{-1}``. :func:`matched_beta` picks the β whose posterior has the same mean
excess loss (energy) as SGD: ``E[L_n − L_n(w*)] = ½ tr(AΣ)`` and the trace of the
Lyapunov equation gives ``tr(AΣ) = η tr(C) / (2B)``; under ``p_β`` the same quantity is
``d / (2nβ)``. Equating them,

.. math:: \\beta = \\frac{2 B\\, d}{n\\, \\eta\\, \\operatorname{tr} C}
          = \\frac{2B}{n\\eta\\, v}, \\qquad v = \\operatorname{tr}(C)/d .

This also minimises ``KL(SGD ‖ p_β)`` over β. With the Fisher identity ``C ≈ A``
(a well-specified regular model at its truth), Σ = (η/2B)·I, and Σ equals the posterior
covariance only where ``A`` is isotropic; otherwise the two agree in energy but not in
shape (Mandt et al.'s reason for preconditioning).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior, check_posterior, full_loss
from ..types import PyTree

__all__ = [
    "gradient_covariance",
    "gradient_variance",
    "loss_hessian",
    "matched_beta",
    "sgd_stationary_covariance",
]


def matched_beta(
    learning_rate: float, batch_size: int, n: int, *, gradient_variance: float
) -> float:
    """Inverse temperature β of the posterior matched to SGD(η, B) on ``L_n``.

    .. math:: \\beta = \\frac{2B}{n\\,\\eta\\,v}, \\qquad
              v = \\operatorname{tr}(C)/d,

    ``C`` the per-datum gradient covariance at the minimum (Mandt, Hoffman & Blei
    2017). With this β the tempered posterior ``p_β ∝ exp(−nβL_n)`` has the same
    mean excess loss ``E[L_n] − L_n(w*) = d/(2nβ)`` as SGD's stationary law.

    Assumptions: a constant learning rate, small enough that SGD stays in the
    quadratic basin of ``w*`` and the discrete-time correction ``O(ηa)`` is
    negligible; Gaussian gradient noise of covariance ``C/B`` (minibatches drawn with
    replacement), ``C`` evaluated at ``w*``; SGD at stationarity. With ``C ≈ A``
    (Fisher ≈ Hessian) ``v = tr(A)/d``; for a Gaussian model of unit noise and
    whitened inputs ``v = 1`` and β = 2B/(nη). At a singular minimum the formula
    is applied as it stands, with ``v`` from the degenerate ``C``: it is the
    regular-model matching, not a theorem there.

    Parameters
    ----------
    learning_rate
        η > 0 of ``w ← w − η ∇L_B``.
    batch_size
        B >= 1.
    n
        Number of data.
    gradient_variance
        ``v = tr(C)/d`` (:func:`gradient_variance`).

    Examples
    --------
    >>> matched_beta(0.01, 10, 1000, gradient_variance=1.0)
    2.0
    """
    _validate.check_scalar("learning_rate", learning_rate)
    _validate.check_positive("learning_rate", learning_rate, "SGD needs η > 0.")
    batch_size = _validate.check_int("batch_size", batch_size)
    n = _validate.check_int("n", n)
    if batch_size > n:
        raise ValueError(
            f"batch_size = {batch_size} is larger than n = {n}; a minibatch holds at "
            "most n data."
        )
    fix = "It is tr(C)/d, from slt_sampler.training.gradient_variance(posterior, w*)."
    _validate.check_scalar("gradient_variance", gradient_variance, fix)
    _validate.check_positive("gradient_variance", gradient_variance, fix)
    return 2.0 * batch_size / (n * float(learning_rate) * float(gradient_variance))


def _per_datum_grads(posterior: TemperedPosterior, params: PyTree, chunk_size: int):
    """Yield (b, d) float64 blocks of per-datum gradients of ``ℓ_i = −log p(x_i|w)``.

    Every block is computed at one shape (the last one padded, the padding dropped),
    so a call compiles once."""
    check_posterior(posterior)
    check_point(posterior, params, "params")
    chunk_size = min(_validate.check_int("chunk_size", chunk_size), posterior.n)
    flat, unravel = ravel_pytree(jax.tree.map(jnp.asarray, params))

    @jax.jit
    def grads(idx):
        def one(i):
            one_batch = jax.tree.map(lambda v: v[i][None], posterior.data)
            return jax.grad(lambda f: -posterior.loglik_fn(unravel(f), one_batch)[0])(
                flat
            )

        return jax.vmap(one)(idx)

    for lo in range(0, posterior.n, chunk_size):
        idx = np.arange(lo, lo + chunk_size)
        size = int(np.sum(idx < posterior.n))
        idx = np.where(idx < posterior.n, idx, 0)
        yield np.asarray(grads(jnp.asarray(idx)), np.float64)[:size]


def gradient_covariance(
    posterior: TemperedPosterior, params: PyTree, *, chunk_size: int = 4096
) -> np.ndarray:
    """Per-datum gradient covariance ``C = (1/n) Σ_i (g_i − ḡ)(g_i − ḡ)ᵀ``.

    ``g_i = ∇_w ℓ_i(w)`` at ``params``, flattened in ``ravel_pytree`` order; float64
    NumPy (d, d). The covariance of a minibatch gradient of ``B`` data drawn with
    replacement is exactly ``C/B``.
    """
    total, outer, count = 0.0, 0.0, 0
    for g in _per_datum_grads(posterior, params, chunk_size):
        total = total + g.sum(0)
        outer = outer + g.T @ g
        count += g.shape[0]
    mean = total / count
    return outer / count - np.outer(mean, mean)


def gradient_variance(
    posterior: TemperedPosterior, params: PyTree, *, chunk_size: int = 4096
) -> float:
    """``v = tr(C)/d``, the mean per-coordinate variance of per-datum gradients.

    Needs no d × d matrix (memory O(chunk_size · d)); the input of
    :func:`matched_beta`.
    """
    total, sq, count = 0.0, 0.0, 0
    for g in _per_datum_grads(posterior, params, chunk_size):
        total = total + g.sum(0)
        sq += float(np.sum(g**2))
        count += g.shape[0]
    mean = total / count
    return (sq / count - float(mean @ mean)) / mean.size


def loss_hessian(posterior: TemperedPosterior, params: PyTree) -> np.ndarray:
    """Hessian ``A = ∇²L_n`` at ``params`` (flattened, float64 NumPy (d, d))."""
    check_posterior(posterior)
    check_point(posterior, params, "params")
    flat, unravel = ravel_pytree(jax.tree.map(jnp.asarray, params))
    hess = jax.jit(jax.hessian(lambda f: full_loss(posterior, unravel(f))))(flat)
    return np.asarray(hess, np.float64)


def _square(name: str, value) -> np.ndarray:
    """A finite square (d, d) matrix as float64."""
    m = _validate.as_numbers(name, value)
    if m is None:
        raise TypeError(f"{name} must be a concrete (d, d) matrix, got {value!r}.")
    m = m.astype(np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.all(np.isfinite(m)):
        raise ValueError(
            f"{name} must be a finite square (d, d) matrix, got shape {m.shape}."
        )
    return m


def sgd_stationary_covariance(
    hessian,
    grad_noise_cov,
    learning_rate: float,
    batch_size: int,
    *,
    discrete: bool = False,
) -> np.ndarray:
    """Stationary covariance Σ of SGD near a minimum (Mandt, Hoffman & Blei 2017).

    Continuous time (the default) solves the Lyapunov equation

    .. math:: A\\Sigma + \\Sigma A = \\frac{\\eta}{B} C ;

    ``discrete=True`` solves the exact equation of SGD on the quadratic
    ``½(w − w*)ᵀA(w − w*)`` with noise ``C/B``,
    ``Σ = (I − ηA) Σ (I − ηA) + (η²/B) C``.

    Parameters
    ----------
    hessian
        ``A`` (d, d), symmetric positive definite (:func:`loss_hessian`).
    grad_noise_cov
        ``C`` (d, d) (:func:`gradient_covariance`).
    learning_rate, batch_size
        η > 0 and B >= 1; with ``discrete=True`` also η·λ_max(A) < 2 (beyond it SGD
        on the quadratic diverges and has no stationary law).

    Returns
    -------
    np.ndarray (d, d), float64.

    Examples
    --------
    >>> import numpy as np
    >>> sgd_stationary_covariance(np.eye(2), np.eye(2), 0.1, 5)
    array([[0.01, 0.  ],
           [0.  , 0.01]])
    """
    a = _square("hessian", hessian)
    c = _square("grad_noise_cov", grad_noise_cov)
    if a.shape != c.shape:
        raise ValueError(
            f"hessian {a.shape} and grad_noise_cov {c.shape} must have one shape."
        )
    eig_a = np.linalg.eigvalsh(0.5 * (a + a.T))
    if eig_a.min() <= 0:
        raise ValueError(
            "hessian must be positive definite (a regular minimum); at a singular "
            "minimum SGD has no Gaussian stationary law along the flat directions."
        )
    eig_c = np.linalg.eigvalsh(0.5 * (c + c.T))
    if eig_c.min() < -1e-10 * max(1.0, np.abs(eig_c).max()):
        raise ValueError(
            "grad_noise_cov must be a covariance (symmetric positive semi-definite), "
            f"got smallest eigenvalue {eig_c.min():.3g}. Pass gradient_covariance("
            "posterior, w*)."
        )
    _validate.check_scalar("learning_rate", learning_rate, "SGD needs η > 0.")
    _validate.check_positive("learning_rate", learning_rate, "SGD needs η > 0.")
    batch_size = _validate.check_int("batch_size", batch_size)
    eta = float(learning_rate)
    if discrete:
        if eta * eig_a.max() >= 2.0:
            raise ValueError(
                f"learning_rate η = {eta:.4g} is too large for discrete SGD: "
                f"η·λ_max(hessian) = {eta * eig_a.max():.4g} >= 2, where SGD on the "
                "quadratic diverges and has no stationary law. Use η < "
                f"{2.0 / eig_a.max():.4g}."
            )
        m = np.eye(len(a)) - eta * a
        return scipy.linalg.solve_discrete_lyapunov(m, eta**2 / batch_size * c)
    return scipy.linalg.solve_continuous_lyapunov(a, eta / batch_size * c)
