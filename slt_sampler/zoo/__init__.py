"""Models whose learning coefficient is known exactly, ready for ``estimate_llc``.

``zoo.regular``, ``zoo.reduced_rank``, ``zoo.deep_linear``, ``zoo.linear_network`` and
``zoo.monomial_regression`` build a :class:`ZooModel` (data, posterior, w*, exact
(λ, m)); :mod:`slt_sampler.zoo.coefficients` has the exact coefficients and free
energies on their own.
"""

from . import coefficients as coefficients
from .models import ZooModel as ZooModel
from .models import balanced_minimiser as balanced_minimiser
from .models import deep_linear as deep_linear
from .models import linear_network as linear_network
from .models import minimise as minimise
from .models import monomial_regression as monomial_regression
from .models import param_count as param_count
from .models import reduced_rank as reduced_rank
from .models import regular as regular

__all__ = [
    "ZooModel",
    "balanced_minimiser",
    "coefficients",
    "deep_linear",
    "linear_network",
    "minimise",
    "monomial_regression",
    "param_count",
    "reduced_rank",
    "regular",
]
