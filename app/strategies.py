"""The strategies a race trains, with the name, label and colours each is shown with.

The one table of them: the engine trains the names, the page reads the rest from
``/api/config`` and as CSS custom properties the templates write, the sweep's figure from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Strategy = Literal["scratch", "frozen", "finetune"]
STRATEGIES: tuple[Strategy, ...] = ("scratch", "frozen", "finetune")


@dataclass(frozen=True)
class Look:
    label: str
    # Okabe–Ito line colours: distinguishable with the common colour-vision deficiencies.
    colour: str
    # The same hue dark enough for text on the page (WCAG AA, 4.5:1 on its paper).
    ink: str


LOOKS: dict[Strategy, Look] = {
    "scratch": Look("Scratch", "#d55e00", "#a94b00"),
    "frozen": Look("Frozen", "#0072b2", "#0072b2"),
    "finetune": Look("Fine-tune", "#009e73", "#007c5a"),
}


# Fine-tune kept by a regulariser (``keep``), as the trade-off panel and figure draw it;
# fine-tune with none is fine-tune's own look.
KEEP_LOOKS: dict[str, Look] = {
    "l2sp": Look("L2-SP", "#cc79a7", "#a2457e"),
    "ewc": Look("EWC", "#e69f00", "#8c5a00"),
}


def css_properties() -> str:
    """The tables as CSS custom properties (``--scratch``, ``--scratch-ink``, ``--l2sp``, …) for ``:root``."""
    looks = LOOKS | KEEP_LOOKS
    return " ".join(f"--{name}: {look.colour}; --{name}-ink: {look.ink};" for name, look in looks.items())


def public() -> list[dict[str, str]]:
    """Each strategy for the page, in racing order."""
    return [{"name": name, **asdict(LOOKS[name])} for name in STRATEGIES]
