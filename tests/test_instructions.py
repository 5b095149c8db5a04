"""The instruction corpus: sizes, splits, coverage and determinism. Fast, no torch needed."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from textpromptir.tasks import STRENGTHS, TASKS
from textpromptir.text.instructions import (
    CATEGORIES,
    COMBO,
    DEFAULT_PATH,
    NONE,
    NONE_STYLES,
    SPLITS,
    STYLES,
    Instruction,
    build_corpus,
    category,
    combos,
    counts,
    late_draws,
    misspell,
    normalise,
    read_corpus,
    render,
    val_families,
    write_corpus,
)
from textpromptir.text.phrases import (
    ADDED_FAMILIES,
    CONTRAST_FAMILIES,
    GENERIC_FAMILIES,
    MISSPELLINGS,
    STRENGTH_WORDS,
    VOCABULARY,
    style_of,
)

# Terms the issue asks the corpus to cover, per degradation (matched case-insensitively).
JARGON = {
    "noise": ("ISO noise", "chroma noise", "sensor noise", "denoise"),
    "rain": ("derain", "rain streaks"),
    "haze": ("dehaze", "haze", "fog", "smog", "mist"),
    "blur": ("deblur", "motion blur", "defocus", "camera shake"),
    "low_light": ("underexposed", "exposure"),
    "jpeg": ("deblock", "compression artifacts", "blocking", "ringing", "mosquito noise"),
}
# Words that always name a strength: a sentence without a recorded strength must not use them.
CORE_STRENGTH_WORDS = re.compile(
    r"\b(slight|slightly|heavy|heavily|very|extremely|severe|severely|moderate|moderately|mild|mildly)\b"
)


@pytest.fixture(scope="module")
def corpus() -> list[Instruction]:
    return build_corpus()


def of(corpus: list[Instruction], name: str, split: str | None = None) -> list[Instruction]:
    return [item for item in corpus if category(item.labels) == name and split in (None, item.split)]


def test_records_are_well_formed(corpus):
    for item in corpus:
        assert item.text == item.text.strip() and item.text
        assert list(item.labels) == sorted(item.labels, key=TASKS.index)
        assert set(item.labels) <= set(TASKS) and len(set(item.labels)) == len(item.labels) <= 3
        assert item.strength in (None, *STRENGTHS)
        assert item.split in SPLITS
        assert style_of(item.template) in STYLES + NONE_STYLES


def test_counts_per_class(corpus):
    table = counts(corpus)
    for name in TASKS:
        assert sum(table[name].values()) >= 300, name
    assert sum(table[COMBO].values()) >= 300
    assert sum(table[NONE].values()) >= 400
    for name in CATEGORIES:
        total = sum(table[name].values())
        assert table[name]["val"] >= 60, name
        assert 0.10 <= table[name]["val"] / total <= 0.30, name


def test_every_pair_and_triple_is_present(corpus):
    present = {item.labels for item in of(corpus, COMBO)}
    assert present == set(combos())
    assert len(present) == len(list(itertools.combinations(TASKS, 2))) + len(list(itertools.combinations(TASKS, 3)))
    for split in SPLITS:
        assert {len(item.labels) for item in of(corpus, COMBO, split)} == {2, 3}, split


def test_no_template_shared_across_splits(corpus):
    splits_of: dict[str, set[str]] = {}
    for item in corpus:
        splits_of.setdefault(item.template, set()).add(item.split)
    shared = sorted(template for template, splits in splits_of.items() if len(splits) > 1)
    assert not shared


def test_no_duplicate_texts(corpus):
    keys = Counter(normalise(item.text) for item in corpus)
    assert [key for key, count in keys.items() if count > 1] == []


def test_every_style_is_covered_in_both_splits(corpus):
    for name in TASKS:
        for split in SPLITS:
            styles = {style_of(item.template) for item in of(corpus, name, split)}
            assert styles == set(STYLES), (name, split)
    none_train = {style_of(item.template) for item in of(corpus, NONE, "train")}
    assert none_train == set(NONE_STYLES)
    none_val = {style_of(item.template) for item in of(corpus, NONE, "val")}
    assert {"edit", "nearmiss"} <= none_val


@pytest.mark.parametrize("name", TASKS)
def test_jargon_is_covered(corpus, name):
    texts = " | ".join(item.text.lower() for item in of(corpus, name))
    for term in JARGON[name]:
        assert term.lower() in texts, term


@pytest.mark.parametrize("name", CATEGORIES)
def test_misspellings_are_covered(corpus, name):
    variants = {variant for values in MISSPELLINGS.values() for variant in values}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(variants, key=len, reverse=True))) + r")\b")
    misspelt = [item for item in of(corpus, name) if pattern.search(item.text.lower())]
    assert len(misspelt) >= 20, name


@pytest.mark.parametrize("name", TASKS)
def test_strength_words_are_recorded(corpus, name):
    items = of(corpus, name)
    assert {item.strength for item in items} == {None, *STRENGTHS}
    for item in items:
        text = item.text.lower()
        if item.strength is None:
            assert not CORE_STRENGTH_WORDS.search(text), item
        else:
            words = {word for slot in STRENGTH_WORDS.values() for word in slot[item.strength]}
            assert any(re.search(rf"\b{re.escape(word)}\b", text) for word in words), item


def test_none_holds_near_misses_and_no_strength(corpus):
    nones = of(corpus, NONE)
    assert all(item.strength is None for item in nones)
    restoration_words = re.compile(r"\b(rain|fog|foggy|haze|grain|grainy|noise|blur|blurry|darker|jpe?g)\b")
    near_misses = [item for item in nones if restoration_words.search(item.text.lower())]
    assert len(near_misses) >= 60
    # The issue's examples of requests that ask for a degradation, not a restoration.
    texts = " | ".join(normalise(item.text) for item in nones)
    for asked in (r"\badd rain\b", r"\blook foggy\b", r"\b(add|put) (film )?grain\b", r"\bmake \w+( \w+)? darker\b"):
        assert re.search(asked, texts), asked


def test_vocabularies_do_not_overlap():
    """A word that described two degradations would make a single-label sentence ambiguous."""
    owners: dict[str, set[str]] = {}
    for name, vocabulary in VOCABULARY.items():
        for word in (*vocabulary.nouns, *vocabulary.adjectives, *vocabulary.states):
            owners.setdefault(word.lower(), set()).add(name)
    assert {word: names for word, names in owners.items() if len(names) > 1} == {}


def test_deterministic_for_a_seed(corpus):
    assert build_corpus(0) == corpus
    assert build_corpus(1) != corpus


def test_write_read_round_trip(tmp_path: Path, corpus):
    path = tmp_path / "sub" / "corpus.jsonl"
    written = write_corpus(path, corpus)
    assert written == corpus
    assert read_corpus(path) == corpus


def test_shipped_corpus_matches_the_code(corpus):
    """resources/instructions/corpus.jsonl is what `textpromptir corpus` writes."""
    assert DEFAULT_PATH.is_file()
    assert DEFAULT_PATH.stat().st_size < 1_500_000
    assert read_corpus(DEFAULT_PATH) == corpus


def test_render_fills_nested_slots_and_records_strength():
    slots = {"goal": ("brighten {obj}",), "obj": ("it",)}
    assert render("{goal} now", slots, random.Random(0)) == ("brighten it now", None)
    strengths = {render("it's {sadv} dark", {}, random.Random(seed))[1] for seed in range(50)}
    assert strengths == {None, *STRENGTHS}


def test_misspell_changes_known_words_only():
    rng = random.Random(0)
    assert misspell("hello there", rng) == "hello there"
    assert misspell("remove the noise", rng) != "remove the noise"


def test_validation_words_are_seen_in_training():
    """Validation holds unseen sentence frames, not unseen words: each slot a shared validation family fills
    (the operation names included) is filled by some training family too."""
    held_out = val_families(seed=0)
    slots_of = {fam.name: fam.slot_names for fam in (*GENERIC_FAMILIES, *ADDED_FAMILIES)}
    in_training = set().union(*(slots for name, slots in slots_of.items() if name not in held_out))
    in_validation = set().union(*(slots for name, slots in slots_of.items() if name in held_out))
    assert "tool" in in_validation
    assert in_validation <= in_training


def test_issue_22_families_leave_every_earlier_sentence_as_it_was(corpus, monkeypatch):
    """They are drawn last, so validation and the earlier training sentences are those the figures were made on."""
    from textpromptir.text import instructions

    for name in ("CONTRAST_FAMILIES", "EFFECT_FAMILIES", "PADDING_FAMILIES"):
        monkeypatch.setattr(instructions, name, ())
    monkeypatch.setattr(instructions, "SITUATION_FAMILIES", dict.fromkeys(TASKS, ()))
    earlier = build_corpus()
    assert len(earlier) < len(corpus)
    assert corpus[: len(earlier)] == earlier
    assert all(item.split == "train" for item in corpus[len(earlier) :])


def test_requests_to_add_an_effect_use_every_degradations_words_and_ask_for_none(corpus):
    effects = [item for item in corpus if item.template.split(".")[1].startswith("effect_")]
    assert effects and all(item.labels == () for item in effects)
    texts = " | ".join(item.text.lower() for item in effects)
    for name, vocabulary in VOCABULARY.items():
        used = [word for word in (*vocabulary.nouns, *vocabulary.adjectives) if word.lower() in texts]
        assert len(used) >= 5, name


def test_contrast_sentences_ask_for_what_they_do_not_deny(corpus):
    contrast = [item for item in corpus if ".contrast_" in item.template or item.template.endswith(".contrast")]
    asked = Counter(item.labels for item in contrast)
    assert {labels for labels in asked if len(labels) == 1} == {(name,) for name in TASKS}
    assert {labels for labels in asked if len(labels) == 2} == set(itertools.combinations(TASKS, 2))
    denied = [item for item in corpus if item.template == "nearmiss.denied"]
    assert len(denied) >= 30 and all(item.labels == () for item in denied)


def test_held_out_prompts_are_never_trained_on(corpus):
    """An unseen held-out set is only a fair check while neither the corpus nor the written prompts say its words."""
    folder = Path(DEFAULT_PATH).parent
    trained = {normalise(item.text) for item in corpus} | {
        normalise(item.text) for item in read_corpus(folder / "written.jsonl")
    }
    held_out = [item for path in sorted(folder.glob("held_out*.jsonl")) for item in read_corpus(path)]
    assert len(held_out) >= 60
    assert [item.text for item in held_out if normalise(item.text) in trained] == []


def test_written_prompts_are_training_records():
    written = read_corpus(Path(DEFAULT_PATH).parent / "written.jsonl")
    assert len(written) >= 200
    assert {item.split for item in written} == {"train"}
    assert all(
        set(item.labels) <= set(TASKS) and list(item.labels) == sorted(item.labels, key=TASKS.index) for item in written
    )


def test_two_degradations_denied_together_are_drawn_in_every_order_and_ask_for_none(corpus):
    family = next(fam for fam in CONTRAST_FAMILIES if fam.roles == {"x", "y"})
    draws = list(late_draws(family))
    assert {labels for labels, _, _ in draws} == {()}
    assert {denied for _, denied, _ in draws} == {f"{x}+{y}" for x, y in itertools.permutations(TASKS, 2)}
    for _, denied, (table,) in draws:
        first, second = denied.split("+")
        assert table["noun_x"] == VOCABULARY[first].nouns and table["noun_y"] == VOCABULARY[second].nouns
    sentences = [item for item in corpus if item.template == family.name]
    assert len(sentences) >= 50 and all(item.labels == () for item in sentences)
