"""Which hosts and origins this server answers, and the headers every answer carries.

A page on another site must not drive this server through a student's browser: its websocket
is refused unless the page came from this server (or a configured origin), and a request naming
a host this server is not is refused too, since DNS rebinding would otherwise make another site
same-origin with it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import socket
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from headstart.settings import Settings

HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


def _hostname(host: str) -> str:
    """``host`` of a Host header or an origin's netloc, without its port or brackets."""
    return (urlsplit(f"//{host}").hostname or "").lower()


@functools.cache
def own_names() -> frozenset[str]:
    """This machine's own name, bare and as the local network's mDNS announces it (``.local``):
    what a student may type instead of the address. A rebinding attack needs a name its author
    controls, and neither is."""
    name = socket.gethostname().split(".")[0].lower()
    return frozenset({name, f"{name}.local"}) if name else frozenset()


def host_allowed(host: str, settings: Settings) -> bool:
    """Whether ``host`` (a Host header) names this server: an IP address, localhost, this
    machine's own name, the class address, or a name in ``allowed_hosts``. A DNS name a
    rebinding attack uses is none of these."""
    if "*" in settings.server.allowed_hosts:
        return True
    name = _hostname(host)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    named = {"localhost", *own_names(), *(h.lower() for h in settings.server.allowed_hosts)}
    if settings.server.class_address:
        named.add(_hostname(settings.server.class_address))
    return name in named


def origin_allowed(origin: str | None, host: str, settings: Settings) -> bool:
    """Whether a websocket opened by a page from ``origin`` may talk to this server: pages it
    served itself (same host and port), or ``allowed_origins``. No Origin: not a browser page."""
    if origin is None:
        return True
    if "*" in settings.server.allowed_origins or origin in settings.server.allowed_origins:
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


class Guard:
    """ASGI middleware: refuses a request for a host this server is not, and adds ``HEADERS``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if not host_allowed(host, self.settings):
            await self._refuse(scope, send, host)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _refuse(self, scope: Scope, send: Send, host: str) -> None:
        message = (
            f"this server does not answer to the host {host!r}; it answers to its IP addresses, localhost, "
            f"{''.join(f'{n}, ' for n in sorted(own_names()))}and the class address. "
            "Add the name to HEADSTART_ALLOWED_HOSTS to serve it."
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        body = json.dumps({"type": "error", "code": "host_not_allowed", "message": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class HeaderTimeout(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request headers do not all arrive
    within ``header_timeout_s`` of its first byte (or of the connection opening): uvicorn times
    out only idle keep-alive connections, so a client sending headers a byte at a time could
    hold connections open for ever."""

    header_timeout_s = 10.0  # set from the settings by ``header_timeout``

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._late: asyncio.TimerHandle | None = None
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._late = self.loop.call_later(self.header_timeout_s, self.transport.close)

    def _disarm(self) -> None:
        if self._late is not None:
            self._late.cancel()
            self._late = None


def header_timeout(seconds: float) -> type[HeaderTimeout]:
    """The protocol class for uvicorn's ``http`` option, with this timeout."""
    return type("HeaderTimeout", (HeaderTimeout,), {"header_timeout_s": seconds})
