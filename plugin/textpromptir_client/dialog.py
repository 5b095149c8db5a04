"""The prompt dialog, shared by the Krita and GIMP plugins.

A prompt field with history and example prompts, live feedback of what the
worker understood ("rain streaks 97 %") or why it refuses the prompt, the
device in use, and Restore / Cancel. It asks the worker through a callable
run on a background thread, so typing never waits for the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .qt import QtCore, QtWidgets, Signal
from .settings import Settings

EXAMPLES = (
    "remove the noise",
    "remove the rain streaks",
    "remove the haze",
    "sharpen the motion blur",
    "brighten this night shot",
    "remove the JPEG artifacts",
)
FEEDBACK_DELAY_MS = 350  # wait for a pause in typing before asking the worker

# understand(prompt) -> (accepted, text to show); may raise nothing, runs on a background thread
Understand = Callable[[str], tuple[bool, str]]


class PromptDialog(QtWidgets.QDialog):
    """Ask for a prompt. `prompt()` holds the accepted text after `accepted` is emitted."""

    # from the background thread to the UI thread
    _understood = Signal(str, bool, str)  # prompt, accepted, feedback
    _device_known = Signal(str)

    def __init__(
        self,
        settings: Settings,
        understand: Understand,
        device: Callable[[], str] | None = None,
        parent: QtWidgets.QWidget | None = None,
        subject: str = "",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("textpromptir_prompt_dialog")
        self.setWindowTitle("Restore with Text Prompt")
        self.settings = settings
        self._understand = understand
        self._device = device
        self._verdict: tuple[str, bool] | None = None  # (prompt, accepted) of the latest answer
        self._build(subject)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FEEDBACK_DELAY_MS)
        self._timer.timeout.connect(self._ask)
        self._understood.connect(self._show_feedback)
        self._device_known.connect(lambda device: self.device_label.setText(f"Engine: {device}"))
        self.field.editTextChanged.connect(self._prompt_edited)
        if settings.history:
            self.field.setEditText(settings.history[0])
        self._prompt_edited(self.prompt())

    def _build(self, subject: str) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        if subject:
            layout.addWidget(QtWidgets.QLabel(subject, objectName="subject"))
        layout.addWidget(QtWidgets.QLabel("What should be fixed?"))
        self.field = QtWidgets.QComboBox(objectName="prompt")
        self.field.setEditable(True)
        self.field.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.field.addItems(self.settings.history)
        self.field.lineEdit().setPlaceholderText('e.g. "remove the rain streaks" or "this night shot is grainy"')
        self.field.setMinimumWidth(420)
        layout.addWidget(self.field)

        examples = QtWidgets.QHBoxLayout()
        examples.addWidget(QtWidgets.QLabel("Try:"))
        for example in EXAMPLES[:4]:
            button = QtWidgets.QPushButton(example)
            button.setFlat(True)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, text=example: self.field.setEditText(text))
            examples.addWidget(button)
        examples.addStretch(1)
        layout.addLayout(examples)

        self.feedback = QtWidgets.QLabel(" ", objectName="feedback")
        self.feedback.setWordWrap(True)
        layout.addWidget(self.feedback)
        self.device_label = QtWidgets.QLabel("Engine: starting…", objectName="device")
        layout.addWidget(self.device_label)

        buttons = QtWidgets.QDialogButtonBox()
        self.restore_button = buttons.addButton("Restore", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.restore_button.setObjectName("restore")
        self.restore_button.setDefault(True)
        cancel = buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("cancel")
        buttons.accepted.connect(self._accept_prompt)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def prompt(self) -> str:
        return " ".join(self.field.currentText().split())

    def _prompt_edited(self, _text: str) -> None:
        prompt = self.prompt()
        self.restore_button.setEnabled(bool(prompt))
        if not prompt:
            self._set_feedback("Describe what to fix, or pick an example.", error=False)
            return
        self._set_feedback("Reading the prompt…", error=False)
        self._timer.start()

    def _ask(self) -> None:
        prompt = self.prompt()
        if prompt:
            threading.Thread(target=self._ask_in_background, args=(prompt,), daemon=True).start()

    def _ask_in_background(self, prompt: str) -> None:
        try:
            accepted, text = self._understand(prompt)
        except Exception as error:  # shown to the user; never kills the dialog
            accepted, text = False, str(error)
        self._understood.emit(prompt, accepted, text)
        if self._device is not None:
            self._device_known.emit(self._device())

    def _show_feedback(self, prompt: str, accepted: bool, text: str) -> None:
        if prompt != self.prompt():
            return  # an answer to an older version of the prompt
        self._verdict = (prompt, accepted)
        self._set_feedback(f"Understood: {text}" if accepted else text, error=not accepted)
        self.restore_button.setEnabled(accepted)

    def _set_feedback(self, text: str, error: bool) -> None:
        self.feedback.setText(text)
        self.feedback.setStyleSheet("color: #d04030;" if error else "")

    def _accept_prompt(self) -> None:
        prompt = self.prompt()
        if not prompt or (self._verdict == (prompt, False)):
            return
        self.settings.remember(prompt)
        self.settings.save()
        self.accept()
