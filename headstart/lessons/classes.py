"""Which target classes transfer helps most, and which confusions fine-tuning removes: the
default race at n = 50, over three seeds, read from each race's confusion matrices.

``measure`` trains the races; ``table`` writes what they show for docs/scenario.md and
``write_csv`` each seed's numbers to docs/sweep/classes.csv, which the guided lesson quotes; the
page's one sentence (``headstart.page.CLASS_LESSON``) states the finding, and ``holds`` checks
that sentence's claims against a measurement.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.race.events import Done, Plan, RaceConfig
from headstart.settings import Settings

N = 50
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Classes:
    """Means over the seeds: each strategy's per-class accuracy, and its confusion counts."""

    classes: list[str]
    seeds: int
    per_class: dict[str, np.ndarray]  # strategy → (classes,)
    confusion: dict[str, np.ndarray]  # strategy → (classes, classes)
    rows: list[dict[str, str]] = field(default_factory=list)  # each seed's, strategy's and class's final numbers

    def gains(self, better: str = "finetune", than: str = "scratch") -> list[tuple[str, float]]:
        """Each class's accuracy gain, ``better`` minus ``than``, largest first."""
        gain = self.per_class[better] - self.per_class[than]
        return sorted(zip(self.classes, gain.tolist(), strict=True), key=lambda item: -item[1])

    def removed(self, better: str = "finetune", than: str = "scratch") -> list[tuple[str, str, float, float]]:
        """Confusions (true, said) with how many images each strategy made of them, most removed first."""
        a, b = self.confusion[than], self.confusion[better]
        pairs = [
            (self.classes[t], self.classes[p], float(a[t, p]), float(b[t, p]))
            for t in range(len(self.classes))
            for p in range(len(self.classes))
            if t != p
        ]
        return sorted(pairs, key=lambda pair: pair[3] - pair[2])


def measure(settings: Settings, seeds: Sequence[int] = SEEDS, n: int = N) -> Classes:
    from headstart.training.engine import Resources, run_race, warm_up

    res = Resources.load(settings)
    warm_up(res)
    plans, dones, configs = [], [], []
    for seed in seeds:
        config = RaceConfig.validate_with({"n": n, "seed": seed}, settings.limits)
        configs.append(config)
        for event in run_race(config, res):
            if isinstance(event, Plan):
                plans.append(event)
            if isinstance(event, Done):
                dones.append(event)
    return summarise(plans[0].classes, dones, configs)


def summarise(classes: list[str], dones: Sequence[Done], configs: Sequence[RaceConfig]) -> Classes:
    """Means over the races (``configs[i]`` raced ``dones[i]``), and each race's rows for the CSV."""
    names: list[str] = list(dones[0].summary)
    summaries = [{s: d.summary[s] for s in names} for d in dones]  # type: ignore[index]
    per_class = {s: np.mean([np.asarray(one[s].per_class_acc) for one in summaries], axis=0) for s in names}
    confusion = {s: np.mean([np.asarray(one[s].confusion) for one in summaries], axis=0) for s in names}
    rows = [
        {
            "seed": str(config.seed), "n": str(config.n), "source": config.source, "frozen": str(config.locked),
            "epoch": str(config.epochs), "epochs": str(config.epochs), "strategy": s, "class": name,
            "per_class_acc": f"{one[s].per_class_acc[c]:.4f}",  # type: ignore[index]
            "said": str(int(np.asarray(one[s].confusion)[:, c].sum())),  # how many test images it called this class
        }
        for config, one in zip(configs, summaries, strict=True)
        for s in names
        for c, name in enumerate(classes)
    ]  # fmt: skip
    return Classes(classes, len(dones), per_class, confusion, rows)


def write_csv(found: Classes, out: Path) -> None:
    """Each seed's final per-class accuracy and how often each strategy said each class, one row apiece."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(found.rows[0]))
        writer.writeheader()
        writer.writerows(found.rows)


def table(found: Classes) -> str:
    """Per-class accuracy by strategy and fine-tune's gain, then the confusions it removes most."""
    names = list(found.per_class)
    lines = [
        "| class | " + " | ".join(names) + " | fine-tune − scratch |",
        "| --- |" + " ---: |" * (len(names) + 1),
    ]
    for c, name in enumerate(found.classes):
        cells = " | ".join(f"{100 * found.per_class[s][c]:.1f}" for s in names)
        gain = 100 * (found.per_class["finetune"][c] - found.per_class["scratch"][c])
        lines.append(f"| {name} | {cells} | {gain:+.1f} |")
    lines += ["", "| true → said | scratch | fine-tune | removed |", "| --- | ---: | ---: | ---: |"]
    for true, said, scratch, finetune in found.removed()[:5]:
        lines.append(f"| {true} → {said} | {scratch:.1f} | {finetune:.1f} | {scratch - finetune:.1f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Claim:
    """What the page's sentence says: the classes transfer helps most, and the confusion it removes most."""

    helped: tuple[str, ...]
    removed: tuple[str, str]


def holds(found: Classes, claim: Claim) -> Iterable[str]:
    """Where the measurement disagrees with ``claim``: nothing, when it holds."""
    top = [name for name, _ in found.gains()[: len(claim.helped) + 1]]
    for name in claim.helped:
        if name not in top:
            yield f"{name} is not among the classes fine-tune helps most: {found.gains()}"
    if any(gain <= 0 for name, gain in found.gains() if name in claim.helped):
        yield f"fine-tune does not beat scratch on {claim.helped}: {found.gains()}"
    removed = [(t, p) for t, p, _, _ in found.removed()[:3]]
    if claim.removed not in removed:
        yield f"{claim.removed} is not among the confusions fine-tune removes most: {found.removed()[:3]}"
