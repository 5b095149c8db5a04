"""Train the restoration backbone: `textpromptir train [--config FILE]`.

Each step draws photo patches from the training pool, degrades them with one
degradation or a combination, and pairs each with the embedding of a real
instruction for exactly those degradations, drawn from the training split of
our corpus, so the backbone learns from the wording users type. L1 loss,
AdamW with linear warm-up and cosine decay, channels_last, bf16 autocast on
CUDA, data-parallel under `torchrun`, and on a CPU in one process per core
(`cpu_processes`). The run directory holds the latest
state (fp16 weights and the step, `state.safetensors`, small enough to
commit) and the optimiser (`optimizer.safetensors`); a run resumes from them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import random
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from textpromptir.engine.restore import half_precision, pick_device
from textpromptir.engine.weights import load_model, save_weights, weights_notes
from textpromptir.errors import TextPromptIRError, WeightsError
from textpromptir.model import SIZES, ModelConfig, TextPromptIR
from textpromptir.model.growth import can_deepen, deepen
from textpromptir.text.instructions import DEFAULT_PATH as CORPUS_PATH
from textpromptir.text.instructions import read_corpus
from textpromptir.text.understand import TEXT_WEIGHTS

from .data import TRAINING_SIDE, read_manifest
from .degradations import DEGRADATIONS, degrade

PROMPTS_FILE = "prompts.safetensors"
# A time-limited run measures its rate between these steps (the ones before start the
# loaders and the device) and fits the cycle to it; then it measures and fits again every
# REFIT_EVERY steps, as a machine's pace drifts. It keeps this share of the time left as a margin.
RATE_WINDOW = (20, 120)
REFIT_EVERY = 250
TIME_MARGIN = 0.97
HAZE_CONTEXT = 3  # haze patches are cut this many times larger and shrunk: haze is a global effect


@dataclass
class TrainConfig:
    size: str = "lite"
    steps: int = 20_000
    batch: int = 8  # per process
    patch: int = 96
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-6
    warmup_steps: int = 500
    cycle_start: int = 0  # the step where this warm-up and cosine begin: later than 0 for a warm restart
    weight_decay: float = 1e-4
    tasks: list[str] = field(default_factory=lambda: list(DEGRADATIONS))
    combination_share: float = 0.2  # share of samples with two degradations at once
    longest_side: int = TRAINING_SIDE
    data_root: str = "data"
    run_dir: str = "runs/lite"
    start_from: str | None = None  # a state or weights file to continue from when the run directory is empty
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    device: str = "auto"
    # Processes that synthesise batches beside training: 0 on a 2-core CPU (the step is the
    # bottleneck); a GPU is fed by several, or it waits for the degradations.
    loader_workers: int = 0
    # On a CPU, train data-parallel in this many processes, the cores shared out between them,
    # each with a batch of `batch`: at our feature-map sizes a step's operators keep two threads
    # busy poorly, while two processes of one thread nearly double the rate (PROFILE.md).
    cpu_processes: int = 1
    # Stop (and save) after this long: a lent GPU's time is fixed. The cycle's cosine is then
    # fitted to end by that time, at the rate of recent steps (again every REFIT_EVERY steps),
    # and `steps` is only its upper bound.
    max_minutes: float | None = None

    @classmethod
    def load(cls, path: Path | None, **overrides: object) -> TrainConfig:
        values = json.loads(Path(path).read_text()) if path else {}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


class RunClock:
    """A run's clock. With a time limit it fits the cycle's end to it, from the pace of recent steps."""

    def __init__(
        self, minutes: float | None, first_step: int, last_step: int, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.limit = 60 * minutes if minutes else None
        self.first_step = first_step
        self.last_step = last_step  # the configured `steps`: no fit goes past it
        self.now = now
        self.started = now()
        self.mark = (first_step, 0.0)  # the step and time the current rate is measured from
        self.rate = 0.0

    def elapsed(self) -> float:
        return self.now() - self.started

    def time_is_up(self) -> bool:
        return self.limit is not None and self.elapsed() > self.limit

    def fitted_steps(self, step: int) -> int | None:
        """The step the cycle must end at to stop in time, at the end of the measuring window and
        every REFIT_EVERY steps after it, each time at the rate since the last; else None."""
        if self.limit is None:
            return None
        since = step - self.first_step
        if since == RATE_WINDOW[0]:
            self.mark = (step, self.elapsed())
        if since < RATE_WINDOW[1] or (since - RATE_WINDOW[1]) % REFIT_EVERY:
            return None
        marked_step, marked_time = self.mark
        self.mark = (step, self.elapsed())
        self.rate = (step - marked_step) / (self.mark[1] - marked_time)
        return steps_within_time(self.last_step, step, self.rate, self.limit - self.mark[1])


def steps_within_time(last_step: int, step: int, rate: float, seconds_left: float) -> int:
    """The step a time-limited run's cycle must end at, so that it stops at its lowest learning rate."""
    return min(last_step, step + int(TIME_MARGIN * rate * seconds_left))


