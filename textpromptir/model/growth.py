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
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .block import Stage
from .network import TextPromptIR


def can_deepen(trained: TextPromptIR, model: TextPromptIR) -> bool:
    """Whether `model` differs from `trained` only by more blocks somewhere."""
    old, new = trained.config, model.config
    same_otherwise = dataclasses.replace(new, blocks=old.blocks, refinement_blocks=old.refinement_blocks) == old
    deeper = all(n >= o for n, o in zip(new.blocks, old.blocks, strict=True))
    return same_otherwise and deeper and new.refinement_blocks >= old.refinement_blocks


def deepen(model: TextPromptIR, trained: TextPromptIR) -> None:
    """Load `trained` into the deeper `model`; `model`'s extra blocks become the identity."""
    if not can_deepen(trained, model):
        raise ValueError(
            f"cannot grow {trained.config} into {model.config}: only more blocks per level, nothing else changed"
        )
    model.load_state_dict(trained.state_dict(), strict=False)  # the trained names are a subset of the model's
    with torch.no_grad():
        for block in new_blocks(model, trained):
            for branch in block.children():  # IMTA and IGFN, or a NAF block's mixer and feed-forward
                branch.body.project.weight.zero_()
                if branch.body.project.bias is not None:
                    branch.body.project.bias.zero_()


def new_blocks(model: TextPromptIR, trained: TextPromptIR) -> list[nn.Module]:
    """The blocks of `model` that `trained` lacks: each stage's blocks past the trained depth."""
    trained_stages = dict(trained.named_modules())
    grown = []
    for name, stage in model.named_modules():
        if isinstance(stage, Stage):
            grown.extend(stage.blocks[len(trained_stages[name].blocks) :])
    return grown
