"""How much faster the blocks are than at an earlier commit (a benchmark).

Checks the model package of `--commit` out of git into a temporary folder and
times today's size built by it and by today's code, interleaved in one
process (so a busy machine slows both alike): a 512 x 512 inference tile and
a training step (AdamW, batch 8 of 96 x 96, L1), random weights. The
default commit, fce6cf9, is the first `lite`, before any of the CPU work of
issue 8: its baseline.

    python benchmarks/speed_since.py [--commit fce6cf9] [--size lite] [--threads N] [--repeats 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cpu_speed import BATCH, PATCH, SIDE, median_seconds  # this folder is on sys.path when a benchmark runs as a script

from textpromptir import model as today

ROOT = Path(__file__).resolve().parent.parent


def model_package_at(commit: str, folder: Path):
    """textpromptir/model as it was at `commit`, imported as a package of its own."""
    package = folder / f"model_{commit}"
    package.mkdir()
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", commit, "textpromptir/model/"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    for path in listing:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"], check=True, capture_output=True)
        (package / Path(path).name).write_bytes(source.stdout)
    sys.path.insert(0, str(folder))
    return importlib.import_module(package.name)


def build(package, size: str) -> nn.Module:
    """Today's size `size` built by `package`'s code: the same network, whatever the size was called then."""
    torch.manual_seed(0)
    config = package.ModelConfig(**dataclasses.asdict(today.SIZES[size]))
    model = package.TextPromptIR(config).to(memory_format=torch.channels_last)
    model.output.reset_parameters()  # the shipped init zeroes it: the network would be the identity
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="fce6cf9")
    parser.add_argument("--size", default="lite")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        models = {args.commit: build(model_package_at(args.commit, Path(folder)), args.size)}
        models["today"] = build(today, args.size)
        tile = torch.rand(1, 3, SIDE, SIDE).contiguous(memory_format=torch.channels_last)
        batch = torch.rand(BATCH, 3, PATCH, PATCH).contiguous(memory_format=torch.channels_last)
        text = torch.randn(BATCH, 384)

        def infer(model: nn.Module):
            def case() -> None:
                # Older code chose the strip path by itself under no_grad; today's is told to, as the engine does.
                getattr(model, "run_in_strips", lambda enabled: None)(True)
                with torch.inference_mode():
                    model.eval()(tile, text[:1])

            return case

        def step(model: nn.Module):
            optimiser = torch.optim.AdamW(model.parameters(), 1e-4)

            def case() -> None:
                getattr(model, "run_in_strips", lambda enabled: None)(False)
                loss = (model.train()(batch, text) - batch).abs().mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()

            return case

        inference = median_seconds({name: infer(model) for name, model in models.items()}, args.repeats)
        training = median_seconds({name: step(model) for name, model in models.items()}, args.repeats)
    print(f"{args.size}, {args.threads} threads, median of {args.repeats}")
    print("| code | inference, s/MP | training step, s | inference speed-up | training speed-up |")
    print("|---|---|---|---|---|")
    for name in models:
        print(
            f"| {name} | {inference[name] / (SIDE * SIDE / 1e6):.2f} | {training[name]:.3f} "
            f"| {inference[args.commit] / inference[name]:.2f}x | {training[args.commit] / training[name]:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
