"""Dependencies the routes ask for: the runtime, its settings, and the caller's key id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from .runtime import Runtime


# Both are async (and do no I/O) so that FastAPI runs them on the event loop, not one thread hand-off each per request.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_key_id(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The caller's key id (None on a server without keys); 401 without a valid key."""
    return runtime.keys.identify(authorization)


KeyIdDep = Annotated[str | None, Depends(get_key_id)]
