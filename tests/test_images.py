"""Photo files: bit depth, orientation, colour profile and modes survive."""

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from textpromptir.engine.images import ORIENTATION_TAG, read_photo, write_photo
from textpromptir.errors import ImageError

from conftest import photo_like

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def sixteen_bit(height: int = 37, width: int = 53, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (height, width, channels), dtype=np.uint16)


def png16_with_every_filter(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG whose rows cycle through all five PNG filters (as libpng writes them)."""
    height, width, channels = pixels.shape
    bpp = 2 * channels
    raw = pixels.astype(">u2").view(np.uint8).reshape(height, -1).astype(np.int32)
    left = np.pad(raw, ((0, 0), (bpp, 0)))[:, :-bpp]
    up = np.pad(raw, ((1, 0), (0, 0)))[:-1]
    up_left = np.pad(left, ((1, 0), (0, 0)))[:-1]
    estimate = left + up - up_left
    pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    predictions = [np.zeros_like(raw), left, up, (left + up) // 2, paeth]
    lines = b"".join(
        bytes([row % 5]) + ((raw[row] - predictions[row % 5][row]) % 256).astype(np.uint8).tobytes()
        for row in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 6 if channels == 4 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(lines)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_png_is_read_exactly(tmp_path, channels):
    pixels = sixteen_bit(channels=channels)
    path = tmp_path / "in.png"
    path.write_bytes(png16_with_every_filter(pixels))
    photo = read_photo(path)
    assert photo.pixels.dtype == np.uint16
    assert np.array_equal(photo.pixels, pixels)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_round_trips_with_its_profile(tmp_path, suffix, channels):
    pixels = sixteen_bit(channels=channels)
    source = tmp_path / f"source{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(source, pixels, photometric="rgb", iccprofile=SRGB)
    else:
        source.write_bytes(png16_with_every_filter(pixels))
    photo = read_photo(source)
    photo.icc_profile = photo.icc_profile or SRGB
    target = tmp_path / f"target{suffix}"
    write_photo(target, photo.pixels, photo)
    again = read_photo(target)
    assert again.pixels.dtype == np.uint16 and np.array_equal(again.pixels, pixels)
    assert again.icc_profile == SRGB


def test_eight_bit_png_and_jpeg_keep_profile_and_exif(tmp_path):
    source = tmp_path / "in.jpg"
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    Image.fromarray(photo_like(30, 40)).save(source, icc_profile=SRGB, exif=exif.tobytes(), quality=98)
    photo = read_photo(source)
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        target = tmp_path / f"out{suffix}"
        write_photo(target, photo.pixels, photo)
        with Image.open(target) as image:
            assert image.size == (40, 30) and image.mode == "RGB"
            assert image.info.get("icc_profile") == SRGB, suffix
        if suffix in (".jpg", ".png", ".webp"):
            assert read_photo(target).exif.get(0x010F) == "CameraMaker", suffix


def test_sixteen_bit_is_reduced_to_eight_only_for_eight_bit_formats(tmp_path):
    pixels = sixteen_bit()
    photo = read_photo(_png16(tmp_path, pixels))
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as image:
        reduced = np.asarray(image).astype(int)
    assert np.abs(reduced - pixels / 257.0).mean() < 4  # JPEG loss, not a wrong scale


def _png16(tmp_path, pixels):
    path = tmp_path / "sixteen.png"
    path.write_bytes(png16_with_every_filter(pixels))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_and_then_cleared(tmp_path, orientation):
    pixels = photo_like(20, 30)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    source = tmp_path / "oriented.png"
    Image.fromarray(pixels).save(source, exif=exif.tobytes())
    photo = read_photo(source)
    with Image.open(source) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(photo.pixels, expected)
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    with Image.open(tmp_path / "out.png") as image:
        assert image.getexif().get(ORIENTATION_TAG, 1) == 1  # not rotated twice by a viewer


@pytest.mark.parametrize("bits", [np.uint8, np.uint16])
def test_greyscale_stays_greyscale(tmp_path, bits):
    grey = (np.arange(24 * 32).reshape(24, 32) * 50 % (256 if bits == np.uint8 else 65536)).astype(bits)
    source = tmp_path / "grey.png"
    Image.fromarray(grey).save(source)
    photo = read_photo(source)
    assert photo.grey and photo.pixels.shape == (24, 32, 3) and photo.pixels.dtype == bits
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    with Image.open(tmp_path / "out.png") as image:
        assert np.array_equal(np.asarray(image), grey)


def test_palette_images_become_rgb_and_keep_transparency(tmp_path):
    source = tmp_path / "palette.png"
    image = Image.fromarray(photo_like(16, 16)).convert("P")
    image.info["transparency"] = 0
    image.save(source, transparency=0)
    photo = read_photo(source)
    assert photo.pixels.shape == (16, 16, 4)


@pytest.mark.parametrize("mode", ["CMYK", "F", "I"])
def test_unsupported_modes_are_explained(tmp_path, mode):
    source = tmp_path / "odd.tif"
    Image.new(mode, (8, 8)).save(source)
    with pytest.raises(ImageError, match=f"{mode} images are not supported"):
        read_photo(source)


def test_unreadable_files_are_explained(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a picture")
    with pytest.raises(ImageError, match="not an image"):
        read_photo(junk)
    truncated = tmp_path / "truncated.png"
    Image.fromarray(photo_like(64, 64)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ImageError, match="damaged or truncated"):
        read_photo(truncated)
    with pytest.raises(ImageError, match="no such file"):
        read_photo(tmp_path / "missing.png")


def test_unknown_output_format_is_explained(tmp_path):
    photo = read_photo(_png16(tmp_path, sixteen_bit()))
    with pytest.raises(ImageError, match=r"\.bmp"):
        write_photo(tmp_path / "out.bmp", photo.pixels, photo)
