"""Where Krita and GIMP 3 keep their profiles on each system (standard library only).

Linux: native and Flatpak; macOS: Application Support; Windows: %APPDATA%,
with kritarc in %LOCALAPPDATA%. A host counts as present when its program or
its profile folder is found.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Host:
    name: str  # "Krita" or "GIMP 3"
    where: str  # a short description of the variant: "", "Flatpak"
    resources: Path  # Krita: resource folder; GIMP: the profile folder (…/GIMP/3.0)
    config: Path | None = None  # Krita: kritarc


def home() -> Path:
    return Path.home()


def system() -> str:
    """The system whose profile folders and PyTorch build apply: "Windows", "Darwin" or "Linux"."""
    return {"win32": "Windows", "darwin": "Darwin"}.get(sys.platform, "Linux")


def krita_hosts() -> list[Host]:
    """Krita profiles on this machine: native, Flatpak; AppImage uses the native folders."""
    found = []
    if system() == "Linux":
        data = Path(os.environ.get("XDG_DATA_HOME") or home() / ".local" / "share")
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config")
        if shutil.which("krita") or (data / "krita").is_dir() or (config / "kritarc").is_file():
            found.append(Host("Krita", "", data / "krita", config / "kritarc"))
        flatpak = home() / ".var" / "app" / "org.kde.krita"
        if flatpak.is_dir():
            found.append(Host("Krita", "Flatpak", flatpak / "data" / "krita", flatpak / "config" / "kritarc"))
    elif system() == "Darwin":
        resources = home() / "Library" / "Application Support" / "krita"
        if Path("/Applications/krita.app").exists() or resources.is_dir():
            found.append(Host("Krita", "", resources, home() / "Library" / "Preferences" / "kritarc"))
    elif system() == "Windows":
        resources = Path(os.environ.get("APPDATA", home())) / "krita"
        kritarc = Path(os.environ.get("LOCALAPPDATA", home())) / "kritarc"
        if resources.is_dir() or kritarc.is_file() or _windows_program("Krita (x64)", "Krita"):
            found.append(Host("Krita", "", resources, kritarc))
    return found


def gimp_hosts() -> list[Host]:
    """GIMP 3 profiles on this machine: native, Flatpak."""
    found = []
    if system() == "Linux":
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config")
        if shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0") or (config / "GIMP" / "3.0").is_dir():
            found.append(Host("GIMP 3", "", config / "GIMP" / "3.0"))
        flatpak = home() / ".var" / "app" / "org.gimp.GIMP"
        if flatpak.is_dir():
            found.append(Host("GIMP 3", "Flatpak", flatpak / "config" / "GIMP" / "3.0"))
    elif system() == "Darwin":
        profile = home() / "Library" / "Application Support" / "GIMP" / "3.0"
        if Path("/Applications/GIMP.app").exists() or profile.is_dir():
            found.append(Host("GIMP 3", "", profile))
    elif system() == "Windows":
        profile = Path(os.environ.get("APPDATA", home())) / "GIMP" / "3.0"
        if profile.is_dir() or _windows_program("GIMP 3"):
            found.append(Host("GIMP 3", "", profile))
    return found


def _windows_program(*names: str) -> bool:
    roots = [os.environ.get("PROGRAMFILES", r"C:\Program Files"), os.environ.get("PROGRAMFILES(X86)", "")]
    return any(root and (Path(root) / name).is_dir() for root in roots for name in names)
