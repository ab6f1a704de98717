"""The bodies a race can train, as networks of five units and a head, and their ImageNet weights.

* tiny: the built-in ResNet (``models.ResNet``), pretrained here on a source task.
* resnet18/34/50: torchvision's ResNets cut at their stages: the stem (conv1, bn1, ReLU,
  max-pool), then layer1…layer4.
* efficientnet_lite0: timm's, its stem then its seven stages grouped by resolution into
  four (strides 4, 8, 16, 32, as the ResNets' layers), the last with the 1×1 head
  convolution that makes its 1,280 features.

What each body is, its file and its inputs, is data in ``headstart.race.bodies``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.race import bodies
from headstart.race.bodies import Body
from headstart.settings import Settings
from headstart.training import models
from headstart.training.checkpoint import CheckpointError


def _torchvision_resnet(name: str) -> nn.Module:
    import torchvision.models

    model: nn.Module = getattr(torchvision.models, name)(weights=None)
    return model


def _resnet_units(model: Any) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return [stem, model.layer1, model.layer2, model.layer3, model.layer4]


def _timm_lite0() -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise CheckpointError(f"efficientnet_lite0 needs timm: {bodies.BODIES['efficientnet_lite0'].install}") from exc
    model: nn.Module = timm.create_model("efficientnet_lite0", pretrained=False)
    return model


def _lite0_units(model: Any) -> list[nn.Module]:
    b = model.blocks
    return [
        nn.Sequential(model.conv_stem, model.bn1),
        nn.Sequential(b[0], b[1]),
        nn.Sequential(b[2]),
        nn.Sequential(b[3], b[4]),
        nn.Sequential(b[5], b[6], model.conv_head, model.bn2),
    ]


def _imagenet(body: Body) -> tuple[nn.Module, list[nn.Module]]:
    """The library's whole model (with its ImageNet classifier) and its five units, sharing layers."""
    if body == "efficientnet_lite0":
        model = _timm_lite0()
        return model, _lite0_units(model)
    model = _torchvision_resnet(body)
    return model, _resnet_units(model)


def build(body: Body, settings: Settings, num_classes: int) -> models.Network:
    """A freshly initialised network of ``body`` with a new head for ``num_classes``: each
    library's own initialisation, as a model trained from scratch would start."""
    if body == "tiny":
        return models.build(settings.network.width, settings.network.blocks_per_stage, num_classes)
    _, units = _imagenet(body)
    return models.Network(units, bodies.BODIES[body].feature_dim, num_classes)


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated download, an HTML error page saved under the name
        raise CheckpointError(f"{path}: cannot read these weights ({type(exc).__name__}: {exc}); fetch them again") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def _by_position(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``state`` renamed to ``model``'s keys, in order: a file from another implementation of
    the same architecture (lukemelas' EfficientNet for timm's), every shape checked."""
    ours = model.state_dict()
    if len(ours) != len(state):
        raise CheckpointError(f"{path}: {len(state)} tensors where {type(model).__name__} has {len(ours)}")
    out = {}
    for (name, mine), (theirs, tensor) in zip(ours.items(), state.items(), strict=True):
        if mine.shape != tensor.shape:
            raise CheckpointError(f"{path}: {theirs} has shape {tuple(tensor.shape)}, {name} needs {tuple(mine.shape)}")
        out[name] = tensor
    return out


def imagenet_body(body: Body, settings: Settings) -> dict[str, torch.Tensor]:
    """``body``'s ImageNet weights as a ``Network``'s body state (its head left out).

    1) The file is found where torchvision keeps it (or the package that ships it); a missing
       one is an error naming the file and the command that fetches it.
    2) It loads strictly into the library's own model, so every tensor lands where it belongs.
    3) That model's layers are the network's units: its state is read back under their names.
    """
    spec = bodies.BODIES[body]
    missing = bodies.unavailable(body, settings)
    if missing:
        raise CheckpointError(missing)
    path = bodies.weights_path(body, settings)
    assert path is not None
    model, units = _imagenet(body)
    state = _read(path)
    if spec.by_position:
        state = _by_position(model, state, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: not {spec.label}'s weights ({exc})") from exc
    network = models.Network(units, spec.feature_dim, 2)
    return {k: v for k, v in network.state_dict().items() if not k.startswith("head.")}
