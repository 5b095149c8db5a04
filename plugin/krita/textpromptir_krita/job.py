"""A restoration running on a background thread, reporting to the UI thread through Qt signals."""

from __future__ import annotations

import os
import threading

from textpromptir_client.client import Image, Session, WorkerError, connect
from textpromptir_client.qt import QtCore, Signal
from textpromptir_client.settings import Settings


class RestoreJob(QtCore.QObject):
    started = Signal(str)  # the device the worker runs on
    queued = Signal(int)  # restorations ahead of this one
    progress = Signal(int, int)  # tiles done, tiles in all
    finished = Signal(object)  # the restored Image
    failed = Signal(str, str, str)  # code, message, details

    def __init__(self, settings: Settings, image: Image, prompt: str, strength: float | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.image = image
        self.prompt = prompt
        self.strength = strength  # None: as the prompt's words suggest
        self._session: Session | None = None
        self._cancelled = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="textpromptir-restore", daemon=True).start()

    def cancel(self) -> None:
        """Stop after the tile being computed; `failed` then reports code "cancelled"."""
        self._cancelled.set()
        session = self._session
        if session is not None:
            session.cancel()

    def _run(self) -> None:
        try:
            with connect(self.settings, host_pid=os.getpid()) as session:
                self._session = session
                if self._cancelled.is_set():
                    raise WorkerError("Cancelled: the image was left as it was.", "cancelled")
                self.started.emit(session.device)
                result = session.restore(
                    self.image,
                    self.prompt,
                    progress=self.progress.emit,
                    queued=self.queued.emit,
                    strength=self.strength,
                )
        except WorkerError as error:
            self.failed.emit(error.code, str(error), error.details)
        except Exception as error:  # a bug must reach the user as a message, never kill the host
            self.failed.emit("internal", f"TextPromptIR failed unexpectedly: {error}", repr(error))
        else:
            self.finished.emit(result)
        finally:
            self._session = None
            self.image = None