def agreed(value: float, reduction: dist.ReduceOp, distributed: bool, device: torch.device) -> float:
    """One value for every process of a data-parallel run, so that none stops, or waits, alone."""
    if not distributed:
        return value
    tensor = torch.tensor(float(value), device=device)
    dist.all_reduce(tensor, op=reduction)
    return tensor.item()


def learning_rate_at(step: int, config: TrainConfig) -> float:
    step_in_cycle = max(step - config.cycle_start, 0)
    if step_in_cycle < config.warmup_steps:
        return config.learning_rate * (step_in_cycle + 1) / config.warmup_steps
    cycle_length = config.steps - config.cycle_start - config.warmup_steps
    progress = (step_in_cycle - config.warmup_steps) / max(cycle_length, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


class PromptBank:
    """Embeddings of every training instruction, grouped by the exact set of degradations it names."""

    def __init__(self, embeddings: dict[tuple[str, ...], torch.Tensor]) -> None:
        self.embeddings = dict(sorted(embeddings.items()))
        self.singles = [labels for labels in self.embeddings if len(labels) == 1]
        self.pairs = [labels for labels in self.embeddings if len(labels) == 2]

    def draw(self, rng: random.Random, combination_share: float) -> tuple[tuple[str, ...], torch.Tensor]:
        pool = self.pairs if self.pairs and rng.random() < combination_share else self.singles
        labels = rng.choice(pool)
        prompts = self.embeddings[labels]
        return labels, prompts[rng.randrange(len(prompts))]


@functools.lru_cache(maxsize=2)
def prompt_bank(tasks: tuple[str, ...], data_root: Path) -> PromptBank:
    """The bank for these tasks, built once per process from the data root's cache of the corpus's embeddings."""
    embeddings = cached_embeddings(Path(data_root))
    return PromptBank({labels: rows for labels, rows in embeddings.items() if set(labels) <= set(tasks)})


def cached_embeddings(data_root: Path) -> dict[tuple[str, ...], torch.Tensor]:
    """The training split's embeddings, kept in the data root so that a run needs no text encoder.

    The cache is made again when the corpus or the text encoder's weights change. It is
    fp16, and used as fp16 everywhere, so every machine trains on the same numbers.
    """
    path = data_root / PROMPTS_FILE
    fingerprint = corpus_fingerprint()
    if path.is_file() and stored_fingerprint(path) == fingerprint:
        return {tuple(key.split("+")): rows.float() for key, rows in load_file(str(path)).items()}
    halves = {labels: rows.half().contiguous() for labels, rows in encode_corpus(fingerprint).items()}
    data_root.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # each process of a data-parallel run writes its own
    save_file({"+".join(labels): rows for labels, rows in halves.items()}, str(partial), {"fingerprint": fingerprint})
    os.replace(partial, path)
    return {labels: rows.float() for labels, rows in halves.items()}


def stored_fingerprint(path: Path) -> str | None:
    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get("fingerprint")


def corpus_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (CORPUS_PATH, TEXT_WEIGHTS):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def encode_corpus(fingerprint: str) -> dict[tuple[str, ...], torch.Tensor]:
    """Unit-length pooled embeddings of the corpus's training split, by label set; once per process and
    `fingerprint` (the corpus and the encoder it was made from). Seconds on a CPU."""
    from textpromptir.text.understand import prompt_encoder

    corpus = [item for item in read_corpus(CORPUS_PATH) if item.split == "train" and item.labels]
    encoder = prompt_encoder()
    embeddings = {}
    with torch.inference_mode():
        for labels in sorted({item.labels for item in corpus}):
            texts = [item.text for item in corpus if item.labels == labels]
            pooled, _, _ = encoder(encoder.tokenize(texts))
            embeddings[labels] = F.normalize(pooled, dim=-1).clone()
    return embeddings


def load_photos(root: Path, longest_side: int) -> list[np.ndarray]:
    photos = []
    for entry in read_manifest(root, "train"):
        with Image.open(root / entry.path) as image:
            image = image.convert("RGB")
            image.thumbnail((longest_side, longest_side), Image.LANCZOS)
            photos.append(np.asarray(image))
    if not photos:
        raise RuntimeError(f"no training photos in {root}: run `textpromptir data fetch --root {root}`")
    return photos


def sample_pair(
    photos: list[np.ndarray], labels: tuple[str, ...], patch: int, rng: random.Random
) -> tuple[np.ndarray, np.ndarray]:
    """A clean patch and its degraded twin, (patch, patch, 3) float32 each."""
    photo = rng.choice(photos)
    side = patch * HAZE_CONTEXT if "haze" in labels else patch
    side = min(side, *photo.shape[:2])
    top, left = rng.randrange(photo.shape[0] - side + 1), rng.randrange(photo.shape[1] - side + 1)
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    if side != patch:
        crop = crop.resize((patch, patch), Image.LANCZOS)
    clean = np.asarray(crop, np.float32) / 255
    clean = np.rot90(clean, rng.randrange(4))
    if rng.random() < 0.5:
        clean = clean[:, ::-1]
    clean = np.ascontiguousarray(clean)
    return clean, degrade(clean, labels, seed=rng.getrandbits(32))


def batches(photos, bank: PromptBank, config: TrainConfig, rng: random.Random) -> Iterator[tuple]:
    while True:
        clean, degraded, texts = [], [], []
        for _ in range(config.batch):
            labels, embedding = bank.draw(rng, config.combination_share)
            target, source = sample_pair(photos, labels, config.patch, rng)
            clean.append(target)
            degraded.append(source)
            texts.append(embedding)
        to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # noqa: E731
        yield to_tensor(degraded), to_tensor(clean), torch.stack(texts)


class PatchStream(torch.utils.data.IterableDataset):
    """Endless batches for a DataLoader; every loader worker draws from a random stream of its own."""

    def __init__(self, photos: list[np.ndarray], bank: PromptBank, config: TrainConfig, seed: int) -> None:
        self.photos, self.bank, self.config, self.seed = photos, bank, config, seed

    def __iter__(self) -> Iterator[tuple]:
        worker = torch.utils.data.get_worker_info()
        seed = self.seed if worker is None else self.seed * 1009 + worker.id + 1
        return batches(self.photos, self.bank, self.config, random.Random(seed))


def batch_loader(photos: list[np.ndarray], bank: PromptBank, config: TrainConfig, seed: int, pin: bool) -> Iterator:
    stream = PatchStream(photos, bank, config, seed)
    if config.loader_workers == 0:
        return iter(stream)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=config.loader_workers, pin_memory=pin, prefetch_factor=4
    )
    return iter(loader)


