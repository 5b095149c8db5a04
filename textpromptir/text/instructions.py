"""The instruction corpus for the text-understanding stage.

Every sentence comes from material written by us (`textpromptir.text.phrases`
reads it from resources/instructions/*.json): template families (a few
patterns that share one way of phrasing a request) filled from phrase lists
(verbs, nouns, adjectives, subjects, intensifiers, politeness). Sampling uses
a fixed seed, so the same seed always gives the same corpus.

Labels: a sorted subset of TASKS (two or three for combined requests);
the empty tuple is the `none` class, prompts that ask for no restoration we
offer (edits, questions, chit-chat, gibberish, and near-misses that *ask for*
a degradation, such as "add rain to the scene").

The validation split holds whole template families, never single sentences,
so it measures how well the encoder copes with phrasings it never saw.

Build and write it with `textpromptir corpus [PATH]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from textpromptir.resources import resource
from textpromptir.tasks import STRENGTHS, TASKS

from .phrases import (
    ADDED_FAMILIES,
    ADDED_NONE_FAMILIES,
    COMBO_FAMILIES,
    COMMON_SLOTS,
    CONTRAST_FAMILIES,
    EFFECT_FAMILIES,
    GENERIC_FAMILIES,
    MISSPELLINGS,
    NONE_FAMILIES,
    PADDING_FAMILIES,
    SITUATION_FAMILIES,
    SLOT,
    SPECIFIC_FAMILIES,
    STRENGTH_WORDS,
    VOCABULARY,
    Family,
)

NONE = "none"
COMBO = "combo"
# The classes corpus counts are reported for: each degradation alone, any
# combination of two or three, and none.
CATEGORIES = (*TASKS, COMBO, NONE)
SPLITS = ("train", "val")
# Styles of the families that ask for a restoration, and of those that do not.
STYLES = ("imperative", "request", "descriptive", "question", "casual", "terse", "jargon")
NONE_STYLES = ("edit", "nearmiss", "unsupported", "vague", "question", "chitchat", "caption", "gibberish")
NONE_ACTION_STYLES = ("edit", "nearmiss", "unsupported", "vague")  # the rest is talk, not a request

DEFAULT_PATH = resource("instructions", "corpus.jsonl")

# About this share of the template families of every pool goes to validation.
VAL_FRACTION = 0.18
# Sentences drawn per family: per degradation for the shared families, per
# combination for the combined ones. Small families give fewer (they run dry).
GENERIC_QUOTA = 14
SPECIFIC_QUOTA = 20
PAIR_QUOTA = 3
TRIPLE_QUOTA = 2
NONE_QUOTA = 40
# Give up on a family after this many draws per wanted sentence.
DRAWS_PER_SENTENCE = 30
# Share of sentences that get one or two misspellings from MISSPELLINGS.
MISSPELL_RATE = 0.2
# A strength slot stays empty this often, so most sentences name no strength.
EMPTY_STRENGTH_RATE = 0.45


@dataclass(frozen=True)
class Instruction:
    text: str
    labels: tuple[str, ...]  # sorted subset of TASKS; () means none
    strength: str | None  # one of STRENGTHS, or None when no strength word was used
    template: str  # the template family the sentence came from, "style.name"
    split: str  # "train" or "val"


def category(labels: Sequence[str]) -> str:
    """The reporting class of a label set: the degradation, "combo" or "none"."""
    if not labels:
        return NONE
    return labels[0] if len(labels) == 1 else COMBO


# ---------------------------------------------------------------------------
# Rendering.


def render(pattern: str, slots: Mapping[str, Sequence[str]], rng: random.Random) -> tuple[str, str | None]:
    """Fill a pattern's slots (values may hold slots themselves); return the text and its strength."""
    strength: str | None = None

    def fill(match: re.Match[str]) -> str:
        nonlocal strength
        name = match.group(1)
        if name in STRENGTH_WORDS:
            if rng.random() < EMPTY_STRENGTH_RATE:
                return ""
            strength = rng.choice(STRENGTHS)
            return rng.choice(STRENGTH_WORDS[name][strength])
        return rng.choice(slots[name])

    text = pattern
    while SLOT.search(text):
        text = SLOT.sub(fill, text)
    return tidy(text), strength


def tidy(text: str) -> str:
    """Collapse the spaces that empty slots leave and the space before punctuation."""
    text = " ".join(text.split())
    text = re.sub(r"\s+([,.?!:%])", r"\1", text)
    return text.strip(" ,:")


