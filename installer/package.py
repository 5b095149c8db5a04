"""Zip the plugins for installing by hand (standard library only).

    python installer/package.py [--out dist]    # or: textpromptir package-plugins

writes two files:

- `textpromptir-krita.zip` for Krita's Tools > Scripts > Import Python Plugin
  from File...: `textpromptir_krita.desktop` and the `textpromptir_krita`
  package at the top level. Krita's importer extracts only the package that
  the .desktop file names, so the client and wire packages travel inside it
  (`textpromptir_krita/bundled/`).
- `textpromptir-gimp.zip`: the `textpromptir_gimp` folder, to unpack into
  GIMP 3's plug-ins folder (Edit > Preferences > Folders > Plug-ins lists it).

Either plugin says what to run when the engine is not installed yet.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the installer package

from installer.plugins import install_gimp, lay_out_krita

KRITA_ZIP = "textpromptir-krita.zip"
GIMP_ZIP = "textpromptir-gimp.zip"
_SAME_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same sources give the same bytes


def package_plugins(out: Path) -> list[Path]:
    """Write the Krita and the GIMP zip into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="textpromptir-plugins-") as staging:
        krita, gimp = Path(staging) / "krita", Path(staging) / "gimp"
        lay_out_krita(krita)
        install_gimp(gimp)
        return [zip_folder(krita, out / KRITA_ZIP), zip_folder(gimp, out / GIMP_ZIP)]


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip what `folder` holds, with paths relative to it and each file's permissions (the GIMP script's x bit)."""
    temporary = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix() + ("/" if path.is_dir() else "")
            entry = zipfile.ZipInfo(name, _SAME_TIME)
            entry.external_attr = path.stat().st_mode << 16 | (0x10 if path.is_dir() else 0)  # 0x10: MS-DOS's folder
            if path.is_dir():
                archive.writestr(entry, b"")
            else:
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, path.read_bytes())
    temporary.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Zip the Krita and GIMP plugins for installing by hand.")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="the folder to write (default ./dist)")
    args = parser.parse_args(argv)
    for path in package_plugins(args.out):
        print(f"wrote {path}")
    print("Krita: Tools > Scripts > Import Python Plugin from File..., pick textpromptir-krita.zip, restart Krita.")
    print("GIMP 3: unpack textpromptir-gimp.zip into a folder of Edit > Preferences > Folders > Plug-ins; restart.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
