"""What both plugins decide alike: context around a selection, the largest area, the new layer's name."""

from __future__ import annotations

CONTEXT = 32  # pixels around a selection that the model sees but that are not painted
MAX_MEGAPIXELS = 64  # larger areas are refused: minutes of work and gigabytes on a CPU
NAME_LENGTH = 48


def result_layer_name(prompt: str) -> str:
    short = prompt if len(prompt) <= NAME_LENGTH else prompt[: NAME_LENGTH - 1].rstrip() + "…"
    return f"Restored: {short}"


def size_refusal(width: int, height: int) -> str | None:
    """Why an area is too large to restore at once, or None."""
    megapixels = width * height / 1e6
    if megapixels <= MAX_MEGAPIXELS:
        return None
    return (
        f"This area is {width} x {height} pixels ({megapixels:.0f} MP); TextPromptIR restores "
        f"up to {MAX_MEGAPIXELS} MP at once. Select a part of the image and restore it in pieces."
    )
