"""A fixed-budget comparison of model and recipe candidates: `textpromptir study --config FILE`.

Each candidate trains for the same budget of CPU seconds (the training
process's own, all its threads: other work on shared cores neither shortens
nor lengthens its share), from the same data and seed, in a process of its
own. Then each is evaluated on both validation pools (a fast subset: the
first photos, small centre crops) and timed against `lite` in the same
process, interleaved. One table per pool is printed and written as Markdown.

The study file holds `train` (TrainConfig settings every candidate shares),
`candidates` (each a `name` and its own TrainConfig settings, such as `size`,
`start_from` or the recipe switches), and the study's own settings below.
A candidate whose run directory already holds a finished state is not
trained again, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from textpromptir.engine.restore import Restorer
from textpromptir.engine.weights import load_model, weights_notes
from textpromptir.model import SIZES, TextPromptIR

from .config import TrainConfig
from .evaluate import (
    HELD_OUT,
    WRONG_PROMPT,
    Row,
    cases,
    degrade_all,
    evaluate_pools,
    grid_excess,
    held_out_cases,
    load_validation,
    prompt_for,
)
from .recipe import EMA_FILE

DONE_FILE = "study-done.json"  # a finished candidate's training record, beside its state
SPEED_SIDE, SPEED_REPEATS = 512, 3
GRID_PERIODS = (8, 4, 2)
SPEED_ONLY = "lite (untrained, timed only)"  # the time unit when no candidate is `lite`


@dataclass
class StudyConfig:
    cpu_minutes: float  # each candidate's training budget
    candidates: list[dict]
    train: dict = field(default_factory=dict)
    parallel: int = 2  # candidates training at once
    threads: int = 1  # per training process
    photos: int = 8
    crop: int = 256
    data_root: str = "data"
    run_root: str = "runs/study"
    output: str = "benchmarks/STUDY.md"
    references: list[str] = field(default_factory=list)  # weights evaluated as they are, untrained here

    @classmethod
    def load(cls, path: Path) -> StudyConfig:
        values = json.loads(Path(path).read_text())
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
        study = cls(**values)
        names = [candidate.get("name") for candidate in study.candidates]
        if None in names or len(set(names)) != len(names):
            raise ValueError(f"{path}: every candidate needs a name of its own")
        return study


@dataclass
class Result:
    name: str
    parameters: int
    steps: int | None  # trained in the budget; None for a reference
    rows: list[Row]
    seconds_per_mp: float
    haze_grid: dict[int, float]  # grid_excess of the haze restorations per grid period, dB


def candidate_config(study: StudyConfig, candidate: dict) -> TrainConfig:
    """A candidate's TrainConfig: the shared settings, its own, and the budget on the CPU clock."""
    own = {key: value for key, value in candidate.items() if key != "name"}
    budget = {"max_minutes": study.cpu_minutes, "time_clock": "cpu", "cpu_processes": 1}
    place = {"run_dir": str(Path(study.run_root) / slug(candidate["name"])), "data_root": study.data_root}
    return TrainConfig(**{**study.train, **own, **budget, **place})


def slug(name: str) -> str:
    return "".join(character if character.isalnum() else "-" for character in name.lower()).strip("-")


def train_candidates(study: StudyConfig, log: Callable[[str], None]) -> None:
    """Train every candidate not yet finished, `parallel` at a time, each in a process of its own."""
    waiting = [candidate for candidate in study.candidates if not finished(candidate_config(study, candidate))]
    running: list[tuple[str, subprocess.Popen, float]] = []
    while waiting or running:
        while waiting and len(running) < study.parallel:
            candidate = waiting.pop(0)
            running.append((candidate["name"], launch(candidate_config(study, candidate), study.threads), time.time()))
            log(f"training {candidate['name']} for {study.cpu_minutes} CPU minutes")
        time.sleep(5)
        for entry in list(running):
            name, process, started = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            if process.returncode:
                raise RuntimeError(f"training {name} failed (exit {process.returncode}): see its train.log")
            log(f"{name} trained in {(time.time() - started) / 60:.1f} wall minutes")


