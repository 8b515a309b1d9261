"""Key management over HTTP (admin scope): create, list and revoke the keys of your tenant.

Creation and revocation run on the writer thread and are logged as ``audit.key_created`` /
``audit.key_revoked`` through the same group-commit path as any other event.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Path, Request, Response

from agentaudit.server.auth import Principal, require
from agentaudit.server.collector import Collector
from agentaudit.server.errors import ApiError
from agentaudit.server.ingest_routes import append_events
from agentaudit.server.keys import key_event, revoke_key
from agentaudit.server.models import ErrorBody, KeyCreate, KeyCreated, KeyInfo, KeyList
from agentaudit.server.writer import WriterClosed

__all__ = ["router"]

log = logging.getLogger("agentaudit.server")
router = APIRouter(tags=["keys"])
Admin = Annotated[Principal, Depends(require("admin"))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid body"},
    401: {"model": ErrorBody, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorBody, "description": "Not an admin key"},
    503: {"model": ErrorBody, "description": "The store cannot be written now"},
}


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json")


async def _on_writer(collector: Collector, fn: Any) -> Any:
    try:
        return await asyncio.wrap_future(collector.writer.run_job(fn))
    except WriterClosed as e:
        raise ApiError(503, "the collector is shutting down") from e
    except ApiError:
        raise
    except Exception as e:
        log.error("agentaudit: key management failed: %r", e)
        raise ApiError(503, "the key store cannot be written now: retry later") from e


@router.post("/v1/keys", summary="Create an API key", status_code=201, response_model=None,
             responses={201: {"model": KeyCreated}, **_ERRORS})
async def create_key(request: Request, principal: Admin, body: KeyCreate) -> Response:
    """A new key of your tenant. The secret (`key`) is in this answer only."""
    collector: Collector = request.app.state.collector
    key, secret = await _on_writer(
        collector, lambda store: store.create_key(principal.tenant, body.scope, body.name))
    try:
        await append_events(collector, [key_event("created", key, principal.actor)])
    except ApiError:
        await _on_writer(collector, lambda store: store.delete_key(key.id))
        raise
    return _json({**asdict(key), "key": secret}, 201)


@router.get("/v1/keys", summary="List API keys", response_model=None,
            responses={200: {"model": KeyList}, **_ERRORS})
def list_keys(request: Request, principal: Admin) -> Response:
    """Every key of your tenant, revoked ones included (never their secrets)."""
    collector: Collector = request.app.state.collector
    with collector.pool.store() as store:
        keys = store.list_keys(principal.tenant)
    return _json({"data": [asdict(k) for k in keys]})


@router.delete("/v1/keys/{key_id}", summary="Revoke an API key", response_model=None,
               responses={200: {"model": KeyInfo},
                          404: {"model": ErrorBody, "description": "No such key in your tenant"},
                          **_ERRORS})
async def delete_key(request: Request, principal: Admin,
                     key_id: Annotated[str, Path(max_length=64)]) -> Response:
    """Revoke a key of your tenant at once; revoking a revoked key changes nothing."""
    collector: Collector = request.app.state.collector
    key, newly = await _on_writer(collector,
                                  lambda store: revoke_key(store, key_id, principal.tenant))
    if key is None:
        raise ApiError(404, "no such key")
    if newly:
        await append_events(collector, [key_event("revoked", key, principal.actor)])
    return _json(asdict(key))
