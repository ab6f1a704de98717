"""Uploaded datasets: ``POST /api/datasets`` takes one, ``GET``/``PATCH``/``DELETE`` its id.

A change comes only from this server's own pages (or a configured origin) and from tools that
send no Origin: another site's page cannot post into a student's server.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from headstart.serving import guard
from headstart.serving.deps import AddressDep, HubDep, SettingsDep
from headstart.serving.quotas import Refused

router = APIRouter()


class Keeping(BaseModel):
    kept: bool  # kept past its expiry, and never deleted to make room


def same_origin(request: Request, settings: SettingsDep) -> None:
    origin = request.headers.get("origin")
    cross = request.headers.get("sec-fetch-site") == "cross-site"
    if cross or not guard.origin_allowed(origin, request.headers.get("host", ""), settings):
        raise Refused(
            "origin_not_allowed",
            f"uploads come only from this server's own pages, not from {origin or 'another site'!r}; "
            "open the page from this server (or add the origin to HEADSTART_ALLOWED_ORIGINS)",
        )


@router.post("/api/datasets", status_code=201)
async def upload(
    request: Request,
    hub: HubDep,
    address: AddressDep,
    settings: SettingsDep,
    title: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
) -> JSONResponse:
    """A zip with one folder per class (field ``file``), or each class's images in a field named after it."""
    same_origin(request, settings)
    length = request.headers.get("content-length")
    hub.uploading.refuse_early(address, int(length) if length and length.isdigit() else None)
    answer = await hub.uploading.receive(address, request.headers.get("content-type", ""), request.stream(), title)
    return JSONResponse(answer, status_code=201)


@router.get("/api/datasets/{upload_id}")
async def described(upload_id: str, hub: HubDep) -> dict[str, Any]:
    """An upload's classes, counts, what was skipped, and when it expires; a visit counts as a use."""
    hub.registry.uploads.touch(upload_id)
    return await asyncio.to_thread(hub.uploading.describe, upload_id)


@router.patch("/api/datasets/{upload_id}")
async def keep(upload_id: str, body: Keeping, request: Request, hub: HubDep, settings: SettingsDep) -> dict[str, Any]:
    same_origin(request, settings)
    hub.registry.uploads.keep(upload_id, body.kept)
    return await asyncio.to_thread(hub.uploading.describe, upload_id)


@router.delete("/api/datasets/{upload_id}", status_code=204)
async def delete(upload_id: str, request: Request, hub: HubDep, settings: SettingsDep) -> Response:
    same_origin(request, settings)
    await asyncio.to_thread(hub.registry.uploads.delete, upload_id)
    hub.registry.folders.forget(upload_id)
    return Response(status_code=204)
