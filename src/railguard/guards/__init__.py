"""Guard backends; each registers itself in :mod:`railguard.registry`."""
