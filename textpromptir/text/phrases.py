"""The phrase material of the instruction corpus, read from `resources/instructions/*.json`.

We wrote all of it for this project: phrase lists shared by every class
(phrases.json), a vocabulary per degradation (vocabulary.json) and template
families (families-*.json), each file opening with what it holds and why.
A family is a handful of patterns that share one way of asking, named
"style.name"; `{slot}`s in a pattern are filled from the shared lists, the
degradation's vocabulary or the family's own slots.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from textpromptir.resources import resource

SLOT = re.compile(r"\{(\w+)\}")
# a, b, c: degradations asked for; x: one denied or wanted as an effect, y: a second one denied
ROLE = re.compile(r"\{\w+_([abcxy])\}")


def style_of(template: str) -> str:
    return template.split(".", 1)[0]


@dataclass(frozen=True)
class Vocabulary:
    nouns: tuple[str, ...]  # what is wrong, used after "the" or bare: "noise", "rain streaks"
    adjectives: tuple[str, ...]  # gradable, take "very"/"slightly": "grainy"
    states: tuple[str, ...]  # non-gradable descriptions: "full of noise"
    verbs: tuple[str, ...]  # verbs that take the nouns: "remove", "reduce"
    goals: tuple[str, ...]  # what the user wants instead, may use {obj}: "make {obj} less grainy"
    terse_verbs: tuple[str, ...]  # one-word commands that take an object: "denoise"
    terse_labels: tuple[str, ...]  # names of the operation: "noise reduction"
    terse_fragments: tuple[str, ...]  # what people type in a hurry: "less noise"
    jargon: tuple[str, ...]  # technical nouns: "ISO noise"
    tools: tuple[str, ...]  # an operation to run or apply: "a denoiser"
    fine: tuple[str, ...]  # how a photo without it looks, said of a result or a photo: "razor sharp"

    def slots(self, suffix: str = "") -> dict[str, tuple[str, ...]]:
        """Slot lists named as templates use them; combos add a role suffix ("_a")."""
        named = {
            "noun": self.nouns,
            "adj": self.adjectives,
            "state": self.states,
            "verb": self.verbs,
            "goal": self.goals,
            "tverb": self.terse_verbs,
            "tlabel": self.terse_labels,
            "tfrag": self.terse_fragments,
            "jargon": self.jargon,
            "tool": self.tools,
            "fine": self.fine,
        }
        return {name + suffix: values for name, values in named.items()}


@dataclass(frozen=True)
class Family:
    name: str
    patterns: tuple[str, ...]
    slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # slots only this family uses
    # Added after a release: always trains, so validation keeps the sentences earlier releases were measured on.
    always_train: bool = False
    none: bool = False  # asks for no restoration, whatever degradation words it holds
    quota: int = 0  # sentences per label set, for the families drawn last (issue 22's)

    @property
    def style(self) -> str:
        return style_of(self.name)

    @property
    def arity(self) -> int:
        """How many degradations a pattern names: 3 if it has "_c" slots, 2 for "_a", else 1."""
        text = " ".join(self.patterns)
        return 3 if "_c}" in text else 2 if "_a}" in text else 1

    @property
    def roles(self) -> set[str]:
        """The roles its patterns fill: "a", "b", "c" for degradations asked for, "x", "y" for those denied or added."""
        return set(ROLE.findall(" ".join(self.patterns)))

    @property
    def slot_names(self) -> set[str]:
        """The slots its patterns fill directly (not those nested in slot values)."""
        return set(SLOT.findall(" ".join(self.patterns)))


def load(name: str) -> dict[str, Any]:
    return json.loads(resource("instructions", name).read_text(encoding="utf-8"))


def word_lists(table: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(words) for name, words in table.items()}


def families(records: list[dict[str, Any]]) -> tuple[Family, ...]:
    return tuple(
        Family(
            record["name"],
            tuple(record["patterns"]),
            word_lists(record.get("slots", {})),
            record.get("always_train", False),
            record.get("none", False),
            record.get("quota", 0),
        )
        for record in records
    )


_phrases = load("phrases.json")
COMMON_SLOTS = word_lists(_phrases["slots"])
STRENGTH_WORDS = {slot: word_lists(levels) for slot, levels in _phrases["strength_words"].items()}
MISSPELLINGS = word_lists(_phrases["misspellings"])

_vocabulary_fields = [f.name for f in fields(Vocabulary)]
VOCABULARY = {
    name: Vocabulary(**{slot: tuple(words[slot]) for slot in _vocabulary_fields})
    for name, words in load("vocabulary.json").items()
    if name != "about"
}

_shared = families(load("families-shared.json")["families"])
GENERIC_FAMILIES = tuple(f for f in _shared if not f.always_train)
ADDED_FAMILIES = tuple(f for f in _shared if f.always_train)
SPECIFIC_FAMILIES = {
    name: families(records) for name, records in load("families-specific.json").items() if name != "about"
}
COMBO_FAMILIES = families(load("families-combos.json")["families"])
_none = families(load("families-none.json")["families"])
NONE_FAMILIES = tuple(f for f in _none if not f.always_train)
ADDED_NONE_FAMILIES = tuple(f for f in _none if f.always_train)

# Issue 22's families, drawn after all the others so that every earlier sentence stays as it was.
CONTRAST_FAMILIES = families(load("families-contrast.json")["families"])
SITUATION_FAMILIES = {
    name: families(records) for name, records in load("families-situations.json").items() if name != "about"
}
EFFECT_FAMILIES = families(load("families-effects.json")["families"])
PADDING_FAMILIES = families(load("families-padding.json")["families"])
