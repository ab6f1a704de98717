"""How the server is: its health, its metrics, and the configuration the page draws its controls from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from headstart.page import page_config
from headstart.serving import lan
from headstart.serving.deps import HubDep, SettingsDep
from headstart.serving.hub import Hub
from headstart.settings import Settings

router = APIRouter()


def public_config(settings: Settings, hub: Hub) -> dict[str, Any]:
    """What the page needs to draw its controls: never guessed, always read from here."""
    classroom = lan.class_address(settings.server.host, settings.server.port, settings.server.class_address)
    return page_config(settings, hub.limits(), hub.health()["device"], hub.worker_error, classroom, hub.registry.folders)


@router.get("/healthz")
async def healthz(hub: HubDep) -> dict[str, Any]:
    return hub.health()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, hub: HubDep) -> Response:
    hub.metrics.connections.set(len(request.app.state.sockets))
    hub.count_workers()
    return Response(hub.metrics.render(), media_type=hub.metrics.content_type)


@router.get("/api/config")
async def config(hub: HubDep, settings: SettingsDep) -> dict[str, Any]:
    return public_config(settings, hub)
