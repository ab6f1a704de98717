"""What a race costs before it starts: the multiply-accumulates its configuration asks for.

Counted from the body's shape (bodies.py), not measured, so the queue can order races
before any of them trains (headstart/serving/queue.py); the server turns it into seconds at the
pace its workers have shown. A convolution's multiply-accumulates per image are its weights
times its output's pixels; training an image costs about three forward passes (the backward
pass twice one).
"""

from __future__ import annotations

from dataclasses import dataclass

from headstart.race import bodies
from headstart.race.architecture import SIDES, gradual_locked
from headstart.race.bodies import Body
from headstart.race.events import RaceConfig
from headstart.race.strategies import Strategy, raced
from headstart.settings import Settings

TRAIN_PASSES = 3  # forward, then backward at about twice the forward's arithmetic


@dataclass(frozen=True)
class Cost:
    """A race's arithmetic: what it does once (its locked units' pass), then each epoch's round."""

    setup: float
    rounds: tuple[float, ...]  # epoch by epoch, every lane together

    @property
    def total(self) -> float:
        return self.setup + sum(self.rounds)

    def left(self, rounds_done: int) -> float:
        """What is still to do once ``rounds_done`` epochs' rounds are (0: the whole race)."""
        return sum(self.rounds[rounds_done:]) + (self.setup if rounds_done == 0 else 0.0)

    def next_round(self, rounds_done: int) -> float:
        """The work before the race next reaches a point where it may yield its worker."""
        return self.rounds[rounds_done] + (self.setup if rounds_done == 0 else 0.0) if rounds_done < len(self.rounds) else 0.0


def _unit_macs(body: Body, settings: Settings) -> tuple[int, ...]:
    """Each body unit's multiply-accumulates per image, at the body's CPU side."""
    return tuple(macs for _, _, macs in bodies.unit_counts(body, settings))


def _locked(lane: Strategy, config: RaceConfig, epoch: int) -> int:
    """The body units whose outputs a lane computes once rather than trains through. LoRA
    trains an update in every unit, so its backward pass runs through them all."""
    units = len(SIDES)
    return {"scratch": 0, "frozen": units, "finetune": config.locked, "gradual": gradual_locked(epoch), "lora": 0}[lane]


def race_cost(config: RaceConfig, settings: Settings) -> Cost:
    """Each lane's epochs: training its trainable layers on ``n`` images, evaluating them on the
    test set, and measuring its body on the source probe (scratch has none; frozen's is measured
    once). Once: the locked units' pass over the training and test images."""
    units = _unit_macs(config.body, settings)
    classes = len(settings.data.target_classes)
    head = bodies.feature_dim(config.body, settings) * classes + classes
    n, test, probe = config.n, settings.data.test_size, settings.data.source_test_size
    lanes = raced(config.extra)
    setup = float(sum((n + test) * sum(units[: _locked(lane, config, 1)]) for lane in lanes))
    rounds = []
    for epoch in range(1, config.epochs + 1):
        work = 0.0
        for lane in lanes:
            locked = _locked(lane, config, epoch)
            trained = sum(units[locked:]) + head
            work += (TRAIN_PASSES * n + test) * trained
            if lane != "scratch" and not (lane == "frozen" and epoch > 1):
                work += probe * sum(units)
        rounds.append(work)
    return Cost(setup=setup, rounds=tuple(rounds))