def launch(config: TrainConfig, threads: int) -> subprocess.Popen:
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = run_dir / "study-config.json"
    settings.write_text(json.dumps(dataclasses.asdict(config), indent=2))
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "textpromptir.training.study", "--train", str(settings)]
    with open(run_dir / "train.log", "a") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)


def train_one(settings: Path) -> None:
    """A candidate's training process: train, then record the steps and CPU seconds it took."""
    from .backbone import train

    config = TrainConfig.load(settings)
    first = time.process_time()
    state = train(config, log=lambda line: print(line, flush=True))
    record = {"cpu_seconds": time.process_time() - first, "state": str(state)}
    (Path(config.run_dir) / DONE_FILE).write_text(json.dumps(record))


def finished(config: TrainConfig) -> bool:
    return (Path(config.run_dir) / DONE_FILE).is_file()


def trained_weights(config: TrainConfig) -> Path:
    """The weights a candidate is judged by: the average of its weights when it kept one."""
    run_dir = Path(config.run_dir)
    return run_dir / EMA_FILE if config.ema else run_dir / "state.safetensors"


def seconds_per_megapixel(models: dict[str, TextPromptIR], threads: int) -> dict[str, float]:
    """Median s/MP of each model on one tile through the engine, interleaved so that load falls on all alike."""
    torch.set_num_threads(threads)
    image = np.random.default_rng(0).random((SPEED_SIDE, SPEED_SIDE, 3)).astype(np.float32)
    restorers = {name: Restorer(model, torch.device("cpu")) for name, model in models.items()}
    timings: dict[str, list[float]] = {name: [] for name in models}
    for restorer in restorers.values():
        restorer.restore(image[:64, :64], "remove the noise")  # loads the text encoder, warms the kernels
    for _ in range(SPEED_REPEATS):
        for name, restorer in restorers.items():
            started = time.perf_counter()
            restorer.restore(image, "remove the noise")
            timings[name].append((time.perf_counter() - started) / (SPEED_SIDE**2 / 1e6))
    return {name: statistics.median(values) for name, values in timings.items()}


def haze_grid(restorer: Restorer, photos: list[np.ndarray]) -> dict[int, float]:
    """Mean grid_excess of the restored hazy photos (the first pool's) at each period of GRID_PERIODS."""
    restored = [(restorer.restore(hazy, prompt_for("haze")), clean) for clean, hazy in degrade_all(photos, "haze")]
    return {
        period: float(np.mean([grid_excess(out, clean, period) for out, clean in restored])) for period in GRID_PERIODS
    }


def evaluate_all(study: StudyConfig, log: Callable[[str], None]) -> list[Result]:
    models, steps = {}, {}
    for candidate in study.candidates:
        config = candidate_config(study, candidate)
        weights = trained_weights(config)
        models[candidate["name"]] = load_model(weights)
        first = int(weights_notes(Path(config.start_from)).get("trained_steps", "0")) if config.start_from else 0
        steps[candidate["name"]] = int(weights_notes(weights)["trained_steps"]) - first
    for reference in study.references:
        models[f"{Path(reference).stem} (as it is)"] = load_model(Path(reference))
    if not any(model.config == SIZES["lite"] for model in models.values()):
        models[SPEED_ONLY] = TextPromptIR(SIZES["lite"])
    speed = seconds_per_megapixel(models, study.threads * study.parallel)
    photos = load_validation(Path(study.data_root), study.crop, study.photos)
    results = []
    for name, model in models.items():
        if name == SPEED_ONLY:
            continue
        log(f"evaluating {name}")
        restorer = Restorer(model, torch.device("cpu"))
        rows = evaluate_pools(restorer, photos)
        parameters = sum(p.numel() for p in model.parameters())
        results.append(Result(name, parameters, steps.get(name), rows, speed[name], haze_grid(restorer, photos)))
    lite_speed = next(speed[name] for name, model in models.items() if model.config == SIZES["lite"])
    for result in results:
        result.seconds_per_mp /= lite_speed
    return results


