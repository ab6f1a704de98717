"""The race: one configuration trained three ways, side by side, with real training.

* scratch  – random init, everything trains at ``lr_scratch``.
* frozen   – pretrained body, all five body units locked; a new head trains at ``lr_head``.
* finetune – pretrained body, the first k units locked; the rest trains at
  ``lr_head * body_lr_ratio`` and the new head at ``lr_head``, after a warm-up.

Every rate follows a per-step schedule (``lr_schedule``): fine-tune's linear warm-up,
then a cosine decay to zero for all three.

The three progress in turns, an epoch each, so none waits for another to finish, and
each strategy's clock counts only its own compute. Locked units never change, so
their outputs are computed once per race and the trainable layers learn from those
cached features: exact, and what makes frozen nearly free. A strategy whose locked
outputs were shared or kept is still charged what they cost to compute.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from headstart.race import bodies, datasets, fashion, sources, uploads
from headstart.race.architecture import describe_units
from headstart.race.bodies import Body
from headstart.race.events import (
    Done,
    Epoch,
    Plan,
    Predictions,
    RaceConfig,
    RaceEvent,
    Strategy,
    StrategyPlan,
    StrategySummary,
)
from headstart.race.sources import Source
from headstart.race.strategies import raced
from headstart.settings import BUILT_IN_DATASET, Settings
from headstart.training import bodies as networks
from headstart.training import checkpoint, cuda_graphs, data, devices, lanes, models, regularisers, tasks
from headstart.training.devices import Stopwatch
from headstart.training.feature_cache import FeatureCache, Features

SKIPPED_SHOWN = 20  # undecodable files a plan names; it counts them all
FOLDERS_KEPT = 32  # dataset folders a worker keeps scanned: uploads come and go


class RaceCancelled(Exception):
    """Raised between batches when the race's viewers have gone or asked it to stop."""


@dataclass
class Pretrained:
    """One pretrained body, and what measuring and keeping its source task needs: a tiny body's
    checkpoint (one per source), or an ImageNet body, whose source task is not here."""

    sha256: str  # its weights' hash: names its locked units' outputs in the feature cache
    state: dict[str, torch.Tensor]  # the checkpoint: body and source head (an ImageNet body's: body only)
    head: models.Head | None  # the checkpoint's own head for the source classes, in eval mode
    probe: data.Split | None  # its source task's probe images, for ``source_acc``; None with no task to measure
    fisher: dict[str, torch.Tensor] | None  # the source task's Fisher, scaled to mean 1, for EWC
    card: checkpoint.Card | None = None  # how a tiny body's checkpoint was made

    @property
    def body(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state.items() if not k.startswith("head.")}

    @classmethod
    def load(cls, settings: Settings, dataset: fashion.FashionMNIST, source: Source, device: torch.device) -> Pretrained:
        path = sources.checkpoint_path(settings.network.checkpoint, source)
        try:
            card, state = checkpoint.load(
                path, settings.network.width, settings.network.blocks_per_stage, settings.data.source_classes
            )
        except checkpoint.CheckpointError as exc:
            if source == sources.DEFAULT:
                raise
            raise checkpoint.CheckpointError(
                f"{exc} (source {source!r}: `python -m headstart pretrain --source {source}`)"
            ) from exc
        classes, features = state["head.1.weight"].shape  # the checkpoint's own source head
        head = models.Head(features, classes)
        head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
        probe = data.source_probe(dataset, settings, source).to(device) if sources.SOURCES[source].has_task else None
        fisher = None
        if card.fisher_sha256 is not None:
            fisher = regularisers.normalised(checkpoint.load_fisher(path, card))
        return cls(card.sha256, state, head.to(device).eval(), probe, fisher, card)

    @classmethod
    def imagenet(cls, settings: Settings, body: Body) -> Pretrained:
        """An ImageNet body: its weights, and no source task to measure or keep (no probe, no Fisher)."""
        state = networks.imagenet_body(body, settings)
        path = bodies.weights_path(body, settings)
        assert path is not None
        return cls(checkpoint.sha256(path), state, None, None, None)


