"""The image carries every file the server reads from the project (it has never been built here)."""

from __future__ import annotations

from pathlib import Path

from headstart.settings import PROJECT_DIR, Settings


def copied() -> list[Path]:
    lines = (PROJECT_DIR / "Dockerfile").read_text().splitlines()
    return [Path(src) for line in lines if line.startswith("COPY ") for src in line.split()[1:-1]]


def test_the_image_copies_what_the_server_reads() -> None:
    s = Settings()
    needed = [PROJECT_DIR / "static", PROJECT_DIR / "templates", s.sweep_csv, s.checkpoint, s.checkpoint.with_suffix(".json")]
    sources = copied()
    for path in needed:
        rel = path.relative_to(PROJECT_DIR)
        assert any(rel == src or src in rel.parents for src in sources), f"{rel} is not copied into the image"
