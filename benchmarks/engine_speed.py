"""Speed and memory of the restore engine on the CPU (a benchmark, not a test).

Prints, for the shipped `lite` size: seconds per megapixel at 1, 4, 12 and
24 MP, the peak resident memory of the process, and GMACs per megapixel; and
the same for the `paper` size at 0.25 MP. Each case runs in a fresh process so
that its peak memory is its own, and restores its image `--repeats` times:
the median is printed (and the fastest), since shared machines are noisy.
Run it on an idle machine:

    python benchmarks/engine_speed.py [--threads N]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CASES = [("lite", 1.0), ("lite", 4.0), ("lite", 12.0), ("lite", 24.0), ("paper", 0.25)]
PROMPT = "remove the noise"


def gmacs_per_megapixel(model, side: int = 256) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, side, side), torch.randn(1, model.config.text_dim))
    return counter.get_total_flops() / 2 / 1e9 * 1e6 / side**2


def measure(size: str, megapixels: float, threads: int, repeats: int) -> dict:
    import numpy as np
    import torch

    from textpromptir.engine.restore import Restorer
    from textpromptir.model import SIZES, TextPromptIR

    torch.set_num_threads(threads)
    model = TextPromptIR(SIZES[size])
    parameters = sum(p.numel() for p in model.parameters())
    gmacs = gmacs_per_megapixel(model)
    restorer = Restorer(model, torch.device("cpu"))
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)  # 4:3, like most photos
    width = round(height * 4 / 3)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    restorer.restore(image[:64, :64], PROMPT)  # load the text encoder, warm the kernels
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        restorer.restore(image, PROMPT)
        timings.append(time.perf_counter() - started)
    seconds, fastest = statistics.median(timings), min(timings)
    return {
        "size": size,
        "parameters_m": parameters / 1e6,
        "gmac_per_mp": gmacs,
        "image": f"{width}x{height}",
        "megapixels": width * height / 1e6,
        "seconds": seconds,
        "seconds_per_mp": seconds / (width * height / 1e6),
        "fastest_per_mp": fastest / (width * height / 1e6),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="restores per case (the 24 MP case runs once)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    if args.case:
        size, megapixels = args.case.split(":")
        print(json.dumps(measure(size, float(megapixels), args.threads, args.repeats)))
        return
    print(
        f"{'size':6} {'params':>8} {'GMAC/MP':>8} {'image':>10} {'MP':>6} "
        f"{'s':>7} {'s/MP':>6} {'best':>6} {'peak RSS':>9}"
    )
    for size, megapixels in CASES:
        repeats = 1 if megapixels > 12 else args.repeats
        command = [sys.executable, __file__, "--case", f"{size}:{megapixels}"]
        command += ["--threads", str(args.threads), "--repeats", str(repeats)]
        row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(
            f"{row['size']:6} {row['parameters_m']:7.2f}M {row['gmac_per_mp']:8.1f} {row['image']:>10} "
            f"{row['megapixels']:6.2f} {row['seconds']:7.1f} {row['seconds_per_mp']:6.2f} {row['fastest_per_mp']:6.2f} "
            f"{row['peak_rss_gib']:6.2f}GiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
