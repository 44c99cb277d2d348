"""Server settings: defaults < config file (YAML or TOML) < ``RAILGUARD_*`` environment < explicit overrides.

Every field is also an environment variable: ``port`` is ``RAILGUARD_PORT``, ``api_keys`` is
``RAILGUARD_API_KEYS`` (comma-separated), ``audit_url`` is ``RAILGUARD_AUDIT_URL``. The config file is named
by ``railguard serve --config FILE`` or ``RAILGUARD_CONFIG_FILE``; its keys are the field names below.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ..config import MEDIA_LIMITS, MediaSettings
from ..errors import ConfigError
from ..rails import DEFAULT_WINDOW, REFUSAL_MESSAGE, WindowSettings

ENV_PREFIX = "RAILGUARD_"


class ServerSettings(BaseSettings):
    """How ``railguard serve`` runs. Read once at start-up; frozen afterwards."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one)")
    workers: int = Field(1, ge=1, le=64, description="server processes; each loads its own model")
    guard: str = Field("default", min_length=1, description="the guard requests use unless they name another")
    policy: str | None = Field(
        None, description="policy for the server's guard: a preset (strict, children, ...) or a YAML file")
    models: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="more guards requests may name in 'model' (comma-separated), e.g. hf:/models/wildguard or "
                        "endpoint:http://localhost:8000/v1#meta-llama/Llama-Guard-3-8B; each loads on first use")
    batch_window_ms: float = Field(
        2.0, ge=0, le=1000, description="under load (a guard call already running), how long the first waiting "
                                        "request waits for others to share its call; an idle guard starts at once")
    max_batch_size: int = Field(64, ge=1, le=4096, description="most texts in one guard call")
    batch_chunk_chars: int = Field(
        4096, ge=1, description="most characters of one request in one guard call: a bigger request is judged in "
                                "chunks, taking turns with the other requests (one API key's requests share a turn)")
    light_request_chars: int = Field(
        2048, ge=0, description="requests of at most this many characters may also run on a second guard thread, "
                                "so they never wait behind a big request's chunk (0: one thread, for a guard "
                                "that cannot be called from two threads at once)")
    batch_step_windows: int = Field(
        2, ge=1, le=4096, description="most text windows (about 128 tokens each) the guard encodes at a time: a call "
                                      "is done in such steps, and between them a small request's call goes first, "
                                      "so a long text never holds the CPU for long")
    max_request_chars: int = Field(
        131_072, ge=1, description="most characters of text in one request, all its inputs together; an image or "
                                   "an audio clip counts 8,192 (else 413)")
    max_key_chars_waiting: int = Field(
        1_048_576, ge=1, description="most characters one API key may have waiting for the guard at once (else 429)")
    max_input_chars: int = Field(32_768, ge=1, description="longest accepted text, in characters (else 413)")
    max_items: int = Field(256, ge=1, description="most inputs in one request (else 413)")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body in bytes (else 413)")
    guard_timeout_s: float = Field(
        10.0, gt=0, description="a guard call (a step of one, see batch_step_windows) slower than this gives "
                                "failed verdicts instead of an answer")
    request_timeout_s: float = Field(
        30.0, gt=0, description="a request not judged within this time (waiting behind others included) gets "
                                "failed, flagged verdicts; its remaining work is dropped")
    fail_open: bool = Field(
        False, description="when a guard fails or one of its calls times out, answer not flagged instead of flagged "
                           "(fail-closed); never for a request that timed out waiting behind other requests")
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="keys accepted as 'Authorization: Bearer KEY'; none means no authentication")
    public_docs: bool = Field(
        False, description="serve /docs, /redoc and /openapi.json without a key even when api_keys are set")
    audit_url: str = Field("sqlite:///./railguard-audit.db",
                           description="audit store: sqlite:///PATH (WAL) or postgresql://USER@HOST/DB")
    audit_salt: SecretStr | None = Field(
        None, description="salt for the SHA-256 of audited texts (none: a random salt kept in the store)")
    store_text: bool = Field(False, description="keep the raw texts in the audit log (off: only hashes and lengths)")
    keep_alive_s: float = Field(5.0, gt=0, description="how long an idle keep-alive connection stays open")
    header_timeout_s: float = Field(
        10.0, gt=0, description="longest a client may take to send a request's headers (else the connection is closed)")
    body_timeout_s: float = Field(
        30.0, gt=0, description="longest a client may take to send a request's body, counted from its headers "
                                "(else 408 and the connection is closed)")
    max_header_bytes: int = Field(16_384, ge=1024, description="largest accepted request head (request line and "
                                                               "headers) in bytes (else the connection is closed)")
    max_connections: int = Field(
        1024, ge=1, description="most open connections and requests in progress per worker (over it: 503)")
    upstream_url: str | None = Field(
        None, description="an OpenAI-compatible LLM API (e.g. http://localhost:11434/v1): serve a guarding proxy with "
                          "input and output rails at /v1/chat/completions, /v1/completions and /v1/responses")
    upstream_passthrough: Annotated[tuple[str, ...], NoDecode] = Field(
        ("GET /v1/models", "GET /v1/models/*"),
        description="other /v1/* calls passed to the upstream unguarded, as 'METHOD /v1/path' patterns "
                    "(comma-separated, * matches anything), e.g. 'GET /v1/models,POST /v1/embeddings'; any other call "
                    "gets 403")
    proxy_max_chars: int = Field(
        2_097_152, ge=1, description="most characters of text the proxy judges in one request, all user turns and "
                                     "documents together (else 413): a text longer than max_input_chars is judged "
                                     "in overlapping pieces, the worst deciding, so 1 MiB of context fits")
    proxy_max_body_bytes: int = Field(
        8_388_608, ge=1024, description="largest request body of the proxy's railed routes in bytes (else 413)")
    proxy_recent_turns: int = Field(
        4, ge=1, le=64, description="how many of the last user turns the proxy also judges joined, so that a request "
                                    "split across turns is seen whole")
    upstream_api_key: SecretStr | None = Field(
        None, description="key sent to the upstream (none: the client's Authorization header is passed on, "
                          "unless it is a railguard API key)")
    upstream_timeout_s: float = Field(
        60.0, gt=0, description="longest wait for the upstream to connect, answer, or send the next stream chunk "
                                "(else 504)")
    stream_output: Literal["live", "window", "buffer"] = Field(
        "window", description="streamed answers: 'window' holds text back until a check covering it passed; "
                              "'live' relays at once and checks behind; 'buffer' checks the whole answer first")
    stream_check: Literal["sentence", "tokens"] = Field(
        DEFAULT_WINDOW.check, description="when a streamed answer is checked: at each sentence end, or every "
                                "stream_check_tokens tokens")
    stream_check_tokens: int = Field(
        DEFAULT_WINDOW.check_tokens, ge=1, le=4096, description="tokens (stream chunks) between checks; with stream_check=sentence, the most "
                                       "held back while a sentence has not ended")
    stream_partial_threshold: float = Field(
        DEFAULT_WINDOW.partial_threshold, ge=0, le=1, description="streamed answers: part of an answer is cut when its response-harm score "
                                     "reaches this (the whole answer is judged as unstreamed); halved when the "
                                     "prompt itself scored this high but was let through")
    stream_holdback_chars: int = Field(
        DEFAULT_WINDOW.holdback_chars, ge=0, le=100_000, description="window mode: text is released only once a passed check also covered "
                                           "this many characters after it (the rest comes at the end)")
    stream_first_window_chars: int = Field(
        16, ge=0, le=4096, description="window mode: the first check runs as soon as an answer has text; when it "
                                       "read at most this many characters and they score under half of "
                                       "stream_partial_threshold they are released at once, without the hold-back "
                                       "(else they wait for the next check; this check never cuts), so the first "
                                       "token waits for one check, not a sentence (0: off)")
    refusal_message: str = Field(
        REFUSAL_MESSAGE, min_length=1,
        description="the assistant message a client gets when a rail blocks the request or the answer")
    media: MediaSettings = Field(
        default_factory=MediaSettings.from_env,
        description="the media limits (max_image_bytes, max_image_pixels, max_audio_bytes, max_audio_seconds: "
                    "settings of their own name) and the readers' settings (RAILGUARD_OCR_SIDE, ...)")
    config_file: Path | None = Field(None, description="a YAML or TOML file with any of these settings")

    @model_validator(mode="before")
    @classmethod
    def _gather_media(cls, values: Any) -> Any:
        """The media limits come as settings of their own names (a flag, a config file key, RAILGUARD_MAX_...);
        they are checked here and held in ``media``, with the readers' settings from the environment."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        limits = {name: values.pop(name) for name in MEDIA_LIMITS if name in values}
        media = values.get("media")
        if limits or media is None:
            checked = _MediaLimits.model_validate(limits).model_dump(exclude_unset=True)
            base = MediaSettings.from_env() if media is None else media
            if isinstance(base, dict):
                base = MediaSettings(**base)
            values["media"] = dataclasses.replace(base, **checked)
        return values

    @field_validator("upstream_url")
    @classmethod
    def _check_upstream(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip().rstrip("/")
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL such as http://localhost:8080/v1")
        return value

    @field_validator("upstream_passthrough")
    @classmethod
    def _check_passthrough(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for entry in value:
            method, _, path = entry.strip().partition(" ")
            path = path.strip()
            if not method.isalpha() or not path.startswith("/v1/"):
                raise ValueError(f"{entry!r} must read 'METHOD /v1/path', e.g. 'POST /v1/embeddings'")
            out.append(f"{method.upper()} {path}")
        return tuple(out)

    @field_validator("api_keys", "models", "upstream_passthrough", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            keys = [k.strip() if isinstance(k, str) else k for k in value]
            return tuple(k for k in keys if k != "")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _MediaEnvSource(settings_cls),
                _ConfigFileSource(settings_cls, init_settings, env_settings))

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> ServerSettings:
        """Settings from the environment and ``config_file``; ``overrides`` (e.g. CLI flags) win over both.

        Overrides that are None are left out, so an unset CLI flag does not hide an environment variable.
        """
        values = {k: v for k, v in overrides.items() if v is not None}
        if config_file is not None:
            values["config_file"] = Path(config_file)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(f"bad server settings: {_describe(exc)}") from None

    @property
    def window(self) -> WindowSettings:
        """How streamed answers are checked (the ``stream_*`` settings), as :mod:`railguard.rails` reads it."""
        first_window = self.stream_first_window_chars if self.stream_output == "window" else 0
        return WindowSettings(check=self.stream_check, check_tokens=self.stream_check_tokens,
                              holdback_chars=self.stream_holdback_chars, partial_threshold=self.stream_partial_threshold,
                              first_window_chars=first_window)

    def describe(self) -> dict[str, Any]:
        """The settings as shown to an operator: secrets replaced by a count or a mark."""
        out = _flat_media(self.model_dump(mode="json"))
        out["api_keys"] = f"{len(self.api_keys)} key(s)"
        out["audit_salt"] = "set" if self.audit_salt else "kept in the store"
        out["upstream_api_key"] = "set" if self.upstream_api_key else "none"
        return out


def setting_help() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for ``railguard serve --help``."""
    rows = []
    for name, info in ServerSettings.model_fields.items():
        if name == "media":  # its limits, each a setting of its own
            rows += [(ENV_PREFIX + limit.upper(), str(getattr(MediaSettings(), limit)), description)
                     for limit, description in MEDIA_LIMITS.items()]
            continue
        default = info.get_default(call_default_factory=True)
        shown = "none" if default in (None, ()) else ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append((ENV_PREFIX + name.upper(), shown, info.description or ""))
    return rows


