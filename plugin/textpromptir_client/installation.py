"""Whether the engine the plugins need is installed, and the one command that installs it.

A plugin installed by hand (Krita's zip importer, GIMP's plug-ins folder)
has no engine behind it until the installer ran: it checks this first and
tells the user what to run, instead of failing on the first restoration.
"""

from __future__ import annotations

import os
import subprocess
import sys

from textpromptir_wire import discovery

from .client import project_environment
from .settings import Settings

PROBE_TIMEOUT = 30.0  # seconds: a cold disk may take a while to start the project's Python
# Asks the project's Python whether the engine's package is there, without importing it (no torch loaded).
_PROBE = "import importlib.util, sys; sys.exit(importlib.util.find_spec('textpromptir') is None)"


def install_command() -> str:
    """The installer's command for this system, as typed in the TextPromptIR folder."""
    if sys.platform == "win32":
        return r".\installer\setup.cmd"
    return "bash installer/setup.sh"


def missing_engine(settings: Settings) -> str:
    """A message saying why the engine cannot run and what to run; "" when the settings' Python has it."""
    if _worker_running():
        return ""
    python = settings.python
    if not python:
        why = "no Python environment has been set up for it"
    elif not os.path.isfile(python):
        why = f"the Python of its environment was not found ({python})"
    elif _has_engine(python):
        return ""
    else:
        why = f"the Python of its environment ({python}) does not have the textpromptir package"
    return (
        f"The TextPromptIR engine is not installed: {why}. In the TextPromptIR folder (the one that holds "
        f"installer/), run:\n\n{install_command()}\n\nthen try again."
    )


def _worker_running() -> bool:
    info = discovery.read_info()
    return info is not None and discovery.process_alive(info.pid)


def _has_engine(python: str) -> bool:
    no_console = {"creationflags": subprocess.CREATE_NO_WINDOW} if sys.platform == "win32" else {}
    try:
        probe = subprocess.run(
            [python, "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=project_environment(),  # without the host's own Python settings
            cwd=os.path.dirname(python),  # not the host's folder: a checkout there would answer for the environment
            timeout=PROBE_TIMEOUT,
            check=False,
            **no_console,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0
