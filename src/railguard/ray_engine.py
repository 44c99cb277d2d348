"""Old import path of :mod:`railguard.batch.ray`."""

from .batch.ray import RowModerator, ShardModerator, moderate_ray_dataset, ray_batches, ray_session

__all__ = ["RowModerator", "ShardModerator", "moderate_ray_dataset", "ray_batches", "ray_session"]
