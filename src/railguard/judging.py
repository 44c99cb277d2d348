"""Old import path of :mod:`railguard.batch.core`."""

from .batch.core import judged_batches

__all__ = ["judged_batches"]
