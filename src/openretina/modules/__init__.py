"""PyTorch building blocks: layers, cores, readouts and losses."""
