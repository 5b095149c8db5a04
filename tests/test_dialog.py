"""The prompt dialog under PyQt6 (offscreen), with the real text understanding behind it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
qt = pytest.importorskip("textpromptir_client.qt")
from textpromptir.text.understand import PromptError, understand  # noqa: E402
from textpromptir_client.dialog import PromptDialog  # noqa: E402
from textpromptir_client.settings import Settings  # noqa: E402

QtWidgets = qt.QtWidgets


@pytest.fixture(scope="module")
def app() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def real_understanding(prompt: str) -> tuple[bool, str]:
    try:
        return True, understand(prompt).describe()
    except PromptError as error:
        return False, str(error)


def wait_until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the dialog did not update in time"
        QtWidgets.QApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture()
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEXTPROMPTIR_CONFIG_DIR", str(tmp_path))
    return tmp_path


def make_dialog(history: list[str] | None = None) -> PromptDialog:
    return PromptDialog(Settings(history=history or []), real_understanding, device=lambda: "cpu")


def type_prompt(dialog: PromptDialog, text: str) -> None:
    dialog.field.setEditText(text)
    wait_until(lambda: not dialog.feedback.text().startswith("Reading"))


def test_live_feedback_accepts_and_refuses(app: QtWidgets.QApplication, config_dir: Path) -> None:
    dialog = make_dialog()
    type_prompt(dialog, "pls get rid of the rain")
    assert dialog.feedback.text().startswith("Understood: rain streaks") and "%" in dialog.feedback.text()
    assert dialog.restore_button.isEnabled()
    wait_until(lambda: dialog.device_label.text() == "Engine: cpu")
    type_prompt(dialog, "add a dragon in the sky")
    assert "Nothing to restore" in dialog.feedback.text() and "noise" in dialog.feedback.text()
    assert not dialog.restore_button.isEnabled()
    type_prompt(dialog, "   ")
    assert not dialog.restore_button.isEnabled()


def test_examples_history_and_saved_settings(app: QtWidgets.QApplication, config_dir: Path) -> None:
    dialog = make_dialog(history=["remove the haze", "remove the noise"])
    assert dialog.prompt() == "remove the haze"  # the last prompt is offered again
    assert [dialog.field.itemText(i) for i in range(dialog.field.count())] == ["remove the haze", "remove the noise"]
    example = next(b for b in dialog.findChildren(QtWidgets.QPushButton) if b.text() == "remove the rain streaks")
    example.click()
    wait_until(lambda: dialog.feedback.text().startswith("Understood: rain"))
    dialog.restore_button.click()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
    saved = Settings.load(config_dir / "settings.json")
    assert saved.history == ["remove the rain streaks", "remove the haze", "remove the noise"]
