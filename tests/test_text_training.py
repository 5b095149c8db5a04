"""Retraining the prompt encoder without breaking the restoration backbones trained on its embeddings."""

import random

import pytest
import torch

from textpromptir.engine.weights import SHIPPED_WEIGHTS, load_model
from textpromptir.text.encoder import TEXT_WEIGHTS, PromptEncoder
from textpromptir.text.instructions import late_families, read_corpus
from textpromptir.training.text_encoder import CORPUS_PATH, embeddings, projector_targets, prompt_error, refit_projector


@pytest.fixture(scope="module")
def encoders() -> tuple[PromptEncoder, PromptEncoder]:
    """The shipped encoder, and one with noise on its adapters: embeddings moved as much as by a retraining."""
    before = PromptEncoder()
    before.load_tuned(TEXT_WEIGHTS)
    after = PromptEncoder()
    after.load_tuned(TEXT_WEIGHTS)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in after.named_parameters():
            if ".up." in name:
                parameter.add_(torch.randn_like(parameter) * 0.02)
    return before.eval(), after.eval()


def test_refit_gives_the_backbone_its_old_prompts(encoders):
    before, after = encoders
    corpus = read_corpus(CORPUS_PATH)
    # The sentences before issue 22's families, as this test has always drawn them.
    late = {fam.name for fam in late_families()}
    earlier = [item for item in corpus if item.split == "train" and item.labels and item.template not in late]
    sample = random.Random(0).sample(earlier, 600)
    held_out = [item for item in corpus if item.split == "val" and item.labels][::4]
    model = load_model(SHIPPED_WEIGHTS)
    untouched = {name: t.clone() for name, t in model.state_dict().items() if not name.startswith("prompt_projector.")}

    wanted = projector_targets(load_model(SHIPPED_WEIGHTS), before, held_out)
    held_out_inputs = embeddings(after, [item.text for item in held_out])[0]
    held_out_before = prompt_error(model, wanted, held_out_inputs)

    error_before, error_after = refit_projector(model, before, after, sample, steps=500)

    assert error_before > 0.08
    assert error_after < 0.04
    assert prompt_error(model, wanted, held_out_inputs) < 0.6 * held_out_before
    for name, tensor in model.state_dict().items():
        if name in untouched:
            assert torch.equal(tensor, untouched[name]), name
