"""The page and its embed, each with the framing it allows."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from headstart.serving.deps import SettingsDep

router = APIRouter()


def _page(request: Request, name: str, settings: SettingsDep, ancestors: str) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, {"settings": settings})
    # Everything is served from here: no CDN, so the page works in an offline classroom.
    # "*" sends no frame-ancestors at all: as a source, "*" matches only network schemes,
    # so Chromium refused it to slides opened from disk (file://).
    framing = "" if ancestors == "*" else f"; frame-ancestors {ancestors}"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:{framing}"
    )
    return response


# HEAD too: a course platform's link checker asks that way before it lists an embed.
@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index(request: Request, settings: SettingsDep) -> Response:
    return _page(request, "index.html", settings, "'self'")


@router.api_route("/embed", methods=["GET", "HEAD"], include_in_schema=False)
async def embed(request: Request, settings: SettingsDep) -> Response:
    return _page(request, "embed.html", settings, settings.server.frame_ancestors)
