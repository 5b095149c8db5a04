"""What both plugins decide alike (rules.py), their settings file, and the worker log's rotation."""

import json
import os
import sys

import pytest

from textpromptir_client import client
from textpromptir_client.rules import MAX_MEGAPIXELS, NAME_LENGTH, result_layer_name, size_refusal
from textpromptir_client.settings import HISTORY_LENGTH, Settings
from textpromptir_wire import discovery


def test_areas_up_to_the_limit_are_accepted_and_larger_ones_explained():
    assert MAX_MEGAPIXELS == 64
    assert size_refusal(8000, 8000) is None  # exactly 64 MP
    refusal = size_refusal(8000, 8001)
    assert refusal is not None and "8000 x 8001" in refusal and "up to 64 MP" in refusal and "Select a part" in refusal


def test_layer_names_keep_short_prompts_and_cut_long_ones_at_a_word_boundary_with_an_ellipsis():
    assert result_layer_name("remove the noise") == "Restored: remove the noise"
    long_prompt = "please remove the rain streaks and the haze from this old photo of the harbour at dusk"
    name = result_layer_name(long_prompt)
    assert name.startswith("Restored: please remove") and name.endswith("…")
    assert len(name.removeprefix("Restored: ")) <= NAME_LENGTH and len(result_layer_name("x" * 200)) == 10 + NAME_LENGTH
    assert " …" not in name  # trailing spaces are trimmed before the ellipsis


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", "", "\x00\xff"])
def test_a_broken_settings_file_gives_the_defaults(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    assert Settings.load(path) == Settings()


def test_unknown_keys_are_ignored_and_a_bad_device_falls_back_to_auto(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"python": "/venv/bin/python", "device": "tpu", "colour": "blue"}))
    settings = Settings.load(path)
    assert settings.python == "/venv/bin/python" and settings.device == "auto"
    assert not hasattr(settings, "colour")


def test_the_history_is_capped_deduplicated_and_survives_a_save(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"history": [f"prompt {i}" for i in range(50)] + [7, None]}))
    settings = Settings.load(path)
    assert settings.history == [f"prompt {i}" for i in range(HISTORY_LENGTH)]
    settings.remember("prompt 5")
    settings.remember("a new one")
    assert settings.history[:2] == ["a new one", "prompt 5"] and len(settings.history) == HISTORY_LENGTH
    assert settings.history.count("prompt 5") == 1
    settings.save(path)
    assert Settings.load(path) == settings


def test_settings_of_the_wrong_type_fall_back_to_their_defaults(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"history": 42, "python": ["a"], "idle_timeout": "soon", "weights": "w.safetensors"}))
    assert Settings.load(path) == Settings(weights="w.safetensors")
    path.write_text(json.dumps({"idle_timeout": 60}))
    assert Settings.load(path).idle_timeout == 60


def test_a_large_worker_log_is_rotated_when_a_worker_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTPROMPTIR_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(client, "LOG_LIMIT", 1000)
    log = discovery.log_path()
    log.write_text("old line\n" * 200)
    quitting_python = tmp_path / "python"  # exits at once: only the log's handling is under test
    quitting_python.write_text(f"#!{sys.executable}\nraise SystemExit(0)\n")
    quitting_python.chmod(0o755)
    client.start_worker(Settings(python=str(quitting_python))).wait(timeout=30)
    assert log.with_suffix(".log.old").read_text() == "old line\n" * 200
    assert log.stat().st_size == 0
    small = log.stat().st_size
    client.start_worker(Settings(python=str(quitting_python))).wait(timeout=30)
    assert log.is_file() and log.stat().st_size == small  # below the limit: appended to, not rotated
    assert os.listdir(tmp_path).count("worker.log.old") == 1
