"""Request and response bodies at the edge, typed. Limits that depend on settings are checked in the routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


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


class ImageURL(BaseModel):
    url: str = Field(description="the image as a data URL: data:image/png;base64,...")


class ImagePart(BaseModel):
    """An image part, as OpenAI's ``omni-moderation`` models accept: ``{"type": "image_url", "image_url":
    {"url": "data:image/png;base64,..."}}`` (a bare string for ``image_url`` is accepted too)."""

    type: Literal["image_url"]
    image_url: ImageURL | str


class InputAudio(BaseModel):
    data: str = Field(description="the clip, base64")
    format: str | None = Field(None, description="wav, mp3, ... (the bytes themselves decide)")


class AudioPart(BaseModel):
    """An audio part in the form of OpenAI's chat API: ``{"type": "input_audio", "input_audio": {"data": ...}}``."""

    type: Literal["input_audio"]
    input_audio: InputAudio


Part = Annotated[TextPart | ImagePart | AudioPart, Field(discriminator="type")]


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

    prompt: Text | None = Field(None, description="the user's message (may be left out when images or audio are sent)")
    response: Text | None = None
    context: Text | list[Text] | None = Field(None, description="documents the model reads (retrieved text, tool output)")
    id: Annotated[str, Field(max_length=256)] | int | None = Field(None, description="echoed back in the verdict")
    images: list[str] | None = Field(None, description="images, each base64 or a data:image/...;base64, URL")
    audio: list[str] | None = Field(None, description="audio clips, each base64 or a data:audio/...;base64, URL")

    @model_validator(mode="after")
    def _prompt_or_media(self) -> GuardItem:
        if self.prompt is None and not self.images and not self.audio:
            raise ValueError("'prompt' is required (it may be left out only when 'images' or 'audio' are sent)")
        return self


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
