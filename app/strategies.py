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


def css_properties() -> str:
    """The table as CSS custom properties (``--scratch``, ``--scratch-ink``, …) for ``:root``."""
    return " ".join(f"--{name}: {look.colour}; --{name}-ink: {look.ink};" for name, look in LOOKS.items())


def public() -> list[dict[str, str]]:
    """Each strategy for the page, in racing order."""
    return [{"name": name, **asdict(LOOKS[name])} for name in STRATEGIES]