def misspell(text: str, rng: random.Random) -> str:
    """Replace one or two words that have known misspellings."""
    present = [word for word in MISSPELLINGS if re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)]
    if not present:
        return text
    for word in rng.sample(present, k=min(len(present), rng.choice((1, 1, 2)))):
        text = re.sub(rf"\b{re.escape(word)}\b", rng.choice(MISSPELLINGS[word]), text, count=1, flags=re.IGNORECASE)
    return text


def surface(text: str, style: str, rng: random.Random) -> str:
    """Vary capitals and final punctuation the way people type: casual and terse text stays lower case."""
    if style in ("casual", "terse", "gibberish"):
        text = text.lower()
        return text.rstrip("?") if style == "casual" and rng.random() < 0.3 else text
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if text[-1].isalnum():
        ending = rng.random()
        text += "." if ending < 0.25 else "!" if ending < 0.3 else ""
    return text


def normalise(text: str) -> str:
    """The key two sentences count as duplicates under: case, punctuation and spacing ignored."""
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


# ---------------------------------------------------------------------------
# Building.


def late_families() -> list[Family]:
    """Issue 22's families (contrast, implied situations, effects, padding), drawn last."""
    situations = itertools.chain.from_iterable(SITUATION_FAMILIES.values())
    return [*situations, *CONTRAST_FAMILIES, *EFFECT_FAMILIES, *PADDING_FAMILIES]


def all_families() -> list[Family]:
    specific = itertools.chain.from_iterable(SPECIFIC_FAMILIES.values())
    earlier = [*GENERIC_FAMILIES, *ADDED_FAMILIES, *specific, *COMBO_FAMILIES, *NONE_FAMILIES, *ADDED_NONE_FAMILIES]
    return [*earlier, *late_families()]


def check_families() -> None:
    """Fail early on a misspelt slot, a duplicated family name or two strength slots in one pattern."""
    names = [f.name for f in all_families()]
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise ValueError(f"template family names used twice: {duplicated}")
    known = set(COMMON_SLOTS) | set(STRENGTH_WORDS)
    single = set(VOCABULARY["noise"].slots())
    roles = set().union(*(VOCABULARY["noise"].slots(suffix) for suffix in ("_a", "_b", "_c")))
    denied = set(VOCABULARY["noise"].slots("_x")) | set(VOCABULARY["noise"].slots("_y"))
    late = late_families()
    for fam in all_families():
        if fam.style not in STYLES + NONE_STYLES:
            raise ValueError(f"{fam.name}: unknown style {fam.style!r}")
        available = known | set(fam.slots) | (roles if fam in COMBO_FAMILIES else single)
        if fam in late:
            available |= roles | denied
        for pattern in (*fam.patterns, *itertools.chain.from_iterable(fam.slots.values())):
            used = SLOT.findall(pattern)
            if unknown := set(used) - available:
                raise ValueError(f"{fam.name}: unknown slots {sorted(unknown)} in {pattern!r}")
            if sum(name in STRENGTH_WORDS for name in used) > 1:
                raise ValueError(f"{fam.name}: more than one strength slot in {pattern!r}")


def choose_val_families(families: Sequence[Family], rng: random.Random) -> set[str]:
    """Pick about VAL_FRACTION of a pool's families, spread over styles, never a style's last one.

    Taking styles in turns keeps every style in both splits where the pool has
    two families of it; keeping the last family of a style in training makes
    sure training sees every style.
    """
    by_style: dict[str, list[Family]] = {}
    for fam in families:
        by_style.setdefault(fam.style, []).append(fam)
    candidates: dict[str, list[Family]] = {}
    for style, members in by_style.items():
        shuffled = members[:]
        rng.shuffle(shuffled)
        candidates[style] = shuffled[:-1]
    order = sorted(candidates)
    rng.shuffle(order)
    wanted = max(1, round(len(families) * VAL_FRACTION))
    chosen: set[str] = set()
    while len(chosen) < wanted and any(candidates.values()):
        for style in order:
            if candidates[style] and len(chosen) < wanted:
                chosen.add(candidates[style].pop().name)
    return chosen


