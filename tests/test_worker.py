"""The worker as the plugins meet it: a real `textpromptir serve` process, reached through the plugins' client."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from textpromptir.engine.restore import Restorer
from textpromptir_client.client import Image, Session, WorkerError, connect
from textpromptir_client.settings import Settings
from textpromptir_wire import discovery, frames

from conftest import photo_like

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("runtime")
    saved = os.environ.get("TEXTPROMPTIR_RUNTIME_DIR")
    os.environ["TEXTPROMPTIR_RUNTIME_DIR"] = str(folder)
    yield folder
    info = discovery.read_info(folder / "worker.json")
    if info:
        _kill(info.pid)
    if saved is None:
        del os.environ["TEXTPROMPTIR_RUNTIME_DIR"]
    else:
        os.environ["TEXTPROMPTIR_RUNTIME_DIR"] = saved


@pytest.fixture(scope="module")
def settings(weights_file: Path) -> Settings:
    return Settings(python=sys.executable, weights=str(weights_file), device="cpu", idle_timeout=120)


@pytest.fixture()
def session(runtime: Path, settings: Settings) -> Iterator[Session]:
    with connect(settings, host_pid=os.getpid()) as session:
        yield session


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_for_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not discovery.process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def rgba(height: int, width: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    rgb = photo_like(height, width, seed)
    alpha = np.full((height, width, 1), 255, np.uint8)
    alpha[: height // 4] = 128  # a half-transparent band must come back as it was
    pixels = np.concatenate([rgb, alpha], axis=-1)
    if dtype == np.uint16:
        return pixels.astype(np.uint16) * 257
    if dtype in (np.float16, np.float32):
        return (pixels / 255.0).astype(dtype)
    return pixels


def test_restores_like_the_engine_with_bgra_order_and_mask(session: Session, restorer: Restorer) -> None:
    pixels = rgba(96, 120)
    mask = np.zeros((96, 120), np.uint8)
    mask[20:70, 30:100] = 255
    mask[20:70, 30] = 100  # a feathered edge
    bgra = pixels[..., [2, 1, 0, 3]].copy()
    result = session.restore(Image(bgra.tobytes(), 120, 96, "u8", "BGRA", mask.tobytes()), "remove the noise")
    assert (result.width, result.height, result.sample_format, result.order) == (120, 96, "u8", "BGRA")
    returned = np.frombuffer(result.pixels, np.uint8).reshape(96, 120, 4)[..., [2, 1, 0, 3]]
    expected = restorer.restore(pixels, "remove the noise")
    assert np.abs(returned[..., :3].astype(int) - expected[..., :3]).max() <= 1
    assert np.abs(returned[..., :3].astype(int) - pixels[..., :3]).mean() > 2  # the network did work
    assert np.all(returned[mask == 0, 3] == 0)
    np.testing.assert_array_equal(returned[mask == 255, 3], pixels[mask == 255, 3])
    assert returned[20, 30, 3] == round(128 * 100 / 255) and returned[69, 30, 3] == 100  # alpha times coverage


@pytest.mark.parametrize(("dtype", "sample_format"), [(np.uint16, "u16"), (np.float16, "f16"), (np.float32, "f32")])
def test_deep_formats_round_trip(session: Session, restorer: Restorer, dtype: type, sample_format: str) -> None:
    pixels = rgba(64, 80, dtype)
    result = session.restore(Image(pixels.tobytes(), 80, 64, sample_format), "remove the noise")
    returned = np.frombuffer(result.pixels, dtype).reshape(64, 80, 4)
    working = pixels.astype(np.float32) if dtype == np.float16 else pixels
    expected = restorer.restore(working, "remove the noise").astype(dtype)
    scale = 65535 if dtype == np.uint16 else 1.0
    tolerance = 1 / 255 if dtype == np.float16 else 1e-3  # fp16 rounding
    assert np.abs(returned.astype(np.float64) - expected).max() / scale <= tolerance
    np.testing.assert_array_equal(returned[..., 3], pixels[..., 3])


def test_understands_and_refuses_prompts(session: Session) -> None:
    understood = session.understand("please remove the rain streaks and the haze")
    assert set(understood.tasks) == {"rain", "haze"}
    assert "rain" in understood.summary and "%" in understood.summary
    with pytest.raises(WorkerError) as refused:
        session.understand("add a dragon in the sky")
    assert refused.value.code == frames.PROMPT and "noise" in str(refused.value)
    with pytest.raises(WorkerError) as empty:
        session.restore(Image(rgba(16, 16).tobytes(), 16, 16, "u8"), "   ")
    assert empty.value.code == frames.PROMPT and "empty" in str(empty.value)
    assert session.understand("remove the noise").tasks == ("noise",)  # the session goes on


def _raw_connection(runtime: Path) -> socket.socket:
    info = discovery.read_info(runtime / "worker.json")
    assert info is not None
    return socket.create_connection(("127.0.0.1", info.port), timeout=10)


def _error_then_closed(sock: socket.socket) -> dict:
    answer, _ = frames.receive(sock)
    assert answer["type"] == "error"
    with pytest.raises(frames.ConnectionClosed):
        frames.receive(sock)
    return answer


def test_refuses_a_client_without_the_token(runtime: Path, session: Session) -> None:
    for hello in ({"type": "hello", "token": "0" * 64, "version": 1}, {"type": "status"}):
        with _raw_connection(runtime) as sock:
            frames.send(sock, hello)
            assert _error_then_closed(sock)["code"] == frames.UNAUTHORISED
    assert (runtime / "worker.json").stat().st_mode & 0o077 == 0  # the token is private to this user
    assert session.understand("remove the noise").tasks == ("noise",)


def _hello(runtime: Path, sock: socket.socket) -> None:
    info = discovery.read_info(runtime / "worker.json")
    frames.send(sock, {"type": "hello", "token": info.token, "version": frames.VERSION})
    assert frames.receive(sock)[0]["type"] == "welcome"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", frames.BAD_MESSAGE),
        (struct.pack(">4sIQ", b"TPIR", 5, 0) + b"{oops", frames.BAD_MESSAGE),
        (struct.pack(">4sIQ", b"TPIR", 2, 0) + b"[]", frames.BAD_MESSAGE),
        (struct.pack(">4sIQ", b"TPIR", 2, 3 * 2**30) + b"{}", frames.TOO_LARGE),
        (struct.pack(">4sIQ", b"TPIR", 10**9, 0), frames.TOO_LARGE),
    ],
    ids=["http", "broken-json", "not-an-object", "huge-payload", "huge-header"],
)
def test_malformed_messages_get_an_error_and_the_worker_keeps_serving(
    runtime: Path, session: Session, frame: bytes, code: str
) -> None:
    with _raw_connection(runtime) as sock:
        _hello(runtime, sock)
        sock.sendall(frame)
        assert _error_then_closed(sock)["code"] == code
    assert session.understand("remove the noise").tasks == ("noise",)


def test_bad_requests_keep_the_connection(runtime: Path) -> None:
    with _raw_connection(runtime) as sock:
        _hello(runtime, sock)
        frames.send(sock, {"type": "restore", "prompt": "remove the noise", "width": 4, "height": 4, "format": "u8"})
        assert "carries 0" in frames.receive(sock)[0]["message"]
        frames.send(sock, {"type": "paint", "what": "a dragon"})
        assert frames.receive(sock)[0]["message"] == "Unknown request 'paint'."
        frames.send(sock, {"type": "status"})
        assert frames.receive(sock)[0]["device"] == "cpu"


def test_two_clients_are_served_one_after_the_other(runtime: Path, settings: Settings) -> None:
    big = rgba(1024, 1024)  # 9 tiles: long enough for the second client to queue
    small = rgba(64, 64, seed=1)
    answers: dict[str, object] = {}
    started = threading.Event()

    def first() -> None:
        with connect(settings) as session:
            answers["first"] = session.restore(
                Image(big.tobytes(), 1024, 1024, "u8"), "remove the noise", progress=lambda *_: started.set()
            )

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(60)
    positions: list[int] = []
    with connect(settings) as session:
        answers["second"] = session.restore(
            Image(small.tobytes(), 64, 64, "u8"), "remove the rain", queued=positions.append
        )
    thread.join(120)
    assert positions == [1]
    assert answers["first"].width == 1024 and len(answers["second"].pixels) == 64 * 64 * 4


def test_cancel_stops_the_job_within_a_tile(session: Session) -> None:
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 1:
            session.cancel()

    with pytest.raises(WorkerError) as cancelled:
        session.restore(Image(rgba(1024, 1024).tobytes(), 1024, 1024, "u8"), "remove the noise", progress=progress)
    assert cancelled.value.code == frames.CANCELLED
    assert seen[-1][0] <= 2 < seen[-1][1]  # stopped after the tile in flight, not at the end
    assert session.understand("remove the noise").tasks == ("noise",)


@pytest.fixture()
def own_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime folder of its own, so that this test's worker is not the shared one."""
    monkeypatch.setenv("TEXTPROMPTIR_RUNTIME_DIR", str(tmp_path))
    yield tmp_path
    info = discovery.read_info(tmp_path / "worker.json")
    if info:
        _kill(info.pid)


