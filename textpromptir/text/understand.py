"""Stage one: understand a prompt and turn it into the semantic prompt.

The prompt encoder (`textpromptir.text.encoder`) reads which degradations a
prompt names and how strong; `textpromptir.text.reading` decides what it
reads of a long, padded or non-English prompt. This module puts the two
together: which restorations to run, or a refusal that says what
TextPromptIR can do.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from textpromptir.errors import PromptError
from textpromptir.tasks import STRENGTH_CLASSES, SUGGESTED_STRENGTH, TASK_NAMES, TASKS

from .encoder import THRESHOLD, PromptEncoder, encode
from .reading import clean, pieces, shorten, strongest, without_outcomes

CAPABILITIES = (
    "TextPromptIR removes noise and grain, rain streaks, haze and fog, blur, low light (photos too dark) "
    'and JPEG artifacts, one or several at a time. Try "remove the noise", "get rid of the rain and the haze" '
    'or "brighten this dark, grainy photo".'
)


# A prompt read in several pieces (a long one) gets several chances to misread a story sentence as a
# request, so there a degradation must be named more clearly. With the shipped encoder 0.9 drops the
# story sentences it misreads at 0.6-0.8 (resources/weights/README.md, "Reading rules").
SEVERAL_PIECES_THRESHOLD = 0.9


class PromptRefused(PromptError):
    """The prompt names no restoration that TextPromptIR can do."""


@dataclass(frozen=True)
class Understanding:
    prompt: str
    tasks: tuple[str, ...]  # the degradations named, in TASKS order
    confidences: dict[str, float]  # every task's probability
    strength: str | None  # "slight", "moderate", "heavy" or None
    embedding: torch.Tensor  # (384,) the semantic prompt

    @property
    def suggested_strength(self) -> float:
        """The blend of restored and original pixels that the strength word asks for (1.0: all restored)."""
        return SUGGESTED_STRENGTH[self.strength]

    def describe(self) -> str:
        """What was understood, as a dialog shows it: "rain streaks 97 %, haze and fog 88 %"."""
        found = ", ".join(f"{TASK_NAMES[task]} {self.confidences[task]:.0%}" for task in self.tasks)
        return f"{found} ({self.strength})" if self.strength else found


def check_prompt(prompt: str) -> str:
    """The prompt as the encoder reads it; refuses empty, non-English and too long prompts with a message."""
    return clean(prompt, CAPABILITIES)


def combine(
    prompt: str, embeddings: torch.Tensor, task_logits: torch.Tensor, strength_logits: torch.Tensor
) -> Understanding:
    """One understanding from the readings of a prompt's pieces (one piece for most prompts).

    A degradation counts when any piece names it (more clearly when there are
    several pieces), with its highest confidence; the strength is that of the
    piece naming a degradation most clearly; the semantic prompt is the mean of
    the pieces that name one, normalised.
    """
    threshold = THRESHOLD if len(task_logits) == 1 else SEVERAL_PIECES_THRESHOLD
    probabilities = torch.sigmoid(task_logits)
    confidences = {task: round(p, 4) for task, p in zip(TASKS, probabilities.amax(dim=0).tolist(), strict=True)}
    asking = probabilities.amax(dim=1) >= threshold
    embedding = embeddings[0] if len(embeddings) == 1 else embeddings[asking if asking.any() else ~asking].mean(0)
    return Understanding(
        prompt=prompt,
        tasks=tuple(task for task in TASKS if confidences[task] >= threshold),
        confidences=confidences,
        strength=STRENGTH_CLASSES[int(strength_logits[strongest(probabilities.tolist())].argmax())],
        embedding=nn.functional.normalize(embedding, dim=-1),
    )


def read_cleaned(prompts: Sequence[str], encoder: PromptEncoder | None = None) -> list[Understanding]:
    """Understandings of prompts that `check_prompt` has cleaned, all encoded together: each without
    the clauses that say how the result should look, or whole when the rest names nothing."""
    texts = [without_outcomes(prompt) for prompt in prompts]
    readings = read_texts(prompts, texts, encoder)
    again = [i for i, reading in enumerate(readings) if not reading.tasks and texts[i] != prompts[i]]
    whole = [prompts[i] for i in again]
    for index, reading in zip(again, read_texts(whole, whole, encoder), strict=True):
        readings[index] = reading
    return readings


def read_texts(prompts: Sequence[str], texts: Sequence[str], encoder: PromptEncoder | None) -> list[Understanding]:
    """Understandings of `prompts`, read from `texts` (each a prompt or part of it), all encoded together."""
    if not prompts:
        return []
    split = [pieces(text) for text in texts]
    embeddings, task_logits, strength_logits = encode([piece for parts in split for piece in parts], encoder)
    understandings, start = [], 0
    for prompt, parts in zip(prompts, split, strict=True):
        end = start + len(parts)
        understandings.append(
            combine(prompt, embeddings[start:end], task_logits[start:end], strength_logits[start:end])
        )
        start = end
    return understandings


@functools.lru_cache(maxsize=256)
def read_prompt(prompt: str) -> Understanding:
    """What a prompt asks for, refused or not. Repeated prompts cost nothing."""
    return read_cleaned([check_prompt(prompt)])[0]


def understand(prompt: str) -> Understanding:
    """What a prompt asks to restore; refuses prompts that name no restoration."""
    understanding = read_prompt(prompt)
    if not understanding.tasks:
        raise PromptRefused(f'Nothing to restore was found in "{shorten(understanding.prompt, 80)}". {CAPABILITIES}')
    return understanding
