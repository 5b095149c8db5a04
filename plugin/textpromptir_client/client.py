"""Talk to the worker: find it, start it when needed, authenticate, and run requests.

Used from a background thread of the host (never its UI thread), except
`Session.cancel`, which any thread may call while a restoration runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textpromptir_wire import discovery, frames, messages
from textpromptir_wire.frames import INTERNAL, ProtocolError
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
    Understand,
    Understood,
    Welcome,
)

from .settings import Settings

CONNECT_TIMEOUT = 5.0
# Loading torch and the model takes seconds on a warm disk, longer on a cold one.
START_TIMEOUT = 180.0
LOG_LIMIT = 4 * 2**20  # the worker's log is kept below this, with one older copy


class WorkerError(Exception):
    """Something the user must read: `str()` is the message, `details` go to the log."""

    def __init__(self, message: str, code: str = INTERNAL, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass
class Image:
    """Raw pixels as the host holds them: 4 channels of `sample_format`, in RGBA or BGRA order."""

    pixels: bytes | bytearray | memoryview
    width: int
    height: int
    sample_format: str  # u8, u16, f16 or f32
    order: str = "RGBA"
    mask: bytes | bytearray | memoryview | None = None  # width * height bytes, 255 = selected

    def payload(self) -> bytes | bytearray | memoryview:
        """The pixels, and the mask after them, as a request carries them."""
        return bytes(self.pixels) + bytes(self.mask) if self.mask is not None else self.pixels


@dataclass(frozen=True)
class Verdict:
    """What the dialog shows about a prompt: accepted or not, the words to show, the strength it suggests."""

    accepted: bool
    text: str  # "rain streaks 97 %", or why the prompt is refused
    strength_word: str | None = None  # "slight", "moderate", "heavy" or None
    suggested_strength: float = 1.0


class Session:
    """One authenticated connection to the worker."""

    def __init__(self, sock: socket.socket, welcome: Welcome) -> None:
        self.sock = sock
        self.welcome = welcome
        self._send_lock = threading.Lock()
        self._closed = False

    @property
    def device(self) -> str:
        return self.welcome.device

    def understand(self, prompt: str) -> Understood:
        """What the prompt asks for; raises WorkerError(code "prompt") when refused."""
        self._send(Understand(prompt=prompt))
        answer, _ = self._answer()
        if not isinstance(answer, Understood):
            raise _worker_lost(ProtocolError(f"{answer.TYPE} is no answer to understand"))
        return answer

    def restore(
        self,
        image: Image,
        prompt: str,
        progress: Callable[[int, int], None] | None = None,
        queued: Callable[[int], None] | None = None,
        strength: float | None = None,
    ) -> Image:
        """Send the pixels, report progress, return the restored pixels in the same format and order.

        `strength` (0-1) blends the result with the original; None: as the prompt's words suggest.
        """
        request = Restore(
            prompt=prompt,
            width=image.width,
            height=image.height,
            sample_format=image.sample_format,
            order=image.order,
            mask=image.mask is not None,
            strength=strength,
        )
        if request.payload_bytes > frames.MAX_PAYLOAD:
            raise WorkerError(
                f"This area is too large to restore at once ({image.width} x {image.height}, "
                f"{request.pixel_bytes / 2**20:.0f} MiB): select a smaller part of the layer.",
                frames.TOO_LARGE,
            )
        self._send(request, image.payload())
        while True:
            answer, pixels = self._answer()
            if isinstance(answer, Progress) and progress is not None:
                progress(answer.done, answer.total)
            elif isinstance(answer, Queued) and queued is not None:
                queued(answer.position)
            elif isinstance(answer, Result):
                return Image(pixels, answer.width, answer.height, answer.sample_format, answer.order)

    def preview(self, window: Image, request: Preview) -> tuple[int, int, Image]:
        """The crop of a preview (`request` describes `window`): where it lies in the area (x, y), and its pixels."""
        self._send(request, window.payload())
        while True:
            answer, pixels = self._answer()
            if isinstance(answer, PreviewResult):
                return (
                    answer.x,
                    answer.y,
                    Image(pixels, answer.width, answer.height, answer.sample_format, answer.order),
                )

    def cancel(self) -> None:
        """Ask the worker to stop the running restoration after its current tile (safe from any thread)."""
        with contextlib.suppress(WorkerError):  # the worker is gone: nothing left to cancel
            self._send(Cancel())

    def shutdown(self) -> None:
        """Ask the worker to exit once its queued jobs are done (the installer's check does, when it ends)."""
        self._send(Shutdown())

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, message: Message, payload: bytes | bytearray | memoryview = b"") -> None:
        if self._closed:
            raise WorkerError("The connection to the worker is closed.", INTERNAL)
        try:
            with self._send_lock:
                messages.send(self.sock, message, payload)
        except OSError as error:
            raise _worker_lost(error) from error

    def _answer(self) -> tuple[Message, bytearray]:
        try:
            header, payload = frames.receive(self.sock)
            answer = messages.parse(header, messages.ANSWERS, "answer")
        except (OSError, ProtocolError) as error:
            raise _worker_lost(error) from error
        if isinstance(answer, Error):
            raise WorkerError(answer.message, answer.code, answer.details)
        return answer, payload


