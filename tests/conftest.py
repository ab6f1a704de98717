"""Shared fixtures: a tiny generated Fashion-MNIST look-alike and a checkpoint made from it.

The images are learnable (each class draws a different shape) so real training moves
the numbers, yet small enough that a whole race takes a second.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pytest

from headstart.race.sources import SOURCES, checkpoint_path
from headstart.settings import Limits, Settings

PER_CLASS_TRAIN, PER_CLASS_TEST = 60, 20


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class c lights a band at row 2c..2c+8 and column 2c..2c+8, plus noise."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28))
    for i, c in enumerate(labels):
        images[i, 2 * c : 2 * c + 8, :] += 150
        images[i, :, 2 * c : 2 * c + 8] += 40
    return np.clip(images, 0, 255).astype(np.uint8)


def make_fake_dataset(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, per_class in (("train", PER_CLASS_TRAIN), ("t10k", PER_CLASS_TEST)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", fake_images(labels, rng))
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
    return folder


def tiny_settings(root: Path, **overrides: object) -> Settings:
    fields: dict = {
        "data_dir": root / "data",
        "system_data_dir": root / "no-such-folder",
        "download_dir": root / "downloads",
        "width": 4,
        "test_size": 50,
        "batch_size": 16,
        "checkpoint": root / "ckpt" / "tiny.safetensors",
        "weights_dir": root / "no-weights",  # no ImageNet ResNet's file, whatever this machine's torch hub holds
        "database": root / "races.sqlite3",
        "upload_dir": root / "uploads",
        "threads": 1,
        "limits": Limits(),
        "allowed_hosts": ("testserver",),  # the host FastAPI's TestClient names
        # Every test client shares one address: its tests are not one client flooding the server.
        "broadcasts_per_address_per_minute": 1000,
        "code_guesses_per_address_per_minute": 1000,
        "max_connections_per_address": 1000,
    }
    return Settings(**(fields | overrides))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at generated data and a one-epoch checkpoint made from it."""
    from headstart.training.pretrain import pretrain

    root = tmp_path_factory.mktemp("tiny")
    make_fake_dataset(root / "data")
    settings = tiny_settings(root)
    for source in SOURCES:  # every body a race can start from, as the shipped ones are made
        pretrain(settings, checkpoint_path(settings.network.checkpoint, source), epochs=1, seed=0, batch=64, source=source)
    return settings


@pytest.fixture
def built_models(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Every model the engine builds from here on, by (strategy, race config): the last one wins."""
    from headstart.training import engine

    built: dict = {}
    original = engine.build_model

    def spy(name, config, res):  # type: ignore[no-untyped-def]
        model, locked = original(name, config, res)
        built[(name, config)] = model
        return model, locked

    monkeypatch.setattr(engine, "build_model", spy)
    return built


@pytest.fixture(scope="session")
def real() -> Settings:
    """The default settings, on the installed Fashion-MNIST (skipped where it is not installed)."""
    from headstart.race import fashion
    from headstart.training import data

    settings = Settings()
    try:
        data.locate(settings)
    except fashion.DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")
    return settings


def tiny_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process use the tiny settings."""
    return {
        "HEADSTART_DATA_DIR": str(settings.data.data_dir),
        "HEADSTART_SYSTEM_DATA_DIR": str(settings.data.system_data_dir),
        "HEADSTART_WIDTH": str(settings.network.width),
        "HEADSTART_TEST_SIZE": str(settings.data.test_size),
        "HEADSTART_BATCH_SIZE": str(settings.training.batch_size),
        "HEADSTART_CHECKPOINT": str(settings.network.checkpoint),
        "HEADSTART_DATABASE": str(settings.paths.database),
        "HEADSTART_UPLOAD_DIR": str(settings.uploads.upload_dir),
        "HEADSTART_THREADS": "1",
        "HEADSTART_DATASETS": json.dumps({name: str(path) for name, path in settings.data.datasets.items()}),
        "HEADSTART_WEIGHTS_DIR": str(settings.network.weights_dir),
        **({"HEADSTART_IMAGE_SIZE": str(settings.network.image_size)} if settings.network.image_size else {}),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings: Settings, port: int, log: IO | int = subprocess.DEVNULL) -> subprocess.Popen:
    """A real uvicorn process on a loopback port, serving ``settings``, once its worker is up."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "headstart", "serve", "--port", str(port)],
        env={**os.environ, **tiny_env(settings)},
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,  # its own process group, to be signalled as a terminal or systemd does
    )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
    except BaseException:
        proc.kill()
        raise
    return proc


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[str]:
    """``start_server``, stopped as an operator would when the block ends."""
    proc = start_server(settings, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_until_up(proc: subprocess.Popen, base: str) -> None:
    """Until the server at ``base`` says its worker is up; polled, as a starting process has nothing to await."""
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).json()["worker"] == "up":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the server did not come up")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def live_server(tiny: Settings) -> Iterator[str]:
    """A real uvicorn process on a free loopback port, serving the tiny settings."""
    with serving(tiny, free_port()) as base:
        yield base


SHAPES = ("circle", "square", "triangle")


def make_image_folder(root: Path, per_class: int = 12, classes: tuple[str, ...] = SHAPES, seed: int = 0) -> Path:
    """A dataset folder in ImageFolder's layout: one shape per class, drawn in random colours at
    random places on canvases of random sizes, half JPEG and half PNG."""
    from PIL import Image

    from headstart.tools.payloads import draw_shape

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = tuple(int(v) for v in rng.integers(0, 120, 3))
            image = Image.new("RGB", (48 + int(rng.integers(0, 32)), 48), colour)
            draw_shape(image, SHAPES[c % len(SHAPES)], rng)
            image.save(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root
