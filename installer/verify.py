"""Check an installation end to end the way the plugins use it (run by the installer, inside the environment).

Starts the worker from the plugins' settings, restores the shipped noisy
sample through it, writes the result next to the repository's README, and
tells the worker to exit: the check must not leave a process behind.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image as Picture

from textpromptir_client.client import Image, WorkerError, connect
from textpromptir_client.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "samples" / "astronaut-noisy.png"
RESULT = REPO / "astronaut-restored.png"


def main() -> int:
    photo = np.asarray(Picture.open(SAMPLE).convert("RGBA"))
    height, width = photo.shape[:2]
    started = time.monotonic()
    try:
        with connect(Settings.load()) as session:
            try:
                answer = session.restore(Image(photo.tobytes(), width, height, "u8"), "remove the noise")
                device = session.device
            finally:
                with contextlib.suppress(WorkerError):  # already gone
                    session.shutdown()
    except WorkerError as error:
        print(error)
        return 1
    restored = np.frombuffer(answer.pixels, np.uint8).reshape(height, width, 4)
    change = np.abs(restored[..., :3].astype(np.int16) - photo[..., :3]).mean()
    if change < 1:
        print("The worker returned the sample unchanged: the installed weights are not trained. Reinstall.")
        return 1
    Picture.fromarray(restored[..., :3]).save(RESULT)
    seconds = time.monotonic() - started
    print(f"the worker restored {SAMPLE.name} on {device} in {seconds:.1f} s (start included) -> {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
