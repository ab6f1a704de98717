"""The one websocket: races started, watched and cancelled, their messages streamed back."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from headstart.race import protocol
from headstart.serving import guard
from headstart.serving.connection import Connection
from headstart.serving.hub import Hub
from headstart.serving.quotas import Counter, Refused, TooMany, client_address
from headstart.settings import Settings

router = APIRouter()


def _check_room(ws: WebSocket, settings: Settings, address: str) -> None:
    """Refuse a page from another origin (a policy) or past a connection limit (try again later)."""
    origin = ws.headers.get("origin")
    if not guard.origin_allowed(origin, ws.headers.get("host", ""), settings):
        why = f"pages from {origin} may not use this server; HEADSTART_ALLOWED_ORIGINS lists others that may"
        raise Refused("origin_not_allowed", why)
    if ws.app.state.connections >= settings.max_connections:
        why = f"the server is at its limit of {settings.max_connections} connections; try again shortly"
        raise TooMany("too_many_connections", why)
    per_address: Counter = ws.app.state.per_address
    if per_address[address] >= settings.max_connections_per_address:
        limit = settings.max_connections_per_address
        why = f"this address has {limit} connections open (limit {limit}); close a page and try again"
        raise TooMany("too_many_connections_from_address", why)


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    settings: Settings = ws.app.state.settings
    address = client_address(
        ws.client.host if ws.client else None, ws.headers, settings.trusted_proxy_header, settings.trusted_proxies
    )
    await ws.accept()
    try:
        _check_room(ws, settings, address)
    except Refused as exc:
        await ws.send_json(protocol.error(exc.code, exc.message))
        # 1013: a limit, so try again later; 1008: a policy, so trying again will not help.
        return await ws.close(code=1013 if isinstance(exc, TooMany) else 1008)
    ws.app.state.connections += 1
    ws.app.state.per_address.add(address)
    conn = Connection(ws, hub, settings, address)
    sender = asyncio.create_task(conn.pump())
    receiving = asyncio.current_task()
    # The sender ends only by closing a client too slow to keep: stop reading from it too.
    sender.add_done_callback(lambda done: None if done.cancelled() or receiving is None else receiving.cancel())
    try:
        with hub.listen(conn.outbox):
            while True:
                raw = await ws.receive()
                if raw["type"] == "websocket.disconnect":
                    break
                conn.handle(raw)
    except (WebSocketDisconnect, asyncio.CancelledError):
        pass
    finally:
        ws.app.state.connections -= 1
        ws.app.state.per_address.remove(address)
        conn.close()
        sender.cancel()
