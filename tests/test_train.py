"""Training and evaluation, end to end on a tiny pool."""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from textpromptir.engine.weights import initialise_weights, load_model, save_weights
from textpromptir.errors import WeightsError
from textpromptir.metrics import psnr
from textpromptir.model import SIZES, TextPromptIR
from textpromptir.training.backbone import train
from textpromptir.training.config import TrainConfig
from textpromptir.training.data import Photo, pack, read_manifest
from textpromptir.training.evaluate import evaluate, markdown, ssim
from textpromptir.training.patches import batch_loader, load_photos
from textpromptir.training.prompts import (
    PROMPTS_FILE,
    cached_embeddings,
    corpus_fingerprint,
    encode_corpus,
    prompt_bank,
)
from textpromptir.training.schedule import (
    RATE_WINDOW,
    REFIT_EVERY,
    TIME_MARGIN,
    RunClock,
    learning_rate_at,
    steps_within_time,
)
from textpromptir.training.state import restore_state

from conftest import photo_like


@pytest.fixture
def pool(tmp_path):
    root = tmp_path / "data"
    rows = []
    for index, split in enumerate(["train", "train", "val", "val"]):
        path = root / "photos" / split / f"photo{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_like(160, 200, seed=index)).save(path)
        rows.append(Photo(str(path.relative_to(root)), split, "test", "CC0-1.0", 200, 160, 0, "0"))
    (root / "manifest.jsonl").write_text("".join(json.dumps(asdict(row)) + "\n" for row in rows))
    return root


def steps_in(path) -> int:
    with safe_open(str(path), framework="pt") as handle:
        return int(handle.metadata()["trained_steps"])


def test_training_runs_saves_and_resumes(tmp_path, pool):
    config = TrainConfig(steps=3, batch=2, patch=32, data_root=str(pool), run_dir=str(tmp_path / "run"), log_every=1)
    logged = []
    state = train(config, log=logged.append)
    assert steps_in(state) == 3 and (tmp_path / "run" / "optimizer.safetensors").is_file()
    assert any(line.startswith("step 3/3 L1") for line in logged)
    config.steps = 5
    logged.clear()
    train(config, log=logged.append)
    assert "from step 3" in logged[0] and steps_in(state) == 5
    # A new machine: only the committed state file, no run directory.
    fresh = TrainConfig(
        steps=6, batch=2, patch=32, data_root=str(pool), run_dir=str(tmp_path / "new"), start_from=str(state)
    )
    logged.clear()
    train(fresh, log=logged.append)
    assert "from step 5" in logged[0]


def test_loader_workers_feed_distinct_batches(tmp_path, pool):
    config = TrainConfig(batch=2, patch=32, data_root=str(pool), loader_workers=2)
    photos = load_photos(pool, config.longest_side)
    loader = batch_loader(photos, prompt_bank(tuple(config.tasks), pool), config, seed=0, pin=False)
    first, second = next(loader), next(loader)  # one from each worker
    assert first[0].shape == (2, 3, 32, 32) and first[2].shape == (2, 384)
    assert not torch.equal(first[1], second[1])  # the workers do not repeat each other
    trained = TrainConfig(steps=2, batch=2, patch=32, data_root=str(pool), run_dir=str(tmp_path / "run"))
    trained.loader_workers = 2
    assert steps_in(train(trained, log=lambda line: None)) == 2


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(steps=1000, warmup_steps=100, learning_rate=1e-3, min_learning_rate=0.0)
    assert learning_rate_at(0, config) == pytest.approx(1e-5)
    assert learning_rate_at(99, config) == pytest.approx(1e-3)
    assert learning_rate_at(550, config) == pytest.approx(5e-4)
    assert learning_rate_at(1000, config) == pytest.approx(0.0, abs=1e-12)