def val_families(seed: int) -> set[str]:
    """Every family that goes to validation. Shared families are chosen once, for all degradations."""
    pools = {
        "generic": GENERIC_FAMILIES,
        **{f"specific-{name}": families for name, families in SPECIFIC_FAMILIES.items()},
        "pairs": tuple(f for f in COMBO_FAMILIES if f.arity == 2),
        "triples": tuple(f for f in COMBO_FAMILIES if f.arity == 3),
        # Requests for another action and plain talk are drawn apart, so that
        # validation holds some of each.
        "none-actions": tuple(f for f in NONE_FAMILIES if f.style in NONE_ACTION_STYLES),
        "none-talk": tuple(f for f in NONE_FAMILIES if f.style not in NONE_ACTION_STYLES),
    }
    chosen: set[str] = set()
    for pool, families in pools.items():
        chosen |= choose_val_families(families, random.Random(f"{seed}/split/{pool}"))
    return chosen


def sample_family(
    fam: Family,
    labels: tuple[str, ...],
    slot_choices: Sequence[Mapping[str, Sequence[str]]],
    quota: int,
    split: str,
    rng: random.Random,
    seen: dict[str, tuple[str, ...]],
) -> list[Instruction]:
    """Draw up to `quota` new sentences from a family; `seen` holds every key drawn so far.

    `slot_choices` holds one slot table per way of filling the roles (combos
    put their degradations in every order).
    """
    found: list[Instruction] = []
    for _ in range(quota * DRAWS_PER_SENTENCE):
        if len(found) == quota:
            break
        slots = rng.choice(slot_choices)
        text, strength = render(rng.choice(fam.patterns), slots, rng)
        if rng.random() < MISSPELL_RATE:
            text = misspell(text, rng)
        text = surface(text, fam.style, rng)
        key = normalise(text)
        if key in seen:
            if seen[key] != labels:
                raise ValueError(f"{text!r} drawn for both {seen[key]} and {labels}")
            continue
        seen[key] = labels
        found.append(Instruction(text, labels, strength, fam.name, split))
    return found


def combos() -> list[tuple[str, ...]]:
    """Every pair and triple of degradations, in TASKS order."""
    return [combo for size in (2, 3) for combo in itertools.combinations(TASKS, size)]


