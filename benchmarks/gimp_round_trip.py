"""Round trip of a 2 MP layer through the GIMP plug-in inside the real GIMP 3.0, worker warm (a benchmark, not a test).

Needs the GIMP chroot (sudo bash tests/gimp_chroot.sh) and root or
password-less sudo. Starts the worker here (model loaded before GIMP runs),
then calls the plug-in's procedure from a gimp-console batch three times on
one 1632 x 1224 RGB 8-bit layer, each on a freshly opened image. Before and
after GIMP, it sends the same float pixels to the same worker from here
through the client. Prints the seconds of each GIMP call (procedure start
to the new layer in the image, as measured inside GIMP) and of the direct
calls, whose difference is what GIMP adds: the plug-in's start, reading the
layer through GEGL, writing the new layer. Run it on an idle machine:

    python benchmarks/gimp_round_trip.py [--weights PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from installer.plugins import write_settings  # noqa: E402
from textpromptir.engine.weights import SHIPPED_WEIGHTS  # noqa: E402
from textpromptir_client.client import Image, connect  # noqa: E402
from textpromptir_client.settings import Settings  # noqa: E402
from textpromptir_wire import discovery  # noqa: E402

from conftest import photo_like  # noqa: E402
from gimp_host import gimp_available, install_profile, run_gimp  # noqa: E402

WIDTH, HEIGHT = 1632, 1224
PROMPT = "remove the noise"
CALLS = ("first", "second", "third")


def direct_call(settings: Settings, rgba: np.ndarray) -> float:
    started = time.monotonic()
    with connect(settings) as session:
        session.restore(Image(rgba.tobytes(), WIDTH, HEIGHT, "f32"), PROMPT)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    args = parser.parse_args()
    if not gimp_available():
        print("The GIMP chroot is missing: run `sudo bash tests/gimp_chroot.sh` first.", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)
        photo = photo_like(HEIGHT, WIDTH)
        PILImage.fromarray(photo).save(folder / "layer.png")
        install_profile(folder)
        config, runtime = folder / "textpromptir-config", folder / "textpromptir-runtime"
        os.environ["TEXTPROMPTIR_CONFIG_DIR"], os.environ["TEXTPROMPTIR_RUNTIME_DIR"] = str(config), str(runtime)
        write_settings(config, sys.executable, str(args.weights), "cpu")
        settings = Settings(python=sys.executable, weights=str(args.weights), device="cpu", idle_timeout=300)
        started = time.monotonic()
        connect(settings).close()
        print(f"worker started and model loaded in {time.monotonic() - started:.1f} s")
        rgba = np.concatenate([photo / 255.0, np.ones((HEIGHT, WIDTH, 1))], axis=-1).astype(np.float32)
        direct = [direct_call(settings, rgba)]
        runs = [{"name": call, "document": str(folder / "layer.png"), "prompt": PROMPT} for call in CALLS]
        environment = {"TEXTPROMPTIR_CONFIG_DIR": str(config), "TEXTPROMPTIR_RUNTIME_DIR": str(runtime)}
        started = time.monotonic()
        records = run_gimp(folder, runs, environment)
        gimp_seconds = time.monotonic() - started
        direct.append(direct_call(settings, rgba))
        info = discovery.read_info()
        if info:
            os.kill(info.pid, 15)

    print(f"GIMP 3.0 round trip, {WIDTH} x {HEIGHT} RGB 8-bit ({WIDTH * HEIGHT / 1e6:.1f} MP), worker warm, on the CPU")
    print("| call | procedure start to new layer (s) |")
    print("|---|---|")
    for record in records:
        if "driver_error" in record or record.get("status") != "success":
            print(f"| {record['name']} | failed: {record.get('driver_error') or record.get('message')} |")
            continue
        print(f"| {record['name']} | {record['seconds']:.1f} |")
    print(f"the same f32 pixels sent to the worker without GIMP: {direct[0]:.1f} s before, {direct[1]:.1f} s after")
    print(f"whole gimp-console session (start, three calls, XCF saves, quit): {gimp_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
