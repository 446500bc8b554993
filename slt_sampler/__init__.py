"""slt_sampler: singular learning theory as statistical mechanics, in JAX."""
