r"""Equilibrium propagation (EP): energy-based networks trained by free and nudged phases.

EP (Scellier & Bengio 2017) settles a network to a minimum of its energy :math:`E`
(free phase), settles again with the output nudged toward the target by adding
:math:`\nu C` (nudged phase), and estimates the gradient of the fixed-point loss
:math:`L(\theta) = C(s^*_0(\theta))` from the energy's parameter-gradients,

.. math::

    \hat g_{\text{one-sided}} = \frac{1}{\nu}\Big[\partial_\theta \bar E(s^*_{\nu})
        - \partial_\theta \bar E(s^*_{0})\Big], \qquad
    \hat g_{\text{symmetric}} = \frac{1}{2\nu}\Big[\partial_\theta \bar E(s^*_{\nu})
        - \partial_\theta \bar E(s^*_{-\nu})\Big],

with bars denoting batch means. :math:`\hat g \to \nabla_\theta L` as
:math:`\nu \to 0` (bias :math:`O(\nu)` one-sided, :math:`O(\nu^2)` symmetric), so
:math:`\hat g` is handed to an optax optimizer like a gradient (descent direction
:math:`-\hat g`). The nudging strength is called ``nudge`` (:math:`\nu`), never
``beta``: :math:`\beta` is the posterior's inverse temperature in this package.

Variants (``variant=``):

* ``"one_sided"`` -- free phase and one phase at :math:`+\nu`.
* ``"symmetric"`` -- phases at :math:`+\nu` and :math:`-\nu` (Laborieux et al. 2021).
* ``"centered"`` -- one-sided with a random sign :math:`\sigma = \pm 1` drawn from the
  step's ``rng_key`` (Scellier & Bengio's original code): :math:`\hat g =
  [\partial_\theta \bar E(s^*_{\sigma\nu}) - \partial_\theta \bar E(s^*_0)]/(\sigma\nu)`,
  whose expectation is the symmetric estimate, i.e. centred to :math:`O(\nu^2)`.

In every variant ``nudge`` is the magnitude and must be positive.

Relaxation is projected gradient descent on the states inside ``lax.while_loop``
with a tolerance on :math:`\max|\Delta s|` and a step cap, from zero states
(``init_mode="zero"``) or from the energy's bottom-up pass (``"fast"``); layers move
together (``schedule="synchronous"``) or odd-then-even (``"alternating"``, exact block
minimisation for ``RestrictedHopfield`` at ``step_size=1``). A step that would raise
the energy is rejected and halved, so energy traces never increase. Nudged phases start
from the free fixed point. Nothing here calls ``jax.jit`` except the :func:`fit`
driver. Every phase reports its energy trace, residual and a ``converged`` flag in
``Info``; :func:`fit` warns when any phase hit its cap.

Recipes that meet the digits targets (see ``studies/ep_vs_backprop``):

* ``RestrictedHopfield((64, 64, 10))``: ``variant="centered", nudge=0.5,
  schedule="alternating", step_size=1.0, max_steps=500``, SGD 0.1 / 0.05 per layer.
* ``ConditionalGaussian((64, 64, 10))``: ``variant="symmetric", nudge=0.1,
  init_mode="fast", schedule="alternating", step_size=0.5``, SGD 0.1 momentum 0.9.

Examples
--------
>>> import jax, optax
>>> from slt_sampler.thermo import ep
>>> net = ep.RestrictedHopfield((64, 32, 10))
>>> kernel = ep.build_kernel(net, optax.sgd(0.1), variant="symmetric")
>>> state = ep.init(net.init_params_fn(jax.random.key(0)), optax.sgd(0.1))
>>> x, t = jax.numpy.full((8, 64), 0.5), jax.nn.one_hot(jax.numpy.arange(8), 10)
>>> state, info = jax.jit(kernel)(jax.random.key(1), state, x, t, 0.2, 0.5, 1e-4)
>>> bool(info.converged), int(state.step)
(True, 1)
"""

from ._ep_core import (
    EPAlgorithm,
    EPInfo,
    EPState,
    as_top_level_api,
    build_gradient_fn,
    build_kernel,
    init,
    initial_layers,
    predict,
    warn_if_unconverged,
)
from ._ep_energies import (
    ConditionalGaussian,
    Energy,
    RestrictedHopfield,
    cross_entropy,
    glorot_params,
    hard_sigmoid,
    squared_error,
)
from ._ep_relax import (
    ReferenceInfo,
    RelaxInfo,
    reference_gradient,
    relax,
)
from ._ep_train import (
    Dataset,
    EPConfig,
    FitResult,
    History,
    fit,
    load_digits_split,
)

__all__ = [
    "ConditionalGaussian",
    "Dataset",
    "EPAlgorithm",
    "EPConfig",
    "EPInfo",
    "EPState",
    "Energy",
    "FitResult",
    "History",
    "ReferenceInfo",
    "RelaxInfo",
    "RestrictedHopfield",
    "as_top_level_api",
    "build_gradient_fn",
    "build_kernel",
    "cross_entropy",
    "fit",
    "glorot_params",
    "hard_sigmoid",
    "init",
    "initial_layers",
    "load_digits_split",
    "predict",
    "reference_gradient",
    "relax",
    "squared_error",
    "warn_if_unconverged",
]
