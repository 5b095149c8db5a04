"""The dialog's preview latency through the worker, cold and warm (a benchmark, not a test).

Starts a fresh worker (`textpromptir serve`, in a runtime folder of its own)
with the given weights and asks it for previews exactly as the prompt dialog
does (textpromptir_client.preview: a window around the centre, one tile of
the full run, a 320 px crop), on a 2 MP RGBA u8 area (or --photo):

- cold: from starting the worker to the first preview's answer (loading
  torch and the model, then the first tile);
- warm: each later preview's round trip, at another centre or strength, and
  the time from the end of typing to the preview on screen: the dialog's
  pause before it asks (FEEDBACK_DELAY_MS), the prompt's understanding, the
  preview; and the CPU seconds the worker spent on it (Linux: from
  /proc), which a busy machine does not inflate as it does the wall time:
  on an idle machine a preview takes about that divided by the threads used
  (at best) up to that (no parallel speed-up);
- strength: the same preview again at another strength (the worker keeps
  the restored tile and only blends again).

    python benchmarks/preview_latency.py [--weights PATH] [--runs 8] [--photo FILE] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "plugin")]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from textpromptir.engine.weights import SHIPPED_WEIGHTS  # noqa: E402

from conftest import photo_like  # noqa: E402

WIDTH, HEIGHT = 1632, 1224
PROMPTS = ("remove the noise", "slightly reduce the noise", "remove the haze", "brighten this night shot")


def area_pixels(photo: Path | None) -> np.ndarray:
    rgb = np.asarray(Image.open(photo).convert("RGB")) if photo else photo_like(HEIGHT, WIDTH)
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=-1)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux), or NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    parser.add_argument("--runs", type=int, default=8, help="warm previews")
    parser.add_argument("--photo", type=Path, default=None, help="a photo instead of a synthetic 2 MP one")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the worker (the target: 2 cores)")
    args = parser.parse_args()
    runtime = tempfile.mkdtemp(prefix="tpir-preview-")
    os.environ["TEXTPROMPTIR_RUNTIME_DIR"] = runtime
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the worker inherits it

    from textpromptir_client.client import connect
    from textpromptir_client.dialog import FEEDBACK_DELAY_MS
    from textpromptir_client.preview import RawArea, preview_request
    from textpromptir_client.settings import Settings

    pixels = area_pixels(args.photo)
    height, width = pixels.shape[:2]
    area = RawArea(pixels.tobytes(), width, height, "u8")
    settings = Settings(python=sys.executable, weights=str(args.weights), device="cpu", idle_timeout=60)
    print(f"area {width} x {height} RGBA u8, weights {args.weights.name}, {args.threads} threads")

    started = time.perf_counter()
    session = connect(settings, host_pid=os.getpid())
    connected = time.perf_counter()
    try:
        window, request = preview_request(area, PROMPTS[0], (width // 2, height // 2), None)
        session.preview(window, request)
        cold = time.perf_counter() - started
        print(f"cold: worker start {connected - started:.2f} s, first preview {cold:.2f} s after the start")
        round_trips, after_typing, cpu, strength_only = [], [], [], []
        rng = np.random.default_rng(0)
        for run in range(args.runs):
            prompt = PROMPTS[run % len(PROMPTS)]
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            typed = time.perf_counter()
            session.understand(prompt)
            asked, used = time.perf_counter(), cpu_seconds(session.welcome.pid)
            window, request = preview_request(area, prompt, centre, float(rng.uniform(0.3, 1.0)))
            x, y, crop = session.preview(window, request)
            answered = time.perf_counter()
            round_trips.append(answered - asked)
            after_typing.append(FEEDBACK_DELAY_MS / 1000 + answered - typed)
            cpu.append(cpu_seconds(session.welcome.pid) - used)
            window, request = preview_request(area, prompt, centre, float(rng.uniform(0.3, 1.0)))
            moved = time.perf_counter()
            session.preview(window, request)
            strength_only.append(time.perf_counter() - moved)
            print(
                f"  warm {run + 1}: {prompt!r} crop {crop.width}x{crop.height} at {x},{y}: "
                f"{answered - asked:.2f} s, worker CPU {cpu[-1]:.2f} s; another strength {strength_only[-1]:.2f} s"
            )
        print(
            f"warm: preview round trip median {statistics.median(round_trips):.2f} s "
            f"(max {max(round_trips):.2f}); from the end of typing to the preview "
            f"median {statistics.median(after_typing):.2f} s (max {max(after_typing):.2f}); "
            f"worker CPU per preview median {statistics.median(cpu):.2f} s; "
            f"another strength median {statistics.median(strength_only):.2f} s"
        )
    finally:
        session.shutdown()
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
