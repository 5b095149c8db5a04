"""Run scenarios in a real Krita under Xvfb with a throwaway profile (used by test_krita.py and the benchmark)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from installer.plugins import install_krita, set_ini_value, write_settings

DRIVER = Path(__file__).resolve().parent / "krita"
DRIVER_NAME = "textpromptir_test_driver"


def krita_available() -> bool:
    return shutil.which("krita") is not None and shutil.which("Xvfb") is not None


@contextlib.contextmanager
def virtual_screen() -> Iterator[str]:
    """An Xvfb display of its own (Xvfb picks a free number and tells it through a pipe)."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        if not number:
            raise AssertionError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def run_krita(folder: Path, scenarios: list[dict], python: str, weights: str, timeout: float = 900) -> list[dict]:
    """Install the plugin and the driver into a fresh profile under `folder`, run Krita, return the records."""
    data, config = folder / "data", folder / "config"
    install_krita(data / "krita", config / "kritarc")
    write_settings(config / "textpromptir", python, weights, "cpu")
    environment = {
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(config),
        "TEXTPROMPTIR_CONFIG_DIR": str(config / "textpromptir"),
        "TEXTPROMPTIR_RUNTIME_DIR": str(folder / "runtime"),
    }
    return run_scenarios(folder, data / "krita", config / "kritarc", scenarios, environment, timeout)


def without_virtualenv(environment: dict) -> dict:
    """The environment without an activated virtualenv.

    With the venv's python first on PATH, Krita's embedded Python takes the
    venv as its prefix, finds no PyQt5, and Krita waits forever without its
    scripting. The plugin finds the worker's interpreter in its own settings.
    """
    venv = environment.get("VIRTUAL_ENV")
    if not venv:
        return environment
    path = [entry for entry in environment.get("PATH", "").split(os.pathsep) if not entry.startswith(venv)]
    cleaned = {name: value for name, value in environment.items() if name != "VIRTUAL_ENV"}
    return {**cleaned, "PATH": os.pathsep.join(path)}


def run_scenarios(
    folder: Path, resources: Path, kritarc: Path, scenarios: list[dict], environment: dict, timeout: float = 900
) -> list[dict]:
    """Add the driver to a Krita profile that has the plugin, run Krita on `scenarios`, return the records."""
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    pykrita = resources / "pykrita"
    shutil.copyfile(DRIVER / f"{DRIVER_NAME}.desktop", pykrita / f"{DRIVER_NAME}.desktop")
    shutil.copytree(DRIVER / DRIVER_NAME, pykrita / DRIVER_NAME, dirs_exist_ok=True)
    set_ini_value(kritarc, "python", f"enable_{DRIVER_NAME}", "true")
    plan = folder / "scenarios.json"
    plan.write_text(json.dumps({"out": str(out), "scenarios": scenarios}))
    environment = {**os.environ, **environment, "TEXTPROMPTIR_KRITA_SCENARIOS": str(plan)}
    environment.pop("QT_QPA_PLATFORM", None)  # Krita refuses offscreen; it gets Xvfb
    environment = without_virtualenv(environment)
    # A private temp folder: a Krita killed earlier leaves its single-instance
    # socket in /tmp, and a new Krita would hand itself to the dead one and quit.
    # Short path on purpose: the socket lives there and socket paths are limited.
    with (
        open(folder / "krita.log", "wb") as log,
        virtual_screen() as display,
        tempfile.TemporaryDirectory(prefix="tpir-krita-") as private_tmp,
    ):
        subprocess.run(
            ["krita", "--nosplash"],
            env={**environment, "DISPLAY": display, "TMPDIR": private_tmp},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    crash = out / "driver-crash.txt"
    if crash.exists():
        raise AssertionError(f"the Krita test driver crashed:\n{crash.read_text()}")
    if not (out / "done").exists():
        tail = (folder / "krita.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"Krita did not finish the scenarios; its log ends with:\n{tail}")
    return json.loads((out / "results.json").read_text())
