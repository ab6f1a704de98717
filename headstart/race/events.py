"""The race's configuration and the events it emits: plain data, no transport.

The engine yields these; the server adds a ``race_id`` and streams them; the CLI
prints them as JSON Lines; docs/protocol.md shows an example of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator, model_validator

from headstart.race import bodies, sources
from headstart.race.bodies import Body
from headstart.race.sources import Source
from headstart.race.strategies import EXTRAS, LOOKS, STRATEGIES, Extra, Strategy
from headstart.settings import (
    BUILT_IN_DATASET,
    FORMER_NAMES,
    Choice,
    Choices,
    FloatRange,
    IntRange,
    Limits,
    get_settings,
    renamed,
)

__all__ = ["STRATEGIES", "Strategy"]

Control = Literal["units", "size", "log", "number", "choice", "checks", "count"]
Group = Literal["task", "basic", "keep", "extra", "advanced"]
# How fine-tune keeps the source task (headstart/training/regularisers.py); "none" is plain fine-tuning.
Keep = Literal["none", "l2sp", "ewc"]
KEEPS: dict[str, tuple[str, str]] = {
    "none": ("None", "plain fine-tuning"),
    "l2sp": ("L2-SP", "every trained weight pulled back toward its pretrained value alike"),
    "ewc": ("EWC", "each weight pulled back by how much the source task depends on it"),
}
EXTRA_TEXT: dict[str, tuple[str, str]] = {
    "gradual": (LOOKS["gradual"].label, "starts as frozen, then unlocks one body unit from the top every two epochs"),
    "lora": (LOOKS["lora"].label, "the body stays locked; each convolution learns a small low-rank update beside it"),
}


def beyond_data(n: int, held: int, classes: int) -> str:
    """Why a race of ``n`` target images cannot train on a dataset holding ``held`` of them."""
    each = held // classes
    return f"the dataset holds {each} images of each target class, so a race can have at most {held} target images, not {n}"


def _field(
    label: str,
    help: str,
    control: Control = "number",
    group: Group = "basic",
    neutral: str | list[str] | None = None,
    moot_when: dict[str, str] | None = None,
    options: Mapping[str, tuple[str, str]] | None = None,
    needs: dict[str, str] | None = None,
) -> Any:
    """A race field: ``help`` for the CLI and the page's hint, ``label`` as the page's control
    says it, ``control`` the kind of control, ``group`` where the page puts it. ``neutral``: the
    value at which it changes nothing; ``moot_when``: the other fields' values that make it so;
    ``needs``: an option another field must hold for this one to matter; ``options``: a
    choice's label and one-line description per value."""
    extra: dict[str, Any] = {
        "label": label,
        "control": control,
        "group": group,
        "neutral": neutral,
        "moot_when": moot_when,
        "needs": needs,
    }
    if options is not None:
        extra["options"] = {value: list(text) for value, text in options.items()}
    return Field(description=help, json_schema_extra=extra)


