"""The strategies a race trains, with the name, label and colours each is shown with.

The one table of them: the engine trains the names, the page reads the rest from
``/api/config`` and as CSS custom properties the templates write, the sweep's figure from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Strategy = Literal["scratch", "frozen", "finetune", "gradual", "lora"]
# The three every race trains; the lanes a race may add beside them, in racing order.
STRATEGIES: tuple[Strategy, ...] = ("scratch", "frozen", "finetune")
Extra = Literal["gradual", "lora"]
EXTRAS: tuple[Extra, ...] = ("gradual", "lora")


@dataclass(frozen=True)
class Look:
    label: str
    # Okabe–Ito line colours: distinguishable with the common colour-vision deficiencies.
    colour: str
    # The same hue dark enough for text on the page (WCAG AA, 4.5:1 on its paper).
    ink: str


# Okabe–Ito has few hues beyond the three strategies': the extra lanes and the regularisers
# share two, and never share a panel (the trade-off panel draws fine-tune's variants only).
PURPLE = ("#cc79a7", "#a2457e")
ORANGE = ("#e69f00", "#8c5a00")

LOOKS: dict[Strategy, Look] = {
    "scratch": Look("Scratch", "#d55e00", "#a94b00"),
    "frozen": Look("Frozen", "#0072b2", "#0072b2"),
    "finetune": Look("Fine-tune", "#009e73", "#007c5a"),
    "gradual": Look("Gradual", *PURPLE),
    "lora": Look("LoRA", *ORANGE),
}


# Fine-tune kept by a regulariser (``keep``), as the trade-off panel and figure draw it;
# fine-tune with none is fine-tune's own look.
KEEP_LOOKS: dict[str, Look] = {
    "l2sp": Look("L2-SP", *PURPLE),
    "ewc": Look("EWC", *ORANGE),
}


def css_properties() -> str:
    """The tables as CSS custom properties (``--scratch``, ``--scratch-ink``, ``--l2sp``, …) for ``:root``."""
    looks = LOOKS | KEEP_LOOKS
    return " ".join(f"--{name}: {look.colour}; --{name}-ink: {look.ink};" for name, look in looks.items())


def public() -> list[dict[str, str | bool]]:
    """Each strategy for the page, in racing order, the lanes a race may add last."""
    return [{"name": name, **asdict(LOOKS[name]), "extra": name in EXTRAS} for name in (*STRATEGIES, *EXTRAS)]


def raced(extra: tuple[Extra, ...]) -> tuple[Strategy, ...]:
    """The strategies a race with these extra lanes trains, in racing order."""
    return (*STRATEGIES, *(name for name in EXTRAS if name in extra))
