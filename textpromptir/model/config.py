"""Named sizes of the restoration backbone: one code path, several configs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

LEVELS = 4


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a TextPromptIR backbone.

    `blocks` and `heads` give, per level from full resolution down to the
    latent, the number of integrated transformer blocks and attention heads.
    Level l works on width * 2**l channels; the decoder mirrors levels 1-3.
    """

    width: int
    blocks: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    refinement_blocks: int
    expansion: float = 2.66
    text_dim: int = 384  # size of the sentence embedding from the text stage
    prompt_dim: int = 384  # size of the projected prompt every block reads

    def __post_init__(self) -> None:
        if len(self.blocks) != LEVELS or len(self.heads) != LEVELS:
            raise ValueError(f"blocks and heads need {LEVELS} entries, one per level")
        for level, heads in enumerate(self.heads):
            if (self.width * 2**level) % heads:
                raise ValueError(f"level {level}: {self.width * 2**level} channels do not split into {heads} heads")

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
}
