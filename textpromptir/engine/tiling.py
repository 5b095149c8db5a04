"""Split an image into overlapping tiles and blend them back without seams.

Memory then depends on the tile size, not the image size. Neighbouring tiles
overlap; each tile's weight rises smoothly from ~0 at an inner edge to 1, so
the pixels a tile saw with least context count least and no edge shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OVERLAP = 32  # pixels shared by neighbouring tiles
MIN_TILE = 2 * OVERLAP


@dataclass(frozen=True)
class Tile:
    top: int
    bottom: int
    left: int
    right: int

    @property
    def rows(self) -> slice:
        return slice(self.top, self.bottom)

    @property
    def cols(self) -> slice:
        return slice(self.left, self.right)


def spans(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """Evenly spaced (start, stop) spans of equal size covering [0, length).

    The fewest spans of at most `tile` pixels that overlap by at least
    `overlap`; their size is rounded up to `multiple` when the image allows.
    `tile` <= 0 means one span.
    """
    if tile <= 0 or length <= tile:
        return [(0, length)]
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    size = min(length, math.ceil(size / multiple) * multiple)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    return [(start, start + size) for start in starts]


def grid(height: int, width: int, tile: int, overlap: int, multiple: int) -> list[Tile]:
    return [
        Tile(top, bottom, left, right)
        for top, bottom in spans(height, tile, overlap, multiple)
        for left, right in spans(width, tile, overlap, multiple)
    ]


def _ramp(start: int, stop: int, full: int, overlap: int) -> np.ndarray:
    """1-D weights of a span: raised-cosine ramps on edges inside the image."""
    weights = np.ones(stop - start, dtype=np.float32)
    ramp_len = min(overlap, (stop - start) // 2)
    if ramp_len == 0:
        return weights
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len)
    if start > 0:
        weights[:ramp_len] = ramp
    if stop < full:
        weights[-ramp_len:] = ramp[::-1]
    return weights


def blend_weights(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """(h, w, 1) weights of one tile for a weighted average of overlapping tiles."""
    rows = _ramp(tile.top, tile.bottom, height, overlap)
    cols = _ramp(tile.left, tile.right, width, overlap)
    return (rows[:, None] * cols[None, :])[:, :, None]


def cores(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each span's part that no neighbour overlaps: there the blended result is that span's output alone."""
    found = []
    for index, (start, stop) in enumerate(spans):
        low = spans[index - 1][1] if index > 0 else start
        high = spans[index + 1][0] if index + 1 < len(spans) else stop
        found.append((max(start, low), min(stop, high)))
    return found


def _crop_on_axis(spans: list[tuple[int, int]], centre: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The span whose core lies nearest `centre`, and up to `size` pixels of that core around `centre`."""
    span_cores = cores(spans)
    index = min(range(len(spans)), key=lambda i: max(span_cores[i][0] - centre, centre - span_cores[i][1] + 1, 0))
    low, high = span_cores[index]
    if high <= low:
        raise ValueError(f"tiles of {spans[index][1] - spans[index][0]} pixels leave no core for a preview")
    length = min(size, high - low)
    start = min(max(centre - length // 2, low), high - length)
    return spans[index], (start, start + length)


def preview_crop(
    height: int, width: int, centre: tuple[int, int], size: int, tile: int, overlap: int, multiple: int
) -> tuple[Tile, Tile]:
    """(tile, crop): the tile of grid() nearest `centre` (x, y), and a crop of at most size x size in its core.

    Inside a tile's core no other tile is blended in, so there the full run
    of `grid(height, width, tile, overlap, multiple)` is this tile's output.
    """
    rows, crop_rows = _crop_on_axis(spans(height, tile, overlap, multiple), centre[1], size)
    cols, crop_cols = _crop_on_axis(spans(width, tile, overlap, multiple), centre[0], size)
    return Tile(*rows, *cols), Tile(*crop_rows, *crop_cols)