#: The media limits as the server checks them: a whole number at least 1, or a number above 0 (as
#: :meth:`MediaSettings.from_env` reads them); an error names the setting.
_MediaLimits = create_model("MediaLimits", **{
    name: (Annotated[int, Field(ge=1)] if isinstance(default, int) else Annotated[float, Field(gt=0)], default)
    for name, default in ((name, getattr(MediaSettings(), name)) for name in MEDIA_LIMITS)})


def _flat_media(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (the settings as a dict) with the media limits in ``media``'s place, as settings of their own."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "media":
            out.update({name: value[name] for name in MEDIA_LIMITS})
        else:
            out[key] = value
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown setting '{where}'")
        else:
            parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file as a dict; its format is chosen by the suffix (.yaml/.yml or .toml)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    elif suffix == ".toml":
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    else:
        raise ConfigError(f"config file {path} must end in .yaml, .yml or .toml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting names to values")
    if "config_file" in data:
        raise ConfigError(f"config file {path} cannot name another config file")
    return data


class _MediaEnvSource(PydanticBaseSettingsSource):
    """The media limits from ``RAILGUARD_MAX_IMAGE_BYTES`` and the others: above the config file, below overrides."""

    def get_field_value(self, field, field_name: str):  # unused: __call__ reads the limits at once
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        return {name: env[ENV_PREFIX + name.upper()] for name in MEDIA_LIMITS if ENV_PREFIX + name.upper() in env}


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The config file named by the overrides or by ``RAILGUARD_CONFIG_FILE``; below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                 env_settings: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._init, self._env = init_settings, env_settings

    def get_field_value(self, field, field_name: str):  # unused: __call__ reads the whole file at once
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._init().get("config_file") or self._env().get("config_file")
        return read_config_file(Path(path)) if path else {}