def _worker_lost(error: Exception) -> WorkerError:
    return WorkerError(
        f"The TextPromptIR worker stopped answering (it may have crashed or been closed): {error}. "
        f"Try again to start a new one; its log is {discovery.log_path()}.",
        "worker_lost",
    )


def connect(settings: Settings, host_pid: int | None = None, start: bool = True) -> Session:
    """A session with the running worker, starting one first if there is none (and `start`)."""
    session = _connect_running(host_pid)
    if session is not None:
        return session
    if not start:
        raise WorkerError("The TextPromptIR worker is not running.", "no_worker")
    process = start_worker(settings)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        exited = process.poll() is not None  # before connecting: a worker that lost a start race exits at once
        session = _connect_running(host_pid)
        if session is not None:
            return session
        if exited:
            raise WorkerError(
                f"The TextPromptIR worker could not start (exit code {process.returncode}). "
                f"Last lines of its log:\n{log_tail()}\n"
                f"Run the installer again if this persists; the full log is {discovery.log_path()}.",
                "no_worker",
            )
        time.sleep(0.2)
    process.kill()
    raise WorkerError(
        f"The TextPromptIR worker did not start within {START_TIMEOUT:.0f} s; see {discovery.log_path()}.", "no_worker"
    )


def _connect_running(host_pid: int | None) -> Session | None:
    info = discovery.read_info()
    if info is None or not discovery.process_alive(info.pid):
        return None
    try:
        sock = socket.create_connection(("127.0.0.1", info.port), timeout=CONNECT_TIMEOUT)
    except OSError:
        return None
    try:
        messages.send(sock, Hello(token=info.token, host_pid=host_pid))
        header, _ = frames.receive(sock)
        welcome = messages.parse(header, (Welcome, Error), "answer to hello")
    except (OSError, ProtocolError):
        sock.close()
        return None
    if isinstance(welcome, Error):
        sock.close()
        raise WorkerError(welcome.message, welcome.code)
    sock.settimeout(None)
    return Session(sock, welcome)


def project_python(settings: Settings) -> str:
    """The interpreter of the project's environment, as the installer configured it."""
    if not settings.python or not os.path.isfile(settings.python):
        raise WorkerError(
            "TextPromptIR is not set up: the Python of its environment was not found "
            f"({settings.python or 'not configured'}). Run the installer again.",
            "no_worker",
        )
    return settings.python


def project_environment() -> dict[str, str]:
    """This process's environment without the host's own Python settings (Krita sets PYTHONPATH)."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}


def start_worker(settings: Settings) -> subprocess.Popen:
    """Start `python -m textpromptir serve` detached from the host, its output going to the worker log."""
    command = [project_python(settings), "-m", "textpromptir", "serve", "--device", settings.device]
    command += ["--idle-timeout", str(settings.idle_timeout)]
    if settings.weights:
        command += ["--weights", settings.weights]
    environment = project_environment()
    log = discovery.log_path()
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if log.is_file() and log.stat().st_size > LOG_LIMIT:
        os.replace(log, log.with_suffix(".log.old"))
    detached: dict = {"start_new_session": True}
    if sys.platform == "win32":
        detached = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            close_fds=True,
            **detached,
        )
    # Reap it when it exits, or it lingers as a zombie of the host until the host quits.
    threading.Thread(target=process.wait, name="textpromptir-worker-reaper", daemon=True).start()
    return process


def log_tail(lines: int = 6) -> str:
    """The last lines of the worker's log, or "" when it has written none."""
    try:
        return "\n".join(discovery.log_path().read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class PromptChecker:
    """Live prompt feedback for the dialog: one session, opened (and the worker started) on first use."""

    def __init__(self, settings: Settings, host_pid: int | None = None) -> None:
        self.settings = settings
        self.host_pid = host_pid
        self._session: Session | None = None
        self._lock = threading.Lock()

    def understand(self, prompt: str) -> Verdict:
        """Verdict(True, "rain streaks 97 %", 1.0) or Verdict(False, why it is refused); never raises."""
        with self._lock:
            try:
                if self._session is None:
                    self._session = connect(self.settings, self.host_pid)
                understood = self._session.understand(prompt)
                return Verdict(True, understood.summary, understood.strength, understood.suggested_strength)
            except WorkerError as error:
                if error.code == "worker_lost":
                    self._drop_session()
                return Verdict(False, str(error))

    def device(self) -> str:
        return self._session.device if self._session is not None else "not started"

    def close(self) -> None:
        with self._lock:
            self._drop_session()

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
