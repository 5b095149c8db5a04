"""The plugins' settings: which Python runs the worker, with which weights and device, and the prompt history.

The installer writes them once; the dialog updates the history and the
device. One JSON file per user, outside the hosts' folders, so Krita and
GIMP share it and a plugin upgrade keeps it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from textpromptir_wire.discovery import user_folder

HISTORY_LENGTH = 20
DEVICES = ("auto", "cpu", "cuda", "mps")


def config_dir() -> Path:
    """Where the settings (and the installer's manifest) live."""
    return user_folder(
        "TEXTPROMPTIR_CONFIG_DIR",
        ("APPDATA", "AppData/Roaming"),
        "Library/Application Support",
        ("XDG_CONFIG_HOME", ".config"),
    )


@dataclass
class Settings:
    python: str = ""  # the interpreter of the project's virtual environment (set by the installer)
    weights: str = ""  # empty: the shipped weights
    device: str = "auto"
    idle_timeout: float = 900.0
    history: list[str] = field(default_factory=list)
    strength: int = 100  # percent, as the artist last set it in the dialog

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The saved settings; defaults for anything missing or unreadable (a broken file must not block the user)."""
        try:
            saved = json.loads((path or settings_path()).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        settings = cls(**_well_typed(saved, cls()) if isinstance(saved, dict) else {})
        if settings.device not in DEVICES:
            settings.device = "auto"
        settings.history = [entry for entry in settings.history if isinstance(entry, str)][:HISTORY_LENGTH]
        settings.strength = min(max(settings.strength, 0), 100)
        return settings

    def save(self, path: Path | None = None) -> None:
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(temporary, path)

    def remember(self, prompt: str) -> None:
        """Put a prompt first in the history (once)."""
        self.history = [prompt, *[entry for entry in self.history if entry != prompt][: HISTORY_LENGTH - 1]]


def _well_typed(saved: dict, defaults: Settings) -> dict:
    """The saved values of known settings whose type is the default's (a number for a float); others are dropped."""
    kept = {}
    for item in fields(defaults):
        value, default = saved.get(item.name), getattr(defaults, item.name)
        expected = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, expected) and not isinstance(value, bool):
            kept[item.name] = value
    return kept


def settings_path() -> Path:
    return config_dir() / "settings.json"
