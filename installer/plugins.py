"""Put the plugins where the hosts look for them, enable them, and write the plugins' settings.

Standard library only. `python installer/plugins.py krita --resources DIR --kritarc FILE`
installs into one Krita profile; the one-command installer calls the same functions.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "plugin"
CLIENT = "textpromptir_client"
WIRE = "textpromptir_wire"  # the client speaks to the worker through it
KRITA_PLUGIN = "textpromptir_krita"
GIMP_PLUGIN = "textpromptir_gimp"
KRITA_BUNDLE = "bundled"  # inside the Krita plugin's package: the packages it shares with GIMP's
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def copy_package(source: Path, target: Path) -> None:
    """Replace `target` with a copy of `source` (an upgrade leaves no stale modules behind)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=_IGNORED)


def install_krita(resources: Path, kritarc: Path) -> list[Path]:
    """Install the Krita plugin into a Krita resource folder and enable it; return what was written."""
    written = lay_out_krita(resources / "pykrita")
    set_ini_value(kritarc, "python", f"enable_{KRITA_PLUGIN}", "true")
    return written


def lay_out_krita(pykrita: Path) -> list[Path]:
    """Write the plugin's .desktop file and its package into a pykrita folder; return both.

    The client and wire packages go inside the plugin's package (`bundled/`,
    which it puts on sys.path), as in the zip for Krita's importer: that
    importer extracts only the package that the .desktop file names.
    """
    pykrita.mkdir(parents=True, exist_ok=True)
    desktop = pykrita / f"{KRITA_PLUGIN}.desktop"
    shutil.copyfile(PLUGIN / "krita" / desktop.name, desktop)
    copy_package(PLUGIN / "krita" / KRITA_PLUGIN, pykrita / KRITA_PLUGIN)
    for shared in (CLIENT, WIRE):
        copy_package(PLUGIN / shared, pykrita / KRITA_PLUGIN / KRITA_BUNDLE / shared)
    return [desktop, pykrita / KRITA_PLUGIN]


def install_gimp(plug_ins_dir: Path) -> list[Path]:
    """Install the GIMP 3 plug-in into a GIMP plug-ins folder; return what was written.

    GIMP 3 runs `plug-ins/NAME/NAME.py` (it must be executable); the shared client
    and wire packages go inside that folder, where the plug-in looks for them. The user's
    GIMP 3 folder is ~/.config/GIMP/3.0/plug-ins on Linux,
    %APPDATA%/GIMP/3.0/plug-ins on Windows and
    ~/Library/Application Support/GIMP/3.0/plug-ins on macOS.
    """
    folder = plug_ins_dir / GIMP_PLUGIN
    copy_package(PLUGIN / "gimp" / GIMP_PLUGIN, folder)
    script = folder / f"{GIMP_PLUGIN}.py"
    script.chmod(script.stat().st_mode | 0o111)
    for shared in (CLIENT, WIRE):
        copy_package(PLUGIN / shared, folder / shared)
    return [script, folder / CLIENT, folder / WIRE]


def set_ini_value(path: Path, section: str, key: str, value: str) -> None:
    """Set one key of a KDE-style INI file, keeping every other line as it was.

    configparser would lowercase keys and rewrite the whole file, and
    kritarc holds all of the user's Krita settings.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    header = f"[{section}]"
    entry = f"{key}={value}"
    try:
        start = lines.index(header) + 1
    except ValueError:
        lines += ["", header, entry] if lines else [header, entry]
    else:
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        pattern = re.compile(rf"^{re.escape(key)}\s*=")
        found = next((i for i in range(start, end) if pattern.match(lines[i])), None)
        if found is None:
            lines.insert(start, entry)
        else:
            lines[found] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_settings(config_dir: Path, python: str, weights: str = "", device: str = "auto") -> Path:
    """Tell the plugins which Python runs the worker, with which weights and device (keeps the prompt history)."""
    path = config_dir / "settings.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = {}
    settings.update(python=python, weights=weights, device=device)
    config_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="host", required=True)
    krita = commands.add_parser("krita", help="install the Krita plugin into one Krita profile")
    krita.add_argument("--resources", type=Path, required=True, help="Krita's resource folder")
    krita.add_argument("--kritarc", type=Path, required=True)
    settings = commands.add_parser("settings", help="write the plugins' settings")
    settings.add_argument("--config-dir", type=Path, required=True)
    settings.add_argument("--python", default=sys.executable)
    settings.add_argument("--weights", default="")
    settings.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.host == "krita":
        for path in install_krita(args.resources, args.kritarc):
            print(f"installed {path}")
    else:
        print(f"wrote {write_settings(args.config_dir, args.python, args.weights, args.device)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
