"""The prompt dialog as a program of its own, for hosts whose Python has no Qt (GIMP).

    <project python> -m textpromptir_client.prompt [--host-pid PID] [--subject TEXT]
        [--pixels FILE --width W --height H [--format f32] [--order RGBA] [--mask FILE]]

Shows `PromptDialog` with live feedback from the worker (`PromptChecker`,
which starts the worker if none runs, tied to the host's pid), the same
history and strength as in Krita, and, given the area's raw pixels (and its
selection mask) in files, the 1:1 preview. On Restore it prints
``{"prompt": "...", "strength": 0.6}`` as one JSON line on stdout and exits
0; Cancel exits 1 printing nothing; a failure (no display, no Qt) exits 2
with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import sys
from pathlib import Path

ACCEPTED, CANCELLED, FAILED = 0, 1, 2


def _mapped(path: str | None, stack: contextlib.ExitStack) -> mmap.mmap | None:
    if not path:
        return None
    with Path(path).open("rb") as file:
        return stack.enter_context(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))


def ask(host_pid: int | None, subject: str = "", area: argparse.Namespace | None = None) -> tuple[str, float] | None:
    """Run the dialog; the accepted prompt and strength, or None if the user cancelled."""
    from .client import PromptChecker, connect
    from .dialog import PromptDialog
    from .preview import RawArea
    from .qt import QtWidgets
    from .settings import Settings

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("TextPromptIR")
    settings = Settings.load()
    checker = PromptChecker(settings, host_pid=host_pid)
    with contextlib.ExitStack() as stack:
        stack.callback(checker.close)
        pixels = _mapped(area.pixels, stack) if area else None
        raw = None
        if pixels is not None:
            raw = RawArea(pixels, area.width, area.height, area.format, area.order, _mapped(area.mask, stack))
        dialog = PromptDialog(
            settings,
            checker.understand,
            checker.device,
            subject=subject,
            area=raw,
            open_session=lambda: connect(settings, host_pid),
        )
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        accepted = dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted
        return (dialog.prompt(), dialog.strength()) if accepted else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textpromptir_client.prompt", description=__doc__.splitlines()[0])
    parser.add_argument("--host-pid", type=int, default=None, help="the host's pid: the worker lives as long as it")
    parser.add_argument("--subject", default="", help="what is restored, shown above the prompt")
    parser.add_argument("--pixels", default=None, help="the area's raw pixels (4 samples per pixel), for the preview")
    parser.add_argument("--width", type=int, default=0)
    parser.add_argument("--height", type=int, default=0)
    parser.add_argument("--format", default="f32", help="u8, u16, f16 or f32")
    parser.add_argument("--order", default="RGBA", help="RGBA or BGRA")
    parser.add_argument("--mask", default=None, help="the selection over the area, one byte per pixel")
    args = parser.parse_args(argv)
    try:
        answer = ask(args.host_pid, args.subject, args if args.pixels else None)
    except Exception as error:  # the host shows this line to the user
        print(f"The prompt dialog could not be shown: {error}", file=sys.stderr)
        return FAILED
    if answer is None:
        return CANCELLED
    print(json.dumps({"prompt": answer[0], "strength": answer[1]}), flush=True)
    return ACCEPTED


if __name__ == "__main__":
    sys.exit(main())