def save_state(model: TextPromptIR, optimiser: torch.optim.Optimizer, step: int, run_dir: Path) -> None:
    """The latest state, replacing the previous one: fp16 weights and the step; the optimiser beside it."""
    save_weights(model, run_dir / "state.tmp", trained_steps=str(step))
    os.replace(run_dir / "state.tmp", run_dir / "state.safetensors")
    moments = {}
    for index, parameter in enumerate(model.parameters()):
        for name, tensor in optimiser.state.get(parameter, {}).items():
            if torch.is_tensor(tensor):
                moments[f"{index}.{name}"] = tensor.detach().float().cpu().contiguous()
    save_file(moments, str(run_dir / "optimizer.tmp"), metadata={"step": str(step)})
    os.replace(run_dir / "optimizer.tmp", run_dir / "optimizer.safetensors")


def restore_state(model: TextPromptIR, optimiser: torch.optim.Optimizer, run_dir: Path, start_from: str | None) -> int:
    """Load the run's latest state (or else `start_from`) into `model`; return the step to continue from.

    A `start_from` of a shallower config is grown into the model (model/growth.py).
    """
    state = run_dir / "state.safetensors"
    if not state.is_file():
        if not start_from:
            return 0
        state = Path(start_from)
    trained = load_model(state)
    if trained.config == model.config:
        model.load_state_dict(trained.state_dict())
    elif can_deepen(trained, model):
        deepen(model, trained)
    else:
        raise WeightsError(
            f"{state} holds a network of {shape(trained.config)}, which cannot grow into this run's "
            f"{shape(model.config)} (growing adds blocks and changes nothing else): "
            "point start_from at a state of this size or of a shallower one, or leave it empty to start afresh."
        )
    step = int(weights_notes(state).get("trained_steps", "0"))
    moments_file = run_dir / "optimizer.safetensors"
    if moments_file.is_file():
        moments = load_file(str(moments_file))
        for index, parameter in enumerate(model.parameters()):
            entries = {key.split(".", 1)[1]: value for key, value in moments.items() if key.split(".")[0] == str(index)}
            if entries:
                optimiser.state[parameter] = {name: value.to(parameter.device) for name, value in entries.items()}
    return step


