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
from ..schemas import ModerationRequest, ModerationResponse, ModerationResult, TextPart
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
    return ModerationResult(flagged=verdict.flagged, categories=categories,
                            category_scores={k: round(v, 6) for k, v in scores.items()},
                            category_applied_input_types=_APPLIED_INPUT_TYPES, railguard=verdict.to_dict())


def _texts(body: ModerationRequest) -> list[str]:
    if isinstance(body.input, str):
        return [body.input]
    if not body.input:
        raise APIError(422, "'input' is an empty list; send at least one text", code="invalid_value", param="input")
    texts = []
    for i, part in enumerate(body.input):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, TextPart):
            texts.append(part.text)
        else:
            raise APIError(400, "image inputs are not supported by this server; send text parts only",
                           code="unsupported_input_type", param=f"input[{i}]")
    return texts


@router.post("/v1/moderations", response_model=ModerationResponse)
async def create_moderation(body: ModerationRequest, runtime: RuntimeDep, key_id: KeyIdDep,
                            response: Response) -> ModerationResponse:
    texts = _texts(body)
    settings = runtime.settings
    check_items(len(texts), settings, param="input")
    for i, text in enumerate(texts):
        check_text(text, settings, param="input" if isinstance(body.input, str) else f"input[{i}]")
    decision = await runtime.decide([GuardInput(prompt=t) for t in texts], model=body.model,
                                    endpoint="moderations", key_id=key_id)
    response.headers["X-Request-ID"] = decision.request_id
    return ModerationResponse(id=f"modr-{decision.request_id}", model=decision.model,
                              results=[moderation_result(v) for v in decision.verdicts])
