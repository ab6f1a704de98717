"""The web layer: the page, the JSON API and the one websocket, over the hub.

It knows races, messages and settings, never tensors: training lives in the worker.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.types import Scope
from starlette.websockets import WebSocketDisconnect

from headstart.lessons import adapters, depth, keeping, sweep
from headstart.race import protocol, sources, strategies
from headstart.race.architecture import describe_units
from headstart.race.events import Epoch, RaceConfig, race_fields
from headstart.serving import guard, lan
from headstart.serving.fanout import Outbox
from headstart.serving.hub import Hub
from headstart.serving.quotas import Counter, Rate, Refused, client_address
from headstart.settings import FASHION_CLASSES, STATIC_DIR, TEMPLATES_DIR, Limits, Settings, get_settings
from headstart.store import StoreError

log = logging.getLogger(__name__)
# Each row also names its race and configuration, so files from several races concatenate
# into one table a class can compare (by n, by locked units) without losing which is which.
CSV_FIELDS = ("race_id", *RaceConfig.model_fields, "device", *(name for name in Epoch.model_fields if name != "type"))


class PageFiles(StaticFiles):
    """The page's modules, revalidated on every load: a browser that kept an upgraded server's
    old main.js beside its new socket.js would run a mix that was never tested. Revalidation
    costs a 304. The vendored libraries carry their version in their path, so they are kept."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        vendored = path.startswith("vendor/")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if vendored else "no-cache"
        return response


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
    return client_address(peer, request.headers, settings.trusted_proxy_header, settings.trusted_proxies)


