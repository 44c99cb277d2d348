"""Request and response bodies at the edge, typed. Limits that depend on settings are checked in the routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _encodable(text: str) -> str:
    # JSON can carry lone UTF-16 surrogates ("\ud800"); they cannot be encoded, stored or tokenized.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired UTF-16 surrogate; send valid Unicode") from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class TextPart(BaseModel):
    """A text part of a multi-modal moderation input, as OpenAI's ``omni-moderation`` models accept."""

    type: Literal["text"]
    text: Text


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: Any = None


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ModerationRequest(BaseModel):
    """OpenAI's moderation request: ``input`` is a string, a list of strings or a list of parts."""

    model_config = ConfigDict(extra="ignore")

    input: Text | list[Text] | list[Part]
    model: str | None = Field(None, description="a guard from GET /v1/models [default: the server's guard]")


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]
    railguard: dict[str, Any] = Field(description="the full verdict, as POST /v1/guard returns it")


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]


class GuardItem(BaseModel):
    """One input to the native endpoint: a prompt, optionally the model's response and context documents."""

    model_config = ConfigDict(extra="forbid")

    prompt: Text
    response: Text | None = None
    context: Text | list[Text] | None = Field(None, description="documents the model reads (retrieved text, tool output)")
    id: Annotated[str, Field(max_length=256)] | int | None = Field(None, description="echoed back in the verdict")


GuardRequest = list[GuardItem] | GuardItem


class VerdictOut(BaseModel):
    """The verdict JSON of ``railguard check --json``."""

    flagged: bool
    prompt_harmful: bool | None
    response_harmful: bool | None
    refusal: bool | None
    jailbreak: bool | None
    injection: bool | None
    scores: dict[str, float]
    categories: dict[str, float]
    tier: str
    latency_ms: float
    error: str | None
    id: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "railguard"
    description: str = ""
    default: bool = False


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