@dataclass
class Resources:
    """What every race of a worker shares: the datasets, the pretrained bodies, the device.

    Each is loaded the first time a race asks for it, then kept: a folder dataset is decoded
    once per body and size, not per race.
    """

    settings: Settings
    dataset: fashion.FashionMNIST  # the built-in images: the default target task and the tiny body's sources
    device: torch.device
    cache: FeatureCache
    layout: torch.memory_format  # what the trainable layers train in (``memory_format``)
    _bodies: dict[tuple[Body, Source], Pretrained] = field(default_factory=dict)
    _tasks: dict[tuple[str, Body], tasks.Task] = field(default_factory=dict)
    _folders: dict[str, datasets.Folder] = field(default_factory=dict)
    _train: dict[tuple[str, int], data.Split] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings) -> Resources:
        dataset = data.load(settings)
        device = devices.pick_device(settings.training.device)
        layout = devices.memory_format(device, settings.network.width)
        cache = FeatureCache(settings.training.feature_cache_mb * 2**20, layout)
        resources = cls(settings, dataset, device, cache, layout)
        resources.pretrained(sources.DEFAULT)  # the default body at once: a worker that cannot load it cannot train
        return resources

    def pretrained(self, source: Source, body: Body = bodies.DEFAULT) -> Pretrained:
        """A body as pretrained (the tiny body's on ``source``), loaded the first time a race asks for it."""
        key = (body, source if body == bodies.DEFAULT else sources.DEFAULT)
        if key not in self._bodies:
            if body == bodies.DEFAULT:
                self._bodies[key] = Pretrained.load(self.settings, self.dataset, source, self.device)
            else:
                self._bodies[key] = Pretrained.imagenet(self.settings, body)
        return self._bodies[key]

    @property
    def card(self) -> checkpoint.Card:
        """The default source's card: the recipe's fingerprint names it."""
        card = self.pretrained(sources.DEFAULT).card
        assert card is not None
        return card

    def folder(self, name: str) -> datasets.Folder:
        """A dataset folder of the settings' or an upload, scanned and split the first time a race names it."""
        if name not in self._folders:
            path = uploads.locate(self.settings, name)
            if path is None:
                offered = ", ".join((BUILT_IN_DATASET, *self.settings.data.datasets))
                raise fashion.DataError(f"no dataset {name!r} here; this worker has {offered} and the uploads it is sent")
            if len(self._folders) >= FOLDERS_KEPT:
                self._folders.pop(next(iter(self._folders)))
            self._folders[name] = datasets.scan(name, path, self.settings.data.data_seed, self.settings.limits.n.min)
        return self._folders[name]

    def task(self, dataset: str = BUILT_IN_DATASET, body: Body = bodies.DEFAULT) -> tasks.Task:
        """``dataset`` as ``body`` sees it on this device, its test images on the device."""
        key = (dataset, body)
        if key not in self._tasks:
            if len(self._tasks) >= 3:  # an ImageNet body's test images take a hundred megabytes or more
                self._tasks.pop(next(iter(self._tasks)))
            side = bodies.image_size(body, self.settings, self.device.type)
            folder = None if dataset == BUILT_IN_DATASET else self.folder(dataset)
            task = tasks.load(self.settings, dataset, body, side, folder)
            task.test = task.test.to(self.device)
            self._tasks[key] = task
        return self._tasks[key]

    @property
    def test(self) -> data.Split:
        """The default task's test images."""
        return self.task().test

    def images(self, task: tasks.Task) -> str:
        """How the feature cache names ``task``'s images: the default task's as they always were."""
        return "" if task.key == self.task().key else f"{task.key}:"

    def train_split(self, n: int, task: tasks.Task | None = None) -> data.Split:
        task = task or self.task()
        if (task.key, n) not in self._train:
            if len(self._train) >= 8:
                self._train.pop(next(iter(self._train)))
            self._train[task.key, n] = task.train(n).to(self.device)
        return self._train[task.key, n]


