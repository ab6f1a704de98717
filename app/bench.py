"""Benchmark: the engine's default race against a plain reference loop.

``python -m app.bench`` trains the default race twice in one process: with the engine,
and the way the PyTorch transfer-learning tutorial would (strategies one after another,
locked layers recomputed on every batch, evaluation over the test set each epoch in small
batches, ``.item()`` per batch). Same data, epochs, test set, initial weights and
shuffling. It prints wall seconds, the ratio, per-strategy seconds, peak memory, final
accuracies of both (they must agree: speed may not come from learning less), and the
engine's achieved FLOP/s while training scratch against a large matmul's.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from app import engine, models
from app.events import STRATEGIES, Done, RaceConfig
from app.feature_cache import run_prefix
from app.settings import get_settings

TUTORIAL_EVAL_BATCH = 64


def reference_race(config: RaceConfig, res: engine.Resources) -> dict[str, dict[str, float]]:
    """The three trainings as most people write them: correct, and unhurried."""
    s = res.settings
    train, test = res.train_split(config.n), res.test
    out = {}
    for name in STRATEGIES:
        t0 = time.perf_counter()
        model, _ = engine.build_model(name, config, res)
        model = model.to(memory_format=torch.contiguous_format)  # the tutorial's default layout
        opt = torch.optim.AdamW(engine.param_groups(name, model, config), weight_decay=s.weight_decay)
        batch = engine.batch_size(name, s)
        sched = engine.lr_schedule(name, opt, config.epochs, engine.steps_per_epoch(len(train), batch), s)
        gen = torch.Generator().manual_seed(config.seed)
        acc = 0.0
        for _ in range(config.epochs):
            model.train()
            model.head.restart_statistics()  # part of the model's recipe, as in the engine
            running = 0.0
            order = torch.randperm(len(train), generator=gen).to(res.device)
            for idx in order.tensor_split(engine.steps_per_epoch(len(train), batch)):
                logits = model(train.x[idx])  # locked units recomputed every batch
                loss = F.cross_entropy(logits, train.y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                running += loss.item() * len(idx)  # a host sync per batch
            model.eval()
            correct = 0
            with torch.no_grad():
                for xs, ys in zip(test.x.split(TUTORIAL_EVAL_BATCH), test.y.split(TUTORIAL_EVAL_BATCH), strict=True):
                    correct += (model(xs).argmax(1) == ys).sum().item()
            acc = correct / len(test)
        engine.sync(res.device)
        out[name] = {"seconds": time.perf_counter() - t0, "final_test_acc": acc}
    return out


def matmul_ceiling(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large fp32 matmul: the device's practical ceiling."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    engine.sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    engine.sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - t0)


def scratch_flops(config: RaceConfig, res: engine.Resources) -> float:
    """FLOPs the scratch strategy performs in a race: training steps plus per-epoch evaluation."""
    s = res.settings
    model = models.build(s.width, s.blocks_per_stage).to(res.device)
    x = res.train_split(config.n).x[: s.batch_size]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long, device=res.device)).backward()
    train_per_image = counter.get_total_flops() / len(x)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.eval()(x)
    eval_per_image = counter.get_total_flops() / len(x)
    return config.epochs * (train_per_image * config.n + eval_per_image * len(res.test))


def locked_pass(config: RaceConfig, res: engine.Resources) -> tuple[float, float]:
    """FLOPs and seconds of the pass frozen relies on: every locked unit once over the race's images.

    It is what the engine does once per race and the reference every epoch; its rate against
    the matmul ceiling says how much a faster kernel could still win.
    """
    s = res.settings
    model, locked = engine.build_model("frozen", config, res)
    prefix = model.layers_to(locked)
    images = torch.cat([res.train_split(config.n).x, res.test.x])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        prefix.eval()(images[: s.eval_batch_size])
    flops = counter.get_total_flops() * len(images) / min(len(images), s.eval_batch_size)
    run_prefix(prefix, images, s.eval_batch_size)  # the first call picks its kernels
    engine.sync(res.device)
    t0 = time.perf_counter()
    run_prefix(prefix, images, s.eval_batch_size)
    engine.sync(res.device)
    return flops, time.perf_counter() - t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_name(device: torch.device) -> str:
    """The hardware, named: what a figure means depends on it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    # The vector unit torch dispatches to (AVX2, AVX512…) moves every figure by about 2×.
    return f"{model or 'unknown CPU'} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    settings = get_settings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    given = {k: v for k, v in {"n": args.n, "epochs": args.epochs}.items() if v is not None}
    config = RaceConfig.validate_with(given, settings.limits)
    res = engine.Resources.load(settings)
    report: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        report.append(line)

    machine = machine_name(res.device)
    say(f"machine: {machine}")
    say(f"device: {engine.describe_device(res.device)}; torch {torch.__version__}; config {config.model_dump()}")

    list(engine.run_race(config.model_copy(update={"epochs": 1, "n": settings.limits.n.min}), res))  # warm-up
    res.cache.clear()  # cold: nothing kept from an earlier race
    t0 = time.perf_counter()
    done = next(e for e in engine.run_race(config, res) if isinstance(e, Done))
    engine_wall = time.perf_counter() - t0
    # warm: the next race of a classroom session (another seed) finds the locked units' features kept
    t0 = time.perf_counter()
    warm = next(e for e in engine.run_race(config.model_copy(update={"seed": config.seed + 1}), res) if isinstance(e, Done))
    warm_wall = time.perf_counter() - t0
    rss_engine = peak_rss_mb()

    ref = None if args.skip_reference else reference_race(config, res)
    header = f"{'strategy':<10} {'engine s':>9} {'warm s':>7} {'engine acc':>11}"
    say()
    say(header + (f" {'reference s':>12} {'reference acc':>14} {'speed-up':>9} {'warm':>6}" if ref else ""))
    for name in STRATEGIES:
        e, w = done.summary[name], warm.summary[name]
        line = f"{name:<10} {e.compute_s:>9.2f} {w.compute_s:>7.2f} {e.final_test_acc:>11.3f}"
        if ref:
            r = ref[name]
            line += f" {r['seconds']:>12.2f} {r['final_test_acc']:>14.3f}"
            line += f" {r['seconds'] / e.compute_s:>8.1f}× {r['seconds'] / w.compute_s:>5.1f}×"
        say(line)
    say()
    say(f"engine race wall: {engine_wall:.2f} s cold, {warm_wall:.2f} s warm")
    if ref:
        ref_wall = sum(r["seconds"] for r in ref.values())
        say(
            f"reference wall:   {ref_wall:.2f} s  → engine is {ref_wall / engine_wall:.1f}× faster end to end cold, "
            f"{ref_wall / warm_wall:.1f}× warm"
        )
    say(f"peak resident memory: {rss_engine:.0f} MB after the engine race, {peak_rss_mb():.0f} MB after both")
    ceiling = matmul_ceiling(res.device)
    achieved = scratch_flops(config, res) / done.summary["scratch"].compute_s
    say(
        f"matmul ceiling: {ceiling / 1e9:.1f} GFLOP/s; scratch achieved {achieved / 1e9:.1f} GFLOP/s "
        f"= {100 * achieved / ceiling:.0f} % of it"
    )
    flops, seconds = locked_pass(config, res)
    say(
        f"locked pass (all five units over {config.n} + {len(res.test)} images, once): {seconds:.3f} s, "
        f"{flops / seconds / 1e9:.1f} GFLOP/s = {100 * flops / seconds / ceiling:.0f} % of the ceiling"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python -m app.bench", *(argv if argv is not None else sys.argv[1:])])
        heading = f"# `{command}` on {machine}, {time.strftime('%Y-%m-%d')}"
        args.out.write_text(heading + "\n\n```\n" + "\n".join(report) + "\n```\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
