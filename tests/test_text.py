"""Stage one: the fine-tuned prompt encoder, its refusals and its cache."""

import json
import os
import subprocess
import sys

import pytest
import torch

from textpromptir.cli import main
from textpromptir.tasks import EVALUATION_PROMPTS, TASKS
from textpromptir.text import encoder
from textpromptir.text import understand as text
from textpromptir.text.understand import CAPABILITIES, PromptError, PromptRefused, understand


@pytest.mark.parametrize(
    "prompt, tasks",
    [
        ("remove the rain streaks", ("rain",)),
        ("this night shot is super grainy", ("noise",)),
        ("it's all foggy", ("haze",)),
        ("make it sharper, it's blurry", ("blur",)),
        ("the jpeg is blocky", ("jpeg",)),
        ("way too dark, brighten it", ("low_light",)),
        ("remove the rain and the haze", ("rain", "haze")),
        ("dark and grainy, please fix", ("noise", "low_light")),
    ],
)
def test_degradations_are_found(prompt, tasks):
    understanding = understand(prompt)
    assert understanding.tasks == tasks
    assert all(understanding.confidences[task] >= 0.5 for task in tasks)
    assert understanding.embedding.shape == (384,)
    assert torch.linalg.vector_norm(understanding.embedding).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("prompt", ["add a dragon", "make it black and white", "hello there", "asdf qwer zxcv"])
def test_prompts_that_name_no_restoration_are_refused(prompt):
    with pytest.raises(PromptRefused) as refused:
        understand(prompt)
    assert f'"{prompt}"' in str(refused.value) and CAPABILITIES in str(refused.value)


@pytest.mark.parametrize("prompt", ["", "  \t\n "])
def test_empty_prompts_are_refused(prompt):
    with pytest.raises(PromptError, match="empty"):
        understand(prompt)


def test_strength_words_are_read():
    assert understand("there is a little bit of noise").strength == "slight"
    assert understand("extremely heavy rain, remove it").strength == "heavy"
    assert understand("remove the haze").strength is None


def test_every_stage_reads_the_one_task_list():
    """The shipped head, the corpus, the synthesised degradations and the evaluation prompts all follow TASKS."""
    from safetensors import safe_open

    from textpromptir.text.instructions import DEFAULT_PATH, read_corpus
    from textpromptir.training.degradations import DEGRADATIONS

    with safe_open(str(encoder.TEXT_WEIGHTS), framework="pt") as weights:
        assert tuple(json.loads(weights.metadata()["tasks"])) == TASKS
    assert {label for item in read_corpus(DEFAULT_PATH) for label in item.labels} == set(TASKS)
    assert tuple(DEGRADATIONS) == TASKS
    for task, prompt in EVALUATION_PROMPTS.items():
        assert understand(prompt).tasks == (task,)


def test_describe_names_tasks_with_confidence():
    description = understand("remove the rain streaks").describe()
    assert description.startswith("rain streaks ") and description.endswith("%")


def test_the_embedding_separates_tasks():
    rain = understand("remove the rain streaks").embedding
    similar = understand("get rid of the rain please").embedding
    noise = understand("denoise this photo").embedding
    assert torch.dot(rain, similar) > torch.dot(rain, noise) + 0.2


def test_a_repeated_prompt_is_served_from_the_cache():
    understand("remove the noise")
    hits = text.read_prompt.cache_info().hits
    assert understand("remove the noise") is understand("remove the noise")
    assert text.read_prompt.cache_info().hits == hits + 2
    assert encoder.prompt_encoder.cache_info().currsize == 1  # one encoder for the process


def test_cli_understand_json(capsys):
    assert main(["understand", "remove the rain and the haze", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["tasks"] == ["rain", "haze"] and len(answer["embedding"]) == 384
    assert set(answer["confidences"]) == set(TASKS)


def test_cli_understand_refusal(capsys):
    assert main(["understand", "add a dragon"]) == 2
    assert "Nothing to restore" in capsys.readouterr().err


def test_loads_offline_with_the_network_cut(tmp_path):
    """In a fresh process where every socket fails and the hub is off, the encoder still loads."""
    script = tmp_path / "offline.py"
    script.write_text(
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from textpromptir.text.understand import understand\n"
        "print(understand('remove the rain').tasks)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('rain',)"