def test_a_warm_restart_begins_a_new_cycle():
    config = TrainConfig(steps=1500, warmup_steps=100, cycle_start=500, learning_rate=1e-3, min_learning_rate=0.0)
    assert learning_rate_at(500, config) == pytest.approx(1e-5)
    assert learning_rate_at(599, config) == pytest.approx(1e-3)
    assert learning_rate_at(1050, config) == pytest.approx(5e-4)
    assert learning_rate_at(1500, config) == pytest.approx(0.0, abs=1e-12)


def test_training_grows_a_shallower_start_into_a_deeper_size(tmp_path, pool):
    torch.manual_seed(3)
    shallow = TextPromptIR(replace(SIZES["lite"], blocks=(1, 1, 1, 2)))
    start = tmp_path / "shallow.safetensors"
    save_weights(shallow, start, trained_steps="7")
    config = TrainConfig(
        size="lite", steps=8, batch=2, patch=32, data_root=str(pool), run_dir=str(tmp_path / "run"),
        start_from=str(start),
    )  # fmt: skip
    logged = []
    deep = load_model(train(config, log=logged.append))
    assert "training lite from step 7" in logged[0] and deep.config == SIZES["lite"]
    # One step at the warm-up's learning rate barely moves the trained weights; the new blocks started at zero.
    assert torch.allclose(deep.embed.weight, shallow.embed.weight, atol=1e-3)
    assert deep.latent.blocks[3].igfn.body.project.weight.abs().max() < 1e-3
    assert deep.latent.blocks[3].igfn.body.expand.weight.abs().max() > 0.05  # initialised, not zeroed


def test_a_start_that_cannot_grow_into_the_size_is_refused(tmp_path):
    start = tmp_path / "wider.safetensors"
    save_weights(TextPromptIR(replace(SIZES["lite"], width=16)), start)
    model = TextPromptIR(SIZES["lite"])
    with pytest.raises(WeightsError, match="width 16, blocks 1/2/2/4, 0 refinement blocks, which cannot grow"):
        restore_state(model, torch.optim.AdamW(model.parameters()), tmp_path / "run", str(start))


def test_cpu_processes_train_data_parallel_and_raise_the_users_error(tmp_path, pool, capfd):
    config = TrainConfig(
        steps=2, batch=1, patch=32, data_root=str(pool), run_dir=str(tmp_path / "run"), log_every=1,
        cpu_processes=2, device="cpu",
    )  # fmt: skip
    assert steps_in(train(config)) == 2
    logged, warned = capfd.readouterr()  # the first process prints, the second stays quiet
    assert "Grad strides" not in warned  # DDP's warning about the 1x1 kernels' equivalent strides
    assert logged.count("training lite from step 0 on cpu, 2 photos, batch 1 in each of 2 processes") == 1
    assert "step 2/2 L1" in logged

    wider = tmp_path / "wider.safetensors"
    save_weights(TextPromptIR(replace(SIZES["lite"], width=16)), wider)
    refused = replace(config, run_dir=str(tmp_path / "refused"), start_from=str(wider))
    with pytest.raises(WeightsError, match="cannot grow into this run's"):
        train(refused)


def children_of(pid: int) -> list[int]:
    return [int(task) for task in os.listdir("/proc") if task.isdigit() and parent_of(int(task)) == pid]


def parent_of(pid: int) -> int | None:
    """The parent of a live process; None for one that is gone or a zombie."""
    try:
        state, parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if state == "Z" else int(parent)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the processes through /proc")
