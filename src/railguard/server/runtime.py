"""What a running server holds: its settings, its guards (each behind a micro-batcher), keys and audit store.

Created by the app's lifespan and reached by routes through dependency injection (``deps.py``), so tests
build as many independent servers as they like and nothing is patched.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from .. import load, registry
from ..audit import AuditRecord, AuditStore, make_record, open_store
from ..config import CoreSettings, Settings
from ..errors import MissingExtraError, RailguardError
from ..guard import Guard, check_steps
from ..types import GuardInput, Verdict
from .auth import KeyRing
from .batcher import BatchTimeout, MicroBatcher, OverBudget, Starved
from .errors import SERVER_ERROR, APIError
from .settings import ServerSettings

log = logging.getLogger(__name__)

# OpenAI's own model names, accepted so that code written for OpenAI's endpoint runs unchanged.
OPENAI_MODEL_PREFIXES = ("omni-moderation", "text-moderation")
AUDIT_WINDOW_S = 0.001
# Reading an image (OCR) or a clip (speech to text) costs about what a text of this many characters does.
MEDIA_COST_CHARS = 8192


class GuardService:
    """One guard behind a fair micro-batcher, with the server's fail-closed (or fail-open) policy."""

    def __init__(self, name: str, guard: Guard, settings: ServerSettings) -> None:
        self.name = name
        self.guard = guard
        self.fail_open = settings.fail_open
        self.batcher: MicroBatcher[GuardInput, Verdict] = MicroBatcher(
            guard.check, window_s=settings.batch_window_ms / 1000.0, max_size=settings.max_batch_size,
            timeout_s=settings.guard_timeout_s, request_timeout_s=settings.request_timeout_s, cost=input_cost,
            chunk_cost=settings.batch_chunk_chars, light_cost=settings.light_request_chars,
            owner_budget=settings.max_key_chars_waiting, name=f"guard-{name.split(':')[0]}",
            steps=lambda batch: check_steps(guard, batch, max_windows=settings.batch_step_windows))

    async def judge(self, inputs: Sequence[GuardInput], *, key_id: str | None = None) -> list[Verdict]:
        """One verdict per input; a guard that raises or times out gives failed verdicts, never an exception.

        Fail-open is for a guard that is broken (it raised, or one call ran past its timeout). A request that ran
        out of time waiting behind other requests' work fails closed whatever the setting: otherwise anyone could
        switch the guard off for everyone by sending heavy requests. ``key_id`` shares the caller's turn and its
        budget of waiting work (429 over it) with its other requests.
        """
        fail_open = self.fail_open
        try:
            return await self.batcher.submit(inputs, owner=key_id)
        except OverBudget:
            raise APIError(429, f"this API key already has {self.batcher.owner_budget:,} characters of work waiting "
                                "for the guard; wait for those answers before sending more",
                           code="rate_limit_exceeded", type="requests") from None
        except Starved:
            fail_open = False
            reason = (f"guard '{self.name}' timed out waiting behind other requests "
                      f"({self.batcher.request_timeout_s:g} s); the guard is busy, not broken")
        except BatchTimeout:
            reason = f"guard '{self.name}' timed out after {self.batcher.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - any backend failure becomes a visible, failed verdict
            # Only the type: an exception message may quote the user's text.
            log.warning("guard %s failed: %s", self.name, type(exc).__name__)
            reason = f"guard '{self.name}' failed ({type(exc).__name__})"
        policy = "fail-open: not flagged" if fail_open else "fail-closed: flagged"
        tier = self.guard.name or self.name
        return [Verdict.failed(f"{reason}; {policy}", tier=tier, id=x.id, flagged=not fail_open) for x in inputs]


def input_cost(x: GuardInput) -> int:
    """What judging one input costs, in characters of text; an image or a clip counts as a long text."""
    chars = len(x.prompt) + len(x.response or "") + sum(len(doc) for doc in x.context)
    return chars + MEDIA_COST_CHARS * (len(x.images) + len(x.audio))


def _missing_extra(name: str) -> str | None:
    """The extra a configured guard name (its members too, for a cascade) still needs here, if any."""
    try:
        return registry.name_missing_extra(name)
    except RailguardError:  # not a registry kind, or a bad argument: its load says what is wrong
        return None


def _not_installed(model: str, extra: str, known: str) -> APIError:
    return APIError(404, f"the guard '{model}' is not installed on this server: its operator can add it with "
                         f"pip install 'railguard[{extra}]'; available: {known}",
                    code="model_not_available", param="model")


