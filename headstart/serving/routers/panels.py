"""The shipped sweeps, for the page's panels (headstart/lessons/panels.py lists them)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from headstart.lessons import sweep
from headstart.lessons.panels import LESSONS, Panel, head_start
from headstart.race import protocol, sources
from headstart.serving.deps import SettingsDep
from headstart.settings import Settings

router = APIRouter()


async def _shipped(panel: Panel, settings: Settings) -> Response:
    csv_path = panel.csv(settings)
    try:
        found = await asyncio.to_thread(panel.payload, csv_path)
    except sweep.SweepError as exc:  # the page then leaves its panel out; the rest works
        return JSONResponse(protocol.error("bad_sweep", str(exc)), status_code=500)
    if found is None:
        message = f"no sweep results at {csv_path}; run `{panel.command}` to make them"
        return JSONResponse(protocol.error("no_sweep", message), status_code=404)
    return JSONResponse(found, headers={"Cache-Control": "max-age=60"})


@router.get("/api/sweep")
async def head_start_sweep(settings: SettingsDep, source: sources.Source = sources.DEFAULT) -> Response:
    """A shipped sweep (final accuracy against n, spread over seeds): the default source's, or another's."""
    return await _shipped(head_start(source), settings)


def _route(panel: Panel) -> None:
    async def shipped(settings: SettingsDep) -> Response:
        return await _shipped(panel, settings)

    router.add_api_route(f"/api/sweep/{panel.name}", shipped, methods=["GET"], name=f"{panel.name}_sweep")


for _panel in LESSONS:
    _route(_panel)
