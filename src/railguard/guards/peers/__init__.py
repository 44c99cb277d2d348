"""Other people's guards, run side by side with ours: ``peer:NAME[?key=value]``.

Each peer is one small module here with a ``build(**options) -> Guard`` function; adding a peer is
one module and one line in ``PEERS``. A peer's package is imported only when the peer is built, and
a missing package is a MissingExtraError that names the peer's extra (``pip install 'railguard[peers]'``
for svguardian, ``railguard[peers-metatron]`` and ``railguard[peers-profanity]`` for the others).
Options go after ``?`` (``peer:metatron?batch_size=8``) or as keyword options of ``load_guard``.
"""

from __future__ import annotations

import importlib

from ...errors import ConfigError
from ...guard import Guard
from ...registry import register
from .. import spec

#: Peer name -> the module that builds it.
PEERS: dict[str, str] = {
    "svguardian": "railguard.guards.peers.svguardian",
    "metatron": "railguard.guards.peers.metatron",
    "profanity": "railguard.guards.peers.profanity",
}


@register("peer", "a guard from another project, run here: " + ", ".join(f"peer:{p}" for p in PEERS),
          extra="peers", modules=("svguardian",), argument=True)
def _peer(argument: str | None = None, **options) -> Guard:
    if not argument:
        raise ConfigError(f"name the peer guard, e.g. peer:svguardian; known peers: {', '.join(PEERS)}")
    target, given = spec.split(argument, kind="peer", example="peer:svguardian")
    module = PEERS.get(target)
    if module is None:
        raise ConfigError(f"unknown peer guard '{target}'; known peers: {', '.join(PEERS)}")
    return importlib.import_module(module).build(**(given | options))
