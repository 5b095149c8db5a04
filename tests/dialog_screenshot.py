"""The README's picture of the prompt dialog: a noisy photo, its preview, under Xvfb (not a test).

    python tests/dialog_screenshot.py data/photos/val/scikit-image/skimage__data__coffee.png \
        resources/readme/dialog.png [--click 40 30]

Adds Gaussian noise (sigma 20) to the photo, opens the dialog (PyQt6, on an
Xvfb display of its own) with the shipped weights in a worker of its own,
types a prompt, clicks the thumbnail, waits for that preview and saves the
dialog as a 256-colour PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "plugin")]

from krita_host import virtual_screen  # noqa: E402

PROMPT = "this photo is grainy, clean it up"


def noisy_area(photo: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(photo).convert("RGB")).astype(np.float32)
    noisy = np.clip(rgb + np.random.default_rng(1).normal(0, 20, rgb.shape), 0, 255).round().astype(np.uint8)
    return np.concatenate([noisy, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=-1)


def shoot(pixels: np.ndarray, output: Path, click: tuple[int, int]) -> None:
    from textpromptir_client.client import PromptChecker, connect
    from textpromptir_client.dialog import PromptDialog
    from textpromptir_client.preview import RawArea
    from textpromptir_client.qt import QtWidgets
    from textpromptir_client.settings import Settings

    app = QtWidgets.QApplication([])
    settings = Settings(python=sys.executable, device="cpu", history=["remove the noise"])
    checker = PromptChecker(settings, host_pid=os.getpid())
    height, width = pixels.shape[:2]
    dialog = PromptDialog(
        settings,
        checker.understand,
        checker.device,
        subject="Layer “Background”",
        area=RawArea(pixels.tobytes(), width, height, "u8"),
        open_session=lambda: connect(settings),
    )
    dialog.show()
    dialog.field.setEditText(PROMPT)
    first = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
        if dialog.shot is not None and first is None:
            first = dialog.shot
            dialog.thumbnail.clicked.emit(*click)
        if first is not None and dialog.shot is not first and dialog.shot.generation == dialog.runner.generation:
            break
    app.processEvents()
    picture = dialog.grab()
    with tempfile.TemporaryDirectory() as folder:
        picture.save(str(Path(folder) / "dialog.png"))
        Image.open(Path(folder) / "dialog.png").convert("RGB").quantize(256).save(output, optimize=True)
    checker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--click", type=int, nargs=2, default=(40, 30), help="where to click on the thumbnail")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runtime, virtual_screen() as display:
        os.environ.update(
            DISPLAY=display, QT_QPA_PLATFORM="xcb", TEXTPROMPTIR_RUNTIME_DIR=runtime, TEXTPROMPTIR_CONFIG_DIR=runtime
        )
        shoot(noisy_area(args.photo), args.output, tuple(args.click))
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
