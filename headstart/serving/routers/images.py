"""The datasets' images: thumbnails by dataset, version, part and index, and each class's examples."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from headstart.race import bodies, pictures, sources
from headstart.serving.deps import HubDep
from headstart.serving.quotas import NotFound
from headstart.settings import BUILT_IN_DATASET

router = APIRouter()

# A version names the images for good (race/pictures.py): a browser keeps one for a year unasked.
FOREVER = "public, max-age=31536000, immutable"
PNG_NAME = re.compile(r"(\d{1,9})\.png")


@router.get("/api/images/{dataset}/{version}/{part}/{name}")
async def image(dataset: str, version: str, part: str, name: str, hub: HubDep) -> Response:
    """One image as a small PNG, named as a race's predictions name it."""
    found = PNG_NAME.fullmatch(name)
    if found is None:
        raise NotFound("unknown_image", f"{name!r}: an image is named by its index, as 17.png", "name")
    try:
        made = await asyncio.to_thread(hub.registry.pictures.thumbnail, dataset, version, part, int(found[1]))
    except pictures.NoSuchImage as exc:
        raise NotFound("unknown_image", str(exc)) from None
    return Response(made, media_type="image/png", headers={"Cache-Control": FOREVER})


@router.get("/api/examples")
async def examples(
    hub: HubDep, dataset: str = BUILT_IN_DATASET, body: bodies.Body = bodies.DEFAULT, source: sources.Source = sources.DEFAULT
) -> dict[str, Any]:
    """A few images of each class of ``dataset``, and of what ``body`` (from ``source``) was pretrained on."""
    try:
        return await asyncio.to_thread(hub.registry.pictures.examples, dataset, body, source)
    except pictures.NoSuchImage as exc:
        raise NotFound("unknown_image", str(exc), "dataset") from None
