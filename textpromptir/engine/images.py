"""Read and write photos with Pillow, keeping bit depth, orientation and colour profile.

Pillow has no 16-bit RGB mode: it decodes such PNG and TIFF files to 8 bits
by keeping each sample's high byte. Decoding the same data a second time
with the byte order swapped yields the low bytes, so two passes of Pillow's
own decoders give the exact 16-bit samples. 16-bit colour is written by a
small PNG encoder here and by tifffile for TIFF.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from textpromptir.errors import ImageError

WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
EIGHT_BIT_ONLY = {"JPEG", "WEBP"}
ORIENTATION_TAG = 0x0112

# 8-bit Pillow modes and the layout we read them as.
_EIGHT_BIT_MODES = {"RGB": "RGB", "RGBA": "RGBA", "L": "RGB", "LA": "RGBA", "1": "RGB", "RGBX": "RGB"}
_SIXTEEN_BIT_GREY = {"I;16", "I;16B", "I;16L", "I;16N"}


@dataclass
class Photo:
    """Pixels as (H, W, 3|4) uint8 or uint16, upright, plus what to write back."""

    pixels: np.ndarray
    grey: bool  # the file was greyscale: written back as greyscale
    icc_profile: bytes | None
    exif: Image.Exif | None


def read_photo(path: Path) -> Photo:
    path = Path(path)
    try:
        with Image.open(path) as image:
            return _decode(image, path)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image that can be read (PNG, JPEG, TIFF and WebP are).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{path} could not be read: {error}. The file may be damaged or truncated.") from None


def _decode(image: Image.Image, path: Path) -> Photo:
    sixteen_bit_colour = image.mode in ("RGB", "RGBA") and _is_sixteen_bit_colour(image)  # before anything loads
    icc = image.info.get("icc_profile")
    exif = image.getexif()
    orientation = exif.pop(ORIENTATION_TAG, 1)  # the pixels are made upright below
    grey = image.mode in ("L", "LA", "1") or image.mode in _SIXTEEN_BIT_GREY
    if sixteen_bit_colour:
        pixels = _decode_sixteen_bit_colour(path)
    elif image.mode in _SIXTEEN_BIT_GREY:
        pixels = np.repeat(np.asarray(image).astype(np.uint16)[:, :, None], 3, axis=2)
    elif image.mode in ("P", "PA"):
        pixels = np.asarray(image.convert("RGBA" if image.has_transparency_data else "RGB"))
    elif image.mode in _EIGHT_BIT_MODES:
        pixels = np.asarray(image.convert(_EIGHT_BIT_MODES[image.mode]))
    else:
        raise ImageError(
            f"{path}: {image.mode} images are not supported; convert it to RGB (8 or 16 bits per channel) first."
        )
    return Photo(_make_upright(np.ascontiguousarray(pixels), orientation), grey, icc, exif or None)


def _is_sixteen_bit_colour(image: Image.Image) -> bool:
    return any(";16" in _rawmode(tile) for tile in image.tile)


def _rawmode(tile: tuple) -> str:
    args = tile[3]
    return args[0] if isinstance(args, tuple) else str(args)


def _decode_sixteen_bit_colour(path: Path) -> np.ndarray:
    high = _decode_bytes(path, swap_bytes=False).astype(np.uint16)
    low = _decode_bytes(path, swap_bytes=True).astype(np.uint16)
    return (high << 8) | low


def _decode_bytes(path: Path, swap_bytes: bool) -> np.ndarray:
    """Decode the file's samples to 8 bits: the high bytes, or the low ones if swapped."""
    with Image.open(path) as image:
        if swap_bytes:
            image.tile = [tile._replace(args=_swapped_args(tile[3])) for tile in image.tile]
        return np.asarray(image)


def _swapped_args(args: tuple | str) -> tuple | str:
    rawmode = args[0] if isinstance(args, tuple) else args
    base, order = rawmode.split(";16")
    native = "L" if np.little_endian else "B"
    swapped = {"B": "L", "L": "B"}[order.replace("N", native)]
    new = f"{base};16{swapped}"
    return (new, *args[1:]) if isinstance(args, tuple) else new


