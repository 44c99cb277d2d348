"""``POST /v1/guard/actions``: how risky is an agent's proposed action, is its trajectory unsafe?

One item or a list: ``{"action": {"kind": "click", "target": "Place order", "url": ...}, "trajectory":
[{"role": "user", "content": ...}, ...], "id": ...}`` (either part may be left out, not both). The action may
be an LLM API's tool call as the model proposed it (a chat ``tool_calls`` entry, a Responses ``function_call``
item); its verdict's ``id`` is then ``name:call_id`` unless the item gives its own. Each answer
is the verdict JSON of ``railguard check-action --json``: ``action_risk`` (SAFE/LOW/HIGH) with
``action_risk_probs``, ``trajectory_unsafe`` with ``trajectory_score``, ``action`` (allow, flag = confirm
first, block) and the rules that fired in ``explanation``. ``?model=NAME`` picks a guard from ``/v1/models``
(the default guard routes actions to the agent heads).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...agent.io import input_from_object
from ...errors import InputError
from ...types import GuardInput
from ..deps import KeyIdDep, RuntimeDep
from ..errors import APIError
from .limits import check_items

router = APIRouter(tags=["agents"])


class ActionItem(BaseModel):
    """One proposed action and/or the trajectory so far."""

    model_config = ConfigDict(extra="forbid")

    action: dict[str, Any] | None = Field(None, description="kind (click, type, submit, navigate, tool_call), "
                                                            "target, url, element_tag, page_title, tool, arguments, "
                                                            "task, text; or an OpenAI tool call: {id, type: function, "
                                                            "function: {name, arguments}} or a Responses "
                                                            "function_call item {call_id, name, arguments}")
    trajectory: list[dict[str, Any]] | None = Field(None, description="turns: {role: user|agent|environment, "
                                                                      "content, thought, action}")
    id: Annotated[str, Field(max_length=256)] | int | None = Field(None, description="echoed back in the verdict")


ActionRequest = list[ActionItem] | ActionItem


def _to_input(item: ActionItem, index: int | None) -> GuardInput:
    data = item.model_dump(exclude_none=True)
    if "id" in data:
        data["id"] = str(data["id"])
    try:
        return input_from_object(data, "the item" if index is None else f"item {index}")
    except InputError as exc:
        raise APIError(422, str(exc), code="invalid_value", param=None if index is None else f"[{index}]") from None


@router.post("/v1/guard/actions")
async def actions(body: ActionRequest, runtime: RuntimeDep, key_id: KeyIdDep, model: str | None = None
                  ) -> JSONResponse:
    items = body if isinstance(body, list) else [body]
    check_items(len(items), runtime.settings, param=None)
    if not items:
        raise APIError(422, "the request holds no items; send one {\"action\": {...}} or a list of them",
                       code="invalid_value")
    inputs = [_to_input(item, i if isinstance(body, list) else None) for i, item in enumerate(items)]
    decision = await runtime.decide(inputs, model=model, endpoint="actions", key_id=key_id)
    return JSONResponse([v.to_dict() for v in decision.verdicts], headers={"X-Request-ID": decision.request_id})
