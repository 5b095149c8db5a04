"""Finding the worker: the runtime folder, `worker.json` with its port and token, and process checks.

The worker writes a fresh secret token, readable by this user only, into
`worker.json` in the runtime folder; a client reads it there and proves
that it may talk to the worker by sending it back in `hello`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

TOKEN_BYTES = 32


@dataclass(frozen=True)
class WorkerInfo:
    """What a running worker publishes: where it listens, its token, its process and version."""

    port: int
    token: str
    pid: int
    version: str = ""


def user_folder(override: str, windows: tuple[str, str], macos: str, xdg: tuple[str, str]) -> Path:
    """A folder of ours for this user: the `override` variable if set, else the platform's place.

    `windows` and `xdg` name an environment variable and the folder below
    the home to use when it is unset; `macos` is a folder below the home.
    """
    if os.environ.get(override):
        return Path(os.environ[override])
    variable, fallback = windows if sys.platform == "win32" else xdg
    if sys.platform == "darwin":
        return Path.home() / macos / "textpromptir"
    return Path(os.environ.get(variable) or Path.home() / fallback) / "textpromptir"


def runtime_dir() -> Path:
    """Where the worker publishes its port and token (and writes its log), private to this user."""
    return user_folder(
        "TEXTPROMPTIR_RUNTIME_DIR", ("LOCALAPPDATA", "AppData/Local"), "Library/Caches", ("XDG_CACHE_HOME", ".cache")
    )


def info_path() -> Path:
    return runtime_dir() / "worker.json"


def log_path() -> Path:
    return runtime_dir() / "worker.log"


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def read_info(path: Path | None = None) -> WorkerInfo | None:
    """The running worker's port, token, pid and version, or None when there is none (or it is unreadable)."""
    try:
        saved = json.loads((path or info_path()).read_text(encoding="utf-8"))
        info = WorkerInfo(int(saved["port"]), str(saved["token"]), int(saved["pid"]), str(saved.get("version", "")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return info


def write_info(info: WorkerInfo, path: Path | None = None) -> None:
    write_private(path or info_path(), json.dumps(asdict(info)))


def write_private(path: Path, text: str) -> None:
    """Write a file that only this user can read, atomically (readers never see half of it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (used to notice that a host or the worker died)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        exit_code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(exit_code))
        kernel32.CloseHandle(handle)
        return exit_code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