def _make_upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels."""
    transforms = {
        2: lambda p: p[:, ::-1],
        3: lambda p: p[::-1, ::-1],
        4: lambda p: p[::-1],
        5: lambda p: p.transpose(1, 0, 2),
        6: lambda p: np.rot90(p, -1),
        7: lambda p: p.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda p: np.rot90(p, 1),
    }
    transform = transforms.get(orientation)
    return pixels if transform is None else np.ascontiguousarray(transform(pixels))


def check_writable(path: Path) -> None:
    """Raise ImageError unless `path` names a format we write, in a folder that accepts new files.

    Checked before a restore starts, so a wrong output costs no minutes of work.
    """
    path = Path(path)
    _file_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise ImageError(
            f"{path} cannot be written: {error.strerror or error} ({error.filename or path.parent}). "
            "Choose another output folder."
        ) from None


def write_photo(path: Path, pixels: np.ndarray, like: Photo) -> None:
    """Write pixels in the format the file name asks for, with `like`'s profile and EXIF.

    The file is written beside the target under a temporary name, then
    renamed over it: a write that fails (a full disk) leaves any existing
    file as it was, and no half-written one.
    """
    path = Path(path)
    file_format = _file_format(path)
    if pixels.dtype == np.uint16 and file_format in EIGHT_BIT_ONLY:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    if like.grey:
        pixels = _to_grey(pixels)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if pixels.dtype == np.uint16 and pixels.ndim == 3:
            _write_sixteen_bit_colour(temporary, file_format, pixels, like.icc_profile)
        else:
            _write_with_pillow(temporary, file_format, pixels, like)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ImageError(
                f"{path} could not be written ({error.strerror or error}); a file that was there is unchanged."
            ) from None
        raise


def _file_format(path: Path) -> str:
    file_format = WRITABLE.get(path.suffix.lower())
    if file_format is None:
        raise ImageError(
            f"{path}: cannot write {path.suffix or 'files without an extension'}; use .png, .jpg, .tif or .webp."
        )
    return file_format


def _to_grey(pixels: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as Pillow's convert("L"); alpha kept. 2-D when there is no alpha."""
    luma = pixels[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    luma = np.rint(luma).astype(pixels.dtype)
    return luma if pixels.shape[2] == 3 else np.dstack([luma, pixels[:, :, 3]])


def _write_with_pillow(path: Path, file_format: str, pixels: np.ndarray, like: Photo) -> None:
    if pixels.dtype == np.uint16:  # 16-bit grey
        image = Image.fromarray(pixels[:, :, 0] if pixels.ndim == 3 else pixels)
    else:
        image = Image.fromarray(pixels)
    options: dict = {}
    if like.icc_profile:
        options["icc_profile"] = like.icc_profile
    if like.exif is not None:
        options["exif"] = like.exif.tobytes()
    if file_format in ("JPEG", "WEBP"):
        options["quality"] = 95
    if file_format == "JPEG":
        options["subsampling"] = 0  # keep the restored colour detail
    image.save(path, file_format, **options)


def _write_sixteen_bit_colour(path: Path, file_format: str, pixels: np.ndarray, icc: bytes | None) -> None:
    if file_format == "TIFF":
        import tifffile

        tifffile.imwrite(path, pixels, photometric="rgb", compression="zlib", iccprofile=icc)
    else:
        path.write_bytes(encode_png16(pixels, icc))


def encode_png16(pixels: np.ndarray, icc: bytes | None = None) -> bytes:
    """A 16-bit RGB(A) PNG. Rows use the Sub filter (difference to the left pixel)."""
    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").view(np.uint8).reshape(height, width * channels * 2)
    bytes_per_pixel = channels * 2
    filtered = rows.copy()
    filtered[:, bytes_per_pixel:] -= rows[:, :-bytes_per_pixel]  # wraps modulo 256, as PNG wants
    scanlines = np.hstack([np.ones((height, 1), np.uint8), filtered])  # filter type 1 (Sub)
    colour_type = 6 if channels == 4 else 2
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
