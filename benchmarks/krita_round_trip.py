"""Round trip of a 2 MP layer inside the real Krita, worker cold and warm (a benchmark, not a test).

Runs Krita under Xvfb with the plugin and the test driver (tests/krita), on
one 1632 x 1224 RGBA U8 layer, twice in the same Krita session: first with no
worker running (its start, model load and first restore count), then again.
Prints, per run, the seconds from the menu action to the new layer and from
the click on Restore to the new layer. Run it on an idle machine:

    python benchmarks/krita_round_trip.py [--weights PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from PIL import Image  # noqa: E402

from textpromptir.engine.weights import SHIPPED_WEIGHTS  # noqa: E402

from conftest import photo_like  # noqa: E402
from krita_host import run_krita  # noqa: E402

WIDTH, HEIGHT = 1632, 1224


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        Image.fromarray(photo_like(HEIGHT, WIDTH)).save(root / "layer.png")
        runs = [
            {"name": name, "document": str(root / "layer.png"), "prompt": "remove the noise"}
            for name in ("cold", "warm")
        ]
        records = run_krita(root, runs, sys.executable, str(args.weights))
    print(f"Krita round trip, {WIDTH} x {HEIGHT} RGBA U8 ({WIDTH * HEIGHT / 1e6:.1f} MP), worker on the CPU")
    print("| worker | menu to new layer (s) | Restore click to new layer (s) |")
    print("|---|---|---|")
    for record in records:
        if "driver_error" in record:
            print(f"{record['name']}: {record['driver_error']}")
            continue
        print(f"| {record['name']} | {record['seconds_from_menu']:.1f} | {record['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
