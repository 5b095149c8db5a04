"""Stage one: the fine-tuned prompt encoder, its refusals and its cache."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from textpromptir.cli import main
from textpromptir.tasks import EVALUATION_PROMPTS, TASKS
from textpromptir.text import encoder, reading
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


# Long, padded and non-English prompts (issue 22).

STORY = (
    "We drove to the coast early on Saturday with my parents and both of my brothers. "
    "The road was busy, so we stopped twice for coffee and once for a late breakfast at a diner. "
    "My little brother spent the whole trip reading comics in the back seat. "
    "When we finally arrived, the tide was out and we walked along the sand for an hour. "
)


def test_collapse_repeats_keeps_emphasis_and_drops_padding():
    assert reading.collapse_repeats("please please please please fix it") == "please fix it"
    assert reading.collapse_repeats("so so very very dark") == "so so very very dark"
    assert reading.collapse_repeats("fix it now, fix it now, fix it now, thanks") == "fix it now, thanks"
    assert reading.collapse_repeats("blur blur blur, everything") == "blur, everything"


def test_long_prompts_are_read_in_sentences_and_clauses():
    assert reading.pieces("remove the noise please") == ["remove the noise please"]
    long = STORY + "Remove the noise."
    assert reading.pieces(long)[-1] == "Remove the noise." and len(reading.pieces(long)) == 5
    run_on = " ".join(["word"] * 45) + ", and then " + " ".join(["more"] * 50)
    assert all(len(piece.split()) <= reading.CHUNK_WORDS for piece in reading.pieces(run_on))


def test_repeated_sentences_count_once():
    assert reading.sentences("Remove the haze. remove the haze! Remove the haze.") == ["Remove the haze."]
    with pytest.raises(PromptRefused):
        understand("make it look like an oil painting. " * 10)


def test_a_padded_request_is_read_past_its_padding():
    assert understand("please " * 60 + "remove the rain streaks").tasks == ("rain",)
    assert understand("brighten " * 12 + "this photo").tasks == ("low_light",)


def test_a_ten_thousand_character_prompt_is_answered_in_under_a_second():
    """The rules read 10,000 characters in milliseconds and leave the encoder a short text (or refuse), so a long
    prompt costs about what a short one does. CPU seconds, not wall time: the machine may be busy."""
    story = " ".join(f"On day {day} we walked to the harbour and had lunch by the boats." for day in range(160))
    padded = "please " * 1_430 + "remove the rain streaks"
    assert min(len(story), len(padded)) >= 10_000
    started = time.process_time()
    refusal = r"too long: 10,\d{3} characters, and TextPromptIR reads up to 2,000"
    with pytest.raises(reading.PromptTooLong, match=refusal):
        text.check_prompt(story)
    assert text.check_prompt(padded) == "please remove the rain streaks"
    assert time.process_time() - started < 1.0
    assert understand(padded).tasks == ("rain",)


@pytest.mark.parametrize(
    "prompt",
    [
        "удалите шум с этой фотографии",  # noqa: RUF001
        "去除这张照片的噪点",
        "ノイズを消してください please",
        "enlever le bruit de la photo s'il vous plaît",
        "quita la lluvia de esta foto por favor",
        "entferne bitte das Rauschen aus dem Bild",
    ],
)
def test_prompts_mostly_in_another_language_are_refused_in_english(prompt):
    with pytest.raises(reading.PromptNotEnglish, match="English only"):
        understand(prompt)


def test_emoji_and_a_few_foreign_words_are_left_out():
    plain = understand("remove the rain streaks")
    for decorated in ("remove the rain streaks 🙏🌧️", "remove the rain streaks, 谢谢", "🙂 remove the rain streaks"):
        found = understand(decorated)
        assert found.tasks == plain.tasks
        assert torch.dot(found.embedding, plain.embedding) > 0.98
    with pytest.raises(PromptError, match="holds no words"):
        understand("🌧️🌧️🙏")


def test_cli_explains_a_prompt_in_another_language(capsys):
    assert main(["understand", "supprimer le bruit de cette photo"]) == 2
    assert "English only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prompt", "asked"),
    [
        ("Remove the haze so the skyline looks crisp and clear.", "Remove the haze."),
        ("Take out the grain but keep the skin looking natural and sharp.", "Take out the grain."),
        ("Brighten the hallway and keep it smooth, thanks", "Brighten the hallway, thanks"),
        ("Dehaze it until it looks sharp", "Dehaze it"),
        ("Remove the fog but don't make it look grainy.", "Remove the fog."),
        ("Fix it so it isn't blurry", "Fix it so it isn't blurry"),  # a request, not how the result looks
        ("keep the noise but remove the rain", "keep the noise but remove the rain"),
    ],
)
def test_clauses_that_say_how_the_result_should_look_are_set_aside(prompt, asked):
    assert reading.without_outcomes(prompt) == asked


def test_an_outcome_adjective_does_not_add_the_degradation_it_belongs_to():
    """ "crisp" and "sharp" are how deblurring is asked for; after a dehazing request they describe its result."""
    assert understand("make it crisp and sharp").tasks == ("blur",)
    assert understand("Remove the haze and make it sharp.").tasks == ("haze", "blur")
    assert understand("Remove the haze so the skyline looks crisp and sharp.").tasks == ("haze",)
    assert understand("Denoise the night sky so the stars look crisp.").tasks == ("noise",)


def test_a_prompt_that_is_only_an_outcome_is_read_whole():
    assert reading.without_outcomes("Make it so it looks less foggy") == "Make it"
    assert understand("Make it so it looks less foggy").tasks == ("haze",)


def test_story_sentences_around_a_request_add_nothing():
    """Several pieces are several chances to misread one: there a degradation must be named at 0.9."""
    story = (
        "Last spring we visited my uncle, who lives in a small house near the old harbour. "
        "We had a long lunch on his terrace and watched the fishing boats come in. "
        "My grandmother kept all her letters in a tin box under the stairs for fifty years. "
        "The drive home took four hours because of the holiday traffic on the coast road. "
    )
    assert understand(story + "Could you remove the noise?").tasks == ("noise",)  # the harbour read as haze at 0.64
    assert understand(story + "Please brighten it. Remove the JPEG blocks too.").tasks == ("low_light", "jpeg")
    several = text.combine("x", torch.zeros(2, 384), torch.tensor([[1.0, -9, -9, -9, -9, -9]] * 2), torch.zeros(2, 3))
    assert several.confidences["noise"] == pytest.approx(0.731, abs=1e-3) and several.tasks == ()
    single = text.combine("x", torch.zeros(1, 384), torch.tensor([[1.0, -9, -9, -9, -9, -9]]), torch.zeros(1, 3))
    assert single.tasks == ("noise",)
