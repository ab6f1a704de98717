"""Benchmark: the engine's default race against a plain reference loop.

``python -m headstart.tools.bench`` trains the default race twice in one process: with the engine,
and the way the PyTorch transfer-learning tutorial would (strategies one after another,
locked layers recomputed on every batch, evaluation over the test set each epoch in small
batches, ``.item()`` per batch). Same data, epochs, test set, initial weights and
shuffling. It prints wall seconds, the ratio, per-strategy seconds, peak memory, final
accuracies of both (they must agree: speed may not come from learning less), and the
engine's achieved FLOP/s while training scratch against a large matmul's, and the floor the
race's own arithmetic puts under its time at that ceiling. ``--repeat N``
runs the whole comparison N times and gives each figure's median and range.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from headstart.race.events import STRATEGIES, Done, RaceConfig, Strategy
from headstart.race.strategies import EXTRAS
from headstart.settings import get_settings
from headstart.training import devices, engine, models
from headstart.training.feature_cache import run_prefix

TUTORIAL_EVAL_BATCH = 64


def reference_race(config: RaceConfig, res: engine.Resources) -> dict[Strategy, dict[str, float]]:
    """The three trainings as most people write them: correct, and unhurried."""
    s = res.settings
    train, test = res.train_split(config.n), res.test
    out: dict[Strategy, dict[str, float]] = {}
    for name in STRATEGIES:
        t0 = time.perf_counter()
        model, _ = engine.build_model(name, config, res)
        model = model.to(memory_format=torch.contiguous_format)  # the tutorial's default layout
        opt = torch.optim.AdamW(engine.param_groups(name, model, config, s.training.weight_decay))
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
                    correct += int((model(xs).argmax(1) == ys).sum().item())
            acc = correct / len(test)
        devices.sync(res.device)
        out[name] = {"seconds": time.perf_counter() - t0, "final_test_acc": acc}
    return out


def matmul_ceiling(device: torch.device, size: int = 2048, rounds: int = 5, repeats: int = 2) -> float:
    """FLOP/s of a large fp32 matmul: the device's practical ceiling.

    The best of a few short rounds, so that a neighbour's burst on a shared machine lowers
    one round rather than the ceiling every other rate is measured against.
    """
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    best = math.inf
    for _ in range(rounds):
        devices.sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        devices.sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 * repeats / best


def scratch_flops(config: RaceConfig, res: engine.Resources) -> float:
    """FLOPs the scratch strategy performs in a race: training steps plus per-epoch evaluation."""
    s = res.settings
    model = models.build(s.network.width, s.network.blocks_per_stage).to(res.device)
    x = res.train_split(config.n).x[: s.training.batch_size]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long, device=res.device)).backward()
    train_per_image = counter.get_total_flops() / len(x)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.eval()(x)
    eval_per_image = counter.get_total_flops() / len(x)
    return float(config.epochs * (train_per_image * config.n + eval_per_image * len(res.test)))


def race_flops(config: RaceConfig, res: engine.Resources, measure_source: bool = False) -> float:
    """FLOPs of the engine's cold race, as it runs: every matmul and convolution, forward and backward;
    with ``measure_source``, the source task's measurement too, as a race on the page runs it.

    Elementwise work and BatchNorm are not counted, so what this costs at the matmul ceiling is
    a floor under the race's time for fp32 convolutions done directly or as matmuls (a Winograd
    or FFT kernel multiplies less than it is counted for; oneDNN uses neither here).
    """
    res.cache.clear()
    # A step replayed from a CUDA graph runs no Python, so no counter would see it: counted eager.
    eager = dataclasses.replace(res, settings=res.settings.model_copy(update={"cuda_graphs": False}))
    with FlopCounterMode(display=False) as counter:
        for _ in engine.run_race(config, eager, measure_source=measure_source):
            pass
    res.cache.clear()
    return float(counter.get_total_flops())


def _locked_prefix(config: RaceConfig, res: engine.Resources) -> tuple[torch.nn.Sequential, torch.Tensor]:
    """Every locked unit of frozen, and the race's images (training and test) it runs over."""
    model, locked = engine.build_model("frozen", config, res)
    return model.layers_to(locked), torch.cat([res.train_split(config.n).x, res.test.x])


