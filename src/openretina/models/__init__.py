"""Complete, trainable models (Lightning modules) built from cores and readouts."""
