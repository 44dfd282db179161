"""Data I/O: containers, dataloaders, the HDF5 layout, the synthetic retina and artificial stimuli."""
