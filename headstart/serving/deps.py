"""What a route asks for by name: the hub, the settings, and where the request came from."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from headstart.serving.hub import Hub
from headstart.serving.quotas import client_address
from headstart.settings import Settings


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_address(request: Request) -> str:
    """Where a request came from: its peer, or the address a trusted proxy names."""
    settings = get_app_settings(request)
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, settings.server.trusted_proxy_header, settings.server.trusted_proxies)


HubDep = Annotated[Hub, Depends(get_hub)]
AddressDep = Annotated[str, Depends(get_address)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