HubDep = Annotated[Hub, Depends(get_hub)]
AddressDep = Annotated[str, Depends(get_address)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def _source_accuracy(settings: Settings, source: sources.Source) -> float | None:
    card = sources.card(settings.checkpoint, source) or {}
    accuracy = card.get("source_test_acc")
    return accuracy if isinstance(accuracy, float) else None


def public_config(settings: Settings, hub: Hub) -> dict[str, Any]:
    """What the page needs to draw its controls: never guessed, always read from here."""
    classroom = lan.class_address(settings.host, settings.port, settings.class_address)
    return page_config(settings, hub.limits(), hub.health()["device"], hub.worker_error, classroom)


def page_config(
    settings: Settings,
    limits: Limits,
    device: str | None,
    worker_error: str | None = None,
    classroom: tuple[str | None, bool] = (None, False),
) -> dict[str, Any]:
    """The page's configuration for ``limits`` and a worker on ``device`` (a bake's too).

    ``classroom``: the address students open a class race at, and whether they can reach it;
    a bake has no server, so no class races.
    """
    units = describe_units(settings)
    address, reachable = classroom
    return {
        "fields": [spec.model_dump() for spec in race_fields(limits)],
        "limits": limits.model_dump(),
        "units": [u.model_dump() for u in units],
        "strategies": strategies.public(),
        "classes": [FASHION_CLASSES[c] for c in settings.target_classes],
        "source_classes": [FASHION_CLASSES[c] for c in settings.source_classes],
        # Each pretrained body: its source accuracy on its own source task, from its card (None
        # where no card is installed: a race from it then fails, naming the command that makes it).
        "sources": {name: _source_accuracy(settings, name) for name in sources.SOURCES},
        "test_size": settings.test_size,
        "batch_size": settings.batch_size,
        "schedule": {"warmup_epochs": settings.warmup_epochs, "cosine_decay": settings.cosine_decay},
        "device": device,
        "worker_error": worker_error,  # why this server cannot train (no dataset, say), or null
        "max_message_bytes": settings.max_message_bytes,
        # For the class code's link: a page opened at 127.0.0.1 shows students this instead.
        "class_address": address,
        "reachable_by_others": reachable,
    }


class _RedactClientIds(logging.Filter):
    """Leaves a page's client id out of the access log: whoever reads the log could otherwise
    take over that page's races and class code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(CLIENT_ID.sub("client=…", a) if isinstance(a, str) else a for a in record.args)
        return True


CLIENT_ID = re.compile(r"client=[^&\s\"]*")


def redact_client_ids() -> None:
    """Install the filter on uvicorn's loggers (after uvicorn has configured them)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_RedactClientIds())


def store_unavailable(exc: StoreError, race_id: str | None = None) -> dict[str, Any]:
    """The error a request gets when the race database fails it: nothing is lost, so it may be tried again."""
    return protocol.error("store_unavailable", f"{exc}; try again shortly", race_id=race_id)


def races_csv(race: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    about = {"race_id": race["race_id"], **race["config"], "device": race["device"]}
    for event in race["events"]:
        if event["type"] == "epoch":  # a list (the extra lanes, the units trained) as one cell: "gradual lora"
            writer.writerow({k: " ".join(v) if isinstance(v, list | tuple) else v for k, v in (about | event).items()})
    return out.getvalue()


class Connection:
    """One websocket: its client identity, its outbox and the races it watches."""

    def __init__(self, websocket: WebSocket, hub: Hub, settings: Settings, address: str) -> None:
        self.ws, self.hub, self.settings, self.address = websocket, hub, settings, address
        # The page sends a stable id so a reconnecting tab still owns the race it started.
        self.client = (websocket.query_params.get("client") or secrets.token_hex(8))[:64]
        self.outbox = Outbox(settings.max_outbox_messages)
        self.watching: dict[str, ExitStack] = {}
        self.rate = Rate(settings.messages_per_connection_per_10s, 10)
        self.told_too_fast = False  # one error per flood, not one per message

    def send_error(self, code: str, message: str, field: str | None = None, race_id: str | None = None) -> None:
        self.outbox.put_nowait(protocol.error(code, message, field, race_id))

    async def pump(self) -> None:
        while True:
            message = await self.outbox.get()
            if message is None:  # the outbox overflowed: this client does not keep up
                limit = self.settings.max_outbox_messages
                log.warning("closing a connection from %s: %d messages waited for it", self.address, limit)
                await self.ws.close(code=1008, reason=f"too slow: {limit} messages waited (max_outbox_messages)")
                return
            if message.get("type") == "accepted":  # shared by every viewer; personalised on the way out
                message = {**message, "yours": self.hub.owner_of(message["race_id"]) == self.client}
            await self.ws.send_json(message)

    def watch(self, race_id: str) -> None:
        """Its history, then its live messages. Already followed: its history again, since a
        page that comes back to a race redraws it from its start."""
        if race_id in self.watching:
            for message in self.hub.get(race_id).messages:
                self.outbox.put_nowait(message)
            return
        self._room_to_watch()
        stack = ExitStack()
        stack.enter_context(self.hub.subscribe(race_id, self.outbox))
        self.watching[race_id] = stack

    def _room_to_watch(self) -> None:
        limit = self.settings.max_watched_per_connection
        if len(self.watching) >= limit:
            why = f"this connection already follows {limit} races, its limit; unwatch one first"
            raise Refused("too_many_watched", why, "race_id")

    def _follows_in_flight(self, config: RaceConfig) -> bool:
        """Whether a start of ``config`` would join a race this connection follows already,
        which takes no more room: the hub joins an identical race still training."""
        races = (self.hub.races.get(race_id) for race_id in self.watching)
        return any(r is not None and r.config == config and not r.finished and r.replay_of is None for r in races)

    def unwatch(self, race_id: str) -> None:
        """Nothing more from that race. A race left with no viewers is cancelled after the grace
        period, as when its last viewer disconnects. Not followed: nothing to do."""
        stack = self.watching.pop(race_id, None)
        if stack is not None:
            stack.close()

    def handle(self, raw: Mapping[str, Any]) -> None:
        if not self.rate.allow(""):
            if not self.told_too_fast:
                allowed = self.rate.describe("messages")
                self.send_error("too_many_messages", f"this connection may send {allowed}; later messages were not read")
            self.told_too_fast = True
            return
        self.told_too_fast = False
        if raw.get("bytes") is not None:
            self.send_error("binary_frame", "binary frames are not accepted; send JSON objects as text frames")
            return
        text = raw.get("text") or ""
        size = len(text.encode())
        if size > self.settings.max_message_bytes:
            self.send_error("too_large", f"message is {size} bytes; the limit is {self.settings.max_message_bytes} bytes")
            return
        try:
            msg = protocol.ClientMessage.validate_json(text, context={"limits": self.settings.limits})
        except ValidationError as exc:
            field, message = protocol.describe_validation_error(exc.errors(), self.settings.limits)
            self.send_error("invalid_message", message, field)
            return
        try:
            if isinstance(msg, protocol.Start):
                # Checked first: a race this connection could not follow is not started.
                if msg.broadcast or not self._follows_in_flight(msg.config):
                    self._room_to_watch()
                race = self.hub.submit(msg.config, owner=self.client, broadcast=msg.broadcast, address=self.address)
                self.watch(race.id)
            elif isinstance(msg, protocol.Watch):
                self.watch(msg.race_id or self.hub.by_code(msg.code or "", self.address).id)
            elif isinstance(msg, protocol.Unwatch):
                self.unwatch(msg.race_id)
            elif isinstance(msg, protocol.Cancel):
                race = self.hub.get(msg.race_id)
                if race.owner != self.client:
                    raise Refused("not_owner", "only the client that started a race can cancel it", "race_id")
                self.hub.cancel(msg.race_id)
        except Refused as exc:
            self.send_error(exc.code, exc.message, exc.field, getattr(msg, "race_id", None))
        except StoreError as exc:
            self.outbox.put_nowait(store_unavailable(exc, getattr(msg, "race_id", None)))

    def close(self) -> None:
        for stack in self.watching.values():
            stack.close()
        self.watching.clear()


def page_templates() -> Jinja2Templates:
    """The page and its embed, as the server renders them and a bake writes them."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals["strategy_colours"] = strategies.css_properties()
    templates.env.globals["recorded"] = False
    return templates


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    hub = Hub(settings)
    templates = page_templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        # Last before serving, so it is the line a teacher finds at the foot of the terminal.
        opening = lan.where_to_open(settings.host, settings.port, settings.class_address)
        log.info("Headstart is serving: %s (Ctrl-C stops it)", opening)
        yield
        await hub.stop()

    app = FastAPI(title="Headstart", lifespan=lifespan)
    app.add_middleware(guard.Guard, settings=settings)
    app.state.hub, app.state.settings = hub, settings
    app.state.connections = 0
    per_address = Counter()  # open websockets per client address
    proxies = (settings.trusted_proxy_header, settings.trusted_proxies)
    app.mount("/static", PageFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        status = (
            404 if exc.code in ("unknown_race", "unknown_code", "race_lost") else 429 if exc.code.startswith("too_many") else 409
        )
        return JSONResponse(protocol.error(exc.code, exc.message, exc.field), status_code=status)

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(store_unavailable(exc), status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # The documented error shape, not FastAPI's own: a client reads one kind of error.
        field, message = protocol.describe_validation_error(list(exc.errors()))
        return JSONResponse(protocol.error("invalid_request", message, field), status_code=422)

    @app.get("/healthz")
    async def healthz(hub: HubDep) -> dict[str, Any]:
        return hub.health()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(hub: HubDep) -> Response:
        hub.metrics.connections.set(app.state.connections)
        hub.count_workers()
        return Response(hub.metrics.render(), media_type=hub.metrics.content_type)

    @app.get("/api/config")
    async def config(hub: HubDep, settings: SettingsDep) -> dict[str, Any]:
        return public_config(settings, hub)

    async def shipped(payload: Callable[[Path], dict[str, Any] | None], csv_path: Path, command: str) -> Response:
        try:
            found = await asyncio.to_thread(payload, csv_path)
        except sweep.SweepError as exc:  # the page then leaves its panel out; the rest works
            return JSONResponse(protocol.error("bad_sweep", str(exc)), status_code=500)
        if found is None:
            message = f"no sweep results at {csv_path}; run `{command}` to make them"
            return JSONResponse(protocol.error("no_sweep", message), status_code=404)
        return JSONResponse(found, headers={"Cache-Control": "max-age=60"})

    @app.get("/api/sweep")
    async def sweep_results(settings: SettingsDep, source: sources.Source = sources.DEFAULT) -> Response:
        """A shipped sweep (final accuracy against n, spread over seeds) for the page's panel: the
        default source's, or another's."""
        command = "python -m headstart sweep" + ("" if source == sources.DEFAULT else f" --source {source}")
        return await shipped(sweep.page_payload, sources.checkpoint_path(settings.sweep_csv, source), command)

    @app.get("/api/sweep/keep")
    async def keep_sweep_results(settings: SettingsDep) -> Response:
        """The shipped trade-off (fine-tune's final target against source accuracy) for its panel."""
        return await shipped(keeping.page_payload, settings.keep_sweep_csv, "python -m headstart sweep --keep")

    @app.get("/api/sweep/depth")
    async def depth_sweep_results(settings: SettingsDep) -> Response:
        """The shipped layer-by-layer sweep (accuracy against locked units, per source) for its panel."""
        return await shipped(depth.page_payload, settings.depth_sweep_csv, "python -m headstart sweep --by frozen")

    @app.get("/api/sweep/lanes")
    async def lanes_sweep_results(settings: SettingsDep) -> Response:
        """The shipped lanes sweep (final accuracy against trainable parameters) for its panel."""
        return await shipped(adapters.page_payload, settings.lanes_sweep_csv, "python -m headstart sweep --lanes")

    @app.get("/api/races")
    async def races(
        hub: HubDep, limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: Annotated[int, Query(ge=0, le=10**9)] = 0
    ) -> dict[str, Any]:
        """Recent finished races, newest first."""
        return await hub.recent(limit, offset)

    @app.get("/api/codes/{code}")
    async def code(code: str, hub: HubDep, address: AddressDep) -> dict[str, Any]:
        race = hub.by_code(code, address)
        return {"code": race.code, "race_id": race.id, "status": race.status}

    @app.api_route("/w/{code}", methods=["GET", "HEAD"], include_in_schema=False)
    async def join(code: str, hub: HubDep, address: AddressDep) -> Response:
        """The short link a teacher writes on the board: straight to the live race.

        A code it does not know opens the page with the code in its box and the reason in its
        status line: a student who mistyped it sees what to fix, not a JSON error.
        """
        try:
            target = {"race": hub.by_code(code, address).id}
        except Refused:
            target = {"join": code[:16]}
        return RedirectResponse(f"/?{urlencode(target)}", status_code=303)

    @app.get("/api/races/{race_id}.csv")
    async def race_csv(race_id: str, hub: HubDep) -> Response:
        race = hub.get(race_id).snapshot()
        headers = {"Content-Disposition": f'attachment; filename="headstart-{race_id}.csv"'}
        return Response(races_csv(race), media_type="text/csv", headers=headers)

    @app.get("/api/races/{race_id}")
    async def race_json(race_id: str, hub: HubDep) -> dict[str, Any]:
        return hub.get(race_id).snapshot()

    def page(name: str, request: Request, ancestors: str) -> Response:
        response = templates.TemplateResponse(request, name, {"settings": settings})
        # Everything is served from here: no CDN, so the page works in an offline classroom.
        # "*" sends no frame-ancestors at all: as a source, "*" matches only network schemes,
        # so Chromium refused it to slides opened from disk (file://).
        framing = "" if ancestors == "*" else f"; frame-ancestors {ancestors}"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            f"connect-src 'self' ws: wss:{framing}"
        )
        return response

    # HEAD too: a course platform's link checker asks that way before it lists an embed.
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index(request: Request) -> Response:
        return page("index.html", request, "'self'")

    @app.api_route("/embed", methods=["GET", "HEAD"], include_in_schema=False)
    async def embed(request: Request) -> Response:
        return page("embed.html", request, settings.frame_ancestors)

    async def refuse(ws: WebSocket, code: str, message: str, close_code: int) -> None:
        await ws.send_json(protocol.error(code, message))
        await ws.close(code=close_code)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        address = client_address(ws.client.host if ws.client else None, ws.headers, *proxies)
        await ws.accept()
        origin = ws.headers.get("origin")
        if not guard.origin_allowed(origin, ws.headers.get("host", ""), settings):
            message = f"pages from {origin} may not use this server; HEADSTART_ALLOWED_ORIGINS lists others that may"
            return await refuse(ws, "origin_not_allowed", message, 1008)
        if app.state.connections >= settings.max_connections:
            message = f"the server is at its limit of {settings.max_connections} connections; try again shortly"
            return await refuse(ws, "too_many_connections", message, 1013)
        if per_address[address] >= settings.max_connections_per_address:
            limit = settings.max_connections_per_address
            message = f"this address has {limit} connections open (limit {limit}); close a page and try again"
            return await refuse(ws, "too_many_connections_from_address", message, 1013)
        app.state.connections += 1
        per_address.add(address)
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
            app.state.connections -= 1
            per_address.remove(address)
            conn.close()
            sender.cancel()

    return app