def test_missing_or_broken_environment_gives_advice(own_runtime: Path) -> None:
    with pytest.raises(WorkerError) as missing:
        connect(Settings(python=str(own_runtime / "no-such-python")))
    assert missing.value.code == "no_worker" and "Run the installer again" in str(missing.value)
    with pytest.raises(WorkerError) as broken:  # a Python without the package: the worker cannot start
        connect(Settings(python="/usr/bin/python3"))
    assert "could not start" in str(broken.value) and "No module named" in str(broken.value)


def test_a_worker_killed_mid_job_is_reported_and_replaced(own_runtime: Path, settings: Settings) -> None:
    session = connect(settings)
    worker_pid = session.welcome.pid

    def kill_on_first_tile(done: int, total: int) -> None:
        _kill(worker_pid)

    with pytest.raises(WorkerError) as lost:
        session.restore(
            Image(rgba(1024, 1024).tobytes(), 1024, 1024, "u8"), "remove the noise", progress=kill_on_first_tile
        )
    assert lost.value.code == "worker_lost" and "Try again" in str(lost.value)
    with pytest.raises(WorkerError):  # writing to the dead worker is an error, not a crash of the host
        session.understand("remove the noise")
    session.close()
    with connect(settings) as fresh:  # the next call starts a new worker
        assert fresh.welcome.pid != worker_pid
        assert fresh.understand("remove the noise").tasks == ("noise",)


def test_idle_worker_exits_and_cleans_up(own_runtime: Path, settings: Settings) -> None:
    quick = Settings(python=settings.python, weights=settings.weights, device="cpu", idle_timeout=2)
    with connect(quick) as session:
        pid = session.welcome.pid
    assert _wait_for_exit(pid, 30)
    assert not (own_runtime / "worker.json").exists()


HOST = textwrap.dedent(
    """
    import os, sys, time
    from textpromptir_client.client import connect
    from textpromptir_client.settings import Settings
    session = connect(Settings(python=sys.executable, weights=sys.argv[1], device="cpu"), host_pid=os.getpid())
    print(session.welcome.pid, flush=True)
    time.sleep(600)
    """
)


def test_worker_does_not_outlive_its_host(own_runtime: Path, settings: Settings) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, settings.weights], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    worker_pid = int(host.stdout.readline())
    assert discovery.process_alive(worker_pid)
    host.kill()  # the host dies without saying goodbye
    host.wait()
    assert _wait_for_exit(worker_pid, 15)