@dataclass(frozen=True, slots=True)
class Decision:
    request_id: str
    model: str
    verdicts: list[Verdict]


class Runtime:
    """The server's state between start-up and shutdown."""

    def __init__(self, settings: ServerSettings, *, guard: Guard | None = None, store: AuditStore | None = None,
                 core: CoreSettings | None = None) -> None:
        self.settings = settings
        #: the settings tree the server's guards are built with: its media limits, ``core`` (from the environment,
        #: now, unless given) and the server's own
        self.tree = Settings(core=core if core is not None else CoreSettings.from_env(), media=settings.media,
                             server=settings)
        self.keys = KeyRing(k.get_secret_value() for k in settings.api_keys)
        self._given_guard = guard
        self._given_store = store
        self.store: AuditStore | None = None
        self.services: dict[str, GuardService] = {}
        self.audit: MicroBatcher[AuditRecord, None] = MicroBatcher(
            self._write_audit, window_s=AUDIT_WINDOW_S, max_size=4096, timeout_s=None, name="audit")
        self._salt = b""
        self._load_lock = asyncio.Lock()
        self.ready = False

    @property
    def default(self) -> GuardService:
        return self.services[self.settings.guard]

    async def start(self) -> None:
        await self.audit.start()
        self.store = self._given_store or await self.audit.run_alone(lambda: open_store(self.settings.audit_url))
        salt = self.settings.audit_salt
        self._salt = salt.get_secret_value().encode("utf-8") if salt else await self.audit.run_alone(self.store.salt)
        guard = self._given_guard or await asyncio.to_thread(
            load.resolve, self.settings.guard, policy=self.settings.policy, settings=self.tree)
        await self._add(self.settings.guard, guard)
        self.ready = True
        log.info("serving guard %s; audit store %s; %s", self.settings.guard, self.store.url,
                 f"{len(self.settings.api_keys)} API key(s)" if self.keys.enabled else "no API keys")

    async def stop(self) -> None:
        self.ready = False
        for service in self.services.values():
            await service.batcher.stop()
        await self.audit.stop()
        if self.store is not None and self._given_store is None:
            self.store.close()

    async def _add(self, name: str, guard: Guard) -> GuardService:
        from ..media.guard import with_media

        guard = with_media(guard, self.settings.media)  # images and audio, with the server's limits
        service = GuardService(name, guard, self.settings)
        await service.batcher.start()
        self.services[name] = service
        return service

    def _write_audit(self, records: list[AuditRecord]) -> list[None]:
        if self.store is None:
            raise RailguardError("the audit store is not open")
        self.store.write(records)
        return [None] * len(records)

    def model_names(self) -> dict[str, str]:
        """Guards a request may name and this install can serve, with descriptions; the server's own guard first.

        A registry kind is listed only when its bare name can be built (``hf`` needs a path: the operator names
        one in ``models``) and its extra is installed."""
        names = {self.settings.guard: "the server's default guard"}
        for name in self.settings.models:
            if _missing_extra(name) is None:
                names.setdefault(name, "a guard configured on this server")
        for kind, description in registry.available().items():
            if not registry.needs(kind).argument and registry.missing_extra(kind) is None:
                names.setdefault(kind, description)
        return names

    async def service(self, model: str | None) -> GuardService:
        """The guard a request's ``model`` names (404 when it names none the server may run)."""
        if model is None or model == self.settings.guard or model.startswith(OPENAI_MODEL_PREFIXES):
            return self.default
        if model in self.services:
            return self.services[model]
        # Only bare registry kinds and the operator's `models`: a client's ``kind:argument`` could point the
        # server at arbitrary paths or hosts.
        if model in self.settings.models:
            if (extra := _missing_extra(model)) is not None:
                raise _not_installed(model, extra, ", ".join(self.model_names()))
        else:
            self._check_servable(model)
        async with self._load_lock:
            if model not in self.services:
                try:
                    guard = await asyncio.to_thread(load.resolve, model, settings=self.tree)
                except MissingExtraError as exc:  # a package only the load itself found missing (a peer's)
                    raise _not_installed(model, exc.extra, ", ".join(self.model_names())) from None
                except Exception as exc:  # noqa: BLE001 - a backend that cannot load is the server's problem, not the client's
                    log.warning("guard %s cannot be loaded: %s", model, type(exc).__name__)
                    detail = str(exc) if isinstance(exc, RailguardError) else type(exc).__name__
                    raise APIError(503, f"the model '{model}' cannot be loaded here: {detail}",
                                   code="model_unavailable", type=SERVER_ERROR, param="model") from None
                await self._add(model, guard)
        return self.services[model]

    def _check_servable(self, model: str) -> None:
        """404 for a name a client may not ask for here: unknown, needing an argument, or needing an extra."""
        known = ", ".join(self.model_names())
        kind, _, argument = model.partition(":")
        if kind not in registry.available():
            raise APIError(404, f"the model '{model}' does not exist on this server; available: {known}",
                           code="model_not_found", param="model")
        if argument or registry.needs(kind).argument:
            extra = _missing_extra(model)
            also = "" if extra is None else f", after pip install 'railguard[{extra}]'"
            raise APIError(404, f"the guard '{model}' is not configured on this server: a guard with an argument "
                                f"({kind}:...) is named by the server's operator (the models setting{also}); "
                                f"available: {known}", param="model",
                           code="model_not_found" if argument else "model_not_available")
        extra = registry.missing_extra(model)
        if extra is not None:
            raise _not_installed(model, extra, known)

    async def decide(self, inputs: Sequence[GuardInput], *, model: str | None, endpoint: str,
                     key_id: str | None) -> Decision:
        """Judge the inputs and make their audit rows durable before the caller answers."""
        received = time.time()
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        service = await self.service(model)
        cost = sum(input_cost(x) for x in inputs)
        if cost > self.settings.max_request_chars:
            raise APIError(413, f"the request holds {cost:,} characters of work (images and audio count "
                                f"{MEDIA_COST_CHARS:,} each); the limit is {self.settings.max_request_chars:,}: "
                                "split it into several requests", code="request_too_large")
        verdicts = await service.judge(inputs, key_id=key_id)
        latency_ms = (time.perf_counter() - start) * 1000.0
        records = self.records(inputs, verdicts, request_id=request_id, endpoint=endpoint, key_id=key_id,
                               guard=service.name, received=received, latency_ms=latency_ms)
        await self.write(records)
        log.info("%s request=%s key=%s guard=%s items=%d chars=%d flagged=%d errors=%d ms=%.1f", endpoint,
                 request_id, key_id or "-", service.name, len(inputs), sum(r.input_chars for r in records),
                 sum(v.flagged for v in verdicts), sum(v.error is not None for v in verdicts), latency_ms)
        return Decision(request_id=request_id, model=service.name, verdicts=verdicts)

    def records(self, inputs: Sequence[GuardInput], verdicts: Sequence[Verdict], *, request_id: str, endpoint: str,
                key_id: str | None, guard: str, received: float, latency_ms: float, first_item: int = 0,
                **proxy_fields: str | bool | None) -> list[AuditRecord]:
        """Audit rows for judged inputs; ``proxy_fields`` are the proxy's direction, upstream_called, stream_output."""
        return [make_record(item=x, verdict=v, index=first_item + i, request_id=request_id, endpoint=endpoint,
                            key_id=key_id, guard=guard, salt=self._salt, received=received, latency_ms=latency_ms,
                            store_text=self.settings.store_text, **proxy_fields)
                for i, (x, v) in enumerate(zip(inputs, verdicts))]

    async def write(self, records: Sequence[AuditRecord]) -> None:
        """Make audit rows durable; 503 when the store cannot take them (no answer without its audit row)."""
        try:
            await self.audit.submit(records)
        except Exception as exc:  # noqa: BLE001 - no answer without its audit row
            request_id = records[0].request_id if records else "-"
            log.error("audit write failed for request %s: %s", request_id, type(exc).__name__)
            raise APIError(503, "the audit log cannot be written; the decision was not returned",
                           code="audit_unavailable", type=SERVER_ERROR) from None

    async def readiness(self) -> list[str]:
        """Why the server is not ready (empty when it is): models loaded, no guard call stuck, store writable."""
        problems = []
        if not self.ready:
            problems.append("the guard is not loaded")
        for service in self.services.values():
            if service.batcher.stuck_for_s > 0:
                problems.append(f"guard '{service.name}' is stuck in a call past its timeout")
        if self.store is None:
            problems.append("the audit store is not open")
        else:
            try:
                await asyncio.wait_for(self.audit.run_alone(self.store.check_writable), timeout=5.0)
            except Exception as exc:  # noqa: BLE001 - reported as not ready
                problems.append(f"the audit store is not writable ({type(exc).__name__})")
        return problems
