"""The guided lessons, defined once: each asks one question, starts from one race, leaves a few
controls free, shows the one panel that answers it, and explains the answer with the numbers
the shipped sweeps measured (docs/scenario.md).

The page (``?lesson=ID``), ``/api/config``, a bake and the tests all read ``LESSONS``. Each
quoted number is a ``Measured``: the sweep, the rows and the strategy it was read from, so a
test can read it again from the shipped CSV and fail where the calibration moved. More lessons
are more entries here.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from headstart.race import bodies
from headstart.race.bodies import Body

Metric = Literal["test_acc", "source_acc"]
Quoted = Literal["test_acc", "source_acc", "trainable_params", "per_class_acc", "said"]
COUNTS: set[Quoted] = {"trainable_params", "said"}  # quoted whole; the rest are accuracies, in %


class Measured(BaseModel):
    """One number a lesson quotes: the final-epoch mean over seeds of ``metric`` for ``strategy``
    in the rows of ``sweep`` (a CSV under docs/sweep) matching ``where``; accuracies in %. A
    class's numbers (``per_class_acc``, and ``said``: how many test images a strategy called that
    class) come from classes.csv, with the class in ``where``."""

    sweep: str
    where: dict[str, str]
    strategy: str
    metric: Quoted = "test_acc"
    value: float

    def read(self, folder: Path) -> float:
        """The number as the shipped CSV says it today, to one decimal."""
        with (folder / f"{self.sweep}.csv").open() as f:
            rows = [
                r
                for r in csv.DictReader(f)
                if r["strategy"] == self.strategy and r["epoch"] == r["epochs"] and r[self.metric]
                and all(r[k] == v for k, v in self.where.items())
            ]  # fmt: skip
        if not rows:
            raise LookupError(f"{self.sweep}.csv has no final {self.metric} of {self.strategy} where {self.where}")
        mean = statistics.mean(float(r[self.metric]) for r in rows)
        return round(mean) if self.metric in COUNTS else round(100 * mean, 1)


class Lesson(BaseModel):
    id: str
    title: str
    question: str  # asked before the race: the student predicts which lane ends ahead
    preset: dict[str, Any]  # the race it starts from; fields not named keep their defaults
    free: list[str]  # the race fields the student may still change
    panel: str  # the panel that answers it, by the name that hides it (hide=sweep, source, keep, extra)
    metric: Metric = "test_acc"  # what the chart shows, and "ends ahead" is judged on unless ``focus`` names a class
    focus: str | None = None  # a class: "ends ahead" is then judged on that class's test accuracy
    answer: str  # the lane that ends ahead in the shipped sweep's mean
    explanation: str
    measured: list[Measured]

    @property
    def body(self) -> Body:
        """The network its race trains: the preset's, or the built-in one."""
        return self.preset.get("body", bodies.DEFAULT)  # type: ignore[no-any-return]

    @property
    def judged(self) -> Quoted:
        """What "ends ahead" is judged on: the chart's measure, or the focus class's accuracy."""
        return "per_class_acc" if self.focus else self.metric


def _m(sweep: str, strategy: str, value: float, metric: Quoted = "test_acc", **where: str) -> Measured:
    return Measured(sweep=sweep, where=where, strategy=strategy, metric=metric, value=value)