class RaceConfig(BaseModel):
    """One race: a configuration trained under all three strategies.

    The one definition of a race's fields: the CLI's options, ``/api/config``, the page's
    controls and URL, the CSV's columns and the store's key all come from here. Defaults and
    ranges come from the settings' limits, field by field (``context={"limits": ...}`` when
    validating, the global settings otherwise).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    locked: int = _field("Fine-tune locks", "body units fine-tune locks, counted from the input; the rest train gently", "units")
    n: int = _field("Target images", "target training images to learn from, balanced across the classes", "size")
    epochs: int = _field("Epochs", "passes over the target training images")
    seed: int = _field("Seed", "seed for initialisation and shuffling")
    lr_scratch: float = _field("Scratch's learning rate", "AdamW learning rate of scratch", group="advanced")
    lr_head: float = _field("New head's learning rate", "learning rate of the new head (frozen, fine-tune)", group="advanced")
    body_lr_ratio: float = _field(
        "Fine-tune body × head", "fine-tune's body learning rate as a fraction of lr_head; at 1 it forgets most", "log", "keep"
    )
    source: Source = _field(
        "Pretrained on",
        "what frozen's and fine-tune's body learned first: near, far from the target, or noise",
        "choice",
        neutral=sources.DEFAULT,
        options={name: (look.label, look.description) for name, look in sources.SOURCES.items()},
        needs={"body": bodies.DEFAULT},
    )
    keep: Keep = _field(
        "Keep the source task",
        "a pull back toward the pretrained weights on fine-tune's trained units",
        "choice",
        "keep",
        neutral="none",
        options=KEEPS,
    )
    keep_strength: float = _field(
        "Strength", "the pull's strength, α for L2-SP or λ for EWC", "log", "keep", moot_when={"keep": "none"}
    )
    extra: tuple[Extra, ...] = _field(
        "Add a strategy", "lanes to race beside the three, comma-separated", "checks", "extra", neutral=[], options=EXTRA_TEXT
    )
    lora_rank: int = _field(
        "LoRA rank", "the rank of each body convolution's low-rank update", "count", "extra", needs={"extra": "lora"}
    )
    dataset: str = _field(
        "Images",
        "the target task's images: the built-in clothes, or a folder of the server's with one subfolder per class",
        "choice",
        "task",
        neutral=BUILT_IN_DATASET,
        options={BUILT_IN_DATASET: ("Clothes (Fashion-MNIST)", "five kinds of clothing in 28-pixel grayscale photos")},
    )
    body: Body = _field(
        "Network",
        "the network every strategy trains: the built-in tiny ResNet, or a real one pretrained on ImageNet",
        "choice",
        "task",
        neutral=bodies.DEFAULT,
        options={name: (spec.label, spec.description) for name, spec in bodies.BODIES.items()},
    )

    @field_validator("extra", mode="before")
    @classmethod
    def _lanes(cls, value: object) -> object:
        """``gradual,lora`` as a link or the CLI writes it; a list as JSON does."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("extra")
    @classmethod
    def _in_racing_order(cls, value: tuple[Extra, ...]) -> tuple[Extra, ...]:
        """One order, whatever order they were asked in: one race, one key."""
        return tuple(name for name in EXTRAS if name in value)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object, info: ValidationInfo) -> object:
        if isinstance(data, dict):
            limits = _limits(info)
            data = {name: getattr(limits, name).default for name in cls.model_fields} | renamed(data)
        return data

    @field_validator("*")
    @classmethod
    def _in_range(cls, value: float | str | tuple[str, ...], info: ValidationInfo) -> float | str | tuple[str, ...]:
        allowed: IntRange | FloatRange | Choice | Choices = getattr(_limits(info), info.field_name or "")
        if isinstance(allowed, Choice) and isinstance(value, str) and not allowed.allows(value):
            also = f", or {allowed.pattern_means}" if allowed.pattern else ""
            raise ValueError(f"{info.field_name} must be one of {', '.join(allowed.options)}{also}, got {value!r}")
        if isinstance(allowed, Choice | Choices) or isinstance(value, str | tuple):
            return value  # its type names the options
        if not allowed.min <= value <= allowed.max:
            raise ValueError(f"{info.field_name} must be between {allowed.min} and {allowed.max}, got {value}")
        return value

    @model_validator(mode="after")
    def _body_offers_keep(self) -> RaceConfig:
        if self.keep == "ewc" and not bodies.BODIES[self.body].has_source_task:
            raise ValueError(
                f"keep=ewc needs the source task's Fisher, which {self.body} (pretrained on ImageNet) does not come with; "
                "choose keep=l2sp or none, or the tiny body"
            )
        return self

    @classmethod
    def validate_with(cls, data: object, limits: Limits) -> RaceConfig:
        return cls.model_validate(data, context={"limits": limits})

    def _neutral(self) -> set[str]:
        """Fields at values that change nothing (no regulariser, or the strength of none). Left
        out of the identity, so races and sweeps from before the fields existed keep theirs."""
        out = set()
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            assert isinstance(extra, dict)
            moot, needs, value = extra["moot_when"], extra["needs"], getattr(self, name)
            if (
                (list(value) if isinstance(value, tuple) else value) == extra["neutral"]
                or (isinstance(moot, dict) and all(getattr(self, k) == v for k, v in moot.items()))
                or (isinstance(needs, dict) and not all(v in getattr(self, k) for k, v in needs.items()))
            ):
                out.add(name)
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that decide what trains."""
        return self.model_dump(exclude=self._neutral())

    def key(self) -> str:
        """A stable identity for caching finished races of this configuration.

        Written with each field's first name, so races stored before a rename keep their key.
        """
        key = self.model_dump_json(exclude=self._neutral())
        for former, name in FORMER_NAMES.items():
            key = key.replace(f'"{name}":', f'"{former}":', 1)
        return key

    @classmethod
    def as_stored(cls, config: Mapping[str, Any]) -> RaceConfig:
        """A stored race's configuration, unchecked against today's limits: its fields under
        today's names, a list (the extra lanes) back to the tuple the field holds."""
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in renamed(config).items()}
        return cls.model_construct(**fields)


class Option(BaseModel):
    value: str
    label: str
    description: str
    unavailable: str | None = None  # why a race cannot choose it here (weights missing), or None


class FieldSpec(BaseModel):
    """One race field as the CLI and the page need it: what it is, and what it allows."""

    name: str
    label: str
    help: str
    kind: Literal["int", "float", "choice", "set"]
    control: Control
    group: Group
    min: int | float | None = None  # for numbers
    max: int | float | None = None
    options: list[Option] | None = None  # for choices
    default: int | float | str | list[str]
    neutral: str | list[str] | None = None  # the value at which it changes nothing
    moot_when: dict[str, str] | None = None  # other fields' values at which this one changes nothing
    needs: dict[str, str] | None = None  # an option another field must hold for this one to matter
    former: list[str] = []  # names it had before, still read from links and the command line


