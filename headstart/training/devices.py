"""Which device trains, in what layout, and how it is named and waited for.

Shared by the race engine, the feature cache, pretraining and the benchmark; nothing here
knows what a race is.
"""

from __future__ import annotations

import time

import torch

from headstart.errors import SetupError

# oneDNN's channels_last backward of a strided 1×1 convolution with fewer input channels than its
# register block (8 with AVX2, 16 with AVX-512) writes out of bounds: it hangs, crashes or returns
# wrong weight gradients (oneDNN issue #6035, reproduced with torch 2.14.1 at 2–7 channels).
# The narrowest such convolution here, stage 2's projection, has ``width`` input channels.
CPU_CHANNELS_LAST_MIN_WIDTH = 16


def memory_format(device: torch.device, width: int) -> torch.memory_format:
    """The layout the trainable layers train in: channels_last where it is fast and sound.

    It pays on GPUs, and on the CPU too (scratch and fine-tune train 10–20 % faster on two
    cores), except for the narrow models that meet the oneDNN fault above.
    """
    if device.type == "cuda" or width >= CPU_CHANNELS_LAST_MIN_WIDTH:
        return torch.channels_last
    return torch.contiguous_format


class DeviceError(SetupError):
    """The device asked for cannot train here."""


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "HEADSTART_DEVICE=cuda, but this PyTorch sees no CUDA GPU (no driver, or a CPU-only build); "
            "set HEADSTART_DEVICE=auto to use a GPU where there is one and the CPU otherwise, or cpu"
        )
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        # The same race twice must give the same numbers, as stored races assume: cuDNN's own
        # choice of kernels includes some that add in whatever order their threads finish
        # (on an H100 the same race, run five times, did not always end at the same accuracies).
        # With its deterministic kernels three runs were identical, graphed or eager.
        torch.backends.cudnn.deterministic = True
        return torch.device("cuda")
    return torch.device("cpu")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read next counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def kernels(device: torch.device) -> str:
    """Which kernels do the arithmetic: "cpu AVX2", "cpu AVX512", or the GPU by name.

    They decide the order floats are summed in, so the same training run on two of them ends
    a little apart: stored races and the checkpoint's card say which produced them.
    """
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return f"cpu {torch.backends.cpu.get_cpu_capability()}"


def describe_device(device: torch.device) -> str:
    """What trains, as shown on the page and as part of a stored race's key: the kernels, and
    on the CPU how many threads share the work (it sets the clocks the page shows)."""
    if device.type == "cuda":
        return kernels(device)
    threads = torch.get_num_threads()
    return f"{kernels(device)} ({threads} thread{'s' if threads != 1 else ''})"


class Stopwatch:
    """Seconds since it started, with ``time.perf_counter``; given a device, ``elapsed`` first
    waits for the work queued on it, so a GPU's asynchronous kernels are counted."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device, self.start = device, time.perf_counter()

    def elapsed(self) -> float:
        if self.device is not None:
            sync(self.device)
        return time.perf_counter() - self.start
