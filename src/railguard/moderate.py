"""Old import path of :mod:`railguard.batch.local`."""

from .batch.local import ENGINES, GuardSpec, ModerateSummary, guard_factory, moderate_dataset, moderate_file

__all__ = ["ENGINES", "GuardSpec", "ModerateSummary", "guard_factory", "moderate_dataset", "moderate_file"]
