"""The worker tried from outside (issue 21): floods, descriptor exhaustion, stalled payloads, back-to-back
requests, pixels that are not numbers, and the installer's check that must not leave a worker behind."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from textpromptir.engine.restore import Restorer
from textpromptir_client.client import Image, Session, WorkerError
from textpromptir_wire import discovery, frames, messages
from textpromptir_wire.messages import Hello, Restore, Welcome

from conftest import photo_like

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def start_worker(
    runtime: Path, weights: Path, *, fd_limit: int | None = None, read_timeout: float | None = None
) -> tuple[subprocess.Popen, discovery.WorkerInfo]:
    """A real worker process of its own (`serve`), under a descriptor limit if asked; returns it and its info."""
    options = "" if read_timeout is None else f", read_timeout={read_timeout}"
    code = (
        "import logging, sys; from textpromptir.serve.worker import serve; "
        "logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s'); "
        f"sys.exit(serve({str(weights)!r}, 'cpu', 600{options}))"
    )

    def limit_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    runtime.mkdir(parents=True, exist_ok=True)
    with open(runtime / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "TEXTPROMPTIR_RUNTIME_DIR": str(runtime)},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_descriptors if fd_limit else None,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        info = discovery.read_info(runtime / "worker.json")
        if info is not None and info.pid == process.pid:
            return process, info
        assert process.poll() is None, (runtime / "worker.log").read_text()
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the worker did not start")


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, weights_file: Path) -> Iterator[discovery.WorkerInfo]:
    process, info = start_worker(tmp_path_factory.mktemp("runtime"), weights_file)
    yield info
    stop(process)


def open_session(info: discovery.WorkerInfo) -> Session:
    sock = socket.create_connection(("127.0.0.1", info.port), timeout=30)
    messages.send(sock, Hello(token=info.token))
    header, _ = frames.receive(sock)
    sock.settimeout(60)  # a test must fail, not hang, if the worker stops answering
    return Session(sock, Welcome.from_header(header))


def rgba(height: int, width: int, seed: int) -> np.ndarray:
    return np.concatenate([photo_like(height, width, seed), np.full((height, width, 1), 255, np.uint8)], axis=-1)


def restore_many(session: Session, pixels: np.ndarray, prompt: str, count: int) -> list:
    """`count` restorations back to back on one connection: each pixel array, or the error's message."""
    height, width = pixels.shape[:2]
    answers: list = []
    with session:
        for _ in range(count):
            try:
                result = session.restore(Image(pixels.tobytes(), width, height, "u8"), prompt)
                answers.append(np.frombuffer(result.pixels, np.uint8).reshape(height, width, 4))
            except WorkerError as error:
                answers.append(str(error))
    return answers


