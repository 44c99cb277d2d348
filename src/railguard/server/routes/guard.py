"""``POST /v1/guard``: the native endpoint. One item or a list in; one verdict per item out, in order.

Each verdict is the JSON of ``railguard check --json``. ``?model=NAME`` picks a guard from ``/v1/models``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...types import GuardInput
from ..deps import KeyIdDep, RuntimeDep
from ..errors import APIError
from ..media import check_media, decode
from ..schemas import GuardItem, GuardRequest, VerdictOut
from ..settings import ServerSettings
from .limits import check_items, check_text

router = APIRouter(tags=["guard"])


def _to_input(item: GuardItem, settings: ServerSettings, index: int | None) -> GuardInput:
    where = "" if index is None else f"[{index}]"
    prompt = item.prompt or ""
    check_text(prompt, settings, param=f"{where}.prompt".lstrip("."))
    if item.response is not None:
        check_text(item.response, settings, param=f"{where}.response".lstrip("."))
    context = (item.context,) if isinstance(item.context, str) else tuple(item.context or ())
    for j, doc in enumerate(context):
        check_text(doc, settings, param=f"{where}.context[{j}]".lstrip("."))
    images = tuple(decode(b64, kind="image", param=f"{where}.images[{j}]".lstrip("."),
                          limit=settings.media.max_image_bytes) for j, b64 in enumerate(item.images or ()))
    audio = tuple(decode(b64, kind="audio", param=f"{where}.audio[{j}]".lstrip("."),
                         limit=settings.media.max_audio_bytes) for j, b64 in enumerate(item.audio or ()))
    return GuardInput(prompt=prompt, response=item.response, context=context,
                      id=None if item.id is None else str(item.id), images=images, audio=audio)


@router.post("/v1/guard", response_model=list[VerdictOut], response_model_exclude_unset=True)
async def guard(body: GuardRequest, runtime: RuntimeDep, key_id: KeyIdDep, model: str | None = None
                ) -> JSONResponse:
    items = body if isinstance(body, list) else [body]
    settings = runtime.settings
    check_items(len(items), settings, param=None)
    if not items:
        raise APIError(422, "the request holds no items; send one {\"prompt\": ...} or a list of them",
                       code="invalid_value")
    inputs = [_to_input(item, settings, i if isinstance(body, list) else None) for i, item in enumerate(items)]
    await check_media(inputs, settings, [f"[{i}]" if isinstance(body, list) else "" for i in range(len(inputs))])
    decision = await runtime.decide(inputs, model=model, endpoint="guard", key_id=key_id)
    # Returned as-is so the JSON is byte-for-byte the CLI's verdict schema (key order included).
    return JSONResponse([v.to_dict() for v in decision.verdicts], headers={"X-Request-ID": decision.request_id})
