"""Training: turning per-session dataloaders into Lightning inputs and fitting models."""

from openretina.training.loaders import CycledLoaders, cycle_session_loaders

__all__ = ["CycledLoaders", "cycle_session_loaders"]
