"""Training steps in one process against one process per core (a benchmark).

Times the training step (AdamW, L1, a batch of 8 x 96 x 96, random weights
and data) of three setups, each in fresh processes, in rounds so that a busy
machine slows all of them alike:
- the baseline commit's model code in one process with every thread (issue 8's
  baseline),
- today's code the same way,
- today's code data-parallel over `--processes` processes that share the
  threads out and each take their share of the batch, joined by gloo over
  loopback: how `textpromptir train` runs with `cpu_processes`.
Every setup steps the same 8 samples per step, so seconds per step compare.

    python benchmarks/training_processes.py [--processes 2] [--steps 30] [--rounds 2] [--commit fce6cf9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from cpu_speed import BATCH, PATCH  # this folder is on sys.path when a benchmark runs as a script
from speed_since import build, model_package_at

from textpromptir import model as today
from textpromptir.training.processes import data_parallel, free_loopback_port

WARM_UP_STEPS = 3


def timed_steps(rank: int, world: int, port: int, threads: int, commit: str | None, steps: int, results) -> None:
    """Median seconds of one data-parallel step, put on `results` by the first process."""
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    with tempfile.TemporaryDirectory() as folder:
        model = build(model_package_at(commit, Path(folder)) if commit else today, "lite")
    network = data_parallel(model) if world > 1 else model
    optimiser = torch.optim.AdamW(model.parameters(), 1e-4)
    batch = torch.rand(BATCH // world, 3, PATCH, PATCH).contiguous(memory_format=torch.channels_last)
    text = torch.randn(BATCH // world, 384)
    durations = []
    for _ in range(WARM_UP_STEPS + steps):
        started = time.perf_counter()
        loss = (network.train()(batch, text) - batch).abs().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        durations.append(time.perf_counter() - started)
    if rank == 0:
        results.put(statistics.median(durations[WARM_UP_STEPS:]))
    if world > 1:
        dist.destroy_process_group()


def seconds_per_step(processes: int, commit: str | None, steps: int) -> float:
    results = mp.get_context("spawn").SimpleQueue()
    threads = max(1, torch.get_num_threads() // processes)
    arguments = (processes, free_loopback_port(), threads, commit, steps, results)
    mp.start_processes(timed_steps, arguments, nprocs=processes, start_method="spawn")
    return results.get()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="fce6cf9")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if BATCH % args.processes:
        parser.error(f"--processes must divide the batch of {BATCH}")
    cores = torch.get_num_threads()
    setups = {
        f"{args.commit}, 1 process of {cores} threads": (1, args.commit),
        f"today, 1 process of {cores} threads": (1, None),
        f"today, {args.processes} processes of {max(1, cores // args.processes)} threads": (args.processes, None),
    }
    timings: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, (processes, commit) in setups.items():
            timings[name].append(seconds_per_step(processes, commit, args.steps))
    baseline = statistics.median(timings[next(iter(setups))])
    print(f"lite, batch {BATCH} x {PATCH} x {PATCH} per step, median of {args.steps} steps, {args.rounds} rounds")
    print("| setup | s per step, each round | speed-up over the baseline |")
    print("|---|---|---|")
    for name, seconds in timings.items():
        rounds = " / ".join(f"{value:.3f}" for value in seconds)
        print(f"| {name} | {rounds} | {baseline / statistics.median(seconds):.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
