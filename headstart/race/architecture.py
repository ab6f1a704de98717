"""The network's shape, without PyTorch: its units, their channels, and parameter counts.

``models`` builds the network from this plan; the web server reads the counts from it, so
the page's architecture strip needs no torch in the web process (it costs seconds to import
and hundreds of megabytes). ``tests/test_architecture.py`` holds the counts to the built model.
"""

from __future__ import annotations

from dataclasses import dataclass

from headstart.race import bodies
from headstart.race.bodies import Body
from headstart.race.events import UnitInfo
from headstart.settings import Settings

UNITS = ("stem", "stage1", "stage2", "stage3", "stage4")
UNIT_LABELS = bodies.BODIES[bodies.DEFAULT].labels
SIDES = (14, 14, 7, 4, 2)  # each unit's output map, in pixels a side, from a 28-pixel image
EVERY = 2  # gradual's epochs between unlocks: the head alone for the first two, then one unit more each two


def gradual_locked(epoch: int) -> int:
    """Body units gradual keeps locked in ``epoch`` (1-based): all five at first, one fewer every ``EVERY``."""
    return max(0, len(UNITS) - (epoch - 1) // EVERY)


@dataclass(frozen=True)
class Unit:
    """One body unit: the stem (a 3×3 stride-2 convolution) or a stage of residual blocks."""

    name: str
    label: str
    in_ch: int
    out_ch: int
    stride: int
    blocks: int  # 0 for the stem

    @property
    def params(self) -> int:
        bn = 2 * self.out_ch  # BatchNorm's weight and bias
        if self.name == "stem":
            return self.in_ch * self.out_ch * 9 + bn
        # torchvision's BasicBlock: two bias-free 3×3 convolutions, each followed by BatchNorm,
        # and a 1×1 projection (with BatchNorm) where the shape changes.
        first = self.in_ch * self.out_ch * 9 + self.out_ch * self.out_ch * 9 + 2 * bn
        if self.stride != 1 or self.in_ch != self.out_ch:
            first += self.in_ch * self.out_ch + bn
        rest = (self.out_ch * self.out_ch * 9 * 2 + 2 * bn) * (self.blocks - 1)
        return first + rest

    @property
    def lora_per_rank(self) -> int:
        """LoRA's trainable parameters here per unit of rank: each convolution's A (r × in·k·k)
        and B (out × r), so r · (in·k·k + out) a convolution."""
        if self.name == "stem":
            return self.in_ch * 9 + self.out_ch
        first = self.in_ch * 9 + self.out_ch + self.out_ch * 9 + self.out_ch
        if self.stride != 1 or self.in_ch != self.out_ch:
            first += self.in_ch + self.out_ch
        return first + 2 * (self.out_ch * 9 + self.out_ch) * (self.blocks - 1)


def body(width: int, blocks_per_stage: int) -> tuple[Unit, ...]:
    """stem → stage1 (14×14) → stage2 (7×7) → stage3 (4×4) → stage4 (2×2), doubling channels as the maps halve."""
    w, b = width, blocks_per_stage
    return (
        Unit("stem", "stem", 1, w, 2, 0),
        Unit("stage1", "stage 1", w, w, 1, b),
        Unit("stage2", "stage 2", w, 2 * w, 2, b),
        Unit("stage3", "stage 3", 2 * w, 4 * w, 2, b),
        Unit("stage4", "stage 4", 4 * w, 8 * w, 2, b),
    )


def feature_dim(width: int) -> int:
    return 8 * width


def head_params(width: int, classes: int) -> int:
    """The head's standardiser has no parameters; its linear layer has weights and biases."""
    return feature_dim(width) * classes + classes


def describe_units(settings: Settings, body: Body = bodies.DEFAULT, classes: int | None = None) -> list[UnitInfo]:
    """``body``'s five units and the head, in input-to-output order, with parameter counts."""
    classes = classes if classes is not None else len(settings.data.target_classes)
    labels = bodies.BODIES[body].labels
    counts = bodies.unit_counts(body, settings)
    units = [
        UnitInfo(name=name, label=label, params=params, lora_per_rank=lora)
        for name, label, (params, lora, _) in zip(UNITS, labels, counts, strict=True)
    ]
    head = bodies.feature_dim(body, settings) * classes + classes
    return [*units, UnitInfo(name="head", label="head", params=head)]
