"""Named sizes of the restoration backbone: one code path, several configs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .resampling import UPSAMPLINGS

LEVELS = 4


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a TextPromptIR backbone.

    `blocks` and `heads` give, per level from full resolution down to the
    latent, the number of integrated transformer blocks and attention heads.
    Level l works on width * 2**l channels; the decoder mirrors levels 1-3.
    Levels from `attention_from` down use the paper's transformer blocks
    (IMTA + IGFN); shallower ones use NAF blocks (block.py), so 0 is the
    paper's network, LEVELS an attention-free one, and 2 a hybrid that attends
    only where the maps are small. `upsample` picks the decoder's upsampling
    (resampling.py: "pixel_shuffle" as the paper, or "bilinear", which cannot
    print a grid). Both default to the paper's, so configs saved before
    they existed load unchanged.
    """

    width: int
    blocks: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    refinement_blocks: int
    expansion: float = 2.66
    text_dim: int = 384  # size of the sentence embedding from the text stage
    prompt_dim: int = 384  # size of the projected prompt every block reads
    attention_from: int = 0
    upsample: str = "pixel_shuffle"

    def __post_init__(self) -> None:
        if len(self.blocks) != LEVELS or len(self.heads) != LEVELS:
            raise ValueError(f"blocks and heads need {LEVELS} entries, one per level")
        for level, heads in enumerate(self.heads):
            if (self.width * 2**level) % heads:
                raise ValueError(f"level {level}: {self.width * 2**level} channels do not split into {heads} heads")
        if not 0 <= self.attention_from <= LEVELS:
            raise ValueError(f"attention_from must be a level from 0 to {LEVELS} ({LEVELS}: no attention anywhere)")
        if self.upsample not in UPSAMPLINGS:
            raise ValueError(f"upsample {self.upsample!r} is not one of {list(UPSAMPLINGS)}")

    @property
    def size_multiple(self) -> int:
        """Inputs must be padded to a multiple of this (three 2x downsamplings)."""
        return 2 ** (LEVELS - 1)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        fields = json.loads(text)
        fields["blocks"] = tuple(fields["blocks"])
        fields["heads"] = tuple(fields["heads"])
        return cls(**fields)


SIZES: dict[str, ModelConfig] = {
    # The paper's backbone (Restormer widths, text in every block). For GPUs.
    "paper": ModelConfig(width=48, blocks=(4, 6, 6, 8), heads=(1, 2, 4, 8), refinement_blocks=4),
    # What we ship for laptops: <= 5 s per megapixel on 2 CPU cores, tiling
    # included (2.39 M parameters, 63 GMAC per megapixel; benchmarks/engine_speed.py).
    # Trained as blocks 1/1/1/2 to step 23,000, then grown (model/growth.py).
    "lite": ModelConfig(width=14, blocks=(1, 2, 2, 4), heads=(1, 2, 4, 8), refinement_blocks=0),
    # Candidates of the quality study (issue 19; training/study.py), not shipped: NAF blocks with the
    # text path, more blocks where the maps are small, bilinear upsampling; the hybrid attends at
    # levels 2-3 only (a sixteenth and a sixty-fourth of the pixels), with fewer blocks there to stay in the
    # 5 s/MP budget (blocks 1/2/4/8 measured 1.24x `lite`, 1/2/3/4 0.78x; benchmarks/STUDY.md).
    "naf": ModelConfig(
        width=16, blocks=(1, 2, 4, 8), heads=(1, 2, 4, 8), refinement_blocks=0, attention_from=4, upsample="bilinear"
    ),
    "hybrid": ModelConfig(
        width=16, blocks=(1, 2, 3, 4), heads=(1, 2, 4, 8), refinement_blocks=0, attention_from=2, upsample="bilinear"
    ),
}
