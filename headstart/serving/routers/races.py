"""Finished and running races: the recent list, each race as JSON and CSV, and class codes."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response

from headstart.race.export import predictions_csv, races_csv
from headstart.serving.deps import AddressDep, HubDep
from headstart.serving.quotas import NotFound, Refused

router = APIRouter()


@router.get("/api/races")
async def races(
    hub: HubDep, limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: Annotated[int, Query(ge=0, le=10**9)] = 0
) -> dict[str, Any]:
    """Recent finished races, newest first."""
    return await hub.recent(limit, offset)


@router.get("/api/codes/{code}")
async def code(code: str, hub: HubDep, address: AddressDep) -> dict[str, Any]:
    race = hub.by_code(code, address)
    return {"code": race.code, "race_id": race.id, "status": race.status}


@router.api_route("/w/{code}", methods=["GET", "HEAD"], include_in_schema=False)
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


@router.get("/api/races/{race_id}.csv")
async def race_csv(race_id: str, hub: HubDep) -> Response:
    race = hub.get(race_id).snapshot()
    headers = {"Content-Disposition": f'attachment; filename="headstart-{race_id}.csv"'}
    return Response(races_csv(race), media_type="text/csv", headers=headers)


@router.get("/api/races/{race_id}/predictions.csv")
async def race_predictions_csv(race_id: str, hub: HubDep) -> Response:
    """Each test image's index, true class and every strategy's prediction, once the race is done."""
    table = predictions_csv(hub.get(race_id).snapshot())
    if table is None:
        raise NotFound(
            "no_predictions",
            f"race {race_id} has no per-image predictions: it has not finished, or was stored before they were kept",
        )
    headers = {"Content-Disposition": f'attachment; filename="headstart-{race_id}-predictions.csv"'}
    return Response(table, media_type="text/csv", headers=headers)


@router.get("/api/races/{race_id}")
async def race_json(race_id: str, hub: HubDep) -> dict[str, Any]:
    return hub.get(race_id).snapshot()
