"""The dialog's preview: the area's pixels, the window a preview sends, the crop as a picture, and the runner.

The worker restores the one tile of the whole area's run that lies around
the chosen centre and answers a crop of that tile's core, where no other
tile is blended in: the crop equals what Restore will paint there. So the
preview sends the area's size and a window of pixels around the centre
(every pixel within `PREVIEW_REACH`), never the whole area.
"""

from __future__ import annotations

import array
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from textpromptir_wire.frames import SAMPLE_BYTES
from textpromptir_wire.messages import PREVIEW_REACH, Preview

from .client import Image, Session, WorkerError
from .qt import QtCore, QtGui, Signal

PREVIEW_SIZE = 320  # the crop's side (the worker may give less on a small area)
THUMBNAIL_SIDE = 200


class Area(Protocol):
    """The pixels a restoration will send: `read` gives any window of them (with the selection's mask)."""

    width: int
    height: int
    sample_format: str
    order: str

    def read(self, x: int, y: int, width: int, height: int) -> Image: ...


@dataclass
class RawArea:
    """An area held as raw rows (bytes, or an mmap of a file): 4 samples per pixel, then the optional mask."""

    pixels: bytes | bytearray | memoryview
    width: int
    height: int
    sample_format: str
    order: str = "RGBA"
    mask: bytes | bytearray | memoryview | None = None

    def read(self, x: int, y: int, width: int, height: int) -> Image:
        pixel = 4 * SAMPLE_BYTES[self.sample_format]
        pixels = _rows(memoryview(self.pixels), self.width * pixel, x * pixel, width * pixel, y, height)
        mask = None if self.mask is None else _rows(memoryview(self.mask), self.width, x, width, y, height)
        return Image(pixels, width, height, self.sample_format, self.order, mask)


def _rows(view: memoryview, stride: int, start: int, length: int, top: int, count: int) -> bytes:
    return b"".join(view[row * stride + start : row * stride + start + length] for row in range(top, top + count))


def window_around(area: Area, centre: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the pixels a preview at `centre` needs: all within PREVIEW_REACH of it."""
    left, top = max(centre[0] - PREVIEW_REACH, 0), max(centre[1] - PREVIEW_REACH, 0)
    right, bottom = min(centre[0] + PREVIEW_REACH, area.width), min(centre[1] + PREVIEW_REACH, area.height)
    return left, top, right - left, bottom - top


def thumbnail(area: Area, side: int = THUMBNAIL_SIDE) -> QtGui.QImage:
    """A small picture of the whole area (every n-th pixel of every n-th row), for choosing the preview's place."""
    step = max(1, -(-max(area.width, area.height) // side))
    pixel = 4 * SAMPLE_BYTES[area.sample_format]
    columns = range(0, area.width, step)
    rows = []
    for y in range(0, area.height, step):
        row = memoryview(area.read(0, y, area.width, 1).pixels)
        rows.append(b"".join(row[x * pixel : (x + 1) * pixel] for x in columns))
    return to_qimage(Image(b"".join(rows), len(columns), len(rows), area.sample_format, area.order))


def to_qimage(image: Image) -> QtGui.QImage:
    """The pixels as a QImage that owns its data (8 or 16 bits per sample; floats as 8 bits, clipped)."""
    formats = QtGui.QImage.Format
    if image.sample_format == "u8":
        kind = formats.Format_ARGB32 if image.order == "BGRA" else formats.Format_RGBA8888
        data, line = bytes(image.pixels), image.width * 4
    elif image.sample_format == "u16":
        kind, data, line = formats.Format_RGBA64, bytes(image.pixels), image.width * 8
    else:
        kind, data, line = formats.Format_RGBA8888, _floats_to_u8(image), image.width * 4
    picture = QtGui.QImage(data, image.width, image.height, line, kind).copy()
    if image.order == "BGRA" and image.sample_format != "u8":
        picture = picture.rgbSwapped()
    return picture


def _floats_to_u8(image: Image) -> bytes:
    if image.sample_format == "f16":
        values = struct.unpack(f"<{len(image.pixels) // 2}e", bytes(image.pixels))
    else:
        values = array.array("f", bytes(image.pixels))
        if sys.byteorder == "big":
            values.byteswap()
    return bytes(0 if not value > 0 else 255 if value >= 1 else round(value * 255) for value in values)


@dataclass
class Shot:
    """One preview: the crop's place in the area, the worker's pixels, and both pictures for the dialog."""

    generation: int
    x: int
    y: int
    restored: Image  # as the new layer will hold them
    before: QtGui.QImage
    after: QtGui.QImage


@dataclass(frozen=True)
class Wanted:
    prompt: str
    centre: tuple[int, int]
    strength: float | None


class PreviewRunner(QtCore.QObject):
    """Runs the latest wanted preview on a thread of its own; newer requests drop older ones.

    Each request gets a generation number; an answer to an older one is
    never shown, and a request still waiting in the worker is cancelled.
    """

    ready = Signal(object)  # Shot
    failed = Signal(int, str)  # generation, why

    def __init__(self, area: Area, open_session: Callable[[], Session]) -> None:
        super().__init__()
        self.area = area
        self._open_session = open_session
        self._session: Session | None = None
        self._lock = threading.Condition()
        self._wanted: tuple[int, Wanted] | None = None
        self._running = 0  # the generation being computed, 0 for none
        self.generation = 0
        self._closed = False
        threading.Thread(target=self._loop, name="textpromptir-preview", daemon=True).start()

    def request(self, prompt: str, centre: tuple[int, int], strength: float | None) -> int:
        with self._lock:
            self.generation += 1
            self._wanted = (self.generation, Wanted(prompt, centre, strength))
            if self._running and self._session is not None:
                self._session.cancel()  # it goes on only if it has started; its answer is dropped
            self._lock.notify()
            return self.generation

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
            if self._session is not None:
                self._session.close()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._wanted is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                (generation, wanted), self._wanted = self._wanted, None
                self._running = generation
            try:
                shot = self._preview(generation, wanted)
            except WorkerError as error:
                if error.code == "worker_lost" and self._session is not None:
                    self._session.close()
                    self._session = None
                self.failed.emit(generation, str(error))
            except Exception as error:  # shown in the dialog; the next request tries again
                self.failed.emit(generation, f"The preview failed: {error}")
            else:
                if generation == self.generation:
                    self.ready.emit(shot)
            finally:
                self._running = 0

    def _preview(self, generation: int, wanted: Wanted) -> Shot:
        if self._session is None:
            self._session = self._open_session()
        window, request = preview_request(self.area, wanted.prompt, wanted.centre, wanted.strength)
        crop_x, crop_y, restored = self._session.preview(window, request)
        before = self.area.read(crop_x, crop_y, restored.width, restored.height)
        return Shot(generation, crop_x, crop_y, restored, to_qimage(before), to_qimage(restored))


def preview_request(
    area: Area, prompt: str, centre: tuple[int, int], strength: float | None, size: int = PREVIEW_SIZE
) -> tuple[Image, Preview]:
    """The window of `area` around `centre` and the request that describes it."""
    x, y, width, height = window_around(area, centre)
    window = area.read(x, y, width, height)
    request = Preview(
        prompt=prompt,
        width=width,
        height=height,
        sample_format=window.sample_format,
        order=window.order,
        mask=window.mask is not None,
        strength=strength,
        x=x,
        y=y,
        area_width=area.width,
        area_height=area.height,
        centre_x=centre[0],
        centre_y=centre[1],
        size=size,
    )
    return window, request
