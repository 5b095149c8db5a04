"""Frames: how one message travels on the worker's TCP stream, and the limits both sides enforce.

A connection is a TCP stream on 127.0.0.1. Every message is a frame::

    b"TPIR" | header length (u32, big-endian) | payload length (u64) | header | payload

The header is a UTF-8 JSON object with a "type" (messages.py gives each type
its fields); the payload is raw bytes (pixels) or empty, so a 16-bit layer
travels without any PNG round trip.

Pixels are always 4 channels, row-major, ``width * height * 4`` samples of a
sample format (u8, u16, f16 or f32, native little-endian), in RGBA or BGRA
order (Krita's integer layers).
"""

from __future__ import annotations

import json
import socket
import struct

VERSION = 1
MAGIC = b"TPIR"
_PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 2 * 1024**3  # a 16k x 8k RGBA float layer; larger images are refused before sending
_CHUNK = 1 << 20  # a payload grows by what arrived, never by what its header announced

# The one table of sample formats: the name's first letter is the kind (unsigned or float).
SAMPLE_BYTES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
ORDERS = ("RGBA", "BGRA")

# error codes a client can act on
UNAUTHORISED = "unauthorised"
BAD_MESSAGE = "bad_message"
TOO_LARGE = "too_large"
STALLED = "stalled"  # a message stopped arriving half-way
PROMPT = "prompt"  # empty, or names nothing to restore
CANCELLED = "cancelled"
OUT_OF_MEMORY = "out_of_memory"
IMAGE = "image"
WEIGHTS = "weights"
INTERNAL = "internal"


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame or message; `code` says which rule it broke."""

    def __init__(self, message: str, code: str = BAD_MESSAGE) -> None:
        super().__init__(message)
        self.code = code


class ConnectionClosed(ProtocolError):
    """The other side hung up (or died) before a whole frame arrived."""


def pixel_bytes(width: int, height: int, sample_format: str) -> int:
    return width * height * 4 * SAMPLE_BYTES[sample_format]


def send(sock: socket.socket, header: dict, payload: bytes | bytearray | memoryview = b"") -> None:
    """Write one frame. Raises OSError (never SIGPIPE, if the host ignores it) when the peer is gone."""
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    view = memoryview(payload).cast("B")
    sock.sendall(_PREFIX.pack(MAGIC, len(encoded), view.nbytes) + encoded)
    if view.nbytes:
        sock.sendall(view)


def receive(sock: socket.socket, max_payload: int = MAX_PAYLOAD, *, wait: bool = False) -> tuple[dict, bytearray]:
    """Read one frame: (header, payload). Checks the sizes before reading the body.

    On a socket with a timeout, the timeout bounds every pause inside a
    frame (ProtocolError STALLED), and the wait for its first byte
    (TimeoutError) unless `wait`, as a session waits between requests.
    The payload grows with what arrives: a peer that announces 2 GiB and
    sends 4 KiB costs 4 KiB.
    """
    prefix = _read_exactly(sock, _PREFIX.size, frame_start=True, wait=wait)
    magic, header_length, payload_length = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError("This is not a TextPromptIR message (bad magic bytes).")
    if header_length > MAX_HEADER:
        raise ProtocolError(f"Message header of {header_length} bytes is over the limit of {MAX_HEADER}.", TOO_LARGE)
    if payload_length > max_payload:
        raise ProtocolError(
            f"Message payload of {payload_length / 2**20:.0f} MiB is over the limit of {max_payload / 2**20:.0f} MiB.",
            TOO_LARGE,
        )
    try:
        header = json.loads(_read_exactly(sock, header_length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"Message header is not JSON ({error}).") from error
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError('Message header must be a JSON object with a "type".')
    return header, _read_exactly(sock, payload_length)


def _read_exactly(sock: socket.socket, count: int, frame_start: bool = False, wait: bool = False) -> bytearray:
    buffer = bytearray()
    while len(buffer) < count:
        try:
            chunk = sock.recv(min(count - len(buffer), _CHUNK))
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            if frame_start and not buffer:
                if wait:
                    continue
                raise
            raise ProtocolError(
                f"The message stopped arriving: nothing came for {sock.gettimeout():.0f} s.", STALLED
            ) from None
        if not chunk:
            raise ConnectionClosed("The connection closed in the middle of a message.")
        buffer += chunk
    return buffer
