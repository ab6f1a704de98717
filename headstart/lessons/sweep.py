"""The head start, plotted: final accuracy of each strategy against target data size.

``python -m headstart sweep`` runs real races over a log-spaced range of n and several seeds,
plus a scan of fine-tune's locked units at the default n, and writes every epoch of every
race to a CSV. Races are appended as they finish, so an interrupted sweep resumes where
it stopped; a CSV made with another scenario is refused rather than mixed in.
The plot (PNG and SVG) and the page's panel are drawn from that CSV alone.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headstart.errors import SetupError
from headstart.race import bodies, sources
from headstart.race.bodies import Body
from headstart.race.events import STRATEGIES, Epoch, RaceConfig
from headstart.race.sources import Source
from headstart.race.strategies import LOOKS
from headstart.settings import FORMER_NAMES, Limits, Settings, renamed

COLUMNS = (
    "n",
    "seed",
    "locked",
    "epochs",
    "strategy",
    "epoch",
    "test_acc",
    "train_acc",
    "train_loss",
    "compute_s",
    "trainable_params",
)


class SweepError(SetupError):
    """Sweep results that cannot be used: made for another scenario, or unreadable; the message says which."""


REMAKE = "run `python -m headstart sweep --fresh` to make it again"


def log_spaced(lo: int, hi: int) -> list[int]:
    """lo, hi and the round sizes 1-2-5 × 10^d between them: 25, 50, 100, 200, 500, … 5000."""
    values = {lo, hi}
    for decade in range(int(math.log10(lo)), int(math.log10(hi)) + 1):
        values.update(m * 10**decade for m in (1, 2, 5) if lo <= m * 10**decade <= hi)
    return sorted(values)


@dataclass(frozen=True)
class Plan:
    """Which races a sweep runs: the grid over n × seeds at the default k, and the k-scan."""

    ns: tuple[int, ...]
    seeds: tuple[int, ...]
    base: RaceConfig
    locked_scan: tuple[int, ...] = ()

    def races(self) -> list[RaceConfig]:
        grid = [self.base.model_copy(update={"n": n, "seed": s}) for n in self.ns for s in self.seeds]
        scan = [self.base.model_copy(update={"locked": k, "seed": s}) for k in self.locked_scan for s in self.seeds]
        return list(dict.fromkeys(grid + scan))  # the scan at the default k is already in the grid

    def scenario(self, settings: Settings, checkpoint_sha: str) -> dict[str, Any]:
        """What makes two sweeps comparable: everything but n, seed and k."""
        fixed = {k: v for k, v in self.base.identity().items() if k not in ("n", "seed", "locked")}
        return {
            "race": fixed,
            "default_locked": self.base.locked,
            "default_n": self.base.n,
            **settings.recipe(),
            "checkpoint_sha256": checkpoint_sha,
        }


@dataclass(frozen=True)
class Table:
    """What a sweep's CSV holds: its columns, how each reads back, and which name a race."""

    columns: tuple[str, ...]
    key: tuple[str, ...]  # the columns that tell its races apart
    ints: frozenset[str]
    texts: frozenset[str]  # the rest are floats, or None where written empty
    rows: Callable[[RaceConfig, Iterable[Epoch]], list[dict[str, Any]]]
    # A race's key as its rows write it, where that is not its config's own fields.
    config_key: Callable[[RaceConfig], tuple[Any, ...]] | None = None

    def race_key(self, config: RaceConfig) -> tuple[Any, ...]:
        return self.config_key(config) if self.config_key else tuple(getattr(config, k) for k in self.key)

    def typed(self, key: str, value: str) -> int | float | str | None:
        if key in self.texts:
            return value
        if value == "":
            return None
        return int(value) if key in self.ints else float(value)


# How a sweep's CSV rounds an epoch's figures: enough to compare, short enough to read.
ROUNDED = {"test_acc": 4, "train_acc": 4, "source_acc": 4, "train_loss": 5, "compute_s": 4}