WRONG = "wrong prompt"


def markdown(study: StudyConfig, results: list[Result], command: str) -> str:
    pools = [
        ("Training generators (the pool of `textpromptir evaluate`)", [*cases(), WRONG]),
        ("Held-out generators (settings training never draws)", list(held_out_cases())),
    ]
    lines = [
        "# Fixed-budget study",
        "",
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_name()}, "
        f"{study.parallel} candidates at a time, {study.threads} thread(s) each.",
        f"Budget: {study.cpu_minutes} CPU minutes of training per candidate (the training process's own CPU time); "
        f"evaluation on the first {study.photos} validation photos, centre {study.crop} px crops, fixed seeds.",
        "PSNR in dB; `steps`: training steps the budget bought; `s/MP vs lite`: seconds per megapixel through "
        f"the engine on one {SPEED_SIDE} px tile, as a ratio to `lite` timed in the same process (medians of "
        f"{SPEED_REPEATS}, interleaved). The wrong-prompt column restores noise (sigma 25) with a rain prompt.",
    ]
    for index, (title, columns) in enumerate(pools):
        lines += ["", f"## {title}", ""]
        lines.append("| candidate | parameters | steps | " + " | ".join(map(short, columns)) + " | s/MP vs lite |")
        lines.append("| --- " * (len(columns) + 4) + "|")
        inputs = " | ".join(f"{row_for(results[0].rows, column).input_psnr:.2f}" for column in columns)
        lines.append(f"| input | | | {inputs} | |")
        for result in results:
            steps = "—" if result.steps is None else str(result.steps)
            figures = " | ".join(f"{row_for(result.rows, column).psnr:.2f}" for column in columns)
            size = f"{result.parameters / 1e6:.2f} M"
            lines.append(f"| {result.name} | {size} | {steps} | {figures} | {result.seconds_per_mp:.2f} |")
        if index == 0:
            lines += grid_table(results)
    return "\n".join(lines) + "\n"


def grid_table(results: list[Result]) -> list[str]:
    periods = " / ".join(map(str, GRID_PERIODS))
    lines = [
        "",
        f"The haze restorations' error spectrum at grid periods {periods} px: its power at those frequencies "
        "over the neighbouring ones, dB (`evaluate.grid_excess`; about 0 without a grid):",
        "",
        "| candidate | " + " | ".join(f"period {period}" for period in GRID_PERIODS) + " |",
        "| --- " * (len(GRID_PERIODS) + 1) + "|",
    ]
    for result in results:
        lines.append(f"| {result.name} | " + " | ".join(f"{result.haze_grid[p]:.1f}" for p in GRID_PERIODS) + " |")
    return lines


def row_for(rows: list[Row], column: str) -> Row:
    """Our row of a column: a case, or the steering check (the case's photos with the wrong prompt)."""
    wrong_case, wrong_prompt = WRONG_PROMPT
    for row in rows:
        steering = row.case == wrong_case and row.prompt == wrong_prompt
        if (column == WRONG and steering) or (row.case == column and not steering):
            return row
    raise KeyError(column)


def short(case: str) -> str:
    return case.removeprefix(HELD_OUT).replace("noise sigma ", "noise ").replace("_", " ")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "CPU"


def run(config_path: Path, log: Callable[[str], None] = print) -> str:
    study = StudyConfig.load(config_path)
    train_candidates(study, log)
    results = evaluate_all(study, log)
    table = markdown(study, results, f"textpromptir study --config {config_path}")
    Path(study.output).write_text(table)
    (Path(study.run_root) / "results.json").write_text(
        json.dumps([dataclasses.asdict(result) for result in results], indent=2)
    )
    return table


if __name__ == "__main__":  # a candidate's training process: python -m textpromptir.training.study --train FILE
    train_one(Path(sys.argv[2]))