@dataclass
class Trainer:
    """One strategy's state during a race."""

    name: Strategy
    model: models.Network
    locked: int
    batch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    trainable: nn.Module  # the layers that see train_x: everything after the cached prefix
    penalty: regularisers.Penalty | None = None  # added to the loss: fine-tune's pull toward the source
    # A training step on one batch, and the evaluation of one: eager, or replayed from CUDA graphs.
    step: Callable[[torch.Tensor, torch.Tensor], None] = field(init=False)
    count_correct: Callable[[torch.Tensor, torch.Tensor], None] = field(init=False)
    # The epoch's sums, kept on the device and added to in place (a graph replays the
    # additions on the very tensors it captured), so no batch waits for the host.
    loss_sum: torch.Tensor = field(init=False)
    correct: torch.Tensor = field(init=False)
    test_correct: torch.Tensor = field(init=False)
    train_x: torch.Tensor = field(init=False)
    test_x: torch.Tensor = field(init=False)
    source_x: torch.Tensor = field(init=False)  # the source probe images, through the cached prefix
    # The task's test images as they are (test_x: through the cached prefix), and how the
    # feature cache names its images.
    test: data.Split = field(init=False)
    images: str = ""
    pretrained: Pretrained | None = None  # where its body came from; None for scratch
    source_from: int = 0  # the body unit source_x enters at
    source_acc: float | None = None
    compute_s: float = 0.0
    reused_s: float = 0.0  # of compute_s, the locked pass this race did not run for it (shared or kept)
    best_acc: float = 0.0
    last_acc: float = 0.0
    predicted: torch.Tensor | None = None  # the last epoch's class for each test image, on the host

    def __post_init__(self) -> None:
        device = next(self.model.parameters()).device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.test_correct = torch.zeros((), device=device, dtype=torch.long)
        self.bind(graphed=False)

    def bind(self, graphed: bool) -> None:
        """Its step and evaluation, over its trainable layers as they now are: eager, or
        replayed from CUDA graphs (captured afresh when gradual unlocks a unit).

        Bound to the parts, not to the trainer: a cycle through it would keep a race's
        graphs, and the GPU memory they hold, until the garbage collector came by.
        """
        step = functools.partial(_train_step, self.trainable, self.optimizer, self.penalty, self.loss_sum, self.correct)
        count = functools.partial(_count_correct, self.trainable, self.test_correct)
        self.step, self.count_correct = (cuda_graphs.Replayed(step), cuda_graphs.Replayed(count)) if graphed else (step, count)


def build_model(name: Strategy, config: RaceConfig, resources: Resources) -> tuple[models.Network, int]:
    """A fresh model for one strategy, and how many body units its kept prefix holds: the
    locked units its trainable layers start after (none for LoRA, whose locked units all learn
    an update).

    Seeding before construction gives every strategy the same new head.
    """
    classes = len(resources.task(config.dataset, config.body).classes)
    torch.manual_seed(config.seed)
    model = networks.build(config.body, resources.settings, classes)
    body = len(models.UNITS)
    locked = {"scratch": 0, "frozen": body, "finetune": config.locked, "gradual": lanes.gradual_locked(1), "lora": body}[name]
    if name != "scratch":
        missing, unexpected = model.load_state_dict(resources.pretrained(config.source, config.body).body, strict=False)
        if unexpected or any(not key.startswith("head.") for key in missing):
            raise checkpoint.CheckpointError(f"pretrained {config.body} does not fit its network: {(missing + unexpected)[:3]}")
    model.lock(locked)
    model = model.to(resources.device, memory_format=resources.layout)  # type: ignore[call-overload]  # torch's stubs omit this overload
    if name == "lora":
        for _, unit in model.units():
            lanes.attach_lora(unit, config.lora_rank)
        return model, 0
    return model, locked


