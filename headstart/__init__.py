"""Headstart: watch transfer learning beat training from scratch, with real training."""

__version__ = "0.1.0"
