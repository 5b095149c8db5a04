"""A training run's settings, as read from resources/training/*.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from textpromptir.model import SIZES, ModelConfig
from textpromptir.tasks import TASKS

from .data import TRAINING_SIDE
from .recipe import LOSSES


@dataclass
class TrainConfig:
    size: str = "lite"
    # The decoder's upsampling when not the size's own: "bilinear" turns a pixel-shuffle `start_from`
    # into a network that cannot print a grid (model/growth.py).
    upsample: str | None = None
    steps: int = 20_000
    batch: int = 8  # per process
    patch: int = 96
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-6
    warmup_steps: int = 500
    cycle_start: int = 0  # the step where this warm-up and cosine begin: later than 0 for a warm restart
    weight_decay: float = 1e-4
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    combination_share: float = 0.2  # share of samples with two degradations at once
    # Per degradation, the share of samples from its realistic generator rather than the classic
    # one (degradations.REALISTIC_SHARE where not named): the trade between the two validation pools.
    realistic_share: dict[str, float] = field(default_factory=dict)
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
    # "cpu": max_minutes counts this process's CPU time (all its threads), not the wall clock,
    # so that other work on shared cores does not shorten the run (`textpromptir study`).
    time_clock: str = "wall"
    # Recipe switches (recipe.py): the pixel loss ("l1", "charbonnier", "psnr"), the weight of an
    # added frequency (FFT) loss, the decay of an average of the weights saved beside the state
    # (ema.safetensors; None: none), and bf16 autocast on a CPU that computes bf16 natively.
    loss: str = "l1"
    frequency_loss: float = 0.0
    ema: float | None = None
    cpu_bf16: bool = False

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size {self.size!r} is not one of {list(SIZES)}")
        self.model_config()  # ModelConfig refuses an unknown upsampling
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {list(LOSSES)}")
        unknown = set(self.realistic_share) - set(TASKS)
        if unknown or not all(0.0 <= share <= 1.0 for share in self.realistic_share.values()):
            raise ValueError(f"realistic_share needs degradations of {list(TASKS)} with shares in [0, 1]")
        if self.time_clock not in ("wall", "cpu"):
            raise ValueError(f"time_clock {self.time_clock!r} is neither 'wall' nor 'cpu'")

    def model_config(self) -> ModelConfig:
        """The network this run trains: its size, with the upsampling asked for."""
        size = SIZES[self.size]
        return dataclasses.replace(size, upsample=self.upsample) if self.upsample else size

    @classmethod
    def load(cls, path: Path | None, **overrides: object) -> TrainConfig:
        values = json.loads(Path(path).read_text()) if path else {}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def write_config(config: TrainConfig, run_dir: Path) -> None:
    """The settings a run is using, beside its state."""
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