def locked_pass_flops(config: RaceConfig, res: engine.Resources) -> float:
    """FLOPs of the pass frozen relies on: every locked unit once over the race's images."""
    prefix, images = _locked_prefix(config, res)
    batch = min(len(images), res.settings.training.eval_batch_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        prefix.eval()(images[:batch])
    return float(counter.get_total_flops() * len(images) / batch)


def locked_pass_seconds(config: RaceConfig, res: engine.Resources) -> float:
    """Seconds of that pass: what the engine does once per race and the reference every epoch.

    Its rate against the matmul ceiling says how much a faster kernel could still win.
    """
    prefix, images = _locked_prefix(config, res)
    run_prefix(prefix, images, res.settings.training.eval_batch_size)  # the first call picks its kernels
    devices.sync(res.device)
    t0 = time.perf_counter()
    run_prefix(prefix, images, res.settings.training.eval_batch_size)
    devices.sync(res.device)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_name(device: torch.device) -> str:
    """The hardware, named: what a figure means depends on it.

    A CPU is named with the widest vector unit it has, which is not always the one torch's
    kernels use (``ATEN_CPU_CAPABILITY`` and ``ONEDNN_MAX_CPU_ISA`` can cap them): the
    device line says which kernels ran.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    unit = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), None)
    return f"{model or 'unknown CPU'}{f' ({unit})' if unit else ''}, {os.cpu_count()} cores"


@dataclass
class Trial:
    """One round of the benchmark: a cold engine race, a warm one, the reference, the ceiling."""

    cold: Done
    cold_wall: float
    warm: Done
    warm_wall: float
    rss_mb: float  # peak resident memory after the engine's races, before the reference's
    reference: dict[Strategy, dict[str, float]] | None
    ceiling: float
    locked_s: float
    lanes: Done  # a cold race of the same configuration with both extra lanes added
    lanes_wall: float

    @property
    def reference_wall(self) -> float:
        return sum(r["seconds"] for r in self.reference.values()) if self.reference else math.nan

    def engine_s(self, name: Strategy, warm: bool = False) -> float:
        """Cold: the strategy's own cost, its whole locked pass included, as its clock on the page
        shows it. Warm: what the next race actually ran for it, the locked outputs being kept."""
        summary = (self.warm if warm else self.cold).summary[name]
        return summary.compute_s - summary.reused_s if warm else summary.compute_s

    def speedup(self, name: Strategy, warm: bool = False) -> float:
        return self.reference[name]["seconds"] / self.engine_s(name, warm) if self.reference else math.nan


def run_trial(config: RaceConfig, res: engine.Resources, with_reference: bool) -> Trial:
    res.cache.clear()  # cold: nothing kept from an earlier race
    t0 = time.perf_counter()
    cold = next(e for e in engine.run_race(config, res) if isinstance(e, Done))
    cold_wall = time.perf_counter() - t0
    # warm: the next race of a classroom session (another seed) finds the locked units' features kept
    t0 = time.perf_counter()
    warm = next(e for e in engine.run_race(config.model_copy(update={"seed": config.seed + 1}), res) if isinstance(e, Done))
    warm_wall = time.perf_counter() - t0
    rss_mb = peak_rss_mb()
    # The extra lanes' price: the same race, cold, with gradual and LoRA beside the three.
    res.cache.clear()
    t0 = time.perf_counter()
    lanes = next(e for e in engine.run_race(config.model_copy(update={"extra": EXTRAS}), res) if isinstance(e, Done))
    lanes_wall = time.perf_counter() - t0
    reference = reference_race(config, res) if with_reference else None
    ceiling, locked_s = matmul_ceiling(res.device), locked_pass_seconds(config, res)
    return Trial(cold, cold_wall, warm, warm_wall, rss_mb, reference, ceiling, locked_s, lanes, lanes_wall)


def _accuracies(t: Trial) -> list[float]:
    races = [t.cold, t.warm]
    return [d.summary[name].final_test_acc for d in races for name in STRATEGIES] + [
        r["final_test_acc"] for r in (t.reference or {}).values()
    ]


def spread(values: list[float], fmt: str = ".2f") -> str:
    """The median, and the range when there is more than one value: "2.10 (1.98–2.60)"."""
    mid = format(statistics.median(values), fmt)
    return mid if len(values) == 1 else f"{mid} ({min(values):{fmt}}–{max(values):{fmt}})"


def report(trials: list[Trial], config: RaceConfig, res: engine.Resources) -> Iterator[str]:
    """The benchmark's figures, line by line: each the median of the trials, with its range."""
    first, ref = trials[0], trials[0].reference is not None
    reference = first.reference or {}
    # Shared machines are noisy: with several runs, each figure is the median of its runs (range after it).
    yield ""
    if len(trials) > 1:
        rounds = "a cold race, a warm race (the next seed)" + (" and the reference" if ref else "")
        yield f"medians of {len(trials)} runs, each {rounds}"
    header = f"{'strategy':<10} {'engine s':>9} {'warm s':>7} {'engine acc':>11}"
    yield header + (f" {'reference s':>12} {'reference acc':>14} {'speed-up':>9} {'warm':>6}" if ref else "")
    for name in STRATEGIES:
        cold_s = statistics.median(t.engine_s(name) for t in trials)
        warm_s = statistics.median(t.engine_s(name, warm=True) for t in trials)
        line = f"{name:<10} {cold_s:>9.2f} {warm_s:>7.2f} {first.cold.summary[name].final_test_acc:>11.3f}"
        if ref:
            ref_s = statistics.median(t.reference[name]["seconds"] for t in trials if t.reference)
            cold_x = statistics.median(t.speedup(name) for t in trials)
            warm_x = statistics.median(t.speedup(name, warm=True) for t in trials)
            line += f" {ref_s:>12.2f} {reference[name]['final_test_acc']:>14.3f} {cold_x:>8.1f}× {warm_x:>5.1f}×"
        yield line
    yield "engine s: each strategy's own compute, its whole locked pass included (its clock on the page);"
    yield "warm s: what the next race ran for it, finding the locked units' outputs kept"
    if len(trials) > 1 and ref:
        yield (
            f"frozen alone: {spread([t.speedup('frozen') for t in trials], '.1f')}× cold, "
            f"{spread([t.speedup('frozen', warm=True) for t in trials], '.1f')}× warm"
        )
    if len(trials) > 1:
        # The same configuration trains to the same numbers every time: only the clocks move.
        same = all(_accuracies(t) == _accuracies(first) for t in trials)
        yield "final accuracies: the same in every run" if same else "final accuracies: NOT the same in every run"
    yield ""
    yield f"engine race wall: {spread([t.cold_wall for t in trials])} s cold, {spread([t.warm_wall for t in trials])} s warm"
    yield f"  of which measuring source_acc, on no clock: {spread([t.cold.source_s for t in trials])} s cold"
    yield (
        f"with both extra lanes: {spread([t.lanes_wall for t in trials])} s cold, "
        f"{spread([t.lanes_wall / t.cold_wall for t in trials])}× the default race's wall; compute "
        + ", ".join(f"{name} {spread([t.lanes.summary[name].compute_s for t in trials])} s" for name in EXTRAS)
    )
    # What the wall's ratio could be at best: the two races' arithmetic, each FLOP equally fast.
    alone, both = (race_flops(c, res, measure_source=True) for c in (config, config.model_copy(update={"extra": EXTRAS})))
    yield (
        f"  arithmetic, source_acc's measurement included: {both / 1e9:.0f} GFLOP against {alone / 1e9:.0f}, "
        f"{both / alone:.2f}×: the least the walls' ratio can be where every FLOP runs as fast"
    )
    if ref:
        yield (
            f"reference wall:   {spread([t.reference_wall for t in trials])} s  → engine is "
            f"{spread([t.reference_wall / (t.cold_wall - t.cold.source_s) for t in trials], '.1f')}× faster end to end cold, "
            f"{spread([t.reference_wall / (t.warm_wall - t.warm.source_s) for t in trials], '.1f')}× warm "
            "(the reference measures no source task: that time left out)"
        )
    yield f"peak resident memory: {first.rss_mb:.0f} MB after the engine race, {peak_rss_mb():.0f} MB after everything"
    if res.device.type == "cuda":
        yield f"peak GPU memory allocated: {torch.cuda.max_memory_allocated(res.device) / 2**20:.0f} MB"
    flops = scratch_flops(config, res)
    achieved = [flops / t.cold.summary["scratch"].compute_s for t in trials]
    yield (
        f"matmul ceiling: {spread([t.ceiling / 1e9 for t in trials], '.1f')} GFLOP/s; "
        f"scratch achieved {spread([a / 1e9 for a in achieved], '.1f')} GFLOP/s "
        f"= {spread([100 * a / t.ceiling for a, t in zip(achieved, trials, strict=True)], '.0f')} % of it"
    )
    locked_flops = locked_pass_flops(config, res)
    yield (
        f"locked pass (all five units over {config.n} + {len(res.test)} images, once): "
        f"{spread([t.locked_s for t in trials], '.3f')} s, "
        f"{spread([locked_flops / t.locked_s / 1e9 for t in trials], '.1f')} GFLOP/s = "
        f"{spread([100 * locked_flops / t.locked_s / t.ceiling for t in trials], '.0f')} % of the ceiling"
    )
    counted = race_flops(config, res)  # the same in every trial: counted once, not per trial
    floor = [counted / t.ceiling for t in trials]
    line = f"race arithmetic: {counted / 1e9:.0f} GFLOP counted, {spread(floor, '.3f')} s at the ceiling"
    if ref:
        best = [t.reference_wall / f for t, f in zip(trials, floor, strict=True)]
        line += f": even there, the engine could be at most {spread(best, '.1f')}× faster than the reference end to end"
    yield line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m headstart.tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the whole comparison this many times and report medians and ranges"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    settings = get_settings()
    if settings.training.threads:
        torch.set_num_threads(settings.training.threads)
    given = {k: v for k, v in {"n": args.n, "epochs": args.epochs}.items() if v is not None}
    config = RaceConfig.validate_with(given, settings.limits)
    res = engine.Resources.load(settings)
    printed: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        printed.append(line)

    machine = machine_name(res.device)
    say(f"machine: {machine}")
    say(f"device: {devices.describe_device(res.device)}; torch {torch.__version__}; config {config.model_dump()}")

    engine.warm_up(res, config)
    trials = [run_trial(config, res, with_reference=not args.skip_reference) for _ in range(args.repeat)]
    for line in report(trials, config, res):
        say(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python -m headstart.tools.bench", *(argv if argv is not None else sys.argv[1:])])
        heading = f"# `{command}` on {machine}, {time.strftime('%Y-%m-%d')}"
        args.out.write_text(heading + "\n\n```\n" + "\n".join(printed) + "\n```\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