def shape(config: ModelConfig) -> str:
    """A network's shape in a few words, for messages."""
    blocks = "/".join(map(str, config.blocks))
    return f"width {config.width}, blocks {blocks}, {config.refinement_blocks} refinement blocks"


def write_config(config: TrainConfig, run_dir: Path) -> None:
    """The settings a run is using, beside its state."""
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))


def train(config: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Train as configured and return the latest state file.

    On a CPU with `cpu_processes` above 1 the run is data-parallel over local processes;
    `log` then runs in the first of them, so it must pickle (a module-level function does).
    """
    if config.cpu_processes > 1 and "WORLD_SIZE" not in os.environ and pick_device(config.device).type == "cpu":
        return train_in_cpu_processes(config, log)
    return train_in_this_process(config, log)


def train_in_cpu_processes(config: TrainConfig, log: Callable[[str], None]) -> Path:
    """Run `train_in_this_process` in `config.cpu_processes` processes, joined over loopback by gloo."""
    world = config.cpu_processes
    threads = max(1, torch.get_num_threads() // world)
    cached_embeddings(Path(config.data_root))  # made here once, if missing, rather than by every process
    failures = mp.get_context("spawn").SimpleQueue()
    arguments = (world, free_loopback_port(), threads, config, log, failures, os.getpid())
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
    world: int,
    port: int,
    threads: int,
    config: TrainConfig,
    log: Callable[[str], None],
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
        train_in_this_process(config, log)
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
    torch.backends.cudnn.benchmark = device.type == "cuda"  # every batch has the same shape
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(config, run_dir)

    torch.manual_seed(config.seed)
    model = TextPromptIR(SIZES[config.size]).to(device, memory_format=torch.channels_last).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    step = restore_state(model, optimiser, run_dir, config.start_from)
    network = data_parallel(model) if distributed else model

    seed = config.seed * 1000 + rank * 7919 + step  # a resumed run draws new samples
    photos = load_photos(Path(config.data_root), config.longest_side)
    bank = prompt_bank(tuple(config.tasks), Path(config.data_root))
    if rank == 0:
        batch = f"{config.batch} in each of {dist.get_world_size()} processes" if distributed else config.batch
        log(f"training {config.size} from step {step} on {device}, {len(photos)} photos, batch {batch}")
    clock, losses = RunClock(config.max_minutes, step, config.steps), []
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
        loss = F.l1_loss(restored.float(), clean)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimiser.step()
        step += 1
        losses.append(loss.item())
        if rank == 0 and step % config.log_every == 0:
            rate = len(losses) / clock.elapsed()
            log(
                f"step {step}/{config.steps} L1 {np.mean(losses[-config.log_every :]):.4f} "
                f"lr {learning_rate_at(step, config):.2e} {rate:.2f} steps/s"
            )
        if rank == 0 and (step % config.checkpoint_every == 0 or step == config.steps):
            save_state(model, optimiser, step, run_dir)
    if rank == 0:
        save_state(model, optimiser, step, run_dir)
    if distributed:
        dist.destroy_process_group()
    return run_dir / "state.safetensors"