def param_groups(name: Strategy, model: models.Network, config: RaceConfig, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer groups: discriminative learning rates are groups, not special cases.

    A regulariser replaces the body's decay toward zero with its pull toward the pretrained
    weights, as L2-SP does; the new head keeps its plain weight decay.
    """
    if name == "scratch":
        return [{"params": list(model.parameters()), "lr": config.lr_scratch, "weight_decay": weight_decay}]
    groups = [{"params": list(model.head.parameters()), "lr": config.lr_head, "weight_decay": weight_decay}]
    if name == "lora":  # the updates learn at the head's rate: they start at zero, with nothing to spare
        updates = [p for m in model.modules() if isinstance(m, lanes.LoRAConv2d) for p in (m.lora_a, m.lora_b)]
        return [*groups, {"params": updates, "lr": config.lr_head, "weight_decay": weight_decay}]
    if name == "gradual":  # every unit in from the start, at its own rate; a locked one has no gradient to step on
        body_rate = config.lr_head * config.body_lr_ratio
        for unit_name, unit in model.units():
            rate = lanes.gradual_rate(unit_name, body_rate)
            groups.append({"params": list(unit.parameters()), "lr": rate, "weight_decay": weight_decay})
        return groups
    body = [p for _, unit in model.units() for p in unit.parameters() if p.requires_grad]
    if body:
        decay = weight_decay if config.keep == "none" else 0.0
        groups.append({"params": body, "lr": config.lr_head * config.body_lr_ratio, "weight_decay": decay})
    return groups


def keep_penalty(name: Strategy, model: models.Network, config: RaceConfig, resources: Resources) -> regularisers.Penalty | None:
    """Fine-tune's pull back toward the pretrained body, when the race asks for one."""
    if name != "finetune" or config.keep == "none":
        return None
    pretrained = resources.pretrained(config.source, config.body)
    if config.keep == "l2sp":
        return regularisers.pull(model, pretrained.body, config.keep_strength)
    if pretrained.fisher is None:
        raise checkpoint.CheckpointError(
            f"{sources.checkpoint_path(resources.settings.network.checkpoint, config.source)}: no source-task Fisher beside it, "
            f"which EWC needs; run `python -m headstart pretrain --fisher-only --source {config.source}`"
        )
    return regularisers.pull(model, pretrained.body, config.keep_strength, pretrained.fisher)


def batch_size(name: Strategy, settings: Settings) -> int:
    return settings.training.frozen_batch_size if name == "frozen" else settings.training.batch_size


def steps_per_epoch(n: int, batch: int) -> int:
    return math.ceil(n / batch)


def lr_schedule(
    name: Strategy, optimizer: torch.optim.Optimizer, epochs: int, steps: int, settings: Settings
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step factors on every group's rate: fine-tune's warm-up, then a cosine to zero."""
    total = epochs * steps
    warm = min(total // 2, math.ceil(settings.training.warmup_epochs * steps)) if name == "finetune" else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if not settings.training.cosine_decay:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def strategy_plan(model: models.Network, batch: int) -> StrategyPlan:
    trainable = [name for name, _ in model.units() if name not in model.locked] + ["head"]
    return StrategyPlan(
        trainable_units=trainable,
        batch_size=batch,
        trainable_params=models.count_params(model, trainable_only=True),
        total_params=models.count_params(model),
    )


def _locked_outputs(
    model: models.Network, locked: int, train: data.Split, test: data.Split, images: str, resources: Resources, sha: str
) -> tuple[Features, Features]:
    """The first ``locked`` units' outputs on the training and test images, kept or computed;
    ``images`` names the task's images in the cache."""

    def features(name: str, x: torch.Tensor) -> Features:
        batch = resources.settings.training.eval_batch_size
        return resources.cache.features(sha, locked, images + name, x, model.layers_between, batch)

    return features(f"train:{len(train)}", train.x), features("test", test.x)


def _prepare(trainer: Trainer, train: data.Split, resources: Resources) -> float:
    """Point the trainer at its inputs: the locked units' outputs, or the images themselves.

    Returns what those outputs cost to compute from the images: the strategy's own cost,
    whether it ran them now, continued a shallower strategy's, or found them kept.
    """
    if not resources.settings.training.cache_features:
        trainer.train_x, trainer.test_x, trainer.source_from = train.x, trainer.test.x, 0
        if trainer.pretrained is not None and trainer.pretrained.probe is not None:
            trainer.source_x = trainer.pretrained.probe.x
        return 0.0
    if trainer.pretrained is None:  # scratch: nothing locked, nothing kept; its images as they are
        trainer.train_x, trainer.test_x = train.x, trainer.test.x
        return 0.0
    on_train, on_test = _locked_outputs(
        trainer.model, trainer.locked, train, trainer.test, trainer.images, resources, trainer.pretrained.sha256
    )
    trainer.train_x, trainer.test_x = on_train.x, on_test.x
    return on_train.seconds + on_test.seconds


def _unlock(trainer: Trainer, locked: int, train: data.Split, resources: Resources, graphed: bool, measure_source: bool) -> float:
    """Gradual's next unit unlocked: its kept prefix one unit shorter, its step bound anew.

    Returns what the shorter prefix's outputs cost (kept, continued or computed), the
    seconds its clock is charged, untimed work (the source probe's prefix) aside.
    """
    clock = Stopwatch(resources.device)
    trainer.model.lock(locked)
    trainer.locked = locked
    trainer.trainable = trainer.model.layers_from(locked) if resources.settings.training.cache_features else trainer.model
    cost = _prepare(trainer, train, resources)
    trainer.bind(graphed)
    spent = clock.elapsed()
    if measure_source:
        _prepare_source(trainer, resources)
    return max(spent, cost)


def _prepare_source(trainer: Trainer, resources: Resources) -> None:
    """The locked units' outputs on the source probe images, kept like the others; untimed."""
    if trainer.pretrained is None or trainer.pretrained.probe is None or not resources.settings.training.cache_features:
        return
    trainer.source_x, trainer.source_from = (
        _source_outputs(trainer.model, trainer.locked, resources, trainer.pretrained).x,
        trainer.locked,
    )


def _source_outputs(model: models.Network, locked: int, resources: Resources, pretrained: Pretrained) -> Features:
    """The first ``locked`` units' outputs on the source probe images, kept or computed."""
    assert pretrained.probe is not None
    x, batch = pretrained.probe.x, resources.settings.training.eval_batch_size
    return resources.cache.features(pretrained.sha256, locked, "source", x, model.layers_between, batch)


@torch.inference_mode()
def _source_accuracy(trainer: Trainer, resources: Resources) -> float | None:
    """What the strategy's body, as it stands, still knows of the source task: its accuracy
    with the checkpoint's own source head on the source probe images.

    1) Scratch has no source head, and a body pretrained on noise no task to measure: None.
    2) Frozen's body never moves: measured once, then the same every epoch.
    3) Fine-tune's unlocked units run in eval mode (BatchNorm's running statistics), as the
       target evaluation does; nothing about the model changes.
    """
    if trainer.pretrained is None or trainer.pretrained.probe is None or trainer.pretrained.head is None:
        return None
    if trainer.name == "frozen" and trainer.source_acc is not None:
        return trainer.source_acc
    body = trainer.model.layers_between(trainer.source_from, len(models.UNITS)).eval()
    probe, head = trainer.pretrained.probe, trainer.pretrained.head
    batch, correct = resources.settings.training.eval_batch_size, torch.zeros((), dtype=torch.long, device=resources.device)
    for xs, ys in zip(trainer.source_x.split(batch), probe.y.split(batch), strict=True):
        xs = xs.contiguous(memory_format=torch.channels_last) if xs.dim() == 4 else xs
        correct += (head(body(xs)).argmax(1) == ys).sum()
    return correct.item() / len(probe)


def _train_step(
    trainable: nn.Module,
    optimizer: torch.optim.Optimizer,
    penalty: regularisers.Penalty | None,
    loss_sum: torch.Tensor,
    correct: torch.Tensor,
    xb: torch.Tensor,
    yb: torch.Tensor,
) -> None:
    logits = trainable(xb)
    loss = F.cross_entropy(logits, yb)  # what train_loss reports: the task's loss, comparable across strategies
    optimizer.zero_grad(set_to_none=True)
    (loss if penalty is None else loss + penalty()).backward()
    optimizer.step()
    loss_sum.add_(loss.detach() * len(yb))
    correct.add_((logits.argmax(1) == yb).sum())


def _count_correct(trainable: nn.Module, correct: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> None:
    xs = xs.contiguous(memory_format=torch.channels_last) if xs.dim() == 4 else xs
    correct.add_((trainable(xs).argmax(1) == ys).sum())


def _train_epoch(trainer: Trainer, y: torch.Tensor, batch: int, gen: torch.Generator, should_stop: Callable[[], bool]) -> None:
    """One pass over the data, summing loss and correct predictions into the trainer's sums.

    Only the trainable layers change mode: locked units stay in eval mode from ``lock`` on, so
    frozen's epoch walks its head alone.
    """
    trainer.trainable.train()
    trainer.model.head.restart_statistics()
    n = len(y)
    order = torch.randperm(n, generator=gen).to(y.device)
    # Shuffled once per epoch, so each batch is a view rather than a gather of its own.
    xs, ys = trainer.train_x[order], y[order]
    trainer.loss_sum.zero_()
    trainer.correct.zero_()
    # Equal-sized batches: no straggler batch of one image to upset BatchNorm.
    steps = steps_per_epoch(n, batch)
    for xb, yb in zip(xs.tensor_split(steps), ys.tensor_split(steps), strict=True):
        if should_stop():
            raise RaceCancelled
        trainer.step(xb, yb)
        trainer.scheduler.step()


def _predict(trainable: nn.Module, xs: torch.Tensor) -> torch.Tensor:
    xs = xs.contiguous(memory_format=torch.channels_last) if xs.dim() == 4 else xs
    logits: torch.Tensor = trainable(xs)
    return logits.argmax(1)


def _evaluate(trainer: Trainer, y: torch.Tensor, batch: int, layout: torch.memory_format, keep: bool = False) -> None:
    """Count correct test predictions into the trainer's ``test_correct``, on the device; with
    ``keep`` (the last epoch), keep each image's predicted class too, in ``predicted``.

    Inference convolutions run faster channels_last on the CPU too (a quarter less time on two
    cores). Where training must stay contiguous (see ``memory_format``), the trainable layers
    switch format for evaluation only, outside inference mode so their parameters stay
    ordinary tensors.
    """
    trainer.trainable.eval()
    if layout != torch.channels_last:
        trainer.trainable.to(memory_format=torch.channels_last)
    trainer.test_correct.zero_()
    with torch.inference_mode():
        if keep:
            predicted = torch.cat([_predict(trainer.trainable, xs) for xs in trainer.test_x.split(batch)])
            trainer.test_correct.add_((predicted == y).sum())
            trainer.predicted = predicted.cpu()
        else:
            for xs, ys in zip(trainer.test_x.split(batch), y.split(batch), strict=True):
                trainer.count_correct(xs, ys)
    if layout != torch.channels_last:
        trainer.trainable.to(memory_format=layout)


def run_race(
    config: RaceConfig, resources: Resources, should_stop: Callable[[], bool] = lambda: False, measure_source: bool = True
) -> Iterator[RaceEvent]:
    """Train the strategies of ``config`` side by side, yielding plan, epoch… and done events.

    1) Each strategy gets a fresh model, optimizer and schedule (its clock starts here).
    2) Its locked units' outputs are computed once, or continued, or found kept.
    3) Every epoch, each strategy trains, is evaluated, and is reported, a round at a time.

    ``measure_source=False`` leaves out the source-task measurement (``source_acc`` None):
    the benchmark counts the race's own arithmetic without it."""
    race_clock = Stopwatch()
    # Loaded off every clock: a worker decodes each dataset and sets up each body once, as it did the default's.
    task = resources.task(config.dataset, config.body)
    train, test = resources.train_split(config.n, task), task.test
    resources.pretrained(config.source, config.body)
    graphed = resources.device.type == "cuda" and resources.settings.training.cuda_graphs
    trainers = [_new_trainer(name, config, resources, task, len(train), graphed) for name in raced(config.extra)]
    # What trains never changes during a race (gradual's set aside): counted once, reported with every epoch.
    plans = {trainer.name: strategy_plan(trainer.model, trainer.batch) for trainer in trainers}
    yield Plan(
        config=config,
        device=devices.describe_device(resources.device),
        units=describe_units(resources.settings, config.body, len(task.classes)),
        strategies=plans,
        train_size=len(train),
        test_size=len(test),
        classes=task.classes,
        image_size=task.inputs.side,
        skipped=len(task.skipped),
        skipped_files=list(task.skipped[:SKIPPED_SHOWN]),
    )
    _prepare_all(trainers, train, resources, measure_source)
    # The same shuffling for every strategy: they see the same batches in the same order.
    shuffles = {trainer.name: torch.Generator().manual_seed(config.seed) for trainer in trainers}
    source_s = 0.0
    for epoch in range(1, config.epochs + 1):
        finished: list[Epoch] = []
        for trainer in trainers:
            if trainer.name == "gradual" and lanes.gradual_locked(epoch) != trainer.locked:
                trainer.compute_s += _unlock(trainer, lanes.gradual_locked(epoch), train, resources, graphed, measure_source)
            try:
                trained = _epoch(
                    trainer, epoch, plans[trainer.name], train, resources, shuffles[trainer.name], should_stop, config.epochs
                )
            except RaceCancelled:
                yield from finished  # what the round finished is real training: a cancelled race keeps it
                raise
            measuring = Stopwatch()
            trainer.source_acc = _source_accuracy(trainer, resources) if measure_source else None  # after its clock stopped
            source_s += measuring.elapsed()
            finished.append(trained.model_copy(update={"source_acc": trainer.source_acc}))
        # Handed over a round at a time, so what viewers do with them (a browser redrawing its
        # chart) lands on the next round's first and longest epoch, scratch's.
        yield from finished
    truth = test.y.cpu()
    predicted = {trainer.name: _predictions(trainer) for trainer in trainers}
    yield Predictions(
        dataset=config.dataset,
        images_version=task.images_version,
        index=task.test_ids.tolist(),
        truth=truth.tolist(),
        predicted={name: classes.tolist() for name, classes in predicted.items()},
    )
    summary = {
        trainer.name: StrategySummary(
            final_test_acc=trainer.last_acc,
            best_test_acc=trainer.best_acc,
            compute_s=trainer.compute_s,
            final_source_acc=trainer.source_acc,
            reused_s=trainer.reused_s,
            **outcome(truth, predicted[trainer.name], len(task.classes)),
        )
        for trainer in trainers
    }
    yield Done(summary=summary, wall_s=race_clock.elapsed(), source_s=source_s)


def _predictions(trainer: Trainer) -> torch.Tensor:
    assert trainer.predicted is not None, "the last epoch keeps its predictions"
    return trainer.predicted


def outcome(truth: torch.Tensor, predicted: torch.Tensor, classes: int) -> dict[str, Any]:
    """The confusion matrix (rows: true class, columns: predicted) and each class's accuracy."""
    confusion = torch.bincount(truth * classes + predicted, minlength=classes * classes).view(classes, classes)
    per_class = confusion.diagonal() / confusion.sum(1).clamp(min=1)
    return {"confusion": confusion.tolist(), "per_class_acc": per_class.tolist()}


def _new_trainer(
    name: Strategy, config: RaceConfig, resources: Resources, task: tasks.Task, train_size: int, graphed: bool
) -> Trainer:
    """One strategy's fresh model, optimizer and schedule, its clock charged for making them."""
    clock = Stopwatch()
    model, locked = build_model(name, config, resources)
    # LoRA's locked units sit among its trainable layers: the whole model, whose train()
    # keeps their BatchNorm statistics as pretrained.
    trainable = model.layers_from(locked) if resources.settings.training.cache_features and name != "lora" else model
    groups = param_groups(name, model, config, resources.settings.training.weight_decay)
    if graphed:
        # A replay reads the rate its graph was captured with: a tensor the scheduler sets in place.
        for group in groups:
            group["lr"] = torch.tensor(group["lr"], device=resources.device)
    optimizer = torch.optim.AdamW(groups, fused=True, capturable=graphed)
    batch = batch_size(name, resources.settings)
    schedule = lr_schedule(name, optimizer, config.epochs, steps_per_epoch(train_size, batch), resources.settings)
    trainer = Trainer(name, model, locked, batch, optimizer, schedule, trainable, keep_penalty(name, model, config, resources))
    trainer.pretrained = None if name == "scratch" else resources.pretrained(config.source, config.body)
    trainer.test, trainer.images = task.test, resources.images(task)
    trainer.bind(graphed)
    trainer.compute_s = clock.elapsed()
    return trainer


def _prepare_all(trainers: list[Trainer], train: data.Split, resources: Resources, measure_source: bool) -> None:
    """Every strategy's inputs, shallowest first, so a deeper prefix continues from a shallower
    one's outputs. Each is charged its whole locked pass, so its clock is its own cost,
    whatever ran before."""
    for trainer in sorted(trainers, key=lambda trainer: trainer.locked):
        clock = Stopwatch(resources.device)
        cost = _prepare(trainer, train, resources)
        spent = clock.elapsed()
        trainer.compute_s += max(spent, cost)
        trainer.reused_s = max(0.0, cost - spent)
        if measure_source:
            _prepare_source(trainer, resources)


def _epoch(
    trainer: Trainer,
    epoch: int,
    plan: StrategyPlan,
    train: data.Split,
    resources: Resources,
    shuffle: torch.Generator,
    should_stop: Callable[[], bool],
    epochs: int,
) -> Epoch:
    """One epoch of one strategy, trained and evaluated on its own clock; the last keeps its predictions."""
    clock = Stopwatch()
    training = Stopwatch(resources.device)
    _train_epoch(trainer, train.y, trainer.batch, shuffle, should_stop)
    train_s = training.elapsed()
    _evaluate(trainer, trainer.test.y, resources.settings.training.eval_batch_size, resources.layout, keep=epoch == epochs)
    # One host sync per strategy per epoch, here, rather than one per batch.
    loss, accuracy = trainer.loss_sum.item() / len(train), trainer.correct.item() / len(train)
    test_accuracy = trainer.test_correct.item() / len(trainer.test)
    trainer.compute_s += clock.elapsed()
    trainer.last_acc, trainer.best_acc = test_accuracy, max(trainer.best_acc, test_accuracy)
    changing = trainer.name == "gradual"
    return Epoch(
        strategy=trainer.name,
        epoch=epoch,
        train_loss=loss,
        train_acc=accuracy,
        test_acc=test_accuracy,
        trainable_params=models.count_params(trainer.model, trainable_only=True) if changing else plan.trainable_params,
        total_params=plan.total_params,
        compute_s=trainer.compute_s,
        images_per_s=len(train) / max(train_s, 1e-9),
        trainable_units=strategy_plan(trainer.model, trainer.batch).trainable_units if changing else None,
    )


def warm_up(resources: Resources, config: RaceConfig | None = None) -> None:
    """Pay a process's one-off costs untimed, then keep ``config``'s locked passes, timed warm.

    1) One epoch of ``config`` runs untimed, so no strategy's clock pays for kernel choice,
       the allocator growing or a GPU's context; its kept features are dropped, since they
       remember those first-call prices.
    2) The locked passes run again, warm, and are kept: a kept pass is charged to every later
       race at the price it was computed at. (Measurements: docs/performance.md, "Warm-up".)
    """
    config = config or RaceConfig.validate_with({}, resources.settings.limits)
    for _ in run_race(config.model_copy(update={"epochs": 1}), resources):
        pass
    resources.cache.clear()
    if not resources.settings.training.cache_features:
        return
    task = resources.task(config.dataset, config.body)
    train = resources.train_split(config.n, task)
    pretrained = resources.pretrained(config.source, config.body)
    for name in ("finetune", "frozen"):  # shallowest first, as a race runs them: frozen continues fine-tune's
        model, locked = build_model(name, config, resources)
        _locked_outputs(model, locked, train, task.test, resources.images(task), resources, pretrained.sha256)
        if pretrained.probe is not None:
            _source_outputs(model, locked, resources, pretrained)
