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
from textpromptir_client.client import Verdict  # noqa: E402
from textpromptir_client.dialog import EXAMPLES, PromptDialog  # noqa: E402
from textpromptir_client.settings import Settings  # noqa: E402

QtWidgets = qt.QtWidgets


@pytest.fixture(scope="module")
def app() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def real_understanding(prompt: str) -> Verdict:
    try:
        found = understand(prompt)
    except PromptError as error:
        return Verdict(False, str(error))
    return Verdict(True, found.describe(), found.strength, found.suggested_strength)


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


def make_dialog(history: list[str] | None = None, strength: int = 100, device: str = "cpu") -> PromptDialog:
    settings = Settings(history=history or [], strength=strength)
    return PromptDialog(settings, real_understanding, device=lambda: device)


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
    examples = dialog.findChildren(QtWidgets.QPushButton, "example")
    assert [button.text() for button in examples] == [example for _, example in EXAMPLES]
    assert len(examples) == 6 and not any(button.isFlat() for button in examples)  # buttons, not plain text
    example = next(button for button in examples if button.text() == "remove the rain streaks")
    example.click()
    wait_until(lambda: dialog.feedback.text().startswith("Understood: rain"))
    dialog.restore_button.click()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
    saved = Settings.load(config_dir / "settings.json")
    assert saved.history == ["remove the rain streaks", "remove the haze", "remove the noise"]


def test_a_long_refusal_is_shown_in_full(app: QtWidgets.QApplication, config_dir: Path) -> None:
    dialog = make_dialog()
    dialog.show()
    before = dialog.height()
    why = (
        "Nothing to restore: "
        + "this prompt asks for something TextPromptIR cannot do, " * 8
        + "try “remove the noise”."
    )
    dialog._understand = lambda _prompt: Verdict(False, why)
    type_prompt(dialog, "paint it blue")
    app.processEvents()
    assert dialog.feedback.text() == why
    assert dialog.feedback.height() >= dialog.feedback.heightForWidth(dialog.feedback.width()) > 3 * 20
    assert dialog.height() > before + 40


def test_strength_follows_the_words_and_is_remembered(app: QtWidgets.QApplication, config_dir: Path) -> None:
    dialog = make_dialog(history=["remove the noise"], strength=70)
    wait_until(lambda: dialog.feedback.text().startswith("Understood"))
    assert dialog.slider.value() == 70  # the last restoration's prompt keeps the strength it was given
    type_prompt(dialog, "slightly reduce the noise")
    assert dialog.slider.value() == 60 and "slight" in dialog.findChild(QtWidgets.QLabel, "strength_value").text()
    type_prompt(dialog, "remove the heavy noise")
    assert dialog.slider.value() == 100
    dialog.slider.setValue(35)
    assert dialog.strength_label.text().startswith("35 %")
    dialog.restore_button.click()
    assert dialog.strength() == 0.35 and Settings.load(config_dir / "settings.json").strength == 35


def test_loading_the_model_counts_the_seconds(app: QtWidgets.QApplication, config_dir: Path) -> None:
    dialog = make_dialog(device="not started")
    assert dialog.device_label.text() == "Engine: loading the model… 0 s"
    wait_until(lambda: dialog.device_label.text() == "Engine: loading the model… 2 s", seconds=5)
