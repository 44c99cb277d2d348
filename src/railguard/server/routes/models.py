"""The guards this server can run, in OpenAI's list format: ``GET /v1/railguard/models`` always, and
``GET /v1/models`` too when the server is not a proxy (a proxy's ``/v1/models`` is the upstream LLM's)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import KeyIdDep, RuntimeDep
from ..schemas import ModelCard, ModelList

router = APIRouter(tags=["models"])
openai_router = APIRouter(tags=["models"])


@router.get("/v1/railguard/models", response_model=ModelList)
async def list_guards(runtime: RuntimeDep, key_id: KeyIdDep) -> ModelList:
    default = runtime.settings.guard
    return ModelList(data=[ModelCard(id=name, description=description, default=name == default)
                           for name, description in runtime.model_names().items()])


openai_router.add_api_route("/v1/models", list_guards, methods=["GET"], response_model=ModelList,
                            name="list_models")
