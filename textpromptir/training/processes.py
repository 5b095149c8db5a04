"""Data-parallel training on a CPU in one process per core, joined over loopback by gloo."""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from textpromptir.errors import TextPromptIRError
from textpromptir.model import TextPromptIR

from .config import TrainConfig
from .prompts import cached_embeddings

Log = Callable[[str], None]
TrainProcess = Callable[[TrainConfig, Log], Path]  # one process's training loop; module-level, so it pickles


def train_in_cpu_processes(train_process: TrainProcess, config: TrainConfig, log: Log) -> Path:
    """Run `train_process` in `config.cpu_processes` processes, joined over loopback by gloo."""
    world = config.cpu_processes
    threads = max(1, torch.get_num_threads() // world)
    cached_embeddings(Path(config.data_root))  # made here once, if missing, rather than by every process
    failures = mp.get_context("spawn").SimpleQueue()
    arguments = (train_process, world, free_loopback_port(), threads, config, log, failures, os.getpid())
    processes = mp.start_processes(cpu_process, arguments, nprocs=world, join=False, start_method="spawn")
    try:
        while not processes.join():  # a failed process stops the others and raises here
            pass
    except (mp.ProcessRaisedException, mp.ProcessExitedException):
        if not failures.empty():
            raise failures.get() from None  # the user's error, not a child's traceback
        raise
    finally:
        for process in processes.processes:
            if process.is_alive():
                process.terminate()
    return Path(config.run_dir) / "state.safetensors"


def cpu_process(
    rank: int,
    train_process: TrainProcess,
    world: int,
    port: int,
    threads: int,
    config: TrainConfig,
    log: Log,
    failures,
    launcher: int,
) -> None:
    """One process of `train_in_cpu_processes`, with the settings `torchrun` would give it."""
    stop_with(launcher)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(threads)
    try:
        train_process(config, log)
    except TextPromptIRError as error:
        failures.put(error)
        raise


def stop_with(launcher: int) -> None:
    """Exit as soon as the launching process is gone, so that killing it stops the whole run.

    PyTorch has the kernel send SIGINT to its processes when their parent dies, but a run
    started in the background (`nohup ... &`) ignores SIGINT: its processes went on training,
    sharing the run directory with the next run. Each state is written whole and then renamed,
    so an exit mid-save leaves the previous one.
    """

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-launcher", daemon=True).start()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def data_parallel(model: TextPromptIR) -> torch.nn.Module:
    """`model` wrapped for data-parallel training; the process group must be up."""
    # The gradients of the 1x1 kernels come back with contiguous strides while their weights
    # are channels_last: for a 1x1 kernel both describe the same memory, so DDP's warning
    # about the mismatch (once per process) is noise.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)


def agreed(value: float, reduction: dist.ReduceOp, distributed: bool, device: torch.device) -> float:
    """One value for every process of a data-parallel run, so that none stops, or waits, alone."""
    if not distributed:
        return value
    tensor = torch.tensor(float(value), device=device)
    dist.all_reduce(tensor, op=reduction)
    return tensor.item()
