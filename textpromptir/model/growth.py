"""Deepen a trained backbone without losing what it learned.

Training a new size from scratch costs as many steps as the old one had; on
our 2-core CPUs that is many hours. A deeper config of the same width can
instead start from the trained network: every trained block keeps its place
(new blocks are appended at the end of each stage) and every new block
starts as the identity, so the grown network computes exactly what the
trained one did and training goes on from there. Each branch of a block adds its output to the
residual stream through one final 1x1 conv; zeroing those two convs makes the
block pass its input through unchanged, while the rest of it keeps its random
initialisation (gradients reach it as soon as the zeroed convs move).

A trained network's pixel-shuffle upsampling can also become bilinear, which
cannot print a grid (resampling.py): its conv learned one 3x3 kernel per
sub-pixel position, and the grid is where those four disagree; their mean is
the bilinear upsampling's conv. The converted network computes the trained
one's result without the sub-pixel differences, and training goes on from there.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .block import Stage
from .network import TextPromptIR


def can_grow(trained: TextPromptIR, model: TextPromptIR) -> bool:
    """Whether `model` differs from `trained` only by more blocks somewhere, or bilinear upsampling."""
    old, new = trained.config, model.config
    unchanged = dataclasses.replace(
        new, blocks=old.blocks, refinement_blocks=old.refinement_blocks, upsample=old.upsample
    )
    deeper = all(n >= o for n, o in zip(new.blocks, old.blocks, strict=True))
    upsampling = new.upsample in (old.upsample, "bilinear")
    return unchanged == old and deeper and new.refinement_blocks >= old.refinement_blocks and upsampling


def grow(model: TextPromptIR, trained: TextPromptIR) -> None:
    """Load `trained` into `model`: `model`'s extra blocks become the identity, and pixel-shuffle upsampling
    becomes bilinear with the mean of its sub-pixel kernels."""
    if not can_grow(trained, model):
        raise ValueError(
            f"cannot grow {trained.config} into {model.config}: only more blocks per level and bilinear "
            "upsampling, nothing else changed"
        )
    state = trained.state_dict()
    if (trained.config.upsample, model.config.upsample) == ("pixel_shuffle", "bilinear"):
        state = with_bilinear_upsampling(state, len(model.upsamples))
    model.load_state_dict(state, strict=False)  # the trained names are a subset of the model's
    with torch.no_grad():
        for block in new_blocks(model, trained):
            for branch in block.children():  # IMTA and IGFN, or a NAF block's mixer and feed-forward
                branch.body.project.weight.zero_()
                if branch.body.project.bias is not None:
                    branch.body.project.bias.zero_()


def with_bilinear_upsampling(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """A pixel-shuffle network's weights with each upsampling conv (2C, C, 3, 3), whose output channel
    c * 4 + position feeds sub-pixel `position` of channel c, replaced by its positions' mean (C/2, C, 3, 3)."""
    state = dict(state)
    for level in range(levels):
        kernels = state.pop(f"upsamples.{level}.0.weight")
        out_channels = kernels.shape[0] // 4
        state[f"upsamples.{level}.conv.weight"] = kernels.view(out_channels, 4, *kernels.shape[1:]).mean(dim=1)
    return state


def new_blocks(model: TextPromptIR, trained: TextPromptIR) -> list[nn.Module]:
    """The blocks of `model` that `trained` lacks: each stage's blocks past the trained depth."""
    trained_stages = dict(trained.named_modules())
    grown = []
    for name, stage in model.named_modules():
        if isinstance(stage, Stage):
            grown.extend(stage.blocks[len(trained_stages[name].blocks) :])
    return grown