def epoch_rows(
    columns: Sequence[str], race_cells: Callable[[RaceConfig], dict[str, Any]] | None = None
) -> Callable[[RaceConfig, Iterable[Epoch]], list[dict[str, Any]]]:
    """A sweep's rows: one per strategy and epoch, each column a race field (from its
    configuration, or as ``race_cells`` writes it) or an epoch's, rounded as ``ROUNDED`` says."""

    def rows(config: RaceConfig, epochs: Iterable[Epoch]) -> list[dict[str, Any]]:
        race = {c: getattr(config, c) for c in columns if c in RaceConfig.model_fields}
        race |= race_cells(config) if race_cells else {}
        out = []
        for e in epochs:
            cells = {c: race[c] if c in race else getattr(e, c) for c in columns}
            out.append({c: round(v, ROUNDED[c]) if c in ROUNDED and v is not None else v for c, v in cells.items()})
        return out

    return rows


HEAD_START = Table(
    COLUMNS,
    key=("n", "seed", "locked"),
    ints=frozenset({"n", "seed", "locked", "epochs", "epoch", "trainable_params"}),
    texts=frozenset({"strategy"}),
    rows=epoch_rows(COLUMNS),
)


@dataclass
class Results:
    """A sweep's CSV: complete races only, appended one race at a time."""

    path: Path
    table: Table = HEAD_START
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    @classmethod
    def open(cls, path: Path, scenario: dict[str, Any], fresh: bool = False, table: Table = HEAD_START) -> Results:
        results = cls(path, table)
        if fresh or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(table.columns)
            results.meta_path.write_text(json.dumps(scenario, indent=2) + "\n")
            return results
        made = read_meta(results.meta_path)
        differs = sorted(k for k in set(made) | set(scenario) if made.get(k) != scenario.get(k))
        if differs:
            raise SweepError(
                f"{path} was made with a different scenario ({', '.join(differs)} differ); "
                "pass --fresh to start over, or --out to write elsewhere"
            )
        results.rows = read_rows(path, table)
        return results

    def done(self) -> set[tuple[Any, ...]]:
        return {tuple(r[k] for k in self.table.key) for r in self.rows}

    def append(self, config: RaceConfig, epochs: Iterable[Epoch]) -> None:
        rows = self.table.rows(config, epochs)
        with self.path.open("a", newline="") as f:  # one write per race: a crash never leaves half a race
            writer = csv.DictWriter(f, self.table.columns)
            writer.writerows(rows)
        self.rows.extend(rows)


def read_rows(path: Path, table: Table = HEAD_START) -> list[dict[str, Any]]:
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        try:
            for row in reader:
                if None in row or None in row.values():  # DictReader's marks of a field extra or missing
                    raise ValueError(f"not the {len(reader.fieldnames or ())} fields of its header")
                rows.append({k: table.typed(k, v) for k, v in renamed(row).items()})
        except (ValueError, csv.Error) as exc:  # UnicodeDecodeError, for one, is a ValueError
            where = f"line {reader.line_num}" if reader.line_num else "the header"
            raise SweepError(f"cannot read {where} of {path} ({exc}); {REMAKE}") from exc
    if rows and set(rows[0]) != set(table.columns):
        raise SweepError(f"{path} has the columns {', '.join(rows[0])}, not {', '.join(table.columns)}; {REMAKE}")
    return rows


def read_meta(path: Path) -> dict[str, Any]:
    """The scenario a sweep CSV was made with, from the JSON beside it (empty where there is none)."""
    if not path.is_file():
        return {}
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise SweepError(f"cannot read {path} ({exc}); {REMAKE}") from exc
    # Made before the locked units had their name: "frozen", "default_frozen".
    return {FORMER_META.get(k, k): v for k, v in meta.items()}


FORMER_META = {**FORMER_NAMES, **{f"default_{old}": f"default_{new}" for old, new in FORMER_NAMES.items()}}


# Wraps the races still to run, to show them going by (the CLI's progress bar).
Progress = Callable[[Iterable[RaceConfig], int], Iterable[RaceConfig]]


