"""The tempered, localised posterior that samplers and estimators both read."""

from ._prior import check_proper_prior as check_proper_prior
from .base import TemperedPosterior as TemperedPosterior
from .base import default_beta as default_beta
from .base import tempered_posterior as tempered_posterior
from .subsample import nested_subsamples as nested_subsamples

__all__ = [
    "TemperedPosterior",
    "check_proper_prior",
    "default_beta",
    "nested_subsamples",
    "tempered_posterior",
]