def test_killing_the_launcher_stops_its_cpu_processes_in_the_background_too(tmp_path, pool):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "steps": 100_000, "batch": 1, "patch": 32, "data_root": str(pool), "run_dir": str(tmp_path / "run"),
        "cpu_processes": 2, "device": "cpu",
    }))  # fmt: skip
    command = [sys.executable, "-m", "textpromptir", "train", "--config", str(config)]
    in_the_background = functools.partial(signal.signal, signal.SIGINT, signal.SIG_IGN)  # as `nohup ... &` starts it
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=in_the_background)
    children = []
    try:
        assert "in each of 2 processes" in launcher.stdout.readline()  # both are training now
        children = children_of(launcher.pid)
        assert len(children) >= 2
        launcher.send_signal(signal.SIGKILL)  # no chance to clean up
        launcher.wait()
        deadline = time.monotonic() + 30
        while any(parent_of(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [child for child in children if parent_of(child)]
    finally:
        launcher.kill()
        for child in children:
            if parent_of(child):
                os.kill(child, signal.SIGKILL)


def test_config_files_are_checked(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"steps": 10, "batchsize": 4}))
    with pytest.raises(ValueError, match="batchsize"):
        TrainConfig.load(path)
    path.write_text(json.dumps({"steps": 10}))
    assert TrainConfig.load(path, run_dir="x", device=None).steps == 10


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    image = photo_like(64, 64).astype(np.float32) / 255
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.1, image.shape), 0, 1).astype(np.float32)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(noisy, image) < 0.9


def test_evaluation_of_the_identity_model_scores_the_input(tmp_path, pool):
    weights = tmp_path / "identity.safetensors"
    initialise_weights(weights)  # untrained: returns its input
    rows = evaluate(weights, pool, "cpu")
    assert [row.case for row in rows] == [
        "noise sigma 15", "noise sigma 25", "noise sigma 50", "rain", "haze", "blur", "low_light", "jpeg",
        "noise sigma 25",
        *(f"held-out {task}" for task in ("noise", "rain", "haze", "blur", "low_light", "jpeg")),
    ]  # fmt: skip
    assert rows[8].prompt == "remove the rain streaks"  # the steering check, before the held-out pool
    for row in rows:
        assert row.photos == 2 and row.psnr == pytest.approx(row.input_psnr, abs=0.05)
    assert rows[0].input_psnr > rows[1].input_psnr > rows[2].input_psnr
    assert "| haze | remove the haze | 2 |" in markdown(rows)


def test_a_time_limited_run_fits_its_cycle_to_the_time_left():
    def seconds_at(since: int) -> float:  # a step every 2 s, then every 4 s after the first fit: a slowdown
        return 2.0 * min(since, RATE_WINDOW[1]) + 4.0 * max(since - RATE_WINDOW[1], 0)

    now = [0.0]
    clock = RunClock(60, first_step=500, last_step=100_000, now=lambda: now[0])
    refit = RATE_WINDOW[1] + REFIT_EVERY
    fitted = {}
    for since in range(refit + 5):
        now[0] = seconds_at(since)
        fitted[since] = clock.fitted_steps(500 + since)
    assert [since for since, steps in fitted.items() if steps is not None] == [RATE_WINDOW[1], refit]
    first_left = 3600 - seconds_at(RATE_WINDOW[1])
    assert fitted[RATE_WINDOW[1]] == 500 + RATE_WINDOW[1] + int(TIME_MARGIN * 0.5 * first_left)
    slower = REFIT_EVERY / (seconds_at(refit) - seconds_at(RATE_WINDOW[1]))  # since the first fit
    assert clock.rate == pytest.approx(slower) == 0.25
    assert fitted[refit] == 500 + refit + int(TIME_MARGIN * slower * (3600 - seconds_at(refit)))
    assert fitted[refit] < fitted[RATE_WINDOW[1]]  # the cycle now ends sooner
    assert steps_within_time(100_000, step=620, rate=10_000.0, seconds_left=60) == 100_000  # never past `steps`
    assert RunClock(None, 0, 100_000).fitted_steps(RATE_WINDOW[1]) is None


def test_a_run_whose_time_is_up_saves_and_stops(tmp_path, pool):
    config = TrainConfig(steps=50, batch=2, patch=32, data_root=str(pool), run_dir=str(tmp_path / "run"))
    config.max_minutes = 1e-9
    assert steps_in(train(config, log=lambda line: None)) == 0