def run_plan(
    races: Sequence[RaceConfig],
    scenario: Callable[[Any], dict[str, Any]],
    out: Path,
    table: Table,
    settings: Settings,
    warm: RaceConfig,
    fresh: bool = False,
    progress: Progress | None = None,
) -> Results:
    """Run every race not already in ``out``'s CSV, appending each as it finishes.

    ``scenario`` gives, from the loaded resources (its checkpoints), what makes two sweeps of
    this kind comparable; a CSV made with another is refused. ``warm``'s first epoch warms the
    process up, untimed, before the first race.
    """
    from headstart.training.engine import Resources, run_race, warm_up

    res = Resources.load(settings)
    results = Results.open(out.with_suffix(".csv"), scenario(res), fresh=fresh, table=table)
    done = results.done()
    todo = [c for c in races if results.table.race_key(c) not in done]
    if todo:
        warm_up(res, warm)  # the first race's compute clocks are then as honest as the rest
    for config in progress(todo, len(races)) if progress else todo:
        results.append(config, [e for e in run_race(config, res) if isinstance(e, Epoch)])
    return results


@dataclass(frozen=True)
class Point:
    """One strategy at one n (at the given k): final test accuracy across seeds."""

    strategy: str
    n: int
    locked: int
    seeds: int
    mean: float
    lo: float
    hi: float
    epoch1_mean: float
    compute_s_per_epoch: float
    trainable_params: int


def finals(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["epoch"] == r["epochs"]]


def summarise(rows: Sequence[dict[str, Any]], locked: int | None = None) -> list[Point]:
    """Per strategy and n (at fine-tune's ``locked``, all k if None): the spread over seeds."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    first: dict[tuple[str, int, int], list[float]] = {}
    for r in rows:
        if locked is not None and r["locked"] != locked:
            continue
        key = (r["strategy"], r["n"], r["locked"])
        if r["epoch"] == r["epochs"]:
            groups.setdefault(key, []).append(r)
        if r["epoch"] == 1:
            first.setdefault(key, []).append(r["test_acc"])
    points = []
    for (strategy, n, k), rs in sorted(groups.items(), key=lambda kv: (STRATEGIES.index(kv[0][0]), kv[0][1], kv[0][2])):
        accs = [r["test_acc"] for r in rs]
        points.append(
            Point(
                strategy=strategy,
                n=n,
                locked=k,
                seeds=len(rs),
                mean=statistics.fmean(accs),
                lo=min(accs),
                hi=max(accs),
                epoch1_mean=statistics.fmean(first[(strategy, n, k)]),
                # The median: a seed's race slowed by another program on a shared machine
                # moves a mean by a third of its delay, and can reorder the fine-tune scan.
                compute_s_per_epoch=statistics.median(r["compute_s"] / r["epochs"] for r in rs),
                trainable_params=rs[0]["trainable_params"],
            )
        )
    return points


def accuracy_table(rows: Sequence[dict[str, Any]], locked: int) -> str:
    """Markdown: test accuracy (%) after epoch 1 and after the last, per n at fine-tune's ``locked``,
    as mean ± spread (max − min) over seeds; docs/scenario.md shows it for the shipped sweep."""
    order = ("finetune", "frozen", "scratch")
    cells: dict[tuple[int, str, str], list[float]] = {}
    last = 0
    for r in rows:
        if r["locked"] == locked and r["epoch"] in (1, r["epochs"]):
            when = "first" if r["epoch"] == 1 else "last"
            cells.setdefault((r["n"], r["strategy"], when), []).append(100 * r["test_acc"])
            last = max(last, r["epochs"])

    def cell(values: list[float]) -> str:
        return f"{statistics.fmean(values):.1f} ± {max(values) - min(values):.1f}"

    names = {"finetune": "fine-tune", "frozen": "frozen", "scratch": "scratch"}
    head = [f"{names[s]} @1" for s in order] + [f"{names[s]} @{last}" for s in order]
    lines = ["| n | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for n in sorted({n for n, _, _ in cells}):
        row = [cell(cells[(n, s, when)]) for when in ("first", "last") for s in order]
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(points: Sequence[Point], out: Path, title: str) -> list[Path]:
    """Final test accuracy against n on a log axis, mean line and min–max band per strategy."""
    fig, ax = new_figure()
    for strategy in STRATEGIES:
        pts = sorted((p for p in points if p.strategy == strategy), key=lambda p: p.n)
        if not pts:
            continue
        ns = [p.n for p in pts]
        ax.fill_between(ns, [100 * p.lo for p in pts], [100 * p.hi for p in pts], color=LOOKS[strategy].colour, alpha=0.18, lw=0)
        ax.plot(ns, [100 * p.mean for p in pts], "o-", color=LOOKS[strategy].colour, label=LOOKS[strategy].label, lw=2, ms=4)
    ax.set_xscale("log")
    ns = sorted({p.n for p in points})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("target training images (log scale)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(textwrap.fill(title, 100), fontsize=10)  # an ImageNet body's title runs past one line
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    return save_figure(fig, out, "headstart-sweep")


def new_figure() -> tuple[Any, Any]:
    """A sweep's figure and its one axes, drawn off screen, at the size every sweep's plot has."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7.5, 4.6), dpi=150, layout="constrained")


