"""Train the restoration backbone: `textpromptir train [--config FILE]`.

Each step draws photo patches from the training pool, degrades them with one
degradation or a combination, and pairs each with the embedding of a real
instruction for exactly those degradations, drawn from the training split of
our corpus, so the backbone learns from the wording users type. L1 loss (or another, recipe.py),
AdamW with linear warm-up and cosine decay, channels_last, bf16 autocast on
CUDA, data-parallel under `torchrun`, and on a CPU in one process per core
(`cpu_processes`). The run directory holds the latest
state (fp16 weights and the step, `state.safetensors`, small enough to
commit) and the optimiser (`optimizer.safetensors`); a run resumes from them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from textpromptir.engine.device import half_precision, pick_device
from textpromptir.model import TextPromptIR

from .config import TrainConfig, write_config
from .patches import batch_loader, load_photos
from .processes import agreed, data_parallel, train_in_cpu_processes
from .prompts import prompt_bank
from .recipe import EMA_FILE, WeightAverage, cpu_has_native_bf16, load_average, restoration_loss, save_average
from .schedule import RunClock, learning_rate_at
from .state import restore_state, save_state


def train(config: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Train as configured and return the latest state file.

    On a CPU with `cpu_processes` above 1 the run is data-parallel over local processes;
    `log` then runs in the first of them, so it must pickle (a module-level function does).
    """
    if config.cpu_processes > 1 and "WORLD_SIZE" not in os.environ and pick_device(config.device).type == "cpu":
        return train_in_cpu_processes(train_in_this_process, config, log)
    return train_in_this_process(config, log)


def train_in_this_process(config: TrainConfig, log: Callable[[str], None]) -> Path:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = 0
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
    device = pick_device(config.device)
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    precision = half_precision(device)
    if device.type == "cpu" and config.cpu_bf16 and cpu_has_native_bf16():
        precision = torch.bfloat16
    torch.backends.cudnn.benchmark = device.type == "cuda"  # every batch has the same shape
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(config, run_dir)

    torch.manual_seed(config.seed)
    model = TextPromptIR(config.model_config()).to(device, memory_format=torch.channels_last).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    step = restore_state(model, optimiser, run_dir, config.start_from)
    network = data_parallel(model) if distributed else model
    average = WeightAverage(model, config.ema) if config.ema else None
    if average:
        load_average(average, run_dir / EMA_FILE)

    seed = config.seed * 1000 + rank * 7919 + step  # a resumed run draws new samples
    photos = load_photos(Path(config.data_root), config.longest_side)
    bank = prompt_bank(tuple(config.tasks), Path(config.data_root))
    if rank == 0:
        batch = f"{config.batch} in each of {dist.get_world_size()} processes" if distributed else config.batch
        log(f"training {config.size} from step {step} on {device}, {len(photos)} photos, batch {batch}")
        if config.cpu_bf16 and precision is None:
            log("this CPU has no native bf16: training in float32")
    now = time.process_time if config.time_clock == "cpu" else time.perf_counter
    clock, losses = RunClock(config.max_minutes, step, config.steps, now), []
    for degraded, clean, text in batch_loader(photos, bank, config, seed, pin=device.type == "cuda"):
        if agreed(step >= config.steps or clock.time_is_up(), dist.ReduceOp.MAX, distributed, device):
            break
        fitted = clock.fitted_steps(step)
        if fitted is not None:
            fitted = int(agreed(fitted, dist.ReduceOp.MIN, distributed, device))
            if fitted != config.steps:
                config = dataclasses.replace(config, steps=fitted)
                if rank == 0:
                    write_config(config, run_dir)
                    log(f"{clock.rate:.2f} steps/s: the cycle now ends at step {fitted}, within the time limit")
        for group in optimiser.param_groups:
            group["lr"] = learning_rate_at(step, config)
        degraded = degraded.to(device, memory_format=torch.channels_last, non_blocking=True)
        clean = clean.to(device, memory_format=torch.channels_last, non_blocking=True)
        with torch.autocast(device.type, dtype=precision, enabled=precision is not None):
            restored = network(degraded, text.to(device))
        loss = restoration_loss(config.loss, config.frequency_loss, restored.float(), clean)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimiser.step()
        if average:
            average.update(model)
        step += 1
        losses.append(loss.item())
        if rank == 0 and step % config.log_every == 0:
            rate = len(losses) / clock.elapsed()
            log(
                f"step {step}/{config.steps} {config.loss.upper()} {np.mean(losses[-config.log_every :]):.4f} "
                f"lr {learning_rate_at(step, config):.2e} {rate:.2f} steps/s"
            )
        if rank == 0 and (step % config.checkpoint_every == 0 or step == config.steps):
            save_state(model, optimiser, step, run_dir)
            save_average(average, step, run_dir)
    if rank == 0:
        save_state(model, optimiser, step, run_dir)
        save_average(average, step, run_dir)
    if distributed:
        dist.destroy_process_group()
    return run_dir / "state.safetensors"
