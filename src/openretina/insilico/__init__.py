"""In-silico experiments on trained models: stimulus optimisation, tuning analyses, receptive fields."""
