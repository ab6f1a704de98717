"""A race's steps replayed from CUDA graphs: one launch where eager PyTorch makes a hundred.

A race's trainable layers are small, so on a GPU a step is bound by the CPU launching its
kernels, not by the GPU running them: on an H100, scratch's training step took 6.0 ms
eager, of which the kernels ran 1.0 ms, and 0.8 ms replayed from a graph. A graph repeats
the step's kernels on the very tensors it was captured with, so the model's parameters,
the optimizer's state and the running sums it adds to are updated in place, and each
batch is copied into the step's own input tensors before the replay.

Capture records the work without running it, and a step's first calls make what a graph
cannot: the optimizer's state, cuDNN's workspace, the allocator's blocks. So each batch
shape runs ``eager_runs`` times eagerly first, on a side stream as capture requires; those
are steps of the race like any other, in order. Nothing here knows what a race is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class Replayed:
    """Calls ``step(x, y)``, replaying it from a graph per input shape once that shape has run eagerly.

    ``step`` must return nothing and keep its results in tensors that outlive it (updated in
    place), and must not read the device's values on the host: a replay runs none of its Python.
    """

    def __init__(self, step: Callable[[torch.Tensor, torch.Tensor], None], eager_runs: int = 2) -> None:
        self._step = step
        self._eager_runs = eager_runs
        self._runs: dict[tuple[torch.Size, torch.Size], int] = {}
        self._graphs: dict[tuple[torch.Size, torch.Size], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._side = torch.cuda.Stream()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        shape = (x.shape, y.shape)
        captured = self._graphs.get(shape)
        if captured is None:
            runs = self._runs.get(shape, 0)
            if runs < self._eager_runs:
                self._runs[shape] = runs + 1
                self._on_side_stream(x, y)
                return
            captured = self._graphs[shape] = self._capture(x, y)
        graph, static_x, static_y = captured
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()

    @property
    def graphs(self) -> int:
        return len(self._graphs)

    def _on_side_stream(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._side):
            self._step(x, y)
        torch.cuda.current_stream().wait_stream(self._side)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step(static_x, static_y)
        return graph, static_x, static_y
