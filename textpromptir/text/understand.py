"""Stage one: understand a prompt and turn it into the semantic prompt.

The prompt encoder (`textpromptir.text.encoder`) reads which degradations a
prompt names and how strong; this module decides what that means for a
request: which restorations to run, or a refusal that says what TextPromptIR
can do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from textpromptir.errors import PromptError
from textpromptir.tasks import STRENGTH_CLASSES, TASK_NAMES, TASKS

from .encoder import THRESHOLD, encode

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


def check_prompt(prompt: str) -> str:
    cleaned = " ".join(prompt.split())
    if not cleaned:
        raise PromptError(f"The prompt is empty: describe what to fix. {CAPABILITIES}")
    return cleaned


@functools.lru_cache(maxsize=256)
def read_prompt(prompt: str) -> Understanding:
    """What a prompt asks for, refused or not. Repeated prompts cost nothing."""
    cleaned = check_prompt(prompt)
    embeddings, task_logits, strength_logits = encode([cleaned])
    probabilities = torch.sigmoid(task_logits[0]).tolist()
    confidences = {task: round(p, 4) for task, p in zip(TASKS, probabilities, strict=True)}
    return Understanding(
        prompt=cleaned,
        tasks=tuple(task for task in TASKS if confidences[task] >= THRESHOLD),
        confidences=confidences,
        strength=STRENGTH_CLASSES[int(strength_logits[0].argmax())],
        embedding=embeddings[0],
    )


def understand(prompt: str) -> Understanding:
    """What a prompt asks to restore; refuses prompts that name no restoration."""
    understanding = read_prompt(prompt)
    if not understanding.tasks:
        raise PromptRefused(f'Nothing to restore was found in "{understanding.prompt}". {CAPABILITIES}')
    return understanding
