"""The fixed-budget study and the recipe switches it compares."""

import json
import math
import time
from pathlib import Path

import pytest
import torch

from textpromptir.model import SIZES, TextPromptIR
from textpromptir.training import recipe
from textpromptir.training.config import TrainConfig
from textpromptir.training.evaluate import OURS, WRONG_PROMPT, Row, cases, held_out_cases
from textpromptir.training.schedule import RunClock
from textpromptir.training.study import Result, StudyConfig, candidate_config, markdown, row_for


def test_psnr_loss_is_minus_the_mean_psnr_of_the_images():
    clean = torch.zeros(2, 3, 8, 8)
    restored = clean.clone()
    restored[0] += 0.1  # MSE 0.01: 20 dB
    restored[1] += 0.01  # MSE 1e-4: 40 dB
    assert recipe.pixel_loss("psnr", restored, clean).item() == pytest.approx(-30.0, abs=1e-3)
    assert recipe.pixel_loss("l1", restored, clean).item() == pytest.approx(0.055)


def test_charbonnier_is_l1_away_from_zero_and_smooth_at_it():
    clean = torch.zeros(1, 3, 4, 4)
    assert recipe.pixel_loss("charbonnier", clean + 0.5, clean).item() == pytest.approx(0.5, abs=1e-5)
    assert recipe.pixel_loss("charbonnier", clean, clean).item() == pytest.approx(recipe.CHARBONNIER_EPS)


def test_frequency_loss_weighs_lost_detail_more_than_a_flat_shift_of_the_same_l1():
    clean = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(clean, 3, stride=1, padding=1, count_include_pad=False)
    shifted = clean + (blurred - clean).abs().mean()
    assert recipe.pixel_loss("l1", shifted, clean).item() == pytest.approx(
        recipe.pixel_loss("l1", blurred, clean).item()
    )
    assert recipe.frequency_loss(blurred, clean) > 10 * recipe.frequency_loss(shifted, clean)
    assert recipe.frequency_loss(clean, clean).item() == 0.0
    total = recipe.restoration_loss("l1", 0.5, blurred, clean)
    expected = recipe.pixel_loss("l1", blurred, clean) + 0.5 * recipe.frequency_loss(blurred, clean)
    assert total.item() == pytest.approx(expected.item())


def test_the_weight_average_moves_by_one_minus_its_decay():
    torch.manual_seed(0)
    model = TextPromptIR(SIZES["naf"])
    average = recipe.WeightAverage(model, decay=0.9)
    before = average.model.embed.weight.clone()
    with torch.no_grad():
        model.embed.weight.add_(1.0)
    average.update(model)
    torch.testing.assert_close(average.model.embed.weight, before + 0.1)
    assert not average.model.embed.weight.requires_grad


def test_bf16_detection_reads_the_cpu_flags():
    flags = Path("/proc/cpuinfo").read_text()
    assert recipe.cpu_has_native_bf16() == (" avx512_bf16" in flags or " amx_bf16" in flags)


def test_a_cpu_clock_counts_this_process_only():
    clock = RunClock(1.0, 0, 10, now=time.process_time)
    time.sleep(0.3)  # waiting costs no CPU time
    assert clock.elapsed() < 0.1


def test_train_config_refuses_unknown_recipe_words():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="l2")
    with pytest.raises(ValueError, match="time_clock"):
        TrainConfig(time_clock="CPU")


def study_of(**extra) -> StudyConfig:
    return StudyConfig(
        cpu_minutes=3,
        candidates=[{"name": "naf, EMA", "size": "naf", "ema": 0.99}, {"name": "lite", "size": "lite"}],
        train={"batch": 4, "max_minutes": 60, "time_clock": "wall"},
        **extra,
    )


def test_every_candidate_trains_for_the_same_cpu_budget_in_a_directory_of_its_own():
    study = study_of(run_root="runs/x")
    naf, lite = (candidate_config(study, candidate) for candidate in study.candidates)
    for config in (naf, lite):
        assert (config.max_minutes, config.time_clock, config.cpu_processes, config.batch) == (3, "cpu", 1, 4)
    assert (naf.size, naf.ema, naf.run_dir) == ("naf", 0.99, "runs/x/naf--ema")
    assert (lite.size, lite.ema, lite.run_dir) == ("lite", None, "runs/x/lite")


def test_a_study_file_needs_distinct_names(tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"cpu_minutes": 1, "candidates": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ValueError, match="name of its own"):
        StudyConfig.load(path)
    path.write_text(json.dumps({"cpu_minutes": 1, "candidates": [], "budget": 3}))
    with pytest.raises(ValueError, match="budget"):
        StudyConfig.load(path)


def rows_scoring(offset: float) -> list[Row]:
    """Our rows of both pools, each case's PSNR its position plus `offset`, input PSNR its position."""
    names = [*cases(), *held_out_cases()]
    rows = [Row(case, "p", 8, index, 0.5, index + offset, 0.6, 1.0, OURS) for index, case in enumerate(names)]
    rows.insert(len(cases()), Row(*WRONG_PROMPT, 8, 3.0, 0.5, -1.0, 0.4, 1.0, OURS))
    return rows


def test_the_table_has_a_column_per_case_of_each_pool_and_a_row_per_candidate():
    results = [
        Result("naf", 3_670_000, 900, rows_scoring(10), 0.6, {8: 0.1, 4: 0.2, 2: -0.3}),
        Result("lite", 2_390_000, 700, rows_scoring(0), 1, {8: 5.0, 4: 2.5, 2: 1.0}),
    ]
    table = markdown(study_of(), results, "textpromptir study --config s.json")
    first, held_out = table.split("## ")[1:]
    assert "| candidate | period 8 | period 4 | period 2 |" in first
    assert "| naf | 0.1 | 0.2 | -0.3 |" in first and "| lite | 5.0 | 2.5 | 1.0 |" in first
    assert "| candidate | parameters | steps | noise 15 | noise 25 | noise 50 | rain | haze |" in first
    assert "low light | jpeg | wrong prompt | s/MP vs lite |" in first
    assert "| naf | 3.67 M | 900 | 10.00 | 11.00 | 12.00 | 13.00 |" in first and "| 7.00 | -1.00 | 1.00 |" in first
    assert "| 17.00 | -1.00 | 0.60 |" in first  # JPEG, the wrong prompt, the speed ratio
    assert (
        "| candidate | parameters | steps | noise | rain | haze | blur | low light | jpeg | s/MP vs lite |" in held_out
    )
    assert "| input | | | 8.00 | 9.00 |" in held_out and "| lite | 2.39 M | 700 | 8.00 |" in held_out
    assert row_for(results[0].rows, "wrong prompt").psnr == -1.0
    assert row_for(results[0].rows, "noise sigma 25").psnr == 11.0
    assert math.isclose(row_for(results[1].rows, "held-out jpeg").psnr, 13.0)
