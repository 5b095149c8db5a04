"""The worker: one persistent process that keeps the model loaded for the plugins (`textpromptir serve`).

It listens on 127.0.0.1 only, publishes its port and a fresh secret token in
a file only this user can read, and serves any number of connections, each
authenticated by that token. Restorations run one at a time, in arrival
order, on one job thread; every connection keeps reading while its job waits
or runs, so a cancel (or the client hanging up) stops the job after the
current tile. A malformed, oversized or stalled message costs its sender the
connection, never the worker; so does a flood of connections (at most
`HELLO_QUEUE` wait for their hello, the oldest is dropped) or running out of
file descriptors (the worker waits and goes on accepting). The worker exits
after `idle_timeout` seconds without work, as soon as every host that said
hello has died, or when a client asks it to (`Shutdown`).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hmac
import logging
import os
import queue
import socket
import threading
import time
import traceback

import numpy as np

from textpromptir import __version__
from textpromptir.engine.restore import Restorer
from textpromptir.errors import Cancelled, ImageError, OutOfMemory, PromptError, TextPromptIRError, WeightsError
from textpromptir.text.understand import understand
from textpromptir_wire import discovery, frames, messages
from textpromptir_wire.frames import ProtocolError
from textpromptir_wire.messages import (
    Cancel,
    Error,
    Hello,
    Message,
    Preview,
    PreviewResult,
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

from .pixels import apply_mask, decode_pixels, encode_pixels

log = logging.getLogger("textpromptir.serve.worker")

_ERROR_CODES = {
    PromptError: frames.PROMPT,
    Cancelled: frames.CANCELLED,
    OutOfMemory: frames.OUT_OF_MEMORY,
    ImageError: frames.IMAGE,
    WeightsError: frames.WEIGHTS,
}
WATCH_INTERVAL = 1.0  # seconds between checks for dead hosts and idleness
HELLO_QUEUE = 64  # connections waiting for their hello; a newer one drops the oldest
READ_TIMEOUT = 30.0  # the longest pause inside a message, or before hello
# accept() failing for want of descriptors or memory: wait (doubling, up to the last) and accept again
_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_BACKOFF = (0.05, 1.0)


class Job:
    """One restore request: what to do, how to answer, and its cancel flag."""

    def __init__(self, connection: Connection, request: Restore, pixels: np.ndarray, mask: np.ndarray | None) -> None:
        self.connection = connection
        self.request = request
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

    def send(self, message: Message, payload: bytes | memoryview = b"") -> bool:
        """Answer the client; False if it has gone (its job is then cancelled by the reader)."""
        try:
            with self.send_lock:
                messages.send(self.sock, message, payload)
            return True
        except OSError:
            return False

    def send_error(self, code: str, message: str, details: str = "") -> None:
        self.send(Error(code=code, message=message, details=details))

    def serve(self) -> None:
        try:
            if self._authenticate():
                self._serve_requests()
        except frames.ConnectionClosed:
            log.info("a client disconnected")
        except ProtocolError as error:
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
        try:  # the socket's timeout: a silent peer must not hold a thread forever
            header, _ = frames.receive(self.sock, max_payload=0)
        finally:
            self.worker.heard(self.sock)
        try:
            hello = Hello.from_header(header)
        except ProtocolError:
            hello = None
        if hello is None or not hmac.compare_digest(hello.token.encode(), self.worker.token.encode()):
            log.warning("refused a client without the right token")
            self.send_error(frames.UNAUTHORISED, "Wrong or missing token: this worker belongs to another session.")
            return False
        if hello.version != frames.VERSION:
            self.send_error(
                frames.BAD_MESSAGE,
                f"The plugin speaks protocol {hello.version} but the worker speaks {frames.VERSION}: "
                "run the installer again so that both are the same version.",
            )
            return False
        self.worker.add_host(hello.host_pid)
        self.send(Welcome(**self.worker.describe()))
        return True

    def _serve_requests(self) -> None:
        while True:
            header, payload = frames.receive(self.sock, wait=True)
            self.worker.touch()
            try:  # a well-framed but wrong request costs only an error answer
                request = messages.parse(header, messages.REQUESTS, "request")
                if isinstance(request, Restore):
                    self._start_job(request, decode_pixels(request, payload))
                else:
                    self._answer(request)
            except ProtocolError as error:
                self.send_error(error.code, str(error))
            except ImageError as error:
                self.send_error(frames.IMAGE, str(error))

    def _answer(self, request: Message) -> None:
        if isinstance(request, Understand):
            self._understand(request.prompt)
        elif isinstance(request, Cancel):
            if self.job is not None:
                self.job.cancelled.set()
        elif isinstance(request, Status):
            self.send(Status(**self.worker.describe()))
        elif isinstance(request, Shutdown):
            self.worker.leave()

    def _understand(self, prompt: str) -> None:
        try:
            understanding = understand(prompt)
        except PromptError as error:
            self.send_error(frames.PROMPT, str(error))
            return
        self.send(
            Understood(
                tasks=understanding.tasks,
                confidences=understanding.confidences,
                strength=understanding.strength,
                summary=understanding.describe(),
                suggested_strength=understanding.suggested_strength,
            )
        )

    def _start_job(self, request: Restore, decoded: tuple[np.ndarray, np.ndarray | None]) -> None:
        if self.job is not None and not self.job.finished.is_set():
            self.send_error(frames.BAD_MESSAGE, "This connection already has a restoration running.")
            return
        self.job = Job(self, request, *decoded)
        self.worker.submit(self.job)


def _strength(request: Restore) -> float:
    """The request's strength, or what its prompt's strength word suggests."""
    return request.strength if request.strength is not None else understand(request.prompt).suggested_strength


def _working_pixels(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) if pixels.dtype == np.float16 else pixels


def restore_job(restorer: Restorer, job: Job) -> tuple[Message, memoryview | bytes]:
    """Run one job, sending its progress; return its result and pixels."""
    request = job.request
    if isinstance(request, Preview):
        return preview_job(restorer, job)
    working = _working_pixels(job.pixels)

    def progress(done: int, total: int) -> None:
        job.connection.send(Progress(done=done, total=total))

    strength = _strength(request)
    restored = restorer.restore(
        working, request.prompt, progress=progress, cancel=job.cancelled.is_set, strength=strength
    )
    if job.mask is not None:
        restored = apply_mask(restored, job.mask)
    height, width = restored.shape[:2]
    answer = Result(width=width, height=height, sample_format=request.sample_format, order=request.order)
    return answer, encode_pixels(restored, answer.sample_format, answer.order)


def preview_job(restorer: Restorer, job: Job) -> tuple[Message, memoryview]:
    """The crop that the restoration of the request's whole area would paint near its centre."""
    request = job.request
    crop, restored = restorer.preview(
        _working_pixels(job.pixels),
        request.prompt,
        (request.centre_x, request.centre_y),
        request.size,
        _strength(request),
        origin=(request.x, request.y),
        shape=(request.area_height, request.area_width),
    )
    if job.mask is not None:
        mask = job.mask[crop.top - request.y : crop.bottom - request.y, crop.left - request.x : crop.right - request.x]
        restored = apply_mask(restored, mask)
    answer = PreviewResult(
        width=crop.right - crop.left,
        height=crop.bottom - crop.top,
        sample_format=request.sample_format,
        order=request.order,
        x=crop.left,
        y=crop.top,
    )
    return answer, encode_pixels(restored, answer.sample_format, answer.order)


