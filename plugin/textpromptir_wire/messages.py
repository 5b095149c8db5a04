"""The messages the plugins and the worker exchange: one frozen dataclass per type, checked on arrival.

The client's first message must be `Hello` with the token from worker.json;
the worker answers `Welcome`, or `Error` and hangs up. Then:

``Understand``  -> ``Understood``, or ``Error`` (code "prompt")
``Restore`` + pixels [+ mask]
                -> any number of ``Queued`` and ``Progress``, then ``Result`` + pixels, or ``Error``.
                   ``Cancel`` sent meanwhile stops the job after the current tile.
``Preview`` + the pixels of a window around a centre [+ mask]
                -> ``PreviewResult`` + the pixels of a crop near the centre, as the ``Restore`` of the
                   whole area would paint them, and where the crop lies; or ``Error``.
                   ``Cancel`` drops a preview that has not started.
``Status()``    -> ``Status`` with every field filled
``Shutdown``    -> no answer; the worker exits once its queued jobs are done

`Restore.mask`, when true, appends ``width * height`` bytes after the pixels
(0 = not selected, 255 = selected). A header that does not fit its type
raises ProtocolError naming the field, on either side.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from . import frames
from .frames import ORDERS, SAMPLE_BYTES, ProtocolError

M = TypeVar("M", bound="Message")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


# Each field's annotation -> (what it must be, check, conversion from JSON).
_KINDS: dict[str, tuple[str, Callable[[object], bool], Callable[[Any], Any]]] = {
    "str": ("text", lambda value: isinstance(value, str), str),
    "int": ("a whole number", _is_int, int),
    "bool": ("true or false", lambda value: isinstance(value, bool), bool),
    "float": ("a number", _is_number, float),
    "int | None": ("a whole number or null", lambda value: value is None or _is_int(value), lambda value: value),
    "float | None": ("a number or null", lambda value: value is None or _is_number(value), lambda value: value),
    "str | None": ("text or null", lambda value: value is None or isinstance(value, str), lambda value: value),
    "tuple[str, ...]": (
        "a list of text",
        lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value),
        tuple,
    ),
    "dict[str, float]": (
        "an object of numbers",
        lambda value: isinstance(value, dict) and all(_is_number(item) for item in value.values()),
        lambda value: {str(key): float(item) for key, item in value.items()},
    ),
}


def _on_wire(name: str, **options: Any) -> Any:
    """A field whose name in the header differs from its Python name."""
    return field(metadata={"wire": name}, **options)


@dataclass(frozen=True, kw_only=True)
class Message:
    TYPE: ClassVar[str]

    def to_header(self) -> dict:
        header: dict = {"type": self.TYPE}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            header[item.metadata.get("wire", item.name)] = list(value) if isinstance(value, tuple) else value
        return header

    @classmethod
    def from_header(cls: type[M], header: dict) -> M:
        """The message a received header describes; ProtocolError says which field is wrong or missing."""
        if header.get("type") != cls.TYPE:
            raise ProtocolError(f"Expected a {cls.TYPE} message, got {header.get('type')!r}.")
        values = {}
        for item in dataclasses.fields(cls):
            key = item.metadata.get("wire", item.name)
            if key not in header:
                if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                    raise ProtocolError(f"A {cls.TYPE} message needs {key!r}.")
                continue
            what, check, convert = _KINDS[item.type]
            if not check(header[key]):
                raise ProtocolError(f"In a {cls.TYPE} message, {key!r} must be {what}, not {header[key]!r}.")
            values[item.name] = convert(header[key])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    TYPE = "hello"
    token: str
    version: int = frames.VERSION
    host_pid: int | None = None  # the worker exits when every host that said hello has died


@dataclass(frozen=True, kw_only=True)
class WorkerState(Message):
    """What the worker says about itself, in `Welcome` and `Status`."""

    version: str = ""
    protocol: int = frames.VERSION
    pid: int = 0
    device: str = ""
    weights: str = ""
    busy: bool = False


@dataclass(frozen=True, kw_only=True)
class Welcome(WorkerState):
    TYPE = "welcome"


@dataclass(frozen=True, kw_only=True)
class Status(WorkerState):
    """Sent empty as a request; the answer has every field."""

    TYPE = "status"


@dataclass(frozen=True, kw_only=True)
class Understand(Message):
    TYPE = "understand"
    prompt: str


@dataclass(frozen=True, kw_only=True)
class Understood(Message):
    TYPE = "understood"
    tasks: tuple[str, ...]
    confidences: dict[str, float]
    strength: str | None
    summary: str  # what the dialog shows: "rain streaks 97 %, haze and fog 88 %"
    suggested_strength: float = 1.0  # the blend the strength word suggests ("slightly": less than 1)


@dataclass(frozen=True, kw_only=True)
class Pixels(Message):
    """Pixels that follow the header: their size, sample format and channel order."""

    width: int
    height: int
    sample_format: str = _on_wire("format")
    order: str = "RGBA"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ProtocolError(f"Bad image size {self.width} x {self.height}: both sides must be positive.")
        if self.sample_format not in SAMPLE_BYTES:
            raise ProtocolError(f"Unknown sample format {self.sample_format!r}: use {', '.join(SAMPLE_BYTES)}.")
        if self.order not in ORDERS:
            raise ProtocolError(f"Unknown channel order {self.order!r}: use {' or '.join(ORDERS)}.")

    @property
    def pixel_bytes(self) -> int:
        return frames.pixel_bytes(self.width, self.height, self.sample_format)


@dataclass(frozen=True, kw_only=True)
class Restore(Pixels):
    TYPE = "restore"
    prompt: str = ""
    mask: bool = False
    # restored * strength + original * (1 - strength); null: what the prompt's strength word suggests
    strength: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strength is not None and not 0.0 <= self.strength <= 1.0:
            raise ProtocolError(f"The strength must be between 0 and 1, not {self.strength}.")

    @property
    def payload_bytes(self) -> int:
        return self.pixel_bytes + (self.width * self.height if self.mask else 0)


# The farthest a pixel of the tile that a preview restores lies from its centre (the worker's tile size).
PREVIEW_REACH = 512


@dataclass(frozen=True, kw_only=True)
class Preview(Restore):
    """A preview of restoring the whole area: the pixels are a window of it, at x, y.

    The window must hold every pixel within PREVIEW_REACH of the centre (or
    the whole area): the worker restores the tile of the whole area's run
    around the centre, so the crop it answers equals the final result there.
    """

    TYPE = "preview"
    x: int = 0
    y: int = 0
    area_width: int
    area_height: int
    centre_x: int
    centre_y: int
    size: int = 320  # the crop's largest side

    def __post_init__(self) -> None:
        super().__post_init__()
        inside = min(self.x, self.y) >= 0 and self.x + self.width <= self.area_width
        if not inside or self.y + self.height > self.area_height:
            raise ProtocolError(
                f"The preview's window ({self.width} x {self.height} at {self.x}, {self.y}) "
                f"is not inside its area ({self.area_width} x {self.area_height})."
            )
        if not (0 <= self.centre_x < self.area_width and 0 <= self.centre_y < self.area_height) or self.size < 1:
            raise ProtocolError(f"The preview's centre {self.centre_x}, {self.centre_y} is not inside its area.")


@dataclass(frozen=True, kw_only=True)
class Queued(Message):
    TYPE = "queued"
    position: int  # jobs ahead of this one


@dataclass(frozen=True, kw_only=True)
class Progress(Message):
    TYPE = "progress"
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class Result(Pixels):
    TYPE = "result"


@dataclass(frozen=True, kw_only=True)
class PreviewResult(Pixels):
    """The crop of a preview; it lies at x, y of the area."""

    TYPE = "preview_result"
    x: int
    y: int


@dataclass(frozen=True, kw_only=True)
class Cancel(Message):
    TYPE = "cancel"


@dataclass(frozen=True, kw_only=True)
class Shutdown(Message):
    TYPE = "shutdown"


@dataclass(frozen=True, kw_only=True)
class Error(Message):
    TYPE = "error"
    code: str
    message: str  # for the user
    details: str = ""  # for the log


REQUESTS: tuple[type[Message], ...] = (Understand, Restore, Preview, Cancel, Status, Shutdown)
ANSWERS: tuple[type[Message], ...] = (Welcome, Understood, Queued, Progress, Result, PreviewResult, Status, Error)


def parse(header: dict, kinds: Iterable[type[Message]], noun: str = "message") -> Message:
    """The typed message of a received header, which must be one of `kinds` ("Unknown request 'paint'.")."""
    kind = next((kind for kind in kinds if header["type"] == kind.TYPE), None)
    if kind is None:
        raise ProtocolError(f"Unknown {noun} {header['type']!r}.")
    return kind.from_header(header)


def send(sock: socket.socket, message: Message, payload: bytes | bytearray | memoryview = b"") -> None:
    frames.send(sock, message.to_header(), payload)
