"""The wire both sides share: typed messages and their checks, frames and their limits."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest

from textpromptir_wire import discovery, frames, messages
from textpromptir_wire.frames import ProtocolError
from textpromptir_wire.messages import (
    Cancel,
    Error,
    Hello,
    Progress,
    Queued,
    Restore,
    Result,
    Shutdown,
    Status,
    Understand,
    Understood,
    Welcome,
)

EXAMPLES = [
    Hello(token="ab" * 32, host_pid=4242),
    Hello(token="ab" * 32),
    Welcome(version="0.1.0", pid=7, device="cpu", weights="shipped", busy=False),
    Understand(prompt="remove the rain"),
    Understood(tasks=("rain", "haze"), confidences={"rain": 0.97, "haze": 0.88}, strength=None, summary="rain 97 %"),
    Restore(prompt="denoise", width=3, height=2, sample_format="u16", order="BGRA", mask=True),
    Queued(position=2),
    Progress(done=1, total=9),
    Result(width=3, height=2, sample_format="f32"),
    Cancel(),
    Shutdown(),
    Status(),
    Status(version="0.1.0", pid=7, device="cuda", weights="w.safetensors", busy=True),
    Error(code=frames.PROMPT, message="The prompt is empty.", details="trace"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda message: message.TYPE)
def test_every_message_survives_json_and_comes_back_equal(message: messages.Message) -> None:
    header = json.loads(json.dumps(message.to_header()))
    assert header["type"] == message.TYPE
    kinds = (*messages.REQUESTS, *messages.ANSWERS, Hello)
    assert messages.parse(header, kinds) == message


def test_restore_puts_its_format_under_the_wire_name_and_counts_its_bytes() -> None:
    request = Restore(prompt="x", width=3, height=2, sample_format="u16", mask=True)
    assert request.to_header()["format"] == "u16" and "sample_format" not in request.to_header()
    assert request.pixel_bytes == 3 * 2 * 4 * 2 and request.payload_bytes == request.pixel_bytes + 6


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ({"type": "restore", "height": 2, "format": "u8"}, "A restore message needs 'width'."),
        ({"type": "restore", "width": "3", "height": 2, "format": "u8"}, "'width' must be a whole number, not '3'"),
        ({"type": "restore", "width": True, "height": 2, "format": "u8"}, "'width' must be a whole number"),
        ({"type": "restore", "width": 3, "height": 0, "format": "u8"}, "Bad image size 3 x 0"),
        ({"type": "restore", "width": 3, "height": 2, "format": "u12"}, "Unknown sample format 'u12'"),
        ({"type": "restore", "width": 3, "height": 2, "format": "u8", "order": "ARGB"}, "Unknown channel order"),
        ({"type": "restore", "width": 3, "height": 2, "format": "u8", "mask": 1}, "'mask' must be true or false"),
        ({"type": "understand", "prompt": ["rain"]}, "'prompt' must be text"),
        ({"type": "understood", "tasks": [1], "confidences": {}, "strength": None, "summary": ""}, "a list of text"),
        ({"type": "understood", "tasks": [], "confidences": {"a": "x"}, "strength": None, "summary": ""}, "numbers"),
        ({"type": "progress", "done": 1.5, "total": 3}, "'done' must be a whole number, not 1.5"),
        ({"type": "paint", "what": "a dragon"}, "Unknown message 'paint'."),
    ],
)
def test_a_header_that_does_not_fit_its_type_says_which_field(header: dict, says: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        messages.parse(header, (*messages.REQUESTS, *messages.ANSWERS))
    assert says in str(refused.value)
    assert refused.value.code == frames.BAD_MESSAGE


def test_a_message_of_another_type_is_refused() -> None:
    with pytest.raises(ProtocolError, match="Expected a hello message, got 'status'"):
        Hello.from_header({"type": "status"})
    with pytest.raises(ProtocolError, match="Unknown request 'result'"):
        messages.parse(Result(width=1, height=1, sample_format="u8").to_header(), messages.REQUESTS, "request")


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Queued(position=1).position = 2  # type: ignore[misc]


@pytest.fixture()
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        yield left, right


def test_a_frame_carries_header_and_payload(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    pixels = bytes(range(256)) * 5
    messages.send(left, Result(width=16, height=20, sample_format="u8"), pixels)
    header, payload = frames.receive(right)
    assert messages.parse(header, messages.ANSWERS) == Result(width=16, height=20, sample_format="u8")
    assert payload == pixels and frames.pixel_bytes(16, 20, "u8") == len(pixels)


@pytest.mark.parametrize(
    ("raw", "code", "says"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", frames.BAD_MESSAGE, "bad magic"),
        (struct.pack(">4sIQ", b"TPIR", 5, 0) + b"{oops", frames.BAD_MESSAGE, "not JSON"),
        (struct.pack(">4sIQ", b"TPIR", 2, 0) + b"[]", frames.BAD_MESSAGE, 'with a "type"'),
        (struct.pack(">4sIQ", b"TPIR", 2, 3 * 2**30) + b"{}", frames.TOO_LARGE, "3072 MiB is over"),
        (struct.pack(">4sIQ", b"TPIR", 10**9, 0), frames.TOO_LARGE, "over the limit of 65536"),
    ],
)
def test_a_broken_frame_is_refused_before_its_body_is_read(
    pair: tuple[socket.socket, socket.socket], raw: bytes, code: str, says: str
) -> None:
    left, right = pair
    left.sendall(raw)
    with pytest.raises(ProtocolError) as refused:
        frames.receive(right)
    assert refused.value.code == code and says in str(refused.value)


def test_a_peer_that_hangs_up_mid_frame_is_noticed(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.sendall(struct.pack(">4sIQ", b"TPIR", 12, 100) + b'{"type":"x"}' + b"x" * 10)
    left.close()
    with pytest.raises(frames.ConnectionClosed):
        frames.receive(right)


def test_worker_info_round_trips_privately(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPROMPTIR_RUNTIME_DIR", str(tmp_path / "runtime"))
    info = discovery.WorkerInfo(port=5000, token=discovery.new_token(), pid=12, version="0.1.0")
    discovery.write_info(info)
    assert discovery.read_info() == info and len(info.token) == 2 * discovery.TOKEN_BYTES
    assert discovery.info_path().stat().st_mode & 0o077 == 0
    discovery.info_path().write_text('{"port": "x"}')
    assert discovery.read_info() is None