LESSONS: list[Lesson] = [
    Lesson(
        id="data",
        title="Little data",
        question="With only 50 images of clothes to learn from, which strategy ends ahead after 10 epochs?",
        preset={"n": 50, "locked": 2, "source": "near", "epochs": 10, "extra": []},
        free=["n", "seed"],
        panel="sweep",
        answer="finetune",
        explanation=(
            "Over three seeds at 50 images, fine-tune ended at 76.4 %, frozen at 70.0 % and scratch at 43.3 %: "
            "a pretrained body is a head start that 50 images cannot give a random one. Slide to more images "
            "and the gap closes: at 5,000, fine-tune 91.9 %, scratch 90.8 %."
        ),
        measured=[
            _m("sweep", "finetune", 76.4, n="50"),
            _m("sweep", "frozen", 70.0, n="50"),
            _m("sweep", "scratch", 43.3, n="50"),
            _m("sweep", "finetune", 91.9, n="5000"),
            _m("sweep", "scratch", 90.8, n="5000"),
        ],
    ),
    Lesson(
        id="source",
        title="A far source",
        question="With 50 images, will a body pretrained on scrambled pixels still beat training from scratch?",
        preset={"n": 50, "locked": 2, "source": "far", "epochs": 10, "extra": []},
        free=["source", "seed"],
        panel="sweep",
        answer="finetune",
        explanation=(
            "Yes, by a lot: from the scrambled source fine-tune ended at 70.4 % and frozen at 62.2 %, scratch at "
            "43.3 %. Most of the head start at 50 images comes from having any trained body; what the near source "
            "taught adds the rest (its fine-tune: 76.4 %). With more images a far source starts to hurt."
        ),
        measured=[
            _m("sweep-far", "finetune", 70.4, n="50"),
            _m("sweep-far", "frozen", 62.2, n="50"),
            _m("sweep-far", "scratch", 43.3, n="50"),
            _m("sweep", "finetune", 76.4, n="50"),
        ],
    ),
    Lesson(
        id="locking",
        title="How much to lock",
        question="Fine-tune with four of its five units locked, 50 images: which strategy ends ahead?",
        preset={"n": 50, "locked": 4, "source": "near", "epochs": 10, "extra": []},
        free=["locked", "seed"],
        panel="source",
        answer="finetune",
        explanation=(
            "Fine-tune, whatever it locks: with 50 images it ended at 74.8 % locking four units and 76.4 % locking "
            "none, frozen (all five locked) at 70.0 %, scratch at 43.3 %. Each locked unit is one that cannot "
            "overfit 50 images, and one that cannot adapt either; the last unit trained lifts fine-tune above frozen."
        ),
        measured=[
            _m("depth", "finetune", 74.8, source="near", n="50", frozen="4"),
            _m("depth", "finetune", 76.4, source="near", n="50", frozen="0"),
            _m("depth", "frozen", 70.0, source="near", n="50", frozen="4"),
            _m("depth", "scratch", 43.3, source="near", n="50", frozen="4"),
        ],
    ),
    Lesson(
        id="forgetting",
        title="What fine-tuning forgets",
        question="Fine-tune trains every unit at full rate on the new clothes. After 10 epochs, which strategy "
        "still tells the old clothes apart best?",
        preset={"n": 200, "locked": 0, "body_lr_ratio": 1.0, "keep": "none", "source": "near", "epochs": 10, "extra": []},
        free=["keep", "keep_strength", "seed"],
        panel="keep",
        metric="source_acc",
        answer="frozen",
        explanation=(
            "Frozen, which cannot change its body: it still scores 99.4 % on the old clothes, while fine-tune fell "
            "to 75.9 % as it learned the new ones (86.1 % on them, frozen 80.6 %). Choose L2-SP or EWC to pull "
            "fine-tune back toward what it knew, and see what that costs on the new task."
        ),
        measured=[
            _m("keep", "frozen", 99.4, "source_acc", keep="none", body_lr_ratio="1.0", frozen="0"),
            _m("keep", "finetune", 75.9, "source_acc", keep="none", body_lr_ratio="1.0", frozen="0"),
            _m("keep", "finetune", 86.1, keep="none", body_lr_ratio="1.0", frozen="0"),
            _m("keep", "frozen", 80.6, keep="none", body_lr_ratio="1.0", frozen="0"),
        ],
    ),
    Lesson(
        id="adapters",
        title="Cheaper ways to adapt",
        question="LoRA trains 17,257 of the body's parameters where fine-tune trains 303,045. With 200 images, "
        "which lane ends ahead?",
        preset={"n": 200, "locked": 2, "source": "near", "epochs": 10, "extra": ["gradual", "lora"], "lora_rank": 4},
        free=["lora_rank", "seed"],
        panel="extra",
        answer="lora",
        explanation=(
            "LoRA, by a little: 85.4 % against fine-tune's 84.6 % and gradual unfreezing's 83.4 %, with frozen at "
            "80.6 % and scratch at 80.7 %. A low-rank update to every unit adapts the whole body while training a "
            "seventeenth of what fine-tune trains; a single race may order them differently, by a point or so."
        ),
        measured=[
            _m("lanes", "lora", 85.4, extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "finetune", 84.6, extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "gradual", 83.4, extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "frozen", 80.6, extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "scratch", 80.7, extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "lora", 17_257, "trainable_params", extra="gradual lora", lora_rank="4", frozen="2"),
            _m("lanes", "finetune", 303_045, "trainable_params", extra="gradual lora", lora_rank="4", frozen="2"),
        ],
    ),
    Lesson(
        id="classes",
        title="What each got right",
        question="With 10 images of each kind of clothing, which strategy recognises the most pullovers?",
        preset={"n": 50, "locked": 2, "source": "near", "epochs": 10, "extra": []},
        free=["seed"],
        panel="outcome",
        focus="Pullover",
        answer="finetune",
        explanation=(
            "Fine-tune: over three seeds it named 82.2 % of the pullovers, frozen 69.5 %, scratch 2.2 %. Scratch "
            "mostly guesses: it called 471 of 1,000 test pictures a dress, so its 92.0 % on dresses is not skill. "
            "Read the matrices: the pretrained bodies never call a shoe a top."
        ),
        measured=[
            _m("classes", "finetune", 82.2, "per_class_acc", n="50", **{"class": "Pullover"}),
            _m("classes", "frozen", 69.5, "per_class_acc", n="50", **{"class": "Pullover"}),
            _m("classes", "scratch", 2.2, "per_class_acc", n="50", **{"class": "Pullover"}),
            _m("classes", "scratch", 471, "said", n="50", **{"class": "Dress"}),
            _m("classes", "scratch", 92.0, "per_class_acc", n="50", **{"class": "Dress"}),
        ],
    ),
    Lesson(
        id="imagenet",
        title="A real ImageNet body",
        question="EfficientNet-Lite0 learned from 1.3 million ImageNet photos. Given 50 images of clothes, which "
        "strategy ends ahead?",
        preset={"n": 50, "locked": 2, "body": "efficientnet_lite0", "epochs": 10, "extra": []},
        free=["n", "seed"],
        panel="outcome",
        answer="frozen",
        explanation=(
            "Frozen, training only its 6,405-parameter head: 73.4 % over three seeds, fine-tune 67.1 %, scratch "
            "21.7 %, near guessing (20 %). Fine-tuning 3,361,621 weights on 50 images pulls them from what ImageNet "
            "taught; at 200 images it catches up (81.3 % against 82.0 %). Measured at 96 pixels, the side a CPU "
            "server trains at."
        ),
        measured=[
            _m("sweep-efficientnet_lite0", "frozen", 73.4, n="50"),
            _m("sweep-efficientnet_lite0", "finetune", 67.1, n="50"),
            _m("sweep-efficientnet_lite0", "scratch", 21.7, n="50"),
            _m("sweep-efficientnet_lite0", "frozen", 6_405, "trainable_params", n="50"),
            _m("sweep-efficientnet_lite0", "finetune", 3_361_621, "trainable_params", n="50"),
            _m("sweep-efficientnet_lite0", "finetune", 81.3, n="200"),
            _m("sweep-efficientnet_lite0", "frozen", 82.0, n="200"),
        ],
    ),
]

BY_ID = {lesson.id: lesson for lesson in LESSONS}


def public(lesson: Lesson) -> dict[str, Any]:
    """A lesson as ``/api/config`` lists it."""
    return lesson.model_dump(exclude={"measured"})
