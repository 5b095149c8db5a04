"""The Krita extension: the menu action, the prompt dialog, the progress dialog and the result layer."""

from __future__ import annotations

import os
import signal

from krita import Extension, Krita

from textpromptir_client.client import Image, PromptChecker, connect, log_tail
from textpromptir_client.dialog import PromptDialog
from textpromptir_client.installation import install_command, missing_engine
from textpromptir_client.qt import QtCore, QtGui, QtWidgets
from textpromptir_client.settings import Settings
from textpromptir_wire import discovery, frames

from .job import RestoreJob
from .layers import LayerRefused, Region, add_restored_layer, layer_area, read_image

ACTION = "textpromptir_restore"
REPEAT_ACTION = "textpromptir_repeat"
TITLE = "Restore with Text Prompt"
SHORTCUT = "Ctrl+Alt+Shift+R"


class RestoreExtension(Extension):
    def __init__(self, parent: object) -> None:
        super().__init__(parent)
        self.job: RestoreJob | None = None
        self.dialog: PromptDialog | None = None
        self.progress: QtWidgets.QProgressDialog | None = None
        self._checker: PromptChecker | None = None

    def setup(self) -> None:
        # Krita's Python does not ignore SIGPIPE: one write to a dead worker would kill Krita.
        if hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def createActions(self, window: object) -> None:
        action = window.createAction(ACTION, "Restore with Text Prompt...", "filter")
        action.setShortcut(QtGui.QKeySequence(SHORTCUT))
        action.triggered.connect(self.ask_prompt)
        scripts = window.createAction(ACTION + "_scripts", "Restore with Text Prompt...", "tools/scripts")
        scripts.triggered.connect(self.ask_prompt)
        repeat = window.createAction(REPEAT_ACTION, "Repeat Last Text Restoration", "filter")
        repeat.triggered.connect(self.repeat_last)

    def _ready(self) -> tuple[Settings, object] | None:
        """The settings and the active document when a restoration can start; otherwise says why and None."""
        if self.job is not None:
            self._show_error("A restoration is already running; wait for it or cancel it.")
            return None
        settings = Settings.load()
        missing = missing_engine(settings)
        if missing:  # installed from the zip, or the environment is gone: say what to run
            self._show_error(missing, command=install_command())
            return None
        return settings, Krita.instance().activeDocument()

    def ask_prompt(self) -> None:
        ready = self._ready()
        if ready is None:
            return
        settings, document = ready
        try:  # refuse early, before the dialog
            area = layer_area(document, document.activeNode() if document else None)
        except LayerRefused as refusal:
            self._show_error(str(refusal))
            return
        self._checker = PromptChecker(settings, host_pid=os.getpid())
        subject = f"Layer “{document.activeNode().name()}”" + (" (selection)" if document.selection() else "")
        self.dialog = PromptDialog(
            settings,
            self._checker.understand,
            self._checker.device,
            _main_window(),
            subject,
            area=area,
            open_session=lambda: connect(settings, host_pid=os.getpid()),
        )
        self.dialog.accepted.connect(
            lambda: self.start(document, document.activeNode(), self.dialog.prompt(), self.dialog.strength())
        )
        self.dialog.finished.connect(self._dialog_closed)
        self.dialog.open()

    def repeat_last(self) -> None:
        """The last restoration's prompt and strength on the active layer, without the dialog."""
        ready = self._ready()
        if ready is None:
            return
        settings, document = ready
        if not settings.history:
            self._show_error("There is no restoration to repeat yet: use Filter > Restore with Text Prompt... first.")
            return
        self.start(document, document.activeNode() if document else None, settings.history[0], settings.strength / 100)

    def _dialog_closed(self) -> None:
        if self._checker is not None:
            self._checker.close()
            self._checker = None

    def start(self, document: object, source: object, prompt: str, strength: float) -> None:
        try:
            image, region = read_image(document, source)
        except LayerRefused as refusal:
            self._show_error(str(refusal))
            return
        self.job = RestoreJob(Settings.load(), image, prompt, strength)
        self.progress = QtWidgets.QProgressDialog("Starting the restoration engine…", "Cancel", 0, 0, _main_window())
        self.progress.setObjectName("textpromptir_progress")
        self.progress.setWindowTitle(TITLE)
        self.progress.setMinimumDuration(0)
        self.progress.canceled.connect(self.job.cancel)
        self.job.started.connect(lambda device: self.progress.setLabelText(f"Restoring on {device}…"))
        self.job.queued.connect(lambda ahead: self.progress.setLabelText(f"Waiting for {ahead} other restoration(s)…"))
        self.job.progress.connect(self._show_progress)
        self.job.finished.connect(lambda result: self._finished(document, source, region, result, prompt))
        self.job.failed.connect(self._failed)
        self.progress.show()
        self.job.start()

    def _show_progress(self, done: int, total: int) -> None:
        if self.progress is not None and not self.progress.wasCanceled():
            self.progress.setMaximum(total)
            self.progress.setValue(done)
            self.progress.setLabelText(f"Restoring: tile {min(done + 1, total)} of {total}…")

    def _finished(self, document: object, source: object, region: Region, result: Image, prompt: str) -> None:
        self._close_progress()
        if document not in Krita.instance().documents():
            return  # the document was closed meanwhile: nothing to add to
        try:
            add_restored_layer(document, source, region, result, prompt)
        except Exception as error:  # e.g. the source layer was deleted meanwhile
            self._show_error(f"The restored layer could not be added: {error}")

    def _failed(self, code: str, message: str, details: str) -> None:
        self._close_progress()
        if code != frames.CANCELLED:
            self._show_error(message, details)

    def _close_progress(self) -> None:
        self.job = None
        if self.progress is not None:
            self.progress.canceled.disconnect()
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _show_error(self, message: str, details: str = "", command: str = "") -> None:
        """A warning; with `command`, a button that copies it (the message is about what to run, not a log)."""
        box = QtWidgets.QMessageBox(_main_window())
        box.setObjectName("textpromptir_error")
        box.setIcon(QtWidgets.QMessageBox.Icon.Warning)
        box.setWindowTitle(TITLE)
        box.setText(message)
        if command:
            box.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            copy = box.addButton("Copy the command", QtWidgets.QMessageBox.ButtonRole.ActionRole)
            copy.setObjectName("textpromptir_copy_command")
            copy.clicked.connect(lambda: QtWidgets.QApplication.clipboard().setText(command))
            box.addButton(QtWidgets.QMessageBox.StandardButton.Close)
        else:
            box.setDetailedText(_log_details(details))
        box.open()


def _log_details(details: str) -> str:
    """What "Show Details..." reveals: the worker's own details, then where its full log is."""
    tail = log_tail(20) or "(the worker has not written a log yet)"
    return f"{details}\n\nWorker log: {discovery.log_path()}\n{tail}".strip()


def _main_window() -> QtWidgets.QWidget | None:
    window = Krita.instance().activeWindow()
    return window.qwindow() if window is not None else None
