"""Steps replayed from CUDA graphs train as eager steps do.

The head's norm is checked everywhere; the rest needs a CUDA GPU and is skipped without one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from headstart.race.events import Epoch, RaceConfig
from headstart.settings import Settings
from headstart.training import cuda_graphs, engine, models

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_the_head_norm_keeps_pytorchs_epoch_averages_without_reading_the_host() -> None:
    ours, theirs = models.EpochAverageNorm(6), nn.BatchNorm1d(6, affine=False, momentum=None)
    gen = torch.Generator().manual_seed(0)
    for restart in range(2):
        ours.reset_running_stats()
        theirs.reset_running_stats()
        for size in (8, 5, 8, 3):
            x = torch.randn(size, 6, generator=gen) * 3 + restart
            torch.testing.assert_close(ours.forward_without_host_reads(x), theirs(x))
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 4
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
    ours.eval()
    theirs.eval()
    x = torch.randn(4, 6, generator=gen)
    torch.testing.assert_close(ours(x), theirs(x))


@needs_cuda
def test_replayed_steps_update_in_place_as_eager_steps_do() -> None:
    def learner() -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), models.Head(16, 3)).cuda()
        lr = torch.tensor(0.01, device="cuda")
        return model, torch.optim.AdamW(model.parameters(), lr=lr, fused=True, capturable=True), torch.zeros((), device="cuda")

    def step_of(model: nn.Module, opt: torch.optim.Optimizer, total: torch.Tensor):
        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total.add_(loss.detach())

        return step

    eager, replayed = learner(), learner()
    eager_step, graphed = step_of(*eager), cuda_graphs.Replayed(step_of(*replayed))
    gen = torch.Generator().manual_seed(1)
    for i in range(12):
        size = 8 if i % 3 else 7  # two shapes: a graph each
        x, y = torch.randn(size, 10, generator=gen).cuda(), torch.randint(0, 3, (size,), generator=gen).cuda()
        eager_step(x, y)
        graphed(x, y)
        for group in (eager[1].param_groups[0], replayed[1].param_groups[0]):
            group["lr"].mul_(0.9)  # as the scheduler does, in place
    assert graphed.graphs == 2
    torch.testing.assert_close(replayed[2], eager[2])
    for a, b in zip(eager[0].state_dict().values(), replayed[0].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


@needs_cuda
def test_a_graphed_race_trains_as_an_eager_one(tiny: Settings, monkeypatch) -> None:
    made: list[cuda_graphs.Replayed] = []

    class Counted(cuda_graphs.Replayed):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(cuda_graphs, "Replayed", Counted)
    config = RaceConfig(n=50, epochs=5, locked=2, seed=0)
    graphed = [e for e in engine.run_race(config, engine.Resources.load(tiny)) if isinstance(e, Epoch)]
    assert len(made) == 6 and all(r.graphs >= 1 for r in made)  # each strategy's training and evaluation
    eager = engine.Resources.load(tiny.model_copy(update={"cuda_graphs": False}))
    plain = [e for e in engine.run_race(config, eager) if isinstance(e, Epoch)]
    for x, y in zip(graphed, plain, strict=True):
        assert (x.strategy, x.epoch) == (y.strategy, y.epoch)
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-3, abs=1e-4)
        assert x.test_acc == pytest.approx(y.test_acc, abs=0.021)  # at most one test image flips
