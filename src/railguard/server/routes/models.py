"""``GET /v1/models``: the guards this server can run, in OpenAI's list format."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import KeyIdDep, RuntimeDep
from ..schemas import ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList)
async def list_models(runtime: RuntimeDep, key_id: KeyIdDep) -> ModelList:
    default = runtime.settings.guard
    return ModelList(data=[ModelCard(id=name, description=description, default=name == default)
                           for name, description in runtime.model_names().items()])
