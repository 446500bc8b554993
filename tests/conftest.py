"""Shared pytest configuration.

Tests run on whatever device JAX finds (CPU here, GPU when present): nothing here pins
a platform. On CPU every core is exposed as a JAX device (unless XLA_FLAGS is already
set), so multi-chain tests exercise sharding and run chains in parallel. Seeds are fixed
integers, never dates.
"""

import os

os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
)

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
