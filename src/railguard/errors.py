"""Every user-facing failure is a RailguardError subclass with a message that says what to do."""

from __future__ import annotations


class RailguardError(Exception):
    """Base class of all errors railguard raises on purpose."""


class InputError(RailguardError, ValueError):
    """A GuardInput or an input file is malformed."""


class MediaError(InputError):
    """An image or audio clip cannot be read: missing, corrupt, an unsupported format, or over a size limit.

    ``code`` names the problem (``unreadable``, ``unsupported_format``, ``corrupt``, ``too_large``,
    ``too_long``) so that the server can answer 400 or 413.
    """

    def __init__(self, message: str, *, code: str = "corrupt", source: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.code = code
        self.source = source


class ConfigError(RailguardError):
    """A setting, a guard name or a path is wrong."""


class GuardContractError(ConfigError):
    """A guard broke the Guard protocol: it did not answer one verdict per input (a bug in that guard)."""


class ModelError(RailguardError):
    """A model artifact is missing, corrupt or does not match its manifest."""


class MissingExtraError(RailguardError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, package: str) -> None:
        super().__init__(
            f"this feature needs the '{package}' package: pip install 'railguard[{extra}]'"
        )
        self.extra = extra
        self.package = package


def require(module: str, extra: str):
    """Import an optional dependency, turning its absence into a clear install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # the extra is not installed
        raise MissingExtraError(extra, module.split(".")[0]) from exc


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it (a module set to None in sys.modules
    counts as missing, as it does for ``import``)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