def race_fields(
    limits: Limits,
    described: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
    unavailable: Mapping[str, Mapping[str, str]] | None = None,
) -> list[FieldSpec]:
    """Every race field, in order, with its range and default under ``limits``.

    ``described``: the label and description of options the settings add (the server's
    datasets); ``unavailable``: per field, options a race cannot choose here, and why."""
    described, unavailable = described or {}, unavailable or {}
    specs = []
    for name, info in RaceConfig.model_fields.items():
        extra = info.json_schema_extra
        assert isinstance(extra, dict)
        allowed: IntRange | FloatRange | Choice | Choices = getattr(limits, name)
        kind = "set" if isinstance(allowed, Choices) else "choice" if isinstance(allowed, Choice) else None
        spec = FieldSpec(
            name=name,
            label=str(extra["label"]),
            help=info.description or "",
            kind=kind or ("int" if info.annotation is int else "float"),
            control=extra["control"],
            group=extra["group"],
            default=list(allowed.default) if isinstance(allowed, Choices) else allowed.default,
            neutral=extra["neutral"],
            moot_when=extra["moot_when"],
            needs=extra["needs"],
            former=[old for old, new in FORMER_NAMES.items() if new == name],
        )
        if isinstance(allowed, Choice | Choices):
            text: dict[str, Any] = {**extra["options"], **described.get(name, {})}  # type: ignore[dict-item]  # set by _field
            values = (
                allowed.options
                if isinstance(allowed, Choice) and allowed.options
                else get_args(get_args(info.annotation)[0] if kind == "set" else info.annotation)
            )
            folder = (None, "a folder of this server's images, one subfolder per class")  # a dataset not described
            spec.options = [
                Option(
                    value=v,
                    label=text.get(v, folder)[0] or v,
                    description=text.get(v, folder)[1],
                    unavailable=unavailable.get(name, {}).get(v),
                )
                for v in values
            ]
        else:
            spec.min, spec.max = allowed.min, allowed.max
        specs.append(spec)
    return specs


def _limits(info: ValidationInfo) -> Limits:
    context = info.context or {}
    limits = context.get("limits") or get_settings().limits
    assert isinstance(limits, Limits)
    return limits


class UnitInfo(BaseModel):
    name: str
    label: str
    params: int
    lora_per_rank: int = 0  # LoRA's trainable parameters in this unit per unit of rank


class StrategyPlan(BaseModel):
    trainable_units: list[str]  # body units that train, plus "head"
    batch_size: int  # images per step: frozen's steps are nearly free, so it takes smaller ones
    trainable_params: int
    total_params: int


class Plan(BaseModel):
    type: Literal["plan"] = "plan"
    config: RaceConfig
    device: str
    units: list[UnitInfo]
    strategies: dict[Strategy, StrategyPlan]
    train_size: int
    test_size: int
    classes: list[str]
    image_size: int = 28  # the side of the images the body trains on
    # Files of a folder dataset that could not be decoded, skipped: how many, and the first few with why.
    skipped: int = 0
    skipped_files: list[str] = []


class Epoch(BaseModel):
    type: Literal["epoch"] = "epoch"
    strategy: Strategy
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    test_acc: float
    trainable_params: int
    total_params: int
    compute_s: float  # this strategy's own compute seconds so far
    images_per_s: float
    # The body as it stands, with the checkpoint's own source head, on the source classes'
    # probe images: what it still knows of the task it was pretrained on. None for scratch,
    # which has no source head. Measured, not trained: not on the strategy's clock.
    source_acc: float | None = None
    # The units that trained in this epoch, for a lane whose set changes as it goes (gradual);
    # None where the plan's set holds for the whole race.
    trainable_units: list[str] | None = None


class StrategySummary(BaseModel):
    final_test_acc: float
    best_test_acc: float
    compute_s: float
    final_source_acc: float | None = None  # the last epoch's source_acc
    # Of compute_s, the locked units' pass this race did not run for the strategy: it was
    # shared with a strategy locking fewer units, or kept from an earlier race.
    reused_s: float = 0.0
    # The final epoch on the whole test set, in the plan's class order: counts with rows the
    # true class and columns the predicted one, and each class's share it got right. None in a
    # race stored before they were kept.
    confusion: list[list[int]] | None = None
    per_class_acc: list[float] | None = None


class Predictions(BaseModel):
    """Each test image's true class and every strategy's final prediction, sent once, before
    done: what a gallery shows. ``index`` names each image in its dataset (the official test
    set's index, or its place in a folder's test listing) at ``images_version``."""

    type: Literal["predictions"] = "predictions"
    dataset: str
    images_version: str
    index: list[int]
    truth: list[int]
    predicted: dict[Strategy, list[int]]


class Done(BaseModel):
    type: Literal["done"] = "done"
    summary: dict[Strategy, StrategySummary]
    wall_s: float
    source_s: float = 0.0  # of wall_s, measuring source_acc: on no strategy's clock

    @model_validator(mode="after")
    def _all_strategies(self) -> Done:
        if not set(STRATEGIES) <= set(self.summary):
            raise ValueError("done must summarise every strategy the race trained")
        return self


RaceEvent = Plan | Epoch | Predictions | Done
RACE_EVENT_TYPES = ("plan", "epoch", "predictions", "done")  # what a stored race replays, in order
# Reads a race event back from its JSON (a stored race, replayed).
RACE_EVENT: TypeAdapter[RaceEvent] = TypeAdapter(Annotated[RaceEvent, Field(discriminator="type")])
