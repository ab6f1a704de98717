"""The one websocket: races started, watched and cancelled, their messages streamed back."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from headstart.race import protocol
from headstart.serving import guard
from headstart.serving.connection import Connection
from headstart.serving.hub import Hub
from headstart.serving.quotas import Refused, TooMany, client_address
from headstart.serving.sockets import Sockets, room_made_reason
from headstart.settings import Settings

router = APIRouter()


def _check_room(ws: WebSocket, settings: Settings, address: str) -> None:
    """Refuse a page from another origin (a policy), or past the address's connection limit or
    the server's, where no address holds more to give way (try again later); where one does,
    its oldest idle connection is closed to make room (sockets.py)."""
    origin = ws.headers.get("origin")
    if not guard.origin_allowed(origin, ws.headers.get("host", ""), settings):
        why = f"pages from {origin} may not use this server; HEADSTART_ALLOWED_ORIGINS lists others that may"
        raise Refused("origin_not_allowed", why)
    sockets: Sockets[Connection] = ws.app.state.sockets
    if (giving_way := sockets.make_room(address)) is not None:
        held = sockets.held(giving_way.address)
        sockets.remove(giving_way.address, giving_way)
        giving_way.close_for("too_many_connections", room_made_reason(settings, held))


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    settings: Settings = ws.app.state.settings
    address = client_address(
        ws.client.host if ws.client else None, ws.headers, settings.server.trusted_proxy_header, settings.server.trusted_proxies
    )
    await ws.accept()
    try:
        _check_room(ws, settings, address)
    except Refused as exc:
        await ws.send_json(protocol.error(exc.code, exc.message))
        # 1013: a limit, so try again later; 1008: a policy, so trying again will not help.
        return await ws.close(code=1013 if isinstance(exc, TooMany) else 1008)
    conn = Connection(ws, hub, settings, address)
    ws.app.state.sockets.add(address, conn)
    sender = asyncio.create_task(conn.pump())
    receiving = asyncio.current_task()
    # A client too slow to keep may not answer the close either: stop reading from it too. One
    # closed to make room answers it, ending the reading below.
    sender.add_done_callback(
        lambda done: None if done.cancelled() or receiving is None or not conn.outbox.overflowed else receiving.cancel()
    )
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
        ws.app.state.sockets.remove(address, conn)
        conn.close()
        sender.cancel()
