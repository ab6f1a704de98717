"""The web layer: the page, the JSON API and the one websocket, over the hub.

It knows races, messages and settings, never tensors: training lives in the worker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from headstart import page
from headstart.race import intake, protocol, uploads
from headstart.serving import guard, lan
from headstart.serving.connection import store_unavailable
from headstart.serving.hub import Hub
from headstart.serving.quotas import Refused
from headstart.serving.routers import datasets, images, pages, panels, races, socket, status
from headstart.serving.sockets import Sockets
from headstart.settings import STATIC_DIR, Settings, get_settings
from headstart.store import StoreError

log = logging.getLogger(__name__)


class PageFiles(StaticFiles):
    """The page's modules, revalidated on every load: a browser that kept an upgraded server's
    old main.js beside its new socket.js would run a mix that was never tested. Revalidation
    costs a 304. The vendored libraries carry their version in their path, so they are kept."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        vendored = path.startswith("vendor/")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if vendored else "no-cache"
        return response


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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    hub = Hub(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        # Last before serving, so it is the line a teacher finds at the foot of the terminal.
        opening = lan.where_to_open(settings.server.host, settings.server.port, settings.server.class_address)
        log.info("Headstart is serving: %s (Ctrl-C stops it)", opening)
        yield
        await hub.stop()

    app = FastAPI(title="Headstart", lifespan=lifespan)
    app.add_middleware(guard.Guard, settings=settings)
    app.state.hub, app.state.settings = hub, settings
    app.state.templates = Jinja2Templates(env=page.templates())
    app.state.sockets = Sockets(settings)  # open websockets per client address
    app.mount("/static", PageFiles(directory=STATIC_DIR), name="static")
    for router in (status.router, races.router, panels.router, images.router, datasets.router, pages.router, socket.router):
        app.include_router(router)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StoreError, _store_failed)
    app.add_exception_handler(intake.Rejected, _upload_refused)
    app.add_exception_handler(uploads.UploadError, _upload_refused)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return JSONResponse(protocol.error(exc.code, exc.message, exc.field), status_code=exc.status)


async def _upload_refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, intake.Rejected | uploads.UploadError)
    return JSONResponse(protocol.error(exc.code, exc.message, "dataset"), status_code=exc.status)


async def _store_failed(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    return JSONResponse(store_unavailable(exc), status_code=503)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    # The documented error shape, not FastAPI's own: a client reads one kind of error.
    assert isinstance(exc, RequestValidationError)
    field, message = protocol.describe_validation_error(list(exc.errors()))
    return JSONResponse(protocol.error("invalid_request", message, field), status_code=422)
