"""The prompt dialog, shared by the Krita and GIMP plugins.

A prompt field with history and example prompts (one per restoration), live
feedback of what the worker understood ("rain streaks 97 %") or why it
refuses the prompt, a strength slider that starts where the prompt's
strength word suggests, a 1:1 preview of what Restore will paint (given an
area), the engine's state, and Restore / Cancel. The worker is asked on
background threads, so typing never waits for the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .client import Session, Verdict
from .preview import Area, PreviewRunner, Shot, thumbnail
from .qt import Qt, QtCore, QtGui, QtWidgets, Signal
from .settings import Settings

EXAMPLES = (
    ("Noise", "remove the noise"),
    ("Rain", "remove the rain streaks"),
    ("Haze", "remove the haze"),
    ("Blur", "sharpen the motion blur"),
    ("Low light", "brighten this night shot"),
    ("JPEG", "remove the JPEG artifacts"),
)
FEEDBACK_DELAY_MS = 250  # wait for a pause in typing (longer than most gaps between keys) before asking
STRENGTH_DELAY_MS = 250  # wait for the slider to rest before previewing again
_UNSEEN = object()  # no strength word understood yet
EXAMPLE_STYLE = "QPushButton#example { border: 1px solid palette(mid); border-radius: 9px; padding: 3px 10px; }"

# understand(prompt) -> Verdict; may raise nothing, runs on a background thread
Understand = Callable[[str], Verdict]


class ClickableLabel(QtWidgets.QLabel):
    clicked = Signal(int, int)  # x, y in the label

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        point = event.position().toPoint() if hasattr(event, "position") else event.pos()
        self.clicked.emit(point.x(), point.y())


class PromptDialog(QtWidgets.QDialog):
    """Ask for a prompt and a strength. `prompt()` and `strength()` hold them after `accepted` is emitted."""

    # from background threads to the UI thread
    _understood = Signal(str, object)  # prompt, Verdict
    _device_known = Signal(str)

    def __init__(
        self,
        settings: Settings,
        understand: Understand,
        device: Callable[[], str] | None = None,
        parent: QtWidgets.QWidget | None = None,
        subject: str = "",
        area: Area | None = None,
        open_session: Callable[[], Session] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("textpromptir_prompt_dialog")
        self.setWindowTitle("Restore with Text Prompt")
        self.settings = settings
        self._understand = understand
        self._device = device
        self._verdict: tuple[str, Verdict] | None = None  # the latest answer and its prompt
        self._strength_word: object = _UNSEEN
        self._remembered_prompt = settings.history[0] if settings.history else None
        self._started = time.monotonic()
        self.area = area
        self.runner = PreviewRunner(area, open_session) if area is not None and open_session is not None else None
        self.shot: Shot | None = None  # the preview shown
        self.centre = (area.width // 2, area.height // 2) if area is not None else (0, 0)
        self._build(subject)
        self._timer = self._single_shot(FEEDBACK_DELAY_MS, self._ask)
        self._strength_timer = self._single_shot(STRENGTH_DELAY_MS, self._request_preview)
        self._clock = QtCore.QTimer(self, interval=1000)
        self._clock.timeout.connect(self._show_loading)
        self._clock.start()
        self._understood.connect(self._show_feedback)
        self._device_known.connect(self._show_device)
        self.field.editTextChanged.connect(self._prompt_edited)
        self.finished.connect(self._close_preview)
        if self.runner is not None:
            self.runner.ready.connect(self._show_shot)
            self.runner.failed.connect(self._preview_failed)
        if settings.history:
            self.field.setEditText(settings.history[0])
        self._prompt_edited(self.prompt())

    def _single_shot(self, delay_ms: int, slot: Callable[[], None]) -> QtCore.QTimer:
        timer = QtCore.QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(delay_ms)
        timer.timeout.connect(slot)
        return timer

    def _build(self, subject: str) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setSizeConstraint(QtWidgets.QLayout.SizeConstraint.SetMinimumSize)  # grows with a long message
        if subject:
            layout.addWidget(QtWidgets.QLabel(subject, objectName="subject"))
        layout.addWidget(QtWidgets.QLabel("What should be fixed?"))
        self.field = QtWidgets.QComboBox(objectName="prompt")
        self.field.setEditable(True)
        self.field.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.field.addItems(self.settings.history)
        self.field.lineEdit().setPlaceholderText('e.g. "remove the rain streaks" or "this night shot is grainy"')
        self.field.setMinimumWidth(460)
        layout.addWidget(self.field)
        layout.addLayout(self._examples())

        self.feedback = QtWidgets.QLabel(" ", objectName="feedback")
        self.feedback.setWordWrap(True)
        layout.addWidget(self.feedback)
        layout.addLayout(self._strength_row())
        if self.area is not None:
            layout.addLayout(self._preview_row())
        self.device_label = QtWidgets.QLabel("Engine: loading the model… 0 s", objectName="device")
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

    def _examples(self) -> QtWidgets.QLayout:
        grid = QtWidgets.QGridLayout()
        grid.addWidget(QtWidgets.QLabel("Try:"), 0, 0)
        for index, (name, example) in enumerate(EXAMPLES):
            button = QtWidgets.QPushButton(example, objectName="example")
            button.setToolTip(f"{name}: use this prompt")
            button.setAutoDefault(False)
            button.setStyleSheet(EXAMPLE_STYLE)
            button.clicked.connect(lambda _checked=False, text=example: self.field.setEditText(text))
            grid.addWidget(button, index // 3, 1 + index % 3)
        return grid

    def _strength_row(self) -> QtWidgets.QLayout:
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Strength:"))
        self.slider = QtWidgets.QSlider(Qt.Orientation.Horizontal, objectName="strength")
        self.slider.setRange(0, 100)
        self.slider.setValue(self.settings.strength)
        self.slider.valueChanged.connect(self._strength_moved)
        row.addWidget(self.slider, 1)
        self.strength_label = QtWidgets.QLabel(objectName="strength_value")
        self.strength_label.setMinimumWidth(170)
        row.addWidget(self.strength_label)
        self._show_strength()
        return row

    def _preview_row(self) -> QtWidgets.QLayout:
        row = QtWidgets.QHBoxLayout()
        side = QtWidgets.QVBoxLayout()
        self.thumbnail = ClickableLabel(objectName="thumbnail")
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.thumbnail.setToolTip("Click to preview another place")
        self._thumbnail_image = thumbnail(self.area)
        self._scale = self.area.width / self._thumbnail_image.width()
        self.thumbnail.clicked.connect(self._move_preview)
        side.addWidget(self.thumbnail)
        side.addWidget(QtWidgets.QLabel("Click to move the preview"))
        self.before = QtWidgets.QPushButton("Show the original", objectName="before")
        self.before.setCheckable(True)
        self.before.setAutoDefault(False)
        self.before.toggled.connect(lambda _checked: self._paint_shot())
        side.addWidget(self.before)
        self.preview_status = QtWidgets.QLabel(objectName="preview_status")
        self.preview_status.setWordWrap(True)
        side.addWidget(self.preview_status)
        side.addStretch(1)
        row.addLayout(side)
        self.preview = QtWidgets.QLabel(objectName="preview")
        self.preview.setFixedSize(320, 320)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: palette(dark);")
        row.addWidget(self.preview)
        self._paint_thumbnail()
        return row

    def prompt(self) -> str:
        return " ".join(self.field.currentText().split())

    def strength(self) -> float:
        return self.slider.value() / 100

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
            verdict = self._understand(prompt)
        except Exception as error:  # shown to the user; never kills the dialog
            verdict = Verdict(False, str(error))
        self._understood.emit(prompt, verdict)
        if self._device is not None:
            self._device_known.emit(self._device())

    def _show_feedback(self, prompt: str, verdict: Verdict) -> None:
        if prompt != self.prompt():
            return  # an answer to an older version of the prompt
        self._verdict = (prompt, verdict)
        self._set_feedback(f"Understood: {verdict.text}" if verdict.accepted else verdict.text, not verdict.accepted)
        self.restore_button.setEnabled(verdict.accepted)
        if verdict.accepted:
            self._follow_strength_word(prompt, verdict)
            self._request_preview()

    def _follow_strength_word(self, prompt: str, verdict: Verdict) -> None:
        """A new strength word moves the slider to what it suggests; the last restoration's prompt keeps its own."""
        first, changed = self._strength_word is _UNSEEN, verdict.strength_word != self._strength_word
        self._strength_word = verdict.strength_word
        if changed and not (first and prompt == self._remembered_prompt):
            self.slider.blockSignals(True)  # one preview for both changes
            self.slider.setValue(round(verdict.suggested_strength * 100))
            self.slider.blockSignals(False)
        self._show_strength()

    def _strength_moved(self, _value: int) -> None:
        self._show_strength()
        self._strength_timer.start()

    def _show_strength(self) -> None:
        word = self._strength_word if isinstance(self._strength_word, str) else None
        said = f" — the prompt says “{word}”" if word else ""
        self.strength_label.setText(f"{self.slider.value()} %{said}")

    def _set_feedback(self, text: str, error: bool) -> None:
        self.feedback.setText(text)
        self.feedback.setStyleSheet("color: #d04030;" if error else "")
        # A wrapped label does not ask for its height by itself: give it what its text needs, and grow.
        self.feedback.setMinimumHeight(self.feedback.heightForWidth(max(self.feedback.width(), 460)))
        self.adjustSize()

    def _show_loading(self) -> None:
        self.device_label.setText(f"Engine: loading the model… {time.monotonic() - self._started:.0f} s")

    def _show_device(self, device: str) -> None:
        if device != "not started":
            self._clock.stop()
            self.device_label.setText(f"Engine: {device}")

    def _move_preview(self, x: int, y: int) -> None:
        if x < self._thumbnail_image.width() and y < self._thumbnail_image.height():
            self.centre = (
                min(int(x * self._scale), self.area.width - 1),
                min(int(y * self._scale), self.area.height - 1),
            )
            self._request_preview()

    def _request_preview(self) -> None:
        if self.runner is None or self._verdict is None or not self._verdict[1].accepted:
            return
        if self._verdict[0] != self.prompt():
            return
        self.runner.request(self.prompt(), self.centre, self.strength())
        self.preview_status.setText("Previewing…")

    def _show_shot(self, shot: Shot) -> None:
        if self.runner is None or shot.generation != self.runner.generation:
            return  # superseded while it was being restored
        self.shot = shot
        self.preview_status.setText(f"1:1 at {shot.x}, {shot.y}: exactly what Restore paints here")
        self._paint_shot()
        self._paint_thumbnail()

    def _preview_failed(self, generation: int, why: str) -> None:
        if self.runner is not None and generation == self.runner.generation:
            self.preview_status.setText(why)

    def _paint_shot(self) -> None:
        if self.shot is None:
            return
        picture = QtGui.QPixmap.fromImage(self.shot.before)
        if not self.before.isChecked():  # the restored pixels over the original: unselected parts stay as they are
            painter = QtGui.QPainter(picture)
            painter.drawImage(0, 0, self.shot.after)
            painter.end()
        self.preview.setPixmap(picture)

    def _paint_thumbnail(self) -> None:
        picture = QtGui.QPixmap.fromImage(self._thumbnail_image)
        if self.shot is not None:
            painter = QtGui.QPainter(picture)
            painter.setPen(QtGui.QPen(QtGui.QColor("#ffd400"), 2))
            shot, scale = self.shot, self._scale
            painter.drawRect(
                QtCore.QRectF(shot.x / scale, shot.y / scale, shot.restored.width / scale, shot.restored.height / scale)
            )
            painter.end()
        self.thumbnail.setPixmap(picture)

    def _close_preview(self) -> None:
        if self.runner is not None:
            self.runner.close()

    def _accept_prompt(self) -> None:
        prompt = self.prompt()
        if not prompt or (self._verdict is not None and self._verdict[0] == prompt and not self._verdict[1].accepted):
            return
        self.settings.remember(prompt)
        self.settings.strength = self.slider.value()
        self.settings.save()
        self.accept()
