"""The restore engine: any image size, any supported dtype, bounded memory."""

from __future__ import annotations

import collections
import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from textpromptir.errors import Cancelled, ImageError, OutOfMemory, WeightsError
from textpromptir.model import TextPromptIR
from textpromptir.text.understand import understand

from . import tiling
from .device import half_precision, pick_device
from .weights import SHIPPED_WEIGHTS, load_model

# Tiles of up to 512 x 512 keep a tile's activations in cache on a CPU, which made
# them the fastest size there (benchmarks/PROFILE.md), and they bound memory.
DEFAULT_TILE = 512
PREVIEW_SIZE = 320  # the side of a preview crop; it fits inside the core of any tile of the default grid
_BLEND_ROWS = 1024  # rows blended at once: float64 copies of a whole 64 MP image would cost gigabytes
PREVIEW_CACHE = 4  # restored preview tiles kept: moving the strength slider re-blends one instead of restoring it

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)
CancelCheck = Callable[[], bool]

_INTEGER_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


class Restorer:
    """Restores images as a prompt asks, with one loaded backbone.

    >>> restorer = Restorer.load()
    >>> clean = restorer.restore(pixels, "remove the rain streaks")
    """

    def __init__(self, model: TextPromptIR, device: torch.device, tile: int = DEFAULT_TILE) -> None:
        self.device = device
        self.precision = half_precision(device)
        self.model = model.to(device, memory_format=torch.channels_last).eval().run_in_strips(device.type == "cpu")
        self.tile = tile
        self._previews: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", tile: int = DEFAULT_TILE) -> Restorer:
        if weights is None:
            weights = SHIPPED_WEIGHTS
            if not weights.is_file():
                raise WeightsError(
                    f"No trained weights are installed ({weights} is missing). "
                    "Pass --weights PATH, or create untrained ones with `textpromptir init-weights PATH`."
                )
        return cls(load_model(Path(weights)), pick_device(device), tile)

    def restore(
        self,
        image: np.ndarray,
        prompt: str,
        *,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
        tile: int | None = None,
        strength: float = 1.0,
    ) -> np.ndarray:
        """Restore an (H, W, 3|4) uint8/uint16/float32 image; alpha passes through.

        `strength` below 1 blends the result with the input (see `blend`).
        Raises Cancelled when `cancel()` turns true (checked between tiles)
        and OutOfMemory with advice when a tile does not fit.
        """
        rgb, alpha, scale = _split(image)
        text = understand(prompt).embedding.to(self.device)[None]  # (1, 384)
        tile = self.tile if tile is None else tile
        if 0 < tile < tiling.MIN_TILE:
            raise ValueError(f"tile must be 0 (no tiling) or at least {tiling.MIN_TILE} pixels, not {tile}")
        height, width = rgb.shape[:2]
        tiles = tiling.grid(height, width, tile, tiling.OVERLAP, self.model.config.size_multiple)
        restored = np.zeros((height, width, 3), np.float32)
        weight_sum = np.zeros((height, width, 1), np.float32)
        for done, region in enumerate(tiles):
            if cancel is not None and cancel():
                raise Cancelled("Cancelled: the image was left as it was.")
            patch = rgb[region.rows, region.cols].astype(np.float32) / scale
            weights = tiling.blend_weights(region, height, width, tiling.OVERLAP)
            restored[region.rows, region.cols] += self._run_with_advice(patch, text, tile) * weights
            weight_sum[region.rows, region.cols] += weights
            if progress is not None:
                progress(done + 1, len(tiles))
        np.divide(restored, weight_sum, out=restored)
        return blend(image, _join(restored, alpha, image.dtype, scale), strength)

    def preview(
        self,
        image: np.ndarray,
        prompt: str,
        centre: tuple[int, int],
        size: int = PREVIEW_SIZE,
        strength: float = 1.0,
        *,
        origin: tuple[int, int] = (0, 0),
        shape: tuple[int, int] | None = None,
    ) -> tuple[tiling.Tile, np.ndarray]:
        """The pixels that `restore` gives a crop of at most size x size near `centre` (x, y): (crop, pixels).

        The full run blends its tiles only where they overlap, so inside one
        tile's core its result is that tile's output alone: the preview
        restores that one tile of the full run's grid, with the same
        context, and returns the crop of its core. `image` may be a window
        of a larger image of `shape` (height, width) whose top left corner
        lies at `origin` (x, y); the crop is in the larger image's coordinates.
        The last PREVIEW_CACHE tiles restored stay: another strength on the
        same pixels and prompt only blends again.
        """
        height, width = shape or image.shape[:2]
        multiple = self.model.config.size_multiple
        tile, crop = tiling.preview_crop(height, width, centre, size, self.tile, tiling.OVERLAP, multiple)
        left, top = origin
        if (
            tile.top < top
            or tile.left < left
            or tile.bottom > top + image.shape[0]
            or tile.right > left + image.shape[1]
        ):
            raise ImageError(
                f"The preview needs the pixels of x {tile.left}-{tile.right}, y {tile.top}-{tile.bottom}, "
                f"but only x {left}-{left + image.shape[1]}, y {top}-{top + image.shape[0]} were given."
            )
        pixels = image[tile.top - top : tile.bottom - top, tile.left - left : tile.right - left]
        restored = blend(pixels, self._restored_tile(pixels, prompt), strength)
        return crop, restored[
            crop.top - tile.top : crop.bottom - tile.top, crop.left - tile.left : crop.right - tile.left
        ]

    def _restored_tile(self, pixels: np.ndarray, prompt: str) -> np.ndarray:
        """`pixels` restored as one tile, or the same restoration kept from an earlier preview of them."""
        digest = hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16).digest()
        key = (prompt, pixels.shape, pixels.dtype.str, digest)
        if key in self._previews:
            self._previews.move_to_end(key)
        else:
            self._previews[key] = self.restore(pixels, prompt, tile=0)
            if len(self._previews) > PREVIEW_CACHE:
                self._previews.popitem(last=False)
        return self._previews[key]

    def _run_with_advice(self, patch: np.ndarray, text: torch.Tensor, tile: int) -> np.ndarray:
        try:
            return self._run(patch, text)
        except Exception as error:
            if not _is_out_of_memory(error):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemory(
                f"Out of memory on {self.device.type} while restoring a {patch.shape[1]}x{patch.shape[0]} tile: "
                f"use smaller tiles, for example --tile {_smaller_tile(tile)}."
            ) from error

    @torch.inference_mode()
    def _run(self, patch: np.ndarray, text: torch.Tensor) -> np.ndarray:
        """(h, w, 3) float32 in [0, 1] -> restored (h, w, 3) float32."""
        height, width = patch.shape[:2]
        x = torch.from_numpy(patch).permute(2, 0, 1)[None].to(self.device)  # (1, 3, h, w)
        x = _pad_to_multiple(x, self.model.config.size_multiple).contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=self.precision) if self.precision else contextlib.nullcontext()
        )
        with autocast:
            y = self.model(x, text)
        return y[0, :, :height, :width].float().permute(1, 2, 0).cpu().numpy()


