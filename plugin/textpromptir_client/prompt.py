"""The prompt dialog as a program of its own, for hosts whose Python has no Qt (GIMP).

    <project python> -m textpromptir_client.prompt [--host-pid PID] [--subject TEXT]

Shows `PromptDialog` with live feedback from the worker (`PromptChecker`,
which starts the worker if none runs, tied to the host's pid) and the same
history as in Krita. On Restore it prints ``{"prompt": "..."}`` as one JSON
line on stdout and exits 0; Cancel exits 1 printing nothing; a failure (no
display, no Qt) exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

ACCEPTED, CANCELLED, FAILED = 0, 1, 2


def ask(host_pid: int | None, subject: str = "") -> str | None:
    """Run the dialog; the accepted prompt, or None if the user cancelled."""
    from .client import PromptChecker
    from .dialog import PromptDialog
    from .qt import QtWidgets
    from .settings import Settings

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("TextPromptIR")
    settings = Settings.load()
    checker = PromptChecker(settings, host_pid=host_pid)
    try:
        dialog = PromptDialog(settings, checker.understand, checker.device, subject=subject)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        accepted = dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted
        return dialog.prompt() if accepted else None
    finally:
        checker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textpromptir_client.prompt", description=__doc__.splitlines()[0])
    parser.add_argument("--host-pid", type=int, default=None, help="the host's pid: the worker lives as long as it")
    parser.add_argument("--subject", default="", help="what is restored, shown above the prompt")
    args = parser.parse_args(argv)
    try:
        prompt = ask(args.host_pid, args.subject)
    except Exception as error:  # the host shows this line to the user
        print(f"The prompt dialog could not be shown: {error}", file=sys.stderr)
        return FAILED
    if prompt is None:
        return CANCELLED
    print(json.dumps({"prompt": prompt}), flush=True)
    return ACCEPTED


if __name__ == "__main__":
    sys.exit(main())
