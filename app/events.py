"""The race's configuration and the events it emits: plain data, no transport.

The engine yields these; the server adds a ``race_id`` and streams them; the CLI
prints them as JSON Lines; docs/protocol.md shows an example of each.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.settings import FloatRange, IntRange, Limits, get_settings

Strategy = Literal["scratch", "frozen", "finetune"]
STRATEGIES: tuple[Strategy, ...] = ("scratch", "frozen", "finetune")


def beyond_data(n: int, held: int, classes: int) -> str:
    """Why a race of ``n`` target images cannot train on a dataset holding ``held`` of them."""
    each = held // classes
    return f"the dataset holds {each} images of each target class, so a race can have at most {held} target images, not {n}"


class RaceConfig(BaseModel):
    """One race: a configuration trained under all three strategies.

    Defaults and ranges come from the settings' limits (``context={"limits": ...}`` when
    validating, the global settings otherwise), so the CLI, the API and the page agree.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frozen: int = Field(description="body units that fine-tune locks, counted from the input")
    n: int = Field(description="target training images, balanced across the five classes")
    epochs: int = Field(description="passes over the target training images")
    seed: int = Field(description="seed for initialisation and shuffling")
    lr_scratch: float = Field(description="AdamW learning rate of scratch")
    lr_head: float = Field(description="learning rate of the new head (frozen, fine-tune)")
    body_lr_ratio: float = Field(description="fine-tune's body learning rate as a fraction of lr_head")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object, info: ValidationInfo) -> object:
        if isinstance(data, dict):
            limits = _limits(info)
            data = {name: getattr(limits, name).default for name in cls.model_fields} | data
        return data

    @field_validator("frozen", "n", "epochs", "seed", "lr_scratch", "lr_head", "body_lr_ratio")
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        allowed: IntRange | FloatRange = getattr(_limits(info), info.field_name)
        if not allowed.min <= value <= allowed.max:
            raise ValueError(f"{info.field_name} must be between {allowed.min} and {allowed.max}, got {value}")
        return value

    @classmethod
    def validate_with(cls, data: object, limits: Limits) -> RaceConfig:
        return cls.model_validate(data, context={"limits": limits})

    def key(self) -> str:
        """A stable identity for caching finished races of this configuration."""
        return self.model_dump_json()


def _limits(info: ValidationInfo) -> Limits:
    context = info.context or {}
    return context.get("limits") or get_settings().limits


class UnitInfo(BaseModel):
    name: str
    label: str
    params: int


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


class StrategySummary(BaseModel):
    final_test_acc: float
    best_test_acc: float
    compute_s: float
    # Of compute_s, the locked units' pass this race did not run for the strategy: it was
    # shared with a strategy locking fewer units, or kept from an earlier race.
    reused_s: float = 0.0


class Done(BaseModel):
    type: Literal["done"] = "done"
    summary: dict[Strategy, StrategySummary]
    wall_s: float

    @model_validator(mode="after")
    def _all_strategies(self) -> Done:
        if set(self.summary) != set(STRATEGIES):
            raise ValueError("done must summarise every strategy")
        return self


RaceEvent = Plan | Epoch | Done