def _smaller_tile(tile: int) -> int:
    """The tile size to suggest after running out of memory with `tile`."""
    if tile <= 0 or tile > DEFAULT_TILE:
        return DEFAULT_TILE
    return max(128, tile // 2)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Mirror-pad bottom and right edges up to a multiple of `multiple`."""
    height, width = x.shape[-2:]
    pad_bottom, pad_right = -height % multiple, -width % multiple
    if not (pad_bottom or pad_right):
        return x
    # Reflection needs the pad to be smaller than the image; tiny images replicate.
    mode = "reflect" if pad_bottom < height and pad_right < width else "replicate"
    return F.pad(x, (0, pad_right, 0, pad_bottom), mode=mode)


def _split(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Check an image; return its colour, its alpha and the value of white."""
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"Expected an RGB or RGBA image of shape (H, W, 3|4), got shape {image.shape}.")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError("The image is empty (zero width or height).")
    if image.dtype == np.float32:
        scale = 1.0
        _refuse_non_finite(image[:, :, :3])
    elif image.dtype in _INTEGER_SCALE:
        scale = _INTEGER_SCALE[image.dtype]
    else:
        raise ImageError(f"Unsupported pixel type {image.dtype}: use uint8, uint16 or float32.")
    alpha = image[:, :, 3:] if image.shape[2] == 4 else None
    return image[:, :, :3], alpha, scale


def _refuse_non_finite(rgb: np.ndarray) -> None:
    """One NaN or infinite colour would spread over the whole result through the network: refuse it.

    Alpha is not the network's, and passes through as it is.
    """
    broken = ~np.isfinite(rgb).all(axis=-1)
    if broken.any():
        row, column = np.argwhere(broken)[0]
        raise ImageError(
            f"{int(broken.sum())} pixel(s) of this image have a colour that is not a number (NaN or infinity), "
            f"the first at x={column}, y={row} from the area's top left corner. "
            "Paint over them, or select an area without them, and try again."
        )


def _join(rgb: np.ndarray, alpha: np.ndarray | None, dtype: np.dtype, scale: float) -> np.ndarray:
    """Back to the caller's dtype, with its untouched alpha. Reuses `rgb`'s memory."""
    if dtype != np.float32:
        np.clip(rgb, 0.0, 1.0, out=rgb)
        np.multiply(rgb, scale, out=rgb)
        np.rint(rgb, out=rgb)
    out = rgb.astype(dtype, copy=False)
    return out if alpha is None else np.concatenate([out, alpha], axis=2)


def blend(original: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """`restored * strength + original * (1 - strength)` in float64, rounded back to the image's dtype.

    Colour only: alpha is the restored image's. Strength 1 returns `restored` itself.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {strength}")
    if strength == 1.0:
        return restored
    mixed = restored.copy()
    for start in range(0, restored.shape[0], _BLEND_ROWS):
        rows = slice(start, start + _BLEND_ROWS)
        colour = restored[rows, :, :3].astype(np.float64) * strength
        colour += original[rows, :, :3].astype(np.float64) * (1.0 - strength)
        if np.issubdtype(restored.dtype, np.integer):
            np.rint(colour, out=colour)
        mixed[rows, :, :3] = colour
    return mixed