def role_slots(order: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Slots for a combined request: the first degradation fills the "_a" slots, the next "_b", then "_c"."""
    slots = dict(COMMON_SLOTS)
    for role, name in zip("abc", order, strict=False):
        slots.update(VOCABULARY[name].slots(f"_{role}"))
    return slots


def late_draws(fam: Family) -> Iterator[tuple[tuple[str, ...], str, list[dict[str, tuple[str, ...]]]]]:
    """Each label set a shared late family is drawn for, the degradations it denies or adds ("+"-joined), and
    one slot table per order of the degradations asked for.

    Roles a, b, c take the degradations asked for and x one more, denied or wanted as an effect (y a
    second one denied, in every order with x); a family without roles asks for one degradation in plain
    slots, or for nothing when it is a `none` family.
    """
    wanted = sorted(fam.roles - {"x", "y"})
    if fam.none:
        label_sets: list[tuple[str, ...]] = [()]
    elif wanted:
        label_sets = list(itertools.combinations(TASKS, len(wanted)))
    else:
        label_sets = [(name,) for name in TASKS]
    if "y" in fam.roles:
        denials: list[tuple[str, ...]] = list(itertools.permutations(TASKS, 2))
    else:
        denials = [(name,) for name in TASKS] if "x" in fam.roles else [()]
    for labels in label_sets:
        for denied in denials:
            if set(denied) & set(labels):
                continue
            tables = []
            for order in itertools.permutations(labels) if wanted else [()]:
                slots = dict(COMMON_SLOTS)
                for role, name in zip(wanted, order, strict=True):
                    slots.update(VOCABULARY[name].slots(f"_{role}"))
                if labels and not wanted:
                    slots.update(VOCABULARY[labels[0]].slots())
                for role, name in zip("xy", denied, strict=False):
                    slots.update(VOCABULARY[name].slots(f"_{role}"))
                tables.append({**slots, **fam.slots})
            yield labels, "+".join(denied), tables


def build_corpus(seed: int = 0) -> list[Instruction]:
    """The whole corpus, deterministic for a seed: single degradations, then combinations, then none, then
    issue 22's families (last, so that every sentence drawn before them stays as it was)."""
    check_families()
    val = val_families(seed)
    seen: dict[str, tuple[str, ...]] = {}
    corpus: list[Instruction] = []

    def draw(fam: Family, labels: tuple[str, ...], slot_choices: list[dict], quota: int, denied: str = "") -> None:
        stream = f"{seed}/{fam.name}/{'+'.join(labels) or NONE}" + (f"/not-{denied}" if denied else "")
        rng = random.Random(stream)
        split = "val" if fam.name in val else "train"
        corpus.extend(sample_family(fam, labels, slot_choices, quota, split, rng, seen))

    for name in TASKS:
        slots = {**COMMON_SLOTS, **VOCABULARY[name].slots()}
        for fam in (*GENERIC_FAMILIES, *ADDED_FAMILIES):
            draw(fam, (name,), [slots], GENERIC_QUOTA)
        for fam in SPECIFIC_FAMILIES[name]:
            draw(fam, (name,), [{**slots, **fam.slots}], SPECIFIC_QUOTA)

    for combo in combos():
        # Roles a, b, c take the degradations in every order, so no class is always named first.
        slot_choices = [role_slots(order) for order in itertools.permutations(combo)]
        for fam in COMBO_FAMILIES:
            if fam.arity == len(combo):
                draw(fam, combo, slot_choices, PAIR_QUOTA if len(combo) == 2 else TRIPLE_QUOTA)

    for fam in (*NONE_FAMILIES, *ADDED_NONE_FAMILIES):
        draw(fam, (), [{**COMMON_SLOTS, **fam.slots}], NONE_QUOTA)

    for name in TASKS:
        for fam in SITUATION_FAMILIES[name]:
            draw(fam, (name,), [{**COMMON_SLOTS, **VOCABULARY[name].slots(), **fam.slots}], fam.quota)
    for fam in (*CONTRAST_FAMILIES, *EFFECT_FAMILIES, *PADDING_FAMILIES):
        for labels, denied, tables in late_draws(fam):
            draw(fam, labels, tables, fam.quota, denied)
    return corpus


# ---------------------------------------------------------------------------
# Files and the command line.


def write_corpus(path: str | Path, corpus: Iterable[Instruction] | None = None, seed: int = 0) -> list[Instruction]:
    """Write a corpus (built from `seed` when not given) as JSON Lines; return what was written."""
    corpus = build_corpus(seed) if corpus is None else list(corpus)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for item in corpus:
            record = {
                "text": item.text,
                "labels": list(item.labels),
                "strength": item.strength,
                "template": item.template,
                "split": item.split,
            }
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return corpus


def read_corpus(path: str | Path) -> list[Instruction]:
    with Path(path).open(encoding="utf-8") as file:
        return [
            Instruction(
                text=record["text"],
                labels=tuple(record["labels"]),
                strength=record["strength"],
                template=record["template"],
                split=record["split"],
            )
            for record in map(json.loads, filter(str.strip, file))
        ]


def counts(corpus: Iterable[Instruction]) -> dict[str, dict[str, int]]:
    """Sentences per reporting class and split."""
    table = {name: dict.fromkeys(SPLITS, 0) for name in CATEGORIES}
    for item in corpus:
        table[category(item.labels)][item.split] += 1
    return table


def format_counts(corpus: Sequence[Instruction]) -> str:
    table = counts(corpus)
    families = {name: {split: set() for split in SPLITS} for name in CATEGORIES}
    for item in corpus:
        families[category(item.labels)][item.split].add(item.template)
    lines = [f"{'class':<10} {'train':>6} {'val':>5} {'total':>6}  families train/val"]
    for name, row in table.items():
        fams = families[name]
        lines.append(
            f"{name:<10} {row['train']:>6} {row['val']:>5} {sum(row.values()):>6}  "
            f"{len(fams['train'])}/{len(fams['val'])}"
        )
    total = {split: sum(row[split] for row in table.values()) for split in SPLITS}
    lines.append(f"{'total':<10} {total['train']:>6} {total['val']:>5} {sum(total.values()):>6}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`textpromptir corpus [PATH] [--seed N]`: build the corpus and write it as JSON Lines."""
    parser = argparse.ArgumentParser(
        prog="textpromptir corpus", description="Build the instruction corpus and write it as JSON Lines."
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="output file (.jsonl)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus = write_corpus(args.path, seed=args.seed)
    print(f"wrote {len(corpus)} instructions to {args.path}")
    print(format_counts(corpus))
    return 0