def failure(error: Exception) -> Error:
    """The answer to a job that raised: the error's own words, or where the log has the details."""
    if isinstance(error, TextPromptIRError):
        code = next((code for kind, code in _ERROR_CODES.items() if isinstance(error, kind)), frames.INTERNAL)
        return Error(code=code, message=str(error))
    log.error("restoration failed", exc_info=error)
    return Error(
        code=frames.INTERNAL,
        message=f"The restoration failed unexpectedly ({type(error).__name__}); "
        f"the log has the details: {discovery.log_path()}",
        details="".join(traceback.format_exception(error)),
    )


class Worker:
    def __init__(
        self, restorer: Restorer, weights: str, idle_timeout: float = 900.0, read_timeout: float = READ_TIMEOUT
    ) -> None:
        self.restorer = restorer
        self.weights = weights
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.token = discovery.new_token()
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.running: Job | None = None
        self.hosts: set[int] = set()  # processes (Krita, GIMP) that said hello; when all are gone, so is the worker
        self.seen_host = False
        self.lock = threading.Lock()
        self.last_activity = time.monotonic()
        self.stopping = threading.Event()
        self.leaving = False  # a client asked it to exit once its jobs are done
        self.unheard: collections.OrderedDict[socket.socket, None] = collections.OrderedDict()  # before hello

    def describe(self) -> dict:
        return {
            "version": __version__,
            "protocol": frames.VERSION,
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

    def leave(self) -> None:
        log.info("asked to exit once the queued jobs are done")
        self.leaving = True

    def admit(self, sock: socket.socket) -> None:
        """Count a new connection as waiting for hello; past HELLO_QUEUE, hang up the one that waited longest."""
        with self.lock:
            self.unheard[sock] = None
            oldest = self.unheard.popitem(last=False)[0] if len(self.unheard) > HELLO_QUEUE else None
        if oldest is not None:
            with contextlib.suppress(OSError):  # its own thread sees the connection end, and closes it
                oldest.shutdown(socket.SHUT_RDWR)

    def heard(self, sock: socket.socket) -> None:
        with self.lock:
            self.unheard.pop(sock, None)

    def submit(self, job: Job) -> None:
        position = self.jobs.qsize() + (self.running is not None)
        if position:
            job.connection.send(Queued(position=position))
        self.jobs.put(job)

    def serve(self, listener: socket.socket) -> None:
        """Accept clients until idle or orphaned; `listener` is bound and listening."""
        threading.Thread(target=self._run_jobs, name="jobs", daemon=True).start()
        threading.Thread(target=self._watch, name="watch", daemon=True).start()
        listener.settimeout(WATCH_INTERVAL)
        backoff = ACCEPT_BACKOFF[0]
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as error:
                if error.errno not in _EXHAUSTED:
                    raise
                if backoff == ACCEPT_BACKOFF[0]:
                    log.warning("cannot accept connections (%s); waiting for some to close", error.strerror)
                self.stopping.wait(backoff)
                backoff = min(2 * backoff, ACCEPT_BACKOFF[1])
                continue
            backoff = ACCEPT_BACKOFF[0]
            sock.settimeout(self.read_timeout)
            self.admit(sock)
            threading.Thread(target=Connection(self, sock).serve, name="client", daemon=True).start()
        self.jobs.put(None)

    def _run_jobs(self) -> None:
        while (job := self.jobs.get()) is not None:
            self.running = job
            try:
                if job.cancelled.is_set():
                    raise Cancelled("Cancelled: the image was left as it was.")
                answer, pixels = restore_job(self.restorer, job)
            except Exception as error:  # the worker must survive any single job
                answer, pixels = failure(error), b""
            # Finished before answering: the client may send its next restore as soon as the answer starts.
            job.pixels = job.mask = None
            job.finished.set()
            self.running = None
            job.connection.send(answer, pixels)
            self.touch()

    def _watch(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL):
            with self.lock:
                self.hosts = {pid for pid in self.hosts if discovery.process_alive(pid)}
                hosts_gone = self.seen_host and not self.hosts
                working = self.running is not None or not self.jobs.empty()
            idle = time.monotonic() - self.last_activity > self.idle_timeout and not working
            if self.leaving and not working:
                log.info("stopping as asked")
                self.stopping.set()
            elif hosts_gone and not working:
                log.info("every host that used this worker has exited; stopping")
                self.stopping.set()
            elif idle:
                log.info("idle for %.0f s; stopping", self.idle_timeout)
                self.stopping.set()


def serve(
    weights: str | None = None, device: str = "auto", idle_timeout: float = 900.0, read_timeout: float = READ_TIMEOUT
) -> int:
    """Load the model, publish port and token, serve until idle or orphaned. Returns an exit code."""
    info_file = discovery.info_path()
    running = discovery.read_info(info_file)
    if running and running.pid != os.getpid() and discovery.process_alive(running.pid):
        log.info("a worker is already running (pid %s); not starting another", running.pid)
        return 0
    restorer = Restorer.load(weights, device)
    # Load the text encoder and run one small tile now, so the first request is not the slowest.
    restorer.restore(np.zeros((64, 64, 3), np.uint8), "remove the noise")
    worker = Worker(restorer, str(weights or "shipped"), idle_timeout, read_timeout)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        discovery.write_info(discovery.WorkerInfo(port, worker.token, os.getpid(), __version__), info_file)
        log.info("worker %s serving on 127.0.0.1:%d with %s on %s", __version__, port, worker.weights, restorer.device)
        try:
            worker.serve(listener)
        finally:
            published = discovery.read_info(info_file)
            if published is not None and published.pid == os.getpid():
                with contextlib.suppress(OSError):
                    info_file.unlink()
    return 0
