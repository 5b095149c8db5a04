"""The worker: one persistent process that keeps the model loaded for the plugins (`textpromptir serve`).

It listens on 127.0.0.1 only, publishes its port and a fresh secret token in
a file only this user can read, and serves any number of connections, each
authenticated by that token. Restorations run one at a time, in arrival
order, on one job thread; every connection keeps reading while its job waits
or runs, so a cancel (or the client hanging up) stops the job after the
current tile. A malformed or oversized message costs its sender the
connection, never the worker. The worker exits after `idle_timeout` seconds
without work, or as soon as every host that said hello has died.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
import traceback

import numpy as np

from textpromptir import __version__
from textpromptir.engine.restore import Restorer
from textpromptir.errors import Cancelled, ImageError, OutOfMemory, PromptError, TextPromptIRError, WeightsError
from textpromptir.text.understand import understand
from textpromptir_client import protocol

log = logging.getLogger("textpromptir.serve.worker")

_NUMPY_DTYPES = {"u8": np.uint8, "u16": np.uint16, "f16": np.float16, "f32": np.float32}
_ERROR_CODES = {
    PromptError: protocol.PROMPT,
    Cancelled: protocol.CANCELLED,
    OutOfMemory: protocol.OUT_OF_MEMORY,
    ImageError: protocol.IMAGE,
    WeightsError: protocol.WEIGHTS,
}
WATCH_INTERVAL = 1.0  # seconds between checks for dead hosts and idleness


class Job:
    """One restore request: what to do, how to answer, and its cancel flag."""

    def __init__(self, connection: Connection, header: dict, pixels: np.ndarray, mask: np.ndarray | None) -> None:
        self.connection = connection
        self.header = header
        self.pixels = pixels
        self.mask = mask
        self.cancelled = threading.Event()
        self.finished = threading.Event()


class Connection:
    """One authenticated client; its thread reads requests, the job thread may write answers too."""

    def __init__(self, worker: Worker, sock: socket.socket) -> None:
        self.worker = worker
        self.sock = sock
        self.send_lock = threading.Lock()
        self.job: Job | None = None

    def send(self, header: dict, payload: bytes | memoryview = b"") -> bool:
        """Answer the client; False if it has gone (its job is then cancelled by the reader)."""
        try:
            with self.send_lock:
                protocol.send(self.sock, header, payload)
            return True
        except OSError:
            return False

    def send_error(self, code: str, message: str, details: str = "") -> None:
        self.send({"type": "error", "code": code, "message": message, "details": details})

    def serve(self) -> None:
        try:
            if self._authenticate():
                self._serve_requests()
        except protocol.ConnectionClosed:
            log.info("a client disconnected")
        except protocol.ProtocolError as error:
            log.warning("dropping a client: %s", error)
            self.send_error(error.code, str(error))
        except OSError as error:
            log.info("client connection lost: %s", error)
        finally:
            if self.job is not None:
                self.job.cancelled.set()
            self.worker.touch()  # a client leaving restarts the idle timer
            with contextlib.suppress(OSError):
                self.sock.close()

    def _authenticate(self) -> bool:
        self.sock.settimeout(10.0)  # a silent peer must not hold a thread forever
        header, _ = protocol.receive(self.sock, max_payload=0)
        self.sock.settimeout(None)
        token = header.get("token")
        if (
            header.get("type") != "hello"
            or not isinstance(token, str)
            or not hmac.compare_digest(token.encode(), self.worker.token.encode())
        ):
            log.warning("refused a client without the right token")
            self.send_error(protocol.UNAUTHORISED, "Wrong or missing token: this worker belongs to another session.")
            return False
        if header.get("version") != protocol.VERSION:
            self.send_error(
                protocol.BAD_MESSAGE,
                f"The plugin speaks protocol {header.get('version')} but the worker speaks {protocol.VERSION}: "
                "run the installer again so that both are the same version.",
            )
            return False
        self.worker.add_host(header.get("host_pid"))
        self.send({"type": "welcome", **self.worker.describe()})
        return True

    def _serve_requests(self) -> None:
        while True:
            header, payload = protocol.receive(self.sock)
            self.worker.touch()
            kind = header["type"]
            if kind == "understand":
                self._understand(header)
            elif kind == "restore":
                self._start_job(header, payload)
            elif kind == "cancel":
                if self.job is not None:
                    self.job.cancelled.set()
            elif kind == "status":
                self.send({"type": "status", **self.worker.describe()})
            else:
                self.send_error(protocol.BAD_MESSAGE, f"Unknown request {kind!r}.")

    def _understand(self, header: dict) -> None:
        try:
            understanding = understand(str(header.get("prompt", "")))
        except PromptError as error:
            self.send_error(protocol.PROMPT, str(error))
            return
        self.send(
            {
                "type": "understood",
                "tasks": list(understanding.tasks),
                "confidences": understanding.confidences,
                "strength": understanding.strength,
                "summary": understanding.describe(),
            }
        )

    def _start_job(self, header: dict, payload: bytearray) -> None:
        if self.job is not None and not self.job.finished.is_set():
            self.send_error(protocol.BAD_MESSAGE, "This connection already has a restoration running.")
            return
        try:
            pixels, mask = decode_pixels(header, payload)
        except ValueError as error:
            self.send_error(protocol.BAD_MESSAGE, str(error))
            return
        self.job = Job(self, header, pixels, mask)
        self.worker.submit(self.job)


def decode_pixels(header: dict, payload: bytearray) -> tuple[np.ndarray, np.ndarray | None]:
    """The request's pixels as (H, W, 4) RGBA of their own dtype, and the selection mask (H, W) if any."""
    try:
        width, height = int(header["width"]), int(header["height"])
        sample_format, order = header["format"], header.get("order", "RGBA")
        dtype = _NUMPY_DTYPES[sample_format]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"A restore request needs width, height and format (u8, u16, f16, f32): {error}") from error
    if width <= 0 or height <= 0 or order not in protocol.ORDERS:
        raise ValueError(f"Bad image description: {width} x {height}, order {order!r}.")
    size = protocol.pixel_bytes(width, height, sample_format)
    expected = size + (width * height if header.get("mask") else 0)
    if len(payload) != expected:
        raise ValueError(f"The request says {expected} bytes of pixels but carries {len(payload)}.")
    pixels = np.frombuffer(payload, dtype, count=width * height * 4).reshape(height, width, 4)
    if order == "BGRA":
        pixels = pixels[..., [2, 1, 0, 3]]
    mask = np.frombuffer(payload, np.uint8, offset=size).reshape(height, width) if header.get("mask") else None
    return pixels, mask


