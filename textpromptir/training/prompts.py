"""The instructions training pairs with its patches: the corpus's embeddings, cached in the data root."""

from __future__ import annotations

import functools
import hashlib
import os
import random
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from textpromptir.tasks import TASKS
from textpromptir.text.encoder import TEXT_WEIGHTS
from textpromptir.text.instructions import DEFAULT_PATH as CORPUS_PATH
from textpromptir.text.instructions import read_corpus

PROMPTS_FILE = "prompts.safetensors"
# How the bank chooses its instructions (encode_corpus); a cache made by another rule is made again.
BANK_RULE = "the training split, as far as the encoder reads it right"


class PromptBank:
    """Embeddings of every training instruction, grouped by the exact set of degradations it names."""

    def __init__(self, embeddings: dict[tuple[str, ...], torch.Tensor]) -> None:
        self.embeddings = dict(sorted(embeddings.items()))
        self.singles = [labels for labels in self.embeddings if len(labels) == 1]
        self.pairs = [labels for labels in self.embeddings if len(labels) == 2]

    def draw(self, rng: random.Random, combination_share: float) -> tuple[tuple[str, ...], torch.Tensor]:
        pool = self.pairs if self.pairs and rng.random() < combination_share else self.singles
        labels = rng.choice(pool)
        prompts = self.embeddings[labels]
        return labels, prompts[rng.randrange(len(prompts))]


@functools.lru_cache(maxsize=2)
def prompt_bank(tasks: tuple[str, ...], data_root: Path) -> PromptBank:
    """The bank for these tasks, built once per process from the data root's cache of the corpus's embeddings."""
    embeddings = cached_embeddings(Path(data_root))
    return PromptBank({labels: rows for labels, rows in embeddings.items() if set(labels) <= set(tasks)})


def cached_embeddings(data_root: Path) -> dict[tuple[str, ...], torch.Tensor]:
    """The training split's embeddings, kept in the data root so that a run needs no text encoder.

    The cache is made again when the corpus or the text encoder's weights change. It is
    fp16, and used as fp16 everywhere, so every machine trains on the same numbers.
    """
    path = data_root / PROMPTS_FILE
    fingerprint = corpus_fingerprint()
    if path.is_file() and stored_fingerprint(path) == fingerprint:
        return {tuple(key.split("+")): rows.float() for key, rows in load_file(str(path)).items()}
    halves = {labels: rows.half().contiguous() for labels, rows in encode_corpus(fingerprint).items()}
    data_root.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # each process of a data-parallel run writes its own
    save_file({"+".join(labels): rows for labels, rows in halves.items()}, str(partial), {"fingerprint": fingerprint})
    os.replace(partial, path)
    return {labels: rows.float() for labels, rows in halves.items()}


def stored_fingerprint(path: Path) -> str | None:
    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get("fingerprint")


def corpus_fingerprint() -> str:
    digest = hashlib.sha256(BANK_RULE.encode())
    for path in (CORPUS_PATH, TEXT_WEIGHTS):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def encode_corpus(fingerprint: str) -> dict[tuple[str, ...], torch.Tensor]:
    """Unit-length pooled embeddings of the corpus's training split, by label set; once per process and
    `fingerprint` (the corpus and the encoder it was made from). Seconds on a CPU.

    Only the instructions that the encoder reads as naming exactly their labels are kept: the
    backbone acts on what the embedding conveys, and one the encoder misreads (a negation it
    does not follow, say) would teach it to remove rain from an embedding that means haze.
    """
    from textpromptir.text.encoder import THRESHOLD, encode

    corpus = [item for item in read_corpus(CORPUS_PATH) if item.split == "train" and item.labels]
    embeddings, task_logits, _ = encode([item.text for item in corpus])
    named = torch.sigmoid(task_logits) >= THRESHOLD  # (N, tasks)
    labelled = torch.tensor([[task in item.labels for task in TASKS] for item in corpus])
    read_right = (named == labelled).all(dim=1)
    kept = {
        labels: [i for i, item in enumerate(corpus) if item.labels == labels and read_right[i]]
        for labels in sorted({item.labels for item in corpus})
    }
    return {labels: embeddings[rows] for labels, rows in kept.items() if rows}
