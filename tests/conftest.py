"""Shared pytest configuration.

Tests run on whatever device JAX finds (CPU here, GPU when present): nothing here pins
a platform. Seeds are fixed integers, never dates.
"""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