def encode_pixels(rgba: np.ndarray, sample_format: str, order: str) -> memoryview:
    if order == "BGRA":
        rgba = rgba[..., [2, 1, 0, 3]]
    return memoryview(np.ascontiguousarray(rgba, _NUMPY_DTYPES[sample_format])).cast("B")


def apply_mask(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Make unselected pixels transparent; partly selected ones (feathered edges) partly so."""
    coverage = mask.astype(np.float32) / 255.0
    alpha = rgba[..., 3].astype(np.float32) * coverage
    if np.issubdtype(rgba.dtype, np.integer):
        alpha = np.rint(alpha)
    rgba = rgba.copy()
    rgba[..., 3] = alpha.astype(rgba.dtype)
    return rgba


def restore_job(restorer: Restorer, job: Job) -> None:
    """Run one job and answer it: progress frames, then the result or a structured error."""
    header = job.header
    pixels = job.pixels
    working = pixels.astype(np.float32) if pixels.dtype == np.float16 else pixels

    def progress(done: int, total: int) -> None:
        job.connection.send({"type": "progress", "done": done, "total": total})

    restored = restorer.restore(working, str(header.get("prompt", "")), progress=progress, cancel=job.cancelled.is_set)
    if job.mask is not None:
        restored = apply_mask(restored, job.mask)
    height, width = restored.shape[:2]
    answer = {"type": "result", "width": width, "height": height, "format": header["format"]}
    answer["order"] = header.get("order", "RGBA")
    job.connection.send(answer, encode_pixels(restored, header["format"], answer["order"]))


class Worker:
    def __init__(self, restorer: Restorer, weights: str, idle_timeout: float = 900.0) -> None:
        self.restorer = restorer
        self.weights = weights
        self.idle_timeout = idle_timeout
        self.token = secrets.token_hex(protocol.TOKEN_BYTES)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.running: Job | None = None
        self.hosts: set[int] = set()  # processes (Krita, GIMP) that said hello; when all are gone, so is the worker
        self.seen_host = False
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.stopping = threading.Event()

    def describe(self) -> dict:
        return {
            "version": __version__,
            "protocol": protocol.VERSION,
            "pid": os.getpid(),
            "device": str(self.restorer.device),
            "weights": self.weights,
            "busy": self.running is not None,
        }

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def add_host(self, pid: object) -> None:
        if isinstance(pid, int) and pid > 0:
            with self.lock:
                self.hosts.add(pid)
                self.seen_host = True

    def submit(self, job: Job) -> None:
        position = self.jobs.qsize() + (self.running is not None)
        if position:
            job.connection.send({"type": "queued", "position": position})
        self.jobs.put(job)

    def serve(self, listener: socket.socket) -> None:
        """Accept clients until idle or orphaned; `listener` is bound and listening."""
        threading.Thread(target=self._run_jobs, name="jobs", daemon=True).start()
        threading.Thread(target=self._watch, name="watch", daemon=True).start()
        listener.settimeout(WATCH_INTERVAL)
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            self.touch()
            threading.Thread(target=Connection(self, sock).serve, name="client", daemon=True).start()
        self.jobs.put(None)

    def _run_jobs(self) -> None:
        while (job := self.jobs.get()) is not None:
            self.running = job
            try:
                if job.cancelled.is_set():
                    raise Cancelled("Cancelled: the image was left as it was.")
                restore_job(self.restorer, job)
            except TextPromptIRError as error:
                code = next((code for kind, code in _ERROR_CODES.items() if isinstance(error, kind)), protocol.INTERNAL)
                job.connection.send_error(code, str(error))
            except Exception as error:  # the worker must survive any single job
                log.exception("restoration failed")
                job.connection.send_error(
                    protocol.INTERNAL,
                    f"The restoration failed unexpectedly ({type(error).__name__}); "
                    f"the log has the details: {protocol.log_path()}",
                    traceback.format_exc(),
                )
            finally:
                job.finished.set()
                self.running = None
                job.pixels = job.mask = None
                self.touch()

    def _watch(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL):
            with self.lock:
                self.hosts = {pid for pid in self.hosts if protocol.process_alive(pid)}
                hosts_gone = self.seen_host and not self.hosts
                working = self.running is not None or not self.jobs.empty()
            idle = time.monotonic() - self.last_activity > self.idle_timeout and not working
            if hosts_gone and not working:
                log.info("every host that used this worker has exited; stopping")
                self.stopping.set()
            elif idle:
                log.info("idle for %.0f s; stopping", self.idle_timeout)
                self.stopping.set()


def serve(weights: str | None = None, device: str = "auto", idle_timeout: float = 900.0) -> int:
    """Load the model, publish port and token, serve until idle or orphaned. Returns an exit code."""
    info_file = protocol.info_path()
    running = protocol.read_info(info_file)
    if running and running.get("pid") != os.getpid() and protocol.process_alive(int(running["pid"])):
        log.info("a worker is already running (pid %s); not starting another", running["pid"])
        return 0
    restorer = Restorer.load(weights, device)
    # Load the text encoder and run one small tile now, so the first request is not the slowest.
    restorer.restore(np.zeros((64, 64, 3), np.uint8), "remove the noise")
    worker = Worker(restorer, str(weights or "shipped"), idle_timeout)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        info = {"port": port, "token": worker.token, "pid": os.getpid(), "version": __version__}
        protocol.write_private(info_file, json.dumps(info))
        log.info("worker %s serving on 127.0.0.1:%d with %s on %s", __version__, port, worker.weights, restorer.device)
        try:
            worker.serve(listener)
        finally:
            if (protocol.read_info(info_file) or {}).get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    info_file.unlink()
    return 0