def in_parallel(work: list) -> list:
    """Run the callables on threads at once; their results in order (a test fails, not hangs, after 5 min)."""
    results: list = [None] * len(work)

    def run(index: int) -> None:
        results[index] = work[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
        assert not thread.is_alive(), "a client hung"
    return results


def assert_restored(answers: list, pixels: np.ndarray, expected: np.ndarray) -> None:
    refused = [answer for answer in answers if isinstance(answer, str)]
    assert not refused, refused[:3]
    for answer in answers:
        assert np.abs(answer[..., :3].astype(int) - expected[..., :3]).max() <= 1
        np.testing.assert_array_equal(answer[..., 3], pixels[..., 3])


def test_a_restore_sent_as_soon_as_a_result_begins_is_accepted(
    worker: discovery.WorkerInfo, restorer: Restorer
) -> None:
    """The next request may follow the result's header: the job is over when its answer starts."""
    pixels = (rgba(576, 576, 0) / 255).astype(np.float32)  # 5.3 MB: its result outlasts the sockets' buffers
    small = rgba(16, 16, 1)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        sock.settimeout(120)
        sock.connect(("127.0.0.1", worker.port))
        messages.send(sock, Hello(token=worker.token))
        reader = sock.makefile("rb")
        assert read_header(reader)[0]["type"] == "welcome"
        messages.send(sock, Restore(prompt="denoise", width=576, height=576, sample_format="f32"), pixels)
        header, size = read_header(reader)
        while header["type"] == "progress":
            header, size = read_header(reader)
        assert header["type"] == "result"
        messages.send(sock, Restore(prompt="denoise", width=16, height=16, sample_format="u8"), small)
        first = np.frombuffer(reader.read(size), np.float32).reshape(576, 576, 4)
        header, size = read_header(reader)
        while header["type"] in ("progress", "queued"):
            header, size = read_header(reader)
        assert header["type"] == "result", header
        second = np.frombuffer(reader.read(size), np.uint8).reshape(16, 16, 4)
    assert_restored([second], small, restorer.restore(small, "denoise"))
    np.testing.assert_array_equal(first[..., 3], pixels[..., 3])  # its pixels are checked by test_worker.py


def read_header(reader) -> tuple[dict, int]:
    """One frame's header, leaving its payload (of the size returned) unread."""
    _, header_length, payload_length = struct.unpack(">4sIQ", reader.read(16))
    return json.loads(reader.read(header_length)), payload_length


def idle_flood(port: int, count: int) -> list[socket.socket]:
    """`count` connections that never say a word; the ones the worker's kernel did not take are left out."""
    flood = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return flood


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_soak_three_clients_and_a_flood_of_idle_connections(worker: discovery.WorkerInfo, restorer: Restorer) -> None:
    images = [rgba(24, 32, seed) for seed in range(3)]
    prompts = ["remove the noise", "remove the rain streaks", "remove the haze"]
    started = time.monotonic()
    flood: list[socket.socket] = []
    sessions = [open_session(worker) for _ in images]
    clients = [
        lambda s=session, p=pixels, q=prompt: restore_many(s, p, q, 20)
        for session, pixels, prompt in zip(sessions, images, prompts, strict=True)
    ]
    try:
        *answers, _ = in_parallel([*clients, lambda: flood.extend(idle_flood(worker.port, 500))])
    finally:
        close_all(flood)
    assert len(flood) == 500  # every idle connection got in, and cost the clients nothing
    for pixels, prompt, answered in zip(images, prompts, answers, strict=True):
        assert_restored(answered, pixels, restorer.restore(pixels, prompt))
    with open_session(worker) as session:  # alive and serving afterwards
        assert session.understand("remove the noise").tasks == ("noise",)
        assert session.welcome.pid == worker.pid
    assert time.monotonic() - started < 120


def test_descriptor_exhaustion_costs_connections_not_the_worker(tmp_path: Path, weights_file: Path) -> None:
    """Under a limit of 256 descriptors (macOS's default): 300 idle connections, then sessions until none fits."""
    process, info = start_worker(tmp_path / "runtime", weights_file, fd_limit=256)
    flood, sessions = [], []
    try:
        flood = idle_flood(info.port, 300)
        started = time.monotonic()
        with open_session(info) as session:  # the idle flood took nothing from a client that says hello
            assert session.understand("remove the noise").tasks == ("noise",)
        assert time.monotonic() - started < 5  # not after the idle ones time out
        waiting = None
        for _ in range(300):  # authenticated sessions are not capped: these use up the worker's descriptors
            sock = socket.create_connection(("127.0.0.1", info.port), timeout=5)
            messages.send(sock, Hello(token=info.token))
            try:
                frames.receive(sock)
            except TimeoutError:
                waiting = sock  # accepted by the kernel, not by the worker: it has no descriptor left
                break
            sessions.append(sock)
        assert waiting is not None and process.poll() is None
        close_all(sessions[: len(sessions) // 2])
        waiting.settimeout(15)
        assert frames.receive(waiting)[0]["type"] == "welcome"  # the worker went on accepting
        sessions.append(waiting)
        with open_session(info) as session:
            assert session.understand("remove the haze").tasks == ("haze",)
    finally:
        close_all(flood + sessions)
        stop(process)


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stalled_payload_costs_what_arrived_and_is_dropped(tmp_path: Path, weights_file: Path) -> None:
    process, info = start_worker(tmp_path / "runtime", weights_file, read_timeout=2)
    try:
        before = resident_bytes(info.pid)
        with socket.create_connection(("127.0.0.1", info.port), timeout=30) as sock:
            messages.send(sock, Hello(token=info.token))
            frames.receive(sock)
            header = json.dumps({"type": "restore"}).encode()
            sock.sendall(struct.pack(">4sIQ", b"TPIR", len(header), frames.MAX_PAYLOAD) + header + b"x" * 4096)
            time.sleep(1)
            assert resident_bytes(info.pid) - before < 64 * 2**20  # not the 2 GiB announced
            started = time.monotonic()
            answer, _ = frames.receive(sock)
            assert answer["code"] == frames.STALLED and "nothing came for 2 s" in answer["message"]
            with pytest.raises(frames.ConnectionClosed):
                frames.receive(sock)
            assert time.monotonic() - started < 5
        with open_session(info) as session:
            assert session.understand("remove the noise").tasks == ("noise",)
    finally:
        stop(process)


def test_pixels_that_are_not_numbers_are_refused(worker: discovery.WorkerInfo) -> None:
    pixels = (rgba(12, 10, 0) / 255).astype(np.float32)
    pixels[3, 5, 1] = np.nan
    pixels[7, 2, 0] = np.inf
    pixels[0, 0, 3] = np.nan  # alpha is not the network's: it passes through
    with open_session(worker) as session:
        with pytest.raises(WorkerError) as refused:
            session.restore(Image(pixels.tobytes(), 10, 12, "f32"), "remove the noise")
        assert refused.value.code == frames.IMAGE
        assert "2 pixel(s)" in str(refused.value) and "x=5, y=3" in str(refused.value)
        pixels[3, 5, 1] = pixels[7, 2, 0] = 0.5
        result = session.restore(Image(pixels.tobytes(), 10, 12, "f32"), "remove the noise")
        restored = np.frombuffer(result.pixels, np.float32).reshape(12, 10, 4)
        assert np.isfinite(restored[..., :3]).all() and np.isnan(restored[0, 0, 3])


def test_the_installers_check_leaves_no_worker_behind(tmp_path: Path, weights_file: Path) -> None:
    config, runtime = tmp_path / "config", tmp_path / "runtime"
    config.mkdir()
    settings = {"python": sys.executable, "weights": str(weights_file), "device": "cpu"}
    (config / "settings.json").write_text(json.dumps(settings))
    environment = {**os.environ, "TEXTPROMPTIR_CONFIG_DIR": str(config), "TEXTPROMPTIR_RUNTIME_DIR": str(runtime)}
    check = subprocess.run(
        [sys.executable, str(REPO / "installer" / "verify.py")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    info = discovery.read_info(runtime / "worker.json")
    deadline = time.monotonic() + 15
    while info is not None and discovery.process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert info is None or not discovery.process_alive(info.pid)
        assert not (runtime / "worker.json").exists()
    finally:
        if info is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
