"""Other people's guards, run side by side with ours: ``peer:NAME`` (``pip install 'railguard[peers]'``).

Each peer is one small module here with a ``build(**options) -> Guard`` function; adding a peer is
one module and one line in ``PEERS``. A peer's package is imported only when the peer is built, and
a missing package is a MissingExtraError that says ``pip install 'railguard[peers]'``.
"""

from __future__ import annotations

import importlib

from ...errors import ConfigError
from ...guard import Guard
from ...registry import register

#: Peer name -> the module that builds it.
PEERS: dict[str, str] = {
    "svguardian": "railguard.guards.peers.svguardian",
}


@register("peer", "a guard from another project, run here: " + ", ".join(f"peer:{p}" for p in PEERS),
          extra="peers", modules=("svguardian",), argument=True)
def _peer(argument: str | None = None, **options) -> Guard:
    if not argument:
        raise ConfigError(f"name the peer guard, e.g. peer:svguardian; known peers: {', '.join(PEERS)}")
    module = PEERS.get(argument)
    if module is None:
        raise ConfigError(f"unknown peer guard '{argument}'; known peers: {', '.join(PEERS)}")
    return importlib.import_module(module).build(**options)
