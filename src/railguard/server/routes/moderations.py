"""``POST /v1/moderations``: OpenAI's moderation endpoint, answered by a railguard guard.

Category names and scores are OpenAI's, mapped from our taxonomy by :func:`railguard.taxonomy.to_openai`.
``results[].flagged`` is the verdict's own decision; it also covers jailbreaks and prompt injections,
which have no OpenAI category, so a result can be flagged with every category false. A category is true
when the verdict is flagged and either its score is at least ``CATEGORY_SCORE``, or the verdict found
harm (prompt or response) and this category scores highest, so that every harm flag names a category.
The full verdict rides along under ``railguard`` (the openai client keeps unknown fields).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ...taxonomy import OPENAI_CATEGORIES, to_openai
from ...types import GuardInput, Verdict
from ..deps import KeyIdDep, RuntimeDep
from ..errors import APIError
from ..media import applied_input_types, check_media, decode
from ..schemas import AudioPart, ImagePart, ModerationRequest, ModerationResponse, ModerationResult, TextPart
from .limits import check_items, check_text

router = APIRouter(tags=["moderations"])

CATEGORY_SCORE = 0.5
_APPLIED_INPUT_TYPES = {name: ["text"] for name in OPENAI_CATEGORIES}


def moderation_result(verdict: Verdict) -> ModerationResult:
    scores = to_openai(verdict.categories)
    harm = bool(verdict.prompt_harmful or verdict.response_harmful)
    top = max(scores, key=scores.__getitem__) if any(scores.values()) else None
    categories = {name: verdict.flagged and (score >= CATEGORY_SCORE or (harm and name == top))
                  for name, score in scores.items()}
    applied = (applied_input_types(verdict, categories, CATEGORY_SCORE)
               if any(r.extraction is not None for r in verdict.explanation or ()) else _APPLIED_INPUT_TYPES)
    return ModerationResult(flagged=verdict.flagged, categories=categories,
                            category_scores={k: round(v, 6) for k, v in scores.items()},
                            category_applied_input_types=applied, railguard=verdict.to_dict())


def _texts(body: ModerationRequest) -> list[str]:
    if isinstance(body.input, str):
        return [body.input]
    if not body.input:
        raise APIError(422, "'input' is an empty list; send at least one text", code="invalid_value", param="input")
    return [part if isinstance(part, str) else part.text for part in body.input]


def _multimodal(body: ModerationRequest, settings) -> GuardInput | None:
    """OpenAI's multi-modal form: a list of parts with an image (or audio) is ONE input, with one result."""
    if isinstance(body.input, str) or not any(isinstance(p, ImagePart | AudioPart) for p in body.input):
        return None
    texts, images, audio = [], [], []
    for i, part in enumerate(body.input):
        param = f"input[{i}]"
        if isinstance(part, TextPart):
            check_text(part.text, settings, param=f"{param}.text")
            texts.append(part.text)
        elif isinstance(part, ImagePart):
            url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
            images.append(decode(url, kind="image", param=f"{param}.image_url", limit=settings.media.max_image_bytes))
        else:
            audio.append(decode(part.input_audio.data, kind="audio", param=f"{param}.input_audio",
                                limit=settings.media.max_audio_bytes))
    return GuardInput(prompt="\n".join(texts), images=tuple(images), audio=tuple(audio))


@router.post("/v1/moderations", response_model=ModerationResponse)
async def create_moderation(body: ModerationRequest, runtime: RuntimeDep, key_id: KeyIdDep) -> Response:
    settings = runtime.settings
    item = _multimodal(body, settings)
    if item is not None:
        await check_media([item], settings, ["input"])
        inputs = [item]
    else:
        texts = _texts(body)
        check_items(len(texts), settings, param="input")
        for i, text in enumerate(texts):
            check_text(text, settings, param="input" if isinstance(body.input, str) else f"input[{i}]")
        inputs = [GuardInput(prompt=t) for t in texts]
    decision = await runtime.decide(inputs, model=body.model, endpoint="moderations", key_id=key_id)
    answer = ModerationResponse(id=f"modr-{decision.request_id}", model=decision.model,
                                results=[moderation_result(v) for v in decision.verdicts])
    # Encoded once, by pydantic (the response_model above is the schema /docs shows; FastAPI does not encode again).
    return Response(answer.model_dump_json(), media_type="application/json",
                    headers={"X-Request-ID": decision.request_id})