def save_figure(fig: Any, out: Path, salt: str) -> list[Path]:
    """Write the figure beside ``out`` as PNG and SVG, and close it.

    No date, and element ids from a fixed salt rather than random ones: regenerating the
    same sweep leaves the committed SVG byte for byte as it was.
    """
    import matplotlib.pyplot as plt

    written = []
    with plt.rc_context({"svg.hashsalt": salt}):
        for suffix in (".png", ".svg"):
            path = out.with_suffix(suffix)
            fig.savefig(path, metadata={"Date": None} if suffix == ".svg" else {})
            written.append(path)
    plt.close(fig)
    return written


def read_shipped(csv_path: Path, table: Table = HEAD_START) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A sweep's scenario and rows, for a page's panel; None where it was never made."""
    if not csv_path.is_file():
        return None
    return read_meta(csv_path.with_suffix(".json")), read_rows(csv_path, table)


def page_payload(csv_path: Path) -> dict[str, Any] | None:
    """The sweep as the page's panel wants it: the grid at the default k, one point per strategy and n."""
    if (shipped := read_shipped(csv_path)) is None:
        return None
    meta, rows = shipped
    k = meta.get("default_locked", rows[0]["locked"] if rows else 0)
    points = summarise(rows, locked=k)
    return {
        "scenario": meta,
        "locked": k,
        "seeds": max((p.seeds for p in points), default=0),
        "points": [asdict(p) for p in points],
    }


def default_plan(
    limits: Limits,
    seeds: int = 3,
    ns: Sequence[int] | None = None,
    scan: bool = True,
    source: Source = sources.DEFAULT,
    body: Body = bodies.DEFAULT,
) -> Plan:
    base = RaceConfig.validate_with({"source": source, "body": body}, limits)
    return Plan(
        ns=tuple(ns or log_spaced(limits.n.min, limits.n.max)),
        seeds=tuple(range(seeds)),
        base=base,
        locked_scan=tuple(range(limits.locked.min, limits.locked.max + 1)) if scan else (),
    )


def run(plan: Plan, settings: Settings, out: Path, fresh: bool = False, progress: Progress | None = None) -> Results:
    """Run every race of the plan not already in ``out``'s CSV, then draw the plot."""

    def scenario(res: Any) -> dict[str, Any]:
        found = plan.scenario(settings, res.pretrained(plan.base.source, plan.base.body).sha256)
        if plan.base.body != bodies.DEFAULT:  # an ImageNet body's side depends on the device and the settings
            found["image_size"] = bodies.image_size(plan.base.body, settings, res.device.type)
        return found

    results = run_plan(plan.races(), scenario, out, HEAD_START, settings, plan.base, fresh, progress)
    base = plan.base
    title = (
        f"Fashion-MNIST target task, {base.epochs} epochs, fine-tune locks {base.locked} units"
        + ("" if base.source == sources.DEFAULT else f", pretrained {base.source}")
        + ("" if base.body == bodies.DEFAULT else f", body {base.body} (ImageNet)")
        + "; "
        f"band: min–max over {len(plan.seeds)} seeds"
    )
    plot(summarise(results.rows, locked=base.locked), out, title)
    return results