def test_a_pack_trains_without_the_pool_or_the_text_encoder(tmp_path, pool, monkeypatch):
    small = photo_like(80, 100, seed=7)
    Image.fromarray(small).save(pool / "photos" / "train" / "small.jpg", quality=90)
    row = Photo("photos/train/small.jpg", "train", "test", "CC0-1.0", 100, 80, 0, "0")
    with (pool / "manifest.jsonl").open("a") as manifest:
        manifest.write(json.dumps(asdict(row)) + "\n")
    packed = tmp_path / "pack"
    pack(pool, packed, longest_side=120)
    photos = read_manifest(packed)
    assert [photo.split for photo in photos] == ["train"] * 3 and all(p.path.endswith(".jpg") for p in photos)
    assert (packed / photos[2].path).read_bytes() == (pool / row.path).read_bytes()  # small JPEGs are copied
    shrunk = Image.open(pool / "photos" / "train" / "photo0.png")
    shrunk.thumbnail((120, 120), Image.LANCZOS)
    stored = Image.open(packed / photos[0].path)
    assert stored.size == shrunk.size == (photos[0].width, photos[0].height) == (120, 96)
    assert psnr(np.asarray(stored), np.asarray(shrunk)) > 35  # a detailed synthetic photo: the worst case

    embeddings = cached_embeddings(packed)
    assert (packed / PROMPTS_FILE).is_file() and ("noise",) in embeddings
    expected = encode_corpus(corpus_fingerprint())[("noise",)].half().float()
    assert torch.equal(embeddings[("noise",)], expected)

    def no_encoder():
        raise AssertionError("the text encoder was loaded")

    monkeypatch.setattr("textpromptir.text.encoder.prompt_encoder", no_encoder)
    encode_corpus.cache_clear()
    prompt_bank.cache_clear()
    config = TrainConfig(steps=2, batch=2, patch=32, data_root=str(packed), run_dir=str(tmp_path / "run"))
    assert steps_in(train(config, log=lambda line: None)) == 2
    monkeypatch.setattr("textpromptir.training.prompts.corpus_fingerprint", lambda: "another corpus")
    with pytest.raises(AssertionError, match="text encoder was loaded"):
        cached_embeddings(packed)  # a cache of another corpus is made again, not trusted


def test_the_prompt_bank_keeps_only_instructions_the_encoder_reads_as_labelled(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.jsonl"
    rows = [
        ("remove the noise", ["noise"]),
        ("get rid of the grain in this photo", ["noise"]),
        ("remove the rain streaks", ["noise"]),  # mislabelled: the encoder reads rain
        ("remove the haze", ["haze"]),
    ]
    corpus.write_text(
        "".join(
            json.dumps({"text": text, "labels": labels, "strength": None, "template": "t.t", "split": "train"}) + "\n"
            for text, labels in rows
        )
    )
    monkeypatch.setattr("textpromptir.training.prompts.CORPUS_PATH", corpus)
    bank = encode_corpus("a test corpus")
    assert sorted(bank) == [("haze",), ("noise",)]
    assert bank[("noise",)].shape == (2, 384) and bank[("haze",)].shape == (1, 384)


def test_the_committed_configs_continue_the_committed_state():
    training = Path(__file__).resolve().parents[1] / "resources" / "training"
    step = steps_in(training / "lite-cpu.state.safetensors")
    cpu, gpu = (TrainConfig.load(training / name) for name in ("lite-cpu.json", "lite-gpu.json"))
    assert cpu.start_from == gpu.start_from == "resources/training/lite-cpu.state.safetensors"
    assert cpu.cycle_start <= step < cpu.steps  # a committed state may be mid-cycle
    assert gpu.cycle_start == step  # a lent GPU begins a new warm restart from it
    assert load_model(training / "lite-cpu.state.safetensors").config == cpu.model_config() == gpu.model_config()
