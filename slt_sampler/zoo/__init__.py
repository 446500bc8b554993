"""Models whose learning coefficient is known exactly, ready for ``estimate_llc``.

``zoo.regular``, ``zoo.reduced_rank``, ``zoo.deep_linear``, ``zoo.linear_network`` and
``zoo.monomial_regression`` build a :class:`ZooModel` (data, posterior, w*, exact
(λ, m)); :mod:`slt_sampler.zoo.coefficients` has the exact coefficients and free
energies on their own. :mod:`slt_sampler.zoo.conjugate` is a conjugate Gaussian
regression whose free energy, energies, entropy, WBIC and Bayes / Gibbs errors are all
exact (free energies need its normalised prior); :mod:`slt_sampler.zoo.quadrature` has
singular 1-D / 2-D regressions (``y = w^k x``, ``y = w1 w2 x``) with exact free
energies by quadrature. ``zoo.digits_mlp`` is an MLP trained on scikit-learn's digits
(unknown λ: its ground truth is an exact sampler's value at the same w*), and
:mod:`slt_sampler.zoo.bayes_linear` gives the linear networks a normalised prior for
free energies and temperature-based λ.
"""

from . import coefficients as coefficients
from .conjugate import ConjugateExact as ConjugateExact
from .conjugate import ConjugateRegression as ConjugateRegression
from .conjugate import conjugate_exact as conjugate_exact
from .conjugate import conjugate_regression as conjugate_regression
from .conjugate import energy_moments as energy_moments
from .conjugate import free_energy_exact as free_energy_exact
from .conjugate import log_q as log_q
from .conjugate import population_kl as population_kl
from .conjugate import posterior_sample as posterior_sample
from .conjugate import prior_sample as prior_sample
from .conjugate import wbic_exact as wbic_exact
from .digits import digits_mlp as digits_mlp
from .models import ZooModel as ZooModel
from .models import balanced_minimiser as balanced_minimiser
from .models import deep_linear as deep_linear
from .models import linear_network as linear_network
from .models import minimise as minimise
from .models import monomial_regression as monomial_regression
from .models import param_count as param_count
from .models import reduced_rank as reduced_rank
from .models import regular as regular
from .quadrature import QuadratureExact as QuadratureExact
from .quadrature import QuadratureModel as QuadratureModel
from .quadrature import power_regression as power_regression
from .quadrature import product_regression as product_regression
from .quadrature import quadrature_exact as quadrature_exact
from .quadrature import regression_from_data as regression_from_data
from .quadrature import wbic_quadrature as wbic_quadrature

__all__ = [
    "ConjugateExact",
    "ConjugateRegression",
    "QuadratureExact",
    "QuadratureModel",
    "ZooModel",
    "balanced_minimiser",
    "coefficients",
    "conjugate_exact",
    "conjugate_regression",
    "deep_linear",
    "digits_mlp",
    "energy_moments",
    "free_energy_exact",
    "linear_network",
    "log_q",
    "minimise",
    "monomial_regression",
    "param_count",
    "population_kl",
    "posterior_sample",
    "power_regression",
    "prior_sample",
    "product_regression",
    "quadrature_exact",
    "reduced_rank",
    "regression_from_data",
    "regular",
    "wbic_exact",
    "wbic_quadrature",
]
