"""The worker's wire format: the one module that the engine and the plugins share.

Standard library only, because it runs inside Krita's and GIMP's own Python.

A connection is a TCP stream on 127.0.0.1. Every message is a frame::

    b"TPIR" | header length (u32, big-endian) | payload length (u64) | header | payload

The header is a UTF-8 JSON object with a "type"; the payload is raw bytes
(pixels) or empty, so a 16-bit layer travels without any PNG round trip.

The client's first message must be ``hello`` with the secret token that the
worker wrote, readable by this user only, into ``worker.json`` in the runtime
folder; the worker answers ``welcome`` or ``error`` and hangs up. Requests and
their answers after that:

``understand {prompt}``
    -> ``understood {tasks, confidences, strength, summary}`` or ``error``
``restore {prompt, width, height, format, order, mask}`` + pixels [+ mask]
    -> any number of ``queued {position}`` and ``progress {done, total}``,
    then ``result {width, height, format, order}`` + pixels, or ``error``.
    ``cancel {}`` sent meanwhile stops the job after the current tile.
``status {}`` -> ``status {device, weights, pid, version, busy}``

Pixels are always 4 channels, row-major, ``width * height * 4`` samples of
``format`` (u8, u16, f16 or f32, native little-endian), in ``order`` RGBA or
BGRA (Krita's integer layers). ``mask``, when true, appends ``width * height``
bytes (0 = not selected, 255 = selected) after the pixels.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path

VERSION = 1
MAGIC = b"TPIR"
_PREFIX = struct.Struct(">4sIQ")
MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 2 * 1024**3  # a 16k x 8k RGBA float layer; larger images are refused before sending
TOKEN_BYTES = 32

SAMPLE_BYTES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
ORDERS = ("RGBA", "BGRA")

# error codes a client can act on
UNAUTHORISED = "unauthorised"
BAD_MESSAGE = "bad_message"
TOO_LARGE = "too_large"
PROMPT = "prompt"  # empty, or names nothing to restore
CANCELLED = "cancelled"
OUT_OF_MEMORY = "out_of_memory"
IMAGE = "image"
WEIGHTS = "weights"
INTERNAL = "internal"


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame; `code` says which rule it broke."""

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


def receive(sock: socket.socket, max_payload: int = MAX_PAYLOAD) -> tuple[dict, bytearray]:
    """Read one frame: (header, payload). Checks the sizes before reading the body."""
    magic, header_length, payload_length = _PREFIX.unpack(_read_exactly(sock, _PREFIX.size))
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


def _read_exactly(sock: socket.socket, count: int) -> bytearray:
    buffer = bytearray(count)
    view = memoryview(buffer)
    filled = 0
    while filled < count:
        try:
            received = sock.recv_into(view[filled:], min(count - filled, 1 << 20))
        except ConnectionResetError:
            received = 0
        if received == 0:
            raise ConnectionClosed("The connection closed in the middle of a message.")
        filled += received
    return buffer


def user_folder(override: str, windows: tuple[str, str], macos: str, xdg: tuple[str, str]) -> Path:
    """A folder of ours for this user: the `override` variable if set, else the platform's place.

    `windows` and `xdg` name an environment variable and the folder below
    the home to use when it is unset; `macos` is a folder below the home.
    """
    if os.environ.get(override):
        return Path(os.environ[override])
    variable, fallback = windows if sys.platform == "win32" else xdg
    if sys.platform == "darwin":
        return Path.home() / macos / "textpromptir"
    return Path(os.environ.get(variable) or Path.home() / fallback) / "textpromptir"


def runtime_dir() -> Path:
    """Where the worker publishes its port and token (and writes its log), private to this user."""
    return user_folder(
        "TEXTPROMPTIR_RUNTIME_DIR", ("LOCALAPPDATA", "AppData/Local"), "Library/Caches", ("XDG_CACHE_HOME", ".cache")
    )


def info_path() -> Path:
    return runtime_dir() / "worker.json"


def log_path() -> Path:
    return runtime_dir() / "worker.log"


def read_info(path: Path | None = None) -> dict | None:
    """The running worker's {port, token, pid, version}, or None when there is none (or it is unreadable)."""
    try:
        info = json.loads((path or info_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not {"port", "token", "pid"} <= info.keys():
        return None
    return info


def write_private(path: Path, text: str) -> None:
    """Write a file that only this user can read, atomically (readers never see half of it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (used to notice that a host or the worker died)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        exit_code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(exit_code))
        kernel32.CloseHandle(handle)
        return exit_code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
