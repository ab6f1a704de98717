"""The lanes a race may add beside the three: gradual unfreezing and LoRA.

Gradual unfreezing (Howard & Ruder 2018, ULMFiT; fastai's ``fine_tune``) starts as frozen, a
new head on the locked body, and unlocks one body unit from the top every ``EVERY`` epochs,
each unit at its own rate: the top unit at fine-tune's body rate, each lower one ``DECAY``
times slower (ULMFiT's factor).

LoRA (Hu et al. 2021), in its convolutional form: each body convolution keeps its pretrained
kernel W, locked, and learns ΔW = B·A reshaped to the kernel, B (out × r) starting at zero so
training starts at the pretrained function, A (r × in·k·k) random. Written on torch's own
modules rather than with PEFT, the maintained library, which installs here: its LoRA for
``nn.Conv2d`` trains the same parameters, but runs the update as a second path of two more
convolutions per layer, and brings transformers, accelerate and huggingface_hub with it, for
what is here one small module folding the update into the one convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from headstart.race.architecture import EVERY as EVERY
from headstart.race.architecture import UNITS
from headstart.race.architecture import gradual_locked as gradual_locked

DECAY = 2.6  # each unit's rate is the one above it divided by this


def gradual_rate(unit: str, body_rate: float) -> float:
    """A unit's own rate: the top unit's is fine-tune's body rate, each lower one ``DECAY`` times less."""
    below_top = len(UNITS) - 1 - UNITS.index(unit)
    return body_rate / DECAY**below_top


class LoRAConv2d(nn.Module):
    """A locked convolution plus a trainable low-rank update of its kernel.

    One convolution per call, with the kernel W + (α/r)·B·A: as cheap as the convolution
    alone, where a second, low-rank path beside it would run two.
    """

    def __init__(self, base: nn.Conv2d, rank: int) -> None:
        super().__init__()
        base.requires_grad_(False)
        self.base = base
        self.rank = rank
        out_ch, in_ch, kh, kw = base.weight.shape
        self.lora_a = nn.Parameter(torch.empty(rank, in_ch * kh * kw, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(out_ch, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as LoRA's reference code initialises A
        self.scale = 1.0  # α = r: the update's scale does not change with the rank

    def delta(self) -> torch.Tensor:
        return (self.scale * self.lora_b @ self.lora_a).view_as(self.base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base
        return F.conv2d(x, b.weight + self.delta(), b.bias, b.stride, b.padding, b.dilation, b.groups)


def attach_lora(body: nn.Module, rank: int) -> list[LoRAConv2d]:
    """Replace every convolution under ``body`` with its LoRA form, in place; the new layers."""
    added = []
    for parent in list(body.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                layer = LoRAConv2d(child, rank)
                setattr(parent, name, layer)
                added.append(layer)
    return added
