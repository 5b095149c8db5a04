"""Pixels as they travel on the wire <-> numpy arrays for the engine, and the selection mask."""

from __future__ import annotations

import numpy as np

from textpromptir_wire.frames import SAMPLE_BYTES, ProtocolError
from textpromptir_wire.messages import Restore


def sample_dtype(sample_format: str) -> np.dtype:
    """u8, u16, f16, f32 -> little-endian uint8, uint16, float16, float32 (kind from the name, size from the wire)."""
    return np.dtype(f"<{sample_format[0]}{SAMPLE_BYTES[sample_format]}")


def decode_pixels(request: Restore, payload: bytearray) -> tuple[np.ndarray, np.ndarray | None]:
    """The request's pixels as (H, W, 4) RGBA of their own dtype, and the selection mask (H, W) if any."""
    if len(payload) != request.payload_bytes:
        raise ProtocolError(f"The request says {request.payload_bytes} bytes of pixels but carries {len(payload)}.")
    width, height = request.width, request.height
    pixels = np.frombuffer(payload, sample_dtype(request.sample_format), count=width * height * 4)
    pixels = pixels.reshape(height, width, 4)
    if request.order == "BGRA":
        pixels = pixels[..., [2, 1, 0, 3]]
    mask = None
    if request.mask:
        mask = np.frombuffer(payload, np.uint8, offset=request.pixel_bytes).reshape(height, width)
    return pixels, mask


def encode_pixels(rgba: np.ndarray, sample_format: str, order: str) -> memoryview:
    if order == "BGRA":
        rgba = rgba[..., [2, 1, 0, 3]]
    return memoryview(np.ascontiguousarray(rgba, sample_dtype(sample_format))).cast("B")


def apply_mask(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Make unselected pixels transparent; partly selected ones (feathered edges) partly so."""
    coverage = mask.astype(np.float32) / 255.0
    alpha = rgba[..., 3].astype(np.float32) * coverage
    if np.issubdtype(rgba.dtype, np.integer):
        alpha = np.rint(alpha)
    rgba = rgba.copy()
    rgba[..., 3] = alpha.astype(rgba.dtype)
    return rgba
