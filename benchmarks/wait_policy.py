"""OpenMP wait policies for the engine, on an idle machine and beside a busy process (a benchmark).

Each case restores a 1024 x 1024 image twice in a fresh process (the policy
is read when torch loads) and prints the median seconds; the cases take
turns, `--rounds` times, first alone and then beside one process that keeps a
core busy (as an image editor or a second job does).

    python benchmarks/wait_policy.py [--rounds 2]

`textpromptir` sets OMP_WAIT_POLICY=PASSIVE unless the user set it; the
"default" case below clears it again to show what that buys.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {
    "spinning (OpenMP default)": {"OMP_WAIT_POLICY": ""},
    "PASSIVE (ours)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
}
CASE = """
import os, statistics, time
if not os.environ["OMP_WAIT_POLICY"]:
    del os.environ["OMP_WAIT_POLICY"]  # before textpromptir sets its own
    import torch  # noqa: F401  (loads OpenMP with its default policy)
import numpy as np
from textpromptir.engine.restore import Restorer
restorer = Restorer.load(device="cpu")
image = np.random.default_rng(0).random((1024, 1024, 3), dtype=np.float32)
restorer.restore(image[:256, :256], "remove the noise")
times = []
for _ in range(2):
    started = time.perf_counter()
    restorer.restore(image, "remove the noise")
    times.append(time.perf_counter() - started)
print(statistics.median(times))
"""


def seconds(settings: dict[str, str]) -> float:
    environment = {**os.environ, **settings}
    result = subprocess.run(
        [sys.executable, "-c", CASE], env=environment, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def table(rounds: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {name: [] for name in POLICIES}
    for _ in range(rounds):
        for name, settings in POLICIES.items():
            found[name].append(seconds(settings))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| machine | " + " | ".join(POLICIES) + " |")
    print("| --- |" + " ---: |" * len(POLICIES))
    idle = table(args.rounds)
    busy_core = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = table(args.rounds)
    finally:
        busy_core.kill()
    for machine, found in (("idle", idle), ("one busy process beside", busy)):
        cells = [" / ".join(f"{value:.2f}" for value in found[name]) for name in POLICIES]
        print(f"| {machine} | " + " | ".join(cells) + " |")
    print("\nseconds per 1 MP restore, one figure per round")


if __name__ == "__main__":
    main()
