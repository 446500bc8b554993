"""Type aliases shared across the package."""

from typing import Any

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array
PyTree = Any

__all__ = ["Array", "ArrayLike", "PRNGKey", "PyTree"]
