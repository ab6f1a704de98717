"""Pretraining on the source task: what gives frozen and fine-tune their head start."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from headstart.race import sources
from headstart.race.sources import Source
from headstart.settings import Settings
from headstart.training import checkpoint, data, models, regularisers
from headstart.training.devices import kernels, pick_device

log = logging.getLogger(__name__)


@torch.inference_mode()
def accuracy(model: models.ResNet, split: data.Split, batch: int = 1000) -> float:
    model.eval()
    pairs = zip(split.x.split(batch), split.y.split(batch), strict=True)
    correct = sum(int((model(x).argmax(1) == y).sum().item()) for x, y in pairs)
    return correct / len(split)


def pretrain(
    settings: Settings,
    out: Path,
    epochs: int = 4,
    seed: int = 0,
    lr: float = 3e-3,
    batch: int = 128,
    source: Source = sources.DEFAULT,
) -> checkpoint.Card:
    """Train the whole model on the source classes, as ``source`` sees them, and write a checkpoint plus card."""
    device = pick_device(settings.training.device)
    dataset = data.load(settings)
    train = data.source_train(dataset, settings, source).to(device)
    test = data.source_test(dataset, settings, source).to(device)
    torch.manual_seed(seed)
    model = models.build(settings.network.width, settings.network.blocks_per_stage)
    # The source head starts at zero (after the same random draws as any head, so the body's init
    # is unchanged): the shipped checkpoint was trained so, and this rebuilds it bit for bit.
    # The head is discarded for the target task; only the body carries over.
    torch.nn.init.zeros_(model.head.linear.weight)
    torch.nn.init.zeros_(model.head.linear.bias)
    # Contiguous on the CPU: the shipped checkpoint was trained so, and another layout would
    # change its bits (channels_last sums in another order).
    model = model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings.training.weight_decay)
    steps = epochs * math.ceil(len(train) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        model.head.restart_statistics()
        for idx in torch.randperm(len(train), generator=gen).to(device).split(batch):
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, test)
        log.info("pretrain epoch %d/%d: source test accuracy %.4f (%.1f s)", epoch, epochs, acc, time.perf_counter() - t0)
    checkpoint.save(
        model.state_dict(),
        out,
        width=settings.network.width,
        blocks_per_stage=settings.network.blocks_per_stage,
        source_classes=list(settings.data.source_classes),
        seed=seed,
        epochs=epochs,
        source=source,
        source_test_acc=round(acc, 4),
        trained_on=kernels(device),
        threads=torch.get_num_threads() if device.type == "cpu" else None,
    )
    return write_fisher(settings, out, source=source)


FISHER_ESTIMATE = "expected over the model's own predictions, exact over the source classes"


def write_fisher(settings: Settings, weights: Path, images: int = 1000, source: Source = sources.DEFAULT) -> checkpoint.Card:
    """Compute the source task's diagonal Fisher at the checkpoint's weights and ship it beside them.

    On the CPU whatever trained the weights: the Fisher is a property of the checkpoint, and
    one device and layout make it the same bits wherever it is rebuilt.
    """
    t0 = time.perf_counter()
    _, state = checkpoint.load(weights, settings.network.width, settings.network.blocks_per_stage, settings.data.source_classes)
    model = models.build(settings.network.width, settings.network.blocks_per_stage, num_classes=len(settings.data.source_classes))
    model.load_state_dict(state)
    sample = data.source_sample(data.load(settings), settings, images, source)
    fisher = regularisers.fisher_diagonal(model, sample.x)
    total = sum(float(v.sum()) for v in fisher.values())
    log.info("Fisher over %d source images: sum %.4g (%.1f s)", len(sample), total, time.perf_counter() - t0)
    return checkpoint.save_fisher(fisher, weights, len(sample), FISHER_ESTIMATE)
