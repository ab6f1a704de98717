"""The pretrained checkpoint: weights in safetensors beside a small JSON card.

The card records how the weights were made (split, seed, epochs, source accuracy, the
machine) and the SHA-256 of the weights file, which loading verifies before trusting it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from headstart.errors import SetupError

# Bumped whenever the architecture changes in a way parameter shapes cannot reveal
# (/2: the stem has stride 2), so an old checkpoint is refused rather than silently misused.
FORMAT = "headstart-checkpoint/2"


class CheckpointError(SetupError):
    """The checkpoint is missing, corrupt or made for another model; the message says which."""


@dataclass(frozen=True)
class Card:
    width: int
    blocks_per_stage: int
    source_classes: list[int]
    seed: int
    epochs: int
    source_test_acc: float
    sha256: str
    format: str = FORMAT
    source: str = "near"  # what it was pretrained on (headstart/race/sources.py)
    # Where it was trained: the device and, on a CPU, the kernels' instruction set and the thread
    # count, which decide the order floats are summed in, so the bits pretraining gives.
    trained_on: str | None = None
    threads: int | None = None
    # The source task's diagonal Fisher at these weights, for EWC: its file's hash, how many
    # source training images it averages over, and which estimate (``regularisers.fisher_diagonal``).
    fisher_sha256: str | None = None
    fisher_images: int | None = None
    fisher_estimate: str | None = None


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def fisher_path(weights: Path) -> Path:
    return weights.with_suffix(".fisher.safetensors")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(state: dict[str, torch.Tensor], path: Path, **card_fields: object) -> Card:
    """Write the weights, then the card with their hash (the card is the commit point)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)
    card = Card(sha256=sha256(path), **card_fields)  # type: ignore[arg-type]
    card_path(path).write_text(json.dumps(asdict(card), indent=2) + "\n")
    return card


def save_fisher(fisher: dict[str, torch.Tensor], weights: Path, images: int, estimate: str) -> Card:
    """Write the Fisher beside the weights, then record it on their card."""
    path = fisher_path(weights)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in fisher.items()}, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)
    card = replace(read_card(weights), fisher_sha256=sha256(path), fisher_images=images, fisher_estimate=estimate)
    card_path(weights).write_text(json.dumps(asdict(card), indent=2) + "\n")
    return card


def load_fisher(weights: Path, card: Card) -> dict[str, torch.Tensor]:
    """The source task's Fisher for these weights, verified against the card."""
    path = fisher_path(weights)
    remake = "re-run `python -m headstart pretrain --fisher-only`"
    if card.fisher_sha256 is None or not path.is_file():
        raise CheckpointError(f"{path}: the source task's Fisher (for EWC) is missing; {remake}")
    if sha256(path) != card.fisher_sha256:
        raise CheckpointError(f"{path}: SHA-256 does not match its card's fisher_sha256; {remake}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read safetensors ({exc}); {remake}") from exc


def read_card(path: Path) -> Card:
    cpath = card_path(path)
    try:
        fields = json.loads(cpath.read_text())
        card = Card(**fields)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{cpath}: checkpoint card missing; run `python -m headstart pretrain`") from exc
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{cpath}: checkpoint card is not valid ({exc})") from exc
    if card.format != FORMAT:
        raise CheckpointError(f"{cpath}: card format {card.format!r}, expected {FORMAT!r}; re-run `python -m headstart pretrain`")
    return card


def load(path: Path, width: int, blocks_per_stage: int, source_classes: tuple[int, ...]) -> tuple[Card, dict[str, torch.Tensor]]:
    """Verify and load a checkpoint made for this model shape and source split."""
    card = read_card(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint weights missing; run `python -m headstart pretrain`")
    actual = sha256(path)
    if actual != card.sha256:
        raise CheckpointError(
            f"{path}: SHA-256 {actual[:12]}… does not match its card's {card.sha256[:12]}…; "
            "the file is corrupt or was replaced; re-run `python -m headstart pretrain`"
        )
    wanted = {"width": width, "blocks_per_stage": blocks_per_stage, "source_classes": list(source_classes)}
    made = {key: getattr(card, key) for key in wanted}
    if made != wanted:
        raise CheckpointError(f"{path}: made for {made}, but settings ask for {wanted}; re-run `python -m headstart pretrain`")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read safetensors ({exc})") from exc
    return card, state
