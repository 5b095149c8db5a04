"""Run batch scripts in the real GIMP 3.0 of a Debian trixie chroot (used by test_gimp.py and the benchmark).

The chroot (built by tests/gimp_chroot.sh) shares the host's network and
process ids, so the plug-in inside reaches a worker that runs on the host
over loopback, and the worker sees GIMP's pid. A folder of the host is
bind-mounted into the chroot at the same path: it holds GIMP's profile (with
the plug-in installed), the plugins' settings and the worker's runtime
folder, the scenario plan and the results. All mounts live in a private
mount namespace (unshare), so they vanish with GIMP, however it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from installer.plugins import install_gimp

CHROOT = Path(os.environ.get("TEXTPROMPTIR_GIMP_CHROOT", "/var/cache/textpromptir-gimp-chroot"))
BUILDER = Path(__file__).resolve().parent / "gimp_chroot.sh"
BATCH = Path(__file__).resolve().parent / "gimp_batch.py"
GIMP_CONSOLE = "/usr/bin/gimp-console-3.0"


def _as_root() -> list[str]:
    """How to run a command as root: directly, or through password-less sudo."""
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


def gimp_available() -> bool:
    """Whether the chroot is built (its builder writes the marker last) and this process may enter it."""
    if not (CHROOT / ".textpromptir-gimp-chroot").is_file() or not (CHROOT / GIMP_CONSOLE.lstrip("/")).is_file():
        return False
    if shutil.which("unshare") is None:
        return False
    return os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0


def gimp_required() -> bool:
    """CI (and .ci/run) must not skip the GIMP tests: a missing chroot is then a failure."""
    return any(os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", "TEXTPROMPTIR_REQUIRE_GIMP"))


def install_profile(folder: Path) -> Path:
    """A fresh GIMP profile under `folder` with the plug-in installed; returns GIMP's config folder."""
    config = folder / "config"
    install_gimp(config / "GIMP" / "3.0" / "plug-ins")
    return config


def fake_prompt_program(folder: Path) -> Path:
    """A stand-in for the project's Python that answers the prompt dialog from files the batch script writes.

    GIMP's plug-in runs `<settings.python> -m textpromptir_client.prompt ...`; inside the chroot the
    host's venv cannot run, so this shell script records its arguments, prints `prompt-answer.txt`
    and exits with the code in `prompt-exit.txt`.
    """
    program = folder / "fake-python"
    program.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{folder}/prompt-args.txt"\n'
        f'cat "{folder}/prompt-answer.txt" 2>/dev/null\n'
        f'exit "$(cat "{folder}/prompt-exit.txt" 2>/dev/null || echo 3)"\n'
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return program


def run_gimp(
    folder: Path, scenarios: list[dict], environment: dict[str, str], timeout: float = 600, name: str = "gimp"
) -> list[dict]:
    """Run tests/gimp_batch.py on `scenarios` in gimp-console inside the chroot; return its records.

    `folder` (bind-mounted at the same path) must hold the profile from install_profile; `environment`
    adds variables (the plugins' config and runtime folders) to a clean environment for GIMP.
    """
    out = folder / f"{name}-out"
    out.mkdir(parents=True, exist_ok=True)
    plan = folder / f"{name}-scenarios.json"
    plan.write_text(json.dumps({"out": str(out), "scenarios": scenarios}))
    home = folder / "home"
    home.mkdir(exist_ok=True)
    inside = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_CACHE_HOME": str(folder / "cache"),
        "XDG_RUNTIME_DIR": str(folder / "xdg-runtime"),
        "LANG": "C.UTF-8",
        "TEXTPROMPTIR_GIMP_SCENARIOS": str(plan),
        **environment,
    }
    (folder / "xdg-runtime").mkdir(mode=0o700, exist_ok=True)
    # Mounts made inside `unshare --mount` are private to it and disappear when GIMP exits.
    script = (
        'set -e; root="$1"; shared="$2"; user="$3"; shift 3\n'
        'mount -t proc proc "$root/proc"\n'
        'mount --bind /dev "$root/dev"\n'
        'mount --bind /dev/pts "$root/dev/pts"\n'
        'mount -t tmpfs tmpfs "$root/tmp"\n'
        'mkdir -p "$root$shared"\n'
        'mount --bind "$shared" "$root$shared"\n'
        'exec chroot --userspec="$user" "$root" /usr/bin/env -i "$@"\n'
    )
    command = [*_as_root(), "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "gimp-chroot"]
    command += [str(CHROOT), str(folder), f"{os.getuid()}:{os.getgid()}"]
    command += [f"{key}={value}" for key, value in inside.items()]
    command += [GIMP_CONSOLE, "-i", "--quit", "--batch-interpreter", "python-fu-eval", "-b", "-"]
    log_path = folder / f"{name}.log"
    with open(BATCH, "rb") as batch, open(log_path, "wb") as log:
        gimp = subprocess.Popen(command, stdin=batch, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            gimp.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(gimp.pid, signal.SIGKILL)  # GIMP and its plug-ins, started in their own session
            gimp.wait()
    log_text = log_path.read_text(errors="replace")
    crash = plan.with_name(plan.name + ".crash.txt")
    if crash.exists():
        raise AssertionError(f"the GIMP batch script failed:\n{crash.read_text()}\nGIMP's log:\n{log_text[-3000:]}")
    if not (out / "done").exists():
        raise AssertionError(f"GIMP did not finish the scenarios; its log ends with:\n{log_text[-3000:]}")
    return json.loads((out / "results.json").read_text())
