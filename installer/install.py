"""The one-command installer for Krita and GIMP users (standard library only).

    python3 installer/install.py              # install or repair, then verify
    python3 installer/install.py --uninstall  # remove exactly what it added

Steps, each safe to repeat: check Python and disk space; create (or reuse)
the project's virtual environment; install the right PyTorch for this machine
(CUDA with an NVIDIA driver, the CPU build otherwise, MPS on Apple silicon),
this package and its text encoder; copy the plugins into every Krita and
GIMP 3 profile found and enable them; write the plugins' settings; start the
worker and restore the shipped sample through it. A manifest in the
settings folder records what was added and whether the last run finished, so
an interrupted install is repaired by running the installer again and
`--uninstall` removes exactly that.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# Run as a script with any Python: make the installer's and the plugins' modules importable.
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "plugin")]

from installer.environment import (  # noqa: E402
    InstallError,
    check_disk_space,
    install_packages,
    run,
    say,
    venv_python,
)
from installer.hosts import Host, gimp_hosts, krita_hosts  # noqa: E402
from installer.plugins import GIMP_PLUGIN, KRITA_PLUGIN, REPO, install_gimp, install_krita, write_settings  # noqa: E402
from textpromptir_client.settings import config_dir  # noqa: E402
from textpromptir_wire import discovery  # noqa: E402

MANIFEST = "install.json"


# --- what is on this machine -------------------------------------------------


def check_python() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 (the installer may be started by an old Python)
        raise InstallError(
            f"TextPromptIR needs Python 3.10 or newer; this is {platform.python_version()}. Install a newer "
            "Python (python.org, or your package manager) and run the installer with it."
        )


# --- the manifest: what this installer added, and whether it finished ---------


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("paths", [])
        self.data.setdefault("new_folders", [])  # folders that did not exist: removed again if left empty
        self.data.setdefault("new_files", [])  # settings files such as kritarc that we created
        self.data.setdefault("ini_keys", [])

    @property
    def complete(self) -> bool:
        return bool(self.data.get("complete"))

    def start(self, venv: Path) -> None:
        self.data.update(complete=False, venv=str(venv))
        self.save()

    def added_path(self, path: Path) -> None:
        if str(path) not in self.data["paths"]:
            self.data["paths"].append(str(path))
        self.save()

    def will_create(self, path: Path, is_folder: bool = True) -> None:
        """Note `path` and its missing parent folders before they are made, so that uninstalling removes them."""
        missing = [path] if not path.exists() else []
        missing += [parent for parent in path.parents if not parent.exists()]
        for item in reversed(missing):  # outermost first
            kind = "new_folders" if is_folder or item != path else "new_files"
            if str(item) not in self.data[kind]:
                self.data[kind].append(str(item))
        self.save()

    def added_ini_key(self, file: Path, section: str, key: str) -> None:
        entry = [str(file), section, key]
        if entry not in self.data["ini_keys"]:
            self.data["ini_keys"].append(entry)
        self.save()

    def finish(self, version: str) -> None:
        self.data.update(complete=True, version=version)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2), encoding="utf-8")


# --- steps ---------------------------------------------------------------------


def create_venv(venv: Path, manifest: Manifest) -> Path:
    python = venv_python(venv)
    if python.exists():
        say(f"Using the environment in {venv}")
        return python
    check_disk_space(venv)
    say(f"Creating the environment in {venv}")
    manifest.added_path(venv)  # recorded first: an interrupted creation is removed by --uninstall too
    run([sys.executable, "-m", "venv", str(venv)], "Creating the virtual environment")
    return python


def install_into_hosts(manifest: Manifest) -> list[str]:
    """Copy the plugins into every host profile found; return lines for the summary."""
    done = []
    for host in krita_hosts():
        manifest.will_create(host.resources / "pykrita")
        manifest.will_create(host.config, is_folder=False)
        try:
            for path in install_krita(host.resources, host.config):
                manifest.added_path(path)
        except OSError as error:
            raise _not_writable(host, error) from error
        manifest.added_ini_key(host.config, "python", f"enable_{KRITA_PLUGIN}")
        done.append(f"Krita{_variant(host)}: plugin in {host.resources / 'pykrita'}, enabled in {host.config}")
    for host in gimp_hosts():
        manifest.will_create(host.resources / "plug-ins")
        try:
            install_gimp(host.resources / "plug-ins")
            manifest.added_path(host.resources / "plug-ins" / GIMP_PLUGIN)  # the folder holds all of it
        except OSError as error:
            raise _not_writable(host, error) from error
        done.append(f"GIMP 3{_variant(host)}: plug-in in {host.resources / 'plug-ins'}")
    return done


def _variant(host: Host) -> str:
    return f" ({host.where})" if host.where else ""


def _not_writable(host: Host, error: OSError) -> InstallError:
    return InstallError(
        f"Cannot write to {error.filename} ({host.name}{_variant(host)}: {error.strerror}). Check that it is a "
        "folder that belongs to you (`ls -ld` it) and that the host is closed, then run the installer again."
    )


def verify(python: Path) -> str:
    """Start the worker as the plugins do and restore the shipped sample through it."""
    completed = subprocess.run(
        [str(python), str(REPO / "installer" / "verify.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise InstallError(f"The installation does not work yet:\n{completed.stdout.strip()}")
    return completed.stdout.strip()


def stop_worker() -> None:
    """Stop a running worker, so that the next call starts one with the code just installed."""
    info = discovery.read_info()
    if info and discovery.process_alive(info.pid):
        with contextlib.suppress(OSError):
            os.kill(info.pid, signal.SIGTERM)


def install(venv: Path, dev: bool, check: bool) -> None:
    check_python()
    manifest = Manifest(config_dir() / MANIFEST)
    if manifest.data.get("venv") and not manifest.complete:
        say("The last installation did not finish; repairing it.")
    manifest.will_create(config_dir())  # before the manifest itself is written there
    manifest.start(venv)
    stop_worker()
    python = create_venv(venv, manifest)
    install_packages(python, dev)
    hosts = install_into_hosts(manifest)
    manifest.will_create(discovery.runtime_dir())  # the worker's port, token and log
    settings = write_settings(config_dir(), str(python))
    manifest.added_path(settings)
    if check:
        checked = verify(python)
        manifest.added_path(REPO / "astronaut-restored.png")
    else:
        checked = "(verification skipped)"
    manifest.finish(_project_version())
    say("")
    say("TextPromptIR is installed.")
    say(f"  environment: {venv}")
    say(f"  settings:    {settings}")
    for line in hosts:
        say(f"  {line}")
    say(f"  check:       {checked}")
    say("")
    if hosts:
        say("Next: restart Krita / GIMP, then Filter > Restore with Text Prompt... (GIMP: Filters > Enhance).")
    else:
        say("Neither Krita nor GIMP 3 was found, so only the command line was installed:")
    say(f'  {venv_python(venv).parent / "textpromptir"} restore photo.jpg -p "remove the noise"')


def _project_version() -> str:
    for line in (REPO / "textpromptir" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    return "unknown"


def uninstall() -> None:
    manifest = Manifest(config_dir() / MANIFEST)
    by_hand = remove_plugins_installed_by_hand()
    if not manifest.path.exists():
        if by_hand:
            say("TextPromptIR's plugins are uninstalled.")
        else:
            say("TextPromptIR is not installed for this user (no manifest, no plugins); nothing to remove.")
        return
    stop_worker()
    for file, section, key in manifest.data["ini_keys"]:
        remove_ini_value(Path(file), section, key)
    for path in map(Path, reversed(manifest.data["paths"])):
        remove_path(path)
    for leftover in (discovery.info_path(), discovery.log_path(), discovery.log_path().with_suffix(".log.old")):
        if leftover.exists():
            leftover.unlink()
    for file in map(Path, manifest.data["new_files"]):
        if file.is_file() and not file.read_text(encoding="utf-8", errors="replace").replace("[python]", "").strip():
            file.unlink()  # it held nothing but our setting
    manifest.path.unlink()
    for folder in map(Path, reversed(manifest.data["new_folders"])):  # innermost first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    say("TextPromptIR is uninstalled.")


def remove_plugins_installed_by_hand() -> bool:
    """Remove the plugins that the zips put into the hosts' profiles (`textpromptir package-plugins`).

    Krita's importer extracts the .desktop file and the plugin's package into
    pykrita and, when the user agrees, enables it in kritarc; GIMP's zip is
    unpacked into a plug-ins folder (only the profile's own is looked at).
    """
    removed = False
    for host in krita_hosts():
        pykrita = host.resources / "pykrita"
        for path in (pykrita / f"{KRITA_PLUGIN}.desktop", pykrita / KRITA_PLUGIN):
            removed |= remove_path(path)
        if host.config is not None:
            remove_ini_value(host.config, "python", f"enable_{KRITA_PLUGIN}")
    for host in gimp_hosts():
        removed |= remove_path(host.resources / "plug-ins" / GIMP_PLUGIN)
    return removed


def remove_path(path: Path) -> bool:
    """Remove a file or a folder with all it holds; say so. False if there was nothing to remove."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return False
    say(f"removed {path}")
    return True


def remove_ini_value(path: Path, section: str, key: str) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    current = None
    kept = []
    for line in lines:
        if line.startswith("["):
            current = line.strip()[1:-1]
        if current == section and line.split("=", 1)[0].strip() == key:
            continue
        kept.append(line)
    if len(kept) < len(lines):  # otherwise the user's file stays as it is, byte for byte
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install TextPromptIR for Krita and GIMP users.")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="the environment to create or reuse")
    parser.add_argument("--dev", action="store_true", help="also install the test and lint tools")
    parser.add_argument("--no-check", action="store_true", help="skip the final end-to-end check")
    parser.add_argument("--uninstall", action="store_true", help="remove what the installer added")
    args = parser.parse_args(argv)
    try:
        if args.uninstall:
            uninstall()
        else:
            install(args.venv.resolve(), args.dev, not args.no_check)
    except InstallError as error:
        print(f"\nTextPromptIR installer: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; run the installer again to finish (it repairs what was left half done).", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
